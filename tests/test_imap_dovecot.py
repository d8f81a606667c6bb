"""The mailbox watcher against a real Dovecot: what a seller would notice if it broke."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from dovecot_fixtures import Mailbox, MemorySink, Watching, lead_mail
from helpers import FIXTURES, wait_for

from leadtui.config import Secret
from leadtui.imap import FETCH_BATCH, Backoff, ImapAccount, MailboxWatcher, check, connect

pytestmark = pytest.mark.dovecot

Watch = Callable[..., Watching]


def stored(watching: Watching, *message_ids: str) -> bool:
    have = watching.sink.message_ids()
    return all(m in have for m in message_ids)


def stays(condition: Callable[[], bool], seconds: float) -> bool:
    """Observe ``condition`` for ``seconds``; False at the first moment it does not hold."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.05)
    return condition()


class GatedBackoff(Backoff):
    """Holds the watcher in its first backoff until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()
        self.release = threading.Event()

    def next_delay(self) -> float:
        super().next_delay()
        if not self.waiting.is_set():
            self.waiting.set()
            self.release.wait(10)
        return 0.0


@pytest.mark.parametrize("security", ["ssl", "starttls", "plain"])
def test_new_mail_becomes_a_stored_mail_while_idling(
    mailbox: Mailbox, watch: Watch, security: str
) -> None:
    watching = watch(mailbox.account(security))
    wait_for(lambda: watching.seen("idle"), timeout=10, what="the watcher to idle")

    raw, message_id = lead_mail()
    uid = mailbox.append(raw)

    wait_for(lambda: stored(watching, message_id), timeout=5, what="the new mail to be stored")
    assert watching.sink.stored == [(uid, raw)]
    assert b"\\Seen" not in mailbox.flags(uid), "the watcher marked the mail read"
    mark = wait_for(watching.sink.watermark, what="a watermark")
    assert (mark.uidvalidity, mark.last_uid) == (mailbox.uidvalidity(), uid)


def test_the_sample_lead_emails_reach_the_sink_unchanged(mailbox: Mailbox, watch: Watch) -> None:
    samples = sorted((FIXTURES / "samples" / "email").glob("*.eml"))
    assert samples, "tests/fixtures/samples/email is missing"
    watching = watch(mailbox.account("ssl"))
    wait_for(lambda: watching.seen("idle"), timeout=10, what="the watcher to idle")

    raws = [path.read_bytes() for path in samples]
    uids = mailbox.append_many(raws)

    wait_for(lambda: len(watching.sink.stored) == len(raws), timeout=10, what="every sample")
    assert [uid for uid, _ in watching.sink.stored] == uids
    for (_, got), sent in zip(watching.sink.stored, raws, strict=True):
        assert got.replace(b"\r\n", b"\n") == sent.replace(b"\r\n", b"\n")  # IMAP is CRLF


def test_mail_that_arrived_while_nothing_ran_is_captured_at_start(
    mailbox: Mailbox, watch: Watch
) -> None:
    unread, unread_id = lead_mail()
    opened, opened_id = lead_mail("buyleads@tradeindia.com")
    newsletter, newsletter_id = lead_mail("news@example.org")
    too_old, too_old_id = lead_mail()
    mailbox.append(too_old, when=datetime.now() - timedelta(days=30))
    mailbox.append(unread)
    opened_uid = mailbox.append(opened)
    mailbox.mark_seen(opened_uid)  # a salesperson read it on the phone first
    newsletter_uid = mailbox.append(newsletter)

    watching = watch(mailbox.account("plain", backfill_days=7))

    wait_for(lambda: stored(watching, unread_id, opened_id), timeout=10, what="the backfill")
    wait_for(lambda: watching.seen("idle"), what="the watcher to idle")
    assert sorted(watching.sink.message_ids()) == sorted([unread_id, opened_id])
    assert newsletter_id not in watching.sink.message_ids()
    assert too_old_id not in watching.sink.message_ids(), "backfill went past backfill_days"
    assert b"\\Seen" not in mailbox.flags(newsletter_uid), "non-lead mail was touched"


def test_a_big_backfill_is_fetched_in_batches_and_stored_in_order(
    mailbox: Mailbox, watch: Watch
) -> None:
    mails = [lead_mail(product=f"Item {i}") for i in range(FETCH_BATCH * 2 + 20)]
    uids = mailbox.append_many([raw for raw, _ in mails])
    batches: list[int] = []

    def counting_connect(account: ImapAccount) -> Any:
        client = connect(account)
        real_fetch = client.fetch

        def fetch(messages: list[int], data: list[str]) -> Any:
            batches.append(len(messages))
            return real_fetch(messages, data)

        client.fetch = fetch
        return client

    watching = watch(mailbox.account("plain"), connect=counting_connect)

    wait_for(lambda: len(watching.sink.stored) == len(mails), timeout=20, what="the backfill")
    assert [uid for uid, _ in watching.sink.stored] == uids
    assert max(batches) <= FETCH_BATCH
    marks = [uid for kind, uid in watching.sink.events if kind == "mark"]
    assert marks == sorted(marks)
    assert marks[-1] == uids[-1]


def test_a_kick_during_idle_reconnects_and_catches_up_without_loss_or_doubles(
    mailbox: Mailbox, watch: Watch
) -> None:
    first, first_id = lead_mail()
    mailbox.append(first)
    backoff = GatedBackoff()
    watching = watch(mailbox.account("ssl"), backoff=backoff)
    wait_for(lambda: stored(watching, first_id) and watching.seen("idle"), timeout=10)

    assert mailbox.kick()
    wait_for(backoff.waiting.is_set, what="the watcher to notice the kick")
    during, during_id = lead_mail()
    mailbox.append(during)  # arrives while the watcher is disconnected
    backoff.release.set()

    wait_for(lambda: stored(watching, during_id), timeout=10, what="the catch-up")
    after, after_id = lead_mail()
    mailbox.append(after)
    wait_for(lambda: stored(watching, after_id), timeout=10, what="IDLE after the reconnect")
    assert watching.sink.message_ids() == [first_id, during_id, after_id]
    assert "reconnecting" in watching.states()


def test_a_server_outage_shows_reconnecting_then_catches_up(
    private_mailbox: Mailbox, watch: Watch
) -> None:
    mailbox = private_mailbox
    watching = watch(mailbox.account("plain"))
    wait_for(lambda: watching.seen("idle"), timeout=10, what="the watcher to idle")

    mailbox.stop()
    outage = wait_for(
        lambda: next(
            (
                h
                for h in list(watching.health)
                if h.state == "reconnecting" and "refused" in (h.last_error or "")
            ),
            None,
        ),
        timeout=15,
        what="a failed reconnect while the server is down",
    )
    assert outage.next_retry_at is not None
    assert "refused" in outage.detail
    raw, message_id = lead_mail()
    mailbox.deliver(raw)  # delivered locally while IMAP is down
    mailbox.start()

    wait_for(lambda: stored(watching, message_id), timeout=90, what="the catch-up after restart")
    assert watching.latest().state in {"idle", "catching up"}


def test_a_uidvalidity_reset_rescans_the_window_and_misses_nothing(
    private_mailbox: Mailbox, watch: Watch
) -> None:
    mailbox = private_mailbox
    old = [lead_mail() for _ in range(2)]
    mailbox.append_many([raw for raw, _ in old])
    watching = watch(mailbox.account("plain"))
    wait_for(lambda: stored(watching, *(m for _, m in old)), timeout=10, what="the first sync")
    old_validity = watching.sink.watermark().uidvalidity

    new_validity = mailbox.reset_uidvalidity()
    raw, message_id = lead_mail()
    mailbox.append(raw)

    def rescanned() -> bool:
        mark = watching.sink.watermark()
        return mark.uidvalidity == new_validity and stored(watching, message_id)

    wait_for(rescanned, timeout=90, what="the rescan under the new UIDVALIDITY")
    assert new_validity != old_validity
    ids = watching.sink.message_ids()
    for _, old_id in old:
        assert ids.count(old_id) == 2, "the rescan should hand the old mail over again"
    assert watching.sink.watermark().last_uid >= 3


def test_a_wrong_password_reports_login_failed_and_does_not_hammer(
    mailbox: Mailbox, watch: Watch
) -> None:
    wrong = "not-the-password-42"
    watching = watch(mailbox.account("plain", password=Secret(wrong)))

    failed = wait_for(lambda: watching.seen("login failed"), timeout=10, what="login failed")
    assert "LEADTUI_IMAP_PASSWORD" in failed.detail
    assert mailbox.user in failed.detail
    assert failed.next_retry_at is not None
    assert failed.next_retry_at > time.time() + 600
    for health in watching.health:
        assert wrong not in repr(health)
    wait_for(lambda: mailbox.login_failures() >= 1, what="Dovecot to log the failed login")
    assert stays(lambda: mailbox.login_failures() == 1, seconds=3), "the login was retried"
    assert watching.latest().state == "login failed"


def test_a_failing_store_does_not_advance_the_watermark_and_the_mail_comes_again(
    mailbox: Mailbox, watch: Watch
) -> None:
    raw, message_id = lead_mail()
    uid = mailbox.append(raw)
    sink = MemorySink(fail_first=1)

    watching = watch(mailbox.account("plain"), sink=sink)

    wait_for(lambda: stored(watching, message_id), timeout=10, what="the retry")
    assert sink.events[0] == ("fail", uid)
    assert sink.events.index(("store", uid)) < sink.events.index(("mark", uid))
    problem = watching.seen("reconnecting")
    assert problem is not None
    assert "database is down" in problem.detail


def test_stop_ends_run_promptly_while_idling(mailbox: Mailbox, watch: Watch) -> None:
    watching = watch(mailbox.account("ssl"))
    wait_for(lambda: watching.seen("idle"), timeout=10, what="the watcher to idle")

    assert watching.finish(timeout=5), "run() did not return after stop.set()"
    assert watching.latest().state == "stopped"


@pytest.mark.parametrize("hang_at", ["greeting", "login"])
def test_stop_ends_run_even_when_the_server_hangs_mid_command(hang_at: str) -> None:
    """A server that stops answering: the read timeout is a minute, a stop must not be."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    asked_to_login = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        conn.sendall(b"* OK ready\r\n")
        if hang_at == "greeting":
            return  # imaplib asks for CAPABILITY next and waits for the answer
        with conn.makefile("rb") as lines:
            for line in lines:
                tag, _, command = line.decode().partition(" ")
                if command.upper().startswith("CAPABILITY"):
                    conn.sendall(f"* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n".encode())
                elif command.upper().startswith("LOGIN"):
                    asked_to_login.set()  # and never answer

    threading.Thread(target=serve, daemon=True).start()
    account = ImapAccount("127.0.0.1", port, "u", Secret("p"), security="plain")
    health: list[Any] = []
    stop = threading.Event()
    watcher = MailboxWatcher(account, MemorySink(), health.append, stop)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: accepted, what="the watcher to connect")
        if hang_at == "login":
            wait_for(asked_to_login.is_set, what="the LOGIN command")
        stop.set()
        thread.join(5)
        assert not thread.is_alive(), "run() waited for a timeout instead of stopping"
        assert health[-1].state == "stopped"
    finally:
        stop.set()
        listener.close()
        for conn in accepted:
            conn.close()


