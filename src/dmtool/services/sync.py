"""`dmtool sync`: pull DM events, mentions of you and your replies into the store.

Cost model (shared/spec/x-api.md): X bills every DM event read and
GET /2/dm_events has no since_id. So the DM walk reads newest first, stops at
the first event it already knows, and sizes each page to what is almost surely
still new (page_size): only the page that reaches that event reads old ones.
With steady traffic that is rarely more than PAGE_MARGIN events more than the
new ones. A burst (many DMs in seconds) whose beginning lies in a quiet stretch
looks the same, page after page, whether it began just past the oldest event
read or long before, so no sizing can avoid some waste there: a page bets at
most about BURST_RISK old events on it. Requests cost no money, but X allows
15 DM lookups per 15 minutes; a burst of 250 takes about 10 of them.
benchmarks/sync_cost.py measures both. Each page is committed as it arrives,
together with where the walk stands (and the ledger's record of the request
that read it), so a sync that is killed, rate-limited or stopped by the
budget halfway loses nothing and the next one neither duplicates nor skips.

X bills an event once per UTC day however often it is read (the same-day
rule), so the walk asks the ledger which events below the floor it already
read today: those are free, and a page may run into them at no cost
(`free_below`). The objective is the fewest billable reads, then the fewest
requests: a page is sized to what is almost surely new plus what is free,
and bets billable old events on a burst only as before (page_size). After
00:00 UTC nothing is free again, and the walk is as careful as ever. The
budget (services/budget.py) may shrink a page to what it can still pay for;
when not even the smallest page fits, the sync stops (E_BUDGET, exit 4) with
everything read so far kept.

sync_state keys used here:
- me_id, me_username: who we are (one /2/users/me per profile, ever).
- dm_hwm: the newest event id up to which every event is stored; dm_hwm_at:
  the time up to which that is known (the start of the walk that set it).
- dm_walk: JSON list of segments left by unfinished walks, newest first. Each
  says "events from `top` down to `bottom_at` are stored; continue below with
  `token`". A new walk stops at a segment's top and jumps to its token.
- dm_last_new: the new events the last complete walk found (sizes the next
  walk's first page when free events make a bigger one cost nothing).
- mentions_since, posts_since: since_id cursors; public_synced_at.
- autoack_pending: JSON list of {contact, at}: acknowledgements a budget held
  back (or a walk cut short before they could go), tried at the next sync.
- rate_limited_until.<family>: X's pauses (services/ratelimits.py).

Rate limits are per endpoint family. Sync cannot do without reading DMs
(dm_read), nor, before it knows whose account it is, without users/me: a pause
on those refuses the sync (exit 5) or, with --wait, is waited out. A pause on
timelines defers the public check, one on users stores new people by id
(`user_<id>`, named at a later sync), one on sending skips acknowledgements:
the sync goes on and reports what it held back (SyncResult.deferred).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from dmtool import actor, optout, timeutil
from dmtool.errors import (
    BudgetExceeded,
    ConfigError,
    InputError,
    NotFound,
    RateLimited,
)
from dmtool.models import Contact
from dmtool.services import budget, ledger, poller, ratelimits
from dmtool.services import hooks as inbound_hooks
from dmtool.services.identity import NAMING_BATCH, name_placeholders
from dmtool.store import contacts as cstore
from dmtool.store import ledger as lstore
from dmtool.store import messages as mstore
from dmtool.timeutil import fmt, parse_opt
from dmtool.x.observe import RequestPlan
from dmtool.x.types import POSTS_PAGE_MAX, POSTS_PAGE_MIN

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.store import Store
    from dmtool.store.sql import Conn, Locks
    from dmtool.x.types import DMEvent, Post, PostPage, XClient, XUser

K_ME_ID = "me_id"
K_ME_USERNAME = "me_username"
K_HWM = "dm_hwm"
K_ARCHIVE_ACCOUNT = "archive_account_id"  # set by `import archive` before any sync
K_HWM_AT = "dm_hwm_at"
K_WALK = "dm_walk"
K_MENTIONS = "mentions_since"
K_POSTS = "posts_since"
K_PUBLIC_AT = "public_synced_at"
K_LAST_NEW = "dm_last_new"
K_ACK_PENDING = "autoack_pending"

DM_WINDOW = timedelta(days=30)  # X serves DM events of the last 30 days only
# Mentions and own posts cost a request each even when nothing is new, so a
# sync checks them at most this often: a quiet cron sync stays one request.
FIRST_PUBLIC_PAGES = 2  # no cursor yet: the newest 200 are plenty of history
MAX_PUBLIC_PAGES = 5  # with a cursor: bound a backlog, then move the cursor on
MAX_RATE_WAITS = 3  # --wait: give up after this many rate-limit pauses

# Page sizing (see page_size), measured with benchmarks/sync_cost.py and a
# simulation of the walk over steady and bursty arrivals: steady traffic reads
# new + 1..4, a burst of 250 takes 10-11 requests, and a page that may run past
# the start of a burst reads at most BURST_RISK + PAGE_MARGIN old events (more
# only for bursts of over 240, or ones that lasted longer than the gap left).
SHADE_Z = 2.5  # standard deviations below the estimate of what is still new
PAGE_MARGIN = 4  # events a page may read past the estimate: a request saved
GROWTH = 4  # a page is at most this many times what the walk has read so far
SPLIT_Z = 3.5  # a rate change this many standard errors apart starts a new stretch
MIN_STRETCH = 4  # events in the shortest stretch whose rate is trusted
BURST_RISK = 30  # events a page may read on the guess that a burst goes on...
BURST_SHARE = 8  # ...or this share (1/8) of what the walk has read, if more
# A first page may take in this many events already read today (free): the
# last walk's news and a margin, so a busy account's sync is one request,
# while a quiet one reads no more than sync.first_page_size.
FREE_FIRST_PAGE = 20
SNOWFLAKE_EPOCH_MS = 1288834974657  # X ids: (ms since this epoch) << 22 | machine, sequence

Hook = Callable[["Conn", Contact, datetime], object]  # truthy: an autoack went out


class Progress(Protocol):
    """Where sync reports what it is doing. Transient lines may be overwritten
    (a spinner); the others are worth keeping in a log."""

    def __call__(self, text: str, *, transient: bool = True) -> None: ...


@dataclass
class SyncResult:
    backend: str
    dm_events_new: int = 0
    dm_events_read: int = 0
    mentions_new: int = 0
    replies_new: int = 0
    contacts_new: int = 0
    opted_out: list[str] = field(default_factory=list)
    optout_review: list[str] = field(default_factory=list)  # "please stop...": a person decides
    requests: int = 0
    dm_events_billable: int = 0  # of the events read, those X bills (the same-day rule)
    usd: float = 0.0  # what the sync's requests cost, an estimate (services/budget.py)
    autoacks_sent: int = 0
    # What a rate limit held back: {"what": public_check | user_names | autoacks,
    # "family": ..., "until": RFC 3339}.
    deferred: list[dict[str, str | None]] = field(default_factory=list)
    hooks: inbound_hooks.HookReport = field(default_factory=inbound_hooks.HookReport)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dm_events_new": self.dm_events_new,
            "dm_events_read": self.dm_events_read,
            "mentions_new": self.mentions_new,
            "replies_new": self.replies_new,
            "contacts_new": self.contacts_new,
            "opted_out": list(self.opted_out),
            "optout_review": list(self.optout_review),
            "requests": self.requests,
            "dm_events_billable": self.dm_events_billable,
            "usd": round(self.usd, 6),
            "autoacks_sent": self.autoacks_sent,
            "deferred": [dict(d) for d in self.deferred],
            "hooks": self.hooks.to_dict(),
            "backend": self.backend,
        }


def page_size(*, times: Sequence[datetime], floor_at: datetime | None, now: datetime,
              max_size: int, free: int = 0) -> int:
    """How many DM events to ask for in the next page (after the first).

    `free` is how many events from the floor down were already read this UTC
    day (free_below): reading them costs nothing, so a page may run that far
    past what is almost surely new. That part is safe whatever the estimate,
    so it is not held to GROWTH.

    `times` are when the new events read so far arrived, newest first; all of
    them are newer than the floor (the newest stored event, known complete up
    to `floor_at`). Only the page that reaches the floor reads old (billed,
    wasted) events, so a page asks for what is almost surely still new:

    - The rate of the stretch nearest the floor (see frontier_rate: after a
      burst, the burst's rate; past it, the steady rate again) says about
      `est` events lie between the oldest one read and the floor. Aim SHADE_Z
      standard deviations below it (Poisson noise plus the rate's own
      uncertainty) and add PAGE_MARGIN: one more small request is cheaper
      than a page of events we already have.
    - That assumes the stretch goes on down to the floor. When it was measured
      over a much shorter time than is left (a burst: 250 DMs in 5 seconds, the
      last sync 10 minutes ago), no page can tell where it began, and a full
      page would read up to 100 old events. So a page bets at most BURST_RISK
      events (or 1/BURST_SHARE of those read) on it, times 1 + span/gap: the
      longer the stretch has held compared with the gap, the likelier it holds
      to the floor.
    """
    if floor_at is None or floor_at <= now - DM_WINDOW:
        return max_size  # nothing stored within X's window: every event is new
    seen = len(times)
    if seen == 0:
        return max(1, min(max(PAGE_MARGIN, free), max_size))
    count, span = frontier_rate(times, now)
    gap = max((times[-1] - floor_at).total_seconds(), 0.0)
    est = count * gap / span
    sd = math.sqrt(est + est * est / count)
    sure = est - SHADE_Z * sd
    bet = max(BURST_RISK, seen / BURST_SHARE)
    # gap 0: the events read reach back past the floor's time (our clock ahead
    # of X's, or DMs that showed up late). Time says nothing about what is left
    # then: double what was read, up to the burst bet, rather than crawl 4
    # events a request.
    capped = min(sure, bet * (1 + span / gap)) if gap > 0 else min(bet, seen)
    want = max(0, math.floor(capped)) + PAGE_MARGIN
    # What is almost surely new, when the estimate holds (not a burst's bet),
    # plus the free events: no billable old event unless the estimate is wrong.
    # Past the most that can still be new (as far above the estimate as
    # `sure` is below it) a page would only read more free events: no request
    # saved, just raw reads, so it stops there.
    sure_new = max(0, math.floor(sure)) if gap > 0 and sure <= capped else 0
    most = math.ceil(est + SHADE_Z * sd) + PAGE_MARGIN if gap > 0 else sure_new + free
    free_size = min(sure_new + free, max(most, want))
    return max(1, min(max(min(want, GROWTH * seen), free_size), max_size))


def free_below(listed_today: Sequence[str], floor_id: int) -> int:
    """How many events from the floor down were read this UTC day.

    `listed_today` are the DM events sync's walks first read today (the
    ledger's reads of GET /2/dm_events). Each walk reads one unbroken run from
    X's newest event down past its floor, the newest event of the walk before;
    so today's runs join into one, from today's first walk's lowest event up,
    and every event of it at or below the floor is one X returns next."""
    return sum(1 for i in listed_today if i.isdigit() and int(i) <= floor_id)


def frontier_rate(times: Sequence[datetime], now: datetime) -> tuple[int, float]:
    """The stretch of `times` (newest first) nearest the floor over which
    events came at one rate: (how many events, over how many seconds).

    It starts with the MIN_STRETCH oldest events, timed from the event just
    newer than them (the whole walk from `now`), and doubles while the events
    it would take in came at the same rate: their log-rate may differ by
    SPLIT_Z standard errors (sqrt(1/a + 1/b) for counts a and b). So a burst
    is not averaged with the quiet before or the steady traffic after it.
    """
    n = len(times)

    def seconds(count: int) -> float:
        newer = now if count >= n else times[n - count - 1]
        return max((newer - times[-1]).total_seconds(), 0.001)  # ids have ms resolution

    count = min(n, MIN_STRETCH)
    while count < n:
        wider = min(n, 2 * count)
        added = max(seconds(wider) - seconds(count), 0.001)
        change = math.log((wider - count) / added * seconds(count) / count)
        if abs(change) > SPLIT_Z * math.sqrt(1 / count + 1 / (wider - count)):
            break
        count = wider
    return count, seconds(count)


def event_time(ev: DMEvent) -> datetime | None:
    """When an event was created, to the millisecond.

    X's created_at has whole seconds only, too coarse to time a burst; the id
    is a snowflake whose top bits are the creation time in milliseconds. The
    id's time is used when it agrees with created_at (an id that is no
    snowflake, or a sandbox event created out of order, falls back to it).
    """
    try:
        snow = datetime.fromtimestamp(((int(ev.id) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return ev.created_at
    if ev.created_at is None:
        return snow if int(ev.id) >> 22 else None  # a small id is no snowflake
    if abs(snow - ev.created_at) < timedelta(seconds=1):
        return snow
    return ev.created_at


def _spread(count: int, newest: datetime | None, oldest: datetime | None) -> list[datetime]:
    """`count` times evenly from `newest` down to `oldest`: the events of a
    stored segment the walk jumps over, as far as page sizing needs them."""
    if oldest is None or count <= 0:
        return []
    top = newest or oldest
    step = (top - oldest) / count
    return [top - step * (i + 1) for i in range(count)]


@contextlib.contextmanager
def sync_lock(store: Locks, what: str = "", holder: poller.Holder | None = None) -> Iterator[None]:
    """One sync per store at a time (freed if the holder dies: store.lock).
    A restore passes store.db.FileLocks: it takes the lock without the store.
    The holder (who, where, since when) is recorded where the next one finds
    it, so that it can say who holds the lock (SyncRunning, services/poller.py)."""
    from dmtool.locks import LockTimeout

    held = contextlib.ExitStack()
    try:
        held.enter_context(store.lock("sync", timeout=0))
    except LockTimeout:
        raise _running(what, poller.recorded(store)) from None
    with held:
        if holder is not None:
            poller.record(store, holder)
        yield


def _running(what: str, holder: poller.Holder | None) -> poller.SyncRunning:
    command = holder.command if holder else "sync"
    by = f" ({holder.describe(lambda at: at)})" if holder else ""
    return poller.SyncRunning(f"{what}another dmtool {command} is running for this store{by}",
                              holder, hint="try again when it has finished")


def _needed(store: Store, public: bool) -> list[str]:
    """The families a sync cannot do without: DM reads; user lookups while it
    does not know whose account it is; timelines when --public asks for them."""
    families = ["dm_read"]
    if not store.get_state(K_ME_ID):
        families.append("users")
    if public:
        families.append("timelines")
    return families


def run_sync(st: AppState, *, wait: bool, progress: Progress | None = None,
             autoack_hook: Hook | None = None, public: bool = False,
             sleep: Callable[[float], None] = time.sleep) -> SyncResult:
    """Sync the profile's store with X. Raises SyncRunning (services/poller.py), RateLimited and the X errors.

    With `wait`, a rate limit on a family the sync needs (stored or met on the
    way) is waited out with a countdown through `progress`, then the sync goes
    on where it stopped. Other families' limits only defer their part.
    `autoack_hook(conn, contact, message_at)` runs for each new inbound DM,
    after the page holding it is committed. Then, with the sync lock released,
    hooks.on_inbound runs for each new inbound DM (services/hooks.py).
    Everything it writes to the audit log is the `sync` actor's.
    """
    with actor.acting_as(actor.SYNC):
        result = _run_locked(st, wait=wait, progress=progress, autoack_hook=autoack_hook,
                             public=public, sleep=sleep)
        result.hooks = inbound_hooks.run_pending(st, say=progress)
    return result


def _run_locked(st: AppState, *, wait: bool, progress: Progress | None,
                autoack_hook: Hook | None, public: bool,
                sleep: Callable[[float], None]) -> SyncResult:
    prefix = "sandbox: " if st.sandbox else ""
    hint = "run `dmtool sync` after that time, or `dmtool sync --wait`"
    store = st.store
    with sync_lock(store, prefix, poller.me(st, "sync")):
        waits = 0
        syncer: _Sync | None = None
        while True:
            now = timeutil.now()
            paused = [(f, u) for f in _needed(store, public)
                      if (u := ratelimits.paused_until(store.conn, f, now)) is not None]
            if paused:
                family, until = max(paused, key=lambda p: p[1])
                if not wait or waits >= MAX_RATE_WAITS:
                    if family == "timelines":  # only --public needs it now
                        hint = ("without --public, `dmtool sync` reads your DMs now and checks "
                                "mentions later; or run `dmtool sync --public --wait`")
                    raise ratelimits.refusal(family, until, f"{prefix}sync is paused", hint=hint)
                waits += 1
                _countdown(until - now, until, progress, sleep)
                for f, _ in paused:
                    ratelimits.clear(store, f)
            if syncer is None:  # the client (and so no request) only once the gate is passed
                syncer = _Sync(st, progress, autoack_hook, public)
            try:
                syncer.run()
                return syncer.finish()
            except BudgetExceeded as e:
                syncer.cut_short()
                kept = syncer.result
                raise BudgetExceeded(
                    f"{prefix}{e.message}. Sync stopped; what was read is kept "
                    f"({kept.dm_events_new} new DMs, {kept.mentions_new} mentions)",
                    budget=e.budget, spent=e.spent, limit=e.limit, hint=e.hint) from None
            except RateLimited as e:
                family = e.family or "dm_read"
                until = ratelimits.record(store, e, timeutil.now(), family=family)
                if not wait or waits >= MAX_RATE_WAITS:
                    syncer.cut_short()
                    kept = syncer.result
                    raise RateLimited(
                        f"{prefix}X rate limit on {ratelimits.label(family)} reached during sync; "
                        f"what was read is kept ({kept.dm_events_new} new DMs, "
                        f"{kept.mentions_new} mentions). Sync can go on at "
                        f"{ratelimits.local_time(until)}",
                        reset_at=int(until.timestamp()), family=family, hint=hint) from None
                waits += 1
                _countdown(until - timeutil.now(), until, progress, sleep)
                ratelimits.clear(store, family)


def _countdown(left: timedelta, until: datetime, progress: Progress | None,
               sleep: Callable[[float], None]) -> None:
    # Counted down rather than re-read from the clock, so a pinned clock
    # (DMTOOL_NOW in tests and demos) cannot make it wait forever.
    remaining = math.ceil(left.total_seconds()) + 1  # x-rate-limit-reset has 1 s resolution
    if progress:
        progress(f"rate limited by X: waiting until {ratelimits.local_time(until)}",
                 transient=False)
    while remaining > 0:
        if progress:
            progress(f"rate limited by X: resuming in {remaining // 60}:{remaining % 60:02d}")
        sleep(1.0)
        remaining -= 1


class _Sync:
    """One sync pass; may be run again after a rate-limit wait (everything it
    does is idempotent and resumes from the store)."""

    def __init__(self, st: AppState, progress: Progress | None, hook: Hook | None,
                 public: bool = False) -> None:
        self.st = st
        self.public = public
        self.store = st.store
        self.client: XClient = ledger.client(st)
        self.ledger = ledger.of(st)
        self.start_requests = self.client.requests_made
        self.start_totals = (self.ledger.totals.billable["dm_events"],
                             self.ledger.prices.cost(self.ledger.totals.billable))
        self.progress = progress
        self.hook = hook
        self.inbound: list[tuple[int, datetime]] = []  # new inbound DMs, for autoack
        # New inbound DMs sent after the previous complete walk began get hooks.on_inbound.
        self.hook_queue = inbound_hooks.InboundQueue(
            str(st.config.get("hooks.on_inbound") or "").strip(),
            parse_opt(self.store.get_state(K_HWM_AT)))
        self.result = SyncResult(backend="sandbox" if st.sandbox else "x")
        self.first_sync = True  # until run() reads the store: nothing to acknowledge
        self.first_size = int(st.config.get("sync.first_page_size"))
        self.max_size = int(st.config.get("sync.max_page_size"))
        self.now = timeutil.now()
        self.now_s = fmt(self.now) or ""

    def say(self, text: str) -> None:
        if self.progress:
            self.progress(text)

    # --- rate limits on the parts a sync can do without ------------------------------------

    def paused(self, family: str) -> datetime | None:
        return ratelimits.paused_until(self.store.conn, family, self.now)

    def noted(self, e: RateLimited, family: str) -> datetime:
        """Record a 429 of a family the sync can do without; re-raise any other."""
        if (e.family or family) != family:
            raise e
        return ratelimits.record(self.store, e, timeutil.now(), family=family)

    def defer(self, what: str, family: str, until: datetime, note: str) -> None:
        """Hold back one part of the sync until `family`'s reset, saying so once."""
        if any(d["what"] == what for d in self.result.deferred):
            return
        self.result.deferred.append({"what": what, "family": family, "until": fmt(until)})
        if self.progress:
            prefix = "sandbox: " if self.st.sandbox else ""
            self.progress(f"{prefix}X rate limit on {ratelimits.label(family)} until "
                          f"{ratelimits.local_time(until)}: {note}", transient=False)

    def attempt(self, what: str, family: str, note: str, call: Callable[[], object]) -> bool:
        """Run `call` (requests of one family) unless that family is paused. A
        pause, or a 429 met now, defers this part of the sync instead (said
        once, in `deferred`). Returns whether `call` ran."""
        until = self.paused(family)
        if until is None:
            try:
                call()
                return True
            except RateLimited as e:
                until = self.noted(e, family)
        self.defer(what, family, until, note)
        return False

    def users_by_ids(self, ids: list[str]) -> list[XUser]:
        """A users lookup that a users limit turns into none at all: the people
        are then stored by id (`user_<id>`) and named at a later sync. The
        budget may shrink it to the first ids it can pay for (the rest are
        stored by id too), or to none."""
        found: list[XUser] = []
        try:
            n = self.ledger.fit(len(ids), 1, lambda k: RequestPlan("GET", "/2/users", "users",
                                                                   ids_asked=k))
        except BudgetExceeded as e:
            self.held("user_names", "users", e)
            return found
        self.attempt("user_names", "users",
                     "new people are stored by id (user_<id>) and named at a later sync",
                     lambda: found.extend(self.client.users_by_ids(ids[:n])))
        return found

    def held(self, what: str, family: str, e: BudgetExceeded) -> None:
        """Hold back one part of the sync for the budget, saying so once."""
        if any(d["what"] == what for d in self.result.deferred):
            return
        self.result.deferred.append({"what": what, "family": family, "until": None,
                                     "budget": e.budget})
        if self.progress:
            prefix = "sandbox: " if self.st.sandbox else ""
            note = {"user_names": "new people are stored by id (user_<id>) and named later",
                    "autoacks": "acknowledgements wait for the next sync"}.get(what, what)
            self.progress(f"{prefix}X {e.budget} budget: {note}", transient=False)

    def finish(self) -> SyncResult:
        self.result.requests = self.client.requests_made - self.start_requests
        billable = self.ledger.totals.billable
        self.result.dm_events_billable = billable["dm_events"] - self.start_totals[0]
        self.result.usd = self.ledger.prices.cost(billable) - self.start_totals[1]
        return self.result

    def run(self) -> None:
        self.now = timeutil.now()
        self.now_s = fmt(self.now) or ""
        me = self.me()
        # The first sync brings in history, not news: nothing to acknowledge.
        self.first_sync = not self.store.get_state(K_HWM_AT)  # set when a walk completes
        self.walk_dms(me)
        if not self.first_sync:
            self.acknowledge()
        # Mentions and own posts cost a request each even when empty; a quiet
        # sync costs one request unless the public check is due (or forced).
        every = timedelta(minutes=int(self.st.config.get("sync.public_every_minutes")))
        last = parse_opt(self.store.get_state(K_PUBLIC_AT))
        if self.public or last is None or self.now - last >= every:
            if self.public:  # needed now: run_sync refuses or waits on a timelines limit
                self.sync_public(me)
            elif not self.attempt("public_check", "timelines",
                                  "mentions and your public replies are checked at a later sync",
                                  lambda: self.sync_public(me)):
                return
            self.name_placeholders()

    def name_placeholders(self) -> None:
        """Contacts known only by id (from an archive import, or an account X
        could not name) get their handle once X names them. One users lookup,
        only when there are such contacts, and only with the public check so a
        quiet sync stays at one request. A users pause defers it."""
        count = cstore.placeholder_count(self.store.conn)
        if not count:
            return
        batch = self.ledger.fit(min(NAMING_BATCH, count), 1, lambda k: RequestPlan(
            "GET", "/2/users", "users", ids_asked=k), "naming contacts known only by id")
        self.attempt("user_names", "users",
                     "contacts known only by id (user_<id>) are named at a later sync",
                     lambda: name_placeholders(self.store, self.client.users_by_ids,
                                               now=self.now_s, batches=1, batch=batch))

    # --- who am I ---------------------------------------------------------------------

    def me(self) -> str:
        me_id = self.store.get_state(K_ME_ID)
        if me_id:
            return me_id
        self.say("asking X who you are")
        user = self.client.me()
        archived = self.store.get_state(K_ARCHIVE_ACCOUNT)
        if archived and archived != user.id:
            raise ConfigError(
                f"this profile holds the X archive of user {archived}, but the credentials are "
                f"@{user.username}'s (user {user.id}); nothing synced",
                hint="log in as the archive's account, or use another profile (--profile NAME)")
        with self.store.tx():
            self.store.set_state(K_ME_ID, user.id)
            self.store.set_state(K_ME_USERNAME, user.username)
        return user.id

    # --- contacts -----------------------------------------------------------------------

    def lookup_missing(self, ids: set[str], users: dict[str, XUser]) -> dict[str, XUser]:
        """Names for ids that are neither in the page's includes nor contacts yet.
        Runs before the page's transaction: no write lock is held over the network."""
        conn = self.store.conn
        missing = sorted(i for i in ids if i not in users and cstore.find_by_user_id(conn, i) is None)
        if not missing:
            return users
        users = dict(users)
        for u in self.users_by_ids(missing):
            users[u.id] = u
        return users

    def contact(self, conn: Conn, user_id: str, users: dict[str, XUser]) -> Contact:
        user = users.get(user_id)
        if user is None:
            known = cstore.find_by_user_id(conn, user_id)
            if known is not None:
                return known
            # X no longer knows the account (deleted, suspended): keep the record by id.
            user_name, name = f"user_{user_id}", None
        else:
            user_name, name = user.username, user.name
        c, created = cstore.upsert_x_user(conn, user_id, user_name, name, now=self.now_s)
        if created:
            self.result.contacts_new += 1
        return c

    # --- DM events ------------------------------------------------------------------------

    def walk_dms(self, me: str) -> None:
        try:
            self._walk(me)
        except InputError:
            # X refused a pagination token saved by an unfinished walk (it may
            # have expired): forget the shortcut and walk down to the mark.
            if not self.store.get_state(K_WALK):
                raise
            with self.store.tx():
                self.store.set_state(K_WALK, None)
            self._walk(me)

    def _walk(self, me: str) -> None:
        store = self.store
        hwm = int(store.get_state(K_HWM) or 0)
        hwm_at = parse_opt(store.get_state(K_HWM_AT))
        segments: list[dict[str, Any]] = json.loads(store.get_state(K_WALK) or "[]")
        walk_at = self.now
        top_id: str | None = None
        top_at: datetime | None = None
        seen = 0
        news = 0  # new events this walk read itself (not a jumped segment's)
        oldest_at: datetime | None = None
        times: list[datetime] = []  # when the new events passed so far arrived, for page_size
        token: str | None = None
        pages = 0
        while True:
            floor_id, floor_at = _floor(segments, hwm, hwm_at)
            free = free_below(lstore.listed_on(store.conn, budget.utc_day(self.now),
                                               self.st.sandbox), floor_id) if floor_id else 0
            if pages == 0:
                size = self.first_page(free)
            else:
                size = page_size(times=times, floor_at=floor_at, now=walk_at,
                                 max_size=self.max_size, free=free)
            # What the budget can still pay for; not even one event: stop here.
            size = self.ledger.fit(size, 1, lambda n: RequestPlan(
                "GET", "/2/dm_events", "dm_read", page_size=n), "the next page of DM events")
            self.say(f"reading DM events (page {pages + 1}, {self.result.dm_events_read} read so far)")
            page = self.client.dm_events(size, token)
            pages += 1
            self.result.dm_events_read += len(page.events)

            fresh: list[DMEvent] = []
            hit = False
            for ev in page.events:  # newest first
                if int(ev.id) <= floor_id:
                    hit = True
                    break
                fresh.append(ev)
            if fresh:
                if top_id is None:
                    top_id, top_at = fresh[0].id, fresh[0].created_at
                seen += len(fresh)
                news += len(fresh)
                oldest_at = fresh[-1].created_at or oldest_at
                times.extend(t for t in map(event_time, fresh) if t is not None)
            next_token = page.next_token
            jump: dict[str, Any] | None = None
            if hit and segments:
                # Reached what an unfinished walk already stored: skip it.
                jump = segments.pop(0)
                if top_id is None:
                    # Nothing new above it: this walk vouches for it up to walk_at.
                    top_id, top_at = jump["top"], parse_opt(jump["top_at"])
                times.extend(_spread(int(jump["count"]), parse_opt(jump["top_at"]),
                                     parse_opt(jump["bottom_at"])))
                seen += int(jump["count"])
                oldest_at = parse_opt(jump["bottom_at"]) or oldest_at
                next_token = jump["token"]
            done = (hit and jump is None) or (not hit and (not page.events or not next_token))

            users = self.lookup_missing(_dm_others(fresh, me), page.users)
            with store.tx() as conn:
                inbound = self.store_dms(conn, me, fresh, users)
                if done:  # a first walk's events are history, not the flow of news
                    store.set_state(K_LAST_NEW, str(0 if hwm_at is None else news))
                    if top_id is not None and int(top_id) > hwm:
                        store.set_state(K_HWM, top_id)
                    # Everything up to this walk's start is now known to be stored.
                    store.set_state(K_HWM_AT, fmt(max(walk_at, top_at or walk_at)))
                    store.set_state(K_WALK, None)
                else:
                    seg = {"top": top_id, "top_at": fmt(top_at), "walk_at": fmt(walk_at),
                           "token": next_token, "bottom_at": fmt(oldest_at), "count": seen}
                    store.set_state(K_WALK, json.dumps([seg, *segments]))
            self.inbound.extend(inbound)
            if done:
                return
            token = next_token

    def first_page(self, free: int) -> int:
        """The first page: sync.first_page_size, or bigger when that costs
        nothing: up to the events already read today (free), as many as the
        last walk found new plus PAGE_MARGIN, so a steady flow of DMs is read
        in one request; at most FREE_FIRST_PAGE."""
        size = self.first_size
        last_new = int(self.store.get_state(K_LAST_NEW) or 0)
        if last_new:
            size = max(size, min(free, FREE_FIRST_PAGE, last_new + PAGE_MARGIN))
        return max(1, min(size, self.max_size))

    def store_dms(self, conn: Conn, me: str, events: list[DMEvent],
                  users: dict[str, XUser]) -> list[tuple[int, datetime]]:
        """Store a page's new events; returns (contact id, time) of new inbound ones."""
        inbound: list[tuple[int, datetime]] = []
        for ev in reversed(events):  # oldest first: opt-out words apply in time order
            other = _dm_other(ev, me)
            if other is None:
                continue
            contact = self.contact(conn, other, users)
            at = ev.created_at or self.now
            at_s = fmt(at) or self.now_s
            direction = "in" if ev.sender_id != me else "out"
            if not mstore.add_message(conn, event_id=ev.id, conversation_id=ev.conversation_id,
                                      contact_id=contact.id, direction=direction, text=ev.text or "",
                                      at=at_s, source="sync", now=self.now_s):
                continue
            self.result.dm_events_new += 1
            if direction == "in":
                cstore.add_evidence(conn, contact.id, "inbound_dm", at_s, ev.id, None, now=self.now_s)
                self.apply_words(conn, contact.id, ev.text or "", at_s)
                inbound.append((contact.id, at))
                self.hook_queue.add(conn, ev.id, at, now=self.now_s)
        return inbound

    def acknowledge(self) -> None:
        """Run the autoack hook once per contact, for their oldest new message.

        Only after the whole walk is stored: pages come newest first, so before
        that the policy could not see an older STOP or the conversation so far.
        """
        if self.hook is None:
            return
        conn = self.store.conn
        first: dict[int, datetime] = {}
        for contact_id, at in [*self.pending_acks(), *self.inbound]:
            first[contact_id] = min(at, first.get(contact_id, at))
        held: list[tuple[int, datetime]] = []
        for contact_id, at in sorted(first.items(), key=lambda kv: kv[1]):
            try:
                contact = cstore.by_id(conn, contact_id)
            except NotFound:  # forgotten since it was held back
                continue
            try:
                sent = self.hook(conn, contact, at)
            except RateLimited as e:
                # X's sending limit: this ack and the rest are skipped (and
                # audited by the policy); the DMs themselves are stored.
                self.defer("autoacks", "dm_send", self.noted(e, "dm_send"),
                           "acknowledgements are not sent")
                continue
            except BudgetExceeded as e:
                # The budget: deferred (audited by send_autoack), tried again
                # at the next sync; the policy still decides then.
                self.held("autoacks", "dm_send", e)
                held.append((contact_id, at))
                continue
            if sent:
                self.result.autoacks_sent += 1
        self.inbound = []
        self.keep_acks(held)

    def pending_acks(self) -> list[tuple[int, datetime]]:
        """Acknowledgements held back by an earlier sync (K_ACK_PENDING)."""
        try:
            items = json.loads(self.store.get_state(K_ACK_PENDING) or "[]")
            return [(int(i["contact"]), timeutil.parse(i["at"])) for i in items]
        except (ValueError, KeyError, TypeError):
            return []

    def keep_acks(self, acks: list[tuple[int, datetime]]) -> None:
        """Remember acknowledgements still to send, for the next sync."""
        value = json.dumps([{"contact": c, "at": fmt(at)} for c, at in acks]) if acks else None
        if value != self.store.get_state(K_ACK_PENDING) and not self.store.read_only:
            with self.store.tx():
                self.store.set_state(K_ACK_PENDING, value)

    def cut_short(self) -> None:
        """The sync stops before its acknowledgements (a limit, the budget):
        the new inbound DMs stored so far wait for the next sync's."""
        if self.hook is None or self.first_sync or not self.inbound:
            return
        self.keep_acks([*self.pending_acks(), *self.inbound])

    # --- opt-out words --------------------------------------------------------------------

    def apply_words(self, conn: Conn, contact_id: int, text: str, at: str) -> None:
        apply_optout_words(conn, contact_id, text, at, now=self.now_s, opted_out=self.result.opted_out,
                           reviewed=self.result.optout_review)

    # --- mentions and your replies ----------------------------------------------------------

    def sync_public(self, me: str) -> None:
        touched: set[str] = set()
        self.poll("mention", K_MENTIONS, me, touched)
        self.poll("own", K_POSTS, me, touched)
        self.public_exchanges(touched)
        with self.store.tx():
            self.store.set_state(K_PUBLIC_AT, self.now_s)

    def poll(self, kind: str, key: str, me: str, touched: set[str]) -> None:
        fetch = self.client.mentions if kind == "mention" else self.client.own_posts
        what = "mentions" if kind == "mention" else "your posts"
        since = self.store.get_state(key)
        limit = FIRST_PUBLIC_PAGES if since is None else MAX_PUBLIC_PAGES
        token: str | None = None
        newest: int | None = None
        path = f"/2/users/{me}/{'mentions' if kind == 'mention' else 'tweets'}"
        for n in range(1, limit + 1):
            # X takes 5 to 100; the budget may ask for fewer, never under 5.
            size = self.ledger.fit(POSTS_PAGE_MAX, POSTS_PAGE_MIN, lambda k: RequestPlan(
                "GET", path, "timelines", page_size=k), f"reading {what}")
            self.say(f"reading {what} (page {n})")
            page = fetch(me, since_id=since, pagination_token=token, max_results=size)
            ids = [int(p.id) for p in page.posts]
            if page.newest_id:
                ids.append(int(page.newest_id))
            if ids:
                newest = max(ids + ([newest] if newest is not None else []))
            if kind == "mention":
                authors = {p.author_id for p in page.posts if p.author_id and p.author_id != me}
                users = self.lookup_missing(authors, page.users)
                with self.store.tx() as conn:
                    self.store_mentions(conn, me, page, users, touched)
            else:
                with self.store.tx() as conn:
                    self.store_replies(conn, me, page, touched)
            if not page.next_token or not page.posts:
                break
            token = page.next_token
        if newest is not None:
            with self.store.tx():
                self.store.set_state(key, str(newest))

    def store_mentions(self, conn: Conn, me: str, page: PostPage,
                       users: dict[str, XUser], touched: set[str]) -> None:
        for p in reversed(page.posts):
            if not p.author_id or p.author_id == me:
                continue
            at = self._post_at(p)
            if not self._add_post(conn, p, "mention", at):
                continue
            self.result.mentions_new += 1
            c = self.contact(conn, p.author_id, users)
            cstore.add_evidence(conn, c.id, "mention", at, p.id, p.text, now=self.now_s)
            touched.add(p.author_id)

    def store_replies(self, conn: Conn, me: str, page: PostPage,
                      touched: set[str]) -> None:
        for p in reversed(page.posts):
            target = p.in_reply_to_user_id
            if not target or target == me:  # not a reply, or a thread of your own
                continue
            if self._add_post(conn, p, "own", self._post_at(p)):
                self.result.replies_new += 1
                touched.add(target)

    def _post_at(self, p: Post) -> str:
        return fmt(p.created_at) or self.now_s

    @staticmethod
    def _add_post(conn: Conn, p: Post, kind: str, at: str) -> bool:
        return mstore.add_post(conn, post_id=p.id, kind=kind, author_id=p.author_id, text=p.text,
                               at=at, in_reply_to_user_id=p.in_reply_to_user_id,
                               replied_to_id=p.replied_to_id, conversation_id=p.conversation_id)

    def public_exchanges(self, user_ids: set[str]) -> None:
        """Your public reply to someone who had mentioned or replied to you is a
        consent basis (policy §1). Only people seen in this sync are looked at,
        so a contact you forgot is not brought back from old posts."""
        if not user_ids:
            return
        rows = mstore.public_exchanges(self.store.conn, user_ids)
        users = self.lookup_missing({r["user_id"] for r in rows}, {})
        with self.store.tx() as conn:
            for r in rows:
                c = self.contact(conn, r["user_id"], users)
                cstore.add_evidence(conn, c.id, "public_exchange", r["at"], r["id"], r["text"],
                                    now=self.now_s)


