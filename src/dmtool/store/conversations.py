"""Read models over conversations: inbox rows, read marks, digest queries."""

from __future__ import annotations

from dmtool.store.sql import Conn, Row

# A contact's state, by precedence: blocked > opted-out > review-optout >
# dm-closed > open. dm-closed lasts until they DM you after X refused your DM
# (the policy's rule); the EXISTS is one seek on messages_contact_direction.
_DM_CLOSED = ("(c.dm_closed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages i "
              "WHERE i.contact_id = c.id AND i.direction = 'in' AND i.at > c.dm_closed_at))")
STATE_SQL = ("CASE WHEN c.blocked_at IS NOT NULL THEN 'blocked' "
             "WHEN c.opted_out_at IS NOT NULL THEN 'opted-out' "
             "WHEN c.optout_review_at IS NOT NULL THEN 'review-optout' "
             f"WHEN {_DM_CLOSED} THEN 'dm-closed' ELSE 'open' END")
# Waiting for your reply: an open conversation whose last message (autoacks
# aside) is theirs, with someone you may still answer. Nobody who asked to stop
# (or is in review for it), nobody blocked, nobody X will not let you DM.
WAITING_SQL = ("(cv.state = 'open' AND cv.human_direction = 'in' AND c.blocked_at IS NULL "
               "AND c.opted_out_at IS NULL AND c.optout_review_at IS NULL "
               f"AND NOT {_DM_CLOSED})")
_UNREAD = ("EXISTS (SELECT 1 FROM messages u WHERE u.contact_id = c.id AND u.direction = 'in' "
           "AND u.recorded_at > COALESCE(cv.last_read_at, ''))")
# The contacts column without which a contact cannot be in each state but open.
_RARE_STATES = {"blocked": "blocked_at", "opted-out": "opted_out_at",
                "review-optout": "optout_review_at", "dm-closed": "dm_closed_at"}
_LIVE_CLAIM = "k.contact_id = cv.contact_id AND k.until > :now"  # claims: an expired one is none
_TAGGED = "EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag = :tag)"
# Snoozed now. The few snoozed rows come from their own index, once per query:
# testing cv.snoozed_until row by row would read every conversation row where
# an index alone answers the rest (the digest's waiting list).
_SNOOZED = ("cv.rowid IN (SELECT rowid FROM conversations INDEXED BY conversations_snoozed "
            "WHERE snoozed_until > :now)")


