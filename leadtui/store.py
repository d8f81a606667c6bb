"""The store: the only module with SQL. Leads live here for years.

One :class:`Store` wraps one database (SQLite file or PostgreSQL) through Peewee. It owns the
schema and its migrations, the raw items (the original bytes of every email and request), the
lead upsert with its dedupe keys, the triage actions and their audit trail, the change feed,
the capture lease, source health and per-source sync state.

Change feed. Every write that changes what a viewer shows takes a value from one counter row
(``UPDATE counter SET value = value + 1 RETURNING value``) as its last statement before commit.
The row lock on the counter is held until commit, so on PostgreSQL a transaction that took
value 10 has committed before any transaction can take 11: values commit in order and a viewer
that has seen 11 can never be missing 10. On SQLite writers are serialised anyway.

Notification. Viewers wait with :class:`ChangeWaiter`: on SQLite it polls ``PRAGMA
data_version`` (cheap, changes when another connection commits); on PostgreSQL it LISTENs to a
channel every writer NOTIFYs inside its transaction, and treats a reconnect as "something
changed", so the caller runs its catch-up query.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import itertools
import json
import logging
import os
import random
import re
import socket
import sqlite3
import stat
import statistics
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import unquote, urlparse

import peewee

from leadtui.config import unsupported_db_scheme
from leadtui.parser import LEAD_FIELDS

# Peewee's bundled stubs type query rows as model instances even after .tuples(). The store
# turns rows into its own typed dataclasses (Lead, Event, …), so it uses Peewee untyped.
pw: Any = peewee

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
STATUSES = ("new", "contacted", "quoted", "won", "lost", "spam")
CONTACTED_STATUSES = frozenset({"contacted", "quoted", "won", "lost"})
RAW_STATUSES = ("pending", "parsed", "ignored", "failed")
DEDUPE_WINDOW_SECONDS = 48 * 3600
LEASE_NAME = "capture"

# The contract's lead fields (FORMATS.md 1.1), in contract order, without "kind": the parser
# defines the contract; the store keeps the same names, so no layer renames a field.
CONTRACT_FIELDS = tuple(f for f in LEAD_FIELDS if f != "kind")
# Fields the store may fill in from a later copy of the same lead (e.g. the API adds its id).
_MERGEABLE = tuple(f for f in CONTRACT_FIELDS if f not in {"source", "channel", "received_at"})
SEARCH_FIELDS = (
    "name", "company", "phone", "email", "product", "city", "message", "messages_text"
)  # fmt: skip
# How much of a buyer's later messages a lead is found by (the newest are kept).
MESSAGES_TEXT_LIMIT = 4000


class StoreError(Exception):
    """The database cannot be used. The message says what happened and what to do."""


def current_actor() -> str:
    """The OS user: who did a triage action."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in a container
        return os.environ.get("USER") or "unknown"


# --------------------------------------------------------------------------- plain data


@dataclass(frozen=True, slots=True)
class Lead:
    """One lead as every layer above the store sees it: the contract's fields plus triage state."""

    id: int
    source: str
    channel: str
    external_id: str | None
    query_type: str | None
    received_at: str
    name: str | None
    company: str | None
    phone: str | None
    phone_alt: str | None
    email: str | None
    email_alt: str | None
    address: str | None
    city: str | None
    state: str | None
    pincode: str | None
    country: str | None
    product: str | None
    category: str | None
    quantity: str | None
    unit: str | None
    order_value: str | None
    requirement_type: str | None
    message: str | None
    specs: dict[str, str]
    call_duration: int | None
    receiver_phone: str | None
    message_id: str | None
    verified: list[str]
    member_since: str | None
    status: str
    owner: str | None
    follow_up: str | None
    received_ts: float
    first_seen_ts: float
    updated_ts: float
    contacted_ts: float | None
    contacted_by: str | None
    enquiry_no: int
    channels: str
    missed_by_email: bool
    last_action: str | None
    last_actor: str | None
    last_action_ts: float | None
    notes_count: int
    messages_count: int
    seq: int
    raw_id: int | None

    def contract(self) -> dict[str, Any]:
        """The lead in the contract's field names and order (FORMATS.md 1.1)."""
        out: dict[str, Any] = {"kind": "lead"}
        for name in CONTRACT_FIELDS:
            out[name] = getattr(self, name)
        return out

    def to_json(self) -> dict[str, Any]:
        """The contract plus id, triage state and timestamps: ``list --json``, exports, API."""
        out = {"id": self.id, **self.contract()}
        del out["kind"]
        out.update(
            status=self.status,
            owner=self.owner,
            follow_up=self.follow_up,
            first_seen_at=_iso(self.first_seen_ts),
            updated_at=_iso(self.updated_ts),
            contacted_at=_iso(self.contacted_ts) if self.contacted_ts else None,
            contacted_by=self.contacted_by,
            enquiry_no=self.enquiry_no,
            missed_by_email=self.missed_by_email,
            notes=self.notes_count,
        )
        return out

    @property
    def response_seconds(self) -> float | None:
        """Arrival to first contact: the speed that wins marketplace buyers."""
        if self.contacted_ts is None:
            return None
        return max(0.0, self.contacted_ts - self.first_seen_ts)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    lead_id: int
    ts: float
    actor: str
    action: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    lead_id: int
    ts: float
    text: str


@dataclass(frozen=True, slots=True)
class RawSummary:
    id: int
    source: str
    kind: str
    channel: str | None
    received_ts: float
    status: str
    error: str | None
    summary: str | None
    size: int
    attempts: int


# Source states that mean a source is not capturing: doctor fails, /healthz is degraded and
# the TUI header shows them in red.
FAILING_STATES = frozenset({"login failed", "reconnecting", "key rejected", "error"})


@dataclass(frozen=True, slots=True)
class Health:
    source: str
    state: str
    detail: str = ""
    last_success_ts: float | None = None
    last_error: str | None = None
    next_retry_ts: float | None = None
    updated_ts: float = 0.0
    holder: str | None = None

    @property
    def failing(self) -> bool:
        return self.state in FAILING_STATES


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    holder: str
    host: str
    pid: int
    acquired_ts: float
    expires_ts: float


@dataclass(frozen=True, slots=True)
class ChangeSet:
    cursor: int
    leads: list[Lead]
    raw_changed: bool
    health_changed: bool
    more: bool = False  # the page was full: ask again from ``cursor`` for the rest

    def __bool__(self) -> bool:
        return bool(self.leads or self.raw_changed or self.health_changed)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the store did with one raw item's parse results."""

    raw_id: int
    status: str  # new | updated | duplicate | reply | ignored | failed
    lead_ids: tuple[int, ...] = ()
    new_lead_ids: tuple[int, ...] = ()
    detail: str = ""


