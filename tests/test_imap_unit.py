"""The mailbox watcher against a fake IMAP client: paths Dovecot cannot show.

Gmail's X-GM-RAW search, a connection that dies the way imapclient hides it, the backoff,
XOAUTH2 token refresh (against a real HTTP server on loopback) and secrets in messages.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from dovecot_fixtures import MemorySink, Watching, lead_mail
from helpers import wait_for
from imapclient.exceptions import LoginError

from leadtui import config
from leadtui.config import Secret
from leadtui.imap import (
    IDLE_TICK,
    Backoff,
    ImapAccount,
    OAuthError,
    TokenSource,
    Watermark,
)

Watch = Callable[..., Watching]
LEAD = "buyershelp+enq@indiamart.com"


# --------------------------------------------------------------------------- a fake server


@dataclass
class Mail:
    sender: str
    raw: bytes
    day: date


class FakeMailbox:
    """The server side: mail, capabilities, and a record of what clients asked."""

    def __init__(self, *capabilities: bytes, uidvalidity: int = 7) -> None:
        self.capabilities = capabilities or (b"IMAP4REV1", b"IDLE")
        self.uidvalidity = uidvalidity
        self.cond = threading.Condition()
        self.mails: dict[int, Mail] = {}
        self.next_uid = 1
        self.clients: list[FakeClient] = []
        self.searches: list[list[Any]] = []
        self.fetched: list[int] = []
        self.logins: list[tuple[str, str]] = []
        self.noops = 0
        self.accept: Callable[[str, str], bool] = lambda user, secret: True
        self.login_error = "[AUTHENTICATIONFAILED] Authentication failed."
        # a script for idle_check; returning None means "behave like a live server"
        self.idle_check: Callable[[FakeClient, float], list[tuple[Any, ...]] | None] | None = None
        self.after_search: Callable[[FakeClient, list[Any]], None] | None = None
        self.used_after_shutdown = False

    def add(self, sender: str = LEAD, day: date | None = None) -> tuple[int, str]:
        raw, message_id = lead_mail(sender)
        with self.cond:
            uid = self.next_uid
            self.next_uid += 1
            self.mails[uid] = Mail(sender, raw, day or date.today())
            self.cond.notify_all()
        return uid, message_id

    def connect(self, account: ImapAccount) -> FakeClient:
        client = FakeClient(self)
        self.clients.append(client)
        return client

    def filtered_searches(self) -> list[list[Any]]:
        return [c for c in self.searches if any(t in ("FROM", "X-GM-RAW") for t in c)]


class FakeClient:
    """Just enough of IMAPClient, with IMAP's quirks (``UID n:*`` includes the highest UID)."""

    def __init__(self, box: FakeMailbox) -> None:
        self.box = box
        self.closed = False
        self.idle_checks = 0
        self._seen = 0
        self._imap = SimpleNamespace(untagged_responses={})

    def _use(self) -> None:
        if self.closed:
            self.box.used_after_shutdown = True

    def socket(self) -> None:
        return None

    def capabilities(self) -> tuple[bytes, ...]:
        self._use()
        return self.box.capabilities

    def login(self, user: str, password: str) -> bytes:
        return self._login(user, password)

    def oauth2_login(self, user: str, token: str) -> bytes:
        return self._login(user, token)

    def _login(self, user: str, secret: str) -> bytes:
        self._use()
        self.box.logins.append((user, secret))
        if not self.box.accept(user, secret):
            raise LoginError(repr(self.box.login_error.encode()))
        return b"Logged in"

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
        self._use()
        assert readonly, "the watcher must select read-only"
        with self.box.cond:
            return {
                b"UIDVALIDITY": self.box.uidvalidity,
                b"UIDNEXT": self.box.next_uid,
                b"EXISTS": len(self.box.mails),
            }

    def search(self, criteria: list[Any]) -> list[int]:
        self._use()
        self.box.searches.append(list(criteria))
        with self.box.cond:
            match = _predicate(list(criteria), self.box)
            found = [uid for uid, mail in sorted(self.box.mails.items()) if match(uid, mail)]
        if self.box.after_search:
            self.box.after_search(self, list(criteria))
        return found

    def fetch(self, uids: list[int], data: list[str]) -> dict[int, dict[bytes, Any]]:
        self._use()
        assert data == ["BODY.PEEK[]"], "only BODY.PEEK[] keeps mail unread"
        self.box.fetched += uids
        with self.box.cond:
            return {u: {b"BODY[]": self.box.mails[u].raw} for u in uids if u in self.box.mails}

    def idle(self) -> None:
        self._use()
        assert b"IDLE" in self.box.capabilities
        with self.box.cond:
            self._seen = len(self.box.mails)

    def idle_check(self, timeout: float) -> list[tuple[Any, ...]]:
        self._use()
        self.idle_checks += 1
        if self.box.idle_check is not None:
            scripted = self.box.idle_check(self, timeout)
            if scripted is not None:
                return scripted
        with self.box.cond:
            self.box.cond.wait_for(lambda: len(self.box.mails) > self._seen, timeout)
            if len(self.box.mails) > self._seen:
                return [(len(self.box.mails), b"EXISTS")]
        return []

    def idle_done(self) -> tuple[bytes, list[Any]]:
        self._use()
        return b"Idle completed", []

    def noop(self) -> tuple[bytes, list[Any]]:
        self._use()
        self.box.noops += 1
        return b"NOOP completed", []

    def shutdown(self) -> None:
        self.closed = True

    def logout(self) -> None:
        self.closed = True


