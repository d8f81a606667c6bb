"""The stats screen's figures, grouped by the database, against the row-by-row reference.

``Store.stats`` once read every lead of the 14 days into Python (1.2 s on SQLite, 1.8 s on
PostgreSQL at a million leads); it now groups them in SQL. ``reference_stats`` below is that
earlier code, kept as the oracle: on a few thousand synthetic leads that cross the seller's day
boundaries (IST on a UTC server, where the server's day and the seller's differ by 5:30), both
must give every figure the screen shows, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from leadtui import config
from leadtui.store import SlaRow, Stats, Store

IST = timezone(timedelta(hours=5, minutes=30))
OLD_MAIL = 86400.0
SLA = 900.0


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as s:
        yield s


@pytest.fixture
def ist_on_a_utc_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """conftest's ``_zone_restored`` gives the next test its zone back."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    config.use_timezone("Asia/Kolkata")  # what LeadApp and the CLI do with ui.timezone


# --------------------------------------------------------------------------- the reference


class SlaTally:
    """The row-by-row first-contact tally the store used before it grouped in SQL."""

    def __init__(self, limit: float, now: float) -> None:
        self.limit, self.now = limit, now
        self.days: dict[date, list[float | None]] = {}
        self.people: dict[str, list[float | None]] = {}

    def add(
        self, day: date, received: float, first_seen: float, contacted: float | None,
        *, status: str, person: str | None,
    ) -> None:  # fmt: skip
        if status == "spam" or received < first_seen - OLD_MAIL:
            return
        if contacted is None:
            if self.now - first_seen < self.limit:
                return
            waited = None
        else:
            waited = contacted - first_seen if contacted > first_seen else 0.0
        self.days.setdefault(day, []).append(waited)
        self.people.setdefault(person or "unassigned", []).append(waited)

    def row(self, label: str, waits: list[float | None]) -> SlaRow:
        done = [w for w in waits if w is not None]
        on_time = sum(1 for w in done if w <= self.limit)
        return SlaRow(label, len(waits), on_time, statistics.median(done) if done else None)

    def by_day(self) -> list[SlaRow]:
        return [self.row(f"{d:%a %d %b}", self.days[d]) for d in sorted(self.days, reverse=True)]

    def by_person(self) -> list[SlaRow]:
        # (casefold, name): "Asha" before "asha" whatever order the rows came in
        order = sorted(self.people, key=lambda p: (p.casefold(), p))
        return [self.row(p, self.people[p]) for p in order]


def start_of_day(ts: float) -> float:
    d = datetime.fromtimestamp(ts)
    return datetime(d.year, d.month, d.day).timestamp()


def reference_stats(store: Store, now: float, days: int, sla_seconds: float | None) -> Stats:
    """``Counts.stats`` as it was: every lead of the window read and counted in Python."""
    lead = store.m.Lead
    today = start_of_day(now)
    since = today - (days - 1) * 86400
    week = today - 6 * 86400
    rows = (
        lead.select(
            lead.received_ts, lead.first_seen_ts, lead.contacted_ts, lead.query_type,
            lead.source, lead.status, lead.contacted_by, lead.owner,
        )
        .where(lead.received_ts >= since)
        .tuples()
    )  # fmt: skip
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
            label = qtype or source or "other"
            by_type[label] = by_type.get(label, 0) + 1
            by_source[source] = by_source.get(source, 0) + 1
            if contacted is not None:
                resp_week.append(contacted - first_seen)
        if received >= today:
            new_today += 1
            if contacted is not None:
                resp_today.append(contacted - first_seen)
    return Stats(
        per_day=sorted(per_day.items()),
        by_type=by_type,
        by_source=by_source,
        median_response_today=statistics.median(resp_today) if resp_today else None,
        median_response_week=statistics.median(resp_week) if resp_week else None,
        contacted_today=lead.select().where(lead.contacted_ts >= today).count(),
        new_today=new_today,
        awaiting_contact=lead.select().where(lead.status == "new").count(),
        sla_seconds=sla_seconds or None,
        sla_by_day=sla.by_day() if sla else [],
        sla_by_person=sla.by_person() if sla else [],
    )


# --------------------------------------------------------------------------- synthetic leads


def add_synthetic(store: Store, now: float, n: int, seed: int = 7) -> None:
    """``n`` leads over the 16 days before ``now`` and a few after it, several right at the
    seller's midnights, with every case the figures treat apart: spam, old mail (captured a day
    after the buyer enquired), not yet contacted, contacted "before" capture, unowned, owners
    whose names differ only in case, no query type, and an empty source."""
    rng = random.Random(seed)
    midnight = start_of_day(now)
    rows = []
    for i in range(n):
        if i % 10 == 0:  # on a seller's midnight, a second either side or right on it
            received = midnight - rng.randrange(0, 16) * 86400 + rng.choice((-1.0, 0.0, 1.0))
        else:
            received = now - rng.uniform(-0.5, 16) * 86400
        first_seen = received + rng.choice((2.0, 30.0, rng.uniform(0, 600), 2 * 86400.0))
        contacted = rng.choice(
            (None, None, first_seen + rng.uniform(0, 1800), first_seen + rng.uniform(0, 600),
             first_seen - 120.0, first_seen + 900.0)
        )  # fmt: skip
        rows.append(
            {
                "source": rng.choice(("indiamart", "indiamart", "website", "justdial", "")),
                "channel": "email",
                "query_type": rng.choice(("W", "B", "P", None, "")),
                "received_at": "",
                "received_ts": received,
                "first_seen_ts": first_seen,
                "updated_ts": first_seen,
                "contacted_ts": contacted,
                "contacted_by": rng.choice((None, "", "asha", "Ravi")) if contacted else None,
                "owner": rng.choice((None, "", "asha", "Asha", "ravi", "meena")),
                "status": rng.choice(("new", "contacted", "spam", "won"))
                if contacted is None
                else rng.choice(("contacted", "spam", "won", "lost")),
            }
        )
    lead = store.m.Lead
    with store.db.atomic():
        for start in range(0, n, 500):
            lead.insert_many(rows[start : start + 500]).execute()


