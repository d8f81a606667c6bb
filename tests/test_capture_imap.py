"""Mailbox to lead table, end to end: Dovecot, the watcher, the pipeline and the real store.

What a seller would notice: a lead email shows up as a lead within seconds, even one that
lands just as the watcher goes back to IDLE; the mailbox is read from where it was left (the
watermark lives in the database); and a capture process killed in the middle of a big
backfill, then restarted, stores every email exactly once.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dovecot_fixtures import Mailbox
from helpers import wait_for
from serve_process import Launcher, serve_env

from leadtui import config, parser, synth
from leadtui.capture import CaptureService, Pipeline
from leadtui.config import Secret
from leadtui.imap import ImapAccount, MailboxWatcher, connect
from leadtui.sources import StoreMailSink, mailbox_factory
from leadtui.store import LeadQuery, Store

pytestmark = pytest.mark.dovecot

LEAD_KINDS = ("enquiry", "export", "phone", "buylead", "tradeindia")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.close()


def lead_mails(n: int, seed: int = 0) -> tuple[list[bytes], list[str]]:
    """``n`` synthetic lead emails and their Message-IDs."""
    raws, ids = [], []
    for i in range(seed, seed + n):
        raw = synth.email(random.Random(i), LEAD_KINDS[i % len(LEAD_KINDS)])
        (lead,) = parser.parse(raw)
        assert lead["kind"] == "lead"
        raws.append(raw)
        ids.append(str(lead["message_id"]))
    return raws, ids


def leads_by_message_id(store: Store) -> list[str]:
    return sorted(lead.message_id or "" for lead in store.list_leads(LeadQuery(limit=10_000)))


def watermark_key(mailbox: Mailbox) -> str:
    return f"imap:{mailbox.user}@{mailbox.host}/{mailbox.folder}"


def test_an_appended_email_becomes_a_lead_and_the_watermark_is_kept_in_the_database(
    db_url: str, mailbox: Mailbox
) -> None:
    settings = config.Settings(
        db=db_url,
        imap_host=mailbox.host,
        imap_port=mailbox.server.port,
        imap_user=mailbox.user,
        imap_password=Secret(mailbox.password),
        imap_security="plain",
        http_listen="off",
    )
    service = CaptureService(db_url, [mailbox_factory(settings)])
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    store = Store.open(db_url)
    try:

        def mailbox_state() -> str | None:
            return next((h.state for h in store.health() if h.source == "mailbox"), None)

        wait_for(lambda: mailbox_state() == "idle", timeout=15, what="the watcher to idle")
        (raw,), (message_id,) = lead_mails(1)

        uid = mailbox.append(raw)

        wait_for(
            lambda: leads_by_message_id(store) == [message_id],
            timeout=5,
            what="the email to become a lead",
        )
        expected = {"uidvalidity": mailbox.uidvalidity(), "last_uid": uid}
        wait_for(
            lambda: store.get_state(watermark_key(mailbox)) == expected,
            what="the watermark to be saved",
        )
        lead = store.list_leads()[0]
        kept = store.raw_body(store.lead_raw_ids(lead.id)[0]) or b""
        assert kept.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")  # IMAP is CRLF
        assert b"\\Seen" not in mailbox.flags(uid), "capturing marked the email read"
    finally:
        stop.set()
        thread.join(10)
        store.close()
    assert not thread.is_alive(), "the capture service did not stop"


def test_a_lead_email_landing_as_the_watcher_goes_back_to_idle_still_arrives_in_seconds(
    sqlite_url: str, mailbox: Mailbox
) -> None:
    """Dovecot does not announce, during IDLE, mail that arrived between the client's last
    command and its IDLE: the watcher must look again instead of waiting for the next mail
    (or for the re-IDLE, minutes later). Such timing is common in a burst of enquiries."""
    (first, racing), (first_id, racing_id) = lead_mails(2, seed=500)
    idles: list[int] = []

    def connect_racing(account: ImapAccount) -> Any:
        client = connect(account)
        real_idle = client.idle

        def idle() -> Any:
            idles.append(1)
            if len(idles) == 2:  # after storing the first mail, before going back to IDLE
                mailbox.append(racing)
            return real_idle()

        client.idle = idle
        return client

    store = Store.open(sqlite_url)
    stop = threading.Event()
    health: list[Any] = []
    sink = StoreMailSink(store, Pipeline(store))
    watcher = MailboxWatcher(
        mailbox.account("plain"), sink, health.append, stop, connect=connect_racing
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: any(h.state == "idle" for h in health), timeout=10, what="IDLE")
        mailbox.append(first)
        wait_for(lambda: len(idles) >= 2, what="the first mail to be stored")

        wait_for(
            lambda: leads_by_message_id(store) == sorted([first_id, racing_id]),
            timeout=5,
            what="the mail that landed as the watcher went back to IDLE",
        )
    finally:
        stop.set()
        thread.join(10)
        store.close()


@pytest.mark.slow
def test_serve_killed_during_a_backfill_and_restarted_stores_every_email_once(
    sqlite_url: str, mailbox: Mailbox, serve: Launcher
) -> None:
    raws, expected = lead_mails(200, seed=1000)
    uids = mailbox.append_many(raws)
    store = Store.open(sqlite_url)
    try:
        first = serve(serve_env(sqlite_url, mailbox))
        wait_for(lambda: store.count_leads() >= 10, timeout=20, what="the backfill to start")
        first.send(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = store.count_leads()
        assert killed_at < len(expected), "the backfill finished before the kill"

        # The next one takes over once the dead process's lease expires (up to ~15 s).
        second = serve(serve_env(sqlite_url, mailbox))
        wait_for(
            lambda: store.count_leads() == len(expected),
            timeout=45,
            what="the restarted serve to finish the backfill",
        )
        mark = {"uidvalidity": mailbox.uidvalidity(), "last_uid": uids[-1]}
        wait_for(lambda: store.get_state(watermark_key(mailbox)) == mark, what="the watermark")
        second.send(signal.SIGTERM)
        assert second.wait(timeout=5) == 0

        assert leads_by_message_id(store) == sorted(expected)
        assert store.pending_raw_ids() == []
        assert store.review_count() == 0
        raw = store.m.RawItem
        assert raw.select().count() == len(expected), "an email was stored twice"
    finally:
        store.close()
