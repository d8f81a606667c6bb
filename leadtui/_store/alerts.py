"""What the outbox's watcher reads and writes: alerts that are about the service, not one lead.

A source failing, the review queue growing, IndiaMART's push gone quiet and the daily digest
are outbox rows like any other (``lead_id`` NULL). Each is sent once, not once per restart
or per TUI: the watcher's memory (when a source started failing, the queue size last told,
the day of the last digest) is a ``sync_state`` row, written in the same transaction as the
alert's outbox rows, so a process killed between the two cannot send an alert twice; and the
event id is derived from what it reports, so the unique (event id, target) index refuses a
second copy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from leadtui._store.database import Database
from leadtui._store.health import SourceState
from leadtui._store.leads import Leads
from leadtui._store.outbox import OutboxRoute
from leadtui._store.records import iso

STATE_KEY = "outbox:alerts"
CLOSED = ("won", "lost", "spam")
_INSERT_SQL = (
    "INSERT INTO outbox (event_id, kind, target, lead_id, payload, created_ts, next_attempt_ts,"
    " attempts, state) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'pending') ON CONFLICT DO NOTHING"
)


class Alerts:
    """The watcher's state and its queries."""

    def __init__(self, database: Database) -> None:
        self._d = database
        self._state = SourceState(database)

    def state(self) -> dict[str, Any]:
        return self._state.get_state(STATE_KEY) or {}

    def queue(
        self,
        kind: str,
        event_id: str,
        payload: dict[str, Any],
        routes: Sequence[OutboxRoute],
        state: dict[str, Any],
    ) -> int:
        """Add one alert's rows for the targets that want ``kind`` and save the watcher's
        ``state``, in one transaction. Returns the rows added (0: nobody wants it, or it was
        queued before)."""
        now = time.time()
        body = json.dumps(
            {"id": event_id, "type": kind, "created": iso(now), **payload}, ensure_ascii=False
        )
        rows = [
            (event_id, kind, r.target, None, body, now, now) for r in routes if kind in r.events
        ]
        return self._commit(rows, state)

    def queue_for_leads(
        self,
        due: Sequence[tuple[str, int, float]],
        routes: Sequence[OutboxRoute],
        leads: Leads,
        state: dict[str, Any],
    ) -> int:
        """Queue ``due`` (kind, lead id, due time) for the routes whose filters pass the lead,
        and save the watcher's ``state``, in one transaction. The event id is the kind, lead
        and due time, so the unique (event id, target) index refuses a second copy."""
        now = time.time()
        by_id = {lead.id: lead.to_json() for lead in leads.get_leads(i for _k, i, _d in due)}
        rows: list[tuple[Any, ...]] = []
        for kind, lead_id, due_ts in due:
            lead = by_id.get(lead_id)
            if lead is None:
                continue
            targets = [r.target for r in routes if r.wants(kind, lead, now)]
            if not targets:
                continue
            event_id = f"{kind}:{lead_id}:{int(due_ts)}"
            body = json.dumps(
                {
                    "id": event_id,
                    "type": kind,
                    "created": iso(now),
                    "due": iso(due_ts),
                    "lead": lead,
                },
                ensure_ascii=False,
            )
            rows.extend((event_id, kind, t, lead_id, body, now, now) for t in targets)
        return self._commit(rows, state)

    def _commit(self, rows: Sequence[tuple[Any, ...]], state: dict[str, Any]) -> int:
        """The outbox rows and the watcher's state, in one transaction: rows added."""

        def txn() -> int:
            added = 0
            for row in rows:
                added += int(self._d.sql(_INSERT_SQL, row).rowcount or 0)
            self._state.set_state_txn(STATE_KEY, state)
            return added

        return self._d.retrying(txn, idempotent=True)

    def save(self, state: dict[str, Any]) -> None:
        self._state.set_state(STATE_KEY, state)

    def push_window(self, since: float) -> tuple[int, int]:
        """IndiaMART leads first seen since ``since``: (all of them, those that came by push).

        A push of an enquiry email found first adds ``push`` to its channels, so "none by
        push" means IndiaMART pushed nothing while email or the CRM pull still found leads.
        Served by the ``first_seen_ts`` index: the window holds hours of leads, not the table.
        """
        row = self._d.row(
            "SELECT count(*), coalesce(sum(CASE WHEN channels LIKE ? THEN 1 ELSE 0 END), 0)"
            " FROM lead WHERE first_seen_ts >= ? AND source = 'indiamart'",
            ("%push%", since),
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def digest(self, now: float, today: str, stale_after: float) -> dict[str, int]:
        """The daily digest's counts: new in the last day, uncontacted, due today, BuyLeads
        going stale (new for longer than ``stale_after`` seconds), missed by email."""
        day = now - 86400

        def one(sql: str, params: Sequence[Any] = ()) -> int:
            row = self._d.row(sql, params)
            return int(row[0]) if row and row[0] is not None else 0

        closed = ",".join(f"'{s}'" for s in CLOSED)
        return {
            "new": one("SELECT count(*) FROM lead WHERE first_seen_ts >= ?", (day,)),
            "uncontacted": one("SELECT count(*) FROM lead WHERE status = 'new'"),
            "due_today": one(
                "SELECT count(*) FROM lead WHERE follow_up IS NOT NULL AND follow_up <= ?"
                f" AND status NOT IN ({closed})",
                (today,),
            ),
            "buyleads_stale": one(
                "SELECT count(*) FROM lead WHERE status = 'new' AND query_type = 'B'"
                " AND first_seen_ts < ? AND first_seen_ts >= ?",
                (now - stale_after, now - 7 * 86400),
            ),
            "missed_by_email": one(
                "SELECT count(*) FROM lead WHERE first_seen_ts >= ? AND missed_by_email = ?",
                (day, True),
            ),
        }
