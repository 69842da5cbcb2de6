"""`contacts import` and `contacts export` (issue 11 point 8, issue 12 point 8):
one reader with one set of messages for a file and for stdin, limits on size
and nesting, the same field limits on both sides so that the store's own
export always imports, CSV line numbers, and the columns a CRM needs."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from dmtool.models import MAX_NAME_LENGTH, MAX_NOTE_LENGTH
from tests.conftest import dmtool_command, profile_env
from tests.test_drafts import add_talking_contact


def run_bytes(*args: str, data: bytes, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(dmtool_command() + list(args), input=data, capture_output=True,
                          timeout=120, env={**os.environ, **(env or {})})


def opt_out(handle: str) -> None:
    """An opt-out as a STOP leaves it (not through `contacts optout`, whose
    confirmation is another change's business)."""
    from dmtool.store import contacts as cstore
    from dmtool.timeutil import fmt, now
    from tests.conftest import profile_store

    store = profile_store()
    try:
        with store.tx() as conn:
            cstore.set_opted_out(conn, cstore.get(conn, handle), fmt(now()), "STOP")
    finally:
        store.close()


def export(cli, fmt: str = "json", profile: str = "default"):
    env = profile_env(profile) if profile != "default" else None
    r = cli("--profile", profile, "contacts", "export", "--format", fmt, env=env)
    assert r.exit_code == 0, r
    return r.json() if fmt == "json" else r.stdout


# --- one reader -------------------------------------------------------------------------


def test_dev_zero_stops_at_the_size_limit(run) -> None:
    r = run("contacts", "import", "/dev/zero", "--format", "csv", timeout=60)
    assert r.exit_code == 1, r
    assert "/dev/zero is larger than 128 MiB" in r.stderr and "Traceback" not in r.stderr


def test_a_draft_file_has_a_limit_too(run) -> None:
    r = run("draft", "ann", "--file", "/dev/zero", timeout=60)
    assert r.exit_code == 1 and "larger than 1 MiB" in r.stderr, r


@pytest.mark.parametrize("where", ["file", "stdin"])
def test_deeply_nested_json_is_a_clear_error(tmp_path: Path, where: str) -> None:
    deep = b"[" * 100_000
    if where == "file":
        f = tmp_path / "deep.json"
        f.write_bytes(deep)
        p = run_bytes("contacts", "import", str(f), data=b"")
    else:
        p = run_bytes("contacts", "import", "-", "--format", "json", data=deep)
    assert p.returncode == 1, p
    assert b"nested too deeply" in p.stderr and b"Traceback" not in p.stderr


def test_random_bytes_give_the_same_utf8_error_from_a_file_and_stdin(tmp_path: Path) -> None:
    junk = bytes(range(256)) * 8  # not UTF-8 from byte 129 on; CR, LF and NUL included
    f = tmp_path / "junk.csv"
    f.write_bytes(junk)
    from_file = run_bytes("contacts", "import", str(f), data=b"")
    from_stdin = run_bytes("contacts", "import", "-", data=junk)
    assert from_file.returncode == from_stdin.returncode == 1
    assert from_file.stderr.decode().replace(str(f), "stdin") == from_stdin.stderr.decode()
    assert "is not UTF-8 text (byte 129 is 0x80)" in from_stdin.stderr.decode()
    # Bytes, not the text Python's stdin makes of them: under another encoding too.
    latin1 = run_bytes("contacts", "import", "-", data=junk, env={"PYTHONIOENCODING": "latin-1"})
    assert latin1.stderr == from_stdin.stderr
    # The same with --json: one JSON error, E_INPUT, never E_INTERNAL.
    p = run_bytes("contacts", "import", "-", "--json", data=junk)
    assert json.loads(p.stderr)["error"]["code"] == "E_INPUT"


def test_stdin_tells_csv_from_json(cli) -> None:
    r = cli("contacts", "import", "-", "--json", input='[{"handle": "ann"}]')
    assert r.exit_code == 0 and r.json()["created"] == 1, r
    r = cli("contacts", "import", "-", "--json", input="handle,name\nben,Ben\n")
    assert r.exit_code == 0 and r.json()["created"] == 1, r
    r = cli("contacts", "import", "-", input="this is not a contacts file\n")
    assert r.exit_code == 1 and "--format json" in r.stderr, r
    r = cli("contacts", "import", "-", input="[{")
    assert r.exit_code == 1 and "not valid JSON" in r.stderr and "--format csv" in r.stderr


def test_a_folder_and_a_missing_file(cli, tmp_path: Path) -> None:
    r = cli("contacts", "import", str(tmp_path))
    assert r.exit_code == 1 and "is a folder" in r.stderr
    r = cli("contacts", "import", str(tmp_path / "nope.csv"))
    assert r.exit_code == 1 and "no such file" in r.stderr


# --- line numbers -----------------------------------------------------------------------


def test_a_csv_field_over_131072_characters_is_reported_on_its_line(cli, tmp_path: Path) -> None:
    f = tmp_path / "big.csv"
    f.write_text("handle,name\nann," + "x" * 131_073 + "\nben,Ben\n")
    r = cli("contacts", "import", str(f), "--json")
    assert r.exit_code == 1
    details = json.loads(r.stderr)["error"]["details"]
    assert [d["line"] for d in details] == [2]
    assert "too long: 131,073 characters" in details[0]["reason"]


def test_a_quoted_field_over_lines_reports_where_the_row_starts(cli, tmp_path: Path) -> None:
    f = tmp_path / "multi.csv"
    f.write_text('handle,notes\nann,"one\ntwo\nthree"\nbad handle,x\n')
    r = cli("contacts", "import", str(f), "--json")
    assert [d["line"] for d in json.loads(r.stderr)["error"]["details"]] == [5]


# --- the same limits on both sides ---------------------------------------------------------


def _maximal_contact(cli) -> None:
    """Every field at its limit, and every character a field may hold."""
    name = ('Ann "the first", Lee; ' + "é" * MAX_NAME_LENGTH)[:MAX_NAME_LENGTH]
    r = cli("contacts", "add", "a" * 15, "--name", name, "--tag", "t" * 50, "--tag", "vip:gold",
            "--note", "x" * MAX_NOTE_LENGTH)
    assert r.exit_code == 0, r
    notes = ["[urgent] call back", "list:\n  - one\n\t- two\n\nend", '["looks", "like json"',
             "tab\tinside", "y" * MAX_NOTE_LENGTH] + ["z" * MAX_NOTE_LENGTH] * 12
    for n in notes:  # one notes cell of more than 131,072 characters
        assert cli("contacts", "note", "a" * 15, n).exit_code == 0
    assert cli("contacts", "add", "ben").exit_code == 0
    opt_out("ben")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_stores_own_export_always_imports(cli, tmp_path: Path, fmt: str) -> None:
    _maximal_contact(cli)
    f = tmp_path / f"export.{fmt}"
    f.write_text(export(cli, fmt) if fmt == "csv" else json.dumps(export(cli)), encoding="utf-8")
    copy = profile_env("copy")  # its own store
    assert cli("profiles", "add", "copy", env=copy).exit_code == 0
    r = cli("--profile", "copy", "contacts", "import", str(f), "--json", env=copy)
    assert r.exit_code == 0, r
    assert r.json()["opted_out"] == ["ben"]
    before, after = export(cli), export(cli, profile="copy")
    if fmt == "csv":  # a CSV carries the notes' texts, not their times
        for c in before + after:
            c["notes"] = [n["text"] for n in c["notes"]]
            c["opted_out_at"] = bool(c["opted_out_at"])
    assert after == before
    # Imported twice, nothing changes.
    r = cli("--profile", "copy", "contacts", "import", str(f), "--json", env=copy)
    assert (r.json()["unchanged"], r.json()["opted_out"]) == (2, [])


def test_add_and_import_refuse_the_same_values(cli, tmp_path: Path) -> None:
    too_long = "n" * (MAX_NAME_LENGTH + 1)
    assert cli("contacts", "add", "ann", "--name", too_long).exit_code == 1
    assert cli("contacts", "add", "ann", "--note", "n" * (MAX_NOTE_LENGTH + 1)).exit_code == 1
    assert cli("contacts", "add", "ann", "--name", "Ann\x07").exit_code == 1
    assert cli("contacts", "add", "ann", "--name", "Ann\nLee").exit_code == 1
    rows = [("ann", too_long, ""), ("ben", "", "n" * (MAX_NOTE_LENGTH + 1)), ("cat", "Cat\x07", ""),
            ("a" * 16, "", ""), ("dan", "ok", "bad\x00note")]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["handle", "name", "notes"])
    w.writerows(rows)
    f = tmp_path / "bad.csv"
    f.write_text(buf.getvalue())
    r = cli("contacts", "import", str(f), "--json")
    assert [d["line"] for d in json.loads(r.stderr)["error"]["details"]] == [2, 3, 4, 5, 6]
    assert cli("contacts", "list", "--json").json() == []