def _predicate(tokens: list[Any], box: FakeMailbox) -> Callable[[int, Mail], bool]:
    items = iter(tokens)
    top = max(box.mails, default=0)

    def uid_set(spec: str) -> Callable[[int, Mail], bool]:
        ends = [top if part == "*" else int(part) for part in spec.split(":")]
        lo, hi = min(ends), max(ends)
        return lambda uid, mail: lo <= uid <= hi

    def key() -> Callable[[int, Mail], bool]:
        token = next(items)
        if isinstance(token, list):
            return _predicate(token, box)
        word = str(token).upper()
        if word == "UID":
            return uid_set(str(next(items)))
        if word == "SINCE":
            since = next(items)
            return lambda uid, mail: mail.day >= since
        if word == "FROM":
            needle = str(next(items)).lower()
            return lambda uid, mail: needle in mail.sender.lower()
        if word == "OR":
            a, b = key(), key()
            return lambda uid, mail: a(uid, mail) or b(uid, mail)
        if word == "X-GM-RAW":
            assert b"X-GM-EXT-1" in box.capabilities, "X-GM-RAW sent to a non-Gmail server"
            terms = [t.strip() for t in str(next(items)).split(" OR ")]
            assert all(t.startswith("from:") for t in terms), terms
            domains = [t[5:] for t in terms]
            return lambda uid, mail: any(d in mail.sender for d in domains)
        raise AssertionError(f"unexpected search key {token!r}")

    keys = []
    while True:
        try:
            keys.append(key())
        except StopIteration:
            break
    return lambda uid, mail: all(k(uid, mail) for k in keys)


def account(**changes: Any) -> ImapAccount:
    values: dict[str, Any] = {
        "host": "imap.example.in",
        "port": 993,
        "user": "sales@example.in",
        "password": Secret("app-password-1234"),
    }
    values.update(changes)
    return ImapAccount(**values)


def quiet(client: FakeClient, timeout: float) -> list[tuple[Any, ...]]:
    """An idle_check on a live connection where nothing happens: [] after the timeout."""
    threading.Event().wait(timeout)
    return []


def slow_backoff() -> Backoff:
    """Waits 30 s after any failure: the test sees exactly one failure."""
    return Backoff(base=30, cap=30, rng=lambda: 1.0)


# --------------------------------------------------------------------------- searching


def test_gmail_is_searched_with_x_gm_raw(watch: Watch) -> None:
    box = FakeMailbox(b"IMAP4REV1", b"IDLE", b"X-GM-EXT-1")
    _, indiamart = box.add(LEAD)
    _, tradeindia = box.add("buyleads@tradeindia.com")
    other_uid, _ = box.add("offers@shop.example.com")

    watching = watch(account(), connect=box.connect)
    wait_for(lambda: watching.seen("idle"), what="the backfill")
    _, later = box.add(LEAD)
    wait_for(lambda: later in watching.sink.message_ids(), what="the new mail")

    assert watching.sink.message_ids() == [indiamart, tradeindia, later]
    assert other_uid not in box.fetched, "non-lead mail was fetched"
    for criteria in box.filtered_searches():
        assert criteria[-2:] == ["X-GM-RAW", "from:indiamart.com OR from:tradeindia.com"]
        assert "FROM" not in criteria


