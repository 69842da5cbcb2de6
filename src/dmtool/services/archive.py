"""`dmtool import archive`: X's "download your data" archive into the store.

The archive (a zip, or the folder it unpacks to) holds `data/account.js`,
`data/direct-messages.js` (+ `-part1.js`, ...) and `data/tweets.js` (+ parts),
each a JSON list behind a `window.YTD.<name>.partN = ` prefix (x-api.md). It
brings DM history older than the API's 30 days, and your public replies.

Two phases, so a refused archive changes nothing: `read_archive` parses and
validates every file (any problem is an InputError naming the file), then
`import_archive` writes in batched transactions. Writing is idempotent: DMs
are keyed by their event id, posts by their id, evidence by (kind, ref).
"""

from __future__ import annotations

import codecs
import json
import re
import shlex
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from dmtool import timeutil
from dmtool.errors import AuthError, DiskFull, DmtoolError, InputError
from dmtool.services import poller, ratelimits
from dmtool.services.identity import name_placeholders
from dmtool.services.sync import K_ARCHIVE_ACCOUNT, K_ME_ID, apply_optout_words, sync_lock
from dmtool.store import contacts as cstore
from dmtool.store import conversations as cvstore
from dmtool.store import imports
from dmtool.store import messages as mstore
from dmtool.timeutil import fmt, parse

if TYPE_CHECKING:
    from dmtool.appstate import AppState
    from dmtool.models import Contact
    from dmtool.store import Store
    from dmtool.store.sql import Conn

# A guard against zip bombs and wrong files, not a normal limit: X splits big
# archives into -partN files well below this.
MAX_MEMBER_BYTES = 1 << 30
READ_BYTES = 1 << 20  # read files in 1 MiB pieces: memory holds about one item at a time
BATCH = 1000  # rows per write transaction: a long import does not starve a sync or send

_PREFIX = re.compile(r"window\.YTD\.[A-Za-z0-9_]+\.part[0-9]+[ \t]*=[ \t\r\n]*")
_WS = re.compile(r"[ \t\r\n]*")
_DM_FILE = re.compile(r"direct-messages(?:-part([0-9]+))?\.js")
_GROUP_FILE = re.compile(r"direct-messages-group(?:-part[0-9]+)?\.js")
# Archives before 2020 name it tweet.js (window.YTD.tweet.part0).
_TWEET_FILE = re.compile(r"tweets?(?:-part([0-9]+))?\.js")
_ID = re.compile(r"[0-9]{1,25}")
_TWEET_TIME = re.compile(
    r"[A-Za-z]{3} ([A-Za-z]{3}) ([0-9]{1,2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2}) "
    r"([0-9]{4})")
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


# --- what an archive holds ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DM:
    id: str
    conversation_id: str
    at: str  # RFC 3339, as the store keeps times
    sender_id: str
    recipient_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One of your posts that replies to someone else."""

    id: str
    at: str
    text: str
    in_reply_to_user_id: str
    replied_to_id: str | None


@dataclass
class Archive:
    user_id: str
    username: str
    dms: list[DM] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    conversations: int = 0
    messages_read: int = 0  # every messageCreate, including those not importable
    skipped_files: list[str] = field(default_factory=list)
    # A message id met again (X's archives should not repeat one): skipped,
    # counted, and the first place it repeats kept for the warning.
    repeated: int = 0
    first_repeat: str | None = None
    message_ids: set[str] = field(default_factory=set, repr=False)

    def participants(self) -> set[str]:
        """Everyone this archive holds history with: whom the gate holds back
        while an import of it is incomplete."""
        people = {dm.sender_id if dm.sender_id != self.user_id else dm.recipient_id
                  for dm in self.dms}
        return people | {r.in_reply_to_user_id for r in self.replies}

    def fingerprint(self) -> str:
        """A digest of what the import writes: the same archive, wherever it is
        read from (zip or folder, moved or renamed), has the same one."""
        import hashlib

        h = hashlib.sha256(f"{self.user_id}\n".encode())
        for d in self.dms:
            h.update(json.dumps([d.id, d.conversation_id, d.at, d.sender_id, d.recipient_id,
                                 d.text], ensure_ascii=False).encode())
        for r in self.replies:
            h.update(json.dumps([r.id, r.at, r.in_reply_to_user_id, r.replied_to_id, r.text],
                                ensure_ascii=False).encode())
        return h.hexdigest()


@dataclass
class ImportResult:
    account: str
    conversations: int = 0
    messages_read: int = 0
    messages_new: int = 0
    evidence_new: int = 0
    contacts_new: int = 0
    replies_new: int = 0
    conversations_done: int = 0  # quiet history filed as done (see settle_old_archive_...)
    opted_out: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    messages_repeated: int = 0  # ids met again in the archive (counted in messages_skipped)
    first_repeat: str | None = None
    # Other imports still incomplete (their archives), holding people back.
    incomplete: list[str] = field(default_factory=list)
    # The naming step after the import (see name_contacts).
    contacts_named: int = 0
    contacts_unnamed: int = 0
    requests: int = 0
    naming_error: DmtoolError | None = None

    @property
    def messages_skipped(self) -> int:
        """Already stored, not part of a 1:1 conversation with you, or an id
        the archive repeats."""
        return self.messages_read - self.messages_new

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "messages_new": self.messages_new,
            "messages_skipped": self.messages_skipped,
            "evidence_new": self.evidence_new,
            "contacts_new": self.contacts_new,
            "opted_out": list(self.opted_out),
            "messages_read": self.messages_read,
            "messages_repeated": self.messages_repeated,
            "replies_new": self.replies_new,
            "conversations_done": self.conversations_done,
            "skipped_files": list(self.skipped_files),
            "account": self.account,
            "contacts_named": self.contacts_named,
            "contacts_unnamed": self.contacts_unnamed,
            "requests": self.requests,
            "naming_error": None if self.naming_error is None else {
                "code": self.naming_error.code, "message": self.naming_error.message},
            "incomplete_imports": list(self.incomplete),
        }


# --- where the files come from: a zip or a folder -------------------------------------------


class _Source:
    """The files of the archive's data/ folder."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def label(self, name: str) -> str:
        raise NotImplementedError

    def open(self, name: str) -> AbstractContextManager[IO[bytes]]:
        raise NotImplementedError


class _DirSource(_Source):
    def __init__(self, data: Path) -> None:
        self.data = data

    def names(self) -> list[str]:
        return sorted(p.name for p in self.data.iterdir() if p.is_file())

    def label(self, name: str) -> str:
        return str(self.data / name)

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        path = self.data / name
        try:
            size = path.stat().st_size
            f = path.open("rb")
        except OSError as e:
            raise InputError(f"{self.label(name)}: cannot read it: {e.strerror or e}") from None
        with f:
            if size > MAX_MEMBER_BYTES:
                raise _too_large(self.label(name), size)
            yield f


class _ZipSource(_Source):
    def __init__(self, path: Path, zf: zipfile.ZipFile, prefix: str) -> None:
        self.path = path
        self.zf = zf
        self.data = prefix + "data/"
        self.infos = {i.filename[len(self.data):]: i for i in zf.infolist()
                      if i.filename.startswith(self.data) and not i.is_dir()
                      and "/" not in i.filename[len(self.data):]}

    def names(self) -> list[str]:
        return sorted(self.infos)

    def label(self, name: str) -> str:
        return f"{self.data}{name} in {self.path}"

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        info = self.infos[name]
        # file_size bounds what ZipExtFile will return, so checking it stops a bomb.
        if info.file_size > MAX_MEMBER_BYTES:
            raise _too_large(self.label(name), info.file_size)
        if info.flag_bits & 0x1:
            raise InputError(f"{self.label(name)}: the file is encrypted",
                             hint="download the archive again from X, or unzip it and import the folder")
        try:
            f = self.zf.open(info)
        except (NotImplementedError, RuntimeError, OSError, zipfile.BadZipFile) as e:
            raise InputError(f"{self.label(name)}: cannot read it: {e}") from None
        with f:
            yield f


