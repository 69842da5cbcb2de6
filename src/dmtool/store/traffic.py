"""What happened in a conversation after a draft was approved (the traffic cop).

An approval keeps the highest message id and audit id it had seen
(store/drafts.approve). Everything recorded later has a higher id, whatever
the clocks of the machines that wrote it say: a message they sent before the
approval but that a sync recorded after it counts, since the approver never
saw it. History from an archive import does not: it is not news.
"""

from __future__ import annotations

from dataclasses import dataclass

from dmtool.models import UNSETTLED
from dmtool.store.sql import Conn

# Audit actions that change whether (and how) a contact may be DMed.
CONSENT_ACTIONS = ("opted_out", "opted_in", "optout_review", "optout_dismissed", "blocked",
                   "unblocked")


@dataclass(frozen=True)
class Change:
    kind: str            # inbound, outbound, consent, unsettled
    at: str              # when it happened (a message's time) or was recorded
    text: str | None = None  # the message, for inbound and outbound
    source: str | None = None  # outbound: send, autoack, sync (sent outside dmtool)
    action: str | None = None  # consent: the audit action (dm_closed for X's 403)
    actor: str | None = None  # who did it, when dmtool knows
    draft_id: int | None = None


def since_approval(conn: Conn, draft_id: int) -> list[Change]:
    """What moved in the draft's conversation after its approval, oldest first;
    [] when nothing did (or the draft is not approved)."""
    row = conn.execute(
        "SELECT d.contact_id, d.approved_at, d.approved_message_mark, d.approved_audit_mark, "
        "d.dm_event_id, c.user_id, c.handle FROM drafts d JOIN contacts c ON c.id = d.contact_id "
        "WHERE d.id = ? AND d.approved_at IS NOT NULL", (draft_id,)).fetchone()
    if row is None:
        return []
    contact_id, approved_at, message_mark, audit_mark, own_event, user_id, handle = row
    out: list[Change] = []
    # A mark is missing only if something wrote an approval without one: then by time.
    after, mark = (("m.id > ?", message_mark) if message_mark is not None
                   else ("m.recorded_at > ?", approved_at))
    # The draft's own DM, if another process sent it meanwhile, is no news.
    own, mine = ("", ()) if own_event is None else (
        " AND (m.event_id IS NULL OR m.event_id != ?)", (own_event,))
    for direction, at, text, source, sender, sender_draft in conn.execute(
            "SELECT m.direction, m.at, m.text, m.source, d.sent_by, d.id FROM messages m "
            "LEFT JOIN drafts d ON d.dm_event_id = m.event_id AND d.contact_id = m.contact_id "
            f"WHERE m.contact_id = ? AND m.source != 'archive' AND {after}{own} "
            "ORDER BY m.at, m.id", (contact_id, mark, *mine)):
        out.append(Change("inbound" if direction == "in" else "outbound", at, text=text,
                          source=source, actor=sender if direction == "out" else None,
                          draft_id=sender_draft))
    # The contact's audit entries: under its user id, or its handle before X named it.
    # A range of the primary key (or of audit_at): only what came after.
    after, mark = ("id > ?", audit_mark) if audit_mark is not None else ("at > ?", approved_at)
    for action, at, codes, actor in conn.execute(
            f"SELECT action, at, codes, actor FROM audit WHERE {after} "
            f"AND (user_id = ? OR (user_id IS NULL AND handle = ? COLLATE NOCASE)) "
            f"AND (action IN ({', '.join('?' * len(CONSENT_ACTIONS))}) "
            f"OR (action = 'send_failed' AND codes = 'E_DM_CLOSED')) ORDER BY id",
            (mark, user_id, handle, *CONSENT_ACTIONS)):
        out.append(Change("consent", at, action="dm_closed" if codes == "E_DM_CLOSED" else action,
                          actor=actor))
    # A send to them begun after the approval, whose outcome is not known yet,
    # may have reached them (by time: a send start leaves no id to compare).
    marks = ", ".join("?" * len(UNSETTLED))
    for other, started, sent_by in conn.execute(
            f"SELECT id, send_started_at, sent_by FROM drafts WHERE contact_id = ? AND id != ? "
            f"AND status IN ({marks}) AND send_started_at >= ? ORDER BY id",
            (contact_id, draft_id, *UNSETTLED, approved_at)):
        out.append(Change("unsettled", started or "", actor=sent_by, draft_id=other))
    return out
