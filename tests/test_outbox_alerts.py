"""Alerts about the service, sent through the outbox once (not once per restart or per TUI):
a source failing for too long, the review queue growing, IndiaMART's push gone quiet while
email still finds leads (well before IndiaMART's 48-hour switch-off), and the daily digest
at its time in the seller's zone.

The watcher is driven with explicit times (``tick(now)``); "a restart" is a new watcher on a
new store over the same database.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from helpers import wait_for
from test_outbox import WEBHOOK_SECRET, Receivers, apply_json, lead_mail

from leadtui import config
from leadtui.alerts import Watcher
from leadtui.capture import Pipeline, RawItem
from leadtui.config import NotifyTarget, Secret, Settings
from leadtui.outbox import Sender, make_target, routes
from leadtui.store import Health, Store

IST = timezone(timedelta(hours=5, minutes=30))
ALERTS = frozenset(config.ALERT_EVENTS)


def settings_with(*configs: NotifyTarget, **changes: Any) -> Settings:
    return Settings(notify=configs, push_token=Secret("push-token-never-shown-123456"), **changes)


def opened(url: str, settings: Settings) -> Store:
    store = Store.open(url)
    store.set_outbox_routes(routes(settings))
    return store


def watcher(store: Store, settings: Settings) -> Watcher:
    return Watcher(store, settings, IST, every=0)


def phone(*events: str) -> NotifyTarget:
    """A target for the alerts under test only: a watcher ticked hours ahead must not run
    into another alert's time (the digest at 09:00 IST)."""
    assert set(events) <= ALERTS
    return NotifyTarget("phone", "ntfy", url="http://127.0.0.1:9/t", events=frozenset(events))


def alerts(store: Store) -> list[Any]:
    return [i for i in store.outbox_items(limit=1000) if i.lead_id is None]


def test_a_source_failing_for_thirty_minutes_is_told_once_across_restarts(db_url: str) -> None:
    settings = settings_with(phone("source.failing"))
    t0 = time.time()
    with opened(db_url, settings) as store:
        store.set_health(
            Health("mailbox", "login failed", last_error="the server refused the login")
        )
        first = watcher(store, settings)
        assert first.tick(t0) == 0
        assert first.tick(t0 + 29 * 60) == 0
        assert first.tick(t0 + 31 * 60) == 1
        (item,) = alerts(store)
        assert item.kind == "source.failing"
        assert item.payload["source"] == "mailbox"
        assert "failed for 31 min" in item.payload["text"]
        assert "refused the login" in item.payload["text"]
        assert first.tick(t0 + 60 * 60) == 0
    with opened(db_url, settings) as store:  # a restart: the watcher remembers
        assert watcher(store, settings).tick(t0 + 90 * 60) == 0
        # It recovers, then fails again: a new failure is told again, after its own 30 min.
        store.set_health(Health("mailbox", "ok"))
        again = watcher(store, settings)
        assert again.tick(t0 + 100 * 60) == 0
        store.set_health(Health("mailbox", "error", last_error="timed out"))
        assert again.tick(t0 + 101 * 60) == 0
        assert again.tick(t0 + 132 * 60) == 1
        assert [i.kind for i in alerts(store)] == ["source.failing", "source.failing"]


def test_the_review_queue_growing_is_told_when_it_grew_by_the_set_amount(
    sqlite_url: str,
) -> None:
    settings = settings_with(phone("review.growing"), alert_review_growth=3)
    with opened(sqlite_url, settings) as store:
        pipeline = Pipeline(store)

        def unreadable(n: int) -> None:
            body = json.dumps({"unknown_shape": n, "at": time.time()}).encode()
            item = RawItem(body, source="website", kind="json")
            assert pipeline.accept(item).status == "failed"

        unreadable(0)  # there before the watcher looked: not news
        w = watcher(store, settings)
        assert w.tick() == 0
        unreadable(1)
        unreadable(2)
        assert w.tick() == 0
        unreadable(3)
        assert w.tick() == 1
        (item,) = alerts(store)
        assert (item.kind, item.payload["review"], item.payload["grew_by"]) == (
            "review.growing",
            4,
            3,
        )
        assert watcher(store, settings).tick() == 0  # a restart: the same size is not news


def _lead(store: Store, seed: int, channel: str) -> None:
    _raw, lead = lead_mail(seed)
    copy = {**lead, "channel": channel, "message_id": None, "external_id": f"2790{seed:06d}"}
    apply_json(store, copy)


def test_the_push_watchdog_warns_when_only_email_finds_indiamart_leads(db_url: str) -> None:
    settings = settings_with(phone("push.watchdog"))
    hours = 3600.0
    with opened(db_url, settings) as store:
        t0 = time.time()
        w = watcher(store, settings)
        assert w.tick(t0) == 0  # starts watching now
        _lead(store, 31, "email")
        # Less than 12 h of watching: not yet.
        assert w.tick(t0 + 11 * hours) == 0
    with opened(db_url, settings) as store:
        # 12 h of watching, an email lead within the last 12 h, no push in them: a warning.
        now = t0 + 12 * hours + 60
        store.m.Lead.update(first_seen_ts=now - 2 * hours).execute()  # it came 2 h ago
        assert watcher(store, settings).tick(now) == 1
        (item,) = alerts(store)
        assert item.kind == "push.watchdog"
        assert "48 h" in item.payload["text"]
        assert item.payload["found_elsewhere"] == 1
        assert watcher(store, settings).tick(now + 600) == 0  # once
        # A push arrives: the watch resets, and a later silence is told again.
        _lead(store, 32, "push")
        store.m.Lead.update(first_seen_ts=now + 3600).execute()
        assert watcher(store, settings).tick(now + 2 * hours) == 0
        assert "push_told" not in store.alert_state()


