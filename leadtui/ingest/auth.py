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
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from leadtui import config
from leadtui.config import ApiKey, ConfigError, Settings, hash_api_key
from leadtui.ingest.answers import problem

log = logging.getLogger("leadtui.ingest")  # one logger for the HTTP source, as before the split

KEYS_CHECK_SECONDS = 1.0  # a request looks at the config file for changed API keys this often

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

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if self.capacity <= 0:
            return 0.0  # rate_per_minute = 0: no limit
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.refill)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.refill


class Gate:
    """The door of the routes that need an API key: which key it is, and whether it may pass."""

    def __init__(self, settings: Settings) -> None:
        self.rate_per_minute = int(settings.http_rate_per_minute)
        self.limiter = RateLimiter(self.rate_per_minute)
        self.api_keys = ApiKeyRing(settings)
        self._keys_checked = -math.inf

    async def keys(self) -> tuple[ApiKey, ...]:
        """The API keys in force, after a look at the config file at most once a second."""
        now = time.monotonic()
        if now - self._keys_checked >= KEYS_CHECK_SECONDS:
            self._keys_checked = now
            await asyncio.get_running_loop().run_in_executor(None, self.api_keys.refresh)
        return self.api_keys.keys

    async def authorise(self, request: web.Request) -> str | web.Response:
        """The API key's name, or the 401/429 answer."""
        presented = request.headers.get("x-api-key", "")
        name: str | None = None
        if presented:
            digest = hash_api_key(presented)
            for key in await self.keys():  # every key is compared: no early exit
                if hmac.compare_digest(digest.encode(), key.digest.encode()) and name is None:
                    name = key.name
        if name is None:
            return problem(
                401,
                "a valid API key is required in the x-api-key header",
                headers={"WWW-Authenticate": 'ApiKey header="x-api-key"'},
            )
        wait = self.limiter.take(name)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            return problem(
                429,
                f"this API key is over its rate of {self.rate_per_minute} "
                f"requests a minute; retry after {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
        return name


def idempotency_key(key_name: str, header: str | None) -> str | None:
    """The raw item's dedupe key for an ``Idempotency-Key``, scoped to the API key's name."""
    if not header:
        return None
    value = header.strip().strip('"').strip()
    if not value:
        return None
    key = f"idem:{key_name}:{value}"
    if len(key) > 300:
        key = f"idem:{key_name[:60]}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"
    return key


def secret_matches(presented: str, configured: str) -> bool:
    """A token from a request against the configured one: never for an unset one, in constant time."""
    return bool(configured) and hmac.compare_digest(presented.encode(), configured.encode())


# --------------------------------------------------------------------------- signatures


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of the URL + sorted ``name value`` pairs."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
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
        ok |= hmac.compare_digest(expected.encode(), presented.strip().encode())
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
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), presented.strip().lower().encode())
