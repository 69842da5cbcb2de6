"""Writing a message in the user's editor, as `git commit` does.

The editor is $VISUAL, else $EDITOR, else `editor` (Debian's alternatives
link), else `vi`: git's order. When neither variable is set dmtool says which
program it opened, so nobody is left wondering why vi appeared.

Comment lines (starting with `#`) are where dmtool puts context (the last
messages, the lint rules); they are removed on save, with trailing spaces,
runs of blank lines and blank lines at either end, like git's default
`--cleanup=strip`. An empty result means "cancel".
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from dmtool import output
from dmtool.errors import InputError, UsageError

COMMENT = "#"
FALLBACKS = ("editor", "vi")  # git's order after $VISUAL and $EDITOR


def find_editor(environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(command line, what to tell the user or None): $VISUAL, $EDITOR, then the fallbacks."""
    import shutil

    for var in ("VISUAL", "EDITOR"):
        value = environ.get(var, "").strip()
        if value:
            return value, None
    path = environ.get("PATH", os.defpath)
    for name in FALLBACKS:
        if shutil.which(name, path=path):
            return name, f"no $VISUAL or $EDITOR set: opening `{name}`"
    raise UsageError("no editor: $VISUAL and $EDITOR are not set, and neither `editor` nor `vi` "
                     "was found", hint="set $VISUAL or $EDITOR, or give the text as an argument "
                     "or with --file F")


def strip_comments(text: str) -> str:
    """git's `--cleanup=strip`: drop `#` lines and trailing spaces, squeeze blank
    lines, trim blank lines at both ends."""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(COMMENT):
            continue
        line = line.rstrip()
        if not line and (not lines or not lines[-1]):
            continue  # a leading blank line, or a second one in a row
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def comment_block(lines: Sequence[str]) -> str:
    """Context lines as comments, after a blank line for the message."""
    return "\n" + "".join(f"{COMMENT} {line}".rstrip() + "\n" for line in lines)


def edit(environ: Mapping[str, str], initial: str = "", what: str = "the text", *,
         comments: Sequence[str] = ()) -> str:
    """Open the editor on a private temporary file (terminal only) and return
    what was saved. With `comments`, they follow the text as `#` lines and
    everything `#` is stripped on save."""
    import shlex
    import subprocess
    import tempfile

    if not output.interactive():
        raise UsageError(f"nothing given for {what}, and no terminal to open an editor on",
                         hint="give it as an argument, or with --file F (--file - for stdin)")
    editor, note = find_editor(environ)
    if note:
        output.info(note)
    fd, name = tempfile.mkstemp(prefix="dmtool-", suffix=".txt")  # 0600: DMs are private
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(initial)
            if comments:
                f.write(comment_block(comments))
        try:
            rc = subprocess.call([*shlex.split(editor), name])
        except OSError as e:
            raise UsageError(f"cannot run the editor {editor!r}: {e.strerror}",
                             hint="check $VISUAL / $EDITOR") from None
        if rc != 0:
            raise InputError(f"the editor exited with status {rc}; nothing was saved")
        text = Path(name).read_text(encoding="utf-8")
        return strip_comments(text) if comments else text
    finally:
        os.unlink(name)
