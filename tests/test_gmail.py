"""The Gmail source against a loopback stand-in of the Gmail API and Google's token endpoint.

The push path is the real one: the HTTP ingest (the real capture source on a loopback port)
takes Pub/Sub's push at ``/api/webhooks/gmail/<token>`` and wakes the real Gmail source,
which reads the history and the raw messages from ``fake_gmail.FakeGoogle`` (Google's
documented request and answer shapes, errors included) into a real store.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fake_gmail import EMAIL, FakeGoogle, pubsub_push
from helpers import Running, running_source, wait_for
from ingest_server import running as ingest_running

from leadtui import config, sources, synth
from leadtui.capture import Pipeline, RawItem
from leadtui.channels import gmail
from leadtui.channels.gmail_check import check
from leadtui.config import Settings
from leadtui.ingest.gmail import GMAIL_PREFIX, PUSH_STATE, push_notification
from leadtui.store import Store, StoreError

GMAIL_TOKEN = "gmail-push-3b9e1f7a5c2d4e6f8a0b"
TOPIC = "projects/shree-leads/topics/leadtui-gmail"


def gmail_env(google: FakeGoogle, *, push: bool = True, **over: str) -> dict[str, str]:
    env = {
        "LEADTUI_GMAIL_ENABLE": "true",
        "LEADTUI_GMAIL_REFRESH_TOKEN": google.refresh_token,
        "LEADTUI_GMAIL_CLIENT_ID": google.client_id,
        "LEADTUI_GMAIL_CLIENT_SECRET": google.client_secret,
        "LEADTUI_GMAIL_TOKEN_URL": google.token_url,
        "LEADTUI_GMAIL_API_URL": google.url,
        "LEADTUI_GMAIL_POLL_SECONDS": "3600",  # only a push (or the test) triggers a sync
    }
    if push:
        env |= {"LEADTUI_GMAIL_TOPIC": TOPIC, "LEADTUI_GMAIL_PUSH_TOKEN": GMAIL_TOKEN}
    return env | over


def settings_of(env: dict[str, str]) -> Settings:
    """The settings as ``leadtui serve`` reads them from these ``LEADTUI_*`` variables."""
    return config.load(environ=env)


class Clock:
    """Wall time the test can move forward (a watch lasts days)."""

    def __init__(self) -> None:
        import time

        self.offset = 0.0
        self._time = time.time

    def __call__(self) -> float:
        return self._time() + self.offset


@contextmanager
def gmail_running(
    settings: Settings, db_url: str, *, pipeline: type[Pipeline] = Pipeline, clock: Any = None
) -> Iterator[Running]:
    factory = gmail.gmail_factory(settings, clock=clock, rng=random.Random(7))
    with running_source(factory, db_url, pipeline) as run:
        yield run


PERSONAL = b"From: Ravi <ravi.friend@gmail.com>\r\nSubject: lunch?\r\n\r\nSee you at 1.\r\n"


def enquiry(seed: int) -> bytes:
    return synth.email(random.Random(seed), "enquiry")


def leads(store: Store) -> int:
    return store.count_leads()


def cursor(store: Store) -> int | None:
    found = gmail.Cursor.load(store)
    return None if found is None else found.history_id


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


# --------------------------------------------------------------------------- the push path


def test_push_reads_history_and_raw_mail_into_a_committed_lead_then_advances_history(
    google: FakeGoogle, db_url: str
) -> None:
    env = gmail_env(google)
    with ingest_running(db_url, **env) as server, gmail_running(settings_of(env), db_url) as run:
        wait_for(lambda: run.reached("watching"), timeout=10, what="the watch")
        start = cursor(server.store)
        assert start == google.history_id  # the first run reads from the mailbox's history now
        message_id = google.add_message(enquiry(1))
        reply = server.request(
            "POST", GMAIL_PREFIX + GMAIL_TOKEN, pubsub_push(EMAIL, google.history_id),
            {"content-type": "application/json"},
        )  # fmt: skip
        assert reply.status == 200
        assert reply.json() == {"status": "received"}
        wait_for(lambda: leads(server.store) == 1, timeout=10, what="the lead")
        wait_for(lambda: cursor(server.store) == google.history_id, what="historyId advanced")

    watch = google.watches[0]
    assert watch == {"topicName": TOPIC, "labelIds": ["INBOX"]}
    history = google.calls_to("history")[-1]
    assert history.query["startHistoryId"] == str(start)
    assert history.query["historyTypes"] == "messageAdded"
    assert history.query["labelId"] == "INBOX"
    raw = google.calls_to("messages/get")
    assert [c.query for c in raw] == [{"format": "raw"}]
    assert all(c.bearer_ok for c in google.calls)  # Authorization: Bearer <issued token>
    assert google.token_requests[0]["grant_type"] == "refresh_token"
    assert google.unexpected == []  # nothing but reads: no modify, no label change
    assert "UNREAD" in google.messages[message_id].labels
    with Store.open(db_url) as store:
        [lead] = store.list_leads()
    assert lead.source == "indiamart"


def test_a_failing_commit_leaves_the_history_id_and_the_next_try_commits(
    google: FakeGoogle, sqlite_url: str
) -> None:
    allowed = threading.Event()

    class FailingUntilAllowed(Pipeline):
        def accept(self, item: RawItem) -> Any:
            if not allowed.is_set():
                raise StoreError("the database is locked by another program")
            return super().accept(item)

    settings = settings_of(gmail_env(google, push=False, LEADTUI_GMAIL_POLL_SECONDS="1"))
    store = Store.open(sqlite_url)
    with gmail_running(settings, sqlite_url, pipeline=FailingUntilAllowed) as run:
        wait_for(lambda: run.reached("polling"), what="the first sync")
        start = cursor(store)
        google.add_message(enquiry(2))
        wait_for(lambda: run.last.state == "retrying", what="the failed commit")
        assert "locked" in (run.last.last_error or "")
        assert cursor(store) == start  # nothing committed, nothing skipped
        allowed.set()
        wait_for(lambda: leads(store) == 1, timeout=10, what="the lead after the retry")
        wait_for(lambda: cursor(store) == google.history_id, what="historyId advanced")
    store.close()


def test_a_replayed_push_and_a_reread_history_add_no_lead(
    google: FakeGoogle, sqlite_url: str
) -> None:
    env = gmail_env(google)
    with ingest_running(sqlite_url, **env) as server, gmail_running(settings_of(env), sqlite_url) as run:  # fmt: skip
        wait_for(lambda: run.reached("watching"), timeout=10, what="the watch")
        start = cursor(server.store)
        google.add_message(enquiry(3))
        push = pubsub_push(EMAIL, google.history_id)
        headers = {"content-type": "application/json"}
        assert server.request("POST", GMAIL_PREFIX + GMAIL_TOKEN, push, headers).status == 200
        wait_for(lambda: leads(server.store) == 1, timeout=10, what="the lead")
        wait_for(lambda: cursor(server.store) == google.history_id, what="historyId advanced")
        gets = len(google.calls_to("messages/get"))
        # Pub/Sub delivers the same push again, and a crash lost the cursor's last move.
        gmail.Cursor(start or 0, 0.0, EMAIL).save(server.store)
        assert server.request("POST", GMAIL_PREFIX + GMAIL_TOKEN, push, headers).status == 200
        wait_for(lambda: len(google.calls_to("messages/get")) > gets, what="the mail read again")
        wait_for(lambda: cursor(server.store) == google.history_id, what="historyId advanced")
        assert leads(server.store) == 1


def test_an_expired_history_id_falls_back_to_a_bounded_catch_up(
    google: FakeGoogle, sqlite_url: str
) -> None:
    settings = settings_of(gmail_env(google, push=False, LEADTUI_GMAIL_POLL_SECONDS="1"))
    store = Store.open(sqlite_url)
    with gmail_running(settings, sqlite_url) as run:
        wait_for(lambda: run.reached("polling"), what="the first sync")
        google.add_message(enquiry(4))
        google.expire_history()
        wait_for(lambda: leads(store) == 1, timeout=10, what="the lead from the catch-up")
        wait_for(lambda: cursor(store) == google.history_id, what="historyId from the profile")
        assert any("history had expired" in h.detail for h in run.health)
    listed = google.calls_to("messages")
    assert listed[-1].query["q"].startswith("newer_than:2d ")
    assert "from:indiamart.com" in listed[-1].query["q"]
    assert listed[-1].query["labelIds"] == "INBOX"
    store.close()


def test_a_catch_up_cut_short_says_so_in_the_health_line(
    google: FakeGoogle, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More mail than a catch-up reads: the newest is read, and the health line says the rest
    was not (the cursor moves on, so silence would lose it for good)."""
    monkeypatch.setattr(gmail, "MAX_CATCH_UP", 1)
    google.page_size = 1
    settings = settings_of(gmail_env(google, push=False, LEADTUI_GMAIL_POLL_SECONDS="1"))
    store = Store.open(sqlite_url)
    with gmail_running(settings, sqlite_url) as run:
        wait_for(lambda: run.reached("polling"), what="the first sync")
        google.add_message(enquiry(6))
        google.add_message(enquiry(7))
        google.expire_history()
        wait_for(
            lambda: any("only the newest 1 messages" in h.detail for h in run.health),
            timeout=10,
            what="the health line saying the catch-up was cut short",
        )
        assert leads(store) == 1
    store.close()


