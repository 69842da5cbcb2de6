"""No path around the gate: every DM leaves through services/send.py, after the
policy decided, and a refusing policy means nothing is sent."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import dmtool
from dmtool import policy
from tests.test_send import approved_draft, outbound, sandbox_world, talking_contact

SRC = Path(dmtool.__file__).resolve().parent
DECIDERS = {"decide", "decide_autoack"}  # consent.decide, policy.decide(_autoack)


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            called = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if called == name:
                out.append(node)
    return out


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _innermost_function(tree: ast.AST, call: ast.Call) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    best = None
    for fn in _functions(tree):
        end = fn.end_lineno or fn.lineno
        if fn.lineno <= call.lineno <= end and (best is None or fn.lineno > best.lineno):
            best = fn
    return best


def _sources() -> dict[str, ast.Module]:
    return {str(p.relative_to(SRC)): ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
            for p in sorted(SRC.rglob("*.py"))}


def test_every_send_dm_call_is_in_send_service_after_a_policy_decision():
    sites = []
    for rel, tree in _sources().items():
        for call in _calls(tree, "send_dm"):
            sites.append((rel, call, tree))
    assert sites, "found no send_dm call at all: the test is looking in the wrong place"
    for rel, call, tree in sites:
        assert rel == "services/send.py", f"send_dm called outside the send service: {rel}:{call.lineno}"
        fn = _innermost_function(tree, call)
        assert fn is not None, f"send_dm at module level: {rel}:{call.lineno}"
        decisions = [c for name in DECIDERS for c in _calls(fn, name) if c.lineno < call.lineno]
        assert decisions, (f"{rel}:{call.lineno}: {fn.name}() calls send_dm without a policy "
                           "decision before it")


def test_nothing_else_reaches_the_send_endpoint():
    """Only the X client's send_dm may build the send request; nothing names the method
    indirectly (getattr) to get around the static check above."""
    for rel, tree in _sources().items():
        for call in _calls(tree, "create_direct_message"):
            fn = _innermost_function(tree, call)
            assert rel == "x/client.py" and fn is not None and fn.name == "send_dm", \
                f"create_direct_message used at {rel}:{call.lineno}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("send_dm", "create_direct_message"):
                raise AssertionError(f"{rel}:{node.lineno} names {node.value!r} as a string")


def _refused(d: policy.Decision) -> policy.Decision:
    return policy.Decision(allowed=False, first_contact=d.first_contact,
                           reasons=(*d.reasons, policy.Reason("E_OPTED_OUT", "refused by the test")),
                           evidence=d.evidence)


def test_a_refusing_policy_means_nothing_is_sent(cli, monkeypatch):
    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the notes are below.")
    real = policy.decide

    def refuse(*args, **kwargs):
        return _refused(real(*args, **kwargs))

    monkeypatch.setattr(policy, "decide", refuse)
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 3, r
    assert outbound(world, uid) == []
    assert cli("drafts", "show", did, "--json").json()["status"] == "approved"

    monkeypatch.setattr(policy, "decide", real)  # the same send goes once the gate says yes
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 0, r
    assert len(outbound(world, uid)) == 1


def test_the_last_check_under_the_lock_is_a_real_gate(cli, monkeypatch):
    """Earlier checks pass; the policy says no only right before the request (say an
    opt-out synced a moment ago): still nothing is sent."""
    world = sandbox_world()
    uid = talking_contact(world, "alice", "Alice Smith")
    did = approved_draft(cli, "alice", "Thanks Alice, the notes are below.")
    real = policy.decide

    def refuse_at_the_last_moment(*args, **kwargs):
        d = real(*args, **kwargs)
        if any(f.function == "_send_approved" for f in inspect.stack()):
            return _refused(d)
        return d

    monkeypatch.setattr(policy, "decide", refuse_at_the_last_moment)
    r = cli("send", did, "--yes", "--json")
    assert r.exit_code == 3, r
    assert outbound(world, uid) == []
    assert cli("drafts", "show", did, "--json").json()["status"] == "approved"
