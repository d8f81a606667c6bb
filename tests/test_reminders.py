"""Reminders that ring, first contact on time, calls to return (issue 16).

The machine runs in UTC and the seller in IST (``ui.timezone``), as on a rented server. The
store-level tests drive the real :class:`ReminderWatcher` (the TUI's, without the TUI) with an
injectable clock against SQLite and PostgreSQL; one Pilot test checks what a person sees and
hears: the toast, the bell, the header and the snooze key.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import static_text
from test_app import Recorder, lead_named, select, until
from test_store import ingest, make_lead

from leadtui import config
from leadtui.app import LeadApp
from leadtui.cli import main
from leadtui.config import Settings
from leadtui.reminders import RemindersCounted, ReminderWatcher
from leadtui.screens.prompts import parse_follow_up_at
from leadtui.store import SCHEMA_VERSION, LeadQuery, Store

IST = timezone(timedelta(hours=5, minutes=30))
SIZE = (120, 30)


@pytest.fixture(autouse=True)
def _ist_on_a_utc_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """conftest's ``_zone_restored`` gives the next test its zone back."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    config.use_timezone("Asia/Kolkata")  # what LeadApp and the CLI do with ui.timezone


def ist(*args: int) -> float:
    return datetime(*args, tzinfo=IST).timestamp()  # type: ignore[misc]


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as s:
        yield s


def add_leads(store: Store, n: int, first: int = 0, **over: Any) -> list[int]:
    """``n`` different buyers (Buyer ``first`` …), through the store's capture path."""
    ids = []
    for i in range(first, first + n):
        fields = make_lead(
            name=f"Buyer {i}", phone=f"+9198{i:08d}", email=f"b{i}@example.in",
            message_id=f"r{i}@mail.indiamart.com",
        )  # fmt: skip
        fields.update(over)
        ids.extend(ingest(store, fields).lead_ids)
    return ids


# --------------------------------------------------------------------------- typing a time


def test_a_follow_up_takes_a_day_and_an_optional_time_in_the_sellers_zone() -> None:
    now = datetime(2026, 3, 12, 14, 5)  # Thursday, 14:05 IST (08:35 on the server's clock)
    assert parse_follow_up_at("tomorrow 11:00", now) == datetime(2026, 3, 13, 11, 0)
    assert parse_follow_up_at("+2h", now) == datetime(2026, 3, 12, 16, 5)
    assert parse_follow_up_at("+30m", now) == datetime(2026, 3, 12, 14, 35)
    assert parse_follow_up_at("fri 4pm", now) == datetime(2026, 3, 13, 16, 0)
    assert parse_follow_up_at("15/12 10:30", now) == datetime(2026, 12, 15, 10, 30)
    assert parse_follow_up_at("15/12 10.30", now) == datetime(2026, 12, 15, 10, 30)
    assert parse_follow_up_at("4pm", now) == datetime(2026, 3, 12, 16, 0)
    assert parse_follow_up_at("9:15", now) == datetime(2026, 3, 13, 9, 15)  # passed: tomorrow
    assert parse_follow_up_at("tomorrow", now) == date(2026, 3, 13)  # a day: rings at 10:00
    assert parse_follow_up_at("15.12", now) == date(2026, 12, 15)  # a date, not 15:12
    assert parse_follow_up_at("", now) is None
    with pytest.raises(ValueError, match="tomorrow 11:00"):
        parse_follow_up_at("someday 25:00", now)


def test_the_reminder_rings_at_the_ist_minute_on_a_utc_server(store: Store) -> None:
    (lead_id,) = add_leads(store, 1)
    lead = store.set_follow_up(lead_id, datetime(2026, 3, 13, 11, 0), actor="asha")
    assert lead.follow_up == "2026-03-13"  # still readable by day
    assert lead.follow_up_ts == ist(2026, 3, 13, 11, 0)  # 05:30 UTC
    day_only = store.set_follow_up(lead_id, date(2026, 3, 14), actor="asha")
    assert day_only.follow_up_ts == ist(2026, 3, 14, 10, 0)
    assert [e.detail for e in store.events(lead_id) if e.action == "follow-up"] == [
        "2026-03-13 11:00",
        "2026-03-14",
    ]
    assert lead.to_json()["follow_up_at"] == "2026-03-13T11:00:00+05:30"


# --------------------------------------------------------------------------- once per person


