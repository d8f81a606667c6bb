"""The few Gmail API calls the Gmail source makes, and what their errors mean to a seller.

Google's documentation (developers.google.com/workspace/gmail/api): every call is
``https://gmail.googleapis.com/gmail/v1/users/me/...`` with ``Authorization: Bearer <access
token>``; an error is ``{"error": {"code", "message", "status", "errors": [{"reason"}]}}``.

- ``GET profile`` → ``{"emailAddress", "historyId", ...}``
- ``POST watch`` ``{"topicName", "labelIds"}`` → ``{"historyId", "expiration"}`` (epoch ms)
- ``GET history?startHistoryId&historyTypes=messageAdded&labelId`` → ``{"history": [{"id",
  "messagesAdded": [{"message": {"id", "labelIds"}}]}], "historyId", "nextPageToken"}``; an
  expired ``startHistoryId`` is 404
- ``GET messages?q&labelIds`` → ``{"messages": [{"id", "threadId"}], "nextPageToken"}``
- ``GET messages/{id}?format=raw`` → ``{"id", "raw": base64url RFC 822}``; reading never
  changes a label (the UNREAD mark stays), and the scope ``gmail.readonly`` is enough for all.

The access token comes from :class:`leadtui.imap.TokenSource`, the refresh-token flow the
mailbox's XOAUTH2 uses; it is asked for in a thread (the token endpoint is a blocking call)
and only ever put in a header. No text leaving this module holds a token: every error text
passes through :func:`leadtui.imap.redact` with the grant's secrets.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp

from leadtui import __version__
from leadtui.config import Settings, is_loopback_host
from leadtui.imap import OAuthError, TokenSource, redact
from leadtui.pull import one_line

SCOPE = "https://www.googleapis.com/auth/gmail.readonly"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=15)
TOKEN_TIMEOUT = 15.0
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
DISABLED_REASONS = frozenset({"accessNotConfigured", "SERVICE_DISABLED"})

TOKEN_FIX = (
    "create a new refresh token with the scope "
    f"{SCOPE} and set LEADTUI_GMAIL_REFRESH_TOKEN (README: Gmail without IMAP)"
)
SCOPE_FIX = (
    f"authorise again with the scope {SCOPE} and set LEADTUI_GMAIL_REFRESH_TOKEN to the new token"
)
DISABLED_FIX = "enable the Gmail API in the Google Cloud project of the OAuth client"
WATCH_FIX = (
    "check LEADTUI_GMAIL_TOPIC (projects/PROJECT/topics/TOPIC, in the OAuth client's project) "
    "and give gmail-api-push@system.gserviceaccount.com the Pub/Sub Publisher role on it"
)

T = TypeVar("T")


class ApiError(Exception):
    """A call that did not succeed. ``status`` 0: no answer (network, timeout, token endpoint)."""

    def __init__(self, status: int, message: str, reason: str = "", *, rejected: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason  # Google's errors[0].reason or error.status
        self.rejected = rejected  # the token endpoint refused the refresh token itself

    @property
    def kind(self) -> str:
        """What it means: revoked, scope, disabled, rate, expired, gone, retry or refused."""
        if self.rejected:
            return "revoked"
        if self.status == 429 or (self.status == 403 and self.reason in RATE_REASONS):
            return "rate"
        if self.status == 403 and self.reason in DISABLED_REASONS:
            return "disabled"
        if self.status in (401, 403):
            return "scope"
        if self.status == 404:
            return "gone"
        if self.status == 0 or self.status >= 500:
            return "retry"
        return "refused"

    def explain(self) -> tuple[str, str]:
        """What happened, and what to do about it ("" when waiting is the fix)."""
        kind = self.kind
        if kind == "revoked":
            return f"Google refused the refresh token ({self.message})", TOKEN_FIX
        if kind == "scope":
            return f"Gmail refused access (HTTP {self.status}: {self.message})", SCOPE_FIX
        if kind == "disabled":
            return f"the Gmail API is off for this project ({self.message})", DISABLED_FIX
        if kind == "rate":
            return f"Gmail asks to slow down (HTTP {self.status}: {self.message})", ""
        if self.status == 0:
            return self.message, ""
        return f"Gmail answered HTTP {self.status}: {self.message}", ""

    def describe(self) -> str:
        """What happened and what to do, in one line."""
        what, fix = self.explain()
        return f"{what}: {fix}" if fix else what


def error_of(status: int, body: bytes) -> ApiError:
    """Google's error envelope as an :class:`ApiError` (any body at all is accepted)."""
    try:
        value: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        value = None
    error = value.get("error") if isinstance(value, dict) else None
    if not isinstance(error, dict):
        return ApiError(status, f"HTTP {status}")
    reason = ""
    details = error.get("errors")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        reason = str(details[0].get("reason") or "")
    if not reason and isinstance(error.get("details"), list):
        for item in error["details"]:
            if isinstance(item, dict) and item.get("reason"):
                reason = str(item["reason"])
                break
    message = one_line(str(error.get("message") or error.get("status") or f"HTTP {status}"), 200)
    return ApiError(status, message, reason or str(error.get("status") or ""))


# --------------------------------------------------------------------------- formats


