"""Shell completion, through the protocol the scripts of `dmtool
--show-completion` speak: dmtool run with `_DMTOOL_COMPLETE=complete_bash`
(or zsh, fish) and the words so far in the environment."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from dmtool.paths import Paths
from dmtool.store import contacts as cstore
from dmtool.store import drafts as dstore
from tests.conftest import profile_store

STAMP = "2026-01-05T10:00:00.000Z"


def seed(profile: str = "default") -> None:
    """Contacts, drafts in every interesting status, and templates."""
    store = profile_store(profile)
    try:
        with store.tx() as conn:
            ids = {h: cstore.create(conn, h, now=STAMP, name=n).id for h, n in (
                ("alice", "Alice Adams"), ("Alan_X", None), ("bob", None),
                ("carol", 'Carol "C" O\'Brien $(rm -rf ~)'))}
            for handle, status in (("alice", "approved"), ("bob", "draft"), ("carol", "unknown"),
                                   ("alice", "sent"), ("bob", "rejected"), ("bob", "discarded"),
                                   ("carol", "failed"), ("Alan_X", "sending")):
                d = dstore.create(conn, ids[handle], "hi", now=STAMP)
                conn.execute("UPDATE drafts SET status = ? WHERE id = ?", (status, d.id))
            for name in ("hello", "help-me", "Howdy", "thanks"):
                dstore.save_template(conn, name, f"{name}, {{first_name}}: it's me!", now=STAMP)
    finally:
        store.close()
    # Draft ids: 1 approved, 2 draft, 3 unknown, 4 sent, 5 rejected, 6 discarded,
    # 7 failed, 8 sending.


def complete(line: str, shell: str = "bash", env: dict[str, str] | None = None,
             bash_words: list[str] | None = None, run=None) -> list[str]:
    """The candidates the shell gets for `line` (the cursor at its end): from
    dmtool in-process, or from the installed one when given `run`."""
    words = bash_words or line.split()
    if line.endswith(" "):
        words.append("")
    extra = {"_DMTOOL_COMPLETE": f"complete_{shell}",
             # bash's script joins its words with newlines, zsh and fish send the line
             "COMP_WORDS": "\n".join(words), "COMP_CWORD": str(len(words) - 1),
             "_TYPER_COMPLETE_ARGS": line, "_TYPER_COMPLETE_FISH_ACTION": "get-args",
             **(env or {})}
    if run is not None:
        r = run(env=extra)
        code, out, err = r.exit_code, r.stdout, r.stderr
    else:
        from typer.testing import CliRunner

        from dmtool.cli.app import app

        res = CliRunner().invoke(app, [], env=extra, prog_name="dmtool")
        code, out, err = res.exit_code, res.stdout, res.stderr
    assert code == 0 and err == "", (code, out, err)
    return out.splitlines() if out.strip() else []


def test_handles_complete_from_the_store_for_every_handle_argument():
    seed()
    everyone = ["Alan_X", "alice", "bob", "carol"]
    for cmd in ("thread", "done", "draft", "check", "contacts show", "contacts tag",
                "contacts forget"):
        assert complete(f"dmtool {cmd} ") == everyone, cmd
    # A new contact's handle is not in the store: nothing to offer.
    assert complete("dmtool contacts add ") == []
    # A prefix, ignoring case; what was typed (its case, an "@") is kept, so
    # the shells, which match candidates against it, keep them.
    assert complete("dmtool thread al") == ["alan_X", "alice"]
    assert complete("dmtool thread AL") == ["ALan_X", "ALice"]
    assert complete("dmtool thread @al") == ["@alan_X", "@alice"]
    assert complete("dmtool thread @") == ["@Alan_X", "@alice", "@bob", "@carol"]
    assert complete("dmtool thread x") == []


def test_bash_splits_at_the_at_sign():
    """bash breaks words at "@" and replaces only what follows it."""
    seed()
    assert complete("dmtool thread @al",
                    bash_words=["dmtool", "thread", "@", "al"]) == ["alan_X", "alice"]


@pytest.mark.sqlite_only(reason="each profile's own store is a file of its own; one "
                         "DMTOOL_DATABASE_URL names one PostgreSQL store for every profile")
def test_handles_come_from_the_profile_named_on_the_line(cli):
    seed()
    assert cli("profiles", "add", "work").exit_code == 0
    assert cli("--profile", "work", "contacts", "add", "zed").exit_code == 0
    assert complete("dmtool --profile work thread ") == ["zed"]
    assert complete("dmtool thread --profile work ") == ["zed"]  # a global option after the command
    assert complete("dmtool -p work contacts show z") == ["zed"]
    assert complete("dmtool thread ", env={"DMTOOL_PROFILE": "work"}) == ["zed"]
    assert "zed" not in complete("dmtool thread ")
    assert complete("dmtool --profile nobody thread ") == []
    assert complete("dmtool --profile a/b thread ") == []  # not a profile name


def test_draft_ids_fit_the_command():
    seed()
    assert complete("dmtool send ") == ["8", "3", "1"]  # sending, unknown, approved
    assert complete("dmtool review ") == ["7", "2", "1"]  # failed, draft, approved
    assert complete("dmtool drafts show ") == ["8", "7", "6", "5", "4", "3", "2", "1"]
    assert complete("dmtool drafts edit ") == ["7", "5", "2", "1"]
    assert complete("dmtool drafts discard ") == ["7", "5", "2", "1"]
    assert complete("dmtool drafts show 1") == ["1"]
    assert complete("dmtool drafts show x") == []
    # zsh and fish show the status beside the id.
    assert complete("dmtool send ", "fish") == [
        "8\tsending, to @Alan_X", "3\tunknown, to @carol", "1\tapproved, to @alice"]


def test_draft_ids_match_by_prefix_beyond_ten():
    seed()
    store = profile_store()
    try:
        with store.tx() as conn:
            for _ in range(12):  # ids 9 to 20
                dstore.create(conn, 1, "hi", now=STAMP)
    finally:
        store.close()
    assert complete("dmtool drafts show 1") == [str(i) for i in range(19, 9, -1)] + ["1"]
    assert complete("dmtool review 2") == ["20", "2"]


def test_template_names_complete():
    seed()
    assert complete("dmtool draft alice --template ") == ["Howdy", "hello", "help-me",
                                                                "thanks"]
    assert complete("dmtool draft alice -t hel") == ["hello", "help-me"]
    assert complete("dmtool templates show h") == ["hello", "help-me"]
    assert complete("dmtool templates remove t") == ["thanks"]


def test_zsh_and_fish_show_help_that_is_safe_to_evaluate():
    seed()
    zsh = complete("dmtool thread ", "zsh")
    assert zsh[0] == "_arguments '*: :((\"Alan_X\""
    assert '"alice":"Alice Adams"' in zsh
    assert '"carol":"Carol C O Brien rm -rf"))\'' in zsh  # no quotes, $ or ( from a name
    fish = complete("dmtool templates show he", "fish")
    assert fish == ["hello\thello, first_name : it s me!", "help-me\thelp-me, first_name : it s me!"]


def test_commands_and_options_of_lazily_loaded_modules_complete():
    from dmtool.cli.app import COMMAND_MODULES

    assert set(complete("dmtool ")) == set(COMMAND_MODULES)
    assert complete("dmtool dr") == ["draft", "drafts"]
    assert complete("dmtool drafts ") == ["list", "show", "edit", "discard"]
    assert set(complete("dmtool thread --")) == {"--json", "--limit", "--peek", "--help"}
    assert "--install-completion" in complete("dmtool --")
    assert complete("dmtool --version ") == complete("dmtool ")  # no version printed
    zsh = complete("dmtool ", "zsh")
    assert '"send":"Send exactly one approved draft, after..."' in zsh


@pytest.mark.sqlite_only(reason="the store's file, its -wal/-shm and their times are SQLite's")
def test_completion_never_writes_and_never_errors(run, dmtool_home: Path):
    # No store yet: nothing offered, nothing created.
    assert complete("dmtool thread ") == []
    assert not dmtool_home.exists()

    seed()
    db_file = Paths.resolve("default").db_file
    before = {p.name: p.stat().st_mtime_ns for p in db_file.parent.iterdir()}
    assert complete("dmtool thread ") == ["Alan_X", "alice", "bob", "carol"]
    assert {p.name: p.stat().st_mtime_ns for p in db_file.parent.iterdir()} == before

    # While another process writes: what it committed (still in the WAL) is seen.
    writer = sqlite3.connect(db_file, isolation_level=None)
    try:
        writer.execute("INSERT INTO contacts (handle, created_at, updated_at) "
                       "VALUES ('dora', 'x', 'x')")
        names = sorted(p.name for p in db_file.parent.iterdir())
        assert complete("dmtool thread d", run=run) == ["dora"]  # another process
        assert sorted(p.name for p in db_file.parent.iterdir()) == names
    finally:
        writer.close()

    # A damaged store: no candidates, no error, no traceback.
    db_file.write_bytes(b"not a database" * 100)
    assert complete("dmtool thread ") == []
    assert complete("dmtool send ", "zsh") == ["_files"]


def test_the_installed_dmtool_answers_each_shell(run):
    seed()
    assert complete("dmtool thread @al", bash_words=["dmtool", "thread", "@", "al"],
                    run=run) == ["alan_X", "alice"]
    assert complete("dmtool send ", "zsh", run=run) == [
        "_arguments '*: :((\"8\":\"sending, to @Alan_X\"", '"3":"unknown, to @carol"',
        '"1":"approved, to @alice"))\'']
    assert complete("dmtool draft bob -t h", "fish", run=run) == [
        "hello\thello, first_name : it s me!", "help-me\thelp-me, first_name : it s me!"]


def test_completion_options_exist_and_show_a_script(run):
    help_text = run("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    # Typer lets the shell be named only with its detection turned off.
    named = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    scripts = {sh: run("--show-completion", sh, env=named) for sh in ("bash", "zsh", "fish")}
    assert all(r.exit_code == 0 for r in scripts.values()), scripts
    assert "_DMTOOL_COMPLETE=complete_bash" in scripts["bash"].stdout
    assert "complete -o default -F _dmtool_completion dmtool" in scripts["bash"].stdout
    assert "compdef _dmtool_completion dmtool" in scripts["zsh"].stdout
    assert "complete --command dmtool" in scripts["fish"].stdout


@pytest.mark.parametrize("shell,path", [("bash", ".bash_completions/dmtool.sh"),
                                        ("fish", ".config/fish/completions/dmtool.fish")])
def test_install_completion_writes_into_home(run, tmp_path: Path, shell: str, path: str):
    home = tmp_path / "home"
    home.mkdir()
    r = run("--install-completion", shell,
            env={"HOME": str(home), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert r.exit_code == 0, r
    script = (home / path).read_text()
    assert f"_DMTOOL_COMPLETE=complete_{shell}" in script
    if shell == "bash":
        assert f"source '{home / path}'" in (home / ".bashrc").read_text()
    assert os.environ["HOME"] != str(home)
