"""The IndiaMART CRM pull against a local server that keeps the API's rules, over real HTTP.

The source and the server share a :class:`FakeClock`, so five-minute intervals cost nothing
while every call still goes through aiohttp to a real socket. ``clock.run_until(t)`` lets the
source do everything it may do until ``t``; ``clock.idle()`` says it is done and waiting.
The database is a real SQLite file (and PostgreSQL for the email/API merge).
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fake_indiamart import DAY, RATE_MESSAGE, FakeClock, FakeIndiaMart, ist_text
from helpers import FIXTURES, Running, running_source, wait_for

from leadtui import pull, sources
from leadtui.capture import CaptureService, Pipeline, RawItem
from leadtui.config import Check, Secret, Settings
from leadtui.formats.text import IST
from leadtui.store import LeadQuery, Store

T0 = datetime(2026, 3, 20, 12, 0, tzinfo=IST).timestamp()
INTERVAL = 300.0
SAMPLES = FIXTURES / "samples"


def make_settings(api: FakeIndiaMart, **over: Any) -> Settings:
    values: dict[str, Any] = {
        "indiamart_key": Secret(api.key),
        "indiamart_url": api.url,
        "pull_interval_seconds": INTERVAL,
        "pull_backfill_days": 7,
        "http_listen": "off",
    }
    values.update(over)
    return Settings(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def api(clock: FakeClock) -> Iterator[FakeIndiaMart]:
    with FakeIndiaMart(clock=clock.now, interval=INTERVAL) as server:
        yield server


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "leads.db")


@pytest.fixture
def store(db: str) -> Iterator[Store]:
    s = Store.open(db)
    yield s
    s.close()


@contextmanager
def running(settings: Settings, db: str, clock: FakeClock) -> Iterator[Running]:
    """Start the source as the capture service would, stop it at the end (within a deadline)."""
    with running_source(pull.pull_factory(settings, clock=clock), db) as run:
        yield run


def settle(clock: FakeClock, until: float) -> None:
    """Let the source do all it may until ``until`` (fake time), and wait until it has."""
    clock.run_until(until)
    wait_for(clock.idle, what=f"the source to be idle past {ist_text(until)}")


def external_ids(store: Store) -> list[str]:
    return sorted(lead.external_id or "" for lead in store.list_leads(LeadQuery(limit=1000)))


# --------------------------------------------------------------------------- rules, no server


def test_window_times_are_ist_in_the_api_format() -> None:
    assert pull.format_ist(datetime(2026, 3, 2, 11, 5, tzinfo=IST).timestamp()) == (
        "02-Mar-2026 11:05:00"
    )
    utc_evening = datetime.fromisoformat("2026-12-31T20:00:00+00:00").timestamp()
    assert pull.format_ist(utc_evening) == "01-Jan-2027 01:30:00"


@pytest.mark.parametrize(
    ("url", "wanted", "expected"),
    [
        ("https://mapi.indiamart.com/wservce/crm/crmListing/v2/", 10.0, 300.0),
        ("https://mapi.indiamart.com/wservce/crm/crmListing/v2/", 900.0, 900.0),
        ("http://127.0.0.1:8080/v2/", 10.0, 10.0),
        ("http://localhost:8080/v2/", 1.0, 1.0),
        ("http://[::1]:8080/v2/", 2.0, 2.0),
        ("http://127.0.0.1.example.com/v2/", 10.0, 300.0),
    ],
)
def test_the_interval_is_at_least_five_minutes_unless_the_api_is_on_loopback(
    url: str, wanted: float, expected: float
) -> None:
    settings = Settings(indiamart_key=Secret("k"), indiamart_url=url, pull_interval_seconds=wanted)
    assert pull.effective_interval(settings) == expected


def test_windows_are_at_most_seven_days_overlap_and_stay_inside_365_days() -> None:
    now = T0
    first = pull.window_from(pull.first_start(now, 20), now)
    assert first is not None
    assert first.end - first.start == pull.MAX_WINDOW
    assert first.capped
    second = pull.window_from(first.end - pull.OVERLAP, now)
    assert second is not None
    assert second.start < first.end
    old = pull.window_from(now - 400 * DAY, now)
    assert old is not None
    assert old.start > now - 365 * DAY
    last = pull.window_from(now - 3600, now)
    assert last is not None
    assert last.end < now
    assert not last.capped
    assert pull.windows_left(pull.first_start(now, 20), now) == 3


# --------------------------------------------------------------------------- the source


def test_first_run_backfills_in_windows_of_at_most_seven_days_with_progress_in_health(
    api: FakeIndiaMart, clock: FakeClock, db: str, store: Store
) -> None:
    inside = [api.add_lead(T0 - d * DAY - 3600)["UNIQUE_QUERY_ID"] for d in range(0, 20, 2)]
    api.add_lead(T0 - 21 * DAY)  # before the backfill: not fetched
    settings = make_settings(api, pull_backfill_days=20)

    with running(settings, db, clock) as run:
        settle(clock, T0 + 2 * INTERVAL)
        calls = api.call_log()
        last_health = run.last
        states = run.states()

    assert [c.code for c in calls] == [200, 200, 200]
    assert [c.ts for c in calls] == [T0, T0 + INTERVAL, T0 + 2 * INTERVAL]
    assert calls[0].start == pytest.approx(T0 - 20 * DAY, abs=1)
    for call in calls:
        assert call.start is not None
        assert call.end is not None
        assert call.end - call.start <= 7 * DAY
    for before, after in itertools.pairwise(calls):
        assert after.start is not None
        assert before.end is not None
        assert before.end - pull.OVERLAP == after.start
    assert calls[-1].end == pytest.approx(calls[-1].ts - pull.END_MARGIN, abs=1)
    assert external_ids(store) == sorted(inside)
    assert states[:4] == [
        "backfilling 0/3 windows",
        "backfilling 1/3 windows",
        "backfilling 2/3 windows",
        "waiting",
    ]
    assert "10 leads email missed" in last_health.detail
    assert last_health.next_retry_ts == T0 + 3 * INTERVAL
    assert last_health.last_success_ts == T0 + 2 * INTERVAL


def test_overlapping_windows_never_double_a_lead_and_catch_a_late_one(
    api: FakeIndiaMart, clock: FakeClock, db: str, store: Store
) -> None:
    first_end = T0 - 10 * DAY + 7 * DAY
    boundary = api.add_lead(first_end)["UNIQUE_QUERY_ID"]  # the last second of window 1
    overlap = api.add_lead(first_end - 120)["UNIQUE_QUERY_ID"]  # in both windows
    settings = make_settings(api, pull_backfill_days=10)

    with running(settings, db, clock):
        settle(clock, T0 + INTERVAL)
        # IndiaMART shows a lead late: its time is before the last window's end, but it was
        # not there when that window was asked for. The next window's overlap still has it.
        late = api.add_lead(T0 + INTERVAL - pull.END_MARGIN - 180)["UNIQUE_QUERY_ID"]
        settle(clock, T0 + 2 * INTERVAL)
        calls = api.call_log()

    assert boundary in calls[0].ids
    assert boundary in calls[1].ids
    assert overlap in calls[0].ids
    assert overlap in calls[1].ids
    assert late in calls[2].ids
    assert external_ids(store) == sorted([boundary, overlap, late])
    assert store.count_leads() == 3


def test_204_with_status_failure_advances_the_window(
    api: FakeIndiaMart, clock: FakeClock, db: str, store: Store
) -> None:
    with running(make_settings(api), db, clock) as run:
        settle(clock, T0 + 2 * INTERVAL)
        calls = api.call_log()
        state = run.last.state

    assert [c.code for c in calls] == [204, 204, 204]
    assert calls[2].start == calls[1].end - pull.OVERLAP
    assert state == "waiting"
    cursor = store.get_state(pull.CURSOR_KEY)
    assert cursor is not None
    assert cursor["end"] == calls[2].end
    assert store.review_count() == 0


def test_a_429_keeps_the_window_waits_longer_after_repeats_and_loses_nothing(
    api: FakeIndiaMart, clock: FakeClock, db: str, store: Store
) -> None:
    ids = [api.add_lead(T0 - d * DAY)["UNIQUE_QUERY_ID"] for d in (1, 9, 13)]
    settings = make_settings(api, pull_backfill_days=14)

    with running(settings, db, clock) as run:
        settle(clock, T0)
        api.fail_next(429, RATE_MESSAGE, times=2)
        settle(clock, T0 + 12 * INTERVAL)
        calls = api.call_log()
        states = run.states()
        health = run.health

    assert [c.code for c in calls][:5] == [200, 429, 429, 200, 204]
    assert calls[1].start == calls[2].start == calls[3].start, "the window was not kept"
    assert calls[2].ts - calls[1].ts >= INTERVAL
    assert calls[3].ts - calls[2].ts >= 3 * INTERVAL, "no longer wait after a repeated 429"
    assert "rate limited" in states
    limited = next(h for h in health if h.state == "rate limited")
    assert RATE_MESSAGE in limited.detail
    assert external_ids(store) == sorted(ids)


def test_the_pace_is_kept_across_processes_through_the_database(
    api: FakeIndiaMart, clock: FakeClock, db: str, store: Store
) -> None:
    """A manual pull just before the service starts: the service waits for the interval
    instead of getting CODE 429 (which the server would answer, as IndiaMART does)."""
    report = pull.run_once(make_settings(api), store, None, clock=clock)
    assert report.ok
    clock.advance(60)

    with running(make_settings(api), db, clock):
        settle(clock, T0 + 2 * INTERVAL)
        calls = api.call_log()

    assert [c.code for c in calls] == [204, 204, 204]
    assert [c.ts for c in calls] == [T0, T0 + INTERVAL, T0 + 2 * INTERVAL]


def test_a_401_stops_all_calls_and_says_how_to_fix_it(
    api: FakeIndiaMart, clock: FakeClock, db: str, store: Store
) -> None:
    wrong = make_settings(api, indiamart_key=Secret("an-old-key-that-was-replaced"))

    with running(wrong, db, clock) as run:
        settle(clock, T0 + 6 * 3600)
        health = run.last
    with running(wrong, db, clock):  # a restart with the same key does not try again
        settle(clock, T0 + 12 * 3600)

    assert api.codes() == [401]
    assert health.state == "key rejected"
    assert pull.KEY_REJECTED in health.detail
    assert health.next_retry_ts is None

    api.add_lead(T0 - DAY)
    with running(make_settings(api), db, clock):  # the seller pasted the new key
        settle(clock, T0 + 12 * 3600)

    assert api.codes() == [401, 200]
    assert store.count_leads() == 1


def test_a_restart_resumes_from_the_stored_cursor(
    api: FakeIndiaMart, clock: FakeClock, db: str, store: Store
) -> None:
    api.add_lead(T0 - 2 * DAY)
    with running(make_settings(api), db, clock):
        settle(clock, T0 + INTERVAL)
    cursor = store.get_state(pull.CURSOR_KEY)
    assert cursor is not None

    clock.advance(3 * 3600)  # leadtui was closed for three hours
    later = api.add_lead(clock.now() - 3600)["UNIQUE_QUERY_ID"]
    with running(make_settings(api), db, clock):
        settle(clock, clock.now())
        calls = api.call_log()

    assert len(calls) == 3
    assert calls[2].start == cursor["end"] - pull.OVERLAP
    assert later in calls[2].ids
    assert store.count_leads() == 2


def test_the_cursor_moves_only_after_the_leads_are_committed(
    api: FakeIndiaMart, clock: FakeClock, db: str, store: Store
) -> None:
    lead = api.add_lead(T0 - DAY)["UNIQUE_QUERY_ID"]
    settings = make_settings(api)
    broken = Store.open(db)
    accepted: list[RawItem] = []

    class FailingOnce(Pipeline):
        def accept(self, item: RawItem) -> Any:
            accepted.append(item)
            if len(accepted) == 1:
                from leadtui.store import StoreError

                raise StoreError("the database is locked by another program")
            return super().accept(item)

    run = Running()
    source = pull.pull_factory(settings, clock=clock)(
        broken, FailingOnce(broken), run.health.append
    )
    thread = threading.Thread(target=source.run, args=(run.stop,), daemon=True)
    thread.start()
    try:
        settle(clock, T0)
        assert "end" not in (store.get_state(pull.CURSOR_KEY) or {})
        assert run.last.state == "retrying"
        assert "locked" in (run.last.last_error or "")
        settle(clock, T0 + INTERVAL)
    finally:
        run.stop.set()
        thread.join(5)
        broken.close()

    calls = api.call_log()
    assert [c.code for c in calls] == [200, 200]
    assert calls[0].start == calls[1].start
    assert external_ids(store) == [lead]
    assert (store.get_state(pull.CURSOR_KEY) or {}).get("end") == calls[1].end
    assert accepted[0].channel == "pull"
    assert accepted[0].kind == "json"


def test_server_errors_back_off_exponentially_with_jitter_keeping_the_window(
    api: FakeIndiaMart, clock: FakeClock, db: str, store: Store
) -> None:
    lead = api.add_lead(T0 - DAY)["UNIQUE_QUERY_ID"]
    api.fail_next(500, "Internal Server Error", times=2)

    with running(make_settings(api), db, clock) as run:
        settle(clock, T0 + 10 * INTERVAL)
        calls = api.call_log()
        states = run.states()
        retrying = next(h for h in run.health if h.state == "retrying")

    assert [c.code for c in calls][:3] == [500, 500, 200]
    assert calls[0].start == calls[1].start == calls[2].start
    assert INTERVAL <= calls[1].ts - calls[0].ts <= INTERVAL * (1 + pull.JITTER)
    assert 2 * INTERVAL <= calls[2].ts - calls[1].ts <= 2 * INTERVAL * (1 + pull.JITTER)
    assert "CODE 500" in (retrying.last_error or "")
    assert states[-1] == "waiting"
    assert external_ids(store) == [lead]


def test_a_400_is_shown_with_the_api_message(api: FakeIndiaMart, clock: FakeClock, db: str) -> None:
    api.fail_next(400, "Invalid date format.")
    with running(make_settings(api), db, clock) as run:
        settle(clock, T0)
        health = run.last

    assert health.state == "error"
    assert "Invalid date format." in health.detail
    assert health.next_retry_ts is not None
    assert health.next_retry_ts >= T0 + INTERVAL


def test_network_errors_are_retried_and_reported(clock: FakeClock, db: str, tmp_path: Path) -> None:
    api = FakeIndiaMart(clock=clock.now)
    api.start()
    settings = make_settings(api)
    api.close()  # nothing listens on that port any more

    with running(settings, db, clock) as run:
        settle(clock, T0 + 2 * INTERVAL)
        health = run.last

    assert health.state == "retrying"
    assert "cannot connect to 127.0.0.1" in (health.last_error or "")


def test_stop_returns_promptly_while_a_call_hangs(
    api: FakeIndiaMart, clock: FakeClock, db: str
) -> None:
    api.hang = True
    with running(make_settings(api), db, clock):
        wait_for(lambda: api.in_flight == 1, what="a call in flight")
    # running() joined the thread with a deadline and asserted it stopped


@pytest.mark.parametrize("mirror", [False, True])
def test_http_status_codes_mean_the_same_as_the_envelope(
    clock: FakeClock, db: str, store: Store, mirror: bool
) -> None:
    with FakeIndiaMart(clock=clock.now, mirror_http_status=mirror) as api:
        api.add_lead(T0 - DAY)
        api.fail_next(429, RATE_MESSAGE)
        with running(make_settings(api), db, clock):
            settle(clock, T0 + INTERVAL)
        assert api.codes() == [429, 200]
    assert store.count_leads() == 1


# --------------------------------------------------------------------------- reconciliation


def sunil_api_row(api: FakeIndiaMart) -> dict[str, Any]:
    """IndiaMART's API copy of the enquiry in sample 01 (the email came 23 s earlier)."""
    return api.add_lead(
        datetime(2026, 3, 2, 10, 41, 30, tzinfo=IST).timestamp(),
        query_id="2790011111",
        SENDER_NAME="Sunil Rao",
        SENDER_MOBILE="+91-9845600066",
        SENDER_EMAIL="sunil.rao@example.com",
        SENDER_COMPANY="Rao Constructions",
        SENDER_ADDRESS="Hebbal, Mysuru, Karnataka,         570016",
        SENDER_CITY="Mysuru",
        SENDER_STATE="Karnataka",
        SENDER_PINCODE="570016",
        QUERY_PRODUCT_NAME="Fly Ash Bricks",
        SUBJECT="Requirement for Fly Ash Bricks",
        QUERY_MESSAGE="I am looking for Fly Ash Bricks.",
        QUERY_MCAT_NAME="Fly Ash Bricks",
    )