# --- export columns -------------------------------------------------------------------------


def test_export_has_what_a_crm_needs(cli, clock, monkeypatch) -> None:
    monkeypatch.setenv("DMTOOL_OPERATOR", "sam")
    add_talking_contact("ann", "Ann Lee", "2001")  # wrote an hour ago: can-dm
    cli("contacts", "note", "ann", "met at the fair")
    cli("contacts", "note", "ann", "wants the\npro plan")
    cli("contacts", "add", "ben")
    opt_out("ben")
    rows = list(csv.DictReader(io.StringIO(export(cli, "csv"))))
    assert list(rows[0]) == ["handle", "user_id", "name", "tags", "status", "opted_out_at",
                             "last_inbound_at", "last_outbound_at", "notes"]
    ann, ben = rows
    assert (ann["status"], ann["opted_out_at"], ann["last_outbound_at"]) == ("can-dm", "", "")
    assert ann["last_inbound_at"].startswith(clock.ago(hours=1).strftime("%Y-%m-%dT%H:%M"))
    # readable, not JSON, with who wrote each note
    assert ann["notes"] == "met at the fair [by sam]\nwants the\n\tpro plan [by sam]"
    assert (ben["status"], bool(ben["opted_out_at"])) == ("opted-out", True)

    data = export(cli)
    assert [n["text"] for n in data[0]["notes"]] == ["met at the fair", "wants the\npro plan"]
    assert data[0]["notes"][0]["author"] == "sam"
    assert set(data[0]["notes"][0]) == {"at", "author", "text"}
    listed = {c["handle"]: c for c in cli("contacts", "list", "--json").json()}
    for c in data:  # the contact object of `contacts list`, plus the opt-out date and the notes
        assert {k: c[k] for k in listed[c["handle"]]} == listed[c["handle"]]


