"""TradeIndia and ExportersIndia inquiry pulls against loopback stand-ins, over real HTTP.

The sources and the stand-in share a :class:`FakeClock`, so hours between calls cost nothing
while every call goes through aiohttp to a real socket. The database is a real SQLite file
(and PostgreSQL for the email/API merge).
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from fake_indiamart import DAY, FakeClock
from fake_vendors import (
    EI_PATH,
    TI_PATH,
    FakeVendors,
    ei_inquiry,
    ist_today,
    ti_inquiry,
)
from helpers import FIXTURES, Running, running_source, wait_for

from leadtui import sources
from leadtui.capture import Pipeline, RawItem
from leadtui.channels import exportersindia, tradeindia, vendor_pull, vendor_source
from leadtui.cli import main
from leadtui.config import Secret, Settings, load
from leadtui.formats.text import IST
from leadtui.parser import parse
from leadtui.store import LeadQuery, Store, StoreError

T0 = datetime(2026, 3, 20, 12, 0, tzinfo=IST).timestamp()
TODAY = date(2026, 3, 20)
HOUR = 3600.0


def settings_for(api: FakeVendors, **over: Any) -> Settings:
    values: dict[str, Any] = {
        "tradeindia_userid": api.userid,
        "tradeindia_profile_id": api.profile_id,
        "tradeindia_key": Secret(api.ti_key),
        "tradeindia_url": api.ti_url,
        "tradeindia_backfill_days": 3,
        "tradeindia_interval_seconds": 2 * HOUR,
        "exportersindia_key": Secret(api.ei_key),
        "exportersindia_email": api.ei_email,
        "exportersindia_url": api.ei_url,
        "exportersindia_backfill_days": 3,
        "exportersindia_interval_seconds": HOUR,
        "http_listen": "off",
    }
    values.update(over)
    return Settings(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def real_today() -> date:
    return datetime.now(IST).date()


@pytest.fixture
def api(clock: FakeClock) -> Iterator[FakeVendors]:
    with FakeVendors(today=ist_today(clock.now)) as server:
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
def running(
    module: Any, settings: Settings, db: str, clock: FakeClock, pipeline: type[Pipeline] = Pipeline
) -> Iterator[Running]:
    """Start one vendor's source as the capture service would; stop it at the end."""
    with running_source(module.factory(settings, clock=clock), db, pipeline) as run:
        yield run


def settle(clock: FakeClock, until: float) -> None:
    clock.run_until(until)
    wait_for(clock.idle, what="the source to wait past the limit")


def days_asked(api: FakeVendors) -> list[str]:
    return [c.query.get("from_date", "") for c in api.calls_to(TI_PATH)]


def leads(store: Store) -> dict[str, Any]:
    return {lead.external_id: lead for lead in store.list_leads(LeadQuery(limit=100))}


# --------------------------------------------------------------------------- TradeIndia


def test_tradeindia_backfills_day_by_day_and_maps_the_inquiry(
    api: FakeVendors, clock: FakeClock, db: str, store: Store
) -> None:
    api.ti.append(ti_inquiry("70000001", TODAY - timedelta(days=2)))
    api.ti.append(ti_inquiry("70000002", TODAY, sender_mobile="", sender_email="", sender_name=""))
    with running(tradeindia, settings_for(api), db, clock) as run:
        settle(clock, T0 + 60)  # catching up: calls go a moment apart (loopback)
        states = [h.state for h in run.health]
        assert "backfilling 0/4 days" in states
        assert run.last.state == "waiting"
        assert "settled through 2026-03-19" in run.last.detail

    assert days_asked(api) == ["2026-03-17", "2026-03-18", "2026-03-19", "2026-03-20"]
    assert all(c.query["to_date"] == c.query["from_date"] for c in api.calls_to(TI_PATH))
    got = leads(store)
    first = got["70000001"]
    assert (first.source, first.channel, first.missed_by_email) == ("tradeindia", "pull", True)
    assert first.name == "Asha Verma"
    assert (first.company, first.phone, first.email) == (
        "Verma Builders",
        "+919822012345",
        "asha.verma@example.in",
    )
    assert (first.city, first.state, first.country) == ("Pune", "Maharashtra", "IN")
    assert (first.product, first.quantity, first.unit) == ("Red Clay Bricks", "5000", "Piece")
    assert first.message == "We need 5000 bricks for a site in Baner.\nPlease quote."
    assert first.received_at == "2026-03-18T11:17:14+05:30"
    assert first.specs["sender_uid"] == "88123", "an unmapped field stays on the lead"
    assert first.specs["receiver_name"] == "Mohit Bansal"
    # No contact in the API's fields: the message's Sender Details block gives it.
    second = got["70000002"]
    assert (second.name, second.phone) == ("Asha Verma", "+919822012345")


