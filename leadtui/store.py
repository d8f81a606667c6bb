"""The store: the only API to the database, where leads live for years.

One :class:`Store` wraps one database (SQLite file or PostgreSQL) through Peewee. It owns the
schema and its migrations, the raw items (the original bytes of every email and request), the
lead upsert with its dedupe keys, the triage actions and their audit trail, the change feed,
the capture lease, source health and per-source sync state.

This module is a façade: each method is short and hands the work to the private package
``leadtui/_store/``, one module per concern (its ``__init__`` says which holds what). The
records every layer uses (:class:`Lead`, :class:`Reply`, :class:`Health`, …) are re-exported
here; nothing outside this module imports ``leadtui._store``, Peewee or psycopg.

Change feed. Every write that changes what a viewer shows takes the next value of one counter
as its last statement before commit; values commit in order (``_store/database.py``), so a
viewer asks :meth:`Store.changes_since` for everything after the last value it has seen.

Notification. Viewers wait with a :class:`ChangeWaiter` from :meth:`Store.waiter`: on SQLite
it polls ``PRAGMA data_version``; on PostgreSQL it LISTENs to a channel every writer NOTIFYs
inside its transaction, and treats a reconnect as "something changed", so the caller runs its
catch-up query (``_store/waiters.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from leadtui._store.alerts import Alerts
from leadtui._store.apply import Applier
from leadtui._store.autoreply import AutoreplyState
from leadtui._store.backends import describe_url, is_postgres_url, redact, sqlite_file
from leadtui._store.database import Database
from leadtui._store.feed import Feed
from leadtui._store.health import SourceState
from leadtui._store.leads import Leads
from leadtui._store.lease import Lease
from leadtui._store.outbox import (
    EVENTS,
    OUTBOX_STATES,
    Outbox,
    OutboxCounts,
    OutboxItem,
    OutboxRoute,
    order_value_ceiling,
)
from leadtui._store.raw import RawItems
from leadtui._store.records import (
    CONTACTED_STATUSES,
    CONTRACT_FIELDS,
    DEDUPE_WINDOW_SECONDS,
    FAILING_STATES,
    LEASE_NAME,
    MESSAGES_TEXT_LIMIT,
    RAW_STATUSES,
    SEARCH_FIELDS,
    STATUSES,
    Alert,
    ChangeSet,
    Event,
    Health,
    Lead,
    LeadQuery,
    LeaseInfo,
    Outcome,
    RawSpec,
    RawSummary,
    Reply,
    SlaRow,
    Stats,
    StoreError,
    current_actor,
)
from leadtui._store.reminders import Reminders, recipient_of
from leadtui._store.schema import SCHEMA_VERSION, open_database
from leadtui._store.stats import Counts, start_of_day
from leadtui._store.triage import CALL_OUTCOMES, Triage
from leadtui._store.waiters import ChangeWaiter

__all__ = [
    "CALL_OUTCOMES",
    "CONTACTED_STATUSES",
    "CONTRACT_FIELDS",
    "DEDUPE_WINDOW_SECONDS",
    "EVENTS",
    "FAILING_STATES",
    "LEASE_NAME",
    "MESSAGES_TEXT_LIMIT",
    "OUTBOX_STATES",
    "RAW_STATUSES",
    "SCHEMA_VERSION",
    "SEARCH_FIELDS",
    "STATUSES",
    "Alert",
    "ChangeSet",
    "ChangeWaiter",
    "Event",
    "Health",
    "Lead",
    "LeadQuery",
    "LeaseInfo",
    "OutboxCounts",
    "OutboxItem",
    "OutboxRoute",
    "Outcome",
    "RawSpec",
    "RawSummary",
    "Reply",
    "SlaRow",
    "Stats",
    "Store",
    "StoreError",
    "current_actor",
    "describe_url",
    "is_postgres_url",
    "order_value_ceiling",
    "recipient_of",
    "sqlite_file",
]


class Store:
    """One open database. Thread-safe: Peewee keeps one connection per thread.

    ``db`` (the Peewee database), ``m`` (its bound models), ``url`` and ``backend`` ("sqlite"
    or "postgres") are there for tests, benchmarks and messages; everything else goes through
    the methods.
    """

    def __init__(self, database: Database) -> None:
        self._d = database
        self.db = database.db
        self.url = database.url
        self.m = database.m
        self.dialect = database.backend  # the SqliteBackend or PostgresBackend
        self.backend = database.backend.name
        self._raw = RawItems(database)
        self._apply = Applier(database)
        self._leads = Leads(database)
        self._triage = Triage(database, self._leads, lambda: self._apply.routes)
        self._feed = Feed(database, self._leads)
        self._lease = Lease(database)
        self._sources = SourceState(database)
        self._counts = Counts(database)
        self._outbox = Outbox(database)
        self._reminders = Reminders(database)
        self._alerts = Alerts(database)
        self._autoreply = AutoreplyState(database)
        self._closed = False

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(cls, url: str, *, create: bool = True, create_folder: bool = True) -> Store:
        """Open (and create or migrate) the database at ``url``.

        ``create_folder=False`` refuses a SQLite path whose folder is missing (a path the user
        typed: a typo should not make folders); the default path's folder is created.
        """
        try:
            return cls(open_database(url, create=create, create_folder=create_folder))
        except StoreError as exc:  # a driver's message may quote the URL, password and all
            raise StoreError(redact(str(exc), url)) from None

    def close(self) -> None:
        """Close this thread's connection (other threads close theirs on exit)."""
        self._closed = True
        with contextlib.suppress(Exception):
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        return self._d.retrying(
            lambda: self._raw.add_txn(
                body,
                source=source,
                kind=kind,
                channel=channel,
                dedupe_key=dedupe_key,
                received_ts=received_ts,
                now=now,
            ),
            idempotent=True,  # the same body or key is stored once: running it again is safe
        )

    def add_raw_many(self, items: Sequence[RawSpec]) -> list[tuple[int, bool]]:
        """:meth:`add_raw` for several items in one transaction (group commit), in order."""
        return self._raw.add_raw_many(items)

    def raw_body(self, raw_id: int) -> bytes | None:
        return self._d.reading(lambda: self._raw.raw_body(raw_id))

    def raw_info(self, raw_id: int) -> RawSummary | None:
        return self._d.reading(lambda: self._raw.raw_info(raw_id))

    def raw_outcome(self, raw_id: int) -> Outcome:
        """The outcome of an item already processed (for a duplicate delivery)."""
        return self._d.reading(lambda: self._raw.raw_outcome(raw_id))

    def pending_raw_ids(self, older_than: float = 0.0) -> list[int]:
        """Raw items committed but never processed (a crash between the two commits)."""
        return self._d.reading(lambda: self._raw.pending_raw_ids(older_than))

    def raw_ids_after(self, source: str, after_id: int, limit: int = 100) -> list[int]:
        """Raw items of ``source`` committed after ``after_id``, oldest first: a source that
        acts on what another received (lead ads notifications → Graph API fetches) reads
        them as a durable queue, with its own cursor in sync state."""
        return self._d.reading(lambda: self._raw.raw_ids_after(source, after_id, limit))

    def review_items(self, limit: int = 500) -> list[RawSummary]:
        """The review queue: raw items that failed to become leads, newest first."""
        return self._d.reading(lambda: self._raw.review_items(limit))

    def review_count(self) -> int:
        return self._d.reading(self._raw.review_count)

    def failed_raw_ids(self) -> list[int]:
        return self._d.reading(self._raw.failed_raw_ids)

    # ------------------------------------------------------------------ applying results

    def apply(self, raw_id: int, results: Sequence[dict[str, Any]]) -> Outcome:
        """Upsert the leads (or attach the reply) parsed from one raw item, and link them.

        Idempotent: applying the same results again changes nothing and says "duplicate".
        """
        return self._apply.apply_many([(raw_id, results)])[0]

    def apply_many(self, batch: Sequence[tuple[int, Sequence[dict[str, Any]]]]) -> list[Outcome]:
        """:meth:`apply` for several raw items in one transaction (group commit), in order.

        All or nothing: when one item raises, nothing is applied and the caller can fall back
        to applying them one by one.
        """
        return self._apply.apply_many(batch)

    # ------------------------------------------------------------------ reading leads

    def get_lead(self, lead_id: int) -> Lead | None:
        return self._d.reading(lambda: self._leads.get_lead(lead_id))

    def get_leads(self, ids: Iterable[int]) -> list[Lead]:
        return self._d.reading(lambda: self._leads.get_leads(ids))

    def list_leads(self, query: LeadQuery | None = None) -> list[Lead]:
        """Leads newest first (by arrival in leadtui), filtered and paged by id."""
        return self._d.reading(lambda: self._leads.list_leads(query))

    def count_leads(self, query: LeadQuery | None = None) -> int:
        return self._d.reading(lambda: self._leads.count_leads(query))

    def count_missed_by_email(
        self, since_ts: float | None = None, source: str | None = None
    ) -> int:
        """Leads that reached leadtui only through a pull (their email never came)."""
        return self._d.reading(lambda: self._leads.count_missed_by_email(since_ts, source))

    def matching_ids(self, query: LeadQuery, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` match ``query`` (to decide whether changed leads belong in a view)."""
        return self._d.reading(lambda: self._leads.matching_ids(query, ids))

    def buyer_history(self, lead: Lead, limit: int = 20) -> list[Lead]:
        """The buyer's other enquiries (same phone or email), newest first."""
        return self._d.reading(lambda: self._leads.buyer_history(lead, limit))

    def events(self, lead_id: int) -> list[Event]:
        return self._d.reading(lambda: self._leads.events(lead_id))

    def with_messages(self, leads: Sequence[Lead]) -> list[dict[str, Any]]:
        """:meth:`Lead.to_json` plus the buyer's later messages, oldest first."""
        return self._d.reading(lambda: self._leads.with_messages(leads))

    def messages(self, lead_id: int) -> list[Reply]:
        return self._d.reading(lambda: self._leads.messages(lead_id))

    def latest_messages(self, lead_ids: Iterable[int]) -> dict[int, Reply]:
        """The newest message from the buyer on each of these leads, by lead id."""
        ids = list(lead_ids)  # a read may run twice
        return self._d.reading(lambda: self._leads.latest_messages(ids))

    def lead_raw_ids(self, lead_id: int) -> list[int]:
        return self._d.reading(lambda: self._leads.lead_raw_ids(lead_id))

    # ------------------------------------------------------------------ triage actions

    def set_status(self, lead_id: int, status: str, actor: str | None = None) -> Lead:
        return self._triage.set_status(lead_id, status, actor)

    def mark_contacted(self, lead_id: int, actor: str | None = None) -> Lead:
        """Record a call or message to the buyer (a new lead becomes contacted)."""
        return self._triage.mark_contacted(lead_id, actor)

    def add_note(self, lead_id: int, text: str, actor: str | None = None) -> Lead:
        return self._triage.add_note(lead_id, text, actor)

    def assign(self, lead_id: int, owner: str | None, actor: str | None = None) -> Lead:
        return self._triage.assign(lead_id, owner, actor)

    def set_follow_up(
        self, lead_id: int, when: date | datetime | None, actor: str | None = None,
        *, action: str = "follow-up",
    ) -> Lead:  # fmt: skip
        """A day alone rings at 10:00 that day; a (naive, local) datetime at its minute."""
        return self._triage.set_follow_up(lead_id, when, actor, action=action)

    def notes(self, lead_id: int) -> list[str]:
        """The notes on a lead, oldest first."""
        return self._d.reading(lambda: self._triage.notes(lead_id))

    def record_sent(self, lead_id: int, channel: str, text: str, actor: str | None = None) -> Lead:
        return self._triage.record_sent(lead_id, channel, text, actor)

    def log_call(
        self,
        lead_id: int,
        outcome: str,
        actor: str | None = None,
        *,
        follow_up: date | datetime | None = None,
        detail: str = "",
    ) -> Lead:
        return self._triage.log_call(lead_id, outcome, actor, follow_up=follow_up, detail=detail)

    def mark_read(self, lead_id: int) -> bool:
        """The lead was opened: its buyer's messages are read, in every viewer (False: none
        were unread, nothing written)."""
        return self._triage.mark_read(lead_id)

    def owners(self) -> list[str]:
        """Everyone who owns a lead now, in order."""
        return self._d.reading(self._triage.owners)

    def undo(self, before: Lead, after_seq: int, what: str, actor: str | None = None) -> Lead:
        """Undo a triage change: ``before`` is the lead as it was, ``after_seq`` its change
        value right after; refused (StoreError) when someone changed the lead since."""
        return self._triage.undo(before, after_seq, what, actor)

    # ------------------------------------------------------------------ change feed

    def cursor(self) -> int:
        """The latest change-sequence value: start a change feed from here."""
        return self._d.reading(self._feed.cursor)

    def changes_since(self, cursor: int, limit: int = 1000) -> ChangeSet:
        """Everything that changed after ``cursor``: leads (current state), review, health."""
        return self._d.reading(lambda: self._feed.changes_since(cursor, limit))

    def waiter(self) -> ChangeWaiter:
        """A blocking "tell me when another connection committed" helper for one thread."""
        return self.dialect.waiter()

    # ------------------------------------------------------------------ lease

    def try_lease(self, holder: str, ttl: float = 15.0) -> bool:
        """Take or renew the capture lease. True when ``holder`` holds it until now + ttl."""
        return self._lease.take(holder, ttl)

    def release_lease(self, holder: str) -> None:
        self._lease.release(holder)

    def lease_info(self) -> LeaseInfo | None:
        return self._d.reading(self._lease.info)

    # ------------------------------------------------------------------ health and sync state

    def set_health(self, health: Health) -> None:
        self._sources.set_health(health)

    def health(self) -> list[Health]:
        return self._d.reading(self._sources.health)

    def clear_health(self) -> None:
        """Forget every source's health (the capture process that wrote it is gone)."""
        self._sources.clear_health()

    def mailboxes(self) -> list[str]:
        """The mailboxes captured into this database before (``user@host/INBOX``)."""
        return self._d.reading(self._sources.mailboxes)

    def get_state(self, key: str) -> dict[str, Any] | None:
        return self._d.reading(lambda: self._sources.get_state(key))

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        self._sources.set_state(key, value)

    # ------------------------------------------------------------------ counts and stats

    def counts(self, cap: int | None = None, now: float | None = None) -> dict[str, int]:
        """Header counts: new today, awaiting contact, review queue, unread (each stops at
        ``cap``)."""
        return self._d.reading(lambda: self._counts.counts(cap, now))

    def stats(
        self, now: float | None = None, days: int = 14, sla_seconds: float | None = None
    ) -> Stats:
        """Leads per day, by type and source, response times; with ``sla_seconds`` also the
        share contacted within that limit and the median first contact, per day and person."""
        return self._d.reading(lambda: self._counts.stats(now, days, sla_seconds))

    # ------------------------------------------------------------------ reminders and limits

    def claim_alerts(self, recipient: str, now: float, sla_seconds: float | None) -> None:
        """Record, once per due time, the reminders and first-contact limits that came due for
        ``recipient`` (their own leads and the unowned ones); see :meth:`alerts_after`."""
        self._reminders.claim(recipient, now, sla_seconds)

    def last_alert_id(self) -> int:
        return self._d.reading(self._reminders.last_alert_id)

    def alerts_after(self, recipient: str, after_id: int) -> list[Alert]:
        """The alerts for ``recipient`` recorded after ``after_id``, by any of their TUIs."""
        return self._d.reading(lambda: self._reminders.alerts_after(recipient, after_id))

    def reminder_counts(
        self, recipient: str, now: float, sla_seconds: float | None, cap: int | None = None
    ) -> dict[str, int]:
        """``due`` later today and ``overdue`` for ``recipient``; ``late``: today's leads past
        the first-contact limit (with ``sla_seconds``). Each stops at ``cap``."""
        start = start_of_day(now)
        end = start_of_day(start + 36 * 3600)
        return self._d.reading(
            lambda: self._reminders.counts(
                recipient, now, end_of_day=end, start_of_day=start, sla_seconds=sla_seconds, cap=cap
            )
        )

    def follow_ups(self, which: str, now: float | None = None, limit: int = 1000) -> list[Lead]:
        """Open leads whose follow-up is ``"due"`` (later today) or ``"overdue"`` (its time has
        come), soonest first."""
        at = time.time() if now is None else now
        end = start_of_day(start_of_day(at) + 36 * 3600)

        def read() -> list[Lead]:
            ids = self._reminders.follow_ups(which, at, end, limit)
            found = {lead.id: lead for lead in self._leads.get_leads(ids)}
            return [found[i] for i in ids if i in found]

        return self._d.reading(read)

    # ------------------------------------------------------------------ outbox

    def set_outbox_routes(self, routes: Sequence[OutboxRoute]) -> None:
        """Who wants which events: from now on, a lead this store commits (new, or a buyer's
        new message) adds an outbox row per route that wants it, in the same transaction."""
        self._apply.routes = tuple(routes)

    @property
    def outbox_routes(self) -> tuple[OutboxRoute, ...]:
        return self._apply.routes

    def outbox_due(self, now: float | None = None, limit: int = 20) -> list[OutboxItem]:
        """Pending outbox rows whose time has come, oldest first (the sender's work)."""
        at = time.time() if now is None else now
        return self._d.reading(lambda: self._outbox.due(at, limit))

    def outbox_next_due_ts(self) -> float | None:
        return self._d.reading(self._outbox.next_due_ts)

    def outbox_sent(self, item_id: int) -> None:
        self._outbox.mark_sent(item_id, time.time())

    def outbox_failed(self, item_id: int, error: str, next_ts: float | None) -> None:
        """One failed delivery: due again at ``next_ts``, or a dead letter when None.
        ``error`` must hold no secret (the sender scrubs it)."""
        self._outbox.mark_failed(item_id, error, next_ts)

    def outbox_defer(self, item_id: int, until: float) -> None:
        """Hold a row until ``until`` (quiet hours), not counted as an attempt."""
        self._outbox.defer(item_id, until)

    def outbox_skip(self, item_id: int, reason: str) -> None:
        """Never send a row (quiet hours that drop it); it stays listed as skipped."""
        self._outbox.skip(item_id, reason)

    def outbox_due_now(self) -> int:
        """Make every pending row due at once (a sender starting). Returns how many."""
        return self._outbox.due_now(time.time())

    def outbox_items(self, state: str | None = None, limit: int = 100) -> list[OutboxItem]:
        """Outbox rows newest first, of one state (pending, sent, dead) or all."""
        return self._d.reading(lambda: self._outbox.items(state, limit))

    def outbox_item(self, item_id: int) -> OutboxItem | None:
        return self._d.reading(lambda: self._outbox.item(item_id))

    def outbox_retry(self, item_id: int) -> bool:
        """Deliver a dead letter (or a row backing off) again now."""
        return self._outbox.retry(item_id, time.time())

    def outbox_drop(self, item_id: int) -> bool:
        """Forget an undelivered row."""
        return self._outbox.drop(item_id)

    def outbox_counts(self) -> list[OutboxCounts]:
        """Per target: rows pending, dead and sent."""
        return self._d.reading(self._outbox.counts)

    # ------------------------------------------------------------------ automatic acknowledgement

    def autoreply_opted_out(self, lead: dict[str, Any]) -> bool:
        """Whether this buyer (any of the lead's phones or emails) wrote STOP."""
        return self._d.reading(lambda: self._autoreply.opted_out(lead))

    def autoreply_sent_on(self, day: str, channel: str) -> int:
        return self._d.reading(lambda: self._autoreply.sent_on(day, channel))

    def autoreply_sent(self, item_id: int, lead_id: int, channel: str, text: str, day: str) -> None:
        """An acknowledgement went out: its row marked sent and counted for the day's cap in
        one transaction (between two, a failure would send it to the buyer again, or let the
        cap undercount), then written in the lead's history."""

        def txn() -> None:
            self._outbox.mark_sent_txn(item_id, time.time())
            self._autoreply.count_sent_txn(day, channel)

        self._d.retrying(txn, idempotent=False)
        self._triage.record_autoreply(lead_id, channel, text)

    # ------------------------------------------------------------------ alerts (outbox watcher)

    def alert_state(self) -> dict[str, Any]:
        """What the outbox's watcher remembers across restarts (which alerts it sent)."""
        return self._d.reading(self._alerts.state)

    def queue_alert(
        self, kind: str, event_id: str, payload: dict[str, Any], state: dict[str, Any]
    ) -> int:
        """Queue an alert (no lead) for the routes that want ``kind`` and save the watcher's
        ``state``, in one transaction; returns the rows added."""
        return self._alerts.queue(kind, event_id, payload, self._apply.routes, state)

    def queue_due_alerts(
        self, start: float, end: float, sla: float | None, state: dict[str, Any]
    ) -> int:
        """Queue ``reminder.due`` and ``sla.breached`` for what came due in (start, end], for
        the routes whose filters pass each lead, and save the watcher's ``state``, in one
        transaction; returns the rows added."""
        due = self._d.reading(lambda: self._reminders.came_due(start, end, sla))
        return self._alerts.queue_for_leads(due, self._apply.routes, self._leads, state)

    def save_alert_state(self, state: dict[str, Any]) -> None:
        self._alerts.save(state)

    def push_window(self, since: float) -> tuple[int, int]:
        """IndiaMART leads first seen since ``since``: (all, those that came by push)."""
        return self._d.reading(lambda: self._alerts.push_window(since))

    def digest_counts(self, now: float, today: str, stale_after: float) -> dict[str, int]:
        """The daily digest's counts (see ``_store/alerts.py``)."""
        return self._d.reading(lambda: self._alerts.digest(now, today, stale_after))