def test_import_ignores_consent_columns_but_may_add_an_opt_out(cli, tmp_path: Path) -> None:
    f = tmp_path / "crm.csv"
    f.write_text("handle,status,last_inbound_at,opted_out_at\n"
                 "ann,can-dm,2026-03-01T10:00:00.000Z,\n"
                 "ben,can-dm,,2026-02-01T10:00:00Z\n"
                 "cat,,,yes\n"
                 "dan,,,no\n")
    r = cli("contacts", "import", str(f), "--json")
    assert r.exit_code == 0, r
    assert sorted(r.json()["opted_out"]) == ["ben", "cat"]
    status = {c["handle"]: c["status"] for c in cli("contacts", "list", "--json").json()}
    assert status == {"ann": "needs-consent", "ben": "opted-out", "cat": "opted-out",
                      "dan": "needs-consent"}
    assert cli("contacts", "show", "ann", "--json").json()["messages"] == []  # no history made up
    assert cli("contacts", "show", "ben", "--json").json()["opted_out_at"] == \
        "2026-02-01T10:00:00.000Z"
    log = [e for e in cli("log", "--json").json() if e["action"] == "opted_out"]
    assert {e["handle"] for e in log} == {"ben", "cat"}
    assert {e["detail"]["by"] for e in log} == {"import"}

    # An empty or "no" column never removes an opt-out.
    f.write_text("handle,opted_out_at\nben,\ncat,no\n")
    r = cli("contacts", "import", str(f), "--json")
    assert r.exit_code == 0 and r.json()["unchanged"] == 2
    assert cli("check", "ben").exit_code == 3 and cli("check", "cat").exit_code == 3

    f.write_text("handle,opted_out_at\nann,someday\n")
    r = cli("contacts", "import", str(f), "--json")
    assert r.exit_code == 1 and "opted_out_at must be a date" in r.stderr


def test_an_export_of_version_0_1_0_still_imports(cli, tmp_path: Path) -> None:
    f = tmp_path / "old.csv"
    f.write_text('handle,user_id,name,tags,notes\nann,,Ann,vip,"[""l1\\nl2"", ""second""]"\n')
    assert cli("contacts", "import", str(f)).exit_code == 0
    notes = [n["text"] for n in cli("contacts", "show", "ann", "--json").json()["notes"]]
    assert notes == ["l1\nl2", "second"]


def test_json_notes_keep_their_time_and_author(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DMTOOL_OPERATOR", "ivy")
    f = tmp_path / "c.json"
    f.write_text(json.dumps([{"handle": "ann", "notes": [
        {"at": "2026-01-05T09:00:00.000Z", "author": "dana", "text": "first"}, "second"]}]))
    assert cli("contacts", "import", str(f)).exit_code == 0
    notes = cli("contacts", "show", "ann", "--json").json()["notes"]
    assert notes[0] == {"at": "2026-01-05T09:00:00.000Z", "author": "dana", "text": "first"}
    assert notes[1]["text"] == "second"
    assert notes[1]["author"] == "ivy"  # none in the file: whoever imported it


def test_a_bad_row_that_spans_lines_is_reported_where_it_starts(cli, tmp_path: Path) -> None:
    """Audit (issue 11 point 8): the line of a bad row is where the row starts,
    also when that row's own quoted field spans lines (csv's line_num would
    give where it ends)."""
    f = tmp_path / "multi-bad.csv"
    f.write_text('handle,notes\nbad handle,"one\ntwo\nthree"\nann,x\n')
    r = cli("contacts", "import", str(f), "--json")
    assert r.exit_code == 1, r
    assert [d["line"] for d in json.loads(r.stderr)["error"]["details"]] == [2]