class InboxQuery:
    """Which conversations the inbox lists, and in which order. A plain class:
    a dataclass costs milliseconds to build at every start of inbox and digest."""

    __slots__ = ("include_done", "waiting", "unread", "tag", "state", "snoozed", "waiting_first",
                 "mine", "unclaimed")

    def __init__(self, *, include_done: bool = False, waiting: bool = False,
                 unread: bool = False, tag: str | None = None, state: str | None = None,
                 snoozed: bool = False, waiting_first: bool = True, mine: str | None = None,
                 unclaimed: bool = False) -> None:
        self.include_done = include_done
        self.waiting = waiting            # only those waiting for your reply
        self.unread = unread
        self.tag = tag
        self.state = state                # a contact state (STATE_SQL)
        self.snoozed = snoozed            # the snoozed ones instead of the others
        self.waiting_first = waiting_first  # else by activity alone
        self.mine = mine                  # only those this operator has a live claim on
        self.unclaimed = unclaimed        # only those nobody has a live claim on

    def __repr__(self) -> str:
        return "InboxQuery(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def inbox_rows(conn: Conn, q: InboxQuery, *, now: str,
               limit: int) -> list[Row]:
    """One row per conversation: handle, name, status (open/done), state,
    waiting, snoozed_until, the last message that is not an autoack (last_at,
    last_direction, last_text) and unread.

    Each group (waiting for you, the other open ones, done) is walked down an
    index in the order shown (conversations_waiting, conversations_human) and
    stops after `limit` matches; only the page's rows are then filled in: the
    cost follows `limit` (and how rare a filter's matches are), not the size
    of the message store. A state other than open is rare: its contacts are
    found first (one pass over contacts), then their conversations sorted."""
    cond = ["cv.human_at IS NOT NULL", ("" if q.snoozed else "NOT ") + _SNOOZED]
    if q.waiting:
        cond.append(WAITING_SQL)
    if q.unread:
        cond.append(_UNREAD)
    if q.tag is not None:
        cond.append(_TAGGED)
    if q.state is not None:
        cond.append(f"({STATE_SQL}) = :state")
    if q.unclaimed:
        cond.append(f"NOT EXISTS (SELECT 1 FROM claims k WHERE {_LIVE_CLAIM})")
    if q.mine is not None:
        cond.append("EXISTS (SELECT 1 FROM claims mk WHERE mk.contact_id = cv.contact_id "
                    "AND mk.until > :now AND mk.operator = :mine COLLATE NOCASE)")
    # (index, state, extra condition) per group, in the order listed.
    groups: list[tuple[str, str, str | None]] = []
    rare = _RARE_STATES.get(q.state or "")
    if rare is not None:  # nobody in it is waiting for you: one group a status
        groups.append(("", "open", None))
    elif q.waiting_first:
        groups.append(("conversations_waiting", "open", WAITING_SQL))
        if not q.waiting:
            groups.append(("conversations_human", "open", f"NOT {WAITING_SQL}"))
    else:
        groups.append(("conversations_human", "open", None))
    if q.include_done and not q.waiting:
        groups.append(("conversations_human", "done", None))
    parts = []
    for grp, (index, st, extra) in enumerate(groups):
        where = " AND ".join([f"cv.state = '{st}'", *cond, *([extra] if extra else [])])
        if rare is not None:
            source = ("contacts c CROSS JOIN conversations cv INDEXED BY conversations_contact "
                      f"ON cv.contact_id = c.id WHERE c.{rare} IS NOT NULL AND {where}")
        elif q.mine is not None:  # a person's claims are few: start from them
            source = ("claims cl CROSS JOIN conversations cv INDEXED BY conversations_contact "
                      "ON cv.contact_id = cl.contact_id CROSS JOIN contacts c "
                      "ON c.id = cv.contact_id "
                      f"WHERE cl.operator = :mine COLLATE NOCASE AND cl.until > :now AND {where}")
        else:
            source = (f"conversations cv INDEXED BY {index} CROSS JOIN contacts c "
                      f"ON c.id = cv.contact_id WHERE {where}")
        parts.append(
            f"SELECT * FROM (SELECT cv.rowid AS r, {grp} AS grp, cv.human_at AS at FROM {source} "
            "ORDER BY cv.human_at DESC, cv.rowid DESC LIMIT :limit)")
    return conn.execute(
        f"""
        SELECT c.handle, c.name, cv.state AS status, ({STATE_SQL}) AS state,
          {WAITING_SQL} AS waiting, cv.snoozed_until, m.at AS last_at,
          m.direction AS last_direction, m.text AS last_text,
          -- recorded_at: a message synced after you read the thread is still unread.
          (SELECT count(*) FROM messages u WHERE u.contact_id = c.id AND u.direction = 'in'
            AND u.recorded_at > COALESCE(cv.last_read_at, '')) AS unread,
          k.operator AS claimed_by, k.until AS claimed_until
        FROM (SELECT * FROM ({" UNION ALL ".join(parts)})
              ORDER BY grp, at DESC, r DESC LIMIT :limit) page
        JOIN conversations cv ON cv.rowid = page.r
        JOIN contacts c ON c.id = cv.contact_id
        LEFT JOIN claims k ON k.contact_id = c.id AND k.until > :now
        -- The last message that is not an autoack: what they (or you) wrote.
        LEFT JOIN messages m ON m.id = COALESCE(cv.human_id, cv.latest_id)
        ORDER BY page.grp, page.at DESC, page.r DESC
        """, {"limit": limit, "now": now, "tag": q.tag, "state": q.state,
              "mine": q.mine}).fetchall()


def mark_read(conn: Conn, contact_id: int, now: str) -> None:
    conn.execute("UPDATE conversations SET last_read_at = ? WHERE contact_id = ?", (now, contact_id))


def conversation_state(conn: Conn, contact_id: int) -> str | None:
    """'open' or 'done'; None when there is no conversation with the contact yet."""
    row = conn.execute("SELECT state FROM conversations WHERE contact_id = ? LIMIT 1",
                       (contact_id,)).fetchone()
    return None if row is None else str(row[0])


def set_state(conn: Conn, contact_id: int, state: str) -> int:
    return conn.execute("UPDATE conversations SET state = ? WHERE contact_id = ?",
                        (state, contact_id)).rowcount


