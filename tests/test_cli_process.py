"""The installed `dmtool` as a subprocess: real exit codes, real streams, real concurrency."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from dmtool.paths import Paths
from tests.conftest import dmtool_command


def test_exit_codes_0_1_2_4(run):
    ok = run("contacts", "add", "alice", "--json")
    assert ok.exit_code == 0, ok
    assert json.loads(ok.stdout)["handle"] == "alice"

    missing = run("contacts", "show", "nobody")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: no contact @nobody")

    bad_flag = run("contacts", "list", "--no-such-flag")
    assert bad_flag.exit_code == 2

    cfg = Paths.resolve("default").config_file
    cfg.write_text("[policy\n")
    broken = run("contacts", "list", "--json")
    assert broken.exit_code == 4
    assert broken.stdout == ""
    assert json.loads(broken.stderr)["error"]["code"] == "E_CONFIG"


def test_json_stdout_is_only_json(run):
    run("contacts", "add", "alice")
    for args in (["contacts", "list", "--json"], ["contacts", "show", "alice", "--json"],
                 ["paths", "--json"], ["config", "show", "--json"], ["check", "alice", "--json"]):
        r = run(*args)
        assert r.exit_code in (0, 3), (args, r.stderr)  # check refuses: still JSON
        assert isinstance(json.loads(r.stdout), dict | list), args  # all of stdout, one document


def test_no_traceback_for_bad_input(run, tmp_path: Path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("handle\n!!!\n")
    bad_json = tmp_path / "bad.json"
    bad_json.write_bytes(b"\xff\xfe[")
    cases = [
        ["contacts", "show", "@"],
        ["contacts", "add", "x" * 60],
        ["contacts", "import", str(bad_csv)],
        ["contacts", "import", str(bad_json)],
        ["contacts", "import", str(tmp_path)],
        ["contacts", "import", str(tmp_path / "none.csv")],
        ["contacts", "export", "--format", "xml"],
        ["config", "set", "nope", "1"],
        ["config", "set", "policy.daily_sends", "1e9"],
        ["--profile", "a/b", "contacts", "list"],
        ["db", "backup", str(tmp_path)],
        ["contacts", "tag", "nobody", "x"],
    ]
    for args in cases:
        r = run(*args)
        assert r.exit_code != 0, args
        assert "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.strip(), args


def test_version_and_module_entry(run):
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.startswith("dmtool ")
    import sys

    p = subprocess.run([sys.executable, "-m", "dmtool", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == r.stdout


def test_concurrent_adds_both_succeed(run):
    run("contacts", "list")  # create the store first, as a user would have
    procs = [subprocess.Popen(dmtool_command() + ["contacts", "import", "-", "--format", "csv"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    payloads = ["handle\n" + "\n".join(f"p{i}_{n}" for n in range(300)) + "\n" for i in range(2)]
    outs = [p.communicate(payloads[i], timeout=60) for i, p in enumerate(procs)]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
    assert len(json.loads(run("contacts", "list", "--json").stdout)) == 600


def test_concurrent_first_open_and_add(run):
    procs = [subprocess.Popen(dmtool_command() + ["contacts", "add", f"u{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert len(json.loads(run("contacts", "list", "--json").stdout)) == 4


def test_usage_errors_are_json_with_json(run):
    r = run("inbox", "--limit", "1000001", "--json")
    assert r.exit_code == 2 and r.stdout == ""
    assert json.loads(r.stderr)["error"]["code"] == "E_USAGE"


def test_an_argument_that_is_not_utf8_is_bad_input(run):
    import os
    import subprocess

    from tests.conftest import dmtool_command

    run("contacts", "add", "bob")
    p = subprocess.run([os.fsencode(a) for a in dmtool_command()]
                       + [b"contacts", b"note", b"bob", b"\xff\xfe bad"],
                       capture_output=True, stdin=subprocess.DEVNULL)
    assert p.returncode == 1
    assert b"UTF-8" in p.stderr and b"Traceback" not in p.stderr


def test_a_closed_pipe_is_not_an_error(run):
    import subprocess

    from tests.conftest import dmtool_command

    rows = "handle,name\n" + "".join(f"user{i},Someone with a long name {i}\n" for i in range(4000))
    assert run("contacts", "import", "-", "--format", "csv", input=rows).exit_code == 0
    # more than a pipe buffer of output, and a reader that stops after one line
    p = subprocess.run(" ".join(dmtool_command()) + " contacts list | head -1", shell=True,
                       capture_output=True, text=True)
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr
