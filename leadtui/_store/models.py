"""The Peewee models: one table each, bound to a database by :class:`Models`.

The classes here are unbound templates; :class:`Models` subclasses each for one database, so
several stores (a test's SQLite file and its PostgreSQL schema) can be open in one process.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import peewee

# Peewee's bundled stubs type query rows as model instances even after .tuples(). The store
# turns rows into its own typed dataclasses (Lead, Event, …), so it uses Peewee untyped.
pw: Any = peewee

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
    follow_up_ts = pw.DoubleField(null=True)  # schema 8: when the reminder rings (epoch)
    first_seen_ts = pw.DoubleField()
    updated_ts = pw.DoubleField()
    contacted_ts = pw.DoubleField(null=True, index=True)  # the stats' "contacted today"
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
    # The buyer's messages nobody has opened the lead to read yet (schema 7). DEFAULT in the
    # table too: the capture path's hand-written INSERT does not name it.
    unread = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
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


class _Outbox(_Base):
    """Everything that leaves leadtui, one row per event and target (schema 6): written in the
    transaction of its cause, delivered after commit by the one sender (``leadtui/outbox.py``)."""

    id = pw.BigAutoField()
    event_id = pw.CharField(max_length=64)  # stable: the receiver dedupes on it
    kind = pw.CharField(max_length=40)  # lead.created | lead.replied
    target = pw.CharField(max_length=64)  # the [[notify]] target's name
    lead_id = pw.BigIntegerField(null=True)
    payload = pw.TextField()  # JSON: the event as delivered (the lead as of its commit)
    created_ts = pw.DoubleField()
    next_attempt_ts = pw.DoubleField()
    attempts = pw.IntegerField(default=0)
    last_error = pw.TextField(null=True)
    state = pw.CharField(max_length=8, default="pending")  # pending | sent | dead
    sent_ts = pw.DoubleField(null=True)


class _Alert(_Base):
    """A reminder or first-contact limit that rang for one person (schema 8): one row per lead,
    kind, due time and recipient, so each due time alerts each person's TUIs once, whatever
    restarts or takes over capture. Every TUI of that person open when the row appears shows it."""

    id = pw.BigAutoField()
    lead_id = pw.BigIntegerField()
    kind = pw.CharField(max_length=12)  # follow-up | sla
    due_ts = pw.DoubleField()
    recipient = pw.CharField(max_length=64)  # the OS user of the TUI (lowercase)
    alerted_ts = pw.DoubleField()


class Models:
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
        self.Outbox = bind(_Outbox)
        self.Alert = bind(_Alert)
        alert = self.Alert
        alert.add_index(alert.lead_id, alert.kind, alert.due_ts, alert.recipient, unique=True)
        alert.add_index(alert.recipient, alert.id)  # a TUI's "alerts since I looked"
        outbox = self.Outbox
        outbox.add_index(outbox.event_id, outbox.target, unique=True)
        outbox.add_index(outbox.state, outbox.next_attempt_ts)  # the sender's "what is due"
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
        # schema 8: what is due, what is overdue, for whom: the status and owner in the index
        # let it be counted from the index alone (a 10x difference over a million leads)
        lead.add_index(lead.follow_up_ts, lead.status, lead.owner)
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
            self.Outbox,
            self.Alert,
        )