def test_email_and_api_copies_of_one_enquiry_are_one_lead_and_api_only_is_missed_by_email(
    db_url: str,
) -> None:
    start = datetime(2026, 3, 5, 12, 0, tzinfo=IST).timestamp()
    clock = FakeClock(start, run_until=start + DAY)
    store = Store.open(db_url)
    try:
        email = (SAMPLES / "email" / "01-direct-enquiry-qp.eml").read_bytes()
        by_email = Pipeline(store).accept(RawItem(email, source="imap:test", kind="email"))
        before = store.get_lead(by_email.lead_ids[0])
        assert before is not None
        with FakeIndiaMart(clock=clock.now) as api:
            sunil_api_row(api)
            only_api = api.add_lead(start - 3 * DAY, query_id="2790022222")

            report = pull.run_once(make_settings(api), store, None, clock=clock)

        assert report.ok
        assert (report.leads, report.missed_by_email, report.known) == (2, 1, 1)
        assert store.count_leads() == 2
        merged = store.get_lead(before.id)
        assert merged is not None
        assert merged.external_id == "2790011111"
        assert merged.address == "Hebbal, Mysuru, Karnataka, 570016"
        assert merged.pincode == "570016"
        assert merged.category == "Fly Ash Bricks"
        assert merged.received_at == "2026-03-02T10:41:07+05:30"  # the email's time stays
        assert merged.first_seen_ts == before.first_seen_ts
        assert merged.message_id == before.message_id
        assert merged.channels == "email pull"
        assert merged.missed_by_email is False
        (other,) = [x for x in store.list_leads() if x.id != before.id]
        assert other.external_id == only_api["UNIQUE_QUERY_ID"]
        assert other.missed_by_email is True
        assert other.channel == "pull"
        raw_ids = store.lead_raw_ids(other.id)
        kept = json.loads(store.raw_body(raw_ids[0]) or b"{}")
        assert kept["CODE"] == 200, "the raw API response is kept"
        assert store.count_missed_by_email() == 1
    finally:
        store.close()