def test_other_servers_are_searched_with_from_per_sender(watch: Watch) -> None:
    box = FakeMailbox()
    box.add("enquiry@exportersindia.com")
    box.add("offers@shop.example.com")
    senders = ("indiamart.com", "tradeindia.com", "exportersindia.com")

    watching = watch(account(senders=senders), connect=box.connect)

    wait_for(lambda: len(watching.sink.stored) == 1, what="the backfill")
    wait_for(lambda: watching.seen("idle"), what="idle")
    assert box.fetched == [1]
    expected = ["OR", "FROM", "indiamart.com", "OR", "FROM", "tradeindia.com"]
    expected += ["FROM", "exportersindia.com"]
    for criteria in box.filtered_searches():
        assert criteria[-len(expected) :] == expected


def test_the_first_run_reads_only_the_backfill_window(watch: Watch) -> None:
    box = FakeMailbox()
    box.add(LEAD, day=date.today() - timedelta(days=40))
    _, recent = box.add(LEAD, day=date.today() - timedelta(days=2))

    watching = watch(account(backfill_days=7), connect=box.connect)

    wait_for(lambda: watching.seen("idle"), what="the backfill")
    assert watching.sink.message_ids() == [recent]
    assert watching.sink.watermark() == Watermark(7, 2)


def test_new_mail_announced_during_a_catch_up_search_is_not_left_for_the_re_idle(
    watch: Watch,
) -> None:
    """A mail that arrives while SEARCH runs is announced with the SEARCH reply, not in IDLE."""
    box = FakeMailbox()
    box.add(LEAD)
    arrived: list[str] = []

    def arrive_during(client: FakeClient, criteria: list[Any]) -> None:
        if not arrived and criteria == ["UID", "2:*"]:
            arrived.append(box.add(LEAD)[1])
            client._imap.untagged_responses["EXISTS"] = [b"2"]

    box.after_search = arrive_during
    box.idle_check = quiet  # IDLE never reports it: it was announced with the SEARCH reply

    watching = watch(account(), connect=box.connect)

    wait_for(lambda: arrived and arrived[0] in watching.sink.message_ids(), timeout=3)


# --------------------------------------------------------------------------- dead connections


def test_an_early_empty_idle_check_means_the_connection_is_dead(watch: Watch) -> None:
    box = FakeMailbox()
    box.idle_check = lambda client, timeout: []  # imapclient on a closed socket: [] at once

    watching = watch(account(), connect=box.connect, backoff=slow_backoff())

    problem = wait_for(lambda: watching.seen("reconnecting"), what="the dead connection")
    assert "closed the connection" in problem.detail
    assert problem.next_retry_at is not None
    first = box.clients[0]
    assert first.idle_checks == 1, "the watcher spun on a dead connection"
    assert first.closed


def test_bye_during_idle_means_the_connection_is_dead(watch: Watch) -> None:
    box = FakeMailbox()
    box.idle_check = lambda client, timeout: [(b"BYE", b"Server", b"shutting", b"down.")]

    watching = watch(account(), connect=box.connect, backoff=slow_backoff())

    problem = wait_for(lambda: watching.seen("reconnecting"), what="the BYE")
    assert "Server shutting down." in problem.detail
    assert box.clients[0].closed


def test_a_quiet_idle_is_not_mistaken_for_a_dead_connection(watch: Watch) -> None:
    box = FakeMailbox()
    watching = watch(account(), connect=box.connect)

    wait_for(lambda: box.clients and box.clients[0].idle_checks >= 3, timeout=5 + 3 * IDLE_TICK)

    assert len(box.clients) == 1
    assert watching.latest().state == "idle"


def test_after_a_dead_connection_the_watcher_reconnects_with_a_new_client(watch: Watch) -> None:
    box = FakeMailbox()
    box.idle_check = lambda client, timeout: [] if client is box.clients[0] else None
    watching = watch(account(), connect=box.connect, backoff=Backoff(rng=lambda: 0.0))

    wait_for(lambda: len(box.clients) >= 2 and watching.latest().state == "idle")
    _, message_id = box.add(LEAD)
    wait_for(lambda: message_id in watching.sink.message_ids(), what="mail after reconnecting")
    assert not box.used_after_shutdown, "a client was used again after an error"


def test_a_server_without_idle_is_polled(watch: Watch) -> None:
    box = FakeMailbox(b"IMAP4REV1")
    watching = watch(account(poll_seconds=1), connect=box.connect)

    polling = wait_for(lambda: watching.seen("polling"), what="polling")
    assert "no IDLE" in polling.detail
    _, message_id = box.add(LEAD)
    wait_for(lambda: message_id in watching.sink.message_ids(), what="the next poll")
    assert box.noops >= 1