def test_no_push_token_no_push_watchdog(sqlite_url: str) -> None:
    settings = Settings(notify=(phone("push.watchdog"),))
    with opened(sqlite_url, settings) as store:
        _lead(store, 33, "email")
        w = watcher(store, settings)
        assert w.tick(time.time()) == 0
        assert w.tick(time.time() + 30 * 3600) == 0
        assert alerts(store) == []


def at_ist(day: date, hour: int, minute: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=IST).timestamp()


def test_the_daily_digest_comes_once_at_its_time_in_the_sellers_zone(db_url: str) -> None:
    settings = settings_with(phone("digest"), alert_digest_at="09:30")
    today = datetime.now(IST).date()
    with opened(db_url, settings) as store:
        _lead(store, 34, "pull")  # missed by email
        _lead(store, 35, "email")
        w = watcher(store, settings)
        assert w.tick(at_ist(today, 9, 29)) == 0
        assert w.tick(at_ist(today, 9, 30)) == 1
        (item,) = alerts(store)
        assert item.kind == "digest"
        assert item.event_id == f"digest:{today.isoformat()}"
        counts = item.payload["counts"]
        assert counts["uncontacted"] == 2
        assert counts["missed_by_email"] == 1
        assert "Not contacted yet: 2" in item.payload["text"]
        assert w.tick(at_ist(today, 18)) == 0
    with opened(db_url, settings) as store:  # a restart the same day
        assert watcher(store, settings).tick(at_ist(today, 11)) == 0
        tomorrow = today + timedelta(days=1)
        # Down at 09:30 tomorrow and back at 14:00: more than 3 h late, skipped that day.
        assert watcher(store, settings).tick(at_ist(tomorrow, 14)) == 0
        assert len(alerts(store)) == 1


def test_alerts_nobody_wants_are_not_watched(sqlite_url: str) -> None:
    only_leads = NotifyTarget("phone", "ntfy", url="http://127.0.0.1:9/t")
    settings = settings_with(only_leads)
    with opened(sqlite_url, settings) as store:
        store.set_health(Health("mailbox", "error"))
        w = watcher(store, settings)
        assert w.tick(time.time()) == 0
        assert w.tick(time.time() + 86400) == 0
        assert store.alert_state() == {}


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    r = Receivers().start()
    yield r
    r.stop()


def test_an_alert_reaches_a_webhook_signed_with_its_own_title(
    sqlite_url: str, receivers: Receivers
) -> None:
    hook = NotifyTarget(
        "ops",
        "webhook",
        url=f"{receivers.url}/hook",
        secret=Secret(WEBHOOK_SECRET),
        events=frozenset({"digest"}),
        timeout=5,
    )
    now = datetime.now(IST)
    settings = settings_with(hook, alert_digest_at=f"{now.hour:02d}:{now.minute:02d}")  # due now
    with opened(sqlite_url, settings) as store:
        health: list[Health] = []
        sender = Sender(
            store,
            [make_target(hook, settings)],
            health.append,
            poll=0.02,
            zone=IST,
            watcher=Watcher(store, settings, IST, every=0),
        )
        stop = threading.Event()
        thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for(lambda: receivers.ok("webhook"), timeout=10, what="the digest")
        finally:
            stop.set()
            thread.join(5)
    event = json.loads(receivers.ok("webhook")[0].body)
    assert event["type"] == "digest"
    assert event["title"].startswith("leadtui digest for ")


def test_a_follow_up_and_a_missed_first_contact_are_told_once_to_the_targets_that_want_them(
    db_url: str,
) -> None:
    """``reminder.due`` and ``sla.breached``: the seller's phone hears of a follow-up that
    came due, and the owner's of a lead nobody called in time; once each, across a restart;
    a target's owner filter applies as for any lead event."""
    everyone = NotifyTarget(
        "everyone", "ntfy", url="http://127.0.0.1:9/all", events=frozenset({"reminder.due"})
    )
    asha = NotifyTarget(
        "asha",
        "ntfy",
        url="http://127.0.0.1:9/asha",
        events=frozenset({"reminder.due", "sla.breached"}),
        owners=frozenset({"asha"}),
    )
    settings = settings_with(everyone, asha, sla_first_contact=900.0)
    t0 = time.time()
    with opened(db_url, settings) as store:
        _lead(store, 41, "email")
        _lead(store, 42, "email")
        lead = store.m.Lead
        first, second = sorted(x.id for x in lead.select(lead.id))
        lead.update(follow_up_ts=t0 + 600, received_ts=t0, first_seen_ts=t0).execute()
        lead.update(owner="Asha").where(lead.id == first).execute()
        w = watcher(store, settings)
        assert w.tick(t0) == 0  # nothing due yet
        assert w.tick(t0 + 700) == 3  # both follow-ups to everyone, Asha's to Asha
        due = sorted((i.target, i.lead_id) for i in store.outbox_items(limit=100))
        assert due == [("asha", first), ("everyone", first), ("everyone", second)]
        item = next(i for i in store.outbox_items(limit=100) if i.target == "asha")
        assert item.kind == "reminder.due"
        assert item.payload["lead"]["owner"] == "Asha"
    with opened(db_url, settings) as store:  # a restart: nothing told twice
        w = watcher(store, settings)
        assert w.tick(t0 + 800) == 0
        # 15 min after they came, both leads are still new and uncalled: Asha hears of hers.
        assert w.tick(t0 + 1000) == 1
        (breach,) = [i for i in store.outbox_items(limit=100) if i.kind == "sla.breached"]
        assert (breach.target, breach.lead_id) == ("asha", first)
        assert watcher(store, settings).tick(t0 + 2000) == 0
