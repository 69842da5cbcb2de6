"""Imports only point down: cli/ -> services/ -> appstate -> policy/lint -> store/ -> x/.

Read from the source with ast, so an import under TYPE_CHECKING or inside a
function counts as much as one at the top: a cycle that only type checkers
see still ties the layers together.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import dmtool

SRC = Path(dmtool.__file__).resolve().parent
PURE = ("dmtool.policy", "dmtool.lint", "dmtool.optout", "dmtool.textnorm", "dmtool.settings")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(source: str, package: str) -> set[str]:
    """Every dmtool module `source` (a module of `package`) imports, anywhere in
    it. `from dmtool import policy` counts as dmtool.policy; relative imports
    resolve against `package`."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m == "dmtool" or m.startswith("dmtool.")}


@functools.cache
def _graph() -> dict[str, set[str]]:
    graph = {}
    for p in sorted(SRC.rglob("*.py")):
        package = _module_name(p.parent / "__init__.py")
        graph[_module_name(p)] = imported(p.read_text(encoding="utf-8"), package)
    return graph


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


# (who, what it must not import)
RULES: list[tuple[str, Callable[[str], bool], tuple[str, ...]]] = [
    ("nothing below cli/", lambda m: not _under(m, "dmtool.cli", "dmtool.__main__"),
     ("dmtool.cli",)),
    ("nothing below services/", lambda m: not _under(m, "dmtool.cli", "dmtool.__main__",
                                                     "dmtool.services"),
     ("dmtool.services",)),
    ("nothing below the app state", lambda m: not _under(m, "dmtool.cli", "dmtool.__main__",
                                                         "dmtool.services", "dmtool.appstate"),
     ("dmtool.appstate",)),
    ("store/", lambda m: _under(m, "dmtool.store"), ("dmtool.x", "dmtool.policy", "dmtool.lint")),
    ("x/", lambda m: _under(m, "dmtool.x"), ("dmtool.store", "dmtool.policy", "dmtool.lint")),
    ("the pure rules", lambda m: _under(m, *PURE),
     ("dmtool.store", "dmtool.x", "dmtool.config", "dmtool.credentials", "dmtool.paths")),
]


def test_the_graph_is_read_from_every_module() -> None:
    graph = _graph()
    assert {"dmtool.cli.app", "dmtool.services.send", "dmtool.store.contacts", "dmtool.appstate",
            "dmtool.policy"} <= graph.keys()
    assert "dmtool.services.send" in graph["dmtool.cli.drafts"]  # inside a function
    assert "dmtool.policy" in graph["dmtool.services.consent"]  # `from dmtool import policy`


def test_the_reader_sees_type_checking_and_relative_imports() -> None:
    src = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
           "    from dmtool.cli.context import state\n"
           "def f():\n    from ..cli import app\n")
    assert imported(src, "dmtool.services") >= {"dmtool.cli.context", "dmtool.cli.app"}


@pytest.mark.parametrize("who,applies,forbidden", RULES, ids=[r[0] for r in RULES])
def test_imports_only_point_down(who: str, applies: Callable[[str], bool],
                                 forbidden: tuple[str, ...]) -> None:
    checked = [m for m in _graph() if applies(m)]
    assert checked, f"no module found for {who}"
    wrong = []
    for m in checked:
        bad = {dep for dep in _graph()[m] if _under(dep, *forbidden)}
        # `from dmtool.cli.context import state` reads both names: report the module
        wrong += [f"{m} imports {dep}" for dep in sorted(bad) if dep.rsplit(".", 1)[0] not in bad]
    assert not wrong, "\n".join(wrong)


def test_building_a_sandbox_world_does_not_load_requests() -> None:
    """Only the sandbox's transport adapter needs requests: setting a world up
    (`auth status` on a sandbox profile, `demo`'s reset) and the fake server's
    logic load without it, and the adapter still comes from the package."""
    code = ("import sys\n"
            "from dmtool.x.sandbox import SANDBOX_ME, SandboxWorld, seed_demo_world\n"
            "import dmtool.x.sandbox.server\n"
            "assert 'requests' not in sys.modules, 'requests was loaded'\n"
            "from dmtool.x.sandbox import SandboxAdapter, mount_sandbox\n"
            "assert 'requests' in sys.modules and SandboxAdapter.__module__.endswith('.adapter')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


DRIVERS = ("sqlite3", "psycopg2", "psycopg")


def test_only_the_store_knows_its_engine() -> None:
    """Nothing above store/ imports a database driver: services and commands
    never learn whether SQLite or PostgreSQL answers (store/sql.py's Conn)."""
    wrong = []
    for p in sorted(SRC.rglob("*.py")):
        module = _module_name(p)
        if _under(module, "dmtool.store"):
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{module} imports {n}" for n in names if n.split(".")[0] in DRIVERS]
    assert not wrong, "\n".join(wrong)