def set_snooze(conn: Conn, contact_id: int, until: str | None, now: str) -> int:
    """Snooze (or, with None, wake) a contact's conversations; the rows changed."""
    return conn.execute("UPDATE conversations SET snoozed_until = ?, snoozed_at = ? "
                        "WHERE contact_id = ?", (until, None if until is None else now,
                                                 contact_id)).rowcount


def snoozed_until(conn: Conn, contact_id: int, now: str) -> str | None:
    """When the contact's snooze ends, if it is snoozed now."""
    row = conn.execute("SELECT max(snoozed_until) FROM conversations WHERE contact_id = ? "
                       "AND snoozed_until > ?", (contact_id, now)).fetchone()
    return row[0] if row else None


# What a digest reads about new messages: inbound ones, never history from an
# archive import. Both windows go down messages_recorded (see the service for
# why a window on sent times is bounded by recorded times too).
_INBOUND = (f"SELECT c.handle, c.name, ({STATE_SQL}) AS state, m.at, m.recorded_at, m.text "
            "FROM messages m "
            "JOIN contacts c ON c.id = m.contact_id WHERE m.direction = 'in' "
            "AND m.source != 'archive' AND m.recorded_at > :recorded_since AND {window} "
            "ORDER BY m.at, m.id")


def inbound_recorded_between(conn: Conn, since: str, until: str) -> list[Row]:
    """Inbound messages first recorded in (since, until]: handle, name, state,
    at, recorded_at, text. recorded_at, not at: a message synced late is news the
    first time we see it."""
    return conn.execute(_INBOUND.format(window="m.recorded_at <= :until"),
                        {"recorded_since": since, "until": until}).fetchall()


def inbound_sent_between(conn: Conn, since: str, until: str, *,
                         recorded_since: str) -> list[Row]:
    """Inbound messages sent in (since, until], among those recorded after
    `recorded_since` (nothing is recorded before it is sent)."""
    return conn.execute(_INBOUND.format(window="m.at > :since AND m.at <= :until"),
                        {"since": since, "until": until,
                         "recorded_since": recorded_since}).fetchall()


def waiting_for_reply(conn: Conn, now: str) -> list[Row]:
    """Conversations waiting for your reply (WAITING_SQL), not snoozed, longest
    wait first: handle, name, at (their last message)."""
    return conn.execute(
        f"""SELECT c.handle, c.name, cv.human_at AS at FROM conversations cv
           INDEXED BY conversations_waiting JOIN contacts c ON c.id = cv.contact_id
           WHERE {WAITING_SQL} AND NOT {_SNOOZED}
           ORDER BY cv.human_at""", {"now": now}).fetchall()


def optout_reviews(conn: Conn) -> list[Row]:
    """Contacts whose state is review-optout, oldest first: handle, name, at
    (when they wrote it), text (their words), and how the message that put
    them in review was stored (source, recorded_at: NULL when not found)."""
    return conn.execute(
        """SELECT c.handle, c.name, c.optout_review_at AS at, c.optout_review_text AS text,
             m.source, m.recorded_at
           FROM contacts c INDEXED BY contacts_review
           LEFT JOIN messages m ON m.id = (
             SELECT i.id FROM messages i WHERE i.contact_id = c.id AND i.direction = 'in'
               AND i.at = c.optout_review_at ORDER BY i.id LIMIT 1)
           WHERE c.optout_review_at IS NOT NULL AND c.opted_out_at IS NULL
             AND c.blocked_at IS NULL
           ORDER BY c.optout_review_at""").fetchall()


def opt_outs_between(conn: Conn, since: str, until: str) -> list[Row]:
    return conn.execute(
        "SELECT handle, at, detail FROM audit WHERE action = 'opted_out' AND at > ? AND at <= ? "
        "ORDER BY at", (since, until)).fetchall()


def failed_sends_between(conn: Conn, since: str, until: str) -> list[Row]:
    return conn.execute(
        "SELECT d.id, c.handle, d.status, d.reason, d.updated_at FROM drafts d "
        "JOIN contacts c ON c.id = d.contact_id WHERE d.status IN ('failed', 'unknown') "
        "AND d.updated_at > ? AND d.updated_at <= ? ORDER BY d.updated_at", (since, until)).fetchall()


def conversation_ids(conn: Conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT id FROM conversations")}
