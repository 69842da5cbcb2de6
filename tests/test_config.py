from __future__ import annotations

import os
import stat
from pathlib import Path

from dmtool.paths import Paths


def config_file() -> Path:
    return Paths.resolve("default").config_file


def test_set_get_round_trip(cli):
    assert cli("config", "set", "policy.daily_sends", "10").exit_code == 0
    r = cli("config", "get", "policy.daily_sends")
    assert r.stdout.strip() == "10"
    assert "daily_sends = 10" in config_file().read_text()
    assert stat.S_IMODE(os.stat(config_file()).st_mode) == 0o600
    shown = cli("config", "show", "--json").json()
    assert shown["policy.daily_sends"] == 10
    assert shown["policy.consent_days"] == 90  # defaults shown too


def test_set_list_and_bool(cli):
    assert cli("config", "set", "identity.names", "Ana, Acme team").exit_code == 0
    assert cli("config", "get", "identity.names", "--json").json() == ["Ana", "Acme team"]
    assert cli("config", "set", "autoack.text", "Thanks, we read every DM. Ana").exit_code == 0
    assert cli("config", "set", "autoack.enabled", "yes").exit_code == 0
    assert cli("config", "get", "autoack.enabled").stdout.strip() == "true"


def test_unknown_key_named(cli):
    r = cli("config", "set", "policy.dayly_sends", "3")
    assert r.exit_code == 1  # bad input on the command line (E_INPUT); 4 is for config.toml
    assert "policy.dayly_sends" in r.stderr
    assert not config_file().exists()


def test_wrong_type_named(cli):
    r = cli("config", "set", "policy.daily_sends", "many")
    assert r.exit_code == 1
    assert "policy.daily_sends" in r.stderr and "whole number" in r.stderr


def test_ceiling_refused_when_set(cli):
    r = cli("config", "set", "policy.daily_sends", "101")
    assert r.exit_code == 1
    assert "ceiling" in r.stderr
    assert cli("config", "set", "policy.daily_sends", "100").exit_code == 0
    assert cli("config", "set", "policy.max_unanswered", "4").exit_code == 1
    assert cli("config", "set", "policy.daily_first_contacts", "21").exit_code == 1


def test_ceiling_refused_when_loaded(cli):
    f = config_file()
    f.parent.mkdir(parents=True)
    f.write_text("[policy]\nmax_unanswered = 9\n")
    r = cli("contacts", "list")
    assert r.exit_code == 4
    assert "policy.max_unanswered" in r.stderr and str(f) in r.stderr


def test_unknown_key_in_file(cli):
    f = config_file()
    f.parent.mkdir(parents=True)
    f.write_text('backend = "sandbox"\n[policy]\nfoo = 1\n')
    r = cli("contacts", "list")
    assert r.exit_code == 4
    assert "policy.foo" in r.stderr


def test_broken_toml_names_file_and_line(cli):
    f = config_file()
    f.parent.mkdir(parents=True)
    f.write_text('backend = "sandbox"\n[policy\ndaily_sends = 3\n')
    r = cli("contacts", "list", "--json")
    assert r.exit_code == 4
    assert r.stdout == ""
    assert str(f) in r.stderr and "line 2" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_backend_choice(cli):
    r = cli("config", "set", "backend", "mastodon")
    assert r.exit_code == 1 and "backend" in r.stderr


def test_profiles_are_separate(cli, dmtool_home):
    assert cli("--profile", "work", "config", "set", "policy.daily_sends", "7").exit_code == 0
    assert cli("config", "get", "policy.daily_sends").stdout.strip() == "20"
    assert cli("--profile", "work", "config", "get", "policy.daily_sends").stdout.strip() == "7"
    r = cli("config", "get", "policy.daily_sends", env={"DMTOOL_PROFILE": "work"})
    assert r.stdout.strip() == "7"
    assert cli("--profile", "../evil", "paths").exit_code == 2


def test_paths_under_dmtool_home(cli, dmtool_home):
    data = cli("paths", "--json").json()
    for key in ("config_dir", "data_dir", "state_dir", "db_file", "credentials_file"):
        assert data[key].startswith(str(dmtool_home))
    assert data["profile"] == "default"