class Tui:
    """One open leadtui of one person: its own store connection and reminder watcher."""

    def __init__(self, url: str, person: str, clock: list[float]) -> None:
        self.store = Store.open(url)
        self.watcher = ReminderWatcher(
            self.store, recipient=person, clock=lambda: clock[0], sla_seconds=lambda: 900.0,
            post=lambda _m: None,
        )  # fmt: skip
        self.watcher.start()

    def look(self) -> list[tuple[int, str, float]]:
        rang, _counts = self.watcher.step()
        return [(r.lead.id, r.alert.kind, r.alert.due_ts) for r in rang]

    def close(self) -> None:
        self.store.close()


def test_200_reminders_ring_once_per_owner_tui_across_restarts_and_a_takeover(
    db_url: str,
) -> None:
    """Asha runs two leadtuis, Ravi one; each is restarted five times (and the gaps between
    runs are minutes long), and capture moves from one process to another midway. Every
    reminder rings exactly once in each open TUI of its owner; an unowned one in every TUI."""
    start = ist(2026, 3, 12, 9, 0)
    with Store.open(db_url) as store:
        ids = add_leads(store, 200)
        expected: dict[str, set[tuple[int, float]]] = {"asha": set(), "ravi": set()}
        for i, lead_id in enumerate(ids):
            owner = ("asha", "Ravi", None)[i % 3]  # Ravi as the owner prompt spells him
            if owner:
                store.assign(lead_id, owner, actor="asha")
            due = datetime.fromtimestamp(start) + timedelta(minutes=i + 1)
            lead = store.set_follow_up(lead_id, due, actor="asha")
            assert lead.follow_up_ts is not None
            for person in ("asha", "ravi"):
                if owner is None or owner.casefold() == person:
                    expected[person].add((lead_id, lead.follow_up_ts))
        assert store.try_lease("process-a")
    clock = [start]
    slots = {"asha-1": "asha", "asha-2": "asha", "ravi-1": "ravi"}
    heard: dict[str, list[tuple[int, float]]] = {slot: [] for slot in slots}
    tuis: dict[str, Tui] = {}
    end = start + 215 * 60
    restarts = [start + m * 60 for m in (30, 70, 110, 150, 190)]
    while clock[0] <= end:
        if not tuis:  # (re)open every TUI
            tuis = {slot: Tui(db_url, person, clock) for slot, person in slots.items()}
        for slot, tui in tuis.items():
            heard[slot] += [(i, due) for i, kind, due in tui.look() if kind == "follow-up"]
        clock[0] += 30
        if restarts and clock[0] >= restarts[0]:
            restarts.pop(0)
            for tui in tuis.values():
                tui.close()
            tuis = {}
            clock[0] += 4 * 60  # the TUIs stay closed a few minutes: reminders come due
            if len(restarts) == 2:  # capture moves: process A quits, B takes the lease over
                with Store.open(db_url) as store:
                    store.release_lease("process-a")
                    assert store.try_lease("process-b")
    for tui in tuis.values():
        tui.close()
    for slot, person in slots.items():
        counted = Counter(heard[slot])
        assert max(counted.values()) == 1, f"{slot} heard a reminder twice"
        assert set(counted) == expected[person], slot
    assert len(expected["asha"]) == len(expected["ravi"]) == 133


def test_a_snoozed_reminder_rings_again_at_its_new_time_and_a_closed_lead_never(
    store: Store, db_url: str
) -> None:
    a, b = add_leads(store, 2)
    now = [ist(2026, 3, 12, 11, 0)]
    store.set_follow_up(a, datetime(2026, 3, 12, 11, 0), actor="asha")
    store.set_follow_up(b, datetime(2026, 3, 12, 11, 0), actor="asha")
    store.set_status(b, "lost", actor="asha")
    tui = Tui(db_url, "asha", now)
    try:
        assert tui.look() == [(a, "follow-up", now[0])]
        snoozed = store.set_follow_up(a, datetime(2026, 3, 12, 12, 0), "asha", action="snooze")
        assert tui.look() == []
        now[0] = ist(2026, 3, 12, 12, 0)
        assert tui.look() == [(a, "follow-up", snoozed.follow_up_ts)]
        assert tui.look() == []
    finally:
        tui.close()
    assert [e.action for e in store.events(a)][-1] == "snooze"


