"""Reminders and first-contact limits: what is due, who was alerted, the header's counts.

A follow-up has a time (``lead.follow_up_ts``); a new lead nobody contacted has a limit
(``first_seen_ts`` + ``sla.first_contact``). When either passes, each person concerned (the
lead's owner, or everyone when it has none) is alerted once: an ``alert`` row keyed by lead,
kind, due time and recipient, inserted by whichever of that person's TUIs sees it first.
Every TUI of that person that is open shows the rows added after it started, so two open TUIs
both ring, and a TUI started later (a restart) rings for none of them again. The rows live in
the database, so neither a restart nor a capture takeover forgets them.
"""

from __future__ import annotations

from typing import Any

import peewee

from leadtui._store.database import Database
from leadtui._store.records import Alert

pw: Any = peewee  # untyped, as in models.py

OPEN_STATUSES = ("new", "contacted", "quoted")
ALERT_WINDOW = 12 * 3600.0
"""How far back a due time still alerts: a TUI opened in the morning rings for last evening's
missed reminders, not for every follow-up of last year."""
OLD_MAIL = 86400.0
"""A lead enquired this much before leadtui first saw it is old mail (an import, a backfill):
no first-contact clock runs for it."""


def recipient_of(name: str) -> str:
    """Owners and OS users compare without case ("Asha" is asha), as the owner prompt does."""
    return name.strip().casefold()[:64]