def _too_large(label: str, size: int) -> InputError:
    return InputError(f"{label}: {size:,} bytes is larger than an archive file can be "
                      f"({MAX_MEMBER_BYTES:,}); refusing it",
                      hint="is this X's own archive? Its DM and post files are split into parts")


def _unsafe_member(name: str) -> bool:
    """A member that would land outside the folder if the zip were unpacked."""
    n = name.replace("\\", "/")
    return n.startswith("/") or re.match(r"[A-Za-z]:", n) is not None or ".." in n.split("/")


@contextmanager
def _open_source(path: Path) -> Iterator[_Source]:
    if path.is_dir():
        try:  # the unpacked archive, or its data/ folder
            data = next((d for d in (path / "data", path) if (d / "account.js").is_file()), None)
        except OSError as e:  # a folder this user may not enter
            raise InputError(f"cannot read {path}: {e.strerror or e}") from None
        if data is not None:
            yield _DirSource(data)
            return
        raise InputError(f"{path}: no data/account.js here: is this X's archive?",
                         hint="point at the zip from X, or the folder that holds its data/ folder")
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError(f"{path}: not a zip file X could have made ({e})",
                         hint="point at the zip from X, or the folder it unpacks to") from None
    with zf:
        # Nothing is ever unpacked, but an archive with such a member was not
        # made by X: refuse it whole rather than guess what else was altered.
        bad = [i.filename for i in zf.infolist() if _unsafe_member(i.filename)]
        if bad:
            raise InputError(f"{path}: refusing the archive: member {bad[0]!r} points outside it",
                             hint="X's own archives have no such paths")
        names = {i.filename for i in zf.infolist()}
        # At the root, or under one folder (a re-zipped unpacked archive).
        found = sorted((n for n in names if n == "data/account.js"
                        or (n.endswith("/data/account.js") and n.count("/") == 2)), key=len)
        if not found:
            raise InputError(f"{path}: no data/account.js in the zip: is this X's archive?",
                             hint="X's archive zip holds data/account.js, data/direct-messages.js, ...")
        yield _ZipSource(path, zf, found[0][: -len("data/account.js")])


# --- reading one window.YTD file ---------------------------------------------------------------


