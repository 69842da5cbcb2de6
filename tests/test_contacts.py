from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import profile_env


def handles(cli, *args):
    return [c["handle"] for c in cli("contacts", "list", "--json", *args).json()]


def test_add_list_show(cli):
    r = cli("contacts", "add", "@Alice", "--name", "Alice A", "--tag", "vip", "--note", "met at X")
    assert r.exit_code == 0, r
    items = cli("contacts", "list", "--json").json()
    assert items == [
        {
            "handle": "Alice",
            "user_id": None,
            "name": "Alice A",
            "tags": ["vip"],
            "status": "needs-consent",
            "can_dm": False,
            "last_inbound_at": None,
            "last_outbound_at": None,
        }
    ]
    shown = cli("contacts", "show", "alice", "--json").json()  # case-insensitive, no @
    assert shown["handle"] == "Alice"
    assert shown["notes"][0]["text"] == "met at X"
    assert shown["evidence"] == []  # adding is not consent
    assert {r["code"] for r in shown["reasons"]} == {"E_NO_CONSENT"}


def test_add_twice_and_bad_handle(cli):
    assert cli("contacts", "add", "bob").exit_code == 0
    r = cli("contacts", "add", "@BOB")
    assert r.exit_code == 1 and "already" in r.stderr
    r = cli("contacts", "add", "not a handle!")
    assert r.exit_code == 1 and "not an X handle" in r.stderr


def test_missing_contact_is_exit_1(cli):
    r = cli("contacts", "show", "nobody", "--json")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert json.loads(r.stderr)["error"]["code"] == "E_NOT_FOUND"


def test_tags_and_notes(cli):
    cli("contacts", "add", "carol")
    assert cli("contacts", "tag", "carol", "beta", "press").exit_code == 0
    assert handles(cli, "--tag", "beta") == ["carol"]
    assert cli("contacts", "tag", "carol", "beta", "--remove").exit_code == 0
    assert handles(cli, "--tag", "beta") == []
    assert cli("contacts", "note", "carol", "prefers mornings").exit_code == 0
    assert cli("contacts", "show", "carol", "--json").json()["notes"][0]["text"] == "prefers mornings"


def test_piped_list_is_tsv_without_decoration(cli):
    cli("contacts", "add", "dave", "--name", "Dave")
    out = cli("contacts", "list").stdout
    # handle, name, status, tags, last in, last out, can DM now (empty: no consent)
    assert out.splitlines() == ["@dave\tDave\tneeds-consent\t\t\t\t"]
    assert "│" not in out and "─" not in out