def as_int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def decode_raw(value: Any) -> bytes | None:
    """``messages.get?format=raw``'s ``raw``: base64url RFC 822 bytes; None if it is not that."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if b":" in raw[:4096] else None  # no header line at all: not a message


def day(expiration_ms: int) -> str:
    if not expiration_ms:
        return "unknown"
    return datetime.fromtimestamp(expiration_ms / 1000).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class GmailConfig:
    """What the source needs from the settings, checked once."""

    api_url: str
    label: str
    topic: str
    push: bool
    poll_seconds: float
    tokens: Callable[[], TokenSource]
    secrets: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> GmailConfig:
        """Raises ValueError (the message says what to set) for settings it cannot use."""
        client_id, client_secret, refresh, token_url = settings.gmail_oauth
        if not refresh:
            raise ValueError(
                "no OAuth refresh token for the Gmail API: set LEADTUI_GMAIL_REFRESH_TOKEN "
                f"(scope {SCOPE}) with LEADTUI_GMAIL_CLIENT_ID and LEADTUI_GMAIL_CLIENT_SECRET"
            )
        api = settings.gmail_api_url.strip().rstrip("/")
        parts = urlsplit(api)
        if parts.scheme != "https" and not (
            parts.scheme == "http" and is_loopback_host(parts.hostname or "")
        ):
            raise ValueError("LEADTUI_GMAIL_API_URL must be an https:// URL")
        label = settings.gmail_label.strip() or "INBOX"

        def tokens() -> TokenSource:
            return TokenSource(
                token_url,
                client_id,
                client_secret,
                refresh,
                timeout=TOKEN_TIMEOUT,
                url_setting="LEADTUI_GMAIL_TOKEN_URL",
            )

        return cls(
            api_url=api,
            label=label,
            topic=settings.gmail_topic.strip(),
            push=settings.gmail_push,
            poll_seconds=max(1.0 if _loopback(api) else 10.0, float(settings.gmail_poll_seconds)),
            tokens=tokens,
            secrets=tuple(
                s
                for s in (
                    refresh.reveal(),
                    client_secret.reveal(),
                    settings.gmail_push_token.reveal(),
                )
                if s
            ),
        )


def _loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


async def in_thread(call: Callable[[], T]) -> T:
    """Run a blocking ``call`` in a daemon thread: a stop never waits for it to finish."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(setter: Callable[[], None]) -> None:
        if not future.done():
            setter()

    def hand_over(setter: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop ended (the source stopped)
            loop.call_soon_threadsafe(settle, setter)

    def work() -> None:
        try:
            result = call()
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
            hand_over(lambda: future.set_exception(error))
        else:
            hand_over(lambda: future.set_result(result))

    threading.Thread(target=work, name="gmail-token", daemon=True).start()
    return await future


class GmailApi:
    """One mailbox (``users/me``) over one kept-alive session."""

    def __init__(self, cfg: GmailConfig, session: aiohttp.ClientSession) -> None:
        self.cfg = cfg
        self.session = session
        self.tokens = cfg.tokens()
        self._token_lock = asyncio.Lock()

    def secrets(self) -> list[str]:
        return [*self.cfg.secrets, *self.tokens.secrets()]

    def clean(self, text: str) -> str:
        return redact(text, self.secrets())

    @staticmethod
    def session_for(cfg: GmailConfig) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            timeout=HTTP_TIMEOUT,
            trust_env=not _loopback(
                cfg.api_url
            ),  # HTTPS_PROXY for Google, never for a local server
            headers={"User-Agent": f"leadtui/{__version__}"},
        )

    async def _token(self) -> str:
        async with self._token_lock:
            try:
                return await in_thread(self.tokens.access_token)
            except OAuthError as exc:
                raise ApiError(0, self.clean(str(exc)), rejected=exc.rejected) from None

    async def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One call; a refused access token is refreshed and the call made once more."""
        for attempt in range(2):
            token = await self._token()
            status, raw = await self._send(method, path, params, body, token)
            if 200 <= status < 300:
                try:
                    value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
                except (UnicodeDecodeError, ValueError, RecursionError):
                    raise ApiError(status, "the answer is not JSON") from None
                if not isinstance(value, dict):
                    raise ApiError(status, "the answer is not a JSON object")
                return value
            error = error_of(status, raw)
            if status == 401 and attempt == 0:
                self.tokens.invalidate()  # expired early, or revoked: one fresh token
                continue
            raise ApiError(error.status, self.clean(error.message), error.reason)
        raise AssertionError("unreachable")

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        token: str,
    ) -> tuple[int, bytes]:
        url = f"{self.cfg.api_url}/gmail/v1/users/me/{path}"
        host = urlsplit(self.cfg.api_url).hostname or self.cfg.api_url
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            async with self.session.request(
                method, url, params=params, json=body, headers=headers, allow_redirects=False
            ) as resp:
                return resp.status, await resp.read()
        except TimeoutError:
            raise ApiError(0, f"{host} did not answer within {HTTP_TIMEOUT.total:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            text = self.clean(one_line(f"{type(exc).__name__}: {exc}", 200))
            raise ApiError(0, f"cannot reach {host}: {text}") from None

    # ------------------------------------------------------------------ the calls

    async def profile(self) -> dict[str, Any]:
        return await self.call("GET", "profile")

    async def watch(self) -> dict[str, Any]:
        return await self.call(
            "POST", "watch", body={"topicName": self.cfg.topic, "labelIds": [self.cfg.label]}
        )

    async def history(self, start: int, page: str | None) -> dict[str, Any]:
        params = {
            "startHistoryId": str(start),
            "historyTypes": "messageAdded",
            "labelId": self.cfg.label,
            "maxResults": "500",
        }
        if page:
            params["pageToken"] = page
        return await self.call("GET", "history", params)

    async def list_messages(self, query: str, page: str | None) -> dict[str, Any]:
        params = {"q": query, "labelIds": self.cfg.label, "maxResults": "500"}
        if page:
            params["pageToken"] = page
        return await self.call("GET", "messages", params)

    async def raw(self, message_id: str) -> dict[str, Any]:
        return await self.call("GET", f"messages/{quote(message_id, safe='')}", {"format": "raw"})