def test_a_malformed_message_goes_to_review_and_the_source_keeps_running(
    google: FakeGoogle, sqlite_url: str
) -> None:
    settings = settings_of(gmail_env(google, push=False, LEADTUI_GMAIL_POLL_SECONDS="1"))
    store = Store.open(sqlite_url)
    with gmail_running(settings, sqlite_url) as run:
        wait_for(lambda: run.reached("polling"), what="the first sync")
        google.add_message(malformed="%%% not base64url \x1b[31m %%%")
        google.add_message(PERSONAL)
        google.add_message(enquiry(5))
        wait_for(lambda: leads(store) == 1, timeout=10, what="the good mail's lead")
        wait_for(lambda: cursor(store) == google.history_id, what="historyId past both")
        assert run.last.state == "polling"
    [item] = store.review_items()
    assert "no readable raw" in (item.error or "")
    assert store.review_count() == 1
    _raw_id, kept_before = store.add_raw(PERSONAL, source="test", kind="email")
    assert kept_before  # mail from outside the lead senders was never stored
    store.close()


def test_a_push_body_is_read_in_either_base64_alphabet_and_garbage_is_only_a_wake_up() -> None:
    envelope = json.loads(pubsub_push(EMAIL, 4242))
    assert push_notification(json.dumps(envelope).encode()) == (4242, EMAIL)
    data = envelope["message"]["data"]
    urlsafe = data.replace("+", "-").replace("/", "_").rstrip("=")
    envelope["message"]["data"] = urlsafe
    assert push_notification(json.dumps(envelope).encode()) == (4242, EMAIL)
    for junk in (b"", b"{}", b"not json", b'{"message": {"data": "%%%"}}', b"\xff\xfe"):
        assert push_notification(junk) == (None, "")