# --------------------------------------------------------------------------- run_once


def test_run_once_since_pulls_the_range_at_the_api_pace_and_reports(
    api: FakeIndiaMart, clock: FakeClock, store: Store
) -> None:
    ids = [api.add_lead(T0 - d * DAY)["UNIQUE_QUERY_ID"] for d in (2, 8, 11)]
    api.add_lead(T0 - 13 * DAY)  # before --since
    clock.run_until(T0 + DAY)
    said: list[str] = []

    report = pull.run_once(
        make_settings(api), store, datetime(2026, 3, 8, 12, 0), progress=said.append, clock=clock
    )

    calls = api.call_log()
    assert [c.code for c in calls] == [200, 200]
    assert calls[0].start == datetime(2026, 3, 8, 12, 0, tzinfo=IST).timestamp()
    assert calls[1].ts - calls[0].ts == INTERVAL
    assert report.ok
    assert (report.calls, report.windows, report.leads, report.missed_by_email) == (2, 2, 3, 3)
    assert external_ids(store) == sorted(ids)
    lines = report.lines()
    assert lines[0].startswith("pulled 08-Mar-2026 12:00 → 20-Mar-2026 12:")
    assert lines[0].endswith("IST in 2 calls")
    assert lines[1] == "3 leads: 3 new (email missed them), 0 already known"
    assert any(text.startswith("waiting") for text in said)