class _JsList:
    """The items of the JSON list in one archive file, decoded piece by piece:
    memory holds a piece of text and one item, never the whole file."""

    def __init__(self, raw: IO[bytes], label: str) -> None:
        self.raw = raw
        self.label = label
        self.text = codecs.getincrementaldecoder("utf-8")()
        self.json = json.JSONDecoder()
        self.buf = ""
        self.pos = 0
        self.line = 1  # the line number of buf[0]
        self.nbytes = 0
        self.eof = False

    def fail(self, problem: str, at: int | None = None) -> NoReturn:
        line = self.line + self.buf.count("\n", 0, self.pos if at is None else at)
        raise InputError(f"{self.label}: line {line}: {problem}",
                         hint="is the archive complete? Download it again from X if it is damaged")

    def more(self, want: int = READ_BYTES) -> bool:
        """Append at least `want` more characters (fewer at the end). False at the end."""
        if self.eof:
            return False
        self.line += self.buf.count("\n", 0, self.pos)
        parts = [self.buf[self.pos:]]
        self.pos = 0
        got = 0
        try:
            while got < want:
                data = self.raw.read(READ_BYTES)
                if not data:
                    self.eof = True
                    parts.append(self.text.decode(b"", final=True))
                    break
                self.nbytes += len(data)
                if self.nbytes > MAX_MEMBER_BYTES:
                    raise _too_large(self.label, self.nbytes)
                piece = self.text.decode(data)
                parts.append(piece)
                got += len(piece)
        except UnicodeDecodeError:
            raise InputError(f"{self.label}: not UTF-8 text: is this X's archive?") from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise InputError(f"{self.label}: cannot read it: {e}",
                             hint="the archive may be damaged; download it again from X") from None
        self.buf = "".join(parts)
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end)."""
        while True:
            m = _WS.match(self.buf, self.pos)
            if m is not None:
                self.pos = m.end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def items(self) -> Iterator[Any]:
        while len(self.buf) < 256 and self.more():
            pass  # enough text to hold the prefix
        if self.buf.startswith("\ufeff"):
            self.buf = self.buf[1:]
        ch = self.peek()
        m = _PREFIX.match(self.buf, self.pos)
        if m is not None:
            self.pos = m.end()
            ch = self.peek()
        elif ch != "[":
            self.fail("does not start with `window.YTD.<name>.partN = [`: is this X's archive?")
        if ch != "[":
            self.fail("expected a JSON list after `window.YTD.<name>.partN =`")
        self.pos += 1
        n = 0
        if self.peek() == "]":
            self.pos += 1
        else:
            while True:
                n += 1
                yield self.item(n)
                ch = self.peek()
                self.pos += 1
                if ch == "]":
                    break
                if ch != ",":
                    self.fail(f"expected ',' or ']' after item {n}" if ch else
                              "the file ends in the middle of the list", self.pos - 1)
        if self.peek() == ";":
            self.pos += 1
        if self.peek():
            self.fail("unexpected text after the list")

    def item(self, n: int) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.json.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # Probably an item cut by the end of the piece read: read more
                # (doubling, so a big item is not parsed over and over).
                if self.more(max(READ_BYTES, len(self.buf) - self.pos)):
                    continue
                self.fail(f"item {n} is not valid JSON ({e.msg})", e.pos)
            except RecursionError:
                self.fail(f"item {n} is nested too deeply")
            # A number or word that ends exactly where the text read ends may go on.
            if end == len(self.buf) and self.more():
                continue
            self.pos = end
            return value


def _items(source: _Source, name: str) -> Iterator[Any]:
    with source.open(name) as raw:
        yield from _JsList(raw, source.label(name)).items()


# --- validating items -----------------------------------------------------------------------


def _id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def _tweet_time(text: str) -> datetime:
    """'Tue Jul 27 10:00:00 +0000 2021' (parsed by hand: %a/%b follow the locale)."""
    m = _TWEET_TIME.fullmatch(text.strip())
    if m is None or m.group(1).lower() not in _MONTHS:
        raise ValueError(text)
    mon, day, hh, mm, ss, sign, oh, om, year = m.groups()
    offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
    return datetime(int(year), _MONTHS[mon.lower()], int(day), int(hh), int(mm), int(ss),
                    tzinfo=timezone(offset))


# X (then Twitter) opened in March 2006: an archive time outside [then, now + a
# day] is damage, and a future time would keep consent alive for ever.
_EARLIEST = datetime(2006, 3, 1, tzinfo=UTC)


def _plausible(at: datetime, where: str, what: str) -> str:
    if not _EARLIEST <= at <= timeutil.now() + timedelta(days=1):
        raise InputError(f"{where}: {what} {fmt(at)} is not a plausible time for an X archive")
    return fmt(at) or ""


def _utf8(text: str, where: str) -> str:
    """Refuse text JSON can carry but UTF-8 cannot (lone surrogates), here in the
    read phase, so that a refused archive changes nothing."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{where}: text that is not valid Unicode (a broken character)") from None
    return text


