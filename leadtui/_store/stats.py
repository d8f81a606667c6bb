"""Counts for the header and the stats screen."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import peewee

from leadtui._store.database import Database
from leadtui._store.leads import UNREAD
from leadtui._store.records import Stats
from leadtui._store.report import Report

pw: Any = peewee  # untyped, as in models.py


class Counts:
    """Header counts and the stats screen's figures."""

    def __init__(self, database: Database) -> None:
        self._d = database

    def counts(self, cap: int | None = None, now: float | None = None) -> dict[str, int]:
        """Header counts: new today, awaiting contact, review queue, leads with unread messages.

        "Today" is when the buyer enquired (``received_ts``), not when leadtui captured the
        lead: a first run that reads a week of mail must not count the whole week as today.

        With ``cap`` each count stops at ``cap`` (shown as "10,000+"): a viewer refreshes its
        header after every change, and an exact count over a million new leads takes half a
        second, while a capped one reads at most ``cap`` index entries.
        """
        lead = self._d.m.Lead
        raw = self._d.m.RawItem
        start = start_of_day(time.time() if now is None else now)

        def count(q: Any) -> int:
            if cap is not None:
                q = q.select(pw.SQL("1")).limit(cap)
            return int(q.count())

        return {
            "new_today": count(lead.select().where(lead.received_ts >= start)),
            "awaiting": count(lead.select().where(lead.status == "new")),
            # Failed raw items and the outbox's dead letters: the review queue lists both.
            "review": count(raw.select().where(raw.status == "failed"))
            + count(self._d.m.Outbox.select().where(self._d.m.Outbox.state == "dead")),
            "unread": count(lead.select().where(UNREAD)),  # leads with a message unread
        }

    def stats(
        self, now: float | None = None, days: int = 14, sla_seconds: float | None = None
    ) -> Stats:
        """The stats screen's figures. Days are the buyer's (received, in ``ui.timezone``);
        response times run from when leadtui saw the lead. The database groups the window's
        leads (:mod:`leadtui._store.report`): a million leads hold 200,000 in 14 days."""
        now = time.time() if now is None else now
        lead = self._d.m.Lead
        today = start_of_day(now)
        week = today - 6 * 86400
        limit = sla_seconds or None
        dates = [(datetime.fromtimestamp(today) - timedelta(days=i)).date() for i in range(days)]
        g = Report(self._d, now=now, dates=dates[::-1], week=week, limit=limit).groups()
        # Contacted today: whenever the lead came (yesterday's leads called back this morning).
        contacted_today = lead.select().where(lead.contacted_ts >= today).count()
        awaiting = lead.select().where(lead.status == "new").count()
        return Stats(
            per_day=sorted(g.per_day.items()),
            by_type=g.by_type,
            by_source=g.by_source,
            median_response_today=g.median_today,
            median_response_week=g.median_week,
            contacted_today=contacted_today,
            new_today=g.new_today,
            awaiting_contact=int(awaiting),
            sla_seconds=limit,
            sla_by_day=g.sla_by_day(),
            sla_by_person=g.sla_by_person(),
        )


def start_of_day(ts: float) -> float:
    d = datetime.fromtimestamp(ts)
    return datetime(d.year, d.month, d.day).timestamp()
