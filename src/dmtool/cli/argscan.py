"""One pass over the command line before Typer parses it.

It does two things that need to know which token is an option and which is a
value or a plain argument, so they are decided in one place:

- Global options after the command name (`dmtool sync --profile demo -v`, as
  gh takes them) are moved in front of it, where the root parses them.
- Whether errors are JSON: only the command's real `--json` switch (or
  `--format json` where that names the output) turns it on; a `--json` that is
  the value of another option, a text argument, or anything after `--` does not.

The scanner knows nothing of Typer: it is given each command's shape (which of
its options take values), so it is a pure function with its own tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

# The root's options that may also follow the command name. `--version` and
# `--help` are not moved: after a command, `--help` is that command's help.
GLOBAL_VALUE_OPTIONS = ("--profile", "-p")
GLOBAL_FLAGS = ("--verbose", "-v")
JSON_FLAG = "--json"
FORMAT_OPTION = "--format"


class Shape:
    """What the scanner must know of one command or group. (Plain classes here:
    every command scans its arguments, and a record class costs its start-up.)"""

    __slots__ = ("group", "value_options", "options", "format_is_output")

    def __init__(self, group: bool = False, value_options: Mapping[str, int] | None = None,
                 options: frozenset[str] = frozenset(), format_is_output: bool = False) -> None:
        self.group = group  # its first plain argument names a subcommand
        self.value_options: Mapping[str, int] = value_options or {}  # option -> values it takes
        self.options = options  # every option string it has, flags included
        self.format_is_output = format_is_output  # `--format json` asks for JSON output

    @property
    def has_json(self) -> bool:
        return JSON_FLAG in self.options


Resolve = Callable[[tuple[str, ...]], "Shape | None"]


class Scanned:
    __slots__ = ("args", "json", "path", "error")

    def __init__(self, args: list[str], json: bool, path: tuple[str, ...],
                 error: str | None = None) -> None:
        self.args = args  # the arguments with global options moved before the command name
        self.json = json  # the real --json switch (or an output --format json) is given
        self.path = path  # the command path, as far as it names known commands
        self.error = error  # a global option after the command without its value


def _global_option(args: list[str], i: int, own: frozenset[str]) -> int:
    """How many tokens at args[i] are a global option (0: none). The command's
    own options of the same name win."""
    a = args[i]
    name = a.partition("=")[0] if a.startswith("--") else a
    if name in own:
        return 0
    if name in GLOBAL_FLAGS:
        return 1 if name == a else 0  # `--verbose=x` is no flag
    if name in GLOBAL_VALUE_OPTIONS:
        return 1 if "=" in a else 2
    short = GLOBAL_VALUE_OPTIONS[1]
    if not a.startswith("--") and a.startswith(short) and len(a) > 2 and short not in own:
        return 1  # -pNAME
    return 0


def scan(args: list[str], resolve: Resolve) -> Scanned:
    """Scan `args` (what follows the program name). `resolve(path)` gives the
    shape of the root (path ()) and of each command path, or None for an
    unknown command, after which the rest is left to the parser."""
    out: list[str] = []
    pulled: list[str] = []
    path: tuple[str, ...] = ()
    shape = resolve(path)
    command_at: int | None = None  # where the command name sits in `out`
    json = False
    error: str | None = None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--" or shape is None:
            out.extend(args[i:])
            break
        if a.startswith("-") and a != "-":
            name, eq, value = a.partition("=") if a.startswith("--") else (a, "", "")
            if name in shape.options:
                takes = 0 if eq else shape.value_options.get(name, 0)
                if name == JSON_FLAG and not eq:
                    json = True
                elif name == FORMAT_OPTION and shape.format_is_output:
                    given = value if eq else (args[i + 1] if i + 1 < len(args) else "")
                    json = json or given == "json"
                out.extend(args[i:i + 1 + takes])
                i += 1 + takes
                continue
            n = _global_option(args, i, shape.options) if path else 0
            if n:
                if n == 2 and (i + 1 >= len(args) or args[i + 1] == "--"):
                    error, n = f"option {a} needs a value", 1
                pulled.extend(args[i:i + n])
                i += n
                continue
            out.append(a)  # an unknown option, or short ones run together: the parser decides
            i += 1
            continue
        if shape.group:
            if command_at is None:
                command_at = len(out)
            path = (*path, a)
            shape = resolve(path)
        out.append(a)
        i += 1
    if pulled:
        at = len(out) if command_at is None else command_at
        out[at:at] = pulled
    return Scanned(out, json, path, error)