def test_first_contact_limit_rings_once_and_counts_as_late(store: Store, db_url: str) -> None:
    now = time.time()
    late, contacted, fresh, old_mail = add_leads(store, 4)
    m = store.m.Lead
    m.update(first_seen_ts=now - 1000, received_ts=now - 1000).where(
        m.id.in_([late, contacted])
    ).execute()
    m.update(first_seen_ts=now - 100, received_ts=now - 100).where(m.id == fresh).execute()
    # an import of last month's mail: no clock runs for it
    m.update(first_seen_ts=now - 1000, received_ts=now - 30 * 86400).where(
        m.id == old_mail
    ).execute()
    store.mark_contacted(contacted, actor="ravi")
    clock = [now]
    tui = Tui(db_url, "asha", clock)
    try:
        assert tui.look() == [(late, "sla", pytest.approx(now - 100))]
        assert tui.look() == []
        counts = store.reminder_counts("asha", now, 900.0)
        # the contacted one was contacted late (1000 s after it came) but by now, not "late"
        assert counts["late"] == 2
        clock[0] = now + 900
        assert [x[:2] for x in tui.look()] == [(fresh, "sla")]
    finally:
        tui.close()
    assert store.reminder_counts("asha", now, None) == {"due": 0, "overdue": 0}


# --------------------------------------------------------------------------- due and overdue


def test_due_and_overdue_counts_lists_and_a_call_that_does_the_follow_up(
    store: Store, db_url: str
) -> None:
    now_dt = datetime.now().replace(second=0, microsecond=0)
    later_today = min(now_dt + timedelta(minutes=30), now_dt.replace(hour=23, minute=59))
    ids = add_leads(store, 4)
    store.set_follow_up(ids[0], now_dt - timedelta(hours=3), actor="asha")  # overdue
    store.set_follow_up(ids[1], later_today, actor="asha")  # due later today
    store.set_follow_up(ids[2], now_dt + timedelta(days=2), actor="asha")  # not today
    store.assign(ids[1], "ravi", actor="asha")
    now = now_dt.timestamp()
    today = int(later_today > now_dt)  # 0 only in the last minute of the day
    assert store.reminder_counts("ravi", now, None) == {"due": today, "overdue": 1}
    assert store.reminder_counts("asha", now, None) == {"due": 0, "overdue": 1}
    assert [x.id for x in store.follow_ups("overdue", now)] == [ids[0]]
    assert [x.id for x in store.follow_ups("due", now)] == [ids[1]][:today]
    # the call is the follow-up: connected, it is done; no answer sets the next one
    store.log_call(ids[0], "connected", actor="asha")
    assert store.follow_ups("overdue") == []
    nxt = now_dt + timedelta(hours=2)
    lead = store.log_call(ids[3], "no answer", actor="asha", follow_up=nxt)
    assert lead.follow_up_ts == nxt.timestamp()
    runner = CliRunner()
    listed = runner.invoke(main, ["--db", db_url, "list", "--overdue", "--json"])
    assert listed.exit_code == 0, listed.output
    assert listed.output == ""
    later = runner.invoke(main, ["--db", db_url, "list", "--due"], env={"COLUMNS": "120"})
    if today:
        assert "follow-up" in later.output
        assert "Buyer 1" in later.output
        assert f"{later_today:%H:%M}" in later.output


def test_calls_to_return_are_phone_leads_nobody_called_back_oldest_first(
    store: Store, db_url: str
) -> None:
    calls = add_leads(store, 3, query_type="P")
    enquiry = add_leads(store, 1, first=3, query_type="W")
    store.log_call(calls[1], "connected", actor="asha")
    query = LeadQuery(calls_to_return=True)
    assert [x.id for x in store.list_leads(query)] == [calls[2], calls[0]]
    assert enquiry[0] not in {x.id for x in store.list_leads(query)}
    out = CliRunner().invoke(main, ["--db", db_url, "list", "--calls", "--json"])
    assert [line.count('"Buyer') for line in out.output.splitlines()] == [1, 1]
    assert out.output.index("Buyer 0") < out.output.index("Buyer 2")


# --------------------------------------------------------------------------- stats


