"""The mailbox watcher: IDLE on one IMAP folder and hand every lead email to the pipeline.

One :class:`MailboxWatcher` watches one account and folder from its own thread. It logs in
(password, Gmail app password or XOAUTH2), selects the folder read-only, stores every lead
email above its watermark (UIDVALIDITY + last UID, advanced only after the sink has
committed the mail), then waits in IDLE (or polls, when the server has no IDLE) and repeats
on every new-mail notification. Only mail from the configured lead senders is fetched,
filtered by the server; mail is read with ``BODY.PEEK[]`` so it is never marked read.

Any error drops the connection (never reused), backs off with full jitter and reconnects;
a refused login waits a long time instead of hammering the server. :func:`check` is the
same connection path, step by step, for ``leadtui doctor``.

The imapclient pitfalls this works around are measured in IMAP_NOTES.md: ``idle_check``
returns ``[]`` at once, forever, on a closed connection; a read without a timeout can hang.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import ssl
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import (
    CapabilityError,
    IMAPClientAbortError,
    IMAPClientError,
    LoginError,
)

from leadtui import config
from leadtui.config import Check, Secret

log = logging.getLogger(__name__)

DEFAULT_SENDERS: tuple[str, ...] = ("indiamart.com", "tradeindia.com")
NO_SECRET = Secret("")
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret

CONNECT_TIMEOUT = 15.0  # seconds to connect (TCP + TLS + greeting)
READ_TIMEOUT = 60.0  # seconds any command may take
FETCH_BATCH = 50  # UIDs per FETCH, so a big backfill is never loaded at once
IDLE_TICK = 0.5  # idle_check timeout: how quickly a stop is noticed while idling
REIDLE_SECONDS = 9 * 60.0  # leave and re-enter IDLE at least this often (RFC 2177: < 29 min)
SETTLE_SECONDS = 1.0  # after new mail, leave IDLE this soon once to look again (see _idle)
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
BACKOFF_RESET_AFTER = 60.0  # a session this long resets the backoff
LOGIN_RETRY_SECONDS = 15 * 60.0  # after a refused login, wait this long before one retry
TOKEN_REFRESH_MARGIN = 300.0  # refresh an OAuth access token this long before it expires
DOCTOR_DAYS = 7

# Login refusals that are about the server, not the credentials: back off and retry.
_TRANSIENT_LOGIN = ("UNAVAILABLE", "THROTTLED", "LIMIT", "INUSE", "SERVERBUG", "TOO MANY")


# --------------------------------------------------------------------------- the contract


@dataclass(frozen=True)
class Watermark:
    """How far a folder has been read: every lead mail with ``uid <= last_uid`` is stored."""

    uidvalidity: int
    last_uid: int


class MailSink(Protocol):
    """Where the watcher puts mail (the capture pipeline)."""

    def load_watermark(self, key: str) -> Watermark | None: ...

    def store_mail(self, key: str, uid: int, raw: bytes) -> None:
        """Commit the raw mail (and its lead); durable when it returns, raises on failure."""

    def save_watermark(self, key: str, mark: Watermark) -> None: ...


@dataclass(frozen=True)
class WatcherState:
    """What the watcher is doing, for the status bar and ``leadtui doctor``.

    ``state`` is one of: connecting, catching up, idle, polling, reconnecting,
    login failed, stopped. Times are ``time.time()`` values. Never contains a secret.
    """

    state: str
    detail: str = ""
    next_retry_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class ImapAccount:
    """One mailbox folder to watch. ``security`` is ``ssl``, ``starttls`` or ``plain``."""

    host: str
    port: int
    user: str
    password: Secret = NO_SECRET
    security: str = "ssl"
    folder: str = "INBOX"
    ca_file: str = ""
    senders: tuple[str, ...] = DEFAULT_SENDERS
    backfill_days: int = 7
    poll_seconds: float = 30.0
    oauth_client_id: str = ""
    oauth_client_secret: Secret = NO_SECRET
    oauth_refresh_token: Secret = NO_SECRET
    oauth_token_url: str = GOOGLE_TOKEN_URL

    def __post_init__(self) -> None:
        if self.security not in {"ssl", "starttls", "plain"}:
            raise ValueError(f"security must be ssl, starttls or plain, not {self.security!r}")
        senders = tuple(d.strip().lstrip("@").lower() for d in self.senders if d.strip())
        object.__setattr__(self, "senders", senders or DEFAULT_SENDERS)

    @classmethod
    def from_settings(cls, s: config.Settings) -> ImapAccount:
        return cls(
            host=s.imap_host,
            port=s.imap_effective_port,
            user=s.imap_user,
            password=s.imap_password,
            security=s.imap_security,
            folder=s.imap_folder or "INBOX",
            ca_file=s.imap_ca_file,
            senders=s.imap_senders,
            backfill_days=max(0, s.imap_backfill_days),
            poll_seconds=s.imap_poll_seconds,
            oauth_client_id=s.imap_oauth_client_id,
            oauth_client_secret=s.imap_oauth_client_secret,
            oauth_refresh_token=s.imap_oauth_refresh_token,
            oauth_token_url=s.imap_oauth_token_url or GOOGLE_TOKEN_URL,
        )

    @property
    def uses_oauth(self) -> bool:
        return bool(self.oauth_refresh_token)

    @property
    def key(self) -> str:
        """The watermark key: one per account and folder."""
        return f"imap:{self.user}@{self.host}/{self.folder}"


# --------------------------------------------------------------------------- errors


class _Expected(Exception):
    """A failure the watcher understands; its message is the whole story."""


class _ConnectionDead(_Expected):
    """The server closed the connection or stopped answering."""


class _AuthFailed(_Expected):
    """The credentials were refused: retrying soon will not help."""

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.detail = detail  # what to fix, one line
        self.reason = reason  # what the server (or token endpoint) said


class _CaFileError(_Expected):
    """LEADTUI_IMAP_CA_FILE names a file that cannot be read as certificates."""


class _StoreFailed(_Expected):
    def __init__(self, uid: int, cause: BaseException) -> None:
        super().__init__(f"saving mail UID {uid} failed: {_one_line(cause)}")


class _FolderMissing(_Expected):
    pass


class OAuthError(_Expected):
    """The token endpoint did not give an access token. ``rejected``: the grant itself is bad."""

    def __init__(self, message: str, *, rejected: bool) -> None:
        super().__init__(message)
        self.rejected = rejected


# --------------------------------------------------------------------------- backoff


class Backoff:
    """Full-jitter exponential backoff: ``uniform(0, min(cap, base * 2**n))``.

    Call :meth:`healthy` when a session is working; a failure after ``reset_after``
    seconds of health starts again from ``base``.
    """

    def __init__(
        self,
        base: float = BACKOFF_BASE,
        cap: float = BACKOFF_CAP,
        reset_after: float = BACKOFF_RESET_AFTER,
        *,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base, self.cap, self.reset_after = base, cap, reset_after
        self._rng, self._clock = rng, clock
        self.attempts = 0
        self._healthy_since: float | None = None

    def healthy(self) -> None:
        if self._healthy_since is None:
            self._healthy_since = self._clock()

    def next_delay(self) -> float:
        if (
            self._healthy_since is not None
            and self._clock() - self._healthy_since >= self.reset_after
        ):
            self.attempts = 0
        self._healthy_since = None
        ceiling = min(self.cap, self.base * 2.0 ** min(self.attempts, 30))
        self.attempts += 1
        return self._rng() * ceiling

    def reset(self) -> None:
        self.attempts = 0
        self._healthy_since = None


# --------------------------------------------------------------------------- XOAUTH2


class TokenSource:
    """Exchanges the refresh token for short-lived access tokens and caches them."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: Secret,
        refresh_token: Secret,
        *,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
        url_setting: str = "LEADTUI_IMAP_OAUTH_TOKEN_URL",
    ) -> None:
        self.url = url
        self.url_setting = url_setting  # named when the URL is unusable
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._timeout = timeout
        self._clock = clock
        self._token: Secret | None = None
        self._expires_at = 0.0
        self.refreshes = 0

    @classmethod
    def for_account(cls, account: ImapAccount, timeout: float = 15.0) -> TokenSource:
        return cls(
            account.oauth_token_url,
            account.oauth_client_id,
            account.oauth_client_secret,
            account.oauth_refresh_token,
            timeout=timeout,
        )

    def access_token(self) -> str:
        """A valid access token, refreshed when it is missing or about to expire."""
        if self._token is None or self._clock() >= self._expires_at - TOKEN_REFRESH_MARGIN:
            self._refresh()
        assert self._token is not None
        return self._token.reveal()

    def invalidate(self) -> None:
        """Forget the cached token (the server refused it): the next call refreshes."""
        self._token = None

    def secrets(self) -> list[str]:
        values = [self._refresh_token.reveal(), self._client_secret.reveal()]
        if self._token is not None:
            values.append(self._token.reveal())
        return [v for v in values if v]

    def _refresh(self) -> None:
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme != "https" and not (
            parsed.scheme == "http" and config.is_loopback_host(parsed.hostname or "")
        ):
            raise OAuthError(
                f"the OAuth token URL must be https:// (got {parsed.scheme or 'no'} scheme); "
                f"check {self.url_setting}",
                rejected=True,
            )
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token.reveal()}
        if self._client_id:
            form["client_id"] = self._client_id
        if self._client_secret:
            form["client_secret"] = self._client_secret.reveal()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            self.url,
            data=urllib.parse.urlencode(form).encode("ascii"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                payload = json.loads(response.read(1_000_000))
        except urllib.error.HTTPError as exc:
            reason = _oauth_error_text(exc)
            if exc.code in (400, 401, 403):
                raise OAuthError(
                    f"the token endpoint rejected the refresh token ({reason})", rejected=True
                ) from None
            raise OAuthError(
                f"the token endpoint answered HTTP {exc.code} ({reason})", rejected=False
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", None) or exc
            raise OAuthError(
                f"cannot reach the token endpoint {parsed.hostname}: {why}", rejected=False
            ) from None
        except ValueError:
            raise OAuthError("the token endpoint did not answer JSON", rejected=False) from None
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise OAuthError("the token endpoint gave no access_token", rejected=False)
        try:
            lifetime = float(payload.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        self._token = Secret(token)
        self._expires_at = self._clock() + lifetime
        self.refreshes += 1
        log.debug("OAuth access token refreshed; valid for %.0f s", lifetime)


def _oauth_error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(10_000) or b"{}")
    except (ValueError, OSError):
        body = {}
    if isinstance(body, dict) and body.get("error"):
        text = str(body["error"])
        if body.get("error_description"):
            text += f": {body['error_description']}"
        return text[:200]
    return f"HTTP {exc.code}"


# --------------------------------------------------------------------------- connecting


def _ssl_context(account: ImapAccount) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=account.ca_file or None)
    except OSError as exc:  # ssl.SSLError too: the file holds no certificate
        if not account.ca_file:
            raise
        reason = exc.reason if isinstance(exc, ssl.SSLError) else exc.strerror
        raise _CaFileError(
            f"cannot use the CA file {account.ca_file} (LEADTUI_IMAP_CA_FILE): {reason or exc}"
        ) from None


def connect(account: ImapAccount, timeout: float = READ_TIMEOUT) -> Any:
    """An IMAPClient connected (implicit TLS, STARTTLS or plain) but not logged in."""
    timeouts = SocketTimeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout)
    if account.security == "ssl":
        return IMAPClient(
            account.host,
            port=account.port,
            ssl=True,
            ssl_context=_ssl_context(account),
            timeout=timeouts,
        )
    client = IMAPClient(account.host, port=account.port, ssl=False, timeout=timeouts)
    if account.security == "starttls":
        try:
            client.starttls(_ssl_context(account))
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
    return client