def test_doctor_checks_a_working_mailbox(mailbox: Mailbox) -> None:
    mailbox.append(lead_mail()[0])
    mailbox.append(lead_mail("buyleads@tradeindia.com")[0])
    mailbox.append(lead_mail("news@example.org")[0])

    checks = check(mailbox.account("ssl"))

    assert [c.name for c in checks] == ["connect", "login", "capabilities", "folder", "lead mail"]
    assert all(c.ok for c in checks), checks
    assert "IDLE: yes" in checks[2].detail
    assert checks[-1].detail.startswith("2 mails from indiamart.com, tradeindia.com")


def test_doctor_says_what_to_fix(mailbox: Mailbox) -> None:
    wrong = "wrong-password-77"
    login = check(mailbox.account("plain", password=Secret(wrong)))[-1]
    assert (login.name, login.ok) == ("login", False)
    assert "LEADTUI_IMAP_PASSWORD" in login.fix
    assert wrong not in repr(login)

    folder = check(mailbox.account("plain", folder="Leads"))[-1]
    assert (folder.name, folder.ok) == ("folder", False)
    assert "LEADTUI_IMAP_FOLDER" in folder.fix
    assert "INBOX" in folder.fix

    untrusted = check(mailbox.account("ssl", ca_file=""))[-1]
    assert (untrusted.name, untrusted.ok) == ("connect", False)
    assert "LEADTUI_IMAP_CA_FILE" in untrusted.detail
