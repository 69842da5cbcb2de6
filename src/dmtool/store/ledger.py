"""The ledger of requests to X (migration 11): what each request returned,
what X bills for it after its same-day rule, and the daily totals kept once
the requests themselves are pruned.

Units are counted per kind: `dm_events`, `users` and `posts` read (billed
once per resource and UTC day, so each read keeps its ids in x_read_ids the
first time that day) and `sends` (billed per request). Money is not stored:
prices are settings, applied when the ledger is read (services/budget.py).
Rows are written by services/ledger.py, in the transaction that stores what
the request brought.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dmtool.store.sql import Conn

READS = ("dm_events", "users", "posts")  # kinds kept by id: the same-day rule applies
KINDS = (*READS, "sends")
LISTING = "/2/dm_events"  # the endpoint sync walks: its reads today form one run (free_below)
_CHUNK = 500  # ids per IN (...) list
_ROWS = 100  # rows per multi-row INSERT

# Plain classes, not dataclasses: `report` reads the ledger, and a local
# command's start-up should not pay for generating dataclass methods.


class Request:
    """One request to X, as the ledger keeps it."""

    __slots__ = ("at", "day", "draft_id", "endpoint", "error", "family", "method", "reads",
                 "sandbox", "sends", "status")

    def __init__(self, *, at: str, day: str, sandbox: bool, family: str, method: str,
                 endpoint: str, status: int | None, error: str | None,
                 reads: dict[str, tuple[str, ...]] | None = None, sends: int = 0,
                 draft_id: int | None = None) -> None:
        self.at = at  # RFC 3339 UTC
        self.day = day  # YYYY-MM-DD (UTC)
        self.sandbox = sandbox
        self.family = family
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.error = error
        self.reads = reads or {}  # READS kind -> ids
        self.sends = sends
        self.draft_id = draft_id  # a send whose outcome is unknown, until reconciled


class Units:
    """Units per kind: raw (what the answers held) and billable (after the
    same-day rule; a send is always billable)."""

    __slots__ = ("billable", "raw", "requests")

    def __init__(self, requests: int = 0, raw: dict[str, int] | None = None,
                 billable: dict[str, int] | None = None) -> None:
        self.requests = requests
        self.raw = raw if raw is not None else dict.fromkeys(KINDS, 0)
        self.billable = billable if billable is not None else dict.fromkeys(KINDS, 0)

    def add(self, other: Units) -> None:
        self.requests += other.requests
        for k in KINDS:
            self.raw[k] += other.raw[k]
            self.billable[k] += other.billable[k]


def add(conn: Conn, r: Request) -> dict[str, int]:
    """Write one request and the ids it read; returns its billable units per
    read kind (ids not read before on its UTC day)."""
    raw = {k: len(set(r.reads.get(k, ()))) for k in READS}
    request_id = conn.execute(
        "INSERT INTO x_requests (at, day, sandbox, family, method, endpoint, status, error, "
        "dm_events, users, posts, sends, draft_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (r.at, r.day, int(r.sandbox), r.family, r.method, r.endpoint, r.status, r.error,
         raw["dm_events"], raw["users"], raw["posts"], r.sends, r.draft_id)).fetchone()[0]
    billable = dict.fromkeys(READS, 0)
    for kind in READS:
        ids = list(dict.fromkeys(r.reads.get(kind, ())))
        for start in range(0, len(ids), _ROWS):
            chunk = ids[start:start + _ROWS]
            # RETURNING counts the rows inserted (an id read before that day is
            # not): the same on every engine, unlike executemany's rowcount.
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
            params = [v for i in chunk for v in (r.day, int(r.sandbox), kind, i, request_id)]
            billable[kind] += len(conn.execute(
                f"INSERT INTO x_read_ids (day, sandbox, kind, rid, request_id) VALUES {values} "
                "ON CONFLICT (day, sandbox, kind, rid) DO NOTHING RETURNING rid",
                params).fetchall())
    if any(billable.values()):
        conn.execute("UPDATE x_requests SET b_dm_events = ?, b_users = ?, b_posts = ? "
                     "WHERE id = ?", (billable["dm_events"], billable["users"],
                                      billable["posts"], request_id))
    return billable


def read_on(conn: Conn, day: str, sandbox: bool, kind: str,
            ids: Sequence[str]) -> set[str]:
    """Which of `ids` were already read on `day` (so cost nothing more that day)."""
    found: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start:start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        found.update(row[0] for row in conn.execute(
            f"SELECT rid FROM x_read_ids WHERE day = ? AND sandbox = ? AND kind = ? "
            f"AND rid IN ({marks})", (day, int(sandbox), kind, *chunk)))
    return found


def listed_on(conn: Conn, day: str, sandbox: bool) -> list[str]:
    """The DM events first read on `day` by sync's walk of GET /2/dm_events."""
    return [row[0] for row in conn.execute(
        "SELECT i.rid FROM x_read_ids i JOIN x_requests r ON r.id = i.request_id "
        "WHERE i.day = ? AND i.sandbox = ? AND i.kind = 'dm_events' AND r.endpoint = ?",
        (day, int(sandbox), LISTING))]


_SUMS = ("count(*), sum(dm_events), sum(users), sum(posts), sum(sends), "
         "sum(b_dm_events), sum(b_users), sum(b_posts), sum(sends)")
_TOTALS = ("sum(requests), sum(dm_events), sum(users), sum(posts), sum(sends), "
           "sum(b_dm_events), sum(b_users), sum(b_posts), sum(sends)")


def _units(row: Sequence[object]) -> Units:
    values = [int(v or 0) for v in row]  # type: ignore[call-overload]
    return Units(values[0], dict(zip(KINDS, values[1:5], strict=True)),
                 dict(zip(KINDS, values[5:9], strict=True)))


