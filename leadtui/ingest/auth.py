"""Who may write: API keys, their rate limits, the webhooks' signatures, idempotency keys.

API keys are the config file's ``[http.api_keys]`` plus ``LEADTUI_API_KEYS``; ``leadtui keys
add/remove`` take effect within a second, without a restart (:class:`ApiKeyRing`). The rate
(``LEADTUI_HTTP_RATE_PER_MINUTE``) is per API key; the webhooks are not rate limited, so
IndiaMART is never refused. Every comparison of a secret is constant-time, and no log line
shows one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from leadtui import config
from leadtui.config import ApiKey, ConfigError, Settings, hash_api_key
from leadtui.ingest.answers import IDEMPOTENCY_KEY_MAX, WEBHOOK_LIMIT, not_found, problem
from leadtui.ingest.bodies import read_body

log = logging.getLogger("leadtui.ingest")  # one logger for the HTTP source, as before the split

KEYS_CHECK_SECONDS = 1.0  # a request looks at the config file for changed API keys this often
FAILURES_PER_MINUTE = 30  # wrong credentials an address may send a minute (bursts of as many)

# --------------------------------------------------------------------------- API keys

_UNSEEN = ("unseen",)  # a config file signature no file has: read the file at the first look


def _file_signature(path: os.PathLike[str] | str) -> tuple[object, ...] | None:
    """What changes when a file is rewritten (``leadtui keys`` replaces it): None if absent."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # unreadable directory, say: reading it will say what is wrong
        return ("error", exc.errno)
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ApiKeyRing:
    """The API keys in force: the settings' keys, read again when the config file changes.

    ``leadtui keys add/remove`` rewrite the config file while the ingest runs. :meth:`refresh`
    looks at the file (one ``stat``) and, when it changed, reads the keys as a restart would,
    through :func:`config.load`: the file's ``[http.api_keys]`` plus ``LEADTUI_API_KEYS``
    from the environment. A file that is gone, unreadable or invalid keeps the keys in use,
    with one warning per change of the file. Logs name keys, never show them.
    """

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self.path, _explicit = config.config_file_path(settings.config_path, self._environ)
        self.keys: tuple[ApiKey, ...] = tuple(settings.api_keys)
        # A file read at startup is read again at the first look: it may have changed since
        # (a standby process loads its settings long before it takes over the capture).
        self._seen: tuple[object, ...] | None = None if settings.config_path is None else _UNSEEN
        self._fixed = bool(settings.api_keys_fixed)
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Re-read the keys if the config file changed. Blocking: run it off the event loop."""
        if self._fixed or not self._lock.acquire(blocking=False):
            return  # another request is looking right now
        try:
            seen = _file_signature(self.path)
            if seen == self._seen:
                return
            self._seen = seen
            if seen is None:
                log.warning(
                    "ingest: the config file %s is gone; keeping the %d API keys in use",
                    self.path,
                    len(self.keys),
                )
                return
            try:
                fresh = config.load(self.path, environ=self._environ).api_keys
            except (ConfigError, ValueError, OSError) as exc:
                log.warning(
                    "ingest: the config file %s changed but cannot be used (%s); keeping "
                    "the %d API keys in use",
                    self.path,
                    exc,
                    len(self.keys),
                )
                return
            if fresh != self.keys:
                added = sorted({k.name for k in set(fresh) - set(self.keys)})
                gone = sorted({k.name for k in set(self.keys) - set(fresh)})
                log.info(
                    "ingest: API keys reloaded from %s: %d in use (added: %s; removed: %s)",
                    self.path,
                    len(fresh),
                    ", ".join(added) or "none",
                    ", ".join(gone) or "none",
                )
                self.keys = fresh
        finally:
            self._lock.release()


class RateLimiter:
    """A token bucket per API key: ``per_minute`` requests a minute, bursts up to that many."""

    MAX_BUCKETS = 10_000  # then full (forgotten) buckets are dropped: addresses are many

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.refill)

    def take(self, key: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if self.capacity <= 0:
            return 0.0  # rate_per_minute = 0: no limit
        now = time.monotonic() if now is None else now
        tokens = self._tokens(key, now)
        if len(self._buckets) >= self.MAX_BUCKETS and key not in self._buckets:
            self._buckets = {
                k: v for k, v in self._buckets.items() if self._tokens(k, now) < self.capacity
            }
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.refill

    def wait(self, key: str, now: float | None = None) -> float:
        """The seconds until ``key`` could :meth:`take` again, without taking anything."""
        if self.capacity <= 0:
            return 0.0
        tokens = self._tokens(key, time.monotonic() if now is None else now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.refill


Scope = Literal["ingest", "read"]


class Gate:
    """The door of the routes that need a credential: which key it is, whether it may pass.

    Wrong credentials (an API key, the push token, a webhook signature, the verify token) are
    counted per client address: past :data:`FAILURES_PER_MINUTE` of them, that address gets
    429 with Retry-After for every credential it tries, right or wrong, until the count
    drains, so nobody can guess a key or a token at the network's speed.
    """

    def __init__(self, settings: Settings) -> None:
        self.rate_per_minute = int(settings.http_rate_per_minute)
        self.limiter = RateLimiter(self.rate_per_minute)
        self.failures = RateLimiter(FAILURES_PER_MINUTE)
        self.api_keys = ApiKeyRing(settings)
        self._keys_checked = -math.inf

    async def keys(self) -> tuple[ApiKey, ...]:
        """The API keys in force, after a look at the config file at most once a second."""
        now = time.monotonic()
        if now - self._keys_checked >= KEYS_CHECK_SECONDS:
            self._keys_checked = now
            await asyncio.get_running_loop().run_in_executor(None, self.api_keys.refresh)
        return self.api_keys.keys

    def throttled(self, request: web.Request) -> web.Response | None:
        """429 if the client's address has tried too many wrong credentials lately."""
        wait = self.failures.wait(_address(request))
        if wait <= 0:
            return None
        return _retry_later(
            wait,
            "too many wrong keys, tokens or signatures from this address; retry after "
            "{seconds} s with the right one",
        )

    def failed(self, request: web.Request) -> None:
        """Count a wrong credential against the client's address."""
        self.failures.take(_address(request))

    def admit(self, request: web.Request, configured: str) -> web.Response | None:
        """The first look of a channel's route: 404 when the channel is off here (nothing
        ``configured``), 429 for an address that guessed too often; None to go on."""
        if not configured:
            return not_found()
        return self.throttled(request)

    def path_token(self, request: web.Request, configured: str) -> web.Response | None:
        """The door of a URL whose last segment is its credential (JustDial, Gmail push).

        404 when the channel is off here (no token) or the token is wrong, as for any unknown
        URL, so a guess learns nothing (a wrong one is counted); 429 for an address that
        guessed too often; None lets the request in.
        """
        refused = self.admit(request, configured)
        if refused is not None:
            return refused
        if not secret_matches(request.match_info.get("token", ""), configured):
            self.failed(request)
            return not_found()
        return None

    async def authorise(self, request: web.Request, scope: Scope) -> str | web.Response:
        """The API key's name, or the 401/403/429 answer."""
        refused = self.throttled(request)
        if refused is not None:
            return refused
        presented = request.headers.get("x-api-key", "")
        found: ApiKey | None = None
        if presented:
            digest = hash_api_key(presented)
            for key in await self.keys():  # every key is compared: no early exit
                if hmac.compare_digest(digest.encode(), key.digest.encode()) and found is None:
                    found = key
        if found is None:
            self.failed(request)
            return problem(
                401,
                "a valid API key is required in the x-api-key header",
                headers={"WWW-Authenticate": 'ApiKey header="x-api-key"'},
            )
        if scope not in found.scopes:
            what = "read leads" if scope == "read" else "add leads"
            return problem(
                403,
                f"the API key {found.name!r} may not {what}; create a key that may with "
                f"'leadtui keys add NAME --scope {scope}'",
            )
        wait = self.limiter.take(found.name)
        if wait > 0:
            return _retry_later(
                wait,
                f"this API key is over its rate of {self.rate_per_minute} requests a minute; "
                "retry after {seconds} s",
            )
        return found.name