def _read_account(source: _Source) -> tuple[str, str]:
    label = source.label("account.js")
    for item in _items(source, "account.js"):
        acc = item.get("account") if isinstance(item, dict) else None
        if not isinstance(acc, dict):
            raise InputError(f"{label}: expected items like {{\"account\": {{\"accountId\", ...}}}}")
        user_id, username = _id(acc.get("accountId")), acc.get("username")
        if user_id is None or not isinstance(username, str) or not username:
            raise InputError(f"{label}: the account has no numeric accountId and username")
        return user_id, username
    raise InputError(f"{label}: no account in it: is the archive complete?")


def _read_dms(source: _Source, name: str, arc: Archive, seen: set[str]) -> None:
    label = source.label(name)
    for n, item in enumerate(_items(source, name), 1):
        conv = item.get("dmConversation") if isinstance(item, dict) else None
        if not isinstance(conv, dict):
            raise InputError(f"{label}: item {n}: expected {{\"dmConversation\": {{...}}}}")
        conv_id, msgs = conv.get("conversationId"), conv.get("messages")
        if not isinstance(conv_id, str) or not conv_id or not isinstance(msgs, list):
            raise InputError(f"{label}: item {n}: a conversation needs a conversationId "
                             "and a list of messages")
        # 1:1 conversation ids are the two user ids joined by '-'; groups have others.
        one_to_one = arc.user_id in conv_id.split("-") and conv_id.count("-") == 1
        for k, entry in enumerate(msgs, 1):
            if not isinstance(entry, dict):
                raise InputError(f"{label}: item {n}, message {k}: expected an object")
            mc = entry.get("messageCreate")
            if mc is None:
                continue  # reactions, joins and other events carry no message
            where = f"{label}: item {n}, message {k}"
            if not isinstance(mc, dict):
                raise InputError(f"{where}: messageCreate is not an object")
            msg_id, sender, recipient = _id(mc.get("id")), _id(mc.get("senderId")), \
                _id(mc.get("recipientId"))
            if msg_id is None or sender is None or recipient is None:
                raise InputError(f"{where}: id, senderId and recipientId must be numeric ids")
            text, created = mc.get("text", ""), mc.get("createdAt")
            if not isinstance(text, str):
                raise InputError(f"{where}: text is not a string")
            try:
                when = parse(created) if isinstance(created, str) else None
            except ValueError:
                when = None
            if when is None:
                raise InputError(f"{where}: createdAt {created!r} is not a time like "
                                 "2021-07-27T10:00:00.000Z")
            at = _plausible(when, where, "createdAt")
            text = _utf8(text, where)
            arc.messages_read += 1
            if msg_id in arc.message_ids:
                arc.repeated += 1
                arc.first_repeat = arc.first_repeat or f"id {msg_id} ({where})"
                continue
            arc.message_ids.add(msg_id)
            if one_to_one and sender != recipient and arc.user_id in (sender, recipient):
                arc.dms.append(DM(msg_id, conv_id, at, sender, recipient, text))
                seen.add(conv_id)


def _read_tweets(source: _Source, name: str, arc: Archive) -> None:
    label = source.label(name)
    for n, item in enumerate(_items(source, name), 1):
        tw = item.get("tweet", item) if isinstance(item, dict) else None
        if not isinstance(tw, dict):
            raise InputError(f"{label}: item {n}: expected {{\"tweet\": {{...}}}}")
        tweet_id, created = _id(tw.get("id_str")), tw.get("created_at")
        if tweet_id is None:
            raise InputError(f"{label}: item {n}: id_str must be a numeric id")
        target = tw.get("in_reply_to_user_id_str")
        if target is None or target == arc.user_id:
            continue  # not a reply, or a thread of your own
        if _id(target) is None:
            raise InputError(f"{label}: item {n}: in_reply_to_user_id_str must be a numeric id")
        replied_to = tw.get("in_reply_to_status_id_str")
        if replied_to is not None and _id(replied_to) is None:
            raise InputError(f"{label}: item {n}: in_reply_to_status_id_str must be a numeric id")
        text = tw.get("full_text", tw.get("text", ""))
        if not isinstance(text, str):
            raise InputError(f"{label}: item {n}: full_text is not a string")
        try:
            when = _tweet_time(created) if isinstance(created, str) else None
        except ValueError:
            when = None
        if when is None:
            raise InputError(f"{label}: item {n}: created_at {created!r} is not a time like "
                             "'Tue Jul 27 10:00:00 +0000 2021'")
        at = _plausible(when, f"{label}: item {n}", "created_at")
        text = _utf8(text, f"{label}: item {n}")
        arc.replies.append(Reply(tweet_id, at, text, target, replied_to))


