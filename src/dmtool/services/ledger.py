"""The ledger of requests to X, and the budget gate in front of them.

Every service reaches X through `client(st)`: the profile's client with this
invocation's Ledger attached, as an observer (x/observe.py: each request's
RequestRecord, also what `-v` logs) and as a gate (each request's
RequestPlan, before it leaves). x/ never sees the store.

A request is written to the store in the transaction that stores what it
brought: the Ledger holds it until the next transaction commits (a store
commit hook), so a page of DMs and the request that read it go in together
or not at all. Requests whose answer stores nothing (a failure, a lookup that
finds no one) go in with the next transaction, or when the command ends
(AppState.close). Sandbox requests are marked sandbox; the budget counts
the requests of the profile's own backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from dmtool import timeutil
from dmtool.errors import DmtoolError
from dmtool.services import budget
from dmtool.store import ledger as lstore

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.store.sql import Conn
    from dmtool.x.observe import RequestPlan, RequestRecord
    from dmtool.x.types import XClient

log = logging.getLogger("dmtool.ledger")

K_PRUNED = "ledger_pruned_on"  # sync_state: the UTC day the ledger was last pruned
SEND_ENDPOINT = "/2/dm_conversations/with/:participant_id/messages"


@dataclass
class _Pending:
    request: lstore.Request
    billable: dict[str, int]  # the estimate when it was recorded (for the budget)


@dataclass
class Totals:
    """What this invocation's requests brought, for a command's own report."""

    requests: int = 0
    raw: dict[str, int] = field(default_factory=lambda: dict.fromkeys(lstore.KINDS, 0))
    billable: dict[str, int] = field(default_factory=lambda: dict.fromkeys(lstore.KINDS, 0))


class Ledger:
    """One invocation's recorder (RequestObserver), budget gate (RequestGate)
    and store commit hook."""

    def __init__(self, st: AppState) -> None:
        self.store = st.store
        self.sandbox = st.sandbox
        self.prices = budget.Prices.from_config(st.config)
        self.limits = budget.Limits.from_config(st.config)
        self.keep_days = int(st.config.get("x.ledger.keep_days"))
        self.pending: list[_Pending] = []
        self.totals = Totals()
        self.clients: list[XClient] = []
        self._pruned = False
        self.store.commit_hooks.append(self)

    # --- the recorder -------------------------------------------------------------------

    def record(self, rec: RequestRecord) -> None:
        """A request X answered (or did not): kept until the next commit."""
        now = timeutil.now()
        day = budget.utc_day(now)
        billed = rec.billed()
        reads = {k: ids for k, ids in billed.items() if k in lstore.READS}
        request = lstore.Request(
            at=timeutil.fmt(now) or "", day=day, sandbox=self.sandbox,
            family=rec.family or "auth", method=rec.method, endpoint=rec.endpoint,
            status=rec.status, error=rec.error, reads=reads,
            sends=len(billed.get("sends", ())))
        estimate = {k: len(self._unread(day, k, ids)) for k, ids in reads.items()}
        estimate["sends"] = request.sends
        self.pending.append(_Pending(request, estimate))
        self.totals.requests += 1
        for k in lstore.KINDS:
            self.totals.raw[k] += len(set(reads.get(k, ()))) if k in lstore.READS \
                else request.sends
            self.totals.billable[k] += estimate.get(k, 0)

    def _unread(self, day: str, kind: str, ids: tuple[str, ...]) -> set[str]:
        """The ids not read yet on `day`: neither written nor pending."""
        unread = set(ids) - lstore.read_on(self.store.conn, day, self.sandbox, kind, ids)
        for p in self.pending:
            if p.request.day == day:
                unread -= set(p.request.reads.get(kind, ()))
        return unread

    def unknown_send(self, draft_id: int) -> None:
        """The send just made has no known outcome (a timeout, a 5xx, a cut-off
        answer): it counts one send until reconciliation settles it
        (`settle_send`)."""
        for p in reversed(self.pending):
            if p.request.method == "POST" and p.request.endpoint == SEND_ENDPOINT:
                p.request.sends = 1
                p.request.draft_id = draft_id
                p.billable["sends"] = 1
                return

    # --- the store commit hook ----------------------------------------------------------

    def write(self, conn: Conn) -> None:
        for p in self.pending:
            lstore.add(conn, p.request)
        if self.pending and not self._pruned:
            self._prune(conn)

    def committed(self) -> None:
        self.pending.clear()

    def flush(self) -> None:
        """Write what is still pending, in a transaction of its own (the command
        ends, or it is about to report). Never raises: the command's own
        outcome matters more than a ledger row."""
        if not self.pending:
            return
        try:
            with self.store.tx():
                pass  # the commit hook writes them
        except DmtoolError as e:
            log.debug("ledger: %d request(s) not recorded: %s", len(self.pending), e.message)

    def _prune(self, conn: Conn) -> None:
        """Once a UTC day: requests older than x.ledger.keep_days become daily totals."""
        self._pruned = True
        now = timeutil.now()
        today = budget.utc_day(now)
        row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (K_PRUNED,)).fetchone()
        if row is not None and row[0] == today:
            return
        before = (now.date() - timedelta(days=self.keep_days)).isoformat()
        lstore.prune(conn, before)
        self.store.set_state(K_PRUNED, today)

    # --- the budget gate ----------------------------------------------------------------

    def periods(self) -> list[budget.Period]:
        pending: dict[str, int] = {}
        for p in self.pending:
            for k, n in p.billable.items():
                pending[k] = pending.get(k, 0) + n
        return budget.periods(self.store.conn, sandbox=self.sandbox, prices=self.prices,
                              limits=self.limits, now=timeutil.now(), pending=pending)

    def worst(self, plan: RequestPlan) -> float:
        return self.prices.cost(plan.worst())

    def gate(self, plan: RequestPlan) -> None:
        """Before each request: refused (BudgetExceeded) when its worst case
        could take spending past a budget."""
        if not self.limits.any:
            return
        worst = self.worst(plan)
        if worst > 0:
            budget.check(self.periods(), worst)

    def fit(self, wanted: int, floor: int, plan: Callable[[int], RequestPlan],
            what: str = "the next request to X") -> int:
        """The largest size from `floor` to `wanted` (a page, a lookup's ids)
        whose worst case fits the budgets; BudgetExceeded when not even
        `floor` does. Without a budget: `wanted`."""
        if not self.limits.any:
            return wanted
        ps = self.periods()
        left = budget.room(ps)
        size = max(wanted, floor)
        while left is not None and size > floor and \
                self.worst(plan(size)) > left + budget.EPSILON:
            size -= 1
        budget.check(ps, self.worst(plan(size)), what)
        return size


def of(st: AppState) -> Ledger:
    """This invocation's ledger (made once, flushed when the command ends)."""
    found = st.extension("ledger")
    if isinstance(found, Ledger):
        return found
    led = Ledger(st)
    st.set_extension("ledger", led, on_close=led.flush)
    return led


def attach(st: AppState, client: XClient) -> XClient:
    """Record `client`'s requests in the ledger and put the budget before them."""
    led = of(st)
    if not any(c is client for c in led.clients):
        client.observe(led.record)
        client.gate(led.gate)
        led.clients.append(client)
    return client


def client(st: AppState) -> XClient:
    """The X client services use: the profile's, with the ledger and the budget."""
    return attach(st, st.client())


def settle_send(st: AppState, conn: Conn, draft_id: int, *,
                delivered: bool) -> None:
    """Reconciliation settled a send whose outcome was unknown: it counts one
    send if it was delivered, none if X confirms it never arrived. A send cut
    short by a crash left no request behind: found delivered, it is recorded
    now (one send, no answer)."""
    if lstore.settle_send(conn, draft_id, delivered=delivered) or not delivered:
        return
    now = timeutil.now()
    lstore.add(conn, lstore.Request(
        at=timeutil.fmt(now) or "", day=budget.utc_day(now), sandbox=st.sandbox,
        family="dm_send", method="POST", endpoint=SEND_ENDPOINT, status=None,
        error="reconciled", sends=1))