def _set_keepalive(sock: socket.socket) -> None:
    """Let the kernel notice a connection that died silently (NAT timeout, cable pulled)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


def _login(client: Any, account: ImapAccount, tokens: TokenSource | None) -> None:
    if tokens is not None:
        client.oauth2_login(account.user, tokens.access_token())
    else:
        client.login(account.user, account.password.reveal())


def _login_fix(account: ImapAccount, reason: str) -> str:
    if "PRIVACYREQUIRED" in reason.upper() or "PLAINTEXT" in reason.upper():
        return (
            f"{account.host} refuses a password over an unencrypted connection: "
            "set LEADTUI_IMAP_SECURITY to ssl or starttls"
        )
    if account.uses_oauth:
        return (
            f"{account.host} refused the OAuth login for {account.user}: check LEADTUI_IMAP_USER "
            "and the LEADTUI_IMAP_OAUTH_* settings (the refresh token may be revoked)"
        )
    return (
        f"{account.host} refused the login for {account.user}: check LEADTUI_IMAP_USER and "
        "LEADTUI_IMAP_PASSWORD (for Gmail, use an app password)"
    )


def _transient_login(reason: str) -> bool:
    upper = reason.upper()
    return any(word in upper for word in _TRANSIENT_LOGIN)


def _server_text(exc: BaseException) -> str:
    """imapclient puts the server's reply in the message, sometimes as a bytes repr."""
    text = str(exc)
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        text = text[2:-1]
    return text


