"""The outbox: everything that leaves leadtui, as rows written with their cause.

A new lead (``lead.created``) or a buyer's new message on a lead (``lead.replied``) adds one
row per target whose :class:`OutboxRoute` wants it, in the capture transaction that commits the
lead (:meth:`Outbox.enqueue_txn`, called by ``apply.py``). A lead committed without its rows,
or rows without their lead, cannot happen. After commit, the one sender under the capture lease
(``leadtui/outbox.py``) reads what is due, delivers it and marks it here: ``sent``, or
``pending`` again with a later ``next_attempt_ts``, or ``dead`` with the last error.

A row stays ``pending`` until its delivery is answered, so a sender killed mid-delivery leaves
it to the next one: at least once, with the row's ``event_id`` for the receiver to dedupe on.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from leadtui._store.autoreply import AutoreplyState, is_stop, received_ts
from leadtui._store.database import Database
from leadtui._store.leads import Leads
from leadtui._store.records import iso

EVENTS = ("lead.created", "lead.replied", "lead.updated", "lead.status_changed")
OUTBOX_STATES = ("pending", "sent", "dead", "skipped")  # skipped: quiet hours that drop

_AMOUNT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(lakhs?|lacs?|crores?|cr|k|thousand)?\b", re.I)
_SCALE = {"lakh": 1e5, "lac": 1e5, "crore": 1e7, "cr": 1e7, "k": 1e3, "thousand": 1e3}


def order_value_ceiling(text: str | None) -> float | None:
    """The largest amount an order value names: ``"Rs. 50,000 to 1 Lakh"`` → 100000.0.

    IndiaMART gives a range; a target's ``min_order_value`` passes a lead whose range
    reaches it. The currency is not converted (it is as the buyer wrote it). None: no amount.
    """
    found = []
    for number, unit in _AMOUNT.findall(text or ""):
        value = float(number.replace(",", "") or 0)
        scale = (unit or "").lower().rstrip("s")
        found.append(value * _SCALE.get(scale, 1.0))
    return max(found) if found else None


@dataclass(frozen=True, slots=True)
class OutboxRoute:
    """Which events one target wants, and of which leads (an empty set: any)."""

    target: str
    events: frozenset[str] = frozenset({"lead.created"})
    query_types: frozenset[str] = frozenset()  # IndiaMART's lead type: W, B, P, WA, BIZ
    sources: frozenset[str] = frozenset()  # indiamart, tradeindia, website, …
    min_order_value: float = 0.0  # the order value's upper bound must reach it
    words: tuple[str, ...] = ()  # any of them in the product or the city (lower case)
    owners: frozenset[str] = frozenset()  # lower case
    # The automatic acknowledgement's rules: the field it sends to must be there, once per
    # buyer in this many seconds (across leads and channels), not for leads older than this.
    needs: str = ""
    once_per_buyer: float = 0.0
    max_age: float = 0.0

    def wants(self, kind: str, lead: dict[str, Any], now: float | None = None) -> bool:
        """Whether this target gets ``kind`` for ``lead``: every filter set must pass."""
        if kind not in self.events:
            return False
        if self.needs and not lead.get(self.needs):
            return False
        if self.max_age:
            received = received_ts(lead)
            if received is not None and received < (now or time.time()) - self.max_age:
                return False
        if self.query_types and str(lead.get("query_type") or "") not in self.query_types:
            return False
        if self.sources and str(lead.get("source") or "") not in self.sources:
            return False
        if self.min_order_value:
            ceiling = order_value_ceiling(lead.get("order_value"))
            if ceiling is None or ceiling < self.min_order_value:
                return False
        if self.words:
            text = f"{lead.get('product') or ''} {lead.get('city') or ''}".lower()
            if not any(word in text for word in self.words):
                return False
        return not (self.owners and str(lead.get("owner") or "").lower() not in self.owners)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One outbox row as the sender and ``leadtui outbox list`` see it."""

    id: int
    event_id: str
    kind: str
    target: str
    lead_id: int | None
    payload: dict[str, Any]
    created_ts: float
    next_attempt_ts: float
    attempts: int
    last_error: str | None
    state: str
    sent_ts: float | None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """Per target: rows waiting and dead letters (doctor, health)."""

    target: str
    pending: int
    dead: int
    sent: int


