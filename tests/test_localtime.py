"""Local time (issue 12, point 4): text output in the display zone
(display.timezone, else TZ, else the system's), JSON in RFC 3339 UTC, the
report's days in that zone, typed times read in it, and zoneinfo loaded only
by commands that print times."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dmtool import localtime
from dmtool.services.report import period
from dmtool.timeutil import parse_when
from dmtool.x.sandbox import SandboxWorld
from tests.xworld import ALICE, Cli, Clock, sync


@pytest.fixture
def talked(cli: Cli, world: SandboxWorld, clock: Clock) -> None:
    """Alice wrote at 2026-03-01T20:00Z (05:00 on 2 March in Tokyo); a draft
    approved at 2026-03-02T12:00Z (21:00 in Tokyo)."""
    world.incoming_dm(ALICE, "hello from far away", at=clock.ago(hours=16))
    sync(cli)
    assert cli("draft", "alice", "Thanks Alice, more on Monday.").exit_code == 0
    assert cli("review", "1", "--approve").exit_code == 0  # in the log at 12:00 UTC


def lines(cli: Cli, *args: str) -> str:
    r = cli(*args)
    assert r.exit_code == 0, r
    return r.stdout


def test_text_output_follows_tz_and_json_stays_utc(cli: Cli, talked: None,
                                                  monkeypatch: Any) -> None:
    utc = {cmd: lines(cli, *cmd) for cmd in (("inbox",), ("thread", "alice", "--peek"),
                                            ("drafts", "list"), ("log",),
                                            ("contacts", "show", "alice"))}
    assert "2026-03-01 20:00" in utc[("inbox",)]
    json_before = cli("inbox", "--json").json()
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert "2026-03-02 05:00" in lines(cli, "inbox")
    assert lines(cli, "thread", "alice", "--peek").startswith("2026-03-02T05:00:00+09:00\tin\t")
    assert "2026-03-02 21:00" in lines(cli, "drafts", "list")  # drafted at 12:00 UTC
    assert lines(cli, "log").startswith("2026-03-02 21:00:00\tapproved\t@alice")
    assert "2026-03-02 05:00" in lines(cli, "contacts", "show", "alice")
    assert "2026-03-02 05:00" in lines(cli, "digest", "--peek")
    assert cli("inbox", "--json").json() == json_before  # RFC 3339 UTC, whatever the zone
    assert json_before[0]["last_at"] == "2026-03-01T20:00:00.000Z"


def test_display_timezone_overrides_tz_and_is_checked(cli: Cli, talked: None,
                                                      monkeypatch: Any) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert cli("config", "set", "display.timezone", "Europe/Paris").exit_code == 0
    assert "2026-03-01 21:00" in lines(cli, "inbox")  # Paris: UTC+1 in March
    r = cli("config", "set", "display.timezone", "Mars/Olympus_Mons")
    assert r.exit_code == 1 and "unknown time zone 'Mars/Olympus_Mons'" in r.stderr, r  # E_INPUT
    assert cli("config", "get", "display.timezone").stdout.strip() == "Europe/Paris"
    assert cli("config", "set", "display.timezone", "").exit_code == 0  # back to TZ
    assert "2026-03-02 05:00" in lines(cli, "inbox")
    # a name edited by hand into config.toml is reported by the first command that
    # shows a time, naming the key; JSON output never needs a zone
    from dmtool.paths import Paths

    Paths.resolve("default").config_file.write_text(
        'backend = "sandbox"\n\n[display]\ntimezone = "Nowhere/Town"\n')
    r = cli("inbox")
    assert r.exit_code == 4 and "display.timezone" in r.stderr and "Nowhere/Town" in r.stderr
    assert cli("inbox", "--json").exit_code == 0


def test_report_days_are_local_days(cli: Cli, talked: None, monkeypatch: Any) -> None:
    utc = cli("report", "--days", "2", "--json").json()
    assert utc["timezone"] == "UTC" and utc["since"] == "2026-03-01T00:00:00.000Z"
    assert [(d["date"], d["in"]) for d in utc["messages"]["by_day"]] == [
        ("2026-03-01", 1), ("2026-03-02", 0)]
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    tokyo = cli("report", "--days", "2", "--json").json()
    # now (12:00 UTC) is 21:00 on the 2nd in Tokyo, and Alice wrote at 05:00 that day
    assert tokyo["timezone"] == "Asia/Tokyo" and tokyo["since"] == "2026-02-28T15:00:00.000Z"
    assert [(d["date"], d["in"]) for d in tokyo["messages"]["by_day"]] == [
        ("2026-03-01", 0), ("2026-03-02", 1)]
    assert cli("report", "--days", "2").stdout.splitlines()[-1] == "timezone\tAsia/Tokyo"
    from dmtool import output

    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    assert "(2026-03-01 to 2026-03-02, days in Asia/Tokyo)" in cli("report", "--days", "2").stdout


def test_report_days_follow_daylight_saving() -> None:
    ny = localtime.named("America/New_York")
    now = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # DST began on Sunday 8 March at 2:00
    dates, bounds = period(3, now, ny)
    assert dates == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert [b.isoformat() for b in bounds] == [
        "2026-03-07T05:00:00+00:00", "2026-03-08T05:00:00+00:00", "2026-03-09T04:00:00+00:00",
        "2026-03-10T04:00:00+00:00"]
    assert bounds[2] - bounds[1] == timedelta(hours=23)


# --- which zone ------------------------------------------------------------------------------


def test_the_zone_comes_from_the_setting_then_tz_then_the_system(
        tmp_path: Path, monkeypatch: Any) -> None:
    r = localtime.resolve
    assert r("Asia/Tokyo", {"TZ": "Europe/Paris"}).name == "Asia/Tokyo"
    assert r("", {"TZ": "Europe/Paris"}).name == "Europe/Paris"
    assert r("", {"TZ": ":Europe/Paris"}).name == "Europe/Paris"
    assert r("", {"TZ": ""}) == localtime.UTC_ZONE  # an empty TZ is UTC
    assert r("", {"TZ": "Etc/UTC"}) == localtime.UTC_ZONE
    posix = r("", {"TZ": "XYZ-9"})  # a POSIX rule, not a zone name: the C library's reading
    assert posix.local(datetime(2026, 1, 1, tzinfo=UTC)).utcoffset() is not None
    for bad in ("Not/AZone", "../../etc/passwd", "/etc/localtime", "Asia//Tokyo", "Asia/Tōkyō"):
        with pytest.raises(localtime.UnknownZone):
            r(bad, {})
    # no TZ: /etc/localtime, a link into the zone files, names the zone
    link = tmp_path / "localtime"
    target = Path("/usr/share/zoneinfo/America/Sao_Paulo")
    link.symlink_to(target)
    monkeypatch.setattr(localtime, "_SYSTEM_LINK", link)
    assert r("", {}).name == "America/Sao_Paulo"
    # a copied file (no link) still gives the right offsets
    link.unlink()
    link.write_bytes(target.read_bytes())
    monkeypatch.setattr(localtime, "_SYSTEM_NAME", tmp_path / "timezone")
    zone = r("", {})
    assert zone.name == "localtime"
    assert zone.local(datetime(2026, 7, 1, tzinfo=UTC)).utcoffset() == timedelta(hours=-3)
    # no /etc/localtime at all: UTC, as the C library assumes
    monkeypatch.setattr(localtime, "_SYSTEM_LINK", tmp_path / "missing")
    assert r("", {}) == localtime.UTC_ZONE


def test_typed_times_are_read_in_the_zone_unless_they_say_otherwise() -> None:
    tokyo = localtime.named("Asia/Tokyo").tz
    assert parse_when("2026-12-01", tokyo) == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert parse_when("2026-12-01 09:30", tokyo) == datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    assert parse_when("2026-12-01T09:30:15", tokyo) == datetime(2026, 12, 1, 0, 30, 15, tzinfo=UTC)
    assert parse_when("2026-12-01T09:30Z", tokyo) == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert parse_when("2026-12-01T09:30+01:00", tokyo) == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    for bad in ("tomorrow", "20261201", "2026-02-30", "2026-12-01T25:00", "12/01/2026", ""):
        with pytest.raises(ValueError):
            parse_when(bad, tokyo)


def test_display_helpers() -> None:
    z = localtime.named("Asia/Tokyo")
    assert z.show("2026-03-01T20:00:00.000Z") == "2026-03-02 05:00"
    assert z.show("2026-03-01T20:00:05.000Z", seconds=True) == "2026-03-02 05:00:05"
    assert z.show(None) == "" and z.show_date("2026-03-01T20:00:00.000Z") == "2026-03-02"
    assert z.stamp("2026-03-01T20:00:00.000Z") == "2026-03-02T05:00:00+09:00"
    assert z.midnight(date(2026, 3, 2)) == datetime(2026, 3, 1, 15, tzinfo=UTC)


# --- start-up: zoneinfo only where times are printed ------------------------------------------

PROBE = """
import sys
from dmtool.cli.app import main
sys.argv = ["dmtool", *{args!r}]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("ZONEINFO=" + str("zoneinfo" in sys.modules) + "\\n")
"""


def zoneinfo_loaded(home: Path, tz: str, *args: str) -> bool:
    env = {**os.environ, "DMTOOL_HOME": str(home), "TZ": tz}
    p = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, env=env)
    return [x for x in p.stderr.splitlines() if x.startswith("ZONEINFO=")][-1] == "ZONEINFO=True"


def test_zoneinfo_is_loaded_only_to_print_a_local_time(cli: Cli, talked: None,
                                                      dmtool_home: Path) -> None:
    for args in (["inbox", "--json"], ["thread", "alice", "--json", "--peek"],
                 ["digest", "--json", "--peek"], ["log", "--json"], ["drafts", "list", "--json"],
                 ["contacts", "list", "--json"], ["check", "alice", "--json"]):
        assert not zoneinfo_loaded(dmtool_home, "Asia/Tokyo", *args), args
    assert not zoneinfo_loaded(dmtool_home, "UTC", "inbox")  # UTC needs no zone files
    assert zoneinfo_loaded(dmtool_home, "Asia/Tokyo", "inbox")