def units_between(conn: Conn, sandbox: bool, first_day: str,
                  last_day: str) -> Units:
    """Everything from `first_day` to `last_day` (UTC days, both included)."""
    total = _units(conn.execute(
        f"SELECT {_SUMS} FROM x_requests WHERE day >= ? AND day <= ? AND sandbox = ?",
        (first_day, last_day, int(sandbox))).fetchone())
    total.add(_units(conn.execute(
        f"SELECT {_TOTALS} FROM x_usage_days WHERE day >= ? AND day <= ? AND sandbox = ?",
        (first_day, last_day, int(sandbox))).fetchone()))
    return total


def units_since(conn: Conn, sandbox: bool, since: str, until: str) -> Units:
    """Requests made at `since` <= at < `until` (RFC 3339), and the daily totals
    of pruned days from the day of `since` to the one before `until`'s."""
    total = _units(conn.execute(
        f"SELECT {_SUMS} FROM x_requests WHERE at >= ? AND at < ? AND sandbox = ?",
        (since, until, int(sandbox))).fetchone())
    total.add(_units(conn.execute(
        f"SELECT {_TOTALS} FROM x_usage_days WHERE day >= ? AND day < ? AND sandbox = ?",
        (since[:10], until[:10], int(sandbox))).fetchone()))
    return total


def by_day(conn: Conn, sandbox: bool, first_day: str, last_day: str
           ) -> Iterable[tuple[str, str, Units]]:
    """(day, family, units) from `first_day` to `last_day`, by day then family:
    requests still kept and the daily totals of pruned days."""
    rows = conn.execute(
        f"SELECT day, family, {_SUMS} FROM x_requests "
        "WHERE day >= ? AND day <= ? AND sandbox = ? GROUP BY day, family "
        "UNION ALL "
        f"SELECT day, family, {_TOTALS} FROM x_usage_days "
        "WHERE day >= ? AND day <= ? AND sandbox = ? GROUP BY day, family "
        "ORDER BY 1, 2",
        (first_day, last_day, int(sandbox), first_day, last_day, int(sandbox))).fetchall()
    merged: dict[tuple[str, str], Units] = {}
    for row in rows:
        merged.setdefault((row[0], row[1]), Units()).add(_units(row[2:]))
    return [(day, family, u) for (day, family), u in merged.items()]


def first_at(conn: Conn, sandbox: bool) -> str | None:
    """When the ledger's data begins (RFC 3339, or a pruned day's midnight)."""
    kept = conn.execute("SELECT min(at) FROM x_requests WHERE sandbox = ?",
                        (int(sandbox),)).fetchone()[0]
    pruned = conn.execute("SELECT min(day) FROM x_usage_days WHERE sandbox = ?",
                          (int(sandbox),)).fetchone()[0]
    starts = [t for t in (kept, f"{pruned}T00:00:00.000Z" if pruned else None) if t]
    return min(starts) if starts else None


def settle_send(conn: Conn, draft_id: int, *, delivered: bool) -> int:
    """A send whose outcome was unknown is settled: it counts one send if it
    was delivered, none if X confirms it never arrived. Returns the rows it
    settled (0: the attempt was never recorded, e.g. a crash mid-request)."""
    return conn.execute("UPDATE x_requests SET sends = ?, draft_id = NULL WHERE draft_id = ?",
                        (1 if delivered else 0, draft_id)).rowcount


def prune(conn: Conn, before_day: str) -> int:
    """Fold the requests of days before `before_day` into x_usage_days (one
    row a day, family and endpoint) and delete them with their ids. Returns
    the requests folded."""
    folded = conn.execute("SELECT count(*) FROM x_requests WHERE day < ?",
                          (before_day,)).fetchone()[0]
    if not folded:
        return 0
    conn.execute(
        "INSERT INTO x_usage_days (day, sandbox, family, endpoint, requests, dm_events, users, "
        "posts, sends, b_dm_events, b_users, b_posts) "
        "SELECT day, sandbox, family, endpoint, count(*), sum(dm_events), sum(users), "
        "sum(posts), sum(sends), sum(b_dm_events), sum(b_users), sum(b_posts) "
        "FROM x_requests WHERE day < ? GROUP BY day, sandbox, family, endpoint "
        "ON CONFLICT (day, sandbox, family, endpoint) DO UPDATE SET "
        "requests = x_usage_days.requests + excluded.requests, "
        "dm_events = x_usage_days.dm_events + excluded.dm_events, "
        "users = x_usage_days.users + excluded.users, "
        "posts = x_usage_days.posts + excluded.posts, "
        "sends = x_usage_days.sends + excluded.sends, "
        "b_dm_events = x_usage_days.b_dm_events + excluded.b_dm_events, "
        "b_users = x_usage_days.b_users + excluded.b_users, "
        "b_posts = x_usage_days.b_posts + excluded.b_posts", (before_day,))
    conn.execute("DELETE FROM x_read_ids WHERE day < ?", (before_day,))
    conn.execute("DELETE FROM x_requests WHERE day < ?", (before_day,))
    return int(folded)


def answered_conversations(conn: Conn, since: str, until: str) -> int:
    """Contacts with at least one message of yours (autoacks aside) sent at
    `since` <= at < `until`: the conversations answered, for cost per
    conversation. One index range per contact (messages_contact_direction)."""
    return int(conn.execute(
        "SELECT count(*) FROM contacts c WHERE EXISTS (SELECT 1 FROM messages m "
        "WHERE m.contact_id = c.id AND m.direction = 'out' AND m.at >= ? AND m.at < ? "
        "AND m.source <> 'autoack')", (since, until)).fetchone()[0])
