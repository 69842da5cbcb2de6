"""`dmtool send`: the installed command in subprocesses, on a sandbox profile.

Every test counts the DMs the sandbox X actually holds: a send is only right if
exactly the expected number of DMs exists afterwards.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import timedelta

import pytest

from dmtool.config import Config
from dmtool.paths import Paths
from dmtool.x.sandbox import SandboxWorld
from tests.conftest import dmtool_command
from tests.test_drafts import ME, add_talking_contact


def sandbox_world() -> SandboxWorld:
    paths = Paths.resolve("default")
    paths.ensure()
    Config.load(paths.config_file).set("backend", "sandbox")
    world = SandboxWorld.create(paths.sandbox_file)
    world.set_me(ME, "you", "You (sandbox)")
    return world


def talking_contact(world: SandboxWorld, handle: str, name: str) -> str:
    """Someone who DMed us on the (sandbox) X and is in the store: not a first contact."""
    uid = world.add_user(handle, name)
    event = world.incoming_dm(uid, "Hi! Could you tell me more?", at=world.now() - timedelta(hours=1))
    add_talking_contact(handle, name, uid, event_id=event)
    return uid


def approved_draft(cli, handle: str, text: str) -> str:
    r = cli("draft", handle, text, "--json")
    assert r.exit_code == 0, r
    did = str(r.json()["id"])
    r = cli("review", did, "--approve")
    assert r.exit_code == 0, r
    return did


def outbound(world: SandboxWorld, uid: str) -> list[dict]:
    return [e for e in world.dms_with(uid) if e["sender_id"] == ME]


def draft(cli, did: str) -> dict:
    return cli("drafts", "show", did, "--json").json()


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(dmtool_command() + list(args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def error_code(stderr: str) -> str:
    return json.loads(stderr.strip().splitlines()[-1])["error"]["code"]


@pytest.fixture
def world() -> SandboxWorld:
    return sandbox_world()


def test_send_json_stores_the_message_and_audits(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the schedule is attached below.")
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert set(data) >= {"id", "handle", "status", "dm_event_id", "dm_conversation_id"}
    sent = outbound(world, uid)
    assert len(sent) == 1 and sent[0]["text"] == "Thanks Alice, the schedule is attached below."
    assert (data["status"], data["dm_event_id"]) == ("sent", sent[0]["id"])
    assert data["dm_conversation_id"] == sent[0]["dm_conversation_id"]
    shown = cli("contacts", "show", "alice", "--json").json()
    assert shown["messages"][-1]["id"] == sent[0]["id"]
    assert cli("log", "--json").json()[0]["action"] == "sent"

    human = run("send", did, "--yes")  # already sent: nothing happens twice
    assert human.exit_code == 1 and "already sent" in human.stderr
    assert len(outbound(world, uid)) == 1

    did2 = approved_draft(cli, "alice", "And the venue map is on the website.")
    human = run("send", did2, "--yes")
    assert human.exit_code == 0, human
    assert "sandbox" in human.stdout and "sent draft" in human.stdout


def test_two_sends_at_once_send_one_dm(cli, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, see you at the workshop.")
    world.hang_after_send(1.0)  # keep the first send in flight while the second arrives
    procs = [spawn("send", did, "--yes", "--json") for _ in range(2)]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for rc, _, err in results if rc == 1)
    assert error_code(loser) == "E_ALREADY_SENT"
    assert len(outbound(world, uid)) == 1
    assert draft(cli, did)["status"] == "sent"


def test_a_draft_in_flight_elsewhere_is_already_sent_not_its_own_duplicate(cli, world,
                                                                          monkeypatch):
    """The race behind the flaky two-sends test, made deterministic: the second
    send read the draft as approved, then the first one started sending it. The
    draft's own send must not count as a duplicate of itself: the second send
    ends with E_ALREADY_SENT (exit 1), not E_DUPLICATE (exit 3), and no refusal
    is audited."""
    from dmtool.services import send as send_service
    from dmtool.store import drafts as dstore

    talking_contact(world, "alice", "Alice Smith")
    did = int(approved_draft(cli, "alice", "Thanks Alice, see you at the workshop."))
    first = cli("send", str(did), "--yes", "--json")
    assert first.exit_code == 0, first
    real_get = dstore.get
    reads = []

    def read_before_the_first_send(conn, draft_id):
        """The second send's first read of the draft came before the first send."""
        d = real_get(conn, draft_id)
        reads.append(draft_id)
        return dstore.Draft(**{**d.__dict__, "status": "approved"}) if len(reads) == 1 else d

    monkeypatch.setattr(send_service.dstore, "get", read_before_the_first_send)
    second = cli("send", str(did), "--yes", "--json")
    assert second.exit_code == 1, second
    assert json.loads(second.stderr)["error"]["code"] == "E_ALREADY_SENT"
    assert [e["action"] for e in cli("log", "--json").json()].count("refused") == 0


