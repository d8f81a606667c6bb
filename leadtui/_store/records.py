"""The plain records every layer above the store sees, and the store's constants.

Frozen dataclasses: a lead leaves the store as a :class:`Lead`, never as a Peewee row.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from leadtui.parser import LEAD_FIELDS

STATUSES = ("new", "contacted", "quoted", "won", "lost", "spam")
CONTACTED_STATUSES = frozenset({"contacted", "quoted", "won", "lost"})
RAW_STATUSES = ("pending", "parsed", "ignored", "failed")
DEDUPE_WINDOW_SECONDS = 48 * 3600
LEASE_NAME = "capture"

# The contract's lead fields (FORMATS.md 1.1), in contract order, without "kind": the parser
# defines the contract; the store keeps the same names, so no layer renames a field.
CONTRACT_FIELDS = tuple(f for f in LEAD_FIELDS if f != "kind")
# Fields the store may fill in from a later copy of the same lead (e.g. the API adds its id).
MERGEABLE = tuple(f for f in CONTRACT_FIELDS if f not in {"source", "channel", "received_at"})
SEARCH_FIELDS = (
    "name", "company", "phone", "email", "product", "city", "message", "messages_text"
)  # fmt: skip
# How much of a buyer's later messages a lead is found by (the newest are kept).
MESSAGES_TEXT_LIMIT = 4000


class StoreError(Exception):
    """The database cannot be used. The message says what happened and what to do."""


def current_actor() -> str:
    """The OS user who did a triage action: the real user id's name, not ``LOGNAME`` or
    ``USER``, which anyone can set to anybody's name."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry (a container run with an arbitrary uid)
        return f"uid {uid}"


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
    follow_up_ts: float | None  # when the follow-up's reminder rings (schema 8)
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
    unread: int = 0  # the buyer's messages not read yet: nobody opened the lead since

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
            follow_up_at=iso(self.follow_up_ts),
            first_seen_at=iso(self.first_seen_ts),
            updated_at=iso(self.updated_ts),
            contacted_at=iso(self.contacted_ts) if self.contacted_ts else None,
            contacted_by=self.contacted_by,
            enquiry_no=self.enquiry_no,
            missed_by_email=self.missed_by_email,
            notes=self.notes_count,
            unread=self.unread,
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
class Reply:
    """A later message from the buyer on a lead (a reply, a WhatsApp follow-up)."""

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
    earlier: str = ""  # for a duplicate: what became of the first copy (parsed, failed, …)


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
    calls_to_return: bool = False  # phone leads (Call, missed calls) nobody has called back
    query_type: str | None = None  # IndiaMART's QUERY_TYPE: W, B (BuyLead), P (call) …
    unread: bool = False  # only leads with a buyer's message nobody has read
    before_id: int | None = None  # keyset paging: leads older than this id
    after_id: int | None = None  # keyset paging the other way
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Alert:
    """A reminder (``kind`` "follow-up") or a first-contact limit ("sla") that rang for
    ``recipient``: every open TUI of that person shows it once."""

    id: int
    lead_id: int
    kind: str
    due_ts: float
    recipient: str


@dataclass(frozen=True, slots=True)
class SlaRow:
    """First contact on time for one day or one person: leads whose limit has passed or who
    were contacted, how many of them were contacted within it, and the median first contact."""

    label: str
    leads: int
    on_time: int
    median_seconds: float | None

    @property
    def share(self) -> float | None:
        return self.on_time / self.leads if self.leads else None


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
    sla_seconds: float | None = None  # the first-contact limit (None: off)
    sla_by_day: list[SlaRow] = field(default_factory=list)
    sla_by_person: list[SlaRow] = field(default_factory=list)


def iso(ts: float | None) -> str | None:
    """A timestamp as local ISO 8601 (seconds)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")