# --------------------------------------------------------------------------- credentials


def test_a_wrong_push_token_is_404_records_nothing_and_is_never_logged(
    google: FakeGoogle, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="leadtui")
    wrong = "guessed-token-0123456789abcdef"
    with ingest_running(sqlite_url, **gmail_env(google)) as server:
        push = pubsub_push(EMAIL, 123)
        reply = server.request(
            "POST", GMAIL_PREFIX + wrong, push, {"content-type": "application/json"}
        )
        assert reply.status == 404
        assert server.store.get_state(PUSH_STATE) is None
        good = server.request(
            "POST", GMAIL_PREFIX + GMAIL_TOKEN, push, {"content-type": "application/json"}
        )
        assert good.status == 200
        assert (server.store.get_state(PUSH_STATE) or {})["history_id"] == 123
    assert wrong not in caplog.text
    assert GMAIL_TOKEN not in caplog.text


def test_a_revoked_refresh_token_is_a_health_state_with_the_fix(
    google: FakeGoogle, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="leadtui")
    google.revoked = True
    settings = settings_of(gmail_env(google, push=False))
    with gmail_running(settings, sqlite_url) as run:
        failed = wait_for(lambda: run.reached("login failed"), what="the refused grant")
    assert "invalid_grant" in failed.detail
    assert "LEADTUI_GMAIL_REFRESH_TOKEN" in failed.detail
    assert "gmail.readonly" in failed.detail
    assert "\n" not in failed.detail
    assert failed.next_retry_ts is not None
    assert google.calls == []  # no Gmail call without a token
    shown = caplog.text + " ".join(f"{h.detail} {h.last_error}" for h in run.health)
    assert google.refresh_token not in shown
    assert google.client_secret not in shown


