"""Numbered schema migrations, applied in order on open (PRAGMA user_version
on SQLite, the table dmtool_schema on PostgreSQL).

Never edit a migration once released: add a new one. A migration is either
one text in the subset both engines speak (SQLite's dialect, which
store/pgsql.py turns into PostgreSQL's: INTEGER PRIMARY KEY, TEXT, COLLATE
NOCASE, INSERT OR IGNORE and the like), or a `Migration` with one text per
engine side by side, for what differs (triggers, FTS); either text may be
empty. The schema test (tests/test_pg_schema.py) compares the two results.
Times are stored as RFC 3339 UTC text ("2026-11-28T16:43:00.000Z"), which
sorts correctly as text. X ids are text (snowflakes exceed JS integers).
"""

from __future__ import annotations

from dmtool.record import Record


class Migration(Record):
    """One step written for each engine."""

    __slots__ = ("sqlite", "postgres")
    sqlite: str
    postgres: str

    def __init__(self, sqlite: str, postgres: str) -> None:
        self.sqlite = sqlite
        self.postgres = postgres


def sqlite_text(step: str | Migration) -> str:
    return step.sqlite if isinstance(step, Migration) else step


# Migration 6 on PostgreSQL: the same columns, indexes and view; the triggers
# are PL/pgSQL functions (a trigger's WHEN may not hold a subquery there, so
# the delete trigger tests it inside), and `rowid` is the conversation's id.
_PG_READ_MODELS = """
ALTER TABLE conversations ADD COLUMN latest_id BIGINT;
ALTER TABLE conversations ADD COLUMN latest_at TEXT COLLATE "C";
ALTER TABLE conversations ADD COLUMN human_id BIGINT;
ALTER TABLE conversations ADD COLUMN human_at TEXT COLLATE "C";
ALTER TABLE conversations ADD COLUMN human_direction TEXT COLLATE "C";
CREATE INDEX conversations_latest ON conversations (state, latest_at);
CREATE INDEX conversations_waiting ON conversations (state, human_direction, human_at, contact_id);
CREATE INDEX messages_contact_direction ON messages (contact_id, direction, at);
CREATE INDEX messages_unread ON messages (contact_id, recorded_at) WHERE direction = 'in';
CREATE INDEX evidence_contact_kind ON evidence (contact_id, kind, at);

CREATE VIEW contact_tails AS
    SELECT c.id AS contact_id, l.id AS latest_id, l.at AS latest_at,
           h.id AS human_id, h.at AS human_at, h.direction AS human_direction
    FROM contacts c
    LEFT JOIN messages l ON l.id = (
        SELECT id FROM messages m WHERE m.contact_id = c.id
        ORDER BY m.at DESC, m.id DESC LIMIT 1)
    LEFT JOIN messages h ON h.id = (
        SELECT id FROM messages m WHERE m.contact_id = c.id AND m.source != 'autoack'
        ORDER BY m.at DESC, m.id DESC LIMIT 1);

CREATE FUNCTION messages_latest_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations SET latest_id = NEW.id, latest_at = NEW.at
     WHERE contact_id = NEW.contact_id
       AND (latest_id IS NULL OR latest_at < NEW.at
            OR (latest_at = NEW.at AND latest_id < NEW.id));
    UPDATE conversations SET human_id = NEW.id, human_at = NEW.at,
                             human_direction = NEW.direction
     WHERE contact_id = NEW.contact_id AND NEW.source != 'autoack'
       AND (human_id IS NULL OR human_at < NEW.at
            OR (human_at = NEW.at AND human_id < NEW.id));
    RETURN NULL;
END $$;
CREATE TRIGGER messages_latest_insert AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_latest_insert();

CREATE FUNCTION messages_latest_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations SET (latest_id, latest_at, human_id, human_at, human_direction) = (
        SELECT latest_id, latest_at, human_id, human_at, human_direction FROM contact_tails
        WHERE contact_tails.contact_id = conversations.contact_id)
     WHERE contact_id IN (OLD.contact_id, NEW.contact_id);
    RETURN NULL;
END $$;
CREATE TRIGGER messages_latest_update
    AFTER UPDATE OF contact_id, at, direction, source ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_latest_update();

CREATE FUNCTION messages_latest_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM conversations WHERE contact_id = OLD.contact_id
               AND (latest_id = OLD.id OR human_id = OLD.id)) THEN
        UPDATE conversations SET (latest_id, latest_at, human_id, human_at, human_direction) = (
            SELECT latest_id, latest_at, human_id, human_at, human_direction FROM contact_tails
            WHERE contact_tails.contact_id = conversations.contact_id)
         WHERE contact_id = OLD.contact_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_latest_delete AFTER DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_latest_delete();

CREATE FUNCTION conversations_latest_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations SET (latest_id, latest_at, human_id, human_at, human_direction) = (
        SELECT latest_id, latest_at, human_id, human_at, human_direction FROM contact_tails
        WHERE contact_tails.contact_id = NEW.contact_id)
     WHERE id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER conversations_latest_insert AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversations_latest_fill();
CREATE TRIGGER conversations_latest_move AFTER UPDATE OF contact_id ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversations_latest_fill();

UPDATE conversations SET (latest_id, latest_at, human_id, human_at, human_direction) = (
    SELECT latest_id, latest_at, human_id, human_at, human_direction FROM contact_tails
    WHERE contact_tails.contact_id = conversations.contact_id);
"""