# --------------------------------------------------------------------------- backoff


def test_backoff_delays_are_full_jitter_within_doubling_bounds() -> None:
    rng = iter([0.0, 1.0, 0.5] * 10)
    backoff = Backoff(base=1, cap=60, rng=lambda: next(rng))
    delays = [backoff.next_delay() for _ in range(9)]
    ceilings = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert 0 <= delay <= ceiling
    assert delays[1] == 2  # rng 1.0 reaches the ceiling
    assert delays[7] == 60  # and the ceiling stops at the cap

    top = Backoff(rng=lambda: 1.0)
    assert [top.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_backoff_starts_again_after_a_minute_of_health() -> None:
    now = [0.0]
    backoff = Backoff(rng=lambda: 1.0, clock=lambda: now[0])
    assert [backoff.next_delay() for _ in range(4)] == [1, 2, 4, 8]

    backoff.healthy()
    now[0] += 30
    assert backoff.next_delay() == 16, "30 s of health is not enough to reset"

    backoff.healthy()
    now[0] += 61
    assert backoff.next_delay() == 1


# --------------------------------------------------------------------------- XOAUTH2


class TokenEndpoint:
    """A real HTTP token endpoint on loopback; answers from a script of (status, body)."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        self.forms: list[dict[str, str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                endpoint.forms.append({k: v[0] for k, v in form.items()})
                index = min(len(endpoint.forms), len(endpoint.answers)) - 1
                status, body = endpoint.answers[index]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TokenEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def oauth_account(url: str, **changes: Any) -> ImapAccount:
    return account(
        password=Secret(""),
        oauth_client_id="client-id.apps.example",
        oauth_client_secret=Secret("client-secret-XYZ"),
        oauth_refresh_token=Secret("refresh-token-XYZ"),
        oauth_token_url=url,
        **changes,
    )


def test_access_token_is_refreshed_before_it_expires() -> None:
    now = [1000.0]
    answers = [(200, {"access_token": f"access-{i}", "expires_in": 600}) for i in (1, 2)]
    with TokenEndpoint(answers) as endpoint:
        tokens = TokenSource(
            endpoint.url,
            "client-id",
            Secret("client-secret"),
            Secret("refresh-token"),
            timeout=5,
            clock=lambda: now[0],
        )
        assert tokens.access_token() == "access-1"
        now[0] += 250
        assert tokens.access_token() == "access-1", "a fresh token was refreshed again"
        now[0] += 60  # within five minutes of expiry
        assert tokens.access_token() == "access-2"

    assert endpoint.forms[0] == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-token",
        "client_id": "client-id",
        "client_secret": "client-secret",
    }
    assert len(endpoint.forms) == 2


def test_a_refused_access_token_is_refreshed_once_and_retried(watch: Watch) -> None:
    box = FakeMailbox()
    _, message_id = box.add(LEAD)
    box.accept = lambda user, token: token == "access-2"
    answers = [(200, {"access_token": f"access-{i}", "expires_in": 3600}) for i in (1, 2)]
    with TokenEndpoint(answers) as endpoint:
        watching = watch(oauth_account(endpoint.url), connect=box.connect)
        wait_for(lambda: message_id in watching.sink.message_ids(), what="the mail")

    assert box.logins == [("sales@example.in", "access-1"), ("sales@example.in", "access-2")]
    assert len(endpoint.forms) == 2
    assert "login failed" not in watching.states()


def test_a_token_refused_twice_is_login_failed_not_a_loop(watch: Watch) -> None:
    box = FakeMailbox()
    box.accept = lambda user, token: False
    answers = [(200, {"access_token": f"access-{i}", "expires_in": 3600}) for i in (1, 2, 3)]
    with TokenEndpoint(answers) as endpoint:
        watching = watch(oauth_account(endpoint.url), connect=box.connect)
        failed = wait_for(lambda: watching.seen("login failed"), what="login failed")

    assert "LEADTUI_IMAP_OAUTH" in failed.detail
    assert len(box.logins) == 2
    assert len(endpoint.forms) == 2


def test_a_revoked_refresh_token_is_login_failed(watch: Watch) -> None:
    box = FakeMailbox()
    revoked = (400, {"error": "invalid_grant", "error_description": "Token has been revoked."})
    with TokenEndpoint([revoked]) as endpoint:
        watching = watch(oauth_account(endpoint.url), connect=box.connect)
        failed = wait_for(lambda: watching.seen("login failed"), what="login failed")

    assert "LEADTUI_IMAP_OAUTH_REFRESH_TOKEN" in failed.detail
    assert "invalid_grant" in (failed.last_error or "")
    assert box.logins == []
    assert len(endpoint.forms) == 1


def test_a_token_endpoint_that_does_not_answer_times_out_as_a_passing_problem() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/token"
        tokens = TokenSource(url, "id", Secret("s"), Secret("r"), timeout=0.3)
        with pytest.raises(OAuthError) as caught:
            tokens.access_token()
        assert not caught.value.rejected
        assert "cannot reach" in str(caught.value)
    finally:
        silent.close()


def test_the_token_url_must_be_https_unless_it_is_loopback() -> None:
    tokens = TokenSource("http://tokens.example.com/token", "id", Secret("s"), Secret("r"))
    with pytest.raises(OAuthError) as caught:
        tokens.access_token()
    assert caught.value.rejected
    assert "https" in str(caught.value)


# --------------------------------------------------------------------------- secrets and auth


def test_a_refused_password_is_reported_once_with_what_to_fix(watch: Watch) -> None:
    box = FakeMailbox()
    box.accept = lambda user, secret: False

    watching = watch(account(), connect=box.connect)

    failed = wait_for(lambda: watching.seen("login failed"), what="login failed")
    assert failed.detail == (
        "imap.example.in refused the login for sales@example.in: check LEADTUI_IMAP_USER and "
        "LEADTUI_IMAP_PASSWORD (for Gmail, use an app password)"
    )
    assert "AUTHENTICATIONFAILED" in (failed.last_error or "")
    assert len(box.logins) == 1


def test_a_temporary_login_refusal_is_retried_not_reported_as_wrong_credentials(
    watch: Watch,
) -> None:
    box = FakeMailbox()
    box.accept = lambda user, secret: False
    box.login_error = "[UNAVAILABLE] Temporary authentication failure."

    watching = watch(account(), connect=box.connect, backoff=slow_backoff())

    problem = wait_for(lambda: watching.seen("reconnecting"), what="a retry")
    assert "UNAVAILABLE" in problem.detail
    assert "login failed" not in watching.states()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_no_secret_reaches_health_or_logs(
    watch: Watch, debug_logs: pytest.LogCaptureFixture
) -> None:
    password = "hunter2-S3CRET"
    box = FakeMailbox()
    box.add(LEAD)
    box.accept = lambda user, secret: False
    box.login_error = f"[AUTHENTICATIONFAILED] bad password {password}"  # an echoing server
    refused = watch(account(password=Secret(password)), connect=box.connect)
    wait_for(lambda: refused.seen("login failed"), what="login failed")

    box.accept = lambda user, secret: True
    leaky_db = MemorySink(fail_first=1, error=f"could not connect with password {password}")
    failing = watch(
        account(password=Secret(password)),
        sink=leaky_db,
        connect=box.connect,
        backoff=slow_backoff(),
    )
    wait_for(lambda: failing.seen("reconnecting"), what="the store failure")

    echo = (400, {"error": "invalid_grant", "error_description": "bad refresh-token-XYZ"})
    with TokenEndpoint([echo]) as endpoint:
        oauth = watch(oauth_account(endpoint.url), connect=box.connect)
        wait_for(lambda: oauth.seen("login failed"), what="the OAuth failure")

    secrets = [password, "refresh-token-XYZ", "client-secret-XYZ"]
    shown = [repr(h) for w in (refused, failing, oauth) for h in w.health]
    shown += [debug_logs.text, repr(account(password=Secret(password)))]
    shown += [repr(oauth_account(endpoint.url))]
    for text in shown:
        for secret in secrets:
            assert secret not in text
    assert "********" in " ".join(shown), "the echoed secrets should show as redacted"


def test_account_from_settings() -> None:
    settings = config.Settings(
        imap_host="imap.gmail.com",
        imap_user="sales@example.in",
        imap_password=Secret("abcd efgh ijkl mnop"),
        imap_folder="IndiaMART",
    )

    got = ImapAccount.from_settings(settings)

    assert (got.host, got.port, got.security, got.folder) == (
        "imap.gmail.com",
        993,
        "ssl",
        "IndiaMART",
    )
    assert got.senders == ("indiamart.com", "tradeindia.com")
    assert got.password.reveal() == "abcd efgh ijkl mnop"
    assert not got.uses_oauth
    assert got.key == "imap:sales@example.in@imap.gmail.com/IndiaMART"