def test_a_missing_scope_is_a_health_state_with_the_fix(
    google: FakeGoogle, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="leadtui")
    google.scope = "https://www.googleapis.com/auth/userinfo.email"
    settings = settings_of(gmail_env(google, push=False))
    with gmail_running(settings, sqlite_url) as run:
        failed = wait_for(lambda: run.reached("login failed"), what="the refused scope")
    assert "HTTP 403" in failed.detail
    assert (
        "authorise again with the scope https://www.googleapis.com/auth/gmail.readonly"
        in failed.detail
    )
    tokens = list(google.tokens)
    assert tokens
    assert not any(t in caplog.text or t in failed.detail for t in tokens)


def test_rate_limits_and_server_errors_back_off_then_recover(
    google: FakeGoogle, sqlite_url: str
) -> None:
    settings = settings_of(gmail_env(google, push=False, LEADTUI_GMAIL_POLL_SECONDS="1"))
    store = Store.open(sqlite_url)
    with gmail_running(settings, sqlite_url) as run:
        wait_for(lambda: run.reached("polling"), what="the first sync")
        google.script += [("history", 429), ("messages/get", 500)]
        google.add_message(enquiry(6))
        wait_for(lambda: leads(store) == 1, timeout=15, what="the lead after backing off")
    states = [h.state for h in run.health]
    assert "rate limited" in states
    assert "retrying" in states
    limited = next(h for h in run.health if h.state == "rate limited")
    assert "slow down" in limited.detail
    assert limited.next_retry_ts is not None
    store.close()


# --------------------------------------------------------------------------- watch and doctor


def test_the_watch_is_renewed_every_day(google: FakeGoogle, sqlite_url: str) -> None:
    clock = Clock()
    store = Store.open(sqlite_url)
    with gmail_running(settings_of(gmail_env(google)), sqlite_url, clock=clock) as run:
        wait_for(lambda: run.reached("watching"), timeout=10, what="the watch")
        assert len(google.watches) == 1
        first = (store.get_state(gmail.WATCH_STATE) or {})["renewed_ts"]
        clock.offset += 25 * 3600
        wait_for(lambda: len(google.watches) == 2, what="the daily renewal")
        wait_for(
            lambda: (store.get_state(gmail.WATCH_STATE) or {})["renewed_ts"] > first,
            what="the renewal recorded",
        )
    assert google.watches[1] == {"topicName": TOPIC, "labelIds": ["INBOX"]}
    store.close()


def test_a_refused_watch_falls_back_to_polling_and_says_how_to_fix_it(
    google: FakeGoogle, sqlite_url: str
) -> None:
    env = gmail_env(google, LEADTUI_GMAIL_TOPIC="shree-leads/leadtui-gmail")
    with gmail_running(settings_of(env), sqlite_url) as run:
        failed = wait_for(lambda: run.reached("error"), what="the refused watch")
    assert "gmail-api-push@system.gserviceaccount.com" in failed.detail
    assert "checks every" in failed.detail


def test_doctor_lines(google: FakeGoogle, sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    lines = {c.name: c for c in check(settings_of(gmail_env(google)), store, timeout=10)}
    assert lines["gmail"].ok is True
    assert f"reading {EMAIL} (INBOX), read-only" in lines["gmail"].detail
    assert lines["gmail push"].ok is None
    assert TOPIC in lines["gmail push"].detail
    # The URL to give Pub/Sub, as JustDial's and lead ads' lines give theirs; never the token.
    public = {
        c.name: c
        for c in check(
            settings_of(gmail_env(google)).replace(http_public_url="https://leads.example.in"),
            store,
            timeout=10,
        )
    }
    push = public["gmail push"].detail
    assert "https://leads.example.in/api/webhooks/gmail/<LEADTUI_GMAIL_PUSH_TOKEN>" in push
    assert GMAIL_TOKEN not in push

    google.revoked = True
    [login, _push] = check(settings_of(gmail_env(google)), store, timeout=10)
    assert login.ok is False
    assert "invalid_grant" in login.detail
    assert "LEADTUI_GMAIL_REFRESH_TOKEN" in login.fix
    assert google.refresh_token not in login.detail + login.fix

    polled = {c.name: c for c in check(settings_of(gmail_env(google, push=False)), None, 10)}
    assert "off: checking every 3600 s" in polled["gmail push"].detail

    [off] = check(Settings(), None, 10)
    assert off.ok is None
    assert "LEADTUI_GMAIL_ENABLE" in off.detail
    assert "gmail" in [c.name for c in sources.checks(Settings(http_listen="off"), None, 1)]
    store.close()