def test_send_killed_after_the_request_then_send_reconciles(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, here are the details.")
    world.hang_after_send(60)
    p = spawn("send", did, "--yes")
    try:
        deadline = time.monotonic() + 30
        while not outbound(world, uid):  # the DM reached X; no answer has come back
            assert time.monotonic() < deadline, "the send never reached the sandbox"
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        assert draft(cli, did)["status"] == "sending"
    finally:
        p.kill()
        p.wait(timeout=10)
    assert draft(cli, did)["status"] == "sending"  # the crash left it in flight

    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 0, r
    assert r.json()["reconciled"] is True
    sent = outbound(world, uid)
    assert len(sent) == 1
    shown = draft(cli, did)
    assert (shown["status"], shown["dm_event_id"]) == ("sent", sent[0]["id"])
    assert cli("contacts", "show", "alice", "--json").json()["messages"][-1]["id"] == sent[0]["id"]
    assert run("send", did, "--yes").exit_code == 1  # and never again
    assert len(outbound(world, uid)) == 1


def test_timeout_marks_unknown_then_send_reconciles_without_a_second_dm(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the link is on its way.")
    world.timeout_after_send()
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 5, r
    assert error_code(r.stderr) == "E_SEND_UNKNOWN"
    assert f"dmtool send {did}" in r.stderr
    assert draft(cli, did)["status"] == "unknown"
    assert len(outbound(world, uid)) == 1

    human = run("send", did, "--yes")
    assert human.exit_code == 0, human
    assert "already reached" in human.stdout and "sandbox" in human.stdout
    assert draft(cli, did)["status"] == "sent"
    assert len(outbound(world, uid)) == 1


def test_unknown_but_absent_fails_and_needs_a_new_approval(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, more soon.")
    world.fail_next(503, method="POST", path_contains="/messages")  # X failed before storing it
    r = run("send", did, "--yes")
    assert r.exit_code == 5, r
    assert draft(cli, did)["status"] == "unknown"

    r = run("send", did, "--yes", "--json")  # reconcile: confirmed absent, and stop there
    assert r.exit_code == 1 and error_code(r.stderr) == "E_NOT_DELIVERED"
    shown = draft(cli, did)
    assert (shown["status"], shown["reason"]) == ("failed", "not delivered (confirmed absent)")
    assert outbound(world, uid) == []

    r = run("send", did, "--yes", "--json")  # no new attempt without a new approval
    assert r.exit_code == 1 and error_code(r.stderr) == "E_NOT_APPROVED"
    assert cli("review", did, "--approve").exit_code == 0
    assert run("send", did, "--yes").exit_code == 0
    assert len(outbound(world, uid)) == 1


def test_403_fails_the_draft_and_closes_dms(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, one more thing.")
    world.forbid_dm_to(uid)
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 3, r
    assert error_code(r.stderr) == "E_DM_CLOSED"
    assert draft(cli, did)["status"] == "failed"
    assert cli("contacts", "show", "alice", "--json").json()["dm_closed_at"]
    assert outbound(world, uid) == []
    assert "E_DM_CLOSED" in {r["code"] for r in cli("check", "alice", "--json").json()["reasons"]}


def test_429_keeps_the_draft_approved_and_pauses(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, noted.")
    world.fail_next(429, method="POST", path_contains="/messages", reset_in=600)
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 5, r
    assert error_code(r.stderr) == "E_RATE_LIMITED"
    assert draft(cli, did)["status"] == "approved"
    assert outbound(world, uid) == []
    # The pause is remembered: the next send is refused before it reaches X.
    requests = world.requests_count()
    r = run("send", did, "--yes")
    assert r.exit_code == 5 and "sandbox" in r.stderr
    assert world.requests_count() == requests
    assert outbound(world, uid) == []


def test_off_a_terminal_send_needs_yes(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice.")
    r = run("send", did)
    assert r.exit_code == 2
    assert "--yes" in r.stderr
    assert outbound(world, uid) == []
    assert draft(cli, did)["status"] == "approved"


def test_first_contact_with_yes_is_refused(cli, run, world):
    uid = world.add_user("bob", "Bob Brown")
    cli("contacts", "add", "bob", "--name", "Bob Brown")
    cli("contacts", "engage", "bob", "--evidence", "asked me to DM him the slides")
    did = approved_draft(cli, "bob", "Hi Bob, I'm Ann from the meetup. The slides are ready.")
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 3, r
    assert error_code(r.stderr) == "E_FIRST_CONTACT_CONFIRM"
    assert "terminal" in json.loads(r.stderr)["error"]["message"]
    assert outbound(world, uid) == []
    assert draft(cli, did)["status"] == "approved"
    assert cli("log", "--json").json()[0]["codes"] == ["E_FIRST_CONTACT_CONFIRM"]


def test_dry_run_sends_nothing(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, talk soon.")
    r = run("send", did, "--dry-run", "--json")
    assert r.exit_code == 0, r
    assert r.json()["dry_run"] is True and r.json()["status"] == "approved"
    human = run("send", did, "--dry-run", "--yes")
    assert human.exit_code == 0 and "nothing was sent (sandbox)" in human.stdout
    assert outbound(world, uid) == []
    assert draft(cli, did)["status"] == "approved"
    # A dry run runs the checks: an unapproved draft is refused like a real send.
    r = cli("draft", "alice", "Not approved yet.", "--json")
    assert run("send", str(r.json()["id"]), "--dry-run").exit_code == 1


def test_opted_out_after_approval_is_refused(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, one last detail.")
    assert cli("contacts", "optout", "alice", "--yes").exit_code == 0
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 3, r
    err = json.loads(r.stderr)["error"]
    # The traffic cop: the consent state changed after the approval. What the
    # policy says now is among the reasons.
    assert err["code"] == "E_CONVERSATION_MOVED"
    assert "E_OPTED_OUT" in {x["code"] for x in err["reasons"]}
    assert outbound(world, uid) == []
    assert draft(cli, did)["status"] == "draft"  # back in review
    entry = cli("log", "--json").json()[0]
    assert (entry["action"], entry["detail"]["command"]) == ("refused", "send")
    assert entry["codes"] == ["E_CONVERSATION_MOVED", "E_OPTED_OUT"]


def test_edited_after_approval_is_not_sendable(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice.")
    cli("drafts", "edit", did, "--text", "Thanks Alice, changed.")
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 1 and error_code(r.stderr) == "E_NOT_APPROVED"
    assert outbound(world, uid) == []


def test_send_resolves_a_missing_user_id(cli, run, world):
    uid = world.add_user("erin", "Erin Gray")
    world.incoming_dm(uid, "hello", at=world.now() - timedelta(hours=1))
    cli("contacts", "add", "erin", "--name", "Erin Gray")
    cli("contacts", "engage", "erin", "--evidence", "asked me to DM her")
    cli("contacts", "engage", "erin", "--kind", "offline", "--evidence", "signed up at the fair")
    did = approved_draft(cli, "erin", "Hi Erin, I'm Ann from the fair. Here are the dates.")
    assert run("send", did, "--dry-run", "--yes").exit_code == 0  # resolves, sends nothing
    assert cli("contacts", "show", "erin", "--json").json()["user_id"] == uid
    assert outbound(world, uid) == []


def test_lock_held_elsewhere_is_busy(cli, world):
    from dmtool.appstate import AppState
    from dmtool.errors import Busy
    from dmtool.services.send import send_lock
    from tests.conftest import profile_store

    st = AppState()
    other = profile_store()  # another process's connection to the same store
    with other.lock("send"):
        with pytest.raises(Busy), send_lock(st, timeout=0.2):
            pass
        assert not st.store.lock_held("send")
    other.close()  # the holder is gone
    with send_lock(st, timeout=0.2):
        assert st.store.lock_held("send")
    st.close()


def test_reconcile_pages_back_past_newer_messages(cli, run, world):
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the form is attached.")
    world.timeout_after_send()
    assert run("send", did, "--yes").exit_code == 5
    for n in range(8):  # she answered a lot before we looked: our DM is on the second page
        world.incoming_dm(uid, f"reply {n}")
    world.reset_requests_log()
    r = run("send", did, "--yes", "--json")
    assert r.exit_code == 0, r
    assert r.json()["reconciled"] is True
    assert len(outbound(world, uid)) == 1
    reads = [q for q in world.requests_log() if "dm_events" in q["path"]]
    assert [int(q["query"]["max_results"]) for q in reads] == [5, 25]  # small pages first


def test_a_draft_being_sent_is_no_duplicate_of_itself_but_of_any_other(cli, world):
    """While one process sends a draft (`sending`, committed before the request),
    another judging that same draft must not see it as a duplicate of itself;
    any other draft with the same text still is one."""
    from dmtool.appstate import AppState
    from dmtool.services import drafting
    from dmtool.store import drafts as dstore
    from dmtool.timeutil import fmt, now

    talking_contact(world, "alice", "Alice Smith")
    text = "Thanks Alice, see you at the workshop."
    did = int(approved_draft(cli, "alice", text))
    other = int(approved_draft(cli, "alice", text.lower()))  # the same text, normalised
    st = AppState()
    with st.store.tx() as conn:
        assert dstore.start_send(conn, did, text=text, first_contact=False, now=fmt(now()) or "")
    conn = st.store.conn
    own = drafting.view(conn, st, dstore.get(conn, did))
    assert "E_DUPLICATE" not in {r.code for r in own.decision.reasons}
    theirs = drafting.view(conn, st, dstore.get(conn, other))
    assert "E_DUPLICATE" in {r.code for r in theirs.decision.reasons}
    st.close()