# Full-text search (`dmtool search`): FTS5 indexes with the trigram tokenizer
# over message text, notes, and contacts' handles and names. Trigrams match any
# substring of 3 characters or more, so Japanese (no spaces between words) is
# searchable; shorter queries scan the tables (store/search.py). The indexes
# are external-content (no second copy of the text), keep no positions
# (detail=none: searched with LIKE, which the trigram index answers, at a
# third of the size of positions) and are kept current by triggers. Part of
# migration 7 on SQLite (PostgreSQL scans), left out where this SQLite lacks FTS5 or its trigram tokenizer
# (search scans then): db.migrate.
SEARCH_INDEX = """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        text, content='messages', content_rowid='id', tokenize='trigram', detail=none,
        columnsize=0);
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, text) VALUES (NEW.id, NEW.text);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', OLD.id, OLD.text);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', OLD.id, OLD.text);
        INSERT INTO messages_fts (rowid, text) VALUES (NEW.id, NEW.text);
    END;

    CREATE VIRTUAL TABLE notes_fts USING fts5(
        text, content='notes', content_rowid='id', tokenize='trigram', detail=none,
        columnsize=0);
    CREATE TRIGGER notes_fts_insert AFTER INSERT ON notes BEGIN
        INSERT INTO notes_fts (rowid, text) VALUES (NEW.id, NEW.text);
    END;
    CREATE TRIGGER notes_fts_delete AFTER DELETE ON notes BEGIN
        INSERT INTO notes_fts (notes_fts, rowid, text) VALUES ('delete', OLD.id, OLD.text);
    END;
    CREATE TRIGGER notes_fts_update AFTER UPDATE OF text ON notes BEGIN
        INSERT INTO notes_fts (notes_fts, rowid, text) VALUES ('delete', OLD.id, OLD.text);
        INSERT INTO notes_fts (rowid, text) VALUES (NEW.id, NEW.text);
    END;

    CREATE VIRTUAL TABLE contacts_fts USING fts5(
        handle, name, content='contacts', content_rowid='id', tokenize='trigram',
        detail=none, columnsize=0);
    CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
        INSERT INTO contacts_fts (rowid, handle, name) VALUES (NEW.id, NEW.handle, NEW.name);
    END;
    CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
        INSERT INTO contacts_fts (contacts_fts, rowid, handle, name)
            VALUES ('delete', OLD.id, OLD.handle, OLD.name);
    END;
    CREATE TRIGGER contacts_fts_update AFTER UPDATE OF handle, name ON contacts BEGIN
        INSERT INTO contacts_fts (contacts_fts, rowid, handle, name)
            VALUES ('delete', OLD.id, OLD.handle, OLD.name);
        INSERT INTO contacts_fts (rowid, handle, name) VALUES (NEW.id, NEW.handle, NEW.name);
    END;

    INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
    INSERT INTO notes_fts (notes_fts) VALUES ('rebuild');
    INSERT INTO contacts_fts (contacts_fts) VALUES ('rebuild');
"""