def _address(request: web.Request) -> str:
    return request.remote or "unknown"


def idempotency_key_problem(header: str) -> str | None:
    """What is wrong with an ``Idempotency-Key`` value, or None: it is printable ASCII (a
    structured-field string, as the IETF draft says) of at most 200 characters."""
    value = header.strip()
    if len(value) > IDEMPOTENCY_KEY_MAX:
        return f"must be at most {IDEMPOTENCY_KEY_MAX} characters"
    if not all(" " <= ch <= "~" for ch in value):
        return "must be printable ASCII (letters, digits, punctuation)"
    return None


def idempotency_key(key_name: str, header: str | None) -> str | None:
    """The raw item's dedupe key for an ``Idempotency-Key``, scoped to the API key's name."""
    if not header:
        return None
    value = header.strip().strip('"').strip()
    if not value:
        return None
    key = f"idem:{key_name}:{value}"
    if len(key) > 300:
        key = f"idem:{key_name[:60]}:sha256:{hashlib.sha256(_bytes(value)).hexdigest()}"
    return key


def secret_matches(presented: str, configured: str) -> bool:
    """A token from a request against the configured one: never for an unset one, in constant time."""
    return bool(configured) and hmac.compare_digest(_bytes(presented), _bytes(configured))


def _bytes(text: str) -> bytes:
    """A header value as bytes: one that is not UTF-8 (surrogate-escaped) hashes too, and
    compares unequal, rather than raising."""
    return text.encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------- signatures


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of the URL + sorted ``name value`` pairs."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(_bytes(auth_token), _bytes(data), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_valid(
    auth_token: str, url: str, params: Sequence[tuple[str, str]], presented: str
) -> bool:
    """Check a Twilio signature against the URL as given and with its default port toggled."""
    if not auth_token or not presented:
        return False
    ok = False
    for candidate in _with_and_without_port(url):
        expected = twilio_signature(auth_token, candidate, params)
        ok |= hmac.compare_digest(_bytes(expected), _bytes(presented.strip()))
    return ok