def test_engage_records_consent_and_check(cli):
    cli("contacts", "add", "erin")
    r = cli("check", "erin", "--json")
    assert r.exit_code == 3
    assert r.json()["allowed"] is False
    r = cli("contacts", "engage", "erin", "--kind", "request", "--evidence", "asked at booth")
    assert r.exit_code == 0
    r = cli("check", "erin", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert data["allowed"] is True and data["first_contact"] is True
    assert data["evidence"][0]["kind"] == "request"
    assert handles(cli, "--status", "can-dm") == ["erin"]


def test_engage_requires_evidence_text(cli):
    cli("contacts", "add", "erin")
    assert cli("contacts", "engage", "erin", "--evidence", "  ").exit_code == 1
    assert cli("contacts", "engage", "erin", "--kind", "follow", "--evidence", "x").exit_code == 2


def test_block_unblock(cli):
    cli("contacts", "add", "frank")
    cli("contacts", "engage", "frank", "--evidence", "asked by email")
    assert cli("contacts", "block", "frank").exit_code == 0
    r = cli("check", "frank", "--json")
    assert r.exit_code == 3 and "E_BLOCKED" in {x["code"] for x in r.json()["reasons"]}
    assert handles(cli, "--status", "blocked") == ["frank"]
    assert cli("contacts", "unblock", "frank").exit_code == 0
    assert cli("check", "frank").exit_code == 0


def test_forget_keeps_block_as_suppression(cli):
    cli("contacts", "add", "gina")
    cli("contacts", "block", "gina")
    r = cli("contacts", "forget", "gina")  # not a terminal: needs --yes
    assert r.exit_code == 2 and "--yes" in r.stderr
    assert cli("contacts", "forget", "gina", "--yes").exit_code == 0
    assert cli("contacts", "show", "gina").exit_code == 1
    cli("contacts", "add", "gina")  # comes back: still blocked
    assert handles(cli, "--status", "blocked") == ["gina"]


def test_optout_confirm_and_dismiss_need_review(cli):
    cli("contacts", "add", "hal")
    r = cli("contacts", "optout", "hal", "--dismiss", "--reason", "joke")
    assert r.exit_code == 1 and "not in opt-out review" in r.stderr
    assert cli("contacts", "optout", "hal", "--dismiss").exit_code == 2
    r = cli("contacts", "optout", "hal")  # not in review, not a terminal: needs --yes
    assert r.exit_code == 2 and "--yes" in r.stderr
    assert handles(cli, "--status", "opted-out") == []
    assert cli("contacts", "optout", "hal", "--yes").exit_code == 0
    assert handles(cli, "--status", "opted-out") == ["hal"]


def test_bad_status_filter(cli):
    assert cli("contacts", "list", "--status", "happy").exit_code == 2


CSV_OK = "handle,user_id,name,tags,notes\n@ann,101,Ann,vip;beta,hello\nben,,Ben,,\n"


def test_import_csv_then_reimport_changes_nothing(cli, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_text(CSV_OK)
    r = cli("contacts", "import", str(f), "--json")
    assert r.exit_code == 0, r
    assert r.json() == {"created": 2, "updated": 0, "unchanged": 0, "opted_out": [],
                        "skipped": []}
    before = cli("contacts", "export", "--format", "json").json()
    r = cli("contacts", "import", str(f), "--json")
    assert r.json() == {"created": 0, "updated": 0, "unchanged": 2, "opted_out": [],
                        "skipped": []}
    assert cli("contacts", "export", "--format", "json").json() == before
    # an import never records consent
    assert all(c["status"] == "needs-consent" for c in cli("contacts", "list", "--json").json())


def test_import_refuses_whole_file_with_line_numbers(cli, tmp_path: Path):
    f = tmp_path / "bad.csv"
    f.write_text("handle,user_id,name\nok1,,\n,,no handle\nbad handle,,\nok2,abc,\nok1,,\n")
    r = cli("contacts", "import", str(f))
    assert r.exit_code == 1
    for line in (":3:", ":4:", ":5:", ":6:"):
        assert line in r.stderr
    assert "handle is missing" in r.stderr and "user_id" in r.stderr
    assert cli("contacts", "list", "--json").json() == []  # nothing imported
    r = cli("contacts", "import", str(f), "--skip-invalid", "--json")
    assert r.exit_code == 0
    data = r.json()
    assert data["created"] == 1 and [s["line"] for s in data["skipped"]] == [3, 4, 5, 6]


def test_import_json_and_malformed_json(cli, tmp_path: Path):
    f = tmp_path / "c.json"
    f.write_text(
        json.dumps([{"handle": "zed", "tags": ["a"], "status": "can-dm", "evidence": [{"kind": "request"}]}])
    )
    assert cli("contacts", "import", str(f)).exit_code == 0
    assert cli("contacts", "list", "--json").json()[0]["status"] == "needs-consent"
    f.write_text("[{")
    r = cli("contacts", "import", str(f))
    assert r.exit_code == 1 and "not valid JSON" in r.stderr
    r = cli("contacts", "import", str(tmp_path / "missing.csv"))
    assert r.exit_code == 1 and "no such file" in r.stderr


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_import_round_trip(cli, tmp_path: Path, fmt: str):
    cli("contacts", "add", "ann", "--name", 'Ann, "the" first', "--tag", "vip", "--note", "l1\nl2")
    cli("contacts", "add", "ben", "--tag", "x", "--tag", "y")
    exported = cli("contacts", "export", "--format", fmt).stdout
    before = cli("contacts", "export", "--format", "json").json()
    f = tmp_path / f"out.{fmt}"
    f.write_text(exported)
    # into a fresh profile
    copy = profile_env("copy")  # its own store
    assert cli("profiles", "add", "copy", env=copy).exit_code == 0
    assert cli("--profile", "copy", "contacts", "import", str(f), env=copy).exit_code == 0
    after = cli("--profile", "copy", "contacts", "export", "--format", "json", env=copy).json()
    if fmt == "csv":  # a CSV carries note texts, not their times
        for c in before + after:
            c["notes"] = [n["text"] for n in c["notes"]]
    assert after == before


def test_opted_out_contact_readded_by_handle_stays_opted_out(cli, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_text("handle,user_id\nsam,104\n")
    cli("contacts", "import", str(f))
    assert cli("contacts", "optout", "sam", "--yes").exit_code == 0
    assert cli("contacts", "forget", "sam", "--yes").exit_code == 0
    cli("contacts", "add", "@SAM")  # back by handle only, no user id
    cli("contacts", "engage", "sam", "--evidence", "asked at the booth")
    r = cli("check", "sam", "--json")
    assert r.exit_code == 3
    assert "E_OPTED_OUT" in {x["code"] for x in r.json()["reasons"]}


def test_import_errors_in_json_carry_the_rows(cli, tmp_path: Path):
    f = tmp_path / "bad.csv"
    f.write_text("handle\nok\n!!\n")
    r = cli("contacts", "import", str(f), "--json")
    assert r.exit_code == 1 and r.stdout == ""
    err = json.loads(r.stderr)["error"]  # stderr is one JSON document too
    assert err["code"] == "E_INPUT" and err["details"] == [{"line": 3, "reason": err["details"][0]
                                                            ["reason"]}]


def test_block_someone_not_yet_a_contact(cli):
    assert cli("contacts", "block", "@spammy").exit_code == 0
    assert handles(cli, "--status", "blocked") == ["spammy"]