def test_run_once_stops_at_a_rejected_key(
    api: FakeIndiaMart, clock: FakeClock, store: Store
) -> None:
    settings = make_settings(api, indiamart_key=Secret("replaced-key"))
    report = pull.run_once(settings, store, None, clock=clock)
    assert not report.ok
    assert report.error is not None
    assert report.error.startswith(pull.KEY_REJECTED)
    assert report.lines()[-1].startswith("stopped: CRM key rejected or replaced")
    assert api.codes() == [401]


def test_run_once_stops_at_once_when_the_api_cannot_be_reached(
    api: FakeIndiaMart, clock: FakeClock, store: Store
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}/wservce/crm/crmListing/v2/"
    said: list[str] = []
    report = pull.run_once(
        make_settings(api, indiamart_url=closed), store, None, progress=said.append, clock=clock
    )
    assert report.calls == 1
    assert report.error is not None
    assert report.error.startswith("no answer: cannot connect to 127.0.0.1")
    assert report.error.endswith("check the network (and LEADTUI_INDIAMART_URL), then run it again")
    assert not any(text.startswith("waiting") for text in said)  # not 5 minutes a retry


def test_run_once_refuses_a_missing_key_and_a_future_since(
    api: FakeIndiaMart, clock: FakeClock, store: Store
) -> None:
    with pytest.raises(pull.PullError, match="LEADTUI_INDIAMART_KEY"):
        pull.run_once(Settings(), store, None, clock=clock)
    with pytest.raises(pull.PullError, match="not in the past"):
        pull.run_once(make_settings(api), store, datetime(2026, 4, 1), clock=clock)
    assert api.codes() == []


