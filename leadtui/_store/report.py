"""The stats screen's figures, aggregated by the database.

The screen's 14 days hold about 200,000 leads at a million; reading them into Python row by row
took 1.2 s on SQLite and 1.8 s on PostgreSQL against the 1 s report budget. Here the leads per
day are counts of ``received_ts`` ranges between the seller's midnights (the index alone
answers them), type and source are grouped over the week, and first contact on time is grouped
per day and person: on PostgreSQL entirely in SQL (``percentile_cont`` for the medians); on
SQLite, whose window functions sorted each partition apart and took a second here, one short
row per lead comes back and Python sorts the values of each group for its median.

A day is the seller's calendar day, the one ``datetime.fromtimestamp`` gives: the UTC offset
of the process's zone (``ui.timezone``; IST on a UTC server) is added before dividing by 86,400
seconds, with the offset looked up per stretch of time, so a zone that changes its clocks gets
its days right too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from leadtui._store.database import Database
from leadtui._store.records import SlaRow
from leadtui._store.reminders import OLD_MAIL

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_STEP = 6 * 3600.0  # zones change their offset at most twice a year, never twice in 6 hours
_HORIZON = 400 * 86400.0  # the offsets are looked up this far past the window's start


@dataclass
class Groups:
    """What the database returned, per group, for :meth:`Counts.stats` to shape."""

    per_day: dict[date, int] = field(default_factory=dict)
    new_today: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    # first contact on time: leads counted, and contacted within the limit
    sla_days: dict[date, list[int]] = field(default_factory=dict)
    sla_people: dict[str, list[int]] = field(default_factory=dict)
    median_day: dict[date, float] = field(default_factory=dict)
    median_person: dict[str, float] = field(default_factory=dict)
    median_today: float | None = None
    median_week: float | None = None

    def sla_by_day(self) -> list[SlaRow]:
        """The newest day first, labelled as the screen shows it: "Thu 12 Mar"."""
        return [
            SlaRow(f"{d:%a %d %b}", n, on_time, self.median_day.get(d))
            for d, (n, on_time) in sorted(self.sla_days.items(), reverse=True)
        ]

    def sla_by_person(self) -> list[SlaRow]:
        """By name, "Asha" before "asha" (the order must not depend on the rows' order)."""
        people = sorted(self.sla_people.items(), key=lambda kv: (kv[0].casefold(), kv[0]))
        return [SlaRow(p, n, on_time, self.median_person.get(p)) for p, (n, on_time) in people]


def offsets(lo: float, hi: float) -> list[tuple[float, int]]:
    """The process zone's UTC offset over ``[lo, hi]``: ``(from, seconds)`` stretches, the first
    from ``lo``. One stretch in IST; a zone with summer time gets one more per change."""
    hi = min(hi, lo + _HORIZON)
    current = time.localtime(lo).tm_gmtoff
    out = [(lo, current)]
    t = lo
    while t < hi:
        nxt = min(t + _STEP, hi)
        if time.localtime(nxt).tm_gmtoff != current:
            a, b = math.floor(t), math.ceil(nxt)  # the change is at a whole second in (a, b]
            while b - a > 1:
                mid = (a + b) // 2
                if time.localtime(mid).tm_gmtoff == current:
                    a = mid
                else:
                    b = mid
            current = time.localtime(b).tm_gmtoff
            out.append((float(b), current))
        t = nxt
    return out


def day_sql(column: str, stretches: Sequence[tuple[float, int]], backend: str) -> str:
    """SQL for the seller's day of ``column`` (an epoch time) as days since 1970-01-01."""
    offset = str(stretches[0][1])
    if len(stretches) > 1:
        whens = " ".join(
            f"WHEN {column} < {start!r} THEN {before}"
            for (start, _), (_, before) in zip(stretches[1:], stretches, strict=False)
        )
        offset = f"CASE {whens} ELSE {stretches[-1][1]} END"
    if backend == "postgres":
        return f"CAST(floor(({column} + {offset}) / 86400) AS BIGINT)"
    return f"CAST(({column} + {offset}) / 86400 AS INTEGER)"  # the window is after 1970


def day_of(key: int) -> date:
    return date.fromordinal(EPOCH_ORDINAL + int(key))


def midnight(d: date) -> float:
    """The epoch time at which the seller's day ``d`` starts."""
    return datetime(d.year, d.month, d.day).timestamp()


# The figures' expressions over ``lead``: ``sla``, the lead counts for first contact on time
# (not spam, not old mail, contacted or its limit passed; parameters now, limit); ``waited``,
# its first contact, never below zero (NULL: not contacted); ``resp``, the response time of the
# "First contact" table; ``who``, who made the first contact, or the owner.
_SLA = f"""(status <> 'spam' AND received_ts >= first_seen_ts - {OLD_MAIL!r}
    AND (contacted_ts IS NOT NULL OR ? - first_seen_ts >= ?))"""
_WAITED = """CASE WHEN contacted_ts IS NULL THEN NULL WHEN contacted_ts > first_seen_ts
    THEN contacted_ts - first_seen_ts ELSE 0.0 END"""
_RESP = "contacted_ts - first_seen_ts"
_WHO = "COALESCE(NULLIF(contacted_by, ''), NULLIF(owner, ''), 'unassigned')"

# Leads per day: one count of a ``received_ts`` range each, which the index answers alone
# (200,000 entries in a few milliseconds, where grouping by a computed day read the table).
_RANGE = "(SELECT COUNT(*) FROM lead WHERE received_ts >= ? AND received_ts < ?)"
_FROM = "(SELECT COUNT(*) FROM lead WHERE received_ts >= ?)"

# This week by type and source. Parameter: week.
_TYPES = """SELECT query_type, source, COUNT(*) FROM lead WHERE received_ts >= ?
GROUP BY query_type, source"""

# PostgreSQL: first contact per day (0) and person (1), and the "First contact" medians of
# today and the week (2), in one statement that reads the window's leads once (three
# statements took 40% longer); the medians by percentile_cont. Parameters: week, today, now,
# limit, since; then limit for each of the first two parts.
_PG_ROWS = f"""WITH r AS MATERIALIZED (
    SELECT {{day}} AS day, {_WHO} AS who, received_ts >= ? AS wk, received_ts >= ? AS td,
        {_SLA} AS sla, {_WAITED} AS waited, {_RESP} AS resp
    FROM lead WHERE received_ts >= ?)
"""
_PG_PARTS = (
    """SELECT 2, CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT),
    CAST(NULL AS BIGINT), percentile_cont(0.5) WITHIN GROUP (ORDER BY resp) FILTER (WHERE td),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY resp)
FROM r WHERE wk AND resp IS NOT NULL""",
    """SELECT 0, day, NULL, COUNT(*), COUNT(*) FILTER (WHERE waited <= ?),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY waited), NULL
FROM r WHERE sla GROUP BY day""",
    """SELECT 1, NULL, who, COUNT(*), COUNT(*) FILTER (WHERE waited <= ?),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY waited), NULL
FROM r WHERE sla GROUP BY who""",
)


# SQLite: the leads first contact on time and the medians need, one short row each (its
# window functions took a second here; Python sorts 100,000 values in milliseconds).
# ``period``: 2 today, 1 this week, 0 before. Parameters: now, limit, today, week, since, now,
# limit, week.
_LITE_ROWS = f"""SELECT {{day}}, {_WHO}, CASE WHEN {_SLA} THEN 1 ELSE 0 END,
    CASE WHEN received_ts >= ? THEN 2 WHEN received_ts >= ? THEN 1 ELSE 0 END, {_RESP}
FROM lead WHERE received_ts >= ?
    AND ({_SLA} OR (received_ts >= ? AND contacted_ts IS NOT NULL))"""


class Report:
    """The grouped figures of one stats screen: four statements over the window."""

    def __init__(
        self, database: Database, *, now: float, dates: Sequence[date], week: float,
        limit: float | None,
    ) -> None:  # fmt: skip
        """``dates``: the screen's days, oldest first, the last one today."""
        self._d = database
        self.backend = database.backend.name
        self.dates = list(dates)
        self.now, self.week, self.limit = now, week, limit
        # the seller's midnights, as ``datetime.fromtimestamp`` draws them
        self.bounds = [midnight(d) for d in self.dates]
        self.today = self.bounds[-1]
        # first contact on time counts from 13 × 24 hours before today's midnight, as it did
        # when Python read the rows (an hour off the first midnight across a clock change)
        self.since = self.today - (len(self.dates) - 1) * 86400
        self.bounds.append(midnight(self.dates[-1] + timedelta(days=1)))

    def groups(self) -> Groups:
        newest = self._d.row("SELECT MAX(received_ts) FROM lead")
        hi = max(self.now, float(newest[0])) if newest and newest[0] is not None else self.now
        day = day_sql("received_ts", offsets(self.since, hi), self.backend)
        g = Groups()
        ranges = list(zip(self.bounds, self.bounds[1:], strict=False))
        sql = "SELECT " + ", ".join([_RANGE] * len(ranges) + [_FROM])
        row = self._d.row(sql, [*(t for r in ranges for t in r), self.today]) or ()
        g.per_day = {d: int(n) for d, n in zip(self.dates, row, strict=False)}
        g.new_today = int(row[-1])  # today's and any "tomorrow" a wrong clock gave
        for qtype, source, n in self._d.sql(_TYPES, (self.week,)).fetchall():
            label = qtype or source or "other"  # as the table's Type column: "Website"
            g.by_type[label] = g.by_type.get(label, 0) + n
            g.by_source[source] = g.by_source.get(source, 0) + n
        if self.backend == "postgres":
            self._postgres(g, day)
        else:
            self._sqlite(g, day)
        return g

    def _postgres(self, g: Groups, day: str) -> None:
        limit = self.limit or 0.0
        parts = _PG_PARTS if self.limit else _PG_PARTS[:1]  # without a limit, no tally
        params = (self.week, self.today, self.now, limit, self.since) + (limit,) * (len(parts) - 1)
        sql = _PG_ROWS.format(day=day) + " UNION ALL ".join(parts)
        for kind, key, who, n, on_time, median, other in self._d.sql(sql, params).fetchall():
            m = None if median is None else float(median)
            if kind == 2:
                g.median_today, g.median_week = m, None if other is None else float(other)
            elif kind == 1:
                g.sla_people[who] = [int(n), int(on_time)]
                if m is not None:
                    g.median_person[who] = m
            else:
                g.sla_days[day_of(key)] = [int(n), int(on_time)]
                if m is not None:
                    g.median_day[day_of(key)] = m

    def _sqlite(self, g: Groups, day: str) -> None:
        # Without a limit, ``? - first_seen_ts >= ?`` with an infinite one keeps the contacted
        # leads only, and this week's are enough.
        limit = self.limit or math.inf
        since = self.since if self.limit else self.week
        params = (self.now, limit, self.today, self.week, since, self.now, limit, self.week)
        counts: dict[int, list[int]] = {}
        days: dict[int, list[float]] = {}
        people: dict[str, list[float]] = {}
        today: list[float] = []
        week: list[float] = []
        tally = bool(self.limit)
        for key, who, counted, period, resp in self._d.sql(_LITE_ROWS.format(day=day), params):
            if counted and tally:
                if resp is None:  # not contacted, its limit passed
                    _tally(counts, key, 0)
                    _tally(g.sla_people, who, 0)
                    continue
                waited = resp if resp > 0 else 0.0  # contacted "before" leadtui saw it: 0
                on_time = 1 if waited <= limit else 0
                _tally(counts, key, on_time)
                _tally(g.sla_people, who, on_time)
                _append(days, key, waited)
                _append(people, who, waited)
            if period and resp is not None:
                week.append(resp)
                if period == 2:
                    today.append(resp)
        g.sla_days = {day_of(k): v for k, v in counts.items()}
        g.median_day = {day_of(k): m for k, m in _medians(days.items())}
        g.median_person = dict(_medians(people.items()))
        g.median_today = median(today)
        g.median_week = median(week)


def median(values: list[float]) -> float | None:
    """As :func:`statistics.median`: the mean of the two middle values of an even count."""
    if not values:
        return None
    values.sort()
    half = len(values) // 2
    if len(values) % 2:
        return values[half]
    return (values[half - 1] + values[half]) / 2


def _medians(groups: Iterable[tuple[Any, list[float]]]) -> Iterable[tuple[Any, float]]:
    for key, values in groups:
        m = median(values)
        if m is not None:
            yield key, m


def _tally(into: dict[Any, list[int]], key: Any, on_time: int) -> None:
    """One more lead of ``key``; ``on_time``: 1 if it was contacted within the limit."""
    if key in into:
        pair = into[key]
        pair[0] += 1
        pair[1] += on_time
    else:
        into[key] = [1, on_time]


def _append(into: dict[Any, list[float]], key: Any, value: float) -> None:
    if key in into:
        into[key].append(value)
    else:
        into[key] = [value]