def _with_and_without_port(url: str) -> list[str]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return [url]
    other = (
        parts._replace(netloc=host)
        if port is not None
        else parts._replace(netloc=f"{host}:{default}")
    )
    return [url, urlunsplit(other)] if default is not None else [url]


def public_url(settings: Settings, request: web.Request) -> str:
    """The URL Twilio signed: the configured public URL plus the path, or what we were sent."""
    base = str(settings.http_public_url or "").rstrip("/")
    if base:
        return base + request.raw_path
    return str(request.url)


def meta_signature_valid(app_secret: str, body: bytes, presented: str) -> bool:
    """Meta's ``X-Hub-Signature-256``: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    if not app_secret or not presented:
        return False
    expected = "sha256=" + hmac.new(_bytes(app_secret), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(_bytes(expected), _bytes(presented.strip().lower()))


async def meta_signed_body(gate: Gate, request: web.Request, secret: str) -> bytes | web.Response:
    """The body of a Meta webhook POST whose ``X-Hub-Signature-256`` matches ``secret``, or the
    answer: 404 when the channel is off (no secret), 429 for an address that guessed too often,
    403 for a missing signature (refused before the body is read) or a wrong one.

    WhatsApp Cloud and Page lead ads notifications share it; each passes its own app secret.
    """
    refused = gate.admit(request, secret)
    if refused is not None:
        return refused
    signature = request.headers.get("X-Hub-Signature-256", "")
    if not signature.strip():
        gate.failed(request)
        return problem(403, "the X-Hub-Signature-256 header is missing")
    body = await read_body(request, WEBHOOK_LIMIT)
    if not meta_signature_valid(secret, body, signature):
        gate.failed(request)
        return problem(403, "the X-Hub-Signature-256 does not match this body")
    return body


def meta_handshake(gate: Gate, request: web.Request, verify_token: str) -> web.Response:
    """Meta's webhook verification (``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``):
    the challenge as text/plain when the token matches, else 403; 404 when no verify token is
    configured (the channel is off), 429 for an address that guessed too often.

    WhatsApp Cloud and Page lead ads webhooks share it; each passes its own verify token.
    """
    refused = gate.admit(request, verify_token)
    if refused is not None:
        return refused
    mode = request.query.get("hub.mode", "")
    token = request.query.get("hub.verify_token", "")
    challenge = request.query.get("hub.challenge", "")
    if (
        mode == "subscribe"
        and secret_matches(token, verify_token)
        and challenge
        and len(challenge) <= 200
        and challenge.isprintable()
    ):
        return web.Response(text=challenge, content_type="text/plain")
    if token:
        gate.failed(request)
    return problem(403, "the verification request does not match the configured verify token")


def _retry_later(wait: float, detail: str) -> web.Response:
    """A 429 that says when to come back (``{seconds}`` in ``detail``), in a header too."""
    seconds = max(1, math.ceil(wait))
    return problem(
        429, detail.replace("{seconds}", str(seconds)), headers={"Retry-After": str(seconds)}
    )