# --------------------------------------------------------------------------- doctor


def lines_of(checks: list[Check]) -> dict[str, tuple[bool | None, str, str]]:
    return {c.name: (c.ok, c.detail, c.fix) for c in checks}


def test_doctor_reads_the_stored_state_and_calls_only_after_the_interval(
    api: FakeIndiaMart, clock: FakeClock, store: Store
) -> None:
    api.add_lead(T0 - DAY)
    assert pull.run_once(make_settings(api), store, None, clock=clock).ok
    clock.advance(60)

    soon = lines_of(pull.check(make_settings(api), store, clock=clock))

    assert api.codes() == [200]
    assert soon["key"][0] is True
    assert soon["last call"][:2] == (True, "60 s ago: 1 lead, 1 new")
    assert soon["synced"][0] is True
    assert soon["missed by email"][1].startswith("1 lead in 30 days came only through the API")
    assert soon["live call"][0] is None
    assert soon["live call"][1].startswith("skipped")

    clock.advance(INTERVAL)
    later = lines_of(pull.check(make_settings(api), store, clock=clock))

    assert api.codes() == [200, 204]
    assert later["live call"][:2] == (True, "key accepted (0 leads in the last hour)")


def test_doctor_shows_a_rejected_key_with_the_fix(
    api: FakeIndiaMart, clock: FakeClock, store: Store
) -> None:
    wrong = make_settings(api, indiamart_key=Secret("replaced-key"))
    checks = lines_of(pull.check(wrong, store, clock=clock))
    assert checks["live call"][0] is False
    assert pull.KEY_REJECTED in checks["live call"][1]
    assert "Lead Manager" in checks["live call"][2]
    clock.advance(10)
    again = lines_of(pull.check(wrong, store, clock=clock))
    assert again["last call"][0] is False
    assert again["last call"][2] == pull.KEY_FIX
    assert api.codes() == [401]