def apply_optout_words(conn: Conn, contact_id: int, text: str, at: str, *,
                       now: str, opted_out: list[str], reviewed: list[str] | None = None,
                       source: str = "sync") -> None:
    """Apply STOP / START / "please stop" in one inbound message (policy §2).

    Works as if messages were read in time order, whatever order they are
    stored in (a sync walk reads pages newest first; an archive is history):
    a STOP counts unless a later START or STOP is already stored; a START
    lifts only an earlier opt-out. `opted_out` collects the handles opted out
    (and drops those a later START lifted) for the caller's report, `reviewed`
    those put in review. Shared by sync and the archive import so both apply
    the same rules; the archive's audit entries say `source: archive`, so that
    the digest leaves history out."""
    origin: dict[str, Any] = {"source": source} if source != "sync" else {}
    match = optout.classify_detail(text)
    if match is None:
        return
    c = cstore.by_id(conn, contact_id)
    words = " ".join(text.split())[:200]
    if match.kind == "optout":
        if c.opted_out_at and c.opted_out_at >= at:
            return
        if any(m.direction == "in" and m.at > at and optout.classify(m.text) == "optin"
               for m in cstore.messages(conn, c.id)):
            return
        cstore.set_opted_out(conn, c, at, words)
        cstore.audit(conn, "opted_out", now=now, contact=c, codes=["E_OPTED_OUT"],
                     words=words, at=at, by="contact", **origin)
        if c.handle not in opted_out:
            opted_out.append(c.handle)
        if reviewed is not None and c.handle in reviewed:  # set_opted_out ended the review
            reviewed.remove(c.handle)
    elif match.kind == "optin":
        if not c.opted_out_at or c.opted_out_at >= at:
            return
        cstore.set_opted_out(conn, c, None, None)
        if c.optout_review_at and c.optout_review_at > at:
            # set_opted_out clears the review; a later "please stop" still needs a human.
            cstore.set_review(conn, c, c.optout_review_text, c.optout_review_at)
        cstore.audit(conn, "opted_in", now=now, contact=c, words=words, at=at,
                     lifted=c.opted_out_at, **origin)
        if c.handle in opted_out:
            opted_out.remove(c.handle)
    else:
        if c.opted_out_at:  # already opted out: nothing left to review
            return
        if c.optout_review_at and c.optout_review_at >= at:
            return
        cstore.set_review(conn, c, words, at)
        cstore.audit(conn, "optout_review", now=now, contact=c, codes=["E_OPTOUT_REVIEW"],
                     words=words, matched=match.word, at=at, **origin)
        if reviewed is not None and c.handle not in reviewed:
            reviewed.append(c.handle)


def _floor(segments: list[dict[str, Any]], hwm: int, hwm_at: datetime | None
           ) -> tuple[int, datetime | None]:
    """The id the walk stops at next, and the time up to which events are known."""
    if not segments:
        return hwm, hwm_at
    seg = segments[0]
    times = [t for t in (parse_opt(seg["top_at"]), parse_opt(seg["walk_at"])) if t is not None]
    return int(seg["top"]), max(times) if times else None


def _dm_other(ev: DMEvent, me: str) -> str | None:
    """The other person of a 1:1 message event; None for anything else."""
    conv = ev.conversation_id
    if ev.event_type != "MessageCreate" or not conv or "-" not in conv or not ev.sender_id:
        return None  # group conversations have ids without '-'
    if ev.sender_id != me:
        return ev.sender_id
    others = [p for p in ev.participant_ids if p != me] or [p for p in conv.split("-") if p != me]
    return others[0] if len(others) == 1 else None


def _dm_others(events: list[DMEvent], me: str) -> set[str]:
    return {o for o in (_dm_other(ev, me) for ev in events) if o is not None}