# What the capture path held back for the outbox: (event kind, lead id, extra payload fields).
PendingEvent = tuple[str, int, dict[str, Any]]

_COLUMNS = (
    "id",
    "event_id",
    "kind",
    "target",
    "lead_id",
    "payload",
    "created_ts",
    "next_attempt_ts",
    "attempts",
    "last_error",
    "state",
    "sent_ts",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM outbox"
_INSERT_SQL = (
    "INSERT INTO outbox (event_id, kind, target, lead_id, payload, created_ts, next_attempt_ts,"
    " attempts, state) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'pending') ON CONFLICT DO NOTHING"
)


def _says_stop(extra: dict[str, Any]) -> bool:
    return any(is_stop(str(m)) for m in extra.get("messages") or [])


def _item(row: Sequence[Any]) -> OutboxItem:
    data = dict(zip(_COLUMNS, row, strict=True))
    data["payload"] = json.loads(data["payload"] or "{}")
    return OutboxItem(**data)


class Outbox:
    """The ``outbox`` table."""

    def __init__(self, database: Database) -> None:
        self._d = database
        self._leads = Leads(database)
        self._acks = AutoreplyState(database)

    # ------------------------------------------------------------------ writing (capture)

    def enqueue_txn(
        self, events: Sequence[PendingEvent], routes: Sequence[OutboxRoute], now: float
    ) -> int:
        """Add the rows ``events`` cause for ``routes``, inside the caller's transaction.

        The lead is read here, after the capture path wrote it, so the payload is the lead as
        this transaction commits it (the same JSON as ``GET /api/leads``). Returns the rows
        added.
        """
        if not events:
            return 0
        stops = [e for e in events if e[0] == "lead.replied" and _says_stop(e[2])]
        wanted = {kind for r in routes for kind in r.events}
        if not stops and not any(e[0] in wanted for e in events):
            return 0  # nobody wants these: not even the leads are read
        leads = {lead.id: lead.to_json() for lead in self._leads.get_leads(e[1] for e in events)}
        # A buyer who wrote STOP is never acknowledged automatically again.
        self._acks.note_stops_txn(
            ((leads[e[1]], str(leads[e[1]].get("channel") or "")) for e in stops if e[1] in leads),
            now,
        )
        rows: list[tuple[Any, ...]] = []
        for kind, lead_id, extra in events:
            lead = leads.get(lead_id)
            if lead is None:
                continue
            wanting = [r for r in routes if r.wants(kind, lead, now)]
            plain = [r.target for r in wanting if not r.once_per_buyer]
            acks = [r.target for r in wanting if r.once_per_buyer]
            if acks and not self._may_greet(
                lead, min(r.once_per_buyer for r in wanting if r.once_per_buyer), now
            ):
                acks = []
            if not plain and not acks:
                continue
            event_id = str(uuid.uuid4())  # one event, one id, whichever targets get it
            payload = json.dumps(
                {"id": event_id, "type": kind, "created": iso(now), **extra, "lead": lead},
                ensure_ascii=False,
            )
            rows.extend((event_id, kind, t, lead_id, payload, now, now) for t in plain + acks)
        if rows:
            self._d.sql_many(_INSERT_SQL, rows)
        return len(rows)

    def _may_greet(self, lead: dict[str, Any], window: float, now: float) -> bool:
        """Whether this buyer may be acknowledged now; if so, remember it (this transaction)."""
        if self._acks.opted_out(lead) or self._acks.greeted_since(lead, now - window):
            return False
        self._acks.greet_txn(lead, now)
        return True

    # ------------------------------------------------------------------ the sender

    def due(self, now: float, limit: int = 20) -> list[OutboxItem]:
        """Pending rows whose time has come, oldest first."""
        cursor = self._d.sql(
            f"{_SELECT} WHERE state = 'pending' AND next_attempt_ts <= ?"
            " ORDER BY next_attempt_ts, id LIMIT ?",
            (now, limit),
        )
        return [_item(r) for r in cursor.fetchall()]

    def next_due_ts(self) -> float | None:
        row = self._d.row("SELECT min(next_attempt_ts) FROM outbox WHERE state = 'pending'")
        return None if row is None or row[0] is None else float(row[0])

    def mark_sent(self, item_id: int, now: float) -> None:
        self._d.retrying(lambda: self.mark_sent_txn(item_id, now), idempotent=True)

    def mark_sent_txn(self, item_id: int, now: float) -> None:
        """The row delivered, inside the caller's transaction."""
        self._d.sql(
            "UPDATE outbox SET state = 'sent', sent_ts = ?, attempts = attempts + 1,"
            " last_error = NULL WHERE id = ? AND state = 'pending'",
            (now, item_id),
        )

    def mark_failed(self, item_id: int, error: str, next_ts: float | None) -> None:
        """One failed attempt: due again at ``next_ts``, or a dead letter when it is None."""

        def txn() -> None:
            self._d.sql(
                "UPDATE outbox SET state = ?, next_attempt_ts = ?, attempts = attempts + 1,"
                " last_error = ? WHERE id = ? AND state = 'pending'",
                (
                    "dead" if next_ts is None else "pending",
                    time.time() if next_ts is None else next_ts,
                    error[:1000],
                    item_id,
                ),
            )

        self._d.retrying(txn, idempotent=False)

    def defer(self, item_id: int, until: float) -> None:
        """Hold a row until ``until`` without counting an attempt (quiet hours)."""

        def txn() -> None:
            self._d.sql(
                "UPDATE outbox SET next_attempt_ts = ? WHERE id = ? AND state = 'pending'",
                (until, item_id),
            )

        self._d.retrying(txn, idempotent=True)

    def skip(self, item_id: int, reason: str) -> None:
        """Never send a row (quiet hours that drop); it stays listed with the reason."""

        def txn() -> None:
            self._d.sql(
                "UPDATE outbox SET state = 'skipped', last_error = ? WHERE id = ?"
                " AND state = 'pending'",
                (reason[:1000], item_id),
            )

        self._d.retrying(txn, idempotent=True)

    def due_now(self, now: float) -> int:
        """Make every pending row due at once (a sender starting: a restart or new settings
        retries what was backing off). Returns how many."""

        def txn() -> int:
            cursor = self._d.sql(
                "UPDATE outbox SET next_attempt_ts = ? WHERE state = 'pending'"
                " AND next_attempt_ts > ?",
                (now, now),
            )
            return int(cursor.rowcount or 0)

        return self._d.retrying(txn, idempotent=True)

    # ------------------------------------------------------------------ the CLI

    def items(self, state: str | None = None, limit: int = 100) -> list[OutboxItem]:
        """Rows newest first, of one state or all."""
        where, params = ("WHERE state = ?", [state]) if state else ("", [])
        cursor = self._d.sql(f"{_SELECT} {where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [_item(r) for r in cursor.fetchall()]

    def item(self, item_id: int) -> OutboxItem | None:
        row = self._d.row(f"{_SELECT} WHERE id = ?", (item_id,))
        return None if row is None else _item(row)

    def retry(self, item_id: int, now: float) -> bool:
        """Deliver a dead (or waiting) row again now. False when there is no such row, or it
        was sent."""

        def txn() -> bool:
            cursor = self._d.sql(
                "UPDATE outbox SET state = 'pending', next_attempt_ts = ?"
                " WHERE id = ? AND state IN ('pending', 'dead')",
                (now, item_id),
            )
            return bool(cursor.rowcount)

        return self._d.retrying(txn, idempotent=True)

    def drop(self, item_id: int) -> bool:
        """Forget a row that is not sent (a dead letter nobody wants delivered)."""

        def txn() -> bool:
            cursor = self._d.sql(
                "DELETE FROM outbox WHERE id = ? AND state IN ('pending', 'dead')", (item_id,)
            )
            return bool(cursor.rowcount)

        return self._d.retrying(txn, idempotent=True)

    def counts(self) -> list[OutboxCounts]:
        cursor = self._d.sql(
            "SELECT target, state, count(*) FROM outbox GROUP BY target, state ORDER BY target"
        )
        by: dict[str, dict[str, int]] = {}
        for target, state, n in cursor.fetchall():
            by.setdefault(str(target), {})[str(state)] = int(n)
        return [
            OutboxCounts(t, c.get("pending", 0), c.get("dead", 0), c.get("sent", 0))
            for t, c in by.items()
        ]