def test_stats_show_the_share_on_time_and_the_median_per_day_and_person(store: Store) -> None:
    now = time.time()
    ids = add_leads(store, 4)
    m = store.m.Lead
    m.update(first_seen_ts=now - 3600, received_ts=now - 3600).execute()
    m.update(contacted_ts=now - 3600 + 300, contacted_by="asha", status="contacted").where(
        m.id == ids[0]
    ).execute()
    m.update(contacted_ts=now - 3600 + 1200, contacted_by="ravi", status="contacted").where(
        m.id == ids[1]
    ).execute()
    store.assign(ids[2], "ravi", actor="asha")  # nobody contacted it: Ravi's, late
    stats = store.stats(now=now, sla_seconds=900)
    people = {r.label: (r.leads, r.on_time, r.median_seconds) for r in stats.sla_by_person}
    assert people == {"asha": (1, 1, 300), "ravi": (2, 0, 1200), "unassigned": (1, 0, None)}
    (today,) = stats.sla_by_day
    assert (today.leads, today.on_time, today.share) == (4, 1, 0.25)
    assert today.median_seconds == 750


# --------------------------------------------------------------------------- schema


def test_a_schema_6_database_gets_timed_follow_ups_and_alerts(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    with Store.open(path) as s:
        (lead_id,) = add_leads(s, 1)
        s.m.Lead.update(follow_up="2026-03-13").execute()
        s.db.execute_sql("DROP TABLE alert")
        s.db.execute_sql("DROP INDEX lead_follow_up_ts_status_owner")
        s.db.execute_sql("ALTER TABLE lead DROP COLUMN follow_up_ts")
        s.m.Meta.update(value="6").where(s.m.Meta.key == "schema_version").execute()
    with Store.open(path) as s:
        assert s.m.Meta.get(s.m.Meta.key == "schema_version").value == str(SCHEMA_VERSION)
        lead = s.get_lead(lead_id)
        assert lead is not None
        assert lead.follow_up_ts == ist(2026, 3, 13, 10, 0)  # a day alone rings at 10:00
        assert "lead_follow_up_ts_status_owner" in {i.name for i in s.db.get_indexes("lead")}
        plan = s.db.execute_sql(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM lead WHERE follow_up_ts <= ?"
            " AND (status || '') IN ('new', 'contacted', 'quoted')"  # as the store writes it
            " AND (owner IS NULL OR lower(owner) = 'asha')",
            (time.time(),),
        ).fetchall()
        assert "COVERING INDEX lead_follow_up_ts_status_owner" in str(plan)
        assert s.last_alert_id() == 0


# --------------------------------------------------------------------------- in the TUI


async def test_the_due_minute_rings_once_toasts_the_lead_and_z_snoozes_it(tmp_path: Path) -> None:
    url = str(tmp_path / "leads.db")
    now = [ist(2026, 3, 12, 10, 59)]
    with Store.open(url) as store:
        (lead_id,) = add_leads(store, 1, name="Meena [bold]Iyer", product="TMT Bars")
        store.m.Lead.update(first_seen_ts=now[0] - 60, received_ts=now[0] - 60).execute()
        store.set_follow_up(lead_id, datetime(2026, 3, 12, 11, 0), actor="asha")
    settings = Settings(db=url, http_listen="off", imap_host="imap.example.in")
    app = LeadApp(settings, Store.open(url), capture=False, clock=lambda: now[0], actor="asha")
    heard = Recorder(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.first_page_shown, "the first page")
        await until(pilot, lambda: "due 1" in str(app.top.counts()), "due 1 in the header")
        assert heard.bells == 0
        now[0] = ist(2026, 3, 12, 11, 0)  # the due minute
        app.reminders.nudge()
        await until(pilot, lambda: app.reminders.rung == 1, "the reminder")
        toast = next(t for t in heard.toasts if t.startswith("Follow up now"))
        assert toast == "Follow up now: Meena [bold]Iyer — TMT Bars, Mysuru (z snoozes)"
        assert heard.markup[heard.toasts.index(toast)] is False
        assert heard.bells == 1
        await until(pilot, lambda: "overdue 1" in str(app.top.counts()), "overdue 1")
        for _ in range(3):  # more looks: it rang once
            app.reminders.nudge()
            await pilot.pause(0.1)
        assert (app.reminders.rung, heard.bells) == (1, 1)
        await select(pilot, app, lead_id)
        await pilot.press("z", "h")  # snooze an hour: two keys
        await until(
            pilot,
            lambda: "due 1" in (text := str(app.top.counts())) and "overdue" not in text,
            "the header after the snooze",
        )
        lead = lead_named(url, "Meena [bold]Iyer")
        assert lead.follow_up_ts == ist(2026, 3, 12, 12, 0)
        assert app.table.sla_seconds == 900


async def test_f_takes_a_time_and_C_and_B_list_the_longest_waiting_first(tmp_path: Path) -> None:
    url = str(tmp_path / "leads.db")
    now = ist(2026, 3, 12, 14, 5)
    with Store.open(url) as store:
        calls = add_leads(store, 3, query_type="P")
        (enquiry,) = add_leads(store, 1, first=3)
        store.log_call(calls[1], "connected", actor="asha")
        stale, older, newer = add_leads(store, 3, first=4, query_type="B")
        m = store.m.Lead
        for lead_id, hours in ((stale, 80), (older, 62), (newer, 10)):
            m.update(received_ts=now - hours * 3600).where(m.id == lead_id).execute()
    settings = Settings(db=url, http_listen="off", imap_host="imap.example.in")
    app = LeadApp(settings, Store.open(url), capture=False, clock=lambda: now, actor="asha")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.first_page_shown, "the first page")
        await select(pilot, app, enquiry)
        await pilot.press("f", *"fri 4pm", "enter")
        await until(
            pilot,
            lambda: lead_named(url, "Buyer 3").follow_up_ts == ist(2026, 3, 13, 16, 0),
            "the follow-up at Friday 16:00 IST",
        )
        await until(
            pilot, lambda: "follow-up Fri 13 Mar 16:00" in str(app.lead_bar.line()), "the lead line"
        )
        await pilot.press("C")
        await until(pilot, lambda: app.table.ids == [calls[2], calls[0]], "the calls to return")
        assert app.table.current_id == calls[0]  # the oldest, where the cursor starts
        await pilot.press("B")  # BuyLeads still fresh; the one going stale first at the cursor
        await until(pilot, lambda: app.table.ids == [newer, older], "the fresh BuyLeads")
        assert app.table.current_id == older
        await until(pilot, lambda: "BuyLead 10.0 h left" in str(app.lead_bar.line()), "time left")


