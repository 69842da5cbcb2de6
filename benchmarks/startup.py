"""Start-up time of local commands against `python -c "import typer"`.

    python benchmarks/startup.py [--contacts 1000] [--runs 15]

Creates a throwaway DMTOOL_HOME with N contacts, then times, side by side and
interleaved (so machine noise hits all equally), the median wall time of:
`python -c "import typer"` (the floor any Typer CLI pays), `dmtool --help`,
`dmtool contacts list --json`, and two shell completions (a TAB after
`dmtool thread ` in bash: handles from the store; a TAB after `dmtool ` in zsh:
every command with its help). Prints each and its ratio to the floor.
Target (issue 2): contacts list --json on 10,000 contacts within 1.5x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def seed(home: Path, n: int) -> None:
    env = dict(os.environ, DMTOOL_HOME=str(home))
    csv = "handle,user_id,name,tags\n" + "".join(
        f"user{i},{10_000_000 + i},User {i},{'vip' if i % 7 == 0 else ''}\n" for i in range(n))
    subprocess.run([sys.executable, "-m", "dmtool", "contacts", "import", "-", "--format", "csv"],
                   input=csv, text=True, check=True, env=env, capture_output=True)


def timed(cmd: list[str], env: dict[str, str], extra: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    dmtool = [sys.executable, "-m", "dmtool"]
    bin_dmtool = Path(sys.executable).with_name("dmtool")
    if bin_dmtool.exists():
        dmtool = [str(bin_dmtool)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        seed(home, args.contacts)
        env = dict(os.environ, DMTOOL_HOME=str(home), NO_COLOR="1")
        # Measure what users run: compiled bytecode cached after the first start.
        # (Some CI images set PYTHONDONTWRITEBYTECODE, which recompiles every
        # module on every start and hides the real cost.)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        # The shells' completion protocol as Typer speaks it (complete_bash, not
        # Click's bash_complete): see the scripts `dmtool --show-completion` prints.
        bash_tab = {"_DMTOOL_COMPLETE": "complete_bash", "COMP_WORDS": "dmtool thread ",
                    "COMP_CWORD": "2"}
        zsh_tab = {"_DMTOOL_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "dmtool "}
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            'python -c "import typer"': ([sys.executable, "-c", "import typer"], {}),
            "dmtool --help": ([*dmtool, "--help"], {}),
            f"dmtool contacts list --json ({args.contacts} contacts)":
                ([*dmtool, "contacts", "list", "--json"], {}),
            "TAB: dmtool thread <TAB> (bash, handles)": (dmtool, bash_tab),
            "TAB: dmtool <TAB> (zsh, commands and help)": (dmtool, zsh_tab),
        }
        for cmd, extra in cases.values():  # warm the page cache and .pyc files
            timed(cmd, env, extra)
        samples: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.runs):
            for name, (cmd, extra) in cases.items():
                samples[name].append(timed(cmd, env, extra))
    floor = statistics.median(samples['python -c "import typer"'])
    print(f"median of {args.runs} runs each")
    for name, s in samples.items():
        med = statistics.median(s)
        print(f"{name:<50} {med * 1000:7.1f} ms  {med / floor:5.2f}x")


if __name__ == "__main__":
    main()
