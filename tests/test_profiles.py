"""Profiles (issue 11 point 10): `default` always exists, another exists once
it has a config.toml or a store; only a few commands create one; a typo in
--profile is an error that lists the profiles, never a new empty record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmtool.paths import Paths


def files_under(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")) if home.exists() else []


@pytest.mark.parametrize("args", [
    ["inbox"], ["contacts", "list", "--json"], ["log"], ["digest"], ["check", "bob"],
    ["config", "show"], ["config", "get", "policy.daily_sends"], ["contacts", "add", "bob"],
    ["thread", "bob"], ["db", "check"], ["auth", "status"], ["report"], ["drafts", "list"],
])
def test_a_profile_that_does_not_exist_is_an_error(cli, dmtool_home, args):
    assert cli("profiles", "add", "work").exit_code == 0
    before = files_under(dmtool_home)
    r = cli("--profile", "wrok", *args)
    assert r.exit_code == 1, r
    assert "no profile 'wrok' (profiles: default, work)" in r.stderr
    assert "dmtool profiles add wrok" in r.stderr
    assert files_under(dmtool_home) == before  # nothing created for the typo
    r = cli(*args, env={"DMTOOL_PROFILE": "wrok"})
    assert r.exit_code == 1 and "no profile 'wrok'" in r.stderr


def test_the_error_is_json_with_json(cli):
    r = cli("--profile", "nosuch", "contacts", "list", "--json")
    assert r.exit_code == 1 and r.stdout == ""
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "E_NOT_FOUND" and err["details"] == [{"profile": "default"}]


def test_where_things_would_go_is_no_error(cli, dmtool_home, store_engine):
    """paths, config path and db path print locations (to write a config.toml
    by hand, say) and create nothing."""
    for args in (["paths", "--json"], ["config", "path"], ["db", "path"]):
        r = cli("--profile", "later", *args)
        assert r.exit_code == 0, (args, r)
        if args == ["db", "path"] and store_engine == "pg":  # the server's URL, for every profile
            assert r.stdout.startswith("postgresql://")
        else:
            assert "later" in r.stdout
    assert files_under(dmtool_home) == []


def test_default_always_exists(cli):
    assert cli("inbox").exit_code == 0
    assert cli("profiles", "list", "--json").json() == [
        {"profile": "default", "current": True, "config": False, "store": True}]


def test_creating_commands(cli, dmtool_home, store_engine):
    assert cli("--profile", "a", "config", "set", "policy.daily_sends", "3").exit_code == 0
    assert cli("profiles", "add", "b").exit_code == 0
    # Its store; on a server's store, an empty config.toml says the profile exists.
    made = Paths.resolve("b").config_file if store_engine == "pg" else Paths.resolve("b").db_file
    assert made.exists()
    assert cli("-p", "c", "sync").exit_code == 4  # no credentials: but the name is accepted
    names = [p["profile"] for p in cli("profiles", "list", "--json").json()]
    assert names[0] == "default" and {"a", "b"} <= set(names)
    assert cli("--profile", "a", "inbox").exit_code == 0  # a config.toml makes a profile
    r = cli("profiles", "add", "a")
    assert r.exit_code == 1 and "exists already" in r.stderr


def test_a_profile_made_by_hand_exists(cli):
    f = Paths.resolve("manual").config_file
    f.parent.mkdir(parents=True)
    f.write_text('backend = "sandbox"\n')
    assert cli("-p", "manual", "contacts", "list").exit_code == 0
    assert "manual" in cli("profiles", "list").stdout


def test_profile_names(cli):
    for name in ("", "../evil", "a b", "-x"):
        r = cli("profiles", "add", "--", name)
        assert r.exit_code == 2, (name, r)
    r = cli("--profile", "", "inbox")
    assert r.exit_code == 2 and "profile name is empty" in r.stderr
    r = cli("inbox", "--profile", "")
    assert r.exit_code == 2 and "profile name is empty" in r.stderr


def test_profiles_list_text(cli, store_engine):
    cli("profiles", "add", "work")
    lines = cli("-p", "work", "profiles", "list").stdout.splitlines()
    if store_engine == "pg":  # every profile's store is the server's; work's config.toml says it exists
        assert lines == ["\tdefault\tno\tyes", "*\twork\tyes\tyes"]
    else:
        assert lines == ["\tdefault\tno\tno", "*\twork\tno\tyes"]


@pytest.mark.parametrize("name,ok", [
    ("work", True), ("a", True), ("Work-2.b_c", True), ("9lives", True), ("x" * 64, True),
    ("x" * 65, False), ("-work", False), (".hidden", False), ("_x", False), ("wo rk", False),
    ("work\n", False),  # a regex's `$` once let a trailing line break through
    ("wörk", False), ("work/..", False), ("ｗｏｒｋ", False),
])
def test_which_profile_names_are_valid(name: str, ok: bool) -> None:
    from dmtool.errors import UsageError
    from dmtool.paths import check_profile_name

    if ok:
        assert check_profile_name(name) == name
    else:
        with pytest.raises(UsageError):
            check_profile_name(name)