class Reminders:
    """The queries behind the reminder watcher, ``list --due`` and the header's counts."""

    def __init__(self, database: Database) -> None:
        self._d = database

    # ------------------------------------------------------------------ alerts

    def claim(
        self, recipient: str, now: float, sla_seconds: float | None, window: float = ALERT_WINDOW
    ) -> None:
        """Add an alert row for every reminder and first-contact limit that came due for
        ``recipient`` within ``window`` and has none yet (another TUI of theirs may add the
        same row at the same moment: the unique key keeps one)."""
        who = recipient_of(recipient)
        rows = [
            (lead_id, "follow-up", due) for lead_id, due in self._due_follow_ups(who, now, window)
        ]
        if sla_seconds:
            rows += [
                (lead_id, "sla", due)
                for lead_id, due in self._due_limits(who, now, window, sla_seconds)
            ]
        if not rows:
            return
        alert = self._d.m.Alert

        def txn() -> None:
            for lead_id, kind, due in rows:
                alert.insert(
                    lead_id=lead_id, kind=kind, due_ts=due, recipient=who, alerted_ts=now
                ).on_conflict_ignore().execute()

        self._d.retrying(txn, idempotent=True)

    def _status(self) -> Any:
        """The status, as an expression no index serves: without statistics (a user's SQLite
        database has none) the planner would walk every open lead by the status index, when
        the time ranges here are narrow and the follow-up index covers the status too."""
        return self._d.m.Lead.status.concat("")

    def _mine(self, who: str) -> Any:
        lead = self._d.m.Lead
        return lead.owner.is_null(True) | (pw.fn.lower(lead.owner) == who)

    def _due_follow_ups(self, who: str, now: float, window: float) -> list[tuple[int, float]]:
        lead, alert = self._d.m.Lead, self._d.m.Alert
        done = alert.select(pw.SQL("1")).where(
            (alert.lead_id == lead.id)
            & (alert.kind == "follow-up")
            & (alert.due_ts == lead.follow_up_ts)
            & (alert.recipient == who)
        )
        q = lead.select(lead.id, lead.follow_up_ts).where(
            (lead.follow_up_ts > now - window)
            & (lead.follow_up_ts <= now)
            & self._status().in_(OPEN_STATUSES)
            & self._mine(who)
            & ~pw.fn.EXISTS(done)
        )
        return [(int(i), float(ts)) for i, ts in q.tuples()]

    def _due_limits(
        self, who: str, now: float, window: float, sla: float
    ) -> list[tuple[int, float]]:
        lead, alert = self._d.m.Lead, self._d.m.Alert
        done = alert.select(pw.SQL("1")).where(
            (alert.lead_id == lead.id) & (alert.kind == "sla") & (alert.recipient == who)
        )
        q = lead.select(lead.id, lead.first_seen_ts).where(
            (lead.first_seen_ts > now - window - sla)
            & (lead.first_seen_ts <= now - sla)
            & (self._status() == "new")
            & lead.contacted_ts.is_null(True)
            & (lead.received_ts >= lead.first_seen_ts - OLD_MAIL)
            & self._mine(who)
            & ~pw.fn.EXISTS(done)
        )
        return [(int(i), float(ts) + sla) for i, ts in q.tuples()]

    def came_due(self, start: float, end: float, sla: float | None) -> list[tuple[str, int, float]]:
        """Follow-ups and first-contact limits of any owner that came due in (start, end]:
        ("reminder.due" | "sla.breached", lead id, due time), oldest first. What the outbox's
        watcher tells ``[[notify]]`` targets, once each (its window moves on as it tells)."""
        lead = self._d.m.Lead
        found = [
            ("reminder.due", int(i), float(ts))
            for i, ts in lead.select(lead.id, lead.follow_up_ts)
            .where(
                (lead.follow_up_ts > start)
                & (lead.follow_up_ts <= end)
                & self._status().in_(OPEN_STATUSES)
            )
            .tuples()
        ]
        if sla:
            found += [
                ("sla.breached", int(i), float(ts) + sla)
                for i, ts in lead.select(lead.id, lead.first_seen_ts)
                .where(
                    (lead.first_seen_ts > start - sla)
                    & (lead.first_seen_ts <= end - sla)
                    & (self._status() == "new")
                    & lead.contacted_ts.is_null(True)
                    & (lead.received_ts >= lead.first_seen_ts - OLD_MAIL)
                )
                .tuples()
            ]
        return sorted(found, key=lambda x: x[2])

    def last_alert_id(self) -> int:
        """Where a TUI starting now begins: alerts up to here rang before it opened."""
        alert = self._d.m.Alert
        value = alert.select(pw.fn.MAX(alert.id)).scalar()
        return int(value or 0)

    def alerts_after(self, recipient: str, after_id: int, limit: int = 500) -> list[Alert]:
        """Alerts for ``recipient`` added after ``after_id`` (by any of their TUIs), in order."""
        alert = self._d.m.Alert
        q = (
            alert.select(alert.id, alert.lead_id, alert.kind, alert.due_ts, alert.recipient)
            .where((alert.recipient == recipient_of(recipient)) & (alert.id > after_id))
            .order_by(alert.id)
            .limit(limit)
        )
        return [Alert(int(a), int(b), str(c), float(d), str(e)) for a, b, c, d, e in q.tuples()]

    # ------------------------------------------------------------------ counts and lists

    def counts(
        self, recipient: str, now: float, *, end_of_day: float, start_of_day: float,
        sla_seconds: float | None, cap: int | None = None,
    ) -> dict[str, int]:  # fmt: skip
        """The header's ``due`` (later today), ``overdue`` (the time has come, still open), both
        of the leads that alert ``recipient``, and ``late``: today's new leads (the team's)
        that waited past the first-contact limit."""
        lead = self._d.m.Lead
        who = recipient_of(recipient)
        pending = self._status().in_(OPEN_STATUSES) & self._mine(who)

        def count(q: Any) -> int:
            if cap is not None:
                q = q.select(pw.SQL("1")).limit(cap)
            return int(q.count())

        out = {
            "due": count(
                lead.select().where(
                    (lead.follow_up_ts > now) & (lead.follow_up_ts < end_of_day) & pending
                )
            ),
            "overdue": count(lead.select().where((lead.follow_up_ts <= now) & pending)),
        }
        if sla_seconds:
            out["late"] = count(lead.select().where(self.late(now, start_of_day, sla_seconds)))
        return out

    def late(self, now: float, start_of_day: float, sla: float) -> Any:
        """Today's leads that missed the first-contact limit: still waiting past it, or
        contacted after it."""
        lead = self._d.m.Lead
        waiting = lead.contacted_ts.is_null(True) & (lead.first_seen_ts <= now - sla)
        slow = lead.contacted_ts > lead.first_seen_ts + sla
        return (
            (lead.first_seen_ts >= start_of_day)
            & (lead.received_ts >= lead.first_seen_ts - OLD_MAIL)
            & (lead.status != "spam")
            & (waiting | slow)
        )

    def follow_ups(self, which: str, now: float, end_of_day: float, limit: int) -> list[int]:
        """Ids of the open leads whose follow-up is ``due`` (later today) or ``overdue`` (its
        time has come), soonest first: ``leadtui list --due`` / ``--overdue``."""
        lead = self._d.m.Lead
        if which == "due":
            when = (lead.follow_up_ts > now) & (lead.follow_up_ts < end_of_day)
        else:
            when = lead.follow_up_ts <= now
        q = (
            lead.select(lead.id)
            .where(when & self._status().in_(OPEN_STATUSES))
            .order_by(lead.follow_up_ts, lead.id)
            .limit(limit)
        )
        return [int(r[0]) for r in q.tuples()]