def _parts(names: list[str], pattern: re.Pattern[str]) -> list[str]:
    """The files of one kind, the unnumbered one first, then by part number."""
    found = [(int(m.group(1) or -1), n) for n in names if (m := pattern.fullmatch(n))]
    return [n for _, n in sorted(found)]


def read_archive(path: Path) -> Archive:
    """Parse and validate the whole archive. Raises InputError naming the file."""
    with _open_source(path) as source:
        names = source.names()  # _open_source made sure account.js is among them
        user_id, username = _read_account(source)
        arc = Archive(user_id=user_id, username=username)
        arc.skipped_files = [source.label(n) for n in names if _GROUP_FILE.fullmatch(n)]
        seen: set[str] = set()
        for name in _parts(names, _DM_FILE):
            _read_dms(source, name, arc, seen)
        for name in _parts(names, _TWEET_FILE):
            _read_tweets(source, name, arc)
    arc.conversations = len(seen)
    arc.message_ids.clear()  # needed only to find repeats while reading
    # Oldest first, so opt-out words apply in the order they were written.
    arc.dms.sort(key=lambda d: (d.at, int(d.id)))
    arc.replies.sort(key=lambda r: (r.at, int(r.id)))
    return arc


# --- writing -----------------------------------------------------------------------------------


# Conversations known only from the archive and quiet for this long are history:
# they are marked done so the inbox does not ask you to answer them (`reopen` brings one back).
HISTORY = timedelta(days=30)


def _batches(rows: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start:start + BATCH]


def _contact(conn: Conn, user_id: str, now: str, result: ImportResult,
             import_id: int) -> Contact:
    """The contact for an X user id. The archive has no handles for other people:
    a new contact is named user_<id> until a sync sees them (and renames it);
    an existing one keeps its handle."""
    c = cstore.find_by_user_id(conn, user_id)
    if c is not None:
        return c
    c, created = cstore.upsert_x_user(conn, user_id, f"user_{user_id}", None, now=now)
    if created:
        result.contacts_new += 1
        imports.mark_contact(conn, c.id, import_id)
    return c


def import_archive(store: Store, arc: Archive, *, now: str, label: str,
                   keep_waiting: bool = False) -> ImportResult:
    """Write a validated archive into the store. Idempotent. Conversations it
    brings in that have been quiet for 30 days are filed as done, except, with
    `keep_waiting`, those whose last message is theirs.

    Before any message, the import is recorded as pending with every
    participant (the gate refuses them until it completes); a rerun of the same
    archive continues it. A full disk stops it with DiskFull saying that the
    part written is kept and a rerun finishes it."""
    known = store.get_state(K_ME_ID) or store.get_state(K_ARCHIVE_ACCOUNT)
    if known and known != arc.user_id:
        raise InputError(f"this archive is @{arc.username}'s (user {arc.user_id}), but this profile "
                         f"belongs to user {known}; nothing imported",
                         hint="import it into that account's profile: `dmtool --profile NAME import "
                              "archive ...`")
    with store.tx() as conn:
        if not known:
            # Sync checks this before it adopts an account: another account's history
            # must never become consent evidence for this one.
            store.set_state(K_ARCHIVE_ACCOUNT, arc.user_id)
        # Absolute, so the hint to run it again works from any folder (and cron).
        where = str(Path(label).absolute())
        import_id = imports.start(conn, fingerprint=arc.fingerprint(), archive=where,
                                  account=arc.username, now=now, participants=arc.participants())
    try:
        return _write(store, arc, import_id, now=now, label=label, keep_waiting=keep_waiting)
    except DiskFull:
        again = shlex.quote(where)
        raise DiskFull(
            f"disk full: the import of {where} stopped part way. The part imported so far is "
            "kept; until the import is finished, dmtool will not DM the people in this archive",
            hint=f"free some space, then run `dmtool import archive {again}` again: it finishes "
                 "the import (nothing is imported twice)") from None