def test_tradeindia_wrapped_answers_empty_days_and_the_pace_once_caught_up(
    api: FakeVendors, clock: FakeClock, db: str, store: Store
) -> None:
    api.wrapped = True
    api.ti.append(ti_inquiry("70000011", TODAY))
    settings = settings_for(api, tradeindia_backfill_days=0)
    with running(tradeindia, settings, db, clock) as run:
        settle(clock, T0)
        assert len(api.calls_to(TI_PATH)) == 1
        settle(clock, T0 + 2 * HOUR - 1)
        assert len(api.calls_to(TI_PATH)) == 1, "no call before the 2-hour interval"
        api.ti.append(ti_inquiry("70000012", TODAY))
        settle(clock, T0 + 2 * HOUR)
        assert run.last.state == "waiting"
        # Two hours after midnight yesterday is asked once more (settled), then the new day.
        settle(clock, datetime(2026, 3, 21, 2, 0, tzinfo=IST).timestamp() + 10)
    assert days_asked(api)[-3:] == ["2026-03-20", "2026-03-20", "2026-03-21"]
    assert api.calls_to(TI_PATH)[-1].count == 0
    assert sorted(leads(store)) == ["70000011", "70000012"]
    assert store.get_state(tradeindia.VENDOR.cursor_key)["next_day"] == "2026-03-21"


def test_a_replayed_day_adds_no_lead(api: FakeVendors, clock: FakeClock, store: Store) -> None:
    api.ti += [ti_inquiry("70000021", TODAY - timedelta(days=1)), ti_inquiry("70000022", TODAY)]
    cfg = tradeindia.config(settings_for(api))
    clock.run_until(T0 + HOUR)  # a manual pull's calls go a moment apart
    first = vendor_source.run_once(cfg, store, clock=clock)
    assert first.ok
    assert len(first.new_ids) == 2
    again = vendor_source.run_once(cfg, store, TODAY - timedelta(days=3), clock=clock)
    assert again.ok
    assert again.calls == 4
    assert (len(again.lead_ids), len(again.new_ids)) == (2, 0)
    assert store.count_leads() == 2
    assert again.lines()[-1] == "2 leads: 0 new, 2 already known"


def test_the_cursor_moves_only_after_the_inquiries_are_committed(
    api: FakeVendors, clock: FakeClock, db: str, store: Store
) -> None:
    api.ti.append(ti_inquiry("70000031", TODAY))
    failed: list[int] = []

    class FailingOnce(Pipeline):
        def accept_many(self, items: Any, *args: Any, **kw: Any) -> Any:
            if not failed:
                failed.append(len(items))
                raise StoreError("the database is locked by another program")
            return super().accept_many(items, *args, **kw)

    settings = settings_for(api, tradeindia_backfill_days=0)
    with running(tradeindia, settings, db, clock, FailingOnce) as run:
        settle(clock, T0)
        assert "next_day" not in (store.get_state(tradeindia.VENDOR.cursor_key) or {})
        assert run.last.state == "retrying"
        assert "locked" in (run.last.last_error or "")
        settle(clock, T0 + 2 * HOUR)  # the next call at the regular pace
    assert failed == [1]
    assert days_asked(api) == ["2026-03-20", "2026-03-20"]
    assert list(leads(store)) == ["70000031"]
    assert store.get_state(tradeindia.VENDOR.cursor_key)["next_day"] == "2026-03-20"