class RawSpec(Protocol):
    """What :meth:`Store.add_raw_many` needs of an item (``capture.RawItem`` has it)."""

    @property
    def body(self) -> bytes: ...
    @property
    def source(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def dedupe_key(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class LeadQuery:
    status: str | None = None  # one of STATUSES, "open" (new+contacted+quoted), or None: all
    search: str | None = None
    since_ts: float | None = None
    owner: str | None = None
    follow_up_due: bool = False
    before_id: int | None = None  # keyset paging: leads older than this id
    after_id: int | None = None  # keyset paging the other way
    limit: int = 100


@dataclass
class Stats:
    per_day: list[tuple[date, int]]
    by_type: dict[str, int]
    by_source: dict[str, int]
    median_response_today: float | None
    median_response_week: float | None
    contacted_today: int
    new_today: int
    awaiting_contact: int


# --------------------------------------------------------------------------- models

_Model = TypeVar("_Model", bound=pw.Model)


class _Base(pw.Model):
    class Meta:
        legacy_table_names = False


class _Meta(_Base):
    key = pw.CharField(primary_key=True, max_length=64)
    value = pw.TextField()


class _Counter(_Base):
    name = pw.CharField(primary_key=True, max_length=32)
    value = pw.BigIntegerField()


class _RawItem(_Base):
    id = pw.BigAutoField()
    source = pw.CharField(max_length=200)
    kind = pw.CharField(max_length=8)  # email | json
    channel = pw.CharField(max_length=8, null=True)
    content_hash = pw.CharField(max_length=64, unique=True)
    dedupe_key = pw.CharField(max_length=300, null=True, unique=True)
    body = pw.BlobField()  # zlib-compressed original bytes
    size = pw.IntegerField()
    received_ts = pw.DoubleField()
    updated_ts = pw.DoubleField()
    status = pw.CharField(max_length=12, default="pending", index=True)
    error = pw.TextField(null=True)
    summary = pw.TextField(null=True)
    message_id = pw.CharField(max_length=500, null=True)
    attempts = pw.IntegerField(default=0)
    seq = pw.BigIntegerField(default=0, index=True)


class _Lead(_Base):
    id = pw.BigAutoField()
    source = pw.CharField(max_length=20)
    channel = pw.CharField(max_length=8)
    external_id = pw.CharField(max_length=100, null=True)
    query_type = pw.CharField(max_length=8, null=True)
    received_at = pw.CharField(max_length=40)
    received_ts = pw.DoubleField(index=True)
    name = pw.TextField(null=True)
    company = pw.TextField(null=True)
    phone = pw.CharField(max_length=20, null=True)
    phone_alt = pw.CharField(max_length=20, null=True)
    email = pw.CharField(max_length=320, null=True)
    email_alt = pw.CharField(max_length=320, null=True)
    address = pw.TextField(null=True)
    city = pw.TextField(null=True)
    state = pw.TextField(null=True)
    pincode = pw.CharField(max_length=10, null=True)
    country = pw.CharField(max_length=2, null=True)
    product = pw.TextField(null=True)
    category = pw.TextField(null=True)
    quantity = pw.CharField(max_length=40, null=True)
    unit = pw.CharField(max_length=60, null=True)
    order_value = pw.TextField(null=True)
    requirement_type = pw.TextField(null=True)
    message = pw.TextField(null=True)
    specs = pw.TextField(default="{}")
    call_duration = pw.IntegerField(null=True)
    receiver_phone = pw.CharField(max_length=20, null=True)
    message_id = pw.CharField(max_length=500, null=True)
    verified = pw.CharField(max_length=40, default="[]")
    member_since = pw.CharField(max_length=60, null=True)
    # triage
    status = pw.CharField(max_length=12, default="new")
    owner = pw.CharField(max_length=64, null=True)
    follow_up = pw.CharField(max_length=10, null=True)  # YYYY-MM-DD
    first_seen_ts = pw.DoubleField()
    updated_ts = pw.DoubleField()
    contacted_ts = pw.DoubleField(null=True)
    contacted_by = pw.CharField(max_length=64, null=True)
    buyer_key = pw.CharField(max_length=320, null=True)
    product_key = pw.TextField(null=True)
    enquiry_no = pw.IntegerField(default=1)
    channels = pw.CharField(max_length=40, default="")
    missed_by_email = pw.BooleanField(default=False)
    last_action = pw.CharField(max_length=40, null=True)
    last_actor = pw.CharField(max_length=64, null=True)
    last_action_ts = pw.DoubleField(null=True)
    notes_count = pw.IntegerField(default=0)
    messages_count = pw.IntegerField(default=0)
    messages_text = pw.TextField(null=True)  # the buyer's later messages, for search
    seq = pw.BigIntegerField(default=0, index=True)
    raw_id = pw.BigIntegerField(null=True)


class _LeadSource(_Base):
    """Which raw items delivered a lead, and by which channel."""

    lead_id = pw.BigIntegerField()
    raw_id = pw.BigIntegerField(index=True)
    channel = pw.CharField(max_length=8)
    ts = pw.DoubleField()

    class Meta:
        primary_key = pw.CompositeKey("lead_id", "raw_id")


class _Event(_Base):
    id = pw.BigAutoField()
    lead_id = pw.BigIntegerField(index=True)
    ts = pw.DoubleField()
    actor = pw.CharField(max_length=64)
    action = pw.CharField(max_length=40)
    detail = pw.TextField(null=True)


class _LeadMessage(_Base):
    id = pw.BigAutoField()
    lead_id = pw.BigIntegerField(index=True)
    raw_id = pw.BigIntegerField(null=True)
    ts = pw.DoubleField()
    text = pw.TextField()


class _Lease(_Base):
    name = pw.CharField(primary_key=True, max_length=32)
    holder = pw.CharField(max_length=200, null=True)
    host = pw.CharField(max_length=200, null=True)
    pid = pw.IntegerField(null=True)
    acquired_ts = pw.DoubleField(null=True)
    expires_ts = pw.DoubleField(default=0)


class _SourceHealth(_Base):
    source = pw.CharField(primary_key=True, max_length=200)
    state = pw.CharField(max_length=40)
    detail = pw.TextField(default="")
    last_success_ts = pw.DoubleField(null=True)
    last_error = pw.TextField(null=True)
    next_retry_ts = pw.DoubleField(null=True)
    updated_ts = pw.DoubleField()
    holder = pw.CharField(max_length=200, null=True)
    seq = pw.BigIntegerField(default=0, index=True)


class _SyncState(_Base):
    key = pw.CharField(primary_key=True, max_length=300)
    value = pw.TextField()
    updated_ts = pw.DoubleField()


_MODELS: tuple[type[_Base], ...] = (
    _Meta,
    _Counter,
    _RawItem,
    _Lead,
    _LeadSource,
    _Event,
    _LeadMessage,
    _Lease,
    _SourceHealth,
    _SyncState,
)


class _Models:
    """The model classes bound to one database (subclasses, so several stores can coexist)."""

    def __init__(self, db: pw.Database) -> None:
        def bind(base: type[_Model]) -> type[_Model]:
            table = re.sub(r"(?<!^)(?=[A-Z])", "_", base.__name__.lstrip("_")).lower()
            meta = type("Meta", (), {"database": db, "table_name": table})
            return type(base.__name__.lstrip("_"), (base,), {"Meta": meta})

        self.Meta = bind(_Meta)
        self.Counter = bind(_Counter)
        self.RawItem = bind(_RawItem)
        self.Lead = bind(_Lead)
        self.LeadSource = bind(_LeadSource)
        self.Event = bind(_Event)
        self.LeadMessage = bind(_LeadMessage)
        self.Lease = bind(_Lease)
        self.SourceHealth = bind(_SourceHealth)
        self.SyncState = bind(_SyncState)
        lead = self.Lead
        lead.add_index(
            lead.source, lead.external_id, unique=True, where=lead.external_id.is_null(False)
        )
        lead.add_index(lead.message_id, unique=True, where=lead.message_id.is_null(False))
        lead.add_index(lead.buyer_key, lead.product_key)
        lead.add_index(lead.phone, lead.product_key)  # schema 2: the dedupe lookup by phone
        lead.add_index(lead.email, lead.product_key)  # … and by email
        lead.add_index(lead.status, lead.id)
        lead.add_index(lead.owner, lead.id)
        lead.add_index(lead.first_seen_ts)
        self.all: tuple[type[pw.Model], ...] = (
            self.Meta,
            self.Counter,
            self.RawItem,
            self.Lead,
            self.LeadSource,
            self.Event,
            self.LeadMessage,
            self.Lease,
            self.SourceHealth,
            self.SyncState,
        )


# Migrations: version N -> N+1. Each gets the store (for raw SQL and the migrator) inside a
# transaction. Add one entry per schema change; never edit a released one.
def _migrate_1_dedupe_indexes(store: Store) -> None:
    """Schema 2: index the phone/email + product dedupe lookup, which scanned the 48-hour
    window of leads (milliseconds per lead once a seller has thousands a day)."""
    for column in ("phone", "email"):
        store.db.execute_sql(
            f"CREATE INDEX IF NOT EXISTS lead_{column}_product_key ON lead ({column}, product_key)"
        )


def _migrate_2_phone_suffix_search(store: Store) -> None:
    """Schema 3: index phone numbers backwards too, so their last digits find the lead."""
    if store.backend == "postgres":
        # Dropped only: schema 4 adds a column the search reads, then creates it again.
        store.db.execute_sql("ALTER TABLE lead DROP COLUMN IF EXISTS search")  # and its index
        return
    fields = ("name", "company", "phone", "email", "product", "city", "message")
    lead = store.m.Lead
    last = 0
    while True:  # in batches, so a big database never sits in memory
        rows = list(
            lead.select(lead.id, *(getattr(lead, f) for f in fields))
            .where(lead.id > last)
            .order_by(lead.id)
            .limit(5000)
            .tuples()
        )
        if not rows:
            return
        for row in rows:
            store._index_search(row[0], dict(zip(fields, row[1:], strict=True)))
        last = rows[-1][0]


def _migrate_3_search_messages(store: Store) -> None:
    """Schema 4: a buyer's later messages (replies, WhatsApp, a form sent again) find the lead."""
    if "messages_text" not in {c.name for c in store.db.get_columns("lead")}:
        store.db.execute_sql("ALTER TABLE lead ADD COLUMN messages_text TEXT")
    msg = store.m.LeadMessage
    rows = msg.select(msg.lead_id, msg.text).order_by(msg.lead_id, msg.id).tuples().iterator()
    for lead_id, group in itertools.groupby(rows, key=lambda row: int(row[0])):
        store._add_said(lead_id, [str(text) for _lead_id, text in group])  # a lead at a time
    if store.backend == "postgres":
        store.db.execute_sql("ALTER TABLE lead DROP COLUMN IF EXISTS search")  # and its index
        store._create_search()


MIGRATIONS: dict[int, Callable[[Store], None]] = {
    1: _migrate_1_dedupe_indexes,
    2: _migrate_2_phone_suffix_search,
    3: _migrate_3_search_messages,
}


# --------------------------------------------------------------------------- helpers


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _parse_received(text: str | None) -> float:
    if text:
        try:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.astimezone()
            return parsed.timestamp()
        except ValueError:
            pass
    return time.time()


def _product_key(product: str | None) -> str | None:
    if not product:
        return None
    return re.sub(r"\s+", " ", product).strip().casefold() or None


def _compress(body: bytes) -> bytes:
    return zlib.compress(body, 1)  # fast: emails still shrink about 4x


def _messages_text(current: str | None, texts: Sequence[str]) -> str:
    """A lead's searchable message text with ``texts`` added, the newest kept within the limit
    (from a word's start, so a cut word cannot match as a prefix of something else)."""
    joined = "\n".join([*([current] if current else []), *texts])
    if len(joined) <= MESSAGES_TEXT_LIMIT:
        return joined
    kept = joined[-MESSAGES_TEXT_LIMIT:]
    return re.split(r"\s+", kept, maxsplit=1)[-1] or kept


def _decompress(body: bytes | memoryview) -> bytes:
    data = bytes(body)
    try:
        return zlib.decompress(data)
    except zlib.error:
        return data


def _search_words(text: str) -> list[list[str]]:
    """The words of a search, each with the other forms it may match.

    Phone numbers are indexed forwards and reversed ("r" + the national number backwards),
    so the last digits of a number, which is how people often remember it, match too. A
    number written with its trunk or international prefix (``07079117117``,
    ``00917079117117``) also matches without the leading zeros.
    """
    found = []
    for word in re.findall(r"\w+", text, flags=re.UNICODE)[:12]:
        forms = [word]
        if word.isdigit() and len(word) >= 3:
            if len(bare := word.lstrip("0")) >= 3 and bare != word:
                forms.append(bare)
            forms.append("r" + word[::-1])
        found.append(forms)
    return found


def _fts_query(text: str) -> str:
    """User text to an FTS5 query: every word must match as a prefix, in any field."""
    return " AND ".join(
        "(" + " OR ".join(f'"{f}"*' for f in forms) + ")" for forms in _search_words(text)
    )


def _pg_tsquery(text: str) -> str:
    return " & ".join(
        "(" + " | ".join(f"{f}:*" for f in forms) + ")" for forms in _search_words(text)
    )


def _search_body(values: dict[str, Any]) -> str:
    """The text a lead is found by (SQLite; PostgreSQL computes the same in _PG_SEARCH)."""
    parts = [str(values.get(f) or "") for f in SEARCH_FIELDS]
    phone = str(values.get("phone") or "")
    if phone:
        national = phone[-10:]
        parts += [national, "r" + national[::-1]]  # as people type it, and backwards
    return " ".join(p for p in parts if p)


_PG_SEARCH = (
    "to_tsvector('simple', regexp_replace("
    "coalesce(name,'') || ' ' || coalesce(company,'') || ' ' "
    "|| coalesce(phone,'') || ' ' || coalesce(right(phone, 10),'') || ' ' "
    "|| coalesce('r' || reverse(right(phone, 10)),'') || ' ' "
    "|| coalesce(email,'') || ' ' || coalesce(product,'') || ' ' "
    "|| coalesce(city,'') || ' ' || coalesce(message,'') || ' ' "
    "|| coalesce(messages_text,''), "
    "'[^[:alnum:]]+', ' ', 'g'))"
)


def _summary_of(result: dict[str, Any]) -> str:
    kind = result.get("kind")
    if kind == "lead":
        who = result.get("name") or result.get("company") or result.get("phone") or "unknown"
        return f"{who} — {result.get('product') or 'no product'}"
    if kind == "reply":
        return f"reply from {result.get('name') or 'unknown'} — {result.get('product') or ''}"
    if kind == "ignored":
        return str(result.get("reason") or "ignored")
    return str(result.get("error") or "error")


# --------------------------------------------------------------------------- opening


_READONLY_HINT = "; check that this user may write it and its folder (leadtui doctor shows how)"


def _use_wal(path: str) -> None:
    """Put a SQLite file in WAL mode (a no-op when it is), retrying a busy moment.

    SQLite answers "database is locked" at once, without its busy timeout, when two
    connections switch a new file to WAL together (two processes starting on a new database).
    """
    deadline = time.monotonic() + 10
    delay = 0.005
    while True:
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
                conn.execute("PRAGMA journal_mode = wal").fetchall()
            return
        except sqlite3.DatabaseError as exc:  # also "file is not a database"
            text = _first_line(exc)
            busy = "locked" in text or "busy" in text
            if not busy or time.monotonic() > deadline:
                hint = _READONLY_HINT if "readonly" in text else ""
                raise StoreError(f"cannot open the database {path}: {text}{hint}") from None
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.1)


def _first_line(exc: BaseException) -> str:
    """An exception's message without the SQL and caret lines a driver appends."""
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _sqlite_path(url: str) -> str:
    if url.startswith("sqlite:///"):
        return unquote(url[len("sqlite:///") :]) or ":memory:"
    if url.startswith("sqlite://"):
        return unquote(url[len("sqlite://") :]) or ":memory:"
    return url


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _check_url(url: str) -> None:
    """Refuse a URL of another database (``mysql://…``) instead of making a file of that name."""
    if scheme := unsupported_db_scheme(url):
        raise StoreError(
            f"leadtui cannot use a {scheme}:// database; set --db / LEADTUI_DB to "
            "a file path, sqlite:///path or postgresql://user@host/dbname"
        )


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL and for ``:memory:``."""
    if is_postgres_url(url):
        return None
    path = _sqlite_path(url)
    return None if path == ":memory:" else Path(path).expanduser()


def _create_sqlite_file(path: Path) -> None:
    """Create an empty database file; in a group-writable folder, a group-writable one.

    A team shares a database in a folder its group may write (often setgid). With the usual
    umask 022 SQLite would create the file -rw-r--r--, and every teammate but its creator
    would get "attempt to write a readonly database". SQLite gives the -wal and -shm files
    the database file's permissions, so making the file group-writable is enough.
    """
    try:
        if not path.parent.stat().st_mode & stat.S_IWGRP:
            return  # a private folder: SQLite creates the file as the umask says
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError:
        return  # it exists (another process was first), or SQLite reports why it cannot
    try:
        os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | stat.S_IRGRP | stat.S_IWGRP)
    finally:
        os.close(fd)


def describe_url(url: str) -> str:
    """The URL without a password, for messages."""
    if is_postgres_url(url):
        parsed = urlparse(url)
        netloc = parsed.hostname or ""
        if parsed.username:
            netloc = f"{parsed.username}@{netloc}"
        if parsed.port:
            netloc += f":{parsed.port}"
        return f"postgresql://{netloc}{parsed.path}"
    return _sqlite_path(url)


class Store:
    """One open database. Thread-safe: Peewee keeps one connection per thread."""

    WRITE_RETRIES: ClassVar[int] = 8
    PG_SEARCH_WINDOW: ClassVar[int] = 50_000  # newest leads a PostgreSQL search walks by id

    def __init__(self, db: pw.Database, url: str) -> None:
        self.db = db
        self.url = url
        self.backend = "postgres" if isinstance(db, pw.PostgresqlDatabase) else "sqlite"
        self.m = _Models(db)
        self._channel = "leadtui_changes"
        self._pg_sql: dict[str, str] = {}
        self._closed = False
        self._local = threading.local()  # this thread's _Deferred while it applies a batch

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(cls, url: str, *, create: bool = True, create_folder: bool = True) -> Store:
        """Open (and create or migrate) the database at ``url``.

        ``create_folder=False`` refuses a SQLite path whose folder is missing (a path the user
        typed: a typo should not make folders); the default path's folder is created.
        """
        _check_url(url)
        if is_postgres_url(url):
            db: pw.Database = pw.PostgresqlDatabase(
                url.replace("postgres://", "postgresql://", 1),
                autoconnect=True,
                connect_timeout=10,
                prefer_psycopg3=True,
            )
        else:
            path = _sqlite_path(url)
            if path != ":memory:":
                file = Path(path).expanduser()
                parent = file.parent
                if create and not create_folder and not parent.is_dir():
                    raise StoreError(
                        f"the folder {parent} for the database {path} does not exist; "
                        "create it, or check --db / LEADTUI_DB"
                    )
                if create:
                    try:
                        parent.mkdir(parents=True, exist_ok=True)
                    except OSError as exc:
                        raise StoreError(
                            f"cannot create the folder {parent} for the database: {exc.strerror}"
                        ) from None
                    if not file.exists():
                        _create_sqlite_file(file)
                elif not file.exists():
                    raise StoreError(
                        f"no database at {path}; run leadtui once to create it, or check --db"
                    )
                path = str(file)
                _use_wal(path)
            db = pw.SqliteDatabase(
                path,
                pragmas={  # WAL is set by _use_wal: it stays with the file
                    "synchronous": "normal",
                    "foreign_keys": 1,
                    "busy_timeout": 10_000,
                    "cache_size": -16_000,
                    "temp_store": "memory",
                },
                lock_type="IMMEDIATE",
                check_same_thread=False,
                timeout=10,
            )
        store = cls(db, url)
        try:
            store._prepare_schema()
        except pw.OperationalError as exc:
            db.close()
            hint = _READONLY_HINT if "readonly" in str(exc) else ""
            raise StoreError(
                f"cannot open the database {describe_url(url)}: {_first_line(exc)}{hint}"
            ) from None
        except pw.DatabaseError as exc:
            db.close()
            if store.backend == "postgres":
                raise StoreError(
                    f"the database {describe_url(url)} cannot be used: {_first_line(exc)}; "
                    "check the database, schema (search_path) and the user's rights in "
                    "--db / LEADTUI_DB"
                ) from None
            raise StoreError(
                f"the file {describe_url(url)} is not a leadtui database ({_first_line(exc)}); "
                "check --db"
            ) from None
        return store

    def close(self) -> None:
        """Close this thread's connection (other threads close theirs on exit)."""
        self._closed = True
        with contextlib.suppress(Exception):
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prepare_schema(self) -> None:
        with self._schema_lock():
            tables = set(self.db.get_tables())
            if "meta" not in tables:
                self.db.create_tables(list(self.m.all), safe=True)
                self._create_search()
                self.m.Meta.insert(key="schema_version", value=str(SCHEMA_VERSION)).execute()
                self.m.Counter.insert(name="change", value=0).execute()
                return
            row = self.m.Meta.get_or_none(self.m.Meta.key == "schema_version")
            version = int(row.value) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database {describe_url(self.url)} was written by a newer leadtui "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade leadtui"
                )
            for step in range(version, SCHEMA_VERSION):
                log.info("migrating database schema %d -> %d", step, step + 1)
                MIGRATIONS[step](self)
                self.m.Meta.update(value=str(step + 1)).where(
                    self.m.Meta.key == "schema_version"
                ).execute()

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Serialise schema creation between processes that start at the same moment."""
        with self.db.atomic():
            if self.backend == "postgres":
                self.db.execute_sql("SELECT pg_advisory_xact_lock(74201)")
            yield

    def _create_search(self) -> None:
        if self.backend == "sqlite":
            self.db.execute_sql(
                "CREATE VIRTUAL TABLE IF NOT EXISTS lead_fts USING fts5("
                "body, tokenize = 'unicode61 remove_diacritics 2')"
            )
        else:
            self.db.execute_sql(
                "ALTER TABLE lead ADD COLUMN IF NOT EXISTS search tsvector"
                f" GENERATED ALWAYS AS ({_PG_SEARCH}) STORED"
            )
            self.db.execute_sql("CREATE INDEX IF NOT EXISTS lead_search ON lead USING gin(search)")

    def _index_search(self, lead_id: int, values: dict[str, Any], *, new: bool = False) -> None:
        if self.backend != "sqlite":
            return  # PostgreSQL keeps a generated tsvector column
        body = _search_body(values)
        deferred = self._batching()
        if deferred is not None and (new or lead_id in deferred.search):
            deferred.search[lead_id] = body  # its row is inserted with the batch's others
            return
        if not new:
            self.db.execute_sql("DELETE FROM lead_fts WHERE rowid = ?", (lead_id,))
        self.db.execute_sql(_INSERT_FTS_SQL, (lead_id, body))

    def _search_values(self, lead_id: int) -> dict[str, Any] | None:
        """The fields a lead is found by, as its row holds them now."""
        lead = self.m.Lead
        row = (
            lead.select(*(getattr(lead, f) for f in SEARCH_FIELDS))
            .where(lead.id == lead_id)
            .tuples()
            .first()
        )
        return None if row is None else dict(zip(SEARCH_FIELDS, row, strict=True))

    def _reindex(self, lead_id: int) -> None:
        """Index a lead's search text again from its row (SQLite)."""
        if self.backend == "sqlite" and (values := self._search_values(lead_id)) is not None:
            self._index_search(lead_id, values)

    def _add_said(self, lead_id: int, texts: Sequence[str]) -> None:
        """Make a buyer's later messages find their lead in a search."""
        if not texts or (values := self._search_values(lead_id)) is None:
            return
        said = _messages_text(values["messages_text"], texts)
        self.m.Lead.update(messages_text=said).where(self.m.Lead.id == lead_id).execute()
        self._index_search(lead_id, {**values, "messages_text": said})

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    def _retrying(self, fn: Callable[[], _T]) -> _T:
        """Run a write transaction, retrying when another process holds the lock."""
        delay = 0.05
        for attempt in range(self.WRITE_RETRIES):
            try:
                with self._write():
                    return fn()
            except pw.OperationalError as exc:
                text = str(exc).lower()
                transient = "locked" in text or "busy" in text
                reconnect = self.backend == "postgres" and (
                    "closed" in text or "terminat" in text or "connection" in text
                )
                if not (transient or reconnect) or attempt == self.WRITE_RETRIES - 1:
                    hint = _READONLY_HINT if "readonly" in text else ""
                    raise StoreError(
                        f"the database {describe_url(self.url)} refused a write: "
                        f"{_first_line(exc)}{hint}"
                    ) from exc
                if reconnect:
                    with contextlib.suppress(Exception):
                        self.db.close()
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except pw.InterfaceError as exc:
                with contextlib.suppress(Exception):
                    self.db.close()
                if attempt == self.WRITE_RETRIES - 1:
                    raise StoreError(
                        f"lost the connection to {describe_url(self.url)}: {exc}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sql(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run hand-written SQL (``?`` placeholders) on this thread's connection.

        The capture path runs a dozen statements per lead; building each with Peewee's query
        builder cost more than the database work, so that path uses fixed SQL strings.
        """
        if self.backend == "postgres":
            text = self._pg_sql.get(sql)
            if text is None:
                text = self._pg_sql[sql] = sql.replace("%", "%%").replace("?", "%s")
            sql = text
        return self.db.execute_sql(sql, tuple(params))

    def _sql_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """:meth:`_sql` once per row of parameters, in one call to the driver."""
        if self.backend == "postgres":
            sql = sql.replace("%", "%%").replace("?", "%s")
        cursor = self.db.cursor()
        try:
            with pw.__exception_wrapper__:  # driver errors as Peewee's, as execute_sql does
                cursor.executemany(sql, [tuple(r) for r in rows])
        finally:
            cursor.close()

    def _row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self._sql(sql, params).fetchone()
        return None if row is None else tuple(row)

    def _next_seq(self) -> int:
        """Take the next change-sequence value. Call it last in a write transaction."""
        cursor = self.db.execute_sql(
            "UPDATE counter SET value = value + 1 WHERE name = 'change' RETURNING value"
        )
        value = int(cursor.fetchone()[0])
        if self.backend == "postgres":
            self.db.execute_sql("SELECT pg_notify(%s, %s)", (self._channel, str(value)))
        return value

    def _stamp_leads(self, lead_ids: Iterable[int]) -> int:
        ids = sorted(set(lead_ids))
        seq = self._next_seq()
        if ids:
            marks = ",".join("?" * len(ids))
            self._sql(f"UPDATE lead SET seq = ? WHERE id IN ({marks})", [seq, *ids])
        return seq

    # ------------------------------------------------------------------ raw items

    def add_raw(
        self,
        body: bytes,
        *,
        source: str,
        kind: str,
        channel: str | None = None,
        dedupe_key: str | None = None,
        received_ts: float | None = None,
    ) -> tuple[int, bool]:
        """Commit a raw item. Returns ``(raw_id, is_new)``; an identical item is not stored twice.

        ``dedupe_key`` (e.g. an HTTP Idempotency-Key) makes a different body count as the same item.
        """
        now = time.time()
        return self._retrying(
            lambda: self._add_raw_txn(
                body,
                source=source,
                kind=kind,
                channel=channel,
                dedupe_key=dedupe_key,
                received_ts=received_ts,
                now=now,
            )
        )

    def add_raw_many(self, items: Sequence[RawSpec]) -> list[tuple[int, bool]]:
        """Commit several raw items in one transaction: ``(raw_id, is_new)`` for each, in order.

        Group commit for the HTTP ingest: one commit for a burst of requests instead of one
        each. Duplicates (by content or ``dedupe_key``) are recognised as in :meth:`add_raw`,
        also between items of the same batch.
        """
        now = time.time()

        def txn() -> list[tuple[int, bool]]:
            return [
                self._add_raw_txn(
                    i.body,
                    source=i.source,
                    kind=i.kind,
                    channel=i.channel,
                    dedupe_key=i.dedupe_key,
                    received_ts=None,
                    now=now,
                )
                for i in items
            ]

        return self._retrying(txn) if items else []

    def _add_raw_txn(
        self,
        body: bytes,
        *,
        source: str,
        kind: str,
        channel: str | None,
        dedupe_key: str | None,
        received_ts: float | None,
        now: float,
    ) -> tuple[int, bool]:
        digest = hashlib.sha256(body).hexdigest()
        lookup: tuple[str, tuple[str, ...]]
        if dedupe_key is None:
            lookup = ("SELECT id FROM raw_item WHERE content_hash = ?", (digest,))
        else:
            lookup = (
                "SELECT id FROM raw_item WHERE content_hash = ? OR dedupe_key = ? LIMIT 1",
                (digest, dedupe_key),
            )
        # Insert first: a new item (the usual case) costs one statement. When the same body or
        # dedupe key is there already (from us or from another process), nothing is inserted
        # and that row is the answer.
        inserted = self._row(
            "INSERT INTO raw_item (source, kind, channel, content_hash, dedupe_key, body,"
            " size, received_ts, updated_ts, status, attempts, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0)"
            " ON CONFLICT DO NOTHING RETURNING id",
            (
                source[:200],
                kind,
                channel,
                digest,
                dedupe_key,
                _compress(body),
                len(body),
                received_ts or now,
                now,
            ),
        )
        if inserted is not None:
            return int(inserted[0]), True
        found = self._row(*lookup)
        if found is None:
            raise StoreError(f"raw item {digest[:12]} vanished while it was being stored")
        return int(found[0]), False

    def raw_body(self, raw_id: int) -> bytes | None:
        raw = self.m.RawItem
        body = raw.select(raw.body).where(raw.id == raw_id).scalar()
        return None if body is None else _decompress(body)

    def raw_info(self, raw_id: int) -> RawSummary | None:
        rows = self._raw_summaries(self.m.RawItem.id == raw_id, limit=1)
        return rows[0] if rows else None

    def raw_outcome(self, raw_id: int) -> Outcome:
        """The outcome of an item already processed (for a duplicate delivery)."""
        raw = self.m.RawItem
        status = raw.select(raw.status).where(raw.id == raw_id).scalar() or "pending"
        links = self.m.LeadSource
        ids = tuple(
            int(r[0]) for r in links.select(links.lead_id).where(links.raw_id == raw_id).tuples()
        )
        return Outcome(raw_id, "duplicate", ids, (), f"already received (item {raw_id}, {status})")

    def pending_raw_ids(self, older_than: float = 0.0) -> list[int]:
        """Raw items committed but never processed (a crash between the two commits)."""
        raw = self.m.RawItem
        cutoff = time.time() - older_than
        q = raw.select(raw.id).where((raw.status == "pending") & (raw.updated_ts <= cutoff))
        return [int(r[0]) for r in q.order_by(raw.id).tuples()]

    def _raw_summaries(self, where: Any, limit: int = 200) -> list[RawSummary]:
        raw = self.m.RawItem
        q = (
            raw.select(
                raw.id,
                raw.source,
                raw.kind,
                raw.channel,
                raw.received_ts,
                raw.status,
                raw.error,
                raw.summary,
                raw.size,
                raw.attempts,
            )
            .where(where)
            .order_by(raw.id.desc())
            .limit(limit)
        )
        return [RawSummary(*row) for row in q.tuples()]

    def review_items(self, limit: int = 500) -> list[RawSummary]:
        """The review queue: raw items that failed to become leads, newest first."""
        return self._raw_summaries(self.m.RawItem.status == "failed", limit)

    def review_count(self) -> int:
        raw = self.m.RawItem
        return int(raw.select().where(raw.status == "failed").count())

    def failed_raw_ids(self) -> list[int]:
        raw = self.m.RawItem
        q = raw.select(raw.id).where(raw.status == "failed").order_by(raw.id)
        return [int(r[0]) for r in q.tuples()]

    # ------------------------------------------------------------------ applying results

    def apply(self, raw_id: int, results: Sequence[dict[str, Any]]) -> Outcome:
        """Upsert the leads (or attach the reply) parsed from one raw item, and link them.

        Idempotent: applying the same results again changes nothing and says "duplicate".
        """
        return self.apply_many([(raw_id, results)])[0]

    def apply_many(self, batch: Sequence[tuple[int, Sequence[dict[str, Any]]]]) -> list[Outcome]:
        """:meth:`apply` for several raw items in one transaction (group commit), in order.

        All or nothing: when one item raises, nothing is applied and the caller can fall back
        to applying them one by one.
        """
        if not batch:
            return []

        def txn() -> list[Outcome]:
            ids = sorted({raw_id for raw_id, _res in batch})
            marks = ",".join("?" * len(ids))
            found = {r[0] for r in self._sql(f"SELECT id FROM raw_item WHERE id IN ({marks})", ids)}
            if missing := [i for i in ids if i not in found]:
                raise StoreError(f"raw item {missing[0]} does not exist")
            self._local.deferred = deferred = _Deferred()
            try:
                done = [self._apply_txn(raw_id, res) for raw_id, res in batch]
                self._flush(deferred)
            finally:
                self._local.deferred = None
            # One change value for the whole batch: it commits as one, so a viewer sees all
            # of it or none, and the counter and its lock are taken once.
            seq = self._stamp_leads(lead for _outcome, changed, _raw in done for lead in changed)
            self._sql_many(
                "UPDATE raw_item SET status = ?, error = ?, summary = ?, message_id = ?,"
                " attempts = attempts + 1, updated_ts = ?, seq = ? WHERE id = ?",
                [(*raw[:-1], seq, raw[-1]) for _outcome, _changed, raw in done],
            )
            return [outcome for outcome, _changed, _raw in done]

        return self._retrying(txn)

    def _apply_txn(
        self, raw_id: int, results: Sequence[dict[str, Any]]
    ) -> tuple[Outcome, list[int], tuple[Any, ...]]:
        """Apply one item's results; returns its outcome, the leads it changed, and the
        values of its raw item's row (without the change value, which the batch adds)."""
        now = time.time()
        lead_ids: list[int] = []
        new_ids: list[int] = []
        changed: list[int] = []
        errors: list[str] = []
        ignored: list[str] = []
        replies = 0
        message_id = next((r.get("message_id") for r in results if r.get("message_id")), None)
        for result in results:
            kind = result.get("kind")
            if kind == "lead" and (chat := self._continue_chat(result, raw_id, now)) is not None:
                lead_ids.append(chat)
                if chat not in changed:
                    changed.append(chat)
                replies += 1
            elif kind == "lead":
                lead_id, created, change = self._upsert_lead(result, raw_id, now)
                lead_ids.append(lead_id)
                if created:
                    new_ids.append(lead_id)
                if change:
                    changed.append(lead_id)
                if change == "appended":  # the buyer wrote again: answered as a reply is
                    replies += 1
            elif kind == "reply":
                target = self._attach_reply(result, raw_id, now)
                if target is None:
                    errors.append(
                        f"reply from {result.get('name') or 'an unknown buyer'} about "
                        f"{result.get('product') or 'an unknown product'} matches no lead"
                    )
                else:
                    lead_ids.append(target)
                    if target not in changed:
                        changed.append(target)
                    replies += 1
            elif kind == "ignored":
                ignored.append(str(result.get("reason") or "not a lead"))
            else:
                errors.append(str(result.get("error") or "could not be understood"))

        if errors:
            status, outcome_status, detail = "failed", "failed", "; ".join(errors)
        elif lead_ids:
            status = "parsed"
            if new_ids:
                outcome_status = "new"
            elif replies:
                outcome_status = "reply"
            elif changed:
                outcome_status = "updated"
            else:
                outcome_status = "duplicate"
            detail = ""
        elif ignored:
            status, outcome_status, detail = "ignored", "ignored", "; ".join(ignored)
        else:  # e.g. a pull response with no leads (CODE 204)
            status, outcome_status, detail = "parsed", "ignored", "no leads in this item"
        summary = "; ".join(_summary_of(r) for r in results[:3]) if results else detail
        raw_row = (
            status,
            detail if status in {"failed", "ignored"} else None,
            summary[:500] or None,
            message_id,
            now,
            raw_id,
        )
        outcome = Outcome(raw_id, outcome_status, tuple(lead_ids), tuple(new_ids), detail)
        return outcome, changed, raw_row

    def _find_existing(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """The lead this result is another copy of, by the dedupe keys of FORMATS.md 9."""
        select = f"SELECT {_EXISTING_SQL} FROM lead WHERE "
        found: tuple[Any, ...] | None = None
        if values.get("external_id"):
            found = self._row(
                select + "source = ? AND external_id = ? LIMIT 1",
                (values["source"], values["external_id"]),
            )
        if found is None and values.get("message_id"):
            found = self._row(select + "message_id = ? LIMIT 1", (values["message_id"],))
        product_key = _product_key(values.get("product"))
        if found is None and product_key:
            ts = _parse_received(values.get("received_at"))
            window = (ts - DEDUPE_WINDOW_SECONDS, ts + DEDUPE_WINDOW_SECONDS)
            phone, email = values.get("phone"), values.get("email")  # never a masked phone
            rows = (
                self._sql(
                    select + "(phone = ? OR email = ?) AND product_key = ?"
                    " AND received_ts BETWEEN ? AND ? ORDER BY id",
                    (phone, email, product_key, *window),
                ).fetchall()
                if phone or email
                else []
            )
            for column, value in (("phone", phone), ("email", email)):
                index = _EXISTING_COLS.index(column)
                candidate = next((r for r in rows if value and r[index] == value), None)
                if candidate is None:
                    continue
                other_id = candidate[_EXISTING_COLS.index("external_id")]
                if values.get("external_id") and other_id and other_id != values["external_id"]:
                    continue  # two different marketplace enquiries: not the same lead
                found = candidate
                break
        return None if found is None else dict(zip(_EXISTING_COLS, found, strict=True))

    def _upsert_lead(
        self, result: dict[str, Any], raw_id: int, now: float
    ) -> tuple[int, bool, str | None]:
        """Store a lead or merge it into the one it copies: ``(lead_id, created, change)``,
        where change says what a copy did to its lead: "merged" (new fields), "appended" (a
        new message) or None (nothing new)."""
        values = {f: result.get(f) for f in CONTRACT_FIELDS}
        values["source"] = values["source"] or "other"
        values["channel"] = values["channel"] or "api"
        channel = str(values["channel"])
        existing = self._find_existing(values)
        lead = self.m.Lead
        if existing is not None:
            updates: dict[str, Any] = {}
            for name in _MERGEABLE:
                new = values.get(name)
                if new in (None, "", [], {}):
                    continue
                current = existing[name]
                if name == "specs":
                    merged = {**new, **json.loads(current or "{}")}
                    if merged != json.loads(current or "{}"):
                        updates[name] = json.dumps(merged, ensure_ascii=False)
                elif name == "verified":
                    have = json.loads(current or "[]")
                    merged_list = [v for v in ("phone", "email", "gst") if v in have or v in new]
                    if merged_list != have:
                        updates[name] = json.dumps(merged_list)
                elif current in (None, ""):
                    updates[name] = new
            lead_id = int(existing["id"])
            channels = str(existing["channels"]).split()
            if channel not in channels:
                updates["channels"] = " ".join([*channels, channel])
                if channel == "email" and existing["missed_by_email"]:
                    updates["missed_by_email"] = False
            self._link(lead_id, raw_id, channel, now)
            # The buyer filled the website form again (within the dedupe window) with something
            # new to say: that is a message on the lead, not lost in a duplicate.
            said = values.get("message")
            appended = (
                channel == "api"
                and bool(said and existing["message"] and said != existing["message"])
                and self._append_message(lead_id, raw_id, str(said), values, now)
            )
            if updates:
                if "phone" in updates or "email" in updates:
                    updates["buyer_key"] = (
                        existing["buyer_key"] or updates.get("phone") or updates.get("email")
                    )
                if "product" in updates:
                    updates["product_key"] = _product_key(updates["product"])
                updates["updated_ts"] = now
                lead.update(**updates).where(lead.id == lead_id).execute()
                self._event(lead_id, "capture", "merged", self._merge_detail(updates, channel))
                if any(k in SEARCH_FIELDS for k in updates):
                    self._reindex(lead_id)
                return lead_id, False, "appended" if appended else "merged"
            return lead_id, False, "appended" if appended else None

        buyer_key = values.get("phone") or values.get("email")
        row = dict(values)
        row["specs"] = json.dumps(values.get("specs") or {}, ensure_ascii=False)
        row["verified"] = json.dumps(values.get("verified") or [])
        row.update(
            received_at=values.get("received_at") or _iso(now),
            received_ts=_parse_received(values.get("received_at")),
            status="new",
            first_seen_ts=now,
            updated_ts=now,
            buyer_key=buyer_key,
            product_key=_product_key(values.get("product")),
            enquiry_no=buyer_key,  # the SQL counts this buyer's earlier leads
            channels=channel,
            missed_by_email=channel == "pull",
            notes_count=0,
            messages_count=0,
            seq=0,
            raw_id=raw_id,
        )
        inserted = self._row(_INSERT_LEAD_SQL, [row.get(c) for c in _INSERT_LEAD_COLS])
        if inserted is None:  # another process inserted this lead (same id or Message-ID) first
            existing = self._find_existing(values)
            if existing is None:
                raise StoreError("a lead vanished while its duplicate was being stored")
            self._link(int(existing["id"]), raw_id, channel, now)
            return int(existing["id"]), False, None
        lead_id = int(inserted[0])
        self._link(lead_id, raw_id, channel, now)
        self._index_search(lead_id, values, new=True)
        self._event(lead_id, "capture", "created", f"via {channel}")
        return lead_id, True, "created"

    def _append_message(
        self, lead_id: int, raw_id: int, text: str, values: dict[str, Any], now: float
    ) -> bool:
        """Add a later message from the buyer to a lead (once per raw item)."""
        msg = self.m.LeadMessage
        seen = (msg.raw_id == raw_id) | (msg.text == text[:4000])
        if msg.select().where((msg.lead_id == lead_id) & seen).exists():
            return False  # applied before (a reparse), or the buyer said it already
        ts = _parse_received(values.get("received_at"))
        msg.insert(lead_id=lead_id, raw_id=raw_id, ts=ts, text=text[:4000]).execute()
        self._add_said(lead_id, [text[:4000]])
        lead = self.m.Lead
        lead.update(
            messages_count=lead.messages_count + 1,
            updated_ts=now,
            last_action="reply",
            last_actor=str(values.get("name") or "buyer")[:64],
            last_action_ts=now,
        ).where(lead.id == lead_id).execute()
        self._event(lead_id, str(values.get("name") or "buyer"), "reply", text[:80])
        return True

    def _link(self, lead_id: int, raw_id: int, channel: str, now: float) -> None:
        """Record that a raw item delivered a lead (once)."""
        if (deferred := self._batching()) is not None:
            deferred.links.append((lead_id, raw_id, channel, now))
            return
        self._sql(_INSERT_LINK_SQL, (lead_id, raw_id, channel, now))

    @staticmethod
    def _merge_detail(updates: dict[str, Any], channel: str) -> str:
        fields = sorted(k for k in updates if k in CONTRACT_FIELDS)
        return f"via {channel}: added " + ", ".join(fields) if fields else f"seen via {channel}"

    def _attach_reply(self, result: dict[str, Any], raw_id: int, now: float) -> int | None:
        lead = self.m.Lead
        target = None
        if result.get("phone"):
            target = (
                lead.select(lead.id)
                .where((lead.phone == result["phone"]) | (lead.phone_alt == result["phone"]))
                .order_by(lead.id.desc())
                .scalar()
            )
        if target is None and result.get("email"):
            target = (
                lead.select(lead.id)
                .where(lead.email == result["email"])
                .order_by(lead.id.desc())
                .scalar()
            )
        if target is None and result.get("name") and result.get("product"):
            target = (
                lead.select(lead.id)
                .where(
                    (fn_lower(lead.name) == str(result["name"]).lower())
                    & (lead.product_key == _product_key(result["product"]))
                )
                .order_by(lead.id.desc())
                .scalar()
            )
        if target is None:
            return None
        msg = self.m.LeadMessage
        if msg.select().where((msg.raw_id == raw_id) & (msg.lead_id == target)).exists():
            return int(target)
        messages = [str(m) for m in result.get("messages") or [] if m]
        ts = _parse_received(result.get("received_at"))
        for text in messages:
            msg.insert(lead_id=target, raw_id=raw_id, ts=ts, text=text).execute()
        self._add_said(int(target), messages)
        lead.update(
            messages_count=lead.messages_count + len(messages),
            updated_ts=now,
            last_action="reply",
            last_actor=str(result.get("name") or "buyer")[:64],
            last_action_ts=now,
        ).where(lead.id == target).execute()
        self.m.LeadSource.insert(
            lead_id=target, raw_id=raw_id, channel=result.get("channel") or "email", ts=now
        ).on_conflict_ignore().execute()
        preview = messages[0][:80] if messages else ""
        self._event(int(target), result.get("name") or "buyer", "reply", preview)
        return int(target)

    def _continue_chat(self, result: dict[str, Any], raw_id: int, now: float) -> int | None:
        """A WhatsApp message from a phone we know continues that buyer's newest lead.

        The message is appended to the lead (as a reply is) instead of making a new lead; a
        phone with no lead yet returns None, and the message becomes a lead of its own.
        """
        if result.get("source") != "whatsapp" or not result.get("phone"):
            return None
        links = self.m.LeadSource
        done = links.select(links.lead_id).where(links.raw_id == raw_id).scalar()
        if done is not None:  # applied before (a reparse): the message is there already
            return int(done)
        message = result.get("message")
        reply = {
            "kind": "reply",
            "source": "whatsapp",
            "channel": result.get("channel") or "api",
            "name": result.get("name"),
            "company": None,
            "product": None,
            "phone": result["phone"],
            "email": None,
            "messages": [message] if message else [],
            "received_at": result.get("received_at"),
            "message_id": None,
        }
        return self._attach_reply(reply, raw_id, now)

    def _event(self, lead_id: int, actor: str, action: str, detail: str | None = None) -> None:
        row = (lead_id, time.time(), actor[:64], action, detail)
        if (deferred := self._batching()) is not None:
            deferred.events.append(row)
            return
        self._sql(_INSERT_EVENT_SQL, row)

    def _batching(self) -> _Deferred | None:
        """The inserts :meth:`apply_many` is holding back on this thread, if it is running."""
        deferred: _Deferred | None = getattr(self._local, "deferred", None)
        return deferred

    def _flush(self, deferred: _Deferred) -> None:
        """Run a batch's held-back inserts, one driver call per table."""
        if deferred.links:
            self._sql_many(_INSERT_LINK_SQL, deferred.links)
        if deferred.events:
            self._sql_many(_INSERT_EVENT_SQL, deferred.events)
        if deferred.search:
            self._sql_many(_INSERT_FTS_SQL, list(deferred.search.items()))

    # ------------------------------------------------------------------ reading leads

    def _lead_columns(self) -> list[Any]:
        lead = self.m.Lead
        return [getattr(lead, f) for f in _LEAD_ATTRS]

    def _to_lead(self, row: Sequence[Any]) -> Lead:
        data = dict(zip(_LEAD_ATTRS, row, strict=True))
        data["specs"] = json.loads(data["specs"] or "{}")
        data["verified"] = json.loads(data["verified"] or "[]")
        data["missed_by_email"] = bool(data["missed_by_email"])
        return Lead(**data)

    def get_lead(self, lead_id: int) -> Lead | None:
        lead = self.m.Lead
        row = lead.select(*self._lead_columns()).where(lead.id == lead_id).tuples().first()
        return None if row is None else self._to_lead(row)

    def get_leads(self, ids: Iterable[int]) -> list[Lead]:
        ids = list(ids)
        if not ids:
            return []
        lead = self.m.Lead
        q = lead.select(*self._lead_columns()).where(lead.id.in_(ids)).tuples()
        return [self._to_lead(r) for r in q]

    def _filter(self, q: Any, query: LeadQuery) -> Any:
        lead = self.m.Lead
        if query.status == "open":
            q = q.where(lead.status.in_(("new", "contacted", "quoted")))
        elif query.status:
            q = q.where(lead.status == query.status)
        if query.owner:
            q = q.where(lead.owner == query.owner)
        if query.since_ts is not None:
            q = q.where(lead.received_ts >= query.since_ts)
        if query.follow_up_due:
            q = q.where(
                lead.follow_up.is_null(False) & (lead.follow_up <= date.today().isoformat())
            )
        if query.search and query.search.strip():
            q = self._search_filter(q, query.search)
        return q

    def _search_filter(self, q: Any, text: str) -> Any:
        lead = self.m.Lead
        if self.backend == "sqlite":
            match = _fts_query(text)
            if not match:
                return q
            ids = pw.SQL("(SELECT rowid FROM lead_fts WHERE lead_fts MATCH ?)", (match,))
            return q.where(lead.id.in_(ids))
        tsq = _pg_tsquery(text)
        if not tsq:
            return q
        return q.where(pw.SQL("search @@ to_tsquery('simple', %s)", (tsq,)))

    def list_leads(self, query: LeadQuery | None = None) -> list[Lead]:
        """Leads newest first (by arrival in leadtui), filtered and paged by id."""
        query = query or LeadQuery()
        lead = self.m.Lead
        q = self._filter(lead.select(*self._lead_columns()), query)
        if query.before_id is not None:
            q = q.where(lead.id < query.before_id)
        if query.after_id is not None:
            q = q.where(lead.id > query.after_id).order_by(lead.id.asc())
            rows = [self._to_lead(r) for r in q.limit(query.limit).tuples()]
            return rows[::-1]
        if self.backend == "postgres" and query.search and query.search.strip():
            return [self._to_lead(r) for r in self._pg_search_page(q, query)]
        q = q.order_by(lead.id.desc()).limit(query.limit)
        return [self._to_lead(r) for r in q.tuples()]

    def _pg_search_page(self, q: Any, query: LeadQuery) -> list[tuple[Any, ...]]:
        """A page of a PostgreSQL search, newest first, in bounded time whatever the words.

        PostgreSQL cannot estimate how many leads a prefix such as ``91312:*`` matches and
        guesses 0.5%; for a rare one it then walks the whole table backwards by id looking for
        a page (0.6 s at a million leads). So the newest ``PG_SEARCH_WINDOW`` leads are searched
        that way, which is bounded; a search that does not fill its page there is rare in them,
        and the older leads are found through the search index, sorted afterwards (``id + 0``
        keeps the planner from walking by id again).
        """
        lead = self.m.Lead
        top = query.before_id
        if top is None:
            top = int(lead.select(pw.fn.MAX(lead.id)).scalar() or 0) + 1
        floor = top - self.PG_SEARCH_WINDOW
        newest = q.where(lead.id >= floor).order_by(lead.id.desc()).limit(query.limit)
        rows = list(newest.tuples())
        if len(rows) < query.limit and floor > 1:
            older = q.where(lead.id < floor).order_by((lead.id + 0).desc())
            rows.extend(older.limit(query.limit - len(rows)).tuples())  # not +=: that is UNION
        return rows

    def count_leads(self, query: LeadQuery | None = None) -> int:
        lead = self.m.Lead
        return int(self._filter(lead.select(), query or LeadQuery()).count())

    def count_missed_by_email(self, since_ts: float | None = None) -> int:
        """Leads that reached leadtui only through the CRM pull (their email never came).

        ``since_ts`` counts only enquiries made since then (by ``received_ts``, which is indexed).
        """
        lead = self.m.Lead
        q = lead.select().where(lead.missed_by_email == True)  # noqa: E712 - SQL, not Python
        if since_ts is not None:
            q = q.where(lead.received_ts >= since_ts)
        return int(q.count())

    def matching_ids(self, query: LeadQuery, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` match ``query`` (to decide whether changed leads belong in a view)."""
        lead = self.m.Lead
        ids = list(ids)
        if not ids:
            return set()
        q = self._filter(lead.select(lead.id), query).where(lead.id.in_(ids))
        return {int(r[0]) for r in q.tuples()}

    def buyer_history(self, lead: Lead, limit: int = 20) -> list[Lead]:
        """The buyer's other enquiries (same phone or email), newest first."""
        keys = [k for k in (lead.phone, lead.email) if k]
        if not keys:
            return []
        m = self.m.Lead
        q = (
            m.select(*self._lead_columns())
            .where(
                (m.buyer_key.in_(keys) | m.phone.in_(keys) | m.email.in_(keys)) & (m.id != lead.id)
            )
            .order_by(m.id.desc())
            .limit(limit)
        )
        return [self._to_lead(r) for r in q.tuples()]

    def events(self, lead_id: int) -> list[Event]:
        ev = self.m.Event
        q = ev.select(ev.id, ev.lead_id, ev.ts, ev.actor, ev.action, ev.detail).where(
            ev.lead_id == lead_id
        )
        return [Event(*r) for r in q.order_by(ev.id).tuples()]

    def with_messages(self, leads: Sequence[Lead]) -> list[dict[str, Any]]:
        """:meth:`Lead.to_json` plus the buyer's later messages (replies, WhatsApp follow-ups),
        oldest first, for other tools: one query for a page of leads."""
        ids = [x.id for x in leads if x.messages_count]
        found: dict[int, list[dict[str, Any]]] = {}
        if ids:
            msg = self.m.LeadMessage
            q = msg.select(msg.lead_id, msg.ts, msg.text).where(msg.lead_id.in_(ids))
            for lead_id, ts, text in q.order_by(msg.id).tuples():
                found.setdefault(int(lead_id), []).append({"at": _iso(ts), "text": text})
        return [{**x.to_json(), "messages": found.get(x.id, [])} for x in leads]

    def messages(self, lead_id: int) -> list[Message]:
        msg = self.m.LeadMessage
        q = msg.select(msg.id, msg.lead_id, msg.ts, msg.text).where(msg.lead_id == lead_id)
        return [Message(*r) for r in q.order_by(msg.id).tuples()]

    def lead_raw_ids(self, lead_id: int) -> list[int]:
        links = self.m.LeadSource
        q = links.select(links.raw_id).where(links.lead_id == lead_id).order_by(links.raw_id)
        return [int(r[0]) for r in q.tuples()]

    # ------------------------------------------------------------------ triage actions

    def _change_lead(
        self,
        lead_id: int,
        actor: str,
        action: str,
        detail: str | None,
        updates: Callable[[Any], dict[str, Any]],
    ) -> Lead:
        def txn() -> Lead:
            lead = self.m.Lead
            current = lead.get_or_none(lead.id == lead_id)
            if current is None:
                raise StoreError(f"lead {lead_id} does not exist")
            now = time.time()
            values = updates(current)
            values.update(
                updated_ts=now, last_action=action, last_actor=actor[:64], last_action_ts=now
            )
            lead.update(**values).where(lead.id == lead_id).execute()
            self._event(lead_id, actor, action, detail)
            self._stamp_leads([lead_id])
            found = self.get_lead(lead_id)
            assert found is not None
            return found

        return self._retrying(txn)

    def set_status(self, lead_id: int, status: str, actor: str | None = None) -> Lead:
        if status not in STATUSES:
            raise StoreError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        who = actor or current_actor()

        def updates(current: Any) -> dict[str, Any]:
            values: dict[str, Any] = {"status": status}
            if status in CONTACTED_STATUSES and current.contacted_ts is None:
                values["contacted_ts"] = time.time()
                values["contacted_by"] = who[:64]
            return values

        action = "contacted" if status == "contacted" else "status"
        return self._change_lead(lead_id, who, action, status, updates)

    def mark_contacted(self, lead_id: int, actor: str | None = None) -> Lead:
        """Record a call or message to the buyer.

        A new lead becomes contacted; one further on (quoted, won, …) keeps its status, so a
        teammate's contact never undoes progress. The first contact's time and actor stay.
        """
        who = actor or current_actor()

        def updates(current: Any) -> dict[str, Any]:
            values: dict[str, Any] = {}
            if current.status == "new":
                values["status"] = "contacted"
            status = values.get("status", current.status)
            if current.contacted_ts is None and status in CONTACTED_STATUSES:
                values["contacted_ts"] = time.time()
                values["contacted_by"] = who[:64]
            return values

        return self._change_lead(lead_id, who, "contacted", "contacted", updates)

    def add_note(self, lead_id: int, text: str, actor: str | None = None) -> Lead:
        note = text.strip()
        if not note:
            raise StoreError("a note cannot be empty")
        lead = self.m.Lead
        return self._change_lead(
            lead_id,
            actor or current_actor(),
            "note",
            note[:4000],
            lambda _c: {"notes_count": lead.notes_count + 1},
        )

    def assign(self, lead_id: int, owner: str | None, actor: str | None = None) -> Lead:
        clean = (owner or "").strip()[:64] or None
        return self._change_lead(
            lead_id,
            actor or current_actor(),
            "assign",
            clean or "unassigned",
            lambda _c: {"owner": clean},
        )

    def set_follow_up(self, lead_id: int, day: date | None, actor: str | None = None) -> Lead:
        text = day.isoformat() if day else None
        return self._change_lead(
            lead_id,
            actor or current_actor(),
            "follow-up",
            text or "cleared",
            lambda _c: {"follow_up": text},
        )

    # ------------------------------------------------------------------ change feed

    def cursor(self) -> int:
        """The latest change-sequence value: start a change feed from here."""
        counter = self.m.Counter
        value = counter.select(counter.value).where(counter.name == "change").scalar()
        return int(value or 0)

    def changes_since(self, cursor: int, limit: int = 1000) -> ChangeSet:
        """Everything that changed after ``cursor``: leads (current state), review, health."""
        # Each statement sees its own snapshot. The review and health tops are read before the
        # leads: a change committed in between then shows up in the leads query, while read
        # after it would move the cursor past a lead this call never returned. (Values commit
        # in order, so everything up to a top read first is visible to the leads query.)
        raw = self.m.RawItem
        raw_top = raw.select(pw.fn.MAX(raw.seq)).where(raw.seq > cursor).scalar()
        health = self.m.SourceHealth
        health_top = health.select(pw.fn.MAX(health.seq)).where(health.seq > cursor).scalar()
        lead = self.m.Lead
        q = (
            lead.select(*self._lead_columns())
            .where(lead.seq > cursor)
            .order_by(lead.seq, lead.id)
            .limit(limit + 1)
        )
        leads = [self._to_lead(r) for r in q.tuples()]
        more = len(leads) > limit
        if more:
            # A batch commits its leads under one change value, and the next page starts
            # after the cursor: a page must end at a whole value, or the rest of it is lost.
            after = leads.pop()
            last = leads[-1].seq
            if after.seq == last and leads[0].seq == last:  # one value fills the page: all of it
                rest = (
                    lead.select(*self._lead_columns())
                    .where((lead.seq == last) & (lead.id > leads[-1].id))
                    .order_by(lead.id)
                )
                leads += [self._to_lead(r) for r in rest.tuples()]
            elif after.seq == last:  # the page would end inside a value: end before it
                leads = [x for x in leads if x.seq != last]
        top = max((x.seq for x in leads), default=cursor)
        if not more:
            top = max(top, int(raw_top or 0), int(health_top or 0))
        return ChangeSet(top, leads, raw_top is not None, health_top is not None, more)

    def waiter(self) -> ChangeWaiter:
        """A blocking "tell me when another connection committed" helper for one thread."""
        if self.backend == "postgres":
            return _PgWaiter(self.url, self._channel)
        return _SqliteWaiter(str(self.db.database))

    # ------------------------------------------------------------------ lease

    def try_lease(self, holder: str, ttl: float = 15.0) -> bool:
        """Take or renew the capture lease. True when ``holder`` holds it until now + ttl."""

        def txn() -> bool:
            lease = self.m.Lease
            now = self._now()
            lease.insert(name=LEASE_NAME, expires_ts=0).on_conflict_ignore().execute()
            updated = (
                lease.update(
                    holder=holder,
                    host=socket.gethostname()[:200],
                    pid=os.getpid(),
                    acquired_ts=pw.Case(None, [(lease.holder == holder, lease.acquired_ts)], now),
                    expires_ts=now + ttl,
                )
                .where(
                    (lease.name == LEASE_NAME)
                    & ((lease.holder == holder) | (lease.expires_ts < now) | lease.holder.is_null())
                )
                .execute()
            )
            return bool(updated)

        return self._retrying(txn)

    def release_lease(self, holder: str) -> None:
        lease = self.m.Lease

        def txn() -> None:
            lease.update(holder=None, expires_ts=0).where(
                (lease.name == LEASE_NAME) & (lease.holder == holder)
            ).execute()

        with contextlib.suppress(StoreError):
            self._retrying(txn)

    def lease_info(self) -> LeaseInfo | None:
        lease = self.m.Lease
        row = (
            lease.select(lease.holder, lease.host, lease.pid, lease.acquired_ts, lease.expires_ts)
            .where((lease.name == LEASE_NAME) & lease.holder.is_null(False))
            .tuples()
            .first()
        )
        if row is None or row[4] < self._now():
            return None
        return LeaseInfo(*row)

    def _now(self) -> float:
        """The database's clock for the lease, so processes on several machines agree."""
        if self.backend == "postgres":
            return float(
                self.db.execute_sql("SELECT extract(epoch from clock_timestamp())").fetchone()[0]
            )
        return time.time()

    # ------------------------------------------------------------------ health and sync state

    def set_health(self, health: Health) -> None:
        def txn() -> None:
            sh = self.m.SourceHealth
            seq = self._next_seq()
            values = {
                "state": health.state,
                "detail": health.detail,
                "last_success_ts": health.last_success_ts,
                "last_error": health.last_error,
                "next_retry_ts": health.next_retry_ts,
                "updated_ts": time.time(),
                "holder": health.holder,
                "seq": seq,
            }
            sh.insert(source=health.source, **values).on_conflict(
                conflict_target=[sh.source], update=values
            ).execute()

        self._retrying(txn)

    def health(self) -> list[Health]:
        sh = self.m.SourceHealth
        q = sh.select(
            sh.source,
            sh.state,
            sh.detail,
            sh.last_success_ts,
            sh.last_error,
            sh.next_retry_ts,
            sh.updated_ts,
            sh.holder,
        ).order_by(sh.source)
        return [Health(*r) for r in q.tuples()]

    def clear_health(self) -> None:
        """Forget every source's health (the capture process that wrote it is gone)."""

        def txn() -> None:
            self.m.SourceHealth.delete().execute()
            self._next_seq()

        self._retrying(txn)

    def get_state(self, key: str) -> dict[str, Any] | None:
        st = self.m.SyncState
        value = st.select(st.value).where(st.key == key).scalar()
        return None if value is None else dict(json.loads(value))

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        def txn() -> None:
            st = self.m.SyncState
            text = json.dumps(value, sort_keys=True)
            st.insert(key=key, value=text, updated_ts=time.time()).on_conflict(
                conflict_target=[st.key], update={"value": text, "updated_ts": time.time()}
            ).execute()

        self._retrying(txn)

    # ------------------------------------------------------------------ counts and stats

    def counts(self, cap: int | None = None, now: float | None = None) -> dict[str, int]:
        """Header counts: new today, awaiting contact, review queue.

        "Today" is when the buyer enquired (``received_ts``), not when leadtui captured the
        lead: a first run that reads a week of mail must not count the whole week as today.

        With ``cap`` each count stops at ``cap`` (shown as "10,000+"): a viewer refreshes its
        header after every change, and an exact count over a million new leads takes half a
        second, while a capped one reads at most ``cap`` index entries.
        """
        lead = self.m.Lead
        raw = self.m.RawItem
        start = _start_of_day(time.time() if now is None else now)

        def count(q: Any) -> int:
            if cap is not None:
                q = q.select(pw.SQL("1")).limit(cap)
            return int(q.count())

        return {
            "new_today": count(lead.select().where(lead.received_ts >= start)),
            "awaiting": count(lead.select().where(lead.status == "new")),
            "review": count(raw.select().where(raw.status == "failed")),
        }

    def stats(self, now: float | None = None, days: int = 14) -> Stats:
        now = time.time() if now is None else now
        lead = self.m.Lead
        today = _start_of_day(now)
        since = today - (days - 1) * 86400
        week = today - 6 * 86400
        # Days are the buyer's (received); response times run from when leadtui saw the lead.
        rows = (
            lead.select(
                lead.received_ts,
                lead.first_seen_ts,
                lead.contacted_ts,
                lead.query_type,
                lead.source,
                lead.status,
            )
            .where(lead.received_ts >= since)
            .tuples()
        )
        per_day: dict[date, int] = {
            (datetime.fromtimestamp(today) - timedelta(days=i)).date(): 0 for i in range(days)
        }
        by_type: dict[str, int] = {}
        by_source: dict[str, int] = {}
        resp_today: list[float] = []
        resp_week: list[float] = []
        contacted_today = 0
        new_today = 0
        for received, first_seen, contacted, qtype, source, _status in rows:
            day = datetime.fromtimestamp(received).date()
            if day in per_day:
                per_day[day] += 1
            if received >= week:
                label = qtype or source or "other"  # as the table's Type column: "Website"
                by_type[label] = by_type.get(label, 0) + 1
                by_source[source] = by_source.get(source, 0) + 1
                if contacted is not None:
                    resp_week.append(contacted - first_seen)
            if received >= today:
                new_today += 1
                if contacted is not None:
                    resp_today.append(contacted - first_seen)
                    contacted_today += 1
        awaiting = lead.select().where(lead.status == "new").count()
        return Stats(
            per_day=sorted(per_day.items()),
            by_type=by_type,
            by_source=by_source,
            median_response_today=statistics.median(resp_today) if resp_today else None,
            median_response_week=statistics.median(resp_week) if resp_week else None,
            contacted_today=contacted_today,
            new_today=new_today,
            awaiting_contact=int(awaiting),
        )

    # ------------------------------------------------------------------ bulk (benchmarks)

    def bulk_insert_leads(self, results: Sequence[dict[str, Any]], batch: int = 2000) -> None:
        """Insert many parsed leads without dedupe (for benchmarks and synthetic databases)."""
        now = time.time()
        rows = []
        for result in results:
            row = {f: result.get(f) for f in CONTRACT_FIELDS}
            row["specs"] = json.dumps(result.get("specs") or {}, ensure_ascii=False)
            row["verified"] = json.dumps(result.get("verified") or [])
            row.update(
                source=row["source"] or "other",
                channel=row["channel"] or "api",
                received_at=row["received_at"] or _iso(now),
                received_ts=_parse_received(result.get("received_at")),
                first_seen_ts=now,
                updated_ts=now,
                buyer_key=result.get("phone") or result.get("email"),
                product_key=_product_key(result.get("product")),
                channels=row["channel"] or "api",
            )
            rows.append(row)
        lead = self.m.Lead
        # PostgreSQL takes at most 65,535 parameters in one statement (a value for each field).
        batch = max(1, min(batch, 65_535 // len(lead._meta.sorted_fields)))
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]

            def txn(chunk: list[dict[str, Any]] = chunk) -> None:
                if self.backend == "postgres":
                    ids = [r[0] for r in lead.insert_many(chunk).returning(lead.id).tuples()]
                else:
                    first = int(lead.insert_many(chunk).execute()) - len(chunk) + 1
                    ids = list(range(first, first + len(chunk)))
                for lead_id, values in zip(ids, chunk, strict=True):
                    self._index_search(lead_id, values, new=True)
                self._stamp_leads(ids)

            self._retrying(txn)


_T = TypeVar("_T")

_LEAD_ATTRS = tuple(Lead.__dataclass_fields__)
# What the capture path reads of an existing lead to merge a new copy into it.
_EXISTING_COLS = ("id", *_MERGEABLE, "channels", "missed_by_email", "buyer_key")
_EXISTING_SQL = ", ".join(_EXISTING_COLS)
_INSERT_LEAD_COLS = (
    *CONTRACT_FIELDS,
    "received_ts",
    "status",
    "first_seen_ts",
    "updated_ts",
    "buyer_key",
    "product_key",
    "enquiry_no",
    "channels",
    "missed_by_email",
    "notes_count",
    "messages_count",
    "seq",
    "raw_id",
)
# The capture path's inserts that nothing in a batch reads back: apply_many runs them last.
_INSERT_LINK_SQL = (
    "INSERT INTO lead_source (lead_id, raw_id, channel, ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
_INSERT_EVENT_SQL = "INSERT INTO event (lead_id, ts, actor, action, detail) VALUES (?, ?, ?, ?, ?)"
_INSERT_FTS_SQL = "INSERT INTO lead_fts(rowid, body) VALUES (?, ?)"


@dataclass
class _Deferred:
    """Inserts held back while :meth:`Store.apply_many` applies a batch, run together at its
    end: a lead's source link, its events and its search row (SQLite), keyed by lead."""

    links: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    search: dict[int, str] = field(default_factory=dict)


_INSERT_LEAD_SQL = (
    f"INSERT INTO lead ({', '.join(_INSERT_LEAD_COLS)}) VALUES ("
    + ", ".join(
        # "3rd enquiry from this buyer": counted in the insert, not by a statement of its own
        "(SELECT count(*) + 1 FROM lead WHERE buyer_key = ?)" if c == "enquiry_no" else "?"
        for c in _INSERT_LEAD_COLS
    )
    + ") ON CONFLICT DO NOTHING RETURNING id"
)


def fn_lower(expr: Any) -> Any:
    return pw.fn.LOWER(expr)


def _start_of_day(ts: float) -> float:
    d = datetime.fromtimestamp(ts)
    return datetime(d.year, d.month, d.day).timestamp()


# --------------------------------------------------------------------------- change waiters


class ChangeWaiter:
    """Block until another connection may have committed a change. One per thread."""

    def wait(self, timeout: float) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SqliteWaiter(ChangeWaiter):
    POLL = 0.02  # PRAGMA data_version is a few microseconds; 50 looks a second cost nothing

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, timeout=5, check_same_thread=False)
        self._version = self._read()

    def _read(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            version = self._read()
            if version != self._version:
                self._version = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(self.POLL, left))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()


class _PgWaiter(ChangeWaiter):
    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._channel = channel
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> None:
        import psycopg  # noqa: PLC0415 - SQLite users never load the PostgreSQL driver

        self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        self._conn.execute(f"LISTEN {self._channel}")

    def wait(self, timeout: float) -> bool:
        if self._conn is None or self._conn.closed:
            try:
                self._connect()
            except Exception as exc:
                log.warning("change feed: cannot listen on PostgreSQL: %s", exc)
                time.sleep(min(timeout, 1.0))
                return False
            return True  # (re)connected: the caller must catch up
        try:
            got = any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
            if got:
                # Drain what else already arrived (the generator above must be finished
                # first: it holds the connection's lock while it runs).
                for _more in self._conn.notifies(timeout=0.001):
                    pass
                return True
        except Exception as exc:
            log.info("change feed: PostgreSQL connection lost (%s); reconnecting", exc)
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            return True
        return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