async def test_the_stats_screen_shows_first_contact_on_time_per_day_and_person(
    tmp_path: Path,
) -> None:
    url = str(tmp_path / "leads.db")
    now = ist(2026, 3, 12, 18, 0)
    with Store.open(url) as store:
        ids = add_leads(store, 2)
        m = store.m.Lead
        m.update(first_seen_ts=now - 3600, received_ts=now - 3600).execute()
        m.update(contacted_ts=now - 3600 + 240, contacted_by="asha", status="contacted").where(
            m.id == ids[0]
        ).execute()
    settings = Settings(db=url, http_listen="off", imap_host="imap.example.in")
    app = LeadApp(settings, Store.open(url), capture=False, clock=lambda: now, actor="asha")
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.first_page_shown, "the first page")
        await pilot.press("t")
        text = await until(
            pilot,
            lambda: "unassigned" in (shown := static_text(app, "#stats-tables")) and shown,
            "the stats",
        )
    assert "Within 15 min, per day" in text
    assert "Within 15 min, per person" in text
    assert "Thu 12 Mar" in text
    assert "50% of 2" in text  # one of the two within 15 minutes
    assert "asha" in text
    assert "unassigned" in text
    assert "4 min" in text  # asha's median first contact


def test_a_bug_in_one_look_does_not_silence_the_reminders(sqlite_url: str) -> None:
    """The watcher's look raising something unexpected once: it is logged, and the next look
    still counts and rings (the header's counts would freeze otherwise)."""
    posted: list[Any] = []
    got_counts = threading.Event()

    def post(message: Any) -> None:
        posted.append(message)
        if isinstance(message, RemindersCounted):
            got_counts.set()

    with Store.open(sqlite_url) as store:
        watcher = ReminderWatcher(
            store, recipient="asha", clock=time.time, sla_seconds=lambda: 0.0, post=post
        )
        watcher.start()
        looks = 0
        real_step = watcher.step

        def step() -> Any:
            nonlocal looks
            looks += 1
            if looks == 1:
                raise ValueError("a bug in one look")
            return real_step()

        watcher.step = step  # type: ignore[method-assign]
        thread = threading.Thread(target=watcher.run, args=(lambda: False,), daemon=True)
        thread.start()
        watcher.nudge()  # look again now rather than in 15 s
        assert got_counts.wait(30)
        watcher.stop()
        thread.join(10)
        assert not thread.is_alive()