MIGRATIONS: list[str | Migration] = [
    # 1: contacts and what we know about consent.
    """
    CREATE TABLE contacts (
        id              INTEGER PRIMARY KEY,
        user_id         TEXT UNIQUE,          -- X's numeric id; NULL until known
        handle          TEXT NOT NULL,        -- a label: handles change
        name            TEXT,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        blocked_at      TEXT,
        opted_out_at    TEXT,
        opt_out_words   TEXT,
        optout_review_text TEXT,
        optout_review_at   TEXT,
        dm_closed_at    TEXT
    );
    CREATE INDEX contacts_handle ON contacts (handle COLLATE NOCASE);

    CREATE TABLE contact_tags (
        contact_id  INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
        tag         TEXT NOT NULL,
        PRIMARY KEY (contact_id, tag)
    ) WITHOUT ROWID;
    CREATE INDEX contact_tags_tag ON contact_tags (tag);

    CREATE TABLE notes (
        id          INTEGER PRIMARY KEY,
        contact_id  INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
        at          TEXT NOT NULL,
        text        TEXT NOT NULL
    );
    CREATE INDEX notes_contact ON notes (contact_id);

    -- Consent evidence. ref identifies the source (a DM event id, a post id, a
    -- manual record) so that syncing or importing twice adds nothing.
    CREATE TABLE evidence (
        id          INTEGER PRIMARY KEY,
        contact_id  INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,  -- inbound_dm, public_exchange, request, offline, mention
        at          TEXT NOT NULL,
        ref         TEXT NOT NULL,
        text        TEXT,
        recorded_at TEXT NOT NULL,
        UNIQUE (kind, ref)
    );
    CREATE INDEX evidence_contact ON evidence (contact_id, at);

    -- Opt-outs and blocks outlive `contacts forget`: keyed by user id (or the
    -- handle while the id is unknown).
    CREATE TABLE suppressions (
        id          INTEGER PRIMARY KEY,
        user_id     TEXT,
        handle      TEXT,
        kind        TEXT NOT NULL,  -- opted_out, blocked
        at          TEXT NOT NULL,
        detail      TEXT
    );
    CREATE UNIQUE INDEX suppressions_user ON suppressions (user_id, kind) WHERE user_id IS NOT NULL;
    CREATE INDEX suppressions_handle ON suppressions (handle COLLATE NOCASE);

    -- Append only. No foreign key: the record outlives a forgotten contact.
    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY,
        at          TEXT NOT NULL,
        action      TEXT NOT NULL,
        user_id     TEXT,
        handle      TEXT,
        draft_id    INTEGER,
        codes       TEXT,           -- space separated E_/L_ codes
        detail      TEXT            -- JSON object
    );
    CREATE INDEX audit_at ON audit (at);
    """,
    # 2: conversations, messages, public posts, drafts, templates, sync cursors.
    """
    CREATE TABLE conversations (
        id              TEXT PRIMARY KEY,      -- X's dm_conversation_id
        contact_id      INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
        state           TEXT NOT NULL DEFAULT 'open',  -- open, done
        last_at         TEXT,
        last_read_at    TEXT
    );
    CREATE INDEX conversations_contact ON conversations (contact_id);
    CREATE INDEX conversations_last ON conversations (state, last_at);

    CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        event_id        TEXT UNIQUE,           -- X's dm_event_id
        conversation_id TEXT,
        contact_id      INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
        direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        text            TEXT NOT NULL,
        at              TEXT NOT NULL,
        source          TEXT NOT NULL,         -- sync, archive, send, autoack
        first_contact   INTEGER NOT NULL DEFAULT 0,  -- a dmtool send that opened contact
        recorded_at     TEXT NOT NULL
    );
    CREATE INDEX messages_contact_at ON messages (contact_id, at);
    CREATE INDEX messages_recorded ON messages (recorded_at);

    -- Public posts that matter for consent: mentions of you and your replies.
    CREATE TABLE posts (
        id                  TEXT PRIMARY KEY,
        kind                TEXT NOT NULL,     -- mention, own
        author_id           TEXT,
        text                TEXT,
        at                  TEXT,
        in_reply_to_user_id TEXT,
        replied_to_id       TEXT,
        conversation_id     TEXT
    );
    CREATE INDEX posts_reply_to ON posts (in_reply_to_user_id);

    CREATE TABLE templates (
        name        TEXT PRIMARY KEY,
        text        TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );

    -- The send state machine lives here: draft -> approved -> sending ->
    -- sent | failed | unknown; plus rejected and discarded.
    CREATE TABLE drafts (
        id                  INTEGER PRIMARY KEY,
        contact_id          INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
        text                TEXT NOT NULL,
        status              TEXT NOT NULL DEFAULT 'draft',
        template            TEXT,
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL,
        approved_at         TEXT,
        approved_text       TEXT,
        acknowledged        TEXT,               -- warning codes acknowledged at approval
        reason              TEXT,               -- why rejected or failed
        send_started_at     TEXT,
        sent_at             TEXT,
        dm_event_id         TEXT,
        dm_conversation_id  TEXT,
        first_contact       INTEGER
    );
    CREATE INDEX drafts_status ON drafts (status);
    CREATE INDEX drafts_contact ON drafts (contact_id);

    CREATE TABLE sync_state (
        key     TEXT PRIMARY KEY,
        value   TEXT
    );
    """,
    # 3: a ledger of dmtool's own sends. Caps and the mass-DM check count it;
    # it outlives `contacts forget` (which only blanks the text), so forgetting
    # someone can never reset a daily cap.
    """
    CREATE TABLE sends (
        id              INTEGER PRIMARY KEY,
        user_id         TEXT NOT NULL,
        at              TEXT NOT NULL,
        text            TEXT,                 -- NULL once the contact is forgotten
        first_contact   INTEGER NOT NULL DEFAULT 0,
        kind            TEXT NOT NULL,        -- send, autoack
        draft_id        INTEGER,
        event_id        TEXT UNIQUE
    );
    CREATE INDEX sends_at ON sends (at);
    INSERT INTO sends (user_id, at, text, first_contact, kind, event_id)
        SELECT COALESCE(c.user_id, 'local:' || c.id), m.at, m.text, m.first_contact, m.source,
               m.event_id
        FROM messages m JOIN contacts c ON c.id = m.contact_id
        WHERE m.direction = 'out' AND m.source IN ('send', 'autoack');
    """,
    # 4: rate-limit pauses per endpoint family (services/ratelimits.py). The one
    # pause of earlier versions stopped everything: it carries over to every
    # family, so an upgrade in the middle of a pause still honours it.
    """
    INSERT OR IGNORE INTO sync_state (key, value)
        SELECT 'rate_limited_until.' || f.family, s.value
        FROM sync_state s,
             (SELECT 'dm_read' AS family UNION ALL SELECT 'dm_send'
              UNION ALL SELECT 'timelines' UNION ALL SELECT 'users') f
        WHERE s.key = 'rate_limited_until' AND s.value IS NOT NULL;
    DELETE FROM sync_state WHERE key = 'rate_limited_until';
    """,
    # 5: the contact row is the one record the gate reads. Until now the gate
    # also looked a block up in suppressions; copy every suppression onto the
    # rows it holds for (the rule of contacts._matching_suppressions: the same
    # user id, or the same handle when either side has no id; the newest entry
    # wins), filling only what a row lacks, so that nobody blocked or opted out
    # before the upgrade can be messaged after it.
    """
    CREATE TEMP TABLE held AS
        SELECT c.id AS contact_id, s.id AS entry, s.kind, s.at, s.detail
        FROM contacts c JOIN suppressions s
          ON s.user_id = c.user_id
          OR (s.handle = c.handle COLLATE NOCASE AND (c.user_id IS NULL OR s.user_id IS NULL));
    UPDATE contacts SET blocked_at = (
        SELECT at FROM held WHERE contact_id = contacts.id AND kind = 'blocked'
        ORDER BY entry DESC LIMIT 1)
    WHERE blocked_at IS NULL AND id IN (SELECT contact_id FROM held WHERE kind = 'blocked');
    UPDATE contacts SET
        opted_out_at = (SELECT at FROM held WHERE contact_id = contacts.id AND kind = 'opted_out'
                        ORDER BY entry DESC LIMIT 1),
        opt_out_words = (SELECT detail FROM held WHERE contact_id = contacts.id
                         AND kind = 'opted_out' ORDER BY entry DESC LIMIT 1)
    WHERE opted_out_at IS NULL AND id IN (SELECT contact_id FROM held WHERE kind = 'opted_out');
    DROP TABLE held;
    """,
    # 6: read models that stay fast on a million messages. Each conversation row
    # keeps its contact's newest message (latest_*, by at then id) and newest
    # message that is not an autoack (human_*): the inbox and the digest read
    # those instead of searching every contact's messages. Triggers keep them
    # right under every writer (sync, send, archive, merge, forget). Indexes
    # answer "last in / last out", "unread since" and "newest evidence of each
    # kind" per contact without reading all of a chatty contact's rows.
    Migration(sqlite="""
    ALTER TABLE conversations ADD COLUMN latest_id INTEGER;
    ALTER TABLE conversations ADD COLUMN latest_at TEXT;
    ALTER TABLE conversations ADD COLUMN human_id INTEGER;
    ALTER TABLE conversations ADD COLUMN human_at TEXT;
    ALTER TABLE conversations ADD COLUMN human_direction TEXT;
    CREATE INDEX conversations_latest ON conversations (state, latest_at);
    CREATE INDEX conversations_waiting ON conversations (state, human_direction, human_at, contact_id);
    CREATE INDEX messages_contact_direction ON messages (contact_id, direction, at);
    CREATE INDEX messages_unread ON messages (contact_id, recorded_at) WHERE direction = 'in';
    CREATE INDEX evidence_contact_kind ON evidence (contact_id, kind, at);

    CREATE TRIGGER messages_latest_insert AFTER INSERT ON messages BEGIN
        UPDATE conversations SET latest_id = NEW.id, latest_at = NEW.at
         WHERE contact_id = NEW.contact_id
           AND (latest_id IS NULL OR latest_at < NEW.at
                OR (latest_at = NEW.at AND latest_id < NEW.id));
        UPDATE conversations SET human_id = NEW.id, human_at = NEW.at,
                                 human_direction = NEW.direction
         WHERE contact_id = NEW.contact_id AND NEW.source != 'autoack'
           AND (human_id IS NULL OR human_at < NEW.at
                OR (human_at = NEW.at AND human_id < NEW.id));
    END;

    -- A contact's newest message and newest non-autoack one, recomputed. The
    -- triggers below refill conversation rows from it.
    CREATE VIEW contact_tails AS
        SELECT c.id AS contact_id, l.id AS latest_id, l.at AS latest_at,
               h.id AS human_id, h.at AS human_at, h.direction AS human_direction
        FROM contacts c
        LEFT JOIN messages l ON l.id = (
            SELECT id FROM messages m WHERE m.contact_id = c.id
            ORDER BY m.at DESC, m.id DESC LIMIT 1)
        LEFT JOIN messages h ON h.id = (
            SELECT id FROM messages m WHERE m.contact_id = c.id AND m.source != 'autoack'
            ORDER BY m.at DESC, m.id DESC LIMIT 1);

    -- Anything else that changes a message (merge_into moves it to another
    -- contact, a send marks a synced DM as its own): refill both contacts' rows.
    CREATE TRIGGER messages_latest_update
    AFTER UPDATE OF contact_id, at, direction, source ON messages BEGIN
        UPDATE conversations SET (latest_id, latest_at, human_id, human_at, human_direction) = (
            SELECT latest_id, latest_at, human_id, human_at, human_direction FROM contact_tails
            WHERE contact_tails.contact_id = conversations.contact_id)
         WHERE contact_id IN (OLD.contact_id, NEW.contact_id);
    END;

    CREATE TRIGGER messages_latest_delete AFTER DELETE ON messages
    WHEN EXISTS (SELECT 1 FROM conversations WHERE contact_id = OLD.contact_id
                 AND (latest_id = OLD.id OR human_id = OLD.id)) BEGIN
        UPDATE conversations SET (latest_id, latest_at, human_id, human_at, human_direction) = (
            SELECT latest_id, latest_at, human_id, human_at, human_direction FROM contact_tails
            WHERE contact_tails.contact_id = conversations.contact_id)
         WHERE contact_id = OLD.contact_id;
    END;

    -- A new conversation row (add_message stores the message first), or one
    -- moved to another contact: fill it from that contact's messages.
    CREATE TRIGGER conversations_latest_insert AFTER INSERT ON conversations BEGIN
        UPDATE conversations SET (latest_id, latest_at, human_id, human_at, human_direction) = (
            SELECT latest_id, latest_at, human_id, human_at, human_direction FROM contact_tails
            WHERE contact_tails.contact_id = NEW.contact_id)
         WHERE rowid = NEW.rowid;
    END;

    CREATE TRIGGER conversations_latest_move AFTER UPDATE OF contact_id ON conversations BEGIN
        UPDATE conversations SET (latest_id, latest_at, human_id, human_at, human_direction) = (
            SELECT latest_id, latest_at, human_id, human_at, human_direction FROM contact_tails
            WHERE contact_tails.contact_id = NEW.contact_id)
         WHERE rowid = NEW.rowid;
    END;

    UPDATE conversations SET (latest_id, latest_at, human_id, human_at, human_direction) = (
        SELECT latest_id, latest_at, human_id, human_at, human_direction FROM contact_tails
        WHERE contact_tails.contact_id = conversations.contact_id);
    """, postgres=_PG_READ_MODELS),
    # 7: who did it, inbound hooks, search. Every audit entry names its actor
    # (dmtool.actor; NULL for entries written before). hook_queue holds the new
    # inbound DMs whose hooks.on_inbound has not run: queued by sync in the
    # transaction that stores the message, deleted (claimed) just before the
    # hook runs, so a hook runs at most once and one that a killed sync left
    # behind runs at the next sync. Then the search index (SEARCH_INDEX).
    # PostgreSQL gets the same column, index and table, and no search index:
    # search scans there (store/search.py; pg_trgm is not everywhere).
    Migration(sqlite="""
    ALTER TABLE audit ADD COLUMN actor TEXT;

    -- Newest messages first, for search: the newest matches of a common term
    -- are among the newest messages (store/search.py).
    CREATE INDEX messages_at ON messages (at);

    CREATE TABLE hook_queue (
        message_id  INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        hook        TEXT NOT NULL,          -- on_inbound
        queued_at   TEXT NOT NULL
    );
    """ + SEARCH_INDEX, postgres="""
    ALTER TABLE audit ADD COLUMN actor TEXT COLLATE "C";
    CREATE INDEX messages_at ON messages (at);
    CREATE TABLE hook_queue (
        message_id  BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        hook        TEXT COLLATE "C" NOT NULL,
        queued_at   TEXT COLLATE "C" NOT NULL
    );
    """),
    # 8: the reason you give when you record an opt-out yourself (`contacts
    # optout HANDLE --reason "asked by phone to stop"`), shown wherever the
    # opt-out is shown; the suppression keeps it through `contacts forget`.
    """
    ALTER TABLE contacts ADD COLUMN opt_out_reason TEXT;
    ALTER TABLE suppressions ADD COLUMN reason TEXT;
    """,
    # 9: an archive import stopped half way (killed, a full disk) must never let
    # the gate say yes on a partial history: the STOP may be in the part not yet
    # written. Before it writes any message an import records itself and every
    # participant of the archive; until it completes, the gate refuses them
    # (E_IMPORT_INCOMPLETE). Rows it adds carry its id, so that
    # `import archive --discard-incomplete` can take them out again.
    """
    CREATE TABLE archive_imports (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: rows keep it
        fingerprint  TEXT NOT NULL,     -- digest of the archive's content: a rerun continues it
        archive      TEXT NOT NULL,     -- the path it was imported from, for the hint
        account      TEXT NOT NULL,     -- @username of the archive
        started_at   TEXT NOT NULL,
        completed_at TEXT               -- NULL while incomplete
    );
    CREATE INDEX archive_imports_pending ON archive_imports (fingerprint) WHERE completed_at IS NULL;
    CREATE TABLE import_participants (
        user_id     TEXT NOT NULL,
        import_id   INTEGER NOT NULL REFERENCES archive_imports(id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, import_id)
    ) WITHOUT ROWID;
    CREATE INDEX import_participants_import ON import_participants (import_id);
    ALTER TABLE messages ADD COLUMN import_id INTEGER;
    ALTER TABLE posts ADD COLUMN import_id INTEGER;
    ALTER TABLE contacts ADD COLUMN import_id INTEGER;
    CREATE INDEX messages_import ON messages (import_id) WHERE import_id IS NOT NULL;
    """,
    # 10: snooze, and what the inbox's order and the digest's opt-out reviews
    # read. A snoozed conversation is hidden from the inbox and the digest's
    # waiting list until snoozed_until, or until they write after snoozed_at.
    # The inbox orders conversations by their last message that is not an
    # autoack (human_at), both skip the few snoozed ones, and the digest lists
    # contacts in opt-out review: an index each, so that none reads more rows
    # than it shows (and the waiting list stays on a covering index).
    """
    ALTER TABLE conversations ADD COLUMN snoozed_until TEXT;
    ALTER TABLE conversations ADD COLUMN snoozed_at TEXT;
    CREATE INDEX conversations_human ON conversations (state, human_at);
    CREATE INDEX conversations_snoozed ON conversations (snoozed_until)
        WHERE snoozed_until IS NOT NULL;
    CREATE INDEX contacts_review ON contacts (optout_review_at)
        WHERE optout_review_at IS NOT NULL;
    """,
    # 11: teams on one store (issue 15). Each draft names who wrote it, who
    # approved it and who sent it (backfilled from the audit log, which names
    # its actor since migration 7). An approval is bound to a hash of the exact
    # text, and remembers how far the messages and the audit log had gone when
    # it was given (ids, not clocks: members' clocks disagree), so that `send`
    # can tell whether the conversation moved since (the traffic cop). Claims
    # are soft locks on a conversation, one per contact, over when `until` passes.
    """
    ALTER TABLE drafts ADD COLUMN author TEXT;
    ALTER TABLE drafts ADD COLUMN approved_by TEXT;
    ALTER TABLE drafts ADD COLUMN approved_sha256 TEXT;
    ALTER TABLE drafts ADD COLUMN approved_message_mark INTEGER;
    ALTER TABLE drafts ADD COLUMN approved_audit_mark INTEGER;
    ALTER TABLE drafts ADD COLUMN sent_by TEXT;

    CREATE TEMP TABLE draft_actors AS
        SELECT draft_id, action, actor FROM audit WHERE id IN (
            SELECT max(id) FROM audit
            WHERE action IN ('drafted', 'approved', 'sent') AND draft_id IS NOT NULL
              AND actor IS NOT NULL
            GROUP BY draft_id, action);
    CREATE INDEX draft_actors_draft ON draft_actors (draft_id, action);
    UPDATE drafts SET
        author = (SELECT actor FROM draft_actors a WHERE a.draft_id = drafts.id
                  AND a.action = 'drafted'),
        approved_by = CASE WHEN approved_at IS NOT NULL THEN (
            SELECT actor FROM draft_actors a WHERE a.draft_id = drafts.id
            AND a.action = 'approved') END,
        sent_by = (SELECT actor FROM draft_actors a WHERE a.draft_id = drafts.id
                   AND a.action = 'sent');
    DROP TABLE draft_actors;
    -- Approvals given before: what was recorded by their time counts as seen.
    UPDATE drafts SET
        approved_message_mark = (SELECT COALESCE(max(id), 0) FROM messages
                                 WHERE recorded_at <= drafts.approved_at),
        approved_audit_mark = (SELECT COALESCE(max(id), 0) FROM audit
                               WHERE at <= drafts.approved_at)
    WHERE approved_at IS NOT NULL;

    CREATE TABLE claims (
        contact_id  INTEGER PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
        operator    TEXT NOT NULL,
        claimed_at  TEXT NOT NULL,
        until       TEXT NOT NULL,        -- no claim once this has passed
        minutes     INTEGER NOT NULL      -- how long a renewal (a draft to them) extends it
    );
    CREATE INDEX claims_operator ON claims (operator COLLATE NOCASE, until);
    """,
    # 12: a team on one store (issue 15). team_members says who may do what
    # (services/roles.py); once it has a row, the team's settings (team.*,
    # policy.*, lint.*, autoack.*, ...) are read from team_settings instead of
    # each member's config.toml, so nobody loosens the policy on their own
    # machine. Names are compared ignoring ASCII case (as `log --actor` does),
    # in the queries: no collation in the table, which PostgreSQL reads too.
    # And who made each record that has no audit entry of its own: a note's
    # author, who recorded consent evidence (sync, an import, a person). NULL
    # for rows written before. Blocks and opt-outs name theirs in the audit log.
    """
    CREATE TABLE team_members (
        name        TEXT PRIMARY KEY,       -- an operator name (dmtool.actor)
        role        TEXT NOT NULL,          -- owner, approver, drafter, viewer, service
        added_at    TEXT NOT NULL,
        added_by    TEXT
    );
    CREATE TABLE team_settings (
        key         TEXT PRIMARY KEY,       -- a config key (config.TEAM_PREFIXES)
        value       TEXT NOT NULL,          -- JSON
        set_at      TEXT NOT NULL,
        set_by      TEXT
    );
    ALTER TABLE notes ADD COLUMN author TEXT;
    ALTER TABLE evidence ADD COLUMN recorded_by TEXT;
    """,
    # 13: the ledger of requests to X (issue 16). On X's pay-per-use plan every
    # DM event read, DM sent and user read is billed, once per resource and UTC
    # day: each request is kept with what it returned (units per kind, raw and
    # after that same-day rule) so that `usage`, `report` and the budget can
    # say what was spent. x_read_ids holds each resource once per UTC day (the
    # first request that read it): what makes a later read of it free. After
    # x.ledger.keep_days a day's requests are folded into x_usage_days.
    """
    CREATE TABLE x_requests (
        id          INTEGER PRIMARY KEY,
        at          TEXT NOT NULL,          -- RFC 3339 UTC
        day         TEXT NOT NULL,          -- its UTC day, YYYY-MM-DD
        sandbox     INTEGER NOT NULL,       -- 1: the built-in sandbox X
        family      TEXT NOT NULL,          -- dm_read, dm_send, timelines, users, auth
        method      TEXT NOT NULL,
        endpoint    TEXT NOT NULL,          -- as X documents it: /2/users/:id/mentions
        status      INTEGER,                -- NULL: no answer
        error       TEXT,
        dm_events   INTEGER NOT NULL DEFAULT 0,  -- units returned
        users       INTEGER NOT NULL DEFAULT 0,
        posts       INTEGER NOT NULL DEFAULT 0,
        sends       INTEGER NOT NULL DEFAULT 0,
        b_dm_events INTEGER NOT NULL DEFAULT 0,  -- of them billable: not read before that UTC day
        b_users     INTEGER NOT NULL DEFAULT 0,
        b_posts     INTEGER NOT NULL DEFAULT 0,
        draft_id    INTEGER                 -- a send whose outcome is unknown, until reconciled
    );
    CREATE INDEX x_requests_day ON x_requests (day, sandbox);
    CREATE INDEX x_requests_draft ON x_requests (draft_id) WHERE draft_id IS NOT NULL;
    CREATE TABLE x_read_ids (
        day         TEXT NOT NULL,
        sandbox     INTEGER NOT NULL,
        kind        TEXT NOT NULL,          -- dm_events, users, posts
        rid         TEXT NOT NULL,          -- the resource's X id
        request_id  INTEGER NOT NULL REFERENCES x_requests(id) ON DELETE CASCADE,
        PRIMARY KEY (day, sandbox, kind, rid)
    );
    CREATE INDEX x_read_ids_request ON x_read_ids (request_id);
    CREATE TABLE x_usage_days (
        day         TEXT NOT NULL,
        sandbox     INTEGER NOT NULL,
        family      TEXT NOT NULL,
        endpoint    TEXT NOT NULL,
        requests    INTEGER NOT NULL,
        dm_events   INTEGER NOT NULL,
        users       INTEGER NOT NULL,
        posts       INTEGER NOT NULL,
        sends       INTEGER NOT NULL,
        b_dm_events INTEGER NOT NULL,
        b_users     INTEGER NOT NULL,
        b_posts     INTEGER NOT NULL,
        PRIMARY KEY (day, sandbox, family, endpoint)
    );
    """,
    # 14: `report` reads a period's messages from indexes alone (issue 16), as
    # counts per day and each contact's sequence of directions, never as a row
    # per message: the period's counts from (at, direction, source), the waits
    # from (contact_id, at, id, direction, source). Each replaces the narrower
    # index it extends: a query that read the old one reads the new one the
    # same way (same leading columns, same order), so there are no more
    # indexes to keep up than before.
    """
    CREATE INDEX messages_at_kind ON messages (at, direction, source);
    DROP INDEX messages_at;
    CREATE INDEX messages_contact_at_kind ON messages (contact_id, at, id, direction, source);
    DROP INDEX messages_contact_at;
    """,
    # 15: the store's own id, a UUID: `db migrate-to` tells a copy of this store
    # ("already migrated") from someone else's. New stores get it at creation.
    Migration(sqlite="""
    INSERT OR IGNORE INTO sync_state (key, value) VALUES ('store_id',
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
        || substr(lower(hex(randomblob(2))), 2) || '-'
        || substr('89ab', 1 + abs(random()) % 4, 1) || substr(lower(hex(randomblob(2))), 2)
        || '-' || lower(hex(randomblob(6))));
    """, postgres="""
    INSERT INTO sync_state (key, value) VALUES ('store_id', gen_random_uuid()::text)
        ON CONFLICT DO NOTHING;
    """),
]