def test_a_malformed_inquiry_goes_to_review_and_the_others_land(
    api: FakeVendors, clock: FakeClock, store: Store
) -> None:
    good = ti_inquiry("70000041", TODAY)
    api.ti += [
        good,
        {"generated_date": TODAY.isoformat(), "sender_name": "No Id", "message": "hi"},
        ti_inquiry("70000042", TODAY, sender_mobile="", sender_email="", message="<b>x</b>"),
        ti_inquiry("70000043", TODAY, sender_name="\x1b[31mRED\x1b[0m <i>Ravi</i>"),
    ]
    clock.run_until(T0 + HOUR)
    report = vendor_source.run_once(
        tradeindia.config(settings_for(api, tradeindia_backfill_days=0)), store, clock=clock
    )
    assert report.ok
    assert sorted(leads(store)) == ["70000041", "70000043"]
    assert store.review_count() == 2
    errors = " ".join(item.error or "" for item in store.review_items())
    assert "without an rfi_id" in errors
    assert "no phone or email" in errors
    hostile = leads(store)["70000043"].name or ""
    assert "\x1b" not in hostile


def test_a_rejected_key_stops_the_calls_and_says_the_fix_in_one_line(
    api: FakeVendors, clock: FakeClock, db: str, store: Store
) -> None:
    api.error_style = "json"
    settings = settings_for(api, tradeindia_key=Secret("old-key"))
    with running(tradeindia, settings, db, clock) as run:
        settle(clock, T0)
        settle(clock, T0 + 10 * HOUR)
        assert run.last.state == "key rejected"
        assert "\n" not in run.last.detail
        assert "copy userid, profile_id and key again" in run.last.detail
    assert len(api.calls_to(TI_PATH)) == 1, "no call after the rejection"
    clock.run_until(T0 + 11 * HOUR)
    report = vendor_source.run_once(tradeindia.config(settings), store, clock=clock)
    assert not report.ok
    assert report.lines()[-1].startswith("stopped: TradeIndia rejected the API key or account")
    assert "LEADTUI_TRADEINDIA" in report.lines()[-1]
    lines = tradeindia.check(settings, store, 5.0)
    rejected = [c for c in lines if "rejected" in c.detail and c.ok is False]
    assert rejected
    assert "LEADTUI_TRADEINDIA" in rejected[0].fix