def test_doctor_without_a_key_or_database(api: FakeIndiaMart) -> None:
    (no_key,) = pull.check(Settings())
    assert no_key.ok is False
    assert "LEADTUI_INDIAMART_KEY" in no_key.fix
    checks = lines_of(pull.check(make_settings(api), None))
    assert checks["last call"][0] is None
    assert api.codes() == []


# --------------------------------------------------------------------------- secrets


def test_the_key_never_reaches_logs_health_reports_or_doctor(
    clock: FakeClock, db: str, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = "SeCrEt-CrM-KeY-ae13f0c97d"
    texts: list[str] = []
    with FakeIndiaMart(key=key, clock=clock.now) as api:
        api.add_lead(T0 - DAY)
        api.fail_next(400, f"Invalid request for glusr_crm_key={key}")  # an API that echoes
        api.fail_next(500, f"error with key {key}")
        with running(make_settings(api), db, clock) as run:
            settle(clock, T0 + 4 * INTERVAL)
            texts += [f"{h.state} {h.detail} {h.last_error}" for h in run.health]
        settings = make_settings(api)
        clock.advance(INTERVAL)
        texts += [f"{c.detail} {c.fix}" for c in pull.check(settings, store, clock=clock)]
        clock.advance(INTERVAL)
        texts += pull.run_once(settings, store, None, clock=clock).lines()
        texts.append(repr(pull.PullConfig.from_settings(settings)))
    closed = make_settings(api)  # the server is gone: network errors carry the URL
    with running(closed, db, clock) as run:
        settle(clock, clock.now() + 2 * INTERVAL)
        texts += [f"{h.state} {h.detail} {h.last_error}" for h in run.health]

    assert api.codes()[:3] == [400, 500, 200]
    assert any("Invalid request for glusr_crm_key=********" in t for t in texts)
    assert store.count_leads() == 1
    everything = "\n".join([caplog.text, *texts, str(store.get_state(pull.CALLS_KEY))])
    assert key not in everything
    assert key.lower() not in everything.lower()


def test_a_key_with_url_special_characters_reaches_the_api_intact(
    clock: FakeClock, store: Store
) -> None:
    key = "aB+c/d=e&f%g h=="
    with FakeIndiaMart(key=key, clock=clock.now) as api:
        api.add_lead(T0 - DAY)
        report = pull.run_once(make_settings(api), store, None, clock=clock)
        assert api.codes() == [200]
    assert report.ok
    assert pull.make_redactor(key)(f"GET /v2/?glusr_crm_key={key}&x=1") == (
        "GET /v2/?glusr_crm_key=********&x=1"
    )
    assert "glusr_crm_key=********&" in pull.make_redactor(key)(
        "url: /v2/?glusr_crm_key=aB%2Bc/d%3De%26f%25g+h%3D%3D&start_time=x"
    )


def test_an_unusable_api_url_is_reported_in_health_without_stopping_capture(db: str) -> None:
    settings = Settings(indiamart_key=Secret("k"), indiamart_url="mapi.indiamart.com/v2")
    store = Store.open(db)
    run = Running()
    source = pull.pull_factory(settings)(store, Pipeline(store), run.health.append)
    thread = threading.Thread(target=source.run, args=(run.stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: run.health, what="the health report")
    finally:
        run.stop.set()
        thread.join(5)
        store.close()
    assert not thread.is_alive()
    assert run.last.state == "error"
    assert "LEADTUI_INDIAMART_URL must be an http(s) URL" in run.last.detail


# --------------------------------------------------------------------------- end to end


def test_the_capture_service_runs_the_pull_from_settings(db: str, store: Store) -> None:
    """Real time, the real service and lease: a loopback URL allows a short interval."""
    with FakeIndiaMart(interval=0.2) as api:
        lead = api.add_lead(datetime.now(IST).timestamp() - 3600)["UNIQUE_QUERY_ID"]
        settings = make_settings(api, pull_interval_seconds=0.2, db=db)
        stop = threading.Event()
        service = CaptureService(db, sources.factories(settings), renew_every=0.05)
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for(lambda: external_ids(store) == [lead], what="the pulled lead")
            wait_for(
                lambda: any(h.source == "pull" and h.state == "waiting" for h in store.health()),
                what="the pull's health row",
            )
            wait_for(lambda: len(api.codes()) >= 3, what="more calls at the short interval")
        finally:
            stop.set()
            thread.join(10)
        assert not thread.is_alive()
        assert 429 not in api.codes()
        lead_row = store.list_leads()[0]
        assert lead_row.missed_by_email
        assert lead_row.received_at.endswith("+05:30")