# Migrations are found by what they hold, never by number (branches renumber).

# The schema version that brings the search index, the actor column and hooks.
SEARCH_MIGRATION = next(n for n, m in enumerate(MIGRATIONS, start=1)
                        if SEARCH_INDEX in sqlite_text(m))

# The migration above (tests refer to it by this name: the lead renumbers).
OPT_OUT_REASON_MIGRATION = next(i for i, m in enumerate(MIGRATIONS)
                                if "opt_out_reason" in sqlite_text(m))

# The migration that records archive imports before they write (issue 11).
IMPORT_MIGRATION = next(n for n, m in enumerate(MIGRATIONS, start=1)
                        if "archive_imports" in sqlite_text(m))

# The user_version after the report's covering indexes (issue 16).
REPORT_INDEX_MIGRATION = next(n for n, m in enumerate(MIGRATIONS, start=1)
                              if "messages_at_kind" in sqlite_text(m))

# The user_version after the snooze migration (tests upgrade to and from it).
SNOOZE_MIGRATION = next(n for n, m in enumerate(MIGRATIONS, start=1)
                        if "ADD COLUMN snoozed_until" in sqlite_text(m))

# The user_version after the team migration: attribution, approvals bound to
# their text, claims (issue 15).
APPROVALS_MIGRATION = next(n for n, m in enumerate(MIGRATIONS, start=1)
                           if "CREATE TABLE claims" in sqlite_text(m))

# The version that gives a store its id (see above).
STORE_ID_MIGRATION = next(n for n, m in enumerate(MIGRATIONS, start=1)
                          if "'store_id'" in sqlite_text(m))

# The user_version after the team migration (members, team settings, who made
# each record): tests upgrade to and from it.
TEAM_MIGRATION = next(n for n, m in enumerate(MIGRATIONS, start=1)
                      if "CREATE TABLE team_members" in sqlite_text(m))
# The request ledger (issue 16): tests upgrade to and from it by this name.
LEDGER_MIGRATION = next(n for n, m in enumerate(MIGRATIONS, start=1)
                        if "CREATE TABLE x_requests" in sqlite_text(m))