def comparable(s: Stats) -> Stats:
    """The figures with medians to the microsecond: PostgreSQL's ``percentile_cont`` may add
    the two middle values the other way round (the screen shows whole seconds anyway)."""

    def m(x: float | None) -> float | None:
        return None if x is None else round(x, 6)

    def rows(rs: list[SlaRow]) -> list[SlaRow]:
        return [SlaRow(r.label, r.leads, r.on_time, m(r.median_seconds)) for r in rs]

    return Stats(
        per_day=s.per_day, by_type=s.by_type, by_source=s.by_source,
        median_response_today=m(s.median_response_today),
        median_response_week=m(s.median_response_week),
        contacted_today=s.contacted_today, new_today=s.new_today,
        awaiting_contact=s.awaiting_contact, sla_seconds=s.sla_seconds,
        sla_by_day=rows(s.sla_by_day), sla_by_person=rows(s.sla_by_person),
    )  # fmt: skip


# --------------------------------------------------------------------------- the figures


@pytest.mark.usefixtures("ist_on_a_utc_server")
@pytest.mark.parametrize("hour", [0, 3, 23])  # 00:20 IST is still yesterday on the server
def test_grouped_stats_match_the_row_by_row_figures_across_ist_midnights(
    store: Store, hour: int
) -> None:
    now = datetime(2026, 3, 12, hour, 20, tzinfo=IST).timestamp()
    add_synthetic(store, now, 3000)
    for sla in (SLA, None):
        got = store.stats(now=now, days=14, sla_seconds=sla)
        assert comparable(got) == comparable(reference_stats(store, now, 14, sla))
    got = store.stats(now=now, days=14, sla_seconds=SLA)
    assert got.per_day[-1][0] == date(2026, 3, 12)  # the seller's today, not the server's
    assert sum(n for _, n in got.per_day) > 2000  # most of them, in 14 days
    assert got.sla_by_day  # figures, not just Nones
    assert got.median_response_week is not None
    assert [r.label for r in got.sla_by_person] == [
        "Asha", "asha", "meena", "Ravi", "ravi", "unassigned"
    ]  # fmt: skip


def test_days_follow_a_zone_that_changes_its_clocks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not India's case, but ``ui.timezone`` may be any zone: London went to summer time on
    29 March 2026, inside the 14 days before 2 April."""
    if not Path("/usr/share/zoneinfo/Europe/London").is_file():
        pytest.skip("no time zone database on this machine")
    monkeypatch.setenv("TZ", "Europe/London")
    time.tzset()
    now = datetime(2026, 4, 2, 0, 30, tzinfo=timezone(timedelta(hours=1))).timestamp()
    add_synthetic(store, now, 2000, seed=11)
    got = store.stats(now=now, days=14, sla_seconds=SLA)
    assert comparable(got) == comparable(reference_stats(store, now, 14, SLA))
    assert got.per_day[-1][0] == date(2026, 4, 2)


def test_no_leads_no_figures(store: Store) -> None:
    got = store.stats(now=time.time(), days=14, sla_seconds=SLA)
    assert [n for _, n in got.per_day] == [0] * 14
    assert (got.by_type, got.sla_by_day, got.sla_by_person) == ({}, [], [])
    assert (got.median_response_today, got.median_response_week) == (None, None)


@pytest.mark.usefixtures("ist_on_a_utc_server")
def test_a_contact_logged_before_capture_counts_as_at_once(store: Store) -> None:
    """A call logged with a time before leadtui saw the lead (a clock a minute behind) is a
    first contact of 0 s, not of minus a minute; the "First contact" table keeps the raw time."""
    now = datetime(2026, 3, 12, 11, 0, tzinfo=IST).timestamp()
    seen = now - 3600
    lead = {
        "source": "indiamart", "channel": "email", "received_at": "", "received_ts": seen,
        "first_seen_ts": seen, "updated_ts": seen, "contacted_ts": seen - 60,
        "contacted_by": "asha", "status": "contacted",
    }  # fmt: skip
    store.m.Lead.insert_many([lead] * 3).execute()
    got = store.stats(now=now, days=14, sla_seconds=SLA)
    assert [(r.label, r.leads, r.on_time, r.median_seconds) for r in got.sla_by_person] == [
        ("asha", 3, 3, 0.0)
    ]
    assert got.sla_by_day[0].median_seconds == 0.0
    assert got.median_response_today == -60.0