def _write(store: Store, arc: Archive, import_id: int, *, now: str, label: str,
           keep_waiting: bool) -> ImportResult:
    result = ImportResult(account=arc.username, conversations=arc.conversations,
                          messages_read=arc.messages_read, skipped_files=list(arc.skipped_files),
                          messages_repeated=arc.repeated, first_repeat=arc.first_repeat)
    me = arc.user_id
    existing = cvstore.conversation_ids(store.conn)
    # Rows another incomplete import wrote that this archive holds too become
    # this import's, so discarding that one never takes them away.
    adopt = any(p["id"] != import_id for p in imports.pending(store.conn))
    ids: dict[str, int] = {}  # user id -> contact id, to look each person up once
    for batch in _batches(arc.dms):
        with store.tx() as conn:
            for dm in batch:
                inbound = dm.sender_id != me
                other = dm.sender_id if inbound else dm.recipient_id
                if other not in ids:
                    ids[other] = _contact(conn, other, now, result, import_id).id
                contact_id = ids[other]
                # recorded_at is the message's own time: history is not news for
                # the digest, which reports messages recorded since it last ran.
                if not mstore.add_message(conn, event_id=dm.id, conversation_id=dm.conversation_id,
                                          contact_id=contact_id, direction="in" if inbound else "out",
                                          text=dm.text, at=dm.at, source="archive",
                                          now=min(dm.at, now), import_id=import_id):
                    if adopt:
                        imports.adopt_message(conn, dm.id, import_id)
                    continue
                result.messages_new += 1
                if inbound:
                    result.evidence_new += cstore.add_evidence(conn, contact_id, "inbound_dm", dm.at,
                                                               dm.id, None, now=now)
                    apply_optout_words(conn, contact_id, dm.text, dm.at, now=now,
                                       opted_out=result.opted_out, source="archive")
    touched: set[str] = set()
    for batch in _batches(arc.replies):
        with store.tx() as conn:
            for r in batch:
                # Kept as posts so that a sync can pair them with mentions later.
                if mstore.add_post(conn, post_id=r.id, kind="own", author_id=me, text=r.text, at=r.at,
                                   in_reply_to_user_id=r.in_reply_to_user_id,
                                   replied_to_id=r.replied_to_id, conversation_id=None,
                                   import_id=import_id):
                    result.replies_new += 1
                    touched.add(r.in_reply_to_user_id)
                elif adopt:
                    imports.adopt_post(conn, r.id, import_id)
    _public_exchanges(store, touched, now, result, import_id)
    with store.tx() as conn:
        result.conversations_done = mstore.settle_old_archive_conversations(
            conn, before=fmt(parse(now) - HISTORY) or now, skip=existing, keep_waiting=keep_waiting)
        cstore.audit(conn, "archive_imported", now=now, archive=label, account=arc.username,
                     **{k: v for k, v in result.to_dict().items() if k not in _NOT_AUDITED})
        imports.complete(conn, import_id, now=now)
        result.incomplete = [p["archive"] for p in imports.pending(conn)]
    return result


# Not in the archive_imported audit entry: known only after the naming step.
_NOT_AUDITED = frozenset({"account", "opted_out", "skipped_files", "contacts_named",
                          "contacts_unnamed", "requests", "naming_error", "incomplete_imports"})


