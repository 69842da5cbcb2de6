"""One account per store: credentials of another X account are refused (exit 4)
before any request, so two brands never mix in one (shared) store."""

from __future__ import annotations

import json

from dmtool.credentials import Credentials, save_credentials
from dmtool.paths import Paths


def test_credentials_of_another_account_are_refused(cli, db, monkeypatch):
    assert cli("contacts", "add", "alice").exit_code == 0
    db("INSERT INTO sync_state (key, value) VALUES ('me_id', '1500'), ('me_username', 'brand_a')")
    for var, value in (("X_API_KEY", "k" * 20), ("X_API_SECRET", "s" * 20),
                       ("X_ACCESS_TOKEN", "777-" + "t" * 20), ("X_ACCESS_TOKEN_SECRET", "u" * 20)):
        monkeypatch.setenv(var, value)
    assert cli("contacts", "add", "bob").exit_code == 0
    db("UPDATE contacts SET user_id = '42' WHERE handle = 'alice'")
    # alice's id is known: `check` asks nothing of X, so it runs.
    assert cli("check", "alice", "--json").exit_code in (0, 3)
    # sync asks X; so does `check` of someone whose id X must give.
    for args in (("sync", "--json"), ("check", "bob", "--json")):
        r = cli(*args)
        assert r.exit_code == 4, r
        error = json.loads(r.stderr)["error"]
        assert error["code"] == "E_ACCOUNT_MISMATCH" and "@brand_a" in error["message"]


def test_a_login_records_the_account_in_the_file_and_the_store_checks_it(cli, db):
    assert cli("contacts", "add", "alice").exit_code == 0
    db("INSERT INTO sync_state (key, value) VALUES ('me_id', '1500')")
    paths = Paths.resolve("default")
    save_credentials(paths.credentials_file, Credentials(
        kind="oauth2", access_token="a" * 30, user_id="1600", username="brand_b"))
    r = cli("sync", "--json")
    assert r.exit_code == 4 and json.loads(r.stderr)["error"]["code"] == "E_ACCOUNT_MISMATCH"