def test_the_key_never_reaches_logs_health_or_doctor(
    api: FakeVendors, clock: FakeClock, db: str, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.script.append((200, f"Service busy, try later (request {api.ti_key})"))
    api.ti.append(ti_inquiry("70000051", TODAY))
    settings = settings_for(api, tradeindia_backfill_days=0)
    with running(tradeindia, settings, db, clock) as run:
        settle(clock, T0)
        assert run.last.state == "error"
        assert "Service busy, try later (request ********)" in run.last.detail
        settle(clock, T0 + 2 * HOUR)
    shown = caplog.text + repr(run.health) + repr(tradeindia.check(settings, store, 5.0))
    assert api.ti_key not in shown
    assert quote(api.ti_key, safe="") not in shown
    assert api.ti_key not in repr(settings)
    assert list(leads(store)) == ["70000051"]


# --------------------------------------------------------------------------- email + API


def test_tradeindia_email_and_api_copies_are_one_lead_and_api_only_is_missed_by_email(
    db_url: str,
) -> None:
    start = datetime(2026, 3, 12, 12, 0, tzinfo=IST).timestamp()
    clock = FakeClock(start, run_until=start + HOUR)
    store = Store.open(db_url)
    try:
        mail = (FIXTURES / "samples" / "email" / "13-tradeindia-inquiry.eml").read_bytes()
        by_email = Pipeline(store).accept(RawItem(mail, source="imap:test", kind="email"))
        before = store.get_lead(by_email.lead_ids[0])
        assert before is not None
        assert before.external_id == "60123456"
        with FakeVendors(today=ist_today(clock.now)) as api:
            api.ti.append(
                ti_inquiry(
                    "60123456",
                    date(2026, 3, 11),
                    sender_name="Pooja Menon",
                    sender_mobile="+91-9447012345",
                    sender_email="pooja.menon@example.in",
                    product_name="HDPE Water Tank 1000 Litre",
                    quantity="20",
                )
            )
            api.ti.append(ti_inquiry("60999999", date(2026, 3, 10)))
            cfg = tradeindia.config(settings_for(api, tradeindia_backfill_days=2))
            report = vendor_source.run_once(cfg, store, clock=clock)
        assert report.ok
        assert store.count_leads() == 2
        merged = store.get_lead(before.id)
        assert merged is not None
        assert merged.channels == "email pull"
        assert merged.missed_by_email is False
        assert merged.quantity == "20", "the API copy fills a field the email lacked"
        assert merged.received_at == before.received_at, "the email's time stays"
        other = next(x for x in store.list_leads() if x.id != before.id)
        assert (other.external_id, other.missed_by_email) == ("60999999", True)
        assert store.count_missed_by_email(source="tradeindia") == 1
        assert store.count_missed_by_email(source="indiamart") == 0
    finally:
        store.close()


# --------------------------------------------------------------------------- ExportersIndia


def test_exportersindia_pulls_from_a_day_maps_and_never_marks_missed_by_email(
    api: FakeVendors, clock: FakeClock, db: str, store: Store
) -> None:
    api.ei += [
        ei_inquiry("EI-1001", TODAY - timedelta(days=2)),
        ei_inquiry("EI-1002", TODAY, mobile="", email=""),  # nobody to answer: review
        "not an inquiry",  # type: ignore[list-item]
    ]
    with running(exportersindia, settings_for(api), db, clock) as run:
        settle(clock, T0 + HOUR)
        assert run.last.state == "waiting"
    calls = api.calls_to(EI_PATH)
    assert [c.query["date_from"] for c in calls] == ["2026-03-17", "2026-03-20"]
    assert "k" in calls[0].query
    assert calls[0].query["email"] == api.ei_email
    (lead,) = leads(store).values()
    assert (lead.external_id, lead.source, lead.missed_by_email) == (
        "EI-1001",
        "exportersindia",
        False,
    )
    assert (lead.name, lead.company, lead.phone) == ("Ravi Kumar", "Kumar Exports", "+919845012345")
    assert (lead.address, lead.city, lead.state, lead.country) == (
        "12 MG Road",
        "Bengaluru",
        "Karnataka",
        "IN",
    )
    assert (lead.product, lead.quantity, lead.unit) == ("Cotton Yarn", "2", "Ton")
    assert lead.message == "Need 2 tons of 40s combed cotton yarn."
    assert lead.received_at == "2026-03-18T10:05:00+05:30"
    assert lead.specs["inq_type"] == "Direct"
    assert lead.specs["member_type"] == "Free"
    assert store.review_count() == 2


def test_exportersindia_rejected_key_is_a_health_state_with_the_fix(
    api: FakeVendors, clock: FakeClock, db: str
) -> None:
    settings = settings_for(api, exportersindia_email="someone@else.example")
    with running(exportersindia, settings, db, clock) as run:
        settle(clock, T0 + 5 * HOUR)
        assert run.last.state == "key rejected"
        assert "LEADTUI_EXPORTERSINDIA_EMAIL" in run.last.detail
    assert len(api.calls_to(EI_PATH)) == 1


# --------------------------------------------------------------------------- answers, settings


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, b"", 204),
        (200, b"null", 204),
        (200, b"[]", 204),
        (200, json.dumps([{"rfi_id": "1"}]).encode(), 200),
        (200, json.dumps({"data": [{"rfi_id": "1"}]}).encode(), 200),
        (200, b"Invalid key", 401),
        (200, json.dumps({"error": "Unauthorized access"}).encode(), 401),
        (200, b"date range greater than 24 hours not allowed", 400),
        (200, b"<html><body>Maintenance</body></html>", 500),
        (200, json.dumps({"what": 1}).encode(), 500),
        (403, b"", 401),
        (429, b"", 429),
        (502, b"", 500),
    ],
)
def test_answers_are_read_in_the_pull_codes(status: int, body: bytes, code: int) -> None:
    assert vendor_pull.classify(tradeindia.VENDOR, status, body).code == code


def test_settings_env_floors_and_the_parser_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "LEADTUI_TRADEINDIA_USERID": "11",
        "LEADTUI_TRADEINDIA_PROFILE_ID": "22",
        "LEADTUI_TRADEINDIA_KEY": "secret-ti",
        "LEADTUI_EXPORTERSINDIA_KEY": "secret-ei",
        "LEADTUI_EXPORTERSINDIA_EMAIL": "a@b.example",
        "LEADTUI_TRADEINDIA_INTERVAL": "60",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load()
    assert "secret-ti" not in repr(settings)
    assert settings.names_a_source
    cfg = tradeindia.config(settings)
    assert cfg.interval == 1800.0, "a real TradeIndia URL keeps the 30-minute floor"
    assert exportersindia.config(settings).interval == 3600.0
    assert dict(cfg.account) == {"userid": "11", "profile_id": "22"}
    (lead,) = parse([ti_inquiry("5", TODAY)], channel="pull")
    assert (lead["source"], lead["external_id"]) == ("tradeindia", "5")
    (other,) = parse(ei_inquiry("6", TODAY))
    assert (other["source"], other["channel"]) == ("exportersindia", "pull")