def _public_exchanges(store: Store, user_ids: set[str], now: str, result: ImportResult,
                      import_id: int) -> None:
    """A reply of yours is consent only as half of an exchange (policy §1): the
    person must have mentioned or replied to you, which the archive cannot show
    (it holds only your posts). So count only replies that pair with a mention
    a sync stored, by the same rule sync uses. A reply to someone who only DMed
    you adds nothing: the DM is its own evidence, and your own post must not
    renew their consent."""
    if not user_ids:
        return
    rows = mstore.public_exchanges(store.conn, user_ids)
    with store.tx() as conn:
        for r in rows:
            c = _contact(conn, r["user_id"], now, result, import_id)
            result.evidence_new += cstore.add_evidence(conn, c.id, "public_exchange", r["at"], r["id"],
                                                       r["text"], now=now)


def run_import(st: AppState, path: Path, *, keep_waiting: bool = False) -> ImportResult:
    """Read, validate, then import `path` into the profile's store.

    The store is opened only once the archive has been read whole, so a
    refused archive leaves no trace. Holds the sync lock while writing: one
    writer of X history at a time."""
    arc = read_archive(path)
    st.paths.ensure()
    with sync_lock(st.store, "import: ", poller.me(st, "import")):
        result = import_archive(st.store, arc, now=fmt(timeutil.now()) or "", label=str(path),
                                keep_waiting=keep_waiting)
        name_contacts(st, result)
    return result


def discard_incomplete(st: AppState) -> list[dict[str, Any]]:
    """Take out what every incomplete import wrote (for when its archive is
    gone): see store/imports.discard. Returns what each one removed."""
    st.paths.ensure()
    with sync_lock(st.store, "import: ", poller.me(st, "import")):
        store = st.store
        done = []
        now = fmt(timeutil.now()) or ""
        for p in imports.pending(store.conn):
            with store.tx() as conn:
                removed = imports.discard(conn, p["id"])
                cstore.audit(conn, "archive_discarded", now=now, archive=p["archive"],
                             account=p["account"], started_at=p["started_at"], removed=removed)
            done.append({"archive": p["archive"], "account": p["account"],
                         "started_at": p["started_at"], **removed})
    return done


def name_contacts(st: AppState, result: ImportResult) -> None:
    """The archive has user ids, not handles: ask X for the handles of contacts
    known only by id (`user_<id>`), so that a person can be found by the handle
    you type. One users lookup per 100 of them.

    Best effort, after the import is committed: without credentials nothing is
    asked; a failure (rate limit, X or the network down, credentials refused)
    is kept in `result.naming_error` for the caller to warn about, never raised.
    Importing again (it adds nothing twice) or a sync names them later."""
    store = st.store
    before_count = cstore.placeholder_count(store.conn)
    if before_count == 0:
        return
    try:
        if not st.can_reach_x():
            raise AuthError("there are no X credentials, so dmtool could not ask X for their "
                            "handles", hint="run `dmtool auth login`")
        from dmtool.services import ledger

        client = ledger.client(st)
        before = client.requests_made
        try:
            with ratelimits.guarded(store, "users", "dmtool could not ask X for their handles",
                                    hint="wait until then"):
                name_placeholders(store, client.users_by_ids, now=fmt(timeutil.now()) or "")
        finally:
            result.requests = client.requests_made - before
    except DmtoolError as e:
        result.naming_error = e
    # Counted from the store: batches X answered before an error are kept.
    result.contacts_unnamed = cstore.placeholder_count(store.conn)
    result.contacts_named = before_count - result.contacts_unnamed
    if result.contacts_named:
        # Report opt-outs under the handles X just gave.
        result.opted_out = [_current_handle(store, h) for h in result.opted_out]


def _current_handle(store: Store, handle: str) -> str:
    if cstore.find(store.conn, handle) is None and handle.startswith("user_"):
        c = cstore.find_by_user_id(store.conn, handle.removeprefix("user_"))
        if c is not None:
            return c.handle
    return handle
