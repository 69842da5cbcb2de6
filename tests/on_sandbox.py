"""Run dmtool with X's hosts answered by a sandbox world: the real command,
only the network replaced (as SandboxAdapter does in-process).

    python -m tests.on_sandbox WORLD.json [dmtool arguments...]
"""

from __future__ import annotations

import sys


def main() -> None:
    world, *args = sys.argv[1:]
    from tests.xnet import route_x_to_sandbox

    route_x_to_sandbox(world)
    from dmtool.cli.app import main as dmtool_main

    sys.argv = ["dmtool", *args]
    dmtool_main()


if __name__ == "__main__":
    main()