def test_doctor_has_one_line_group_per_vendor(api: FakeVendors, store: Store) -> None:
    api.today = real_today  # doctor runs on the real clock
    off = {c.name: c for c in sources.checks(Settings(http_listen="off"), None, 1.0)}
    assert off["tradeindia"].ok is None
    assert "LEADTUI_TRADEINDIA_KEY" in off["tradeindia"].detail
    assert "LEADTUI_EXPORTERSINDIA_EMAIL" in off["exportersindia"].detail
    half = tradeindia.check(Settings(tradeindia_key=Secret("k")), None, 1.0)
    assert half[0].ok is False
    assert "LEADTUI_TRADEINDIA_USERID" in half[0].detail
    lines = sources.checks(settings_for(api), store, 5.0)
    ti = [c.detail for c in lines if c.name == "tradeindia"]
    assert ti[0].startswith("key: set for userid 1234567, profile_id 7654321")
    assert any(d.startswith("live call: key accepted") for d in ti)
    ei = [c.detail for c in lines if c.name == "exportersindia"]
    assert any(d.startswith("live call: key accepted") for d in ei)


def test_leadtui_pull_source_once_prints_a_summary(
    api: FakeVendors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.ti.append(ti_inquiry("70000061", real_today()))
    monkeypatch.setenv("LEADTUI_DB", str(tmp_path / "cli.db"))
    for name, value in {
        "USERID": api.userid,
        "PROFILE_ID": api.profile_id,
        "KEY": api.ti_key,
        "URL": api.ti_url,
        "BACKFILL_DAYS": "0",
    }.items():
        monkeypatch.setenv(f"LEADTUI_TRADEINDIA_{name}", value)
    api.today = real_today  # the command runs on the real clock
    result = CliRunner().invoke(main, ["pull", "--source", "tradeindia", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 lead: 1 new, 0 already known" in result.stdout
    assert api.ti_key not in result.output
    assert DAY  # the shared constants stay importable


def test_leadtui_pull_source_once_without_a_network_says_what_to_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:  # a port nobody listens on: the connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("LEADTUI_DB", str(tmp_path / "cli.db"))
    monkeypatch.setenv("LEADTUI_EXPORTERSINDIA_KEY", "ei-key-fedcba9876543210")
    monkeypatch.setenv("LEADTUI_EXPORTERSINDIA_EMAIL", "sales@seller.example")
    monkeypatch.setenv("LEADTUI_EXPORTERSINDIA_URL", f"http://127.0.0.1:{port}/api")
    monkeypatch.setenv("LEADTUI_EXPORTERSINDIA_BACKFILL_DAYS", "0")
    result = CliRunner().invoke(main, ["pull", "--source", "exportersindia", "--once"])
    assert result.exit_code != 0
    *said, last = result.output.strip().splitlines()
    assert "check the network (and LEADTUI_EXPORTERSINDIA_URL), then run it again" in last
    assert not any("0 leads" in line for line in said)  # nothing was pulled: no count
    assert "ei-key-fedcba9876543210" not in result.output


def test_a_pulled_object_no_vendor_claims_goes_to_review_not_to_a_generic_lead(
    api: FakeVendors, clock: FakeClock, store: Store
) -> None:
    api.ei += [ei_inquiry("EI-2001", TODAY), {"name": "No Id", "email": "x@y.example"}]
    clock.run_until(T0 + HOUR)
    cfg = exportersindia.config(settings_for(api, exportersindia_backfill_days=0))
    report = vendor_source.run_once(cfg, store, clock=clock)
    assert report.ok
    assert list(leads(store)) == ["EI-2001"]
    (item,) = store.review_items()
    assert "no marketplace's inquiry" in (item.error or "")
