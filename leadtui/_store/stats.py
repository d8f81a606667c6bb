"""Counts for the header and the stats screen."""

from __future__ import annotations

import statistics
import time
from datetime import date, datetime, timedelta
from typing import Any

import peewee

from leadtui._store.database import Database
from leadtui._store.leads import UNREAD
from leadtui._store.records import SlaRow, Stats
from leadtui._store.reminders import OLD_MAIL

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
        now = time.time() if now is None else now
        lead = self._d.m.Lead
        today = start_of_day(now)
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
                lead.contacted_by,
                lead.owner,
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
        new_today = 0
        sla = SlaTally(sla_seconds, now) if sla_seconds else None
        for received, first_seen, contacted, qtype, source, status, by, owner in rows:
            day = datetime.fromtimestamp(received).date()
            if sla is not None:
                sla.add(day, received, first_seen, contacted, status=status, person=by or owner)
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
        # Contacted today: whenever the lead came (yesterday's leads called back this morning).
        contacted_today = lead.select().where(lead.contacted_ts >= today).count()
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
            sla_seconds=sla_seconds or None,
            sla_by_day=sla.by_day() if sla else [],
            sla_by_person=sla.by_person() if sla else [],
        )


class SlaTally:
    """First contact on time, per day (the buyer's) and per person (who made the first contact,
    or the owner of a lead nobody contacted yet). A lead counts once its limit has passed or it
    was contacted; old mail (an import) and spam do not count."""

    def __init__(self, limit: float, now: float) -> None:
        self.limit = limit
        self.now = now
        self.days: dict[date, list[float | None]] = {}
        self.people: dict[str, list[float | None]] = {}

    def add(
        self, day: date, received: float, first_seen: float, contacted: float | None,
        *, status: str, person: str | None,
    ) -> None:  # fmt: skip
        """One lead of ``day`` (the buyer's, as the per-day counts)."""
        if status == "spam" or received < first_seen - OLD_MAIL:
            return
        if contacted is None:
            if self.now - first_seen < self.limit:
                return  # the clock still runs
            waited = None
        else:
            waited = contacted - first_seen if contacted > first_seen else 0.0
        days, people = self.days, self.people
        if day in days:
            days[day].append(waited)
        else:
            days[day] = [waited]
        who = person or "unassigned"
        if who in people:
            people[who].append(waited)
        else:
            people[who] = [waited]

    def row(self, label: str, waits: list[float | None]) -> SlaRow:
        done = [w for w in waits if w is not None]
        on_time = sum(1 for w in done if w <= self.limit)
        return SlaRow(label, len(waits), on_time, statistics.median(done) if done else None)

    def by_day(self) -> list[SlaRow]:
        return [self.row(f"{d:%a %d %b}", self.days[d]) for d in sorted(self.days, reverse=True)]

    def by_person(self) -> list[SlaRow]:
        return [self.row(p, self.people[p]) for p in sorted(self.people, key=str.casefold)]


def start_of_day(ts: float) -> float:
    d = datetime.fromtimestamp(ts)
    return datetime(d.year, d.month, d.day).timestamp()