def _one_line(exc: BaseException) -> str:
    text = _server_text(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def describe_error(exc: BaseException, account: ImapAccount) -> str:
    """One line saying what went wrong, in the user's terms (may still need redaction)."""
    where = f"{account.host}:{account.port}"
    if isinstance(exc, _AuthFailed):
        return exc.detail
    if isinstance(exc, _Expected):
        return _one_line(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the TLS certificate of {account.host} is not trusted ({exc.verify_message}); "
            "for a self-signed server set LEADTUI_IMAP_CA_FILE"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed: {exc.reason or _one_line(exc)}"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {where}: connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot find the server {account.host}: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer in time"
    if isinstance(exc, CapabilityError) and "STARTTLS" in str(exc).upper():
        return f"{where} does not offer STARTTLS: set LEADTUI_IMAP_SECURITY to ssl"
    if isinstance(exc, IMAPClientAbortError):
        return f"connection to {where} lost: {_one_line(exc)}"
    if isinstance(exc, IMAPClientError):
        return f"{where} said: {_one_line(exc)}"
    if isinstance(exc, OSError):
        return f"network error with {where}: {exc.strerror or _one_line(exc)}"
    return f"{type(exc).__name__}: {_one_line(exc)}"


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``********``, also as a URL or a
    form body carries it (an OAuth endpoint that echoes its request shows the refresh token
    ``1//0g…`` as ``1%2F%2F0g…``)."""
    forms = {
        form
        for value in secrets
        if value
        for form in (
            value,
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value),
            urllib.parse.quote(value),
        )
    }
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "********")
    return text


# --------------------------------------------------------------------------- searching


def _lead_criteria(senders: Sequence[str], gmail: bool) -> list[Any]:
    """Server-side filter for mail from the lead senders (OR of FROM, or one X-GM-RAW)."""
    if gmail:
        return ["X-GM-RAW", " OR ".join(f"from:{domain}" for domain in senders)]
    terms: list[Any] = []
    for i, domain in enumerate(senders):
        if i < len(senders) - 1:
            terms.append("OR")
        terms += ["FROM", domain]
    return terms


def _since(days: int) -> date:
    return date.today() - timedelta(days=max(0, days))


def _pending_exists(client: Any) -> bool:
    """Did the server announce new mail (EXISTS) alongside the last command's reply?

    imapclient leaves such unsolicited responses in imaplib's ``untagged_responses`` and
    never looks at them. A mail that arrives while a catch-up SEARCH runs is announced
    there, not during the next IDLE; without this check it would wait for the re-IDLE.
    """
    responses = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(responses, dict):
        return False
    found = bool(responses.pop("EXISTS", None))
    responses.pop("RECENT", None)
    responses.pop("EXPUNGE", None)
    return found


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- the watcher


class MailboxWatcher:
    """Watches one folder and stores every lead mail in ``sink``; run :meth:`run` in a thread.

    ``on_health`` is called from the watcher's thread on every state change (it must be
    thread-safe and quick, e.g. ``App.post_message``). ``run`` returns within about a
    second of ``stop.set()``.
    """

    login_retry_seconds = LOGIN_RETRY_SECONDS

    def __init__(
        self,
        account: ImapAccount,
        sink: MailSink,
        on_health: Callable[[WatcherState], None],
        stop: threading.Event,
        *,
        connect: Callable[[ImapAccount], Any] = connect,
        backoff: Backoff | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self.account = account
        self.key = account.key
        self._sink = sink
        self._on_health = on_health
        self._stop = stop
        self._connect = connect
        self._backoff = backoff or Backoff()
        self._tokens = tokens or (TokenSource.for_account(account) if account.uses_oauth else None)
        self._client: Any = None
        self._fd: int | None = None  # the live socket, for the stop guard; under _lock
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._last_health: WatcherState | None = None
        self._last_success_at: float | None = None
        self._last_error: str | None = None
        self._mark: Watermark | None = None
        self._mark_saved = False
        self._gmail = False

    # ------------------------------------------------------------------ run loop

    def run(self) -> None:
        """Watch until ``stop`` is set. Never raises."""
        guard = threading.Thread(target=self._guard, name=f"{self.key} stop guard", daemon=True)
        guard.start()
        try:
            while not self._stop.is_set():
                try:
                    self._session()
                except _AuthFailed as exc:
                    self._drop()
                    if self._stop.is_set():
                        break
                    wait = self.login_retry_seconds
                    self._last_error = self._clean(exc.reason)
                    log.warning("%s: login failed: %s", self.key, self._clean(exc.detail))
                    self._emit("login failed", exc.detail, next_retry_at=time.time() + wait)
                    self._backoff.reset()
                    self._stop.wait(wait)
                except Exception as exc:  # every error: drop the client, back off, reconnect
                    self._drop()
                    if self._stop.is_set():
                        break
                    delay = self._backoff.next_delay()
                    message = self._clean(describe_error(exc, self.account))
                    self._last_error = message
                    log.warning("%s: %s; reconnecting in %.1f s", self.key, message, delay)
                    if not isinstance(exc, OSError | IMAPClientError | _Expected):
                        trace = "".join(traceback.format_exception(exc))
                        log.debug("%s: unexpected error\n%s", self.key, self._clean(trace))
                    self._emit("reconnecting", message, next_retry_at=time.time() + delay)
                    self._stop.wait(delay)
        except BaseException:  # pragma: no cover - a bug; never let the thread die silently
            log.exception("%s: the mailbox watcher crashed", self.key)
        finally:
            self._drop()
            self._finished.set()
            self._emit("stopped", "")

    def _session(self) -> None:
        """One connection: log in, catch up, then IDLE (or poll) until stop or an error."""
        account = self.account
        self._emit("connecting", f"{account.host}:{account.port} as {account.user}")
        client = self._open()
        capabilities = {bytes(c).upper() for c in client.capabilities()}
        self._gmail = b"X-GM-EXT-1" in capabilities
        can_idle = b"IDLE" in capabilities
        try:
            selected = client.select_folder(account.folder, readonly=True)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            raise _FolderMissing(
                f"cannot open folder {account.folder!r} ({_one_line(exc)}); "
                "set LEADTUI_IMAP_FOLDER (leadtui doctor lists the folders)"
            ) from None
        uidvalidity = int(selected[b"UIDVALIDITY"])
        uidnext = int(selected.get(b"UIDNEXT", 0) or 0)
        self._mark = self._sink.load_watermark(self.key)
        self._mark_saved = True
        if self._mark is None or self._mark.uidvalidity != uidvalidity:
            self._rescan(client, uidvalidity, uidnext)
        settle = self._catch_up(client, announce=True)
        while not self._stop.is_set():
            self._backoff.healthy()
            woke = self._idle(client, settle=settle) if can_idle else self._poll(client)
            if not woke:
                return
            settle = self._catch_up(client)

    def _open(self) -> Any:
        """Connect and log in; with OAuth, a refused token is refreshed and retried once."""
        tokens = self._tokens
        for attempt in (1, 2):
            client = self._attach(self._connect_interruptibly())
            try:
                _login(client, self.account, tokens)
                return client
            except OAuthError as exc:
                if exc.rejected:
                    raise _AuthFailed(
                        "the OAuth refresh token was not accepted: create a new one and set "
                        "LEADTUI_IMAP_OAUTH_REFRESH_TOKEN (and the client id/secret)",
                        str(exc),
                    ) from None
                raise
            except LoginError as exc:
                reason = _server_text(exc)
                if _transient_login(reason):
                    raise
                if tokens is not None and attempt == 1:
                    log.info("%s: OAuth login refused; refreshing the access token", self.key)
                    tokens.invalidate()
                    self._drop()
                    continue
                raise _AuthFailed(_login_fix(self.account, reason), reason) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _rescan(self, client: Any, uidvalidity: int, uidnext: int) -> None:
        """First run, or the server renumbered the folder: read the backfill window again."""
        since = _since(self.account.backfill_days)
        if self._mark is None:
            why = f"reading lead mail since {since:%d %b %Y}"
        else:
            why = f"the folder was renumbered (UIDVALIDITY changed); re-reading since {since:%d %b %Y}"
            log.warning("%s: %s", self.key, why)
        self._emit("catching up", why)
        top = uidnext - 1 if uidnext > 0 else max(client.search(["UID", "*"]) or [0])
        uids = sorted(int(u) for u in self._search(client, ["SINCE", since]))
        self._mark, self._mark_saved = Watermark(uidvalidity, 0), False
        self._deliver(client, uids)
        self._advance(max(top, self._mark.last_uid))

    def _catch_up(self, client: Any, *, announce: bool = False) -> bool:
        """Store every lead mail above the watermark, until the server reports nothing new.

        True when there was new mail (more may be on its way: see ``_idle``'s ``settle``).
        """
        assert self._mark is not None
        _pending_exists(client)
        found = False
        while True:
            last = self._mark.last_uid
            new = [int(u) for u in client.search(["UID", f"{last + 1}:*"]) if int(u) > last]
            if not new:
                if _pending_exists(client):
                    continue  # mail arrived while we searched
                break
            found = True
            top = max(new)
            leads = sorted(
                u
                for u in (int(x) for x in self._search(client, ["UID", f"{last + 1}:{top}"]))
                if last < u <= top
            )
            if announce and leads:
                self._emit("catching up", f"{len(leads)} new lead mails")
            self._deliver(client, leads)
            self._advance(top)  # mail between the leads is not lead mail: skip it for good
            _pending_exists(client)
        self._last_success_at = time.time()
        return found

    def _search(self, client: Any, criteria: list[Any]) -> list[int]:
        found = client.search([*criteria, *_lead_criteria(self.account.senders, self._gmail)])
        return [int(u) for u in found]

    def _deliver(self, client: Any, uids: Sequence[int]) -> None:
        """Fetch in batches and store in UID order; the watermark follows each commit."""
        for batch in _chunks(uids, FETCH_BATCH):
            fetched = client.fetch(list(batch), ["BODY.PEEK[]"])
            for uid in batch:
                raw = fetched.get(uid, {}).get(b"BODY[]")
                if raw is None:
                    log.info("%s: UID %d vanished before it was read", self.key, uid)
                else:
                    try:
                        self._sink.store_mail(self.key, uid, bytes(raw))
                    except Exception as exc:
                        raise _StoreFailed(uid, exc) from exc
                    log.debug("%s: stored UID %d", self.key, uid)
                self._advance(uid)

    def _advance(self, uid: int) -> None:
        """Save the watermark at ``uid`` (only ever after the mail up to it is stored)."""
        assert self._mark is not None
        if uid <= self._mark.last_uid and self._mark_saved:
            return
        mark = Watermark(self._mark.uidvalidity, max(uid, self._mark.last_uid))
        self._sink.save_watermark(self.key, mark)
        self._mark, self._mark_saved = mark, True

    def _idle(self, client: Any, *, settle: bool = False) -> bool:
        """IDLE until new mail (True), the re-IDLE deadline (True) or stop (False).

        ``settle``: new mail just came in. Dovecot never announces during IDLE a mail that
        arrived between our last command and the IDLE (measured: it waits for the next
        change), and mail comes in bursts, so leave this IDLE after SETTLE_SECONDS once
        and look again.
        """
        client.idle()
        self._emit("idle", f"waiting for new mail in {self.account.folder}")
        deadline = time.monotonic() + (SETTLE_SECONDS if settle else REIDLE_SECONDS)
        while not self._stop.is_set():
            started = time.monotonic()
            responses = client.idle_check(timeout=IDLE_TICK)
            if not responses:
                if time.monotonic() - started < IDLE_TICK / 2:
                    # imapclient swallows EOF and returns [] at once: the server has gone.
                    raise _ConnectionDead("the server closed the connection")
                if time.monotonic() >= deadline:
                    break
                continue
            for response in responses:
                if response and response[0] == b"BYE":
                    said = b" ".join(x for x in response[1:] if isinstance(x, bytes))
                    raise _ConnectionDead(
                        "the server closed the connection: " + said.decode("ascii", "replace")
                    )
            if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                break
        if self._stop.is_set():
            return False
        client.idle_done()
        return True

    def _poll(self, client: Any) -> bool:
        """No IDLE on this server: wait ``poll_seconds``, then check (NOOP detects a dead link)."""
        seconds = max(1.0, self.account.poll_seconds)
        self._emit("polling", f"the server has no IDLE; checking every {seconds:g} s")
        if self._stop.wait(seconds):
            return False
        client.noop()
        return True

    # ------------------------------------------------------------------ connection handling

    def _connect_interruptibly(self) -> Any:
        """Connect in a helper thread, so a stop does not wait for the connect timeout.

        Until it returns, the client's socket is out of the stop guard's reach (a black-holed
        host or a server that greets and then hangs would hold us for CONNECT_TIMEOUT). A
        connection that completes after the stop is closed by the helper itself.
        """
        lock = threading.Lock()
        done = threading.Event()
        abandoned = False
        result: list[Any] = []
        failure: list[BaseException] = []

        def work() -> None:
            client = None
            try:
                client = self._connect(self.account)
                result.append(client)
            except BaseException as exc:
                failure.append(exc)
            with lock:
                done.set()
                late = abandoned
            if late and client is not None:
                with contextlib.suppress(Exception):
                    client.shutdown()

        threading.Thread(target=work, name=f"{self.key} connect", daemon=True).start()
        while not done.wait(0.1):
            if self._stop.is_set():
                with lock:
                    if not done.is_set():
                        abandoned = True
                        raise _ConnectionDead("stopped while connecting")
        if failure:
            raise failure[0]
        return result[0]

    def _attach(self, client: Any) -> Any:
        get_socket = getattr(client, "socket", None)
        sock = get_socket() if callable(get_socket) else None
        with self._lock:
            self._client = client
            if isinstance(sock, socket.socket):
                _set_keepalive(sock)
                self._fd = sock.fileno()
        if self._stop.is_set():
            self._interrupt()
        return client

    def _drop(self) -> None:
        """Throw the client away (never reused after an error)."""
        with self._lock:
            client, self._client, self._fd = self._client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()

    def _interrupt(self) -> None:
        """Unblock a read in progress by shutting the socket down (from the guard thread)."""
        with self._lock:
            if self._fd is None:
                return
            with contextlib.suppress(OSError):
                dup = socket.socket(fileno=os.dup(self._fd))
                try:
                    dup.shutdown(socket.SHUT_RDWR)
                finally:
                    dup.close()

    def _guard(self) -> None:
        """Makes stop.set() end a blocking command at once instead of after its timeout."""
        while not self._stop.wait(1.0):
            if self._finished.is_set():
                return
        self._interrupt()

    # ------------------------------------------------------------------ health

    def _secrets(self) -> list[str]:
        values = [self.account.password.reveal()]
        if self._tokens is not None:
            values += self._tokens.secrets()
        return values

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets())

    def _emit(self, state: str, detail: str, *, next_retry_at: float | None = None) -> None:
        health = WatcherState(
            state=state,
            detail=self._clean(detail),
            next_retry_at=next_retry_at,
            last_success_at=self._last_success_at,
            last_error=self._last_error,
        )
        if health == self._last_health:
            return
        self._last_health = health
        log.debug("%s: %s %s", self.key, state, health.detail)
        try:
            self._on_health(health)
        except Exception:
            log.exception("%s: the health callback failed", self.key)


# --------------------------------------------------------------------------- doctor


def check(account: ImapAccount, timeout: float = 15) -> list[Check]:
    """Connect, log in and look at the folder, step by step, for ``leadtui doctor``.

    Stops at the first failing step; every message is free of secrets.
    """
    tokens = TokenSource.for_account(account, timeout) if account.uses_oauth else None
    secrets = [account.password.reveal(), *(tokens.secrets() if tokens else [])]
    checks: list[Check] = []

    def add(name: str, ok: bool, detail: str, fix: str = "") -> None:
        checks.append(Check(name, ok, redact(detail, secrets), redact(fix, secrets)))

    where = f"{account.host}:{account.port}"
    how = {"ssl": "TLS", "starttls": "STARTTLS", "plain": "plain text (unencrypted)"}
    try:
        client = connect(account, timeout)
    except Exception as exc:
        fix = (
            "point LEADTUI_IMAP_CA_FILE at the PEM file of your mail server's CA, or unset it"
            if isinstance(exc, _CaFileError)
            else "check LEADTUI_IMAP_HOST, LEADTUI_IMAP_PORT and LEADTUI_IMAP_SECURITY"
        )
        add("connect", False, describe_error(exc, account), fix)
        return checks
    add("connect", True, f"{where} over {how[account.security]}")
    try:
        try:
            _login(client, account, tokens)
        except OAuthError as exc:
            add("login", False, str(exc), "check the LEADTUI_IMAP_OAUTH_* settings")
            return checks
        except LoginError as exc:
            reason = _server_text(exc)
            add("login", False, f"{where} said: {reason}", _login_fix(account, reason))
            return checks
        add("login", True, f"logged in as {account.user}")

        capabilities = {bytes(c).upper() for c in client.capabilities()}
        idle, gmail = b"IDLE" in capabilities, b"X-GM-EXT-1" in capabilities
        add(
            "capabilities",
            idle,
            f"IDLE: {'yes' if idle else 'no'}; Gmail search (X-GM-EXT-1): {'yes' if gmail else 'no'}",
            ""
            if idle
            else f"the server cannot announce new mail; leadtui checks every "
            f"{account.poll_seconds:g} s (LEADTUI_IMAP_POLL_SECONDS)",
        )

        try:
            client.select_folder(account.folder, readonly=True)
        except IMAPClientError as exc:
            names = [str(f[2]) for f in client.list_folders()][:20]
            add(
                "folder",
                False,
                f"cannot open folder {account.folder!r}: {_one_line(exc)}",
                "set LEADTUI_IMAP_FOLDER to one of: " + ", ".join(names),
            )
            return checks
        add("folder", True, f"{account.folder} is readable")

        since = _since(DOCTOR_DAYS)
        found = client.search(["SINCE", since, *_lead_criteria(account.senders, gmail)])
        senders = ", ".join(account.senders)
        add(
            "lead mail",
            True,
            f"{len(found)} mails from {senders} in {account.folder} in the last {DOCTOR_DAYS} days",
            ""
            if found
            else "if your lead mail is filed elsewhere (a filter or a Gmail label), "
            "set LEADTUI_IMAP_FOLDER to that folder",
        )
    except Exception as exc:
        add("mailbox", False, describe_error(exc, account), "run leadtui doctor again")
    finally:
        with contextlib.suppress(Exception):
            client.logout()
        with contextlib.suppress(Exception):
            client.shutdown()
    return checks
