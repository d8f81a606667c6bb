"""The IndiaMART CRM pull: the slow but complete second channel beside the mailbox.

Email is fast but can leak (filters, a full mailbox, a changed address); IndiaMART's CRM
listing API (FORMATS.md 6) is slow but has every lead. With a CRM key configured, the capture
service runs :class:`PullSource`, and every lead the API returns goes through the same
pipeline as a mail: raw response first, then upsert under the dedupe keys. An API copy of a
lead that came by email merges into it (adding ``UNIQUE_QUERY_ID`` and missing fields, keeping
the email's first-seen time); a lead only the API knows is marked ``missed_by_email``.

Windows and the cursor
    Each call asks for one window ``[start, end]`` in IST (``DD-Mon-YYYY HH:MM:SS``), at most
    :data:`MAX_WINDOW` (7 days) long, ending :data:`END_MARGIN` before now (never in the future
    even with a slightly fast clock), starting no earlier than IndiaMART's 365 days. The next
    window starts :data:`OVERLAP` before the last one ended, so a lead on the boundary, or one
    IndiaMART indexes a little late, is fetched twice rather than never (the store removes the
    duplicate by ``UNIQUE_QUERY_ID``). The cursor (the end of the last window) is stored only
    after that window's leads are committed. The first run starts ``pull_backfill_days`` ago
    (default 7, at most 365) and walks forward one window per call, showing
    ``backfilling k/n windows`` in the health line; so does a catch-up after a long stop.

Rate and backoff
    IndiaMART allows one call every 5 minutes. The time of the last call is stored in the
    database, so a restart, another capturing process, ``leadtui pull --once`` and ``leadtui
    doctor`` all keep that pace. The interval is ``settings.pull_interval_seconds`` clamped to
    at least 300 s, unless the base URL is a loopback address (the tests' fake server). CODE 429
    keeps the window and waits 1, 3, then 6 intervals; 400, 500 and network errors wait an
    exponentially growing number of intervals (up to 12) with 0-25 % jitter. CODE 401 stops
    all calls with this key until a new key is configured (or a manual pull or doctor call
    finds that it works again).

The CRM key is part of the URL's query; it is never logged, shown or put in an error: every
text that leaves this module passes through a redactor.

The pieces that are not IndiaMART's own (:class:`Calls` and its backoff, :class:`Answer`,
:func:`get_answer`, :func:`client_session`, the redactor, the clock) are shared with the
TradeIndia and ExportersIndia pulls in :mod:`leadtui.channels.vendor_pull`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import random
import re
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, quote_plus, urlparse

import aiohttp

from leadtui import __version__
from leadtui.capture import HealthCallback, Pipeline, RawItem, Source, SourceFactory
from leadtui.config import Check, Secret, Settings, is_loopback_host
from leadtui.formats.text import IST
from leadtui.store import Health, Store, StoreError

log = logging.getLogger(__name__)

SOURCE = "pull"  # Health.source and RawItem.source
CURSOR_KEY = "pull:indiamart:cursor"  # {"end": epoch s, "backfill_done": n} or {"backfill_from"}
CALLS_KEY = "pull:indiamart:calls"  # the last call, its result, backoff, a rejected key

API_MIN_INTERVAL = 300.0  # IndiaMART: at most one call every 5 minutes
LOOPBACK_MIN_INTERVAL = 0.05  # a local test server: only guard against a hot loop
MAX_WINDOW = 7 * 86400
OVERLAP = 10 * 60
END_MARGIN = 60
HISTORY = 365 * 86400
HISTORY_MARGIN = 3600  # stay this far inside the 365 days, so a slow call is not refused
MAX_BACKFILL_DAYS = 365
RATE_LIMIT_FACTORS = (1, 3, 6)  # intervals to wait after the 1st, 2nd, 3rd+ CODE 429 in a row
MAX_ERROR_FACTOR = 12  # intervals: an hour at the real API's pace
JITTER = 0.25
REJECTED_RECHECK = 60.0  # while the key is rejected: look whether someone cleared that
STOP_POLL = 0.2  # how often a wait or a call in flight looks at the stop event
MISSED_DAYS = 30  # the health line counts leads email missed over this many days
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=90, sock_connect=15)
RUN_ONCE_ATTEMPTS = 3  # a manual pull gives up after this many failed calls of one window

KEY_REJECTED = "CRM key rejected or replaced: generate a new key in Lead Manager"
KEY_FIX = (
    "generate a new key in IndiaMART Lead Manager → CRM integration "
    "(seller.indiamart.com/leadmanager/crmapi) and set LEADTUI_INDIAMART_KEY or [indiamart] key"
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

T = TypeVar("T")


class PullError(Exception):
    """The pull cannot start (no key, a date out of range). The message says what to do."""


# --------------------------------------------------------------------------- configuration


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine (a test server): the 300 s floor is lifted."""
    return is_loopback_host(urlparse(url).hostname or "")


def effective_interval(settings: Settings) -> float:
    """``pull_interval_seconds``, but at least 300 s unless the API URL is a loopback address.

    IndiaMART answers faster calls with CODE 429 and disables a key that keeps trying, so the
    floor cannot be configured away; tests point ``LEADTUI_INDIAMART_URL`` at 127.0.0.1.
    """
    wanted = float(settings.pull_interval_seconds)
    if not math.isfinite(wanted):
        wanted = API_MIN_INTERVAL
    floor = LOOPBACK_MIN_INTERVAL if is_loopback_url(settings.indiamart_url) else API_MIN_INTERVAL
    return max(wanted, floor)


@dataclass(frozen=True)
class PullConfig:
    url: str
    key: Secret = field(repr=False)  # never shown
    interval: float
    backfill_days: int
    loopback: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> PullConfig:
        if not settings.indiamart_key:
            raise PullError("no IndiaMART CRM key: set LEADTUI_INDIAMART_KEY or [indiamart] key")
        url = str(settings.indiamart_url).strip()
        if urlparse(url).scheme not in ("http", "https"):
            shown = _KEY_PARAM.sub(r"\1********", url)[:80]
            raise PullError(f"LEADTUI_INDIAMART_URL must be an http(s) URL, not {shown!r}")
        days = max(0, min(int(settings.pull_backfill_days), MAX_BACKFILL_DAYS))
        return cls(
            url, settings.indiamart_key, effective_interval(settings), days, is_loopback_url(url)
        )

    def reveal_key(self) -> str:
        return self.key.reveal()

    @property
    def fingerprint(self) -> str:
        """Which key a stored "rejected" mark belongs to (a hash prefix, not the key)."""
        digest = hashlib.sha256(b"leadtui-crm-key:" + self.reveal_key().encode("utf-8"))
        return digest.hexdigest()[:16]

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or self.url

    def redactor(self) -> Callable[[str], str]:
        return make_redactor(self.reveal_key())


_KEY_PARAM = re.compile(r"(glusr_crm_key=)[^&\s'\"<>]*", re.IGNORECASE)


def make_redactor(key: str) -> Callable[[str], str]:
    """A function that hides the key (plain, URL-encoded, or as the URL's parameter)."""
    forms = sorted({key, quote(key, safe=""), quote_plus(key), quote(key)} - {""}, key=len)[::-1]

    def redact(text: str) -> str:
        for form in forms:
            text = text.replace(form, "********")
        return _KEY_PARAM.sub(r"\1********", text)

    return redact


# --------------------------------------------------------------------------- time and windows


def format_ist(ts: float) -> str:
    """Epoch seconds as the API wants them: IST ``DD-Mon-YYYY HH:MM:SS`` (English months)."""
    t = datetime.fromtimestamp(int(ts), IST)
    return f"{t.day:02d}-{_MONTHS[t.month - 1]}-{t.year:04d} {t:%H:%M:%S}"


def hm(ts: float) -> str:
    """A time of day for the health line, in the machine's zone."""
    return datetime.fromtimestamp(ts).strftime("%H:%M")


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 3 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


@dataclass(frozen=True, slots=True)
class Window:
    """One call's ``[start, end]``, whole epoch seconds. ``capped``: cut at 7 days, more follow."""

    start: int
    end: int
    capped: bool

    def params(self) -> dict[str, str]:
        return {"start_time": format_ist(self.start), "end_time": format_ist(self.end)}

    def describe(self) -> str:
        return f"{format_ist(self.start)} → {format_ist(self.end)} IST"


def earliest_start(now: float) -> float:
    """The oldest start IndiaMART accepts (365 days), with a margin."""
    return now - HISTORY + HISTORY_MARGIN


def first_start(now: float, backfill_days: int) -> float:
    """Where a first run starts: ``backfill_days`` ago (0: just the last few minutes)."""
    start = now - backfill_days * 86400 if backfill_days > 0 else now - OVERLAP
    return max(start, earliest_start(now))


def window_from(start: float, now: float) -> Window | None:
    """The window that starts at ``start`` (clamped to 365 days) and goes as far as allowed."""
    begin = int(max(start, earliest_start(now)))
    target = int(now - END_MARGIN)
    end = min(begin + MAX_WINDOW, target)
    if end <= begin:
        return None
    return Window(begin, end, capped=end < target)


def windows_left(start: float, now: float) -> int:
    """How many calls it takes to get from ``start`` to now, one window each."""
    span = (now - END_MARGIN) - max(start, earliest_start(now))
    if span <= 0:
        return 0
    if span <= MAX_WINDOW:
        return 1
    return 1 + math.ceil((span - MAX_WINDOW) / (MAX_WINDOW - OVERLAP))


# --------------------------------------------------------------------------- clock


class Clock(Protocol):
    """Wall time and waiting. Tests pass a fake one so nobody waits 5 minutes."""

    def now(self) -> float: ...

    async def sleep_until(self, when: float, stop: threading.Event) -> bool:
        """Wait until ``when`` (epoch seconds); False as soon as ``stop`` is set."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float, stop: threading.Event) -> bool:
        while not stop.is_set():
            left = when - time.time()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, STOP_POLL))
        return False


async def until_stopped(aw: Awaitable[T], stop: threading.Event) -> tuple[bool, T | None]:
    """Run ``aw``, cancelling it when ``stop`` is set. ``(finished, result)``."""
    task = asyncio.ensure_future(aw)
    while True:
        done, _ = await asyncio.wait({task}, timeout=STOP_POLL)
        if done:
            return True, task.result()
        if stop.is_set():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            return False, None


# --------------------------------------------------------------------------- one call


@dataclass(frozen=True)
class Answer:
    """What one call got. ``code`` is the envelope's CODE (0: no answer at all)."""

    code: int
    message: str = ""
    body: bytes = b""
    records: int | None = None

    @property
    def ok(self) -> bool:
        return self.code in (200, 204)

    def describe(self) -> str:
        if self.code == 0:
            return f"no answer: {self.message}"
        text = f"CODE {self.code}"
        return f"{text}: {self.message}" if self.message else text


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def classify(status: int, body: bytes) -> Answer:
    """An HTTP answer as the API means it: the JSON envelope's CODE, else the HTTP status."""
    try:
        value: Any = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        value = None
    if isinstance(value, dict) and "CODE" in value:
        message = one_line(str(value.get("MESSAGE") or ""))
        try:
            code = int(str(value["CODE"]).strip())
        except ValueError:
            return Answer(500, f"unreadable CODE {one_line(str(value['CODE']), 40)!r}")
        records = value.get("TOTAL_RECORDS")
        count = records if isinstance(records, int) else None
        if code == 200 and isinstance(value.get("RESPONSE"), list):
            count = len(value["RESPONSE"])
        return Answer(code, message, body if code == 200 else b"", count)
    if isinstance(value, list) and status == 200:  # legacy v1: a bare list of rows
        return Answer(200, "", body, len(value))
    if status in (401, 403):
        return Answer(401, f"HTTP {status}")
    if status in (400, 429):
        return Answer(status, f"HTTP {status}")
    if status == 200:
        return Answer(500, "the answer is not an IndiaMART JSON envelope")
    return Answer(500, f"HTTP {status}")


async def fetch(session: aiohttp.ClientSession, cfg: PullConfig, window: Window) -> Answer:
    """One GET of the listing endpoint. Never raises (but can be cancelled)."""
    params = {"glusr_crm_key": cfg.reveal_key(), **window.params()}
    return await get_answer(
        session, cfg.url, params, host=cfg.host, redact=cfg.redactor(), classify=classify
    )


async def get_answer(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str],
    *,
    host: str,
    redact: Callable[[str], str],
    classify: Callable[[int, bytes], Answer],
    headers: dict[str, str] | None = None,
) -> Answer:
    """One GET of a pull API, its answer read by ``classify``. Never raises (but can be
    cancelled); a network failure is ``Answer(0, …)``, with any key in its text redacted."""
    try:
        async with session.get(url, params=params, headers=headers, allow_redirects=False) as resp:
            body = await resp.read()
            return classify(resp.status, body)
    except TimeoutError:
        return Answer(0, f"{host} did not answer within {HTTP_TIMEOUT.total:g} s")
    except aiohttp.ClientConnectorError as exc:
        return Answer(0, redact(f"cannot connect to {host}: {exc.os_error.strerror or exc}"))
    except aiohttp.ClientError as exc:
        return Answer(0, redact(one_line(f"{type(exc).__name__}: {exc}")))
    except OSError as exc:
        return Answer(0, redact(one_line(f"{type(exc).__name__}: {exc}")))


def client_session(loopback: bool) -> aiohttp.ClientSession:
    """The HTTP client of a pull: leadtui's User-Agent, HTTPS_PROXY except on loopback."""
    return aiohttp.ClientSession(
        timeout=HTTP_TIMEOUT,
        trust_env=not loopback,  # HTTPS_PROXY for the real API, never for a local server
        headers={"User-Agent": f"leadtui/{__version__}"},
    )


# --------------------------------------------------------------------------- stored state


@dataclass
class Calls:
    """The stored record of calls, shared by every process that may call the API."""

    last_call_ts: float | None = None
    last_code: int | None = None
    last_result: str = ""
    last_success_ts: float | None = None
    last_error: str | None = None
    failures: int = 0  # 400/500/network in a row
    rate_limited: int = 0  # CODE 429 in a row
    not_before: float | None = None  # backoff: no call before this
    rejected: str | None = None  # fingerprint of a key IndiaMART answered 401 for

    @classmethod
    def load(cls, store: Store, key: str = CALLS_KEY) -> Calls:
        """The record under ``key``: each pull source (IndiaMART, TradeIndia, …) has its own."""
        data = store.get_state(key) or {}
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, store: Store, key: str = CALLS_KEY) -> None:
        store.set_state(key, dict(self.__dict__))

    def due(self, interval: float) -> float:
        """When the next call may be made."""
        due = 0.0 if self.last_call_ts is None else self.last_call_ts + interval
        return max(due, self.not_before or 0.0)

    def note(
        self,
        answer: Answer,
        result: str,
        now: float,
        *,
        interval: float,
        rng: random.Random,
        fingerprint: str,
    ) -> None:
        """Record what a call got and when the next one may go (the backoff rules).

        The pace counts from the answer, not the request: an API measures from the moment
        the request reached it, which is between the two. ``result`` describes a success.
        """
        self.last_call_ts = max(self.last_call_ts or now, now)
        self.last_code = answer.code
        base = self.last_call_ts or now
        if answer.ok:
            self.last_result = result
            self.last_success_ts = now
            self.last_error = None
            self.failures = self.rate_limited = 0
            self.not_before = None
            self.rejected = None
        elif answer.code == 429:
            self.rate_limited += 1
            factor = RATE_LIMIT_FACTORS[min(self.rate_limited, len(RATE_LIMIT_FACTORS)) - 1]
            self.not_before = base + interval * factor
            self.last_result = "rate limited"
            self.last_error = answer.describe()
        elif answer.code == 401:
            self.rejected = fingerprint
            self.last_result = "key rejected"
            self.last_error = answer.describe()
        else:
            self.failures += 1
            factor = min(2 ** (self.failures - 1), MAX_ERROR_FACTOR)
            self.not_before = base + interval * factor * (1 + rng.uniform(0, JITTER))
            self.last_result = "refused" if answer.code == 400 else "failed"
            self.last_error = answer.describe()


@dataclass
class Cursor:
    end: float  # leads up to here are committed
    backfill_done: int = 0  # windows done in the running backfill (0 when caught up)

    @classmethod
    def load(cls, store: Store, key: str = CURSOR_KEY) -> Cursor | None:
        data = store.get_state(key)
        if not data or data.get("end") is None:
            return None
        return cls(float(data["end"]), int(data.get("backfill_done") or 0))


@dataclass
class Committed:
    lead_ids: tuple[int, ...] = ()
    new_ids: tuple[int, ...] = ()
    failed: bool = False  # the response is kept in the review queue

    def describe(self) -> str:
        if not self.lead_ids:
            return "no leads" + (" (response kept for review)" if self.failed else "")
        text = f"{len(self.lead_ids)} lead{'s' * (len(self.lead_ids) != 1)}"
        text += f", {len(self.new_ids)} new" if self.new_ids else ", none new"
        return text + (" (some kept for review)" if self.failed else "")


class Puller:
    """The rules every caller shares: windows, the stored pace, committing, backoff."""

    def __init__(
        self, cfg: PullConfig, store: Store, pipeline: Pipeline, clock: Clock, rng: random.Random
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.pipeline = pipeline
        self.clock = clock
        self.rng = rng
        self.redact = cfg.redactor()

    def calls(self) -> Calls:
        return Calls.load(self.store)

    def cursor(self) -> Cursor | None:
        return Cursor.load(self.store)

    def next_start(self, now: float) -> float:
        """Where the next window starts: the cursor minus the overlap, or the backfill's start.

        The backfill's start is fixed (stored) by the first attempt, so a retry after a 429 or
        an error asks for the same window instead of one that slid forward with the clock.
        """
        data = self.store.get_state(CURSOR_KEY) or {}
        if data.get("end") is not None:
            return float(data["end"]) - OVERLAP
        if data.get("backfill_from") is not None:
            return float(data["backfill_from"])
        start = first_start(now, self.cfg.backfill_days)
        self.store.set_state(CURSOR_KEY, {"backfill_from": start})
        return start

    async def call(self, session: aiohttp.ClientSession, window: Window) -> Answer:
        """Record the call's time first (a crash mid-call still counts), then make it."""
        calls = self.calls()
        calls.last_call_ts = self.clock.now()
        calls.save(self.store)
        answer = await fetch(session, self.cfg, window)
        message = self.redact(answer.message)
        return Answer(answer.code, message, answer.body, answer.records)

    def commit(self, answer: Answer) -> Committed:
        """A 200's raw response through the pipeline (kept, parsed, upserted)."""
        if answer.code != 200:
            return Committed()
        outcome = self.pipeline.accept(
            RawItem(answer.body, source=SOURCE, kind="json", channel="pull")
        )
        return Committed(outcome.lead_ids, outcome.new_lead_ids, outcome.status == "failed")

    def advance(self, window: Window, *, contiguous: bool = True) -> None:
        """Move the cursor to ``window.end`` (never back) after its leads are committed."""
        cursor = self.cursor()
        if cursor is not None and not contiguous:
            return
        done = 0
        if window.capped:
            done = (cursor.backfill_done if cursor else 0) + 1
        end = float(window.end)
        if cursor is not None and cursor.end > end:
            end, done = cursor.end, cursor.backfill_done
        self.store.set_state(CURSOR_KEY, {"end": end, "backfill_done": done})

    def record(self, answer: Answer, committed: Committed | None, now: float) -> Calls:
        """Store what the call got and when the next one may go (:meth:`Calls.note`)."""
        calls = self.calls()
        calls.note(
            answer,
            (committed or Committed()).describe(),
            now,
            interval=self.cfg.interval,
            rng=self.rng,
            fingerprint=self.cfg.fingerprint,
        )
        calls.save(self.store)
        return calls

    def missed_by_email(self, now: float) -> int:
        return self.store.count_missed_by_email(
            since_ts=now - MISSED_DAYS * 86400, source="indiamart"
        )


# --------------------------------------------------------------------------- the source


@dataclass
class PullSource:
    """The capture service's CRM pull: one window per interval, forever, until ``stop``."""

    cfg: PullConfig
    store: Store
    pipeline: Pipeline
    report: HealthCallback
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    name: str = "pull"

    def run(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (returning within a second); never raises."""
        try:
            asyncio.run(self._run(stop))
        except Exception:  # pragma: no cover - _run catches everything itself
            log.error("pull: stopped by an error:\n%s", self.cfg.redactor()(traceback.format_exc()))

    async def _run(self, stop: threading.Event) -> None:
        puller = Puller(self.cfg, self.store, self.pipeline, self.clock, self.rng)
        redact = puller.redact
        async with client_session(self.cfg.loopback) as session:
            while not stop.is_set():
                try:
                    await self._step(puller, session, stop)
                except Exception as exc:  # a database outage or a bug: report, wait, go on
                    if isinstance(exc, StoreError):
                        log.warning("pull: %s", redact(str(exc)))
                    else:
                        log.error("pull: unexpected error:\n%s", redact(traceback.format_exc()))
                    now = self.clock.now()
                    due = now + self.cfg.interval
                    self._report(
                        "retrying",
                        [f"{redact(one_line(str(exc)))}", f"next try {hm(due)}"],
                        None,
                        redact(one_line(f"{type(exc).__name__}: {exc}")),
                        due,
                    )
                    await self.clock.sleep_until(due, stop)

    async def _step(
        self, puller: Puller, session: aiohttp.ClientSession, stop: threading.Event
    ) -> None:
        calls = puller.calls()
        now = self.clock.now()
        if calls.rejected == self.cfg.fingerprint:
            self._report_health(puller, calls, None)
            await self.clock.sleep_until(now + REJECTED_RECHECK, stop)
            return
        due = calls.due(self.cfg.interval)
        if due > now:
            self._report_health(puller, calls, due)
            await self.clock.sleep_until(due, stop)
            return  # look at the stored state again: another process may have called
        window = window_from(puller.next_start(now), now)
        if window is None:  # the cursor is already at now (a fast pace on a test server)
            await self.clock.sleep_until(now + self.cfg.interval, stop)
            return
        self._report_health(puller, calls, now, calling=window)
        finished, answer = await until_stopped(puller.call(session, window), stop)
        if not finished or answer is None:
            return
        committed = puller.commit(answer) if answer.code == 200 else None
        if answer.ok:
            puller.advance(window)
        now = self.clock.now()
        calls = puller.record(answer, committed, now)
        self._log(window, answer, committed)
        self._report_health(puller, calls, calls.due(self.cfg.interval))

    def _log(self, window: Window, answer: Answer, committed: Committed | None) -> None:
        if answer.ok:
            log.info("pull %s: %s", window.describe(), (committed or Committed()).describe())
        elif answer.code == 401:
            log.warning("pull: %s (%s); no more calls with this key", KEY_REJECTED, answer.message)
        else:
            log.warning("pull %s: %s", window.describe(), answer.describe())

    def _report_health(
        self, puller: Puller, calls: Calls, due: float | None, calling: Window | None = None
    ) -> None:
        now = self.clock.now()
        cursor = puller.cursor()
        parts: list[str] = []
        if calls.rejected == self.cfg.fingerprint:
            state = "key rejected"
            parts.append(KEY_REJECTED)
            due = None
        elif calls.last_code == 429 and calls.rate_limited:
            state = "rate limited"
            parts.append(f"IndiaMART: {calls.last_error or 'too many requests'}")
        elif calls.failures:
            state = "error" if calls.last_code == 400 else "retrying"
            parts.append(f"{calls.last_error} (failed {calls.failures}×)")
        else:
            start = calling.start if calling else puller.next_start(now)
            done = cursor.backfill_done if cursor else 0
            left = windows_left(start, now)
            if cursor is None or done or left > 1:
                state = f"backfilling {done}/{done + left} windows"
                if cursor is not None:
                    parts.append(f"through {format_ist(cursor.end)[:17]} IST")
            else:
                state = "waiting" if calls.last_call_ts is not None else "starting"
            if calls.last_call_ts is not None:
                parts.append(f"last call {hm(calls.last_call_ts)}: {calls.last_result}")
        if calling is not None:
            parts.append("calling IndiaMART now")
        elif due is not None:
            parts.append(f"next call {hm(due)}")
        missed = puller.missed_by_email(now)
        if missed:
            parts.append(f"{missed} lead{'s' * (missed != 1)} email missed ({MISSED_DAYS} days)")
        self._report(state, parts, calls.last_success_ts, calls.last_error, due)

    def _report(
        self,
        state: str,
        parts: list[str],
        last_success: float | None,
        last_error: str | None,
        due: float | None,
    ) -> None:
        try:
            self.report(
                Health(
                    source=SOURCE,
                    state=state,
                    detail=" · ".join(p for p in parts if p),
                    last_success_ts=last_success,
                    last_error=last_error,
                    next_retry_ts=due,
                )
            )
        except Exception:
            log.exception("pull: cannot report health")


@dataclass
class MisconfiguredSource:
    """Stands in for a source whose settings are unusable: says why in its health line.

    The CRM pull's by default; the other channels (the vendor pulls, Gmail, lead ads) pass
    their own ``name`` and ``source``."""

    problem: str
    report: HealthCallback
    name: str = "pull"
    source: str = SOURCE  # the health line it stands in for (another pull's, too)

    def run(self, stop: threading.Event) -> None:
        self.report(
            Health(source=self.source, state="error", detail=self.problem, last_error=self.problem)
        )
        stop.wait()


def pull_factory(settings: Settings, *, clock: Clock | None = None) -> SourceFactory:
    """The capture service's factory for the CRM pull (``build_factories`` calls it).

    Never raises: unusable settings (a URL that is not http(s)) become a source that reports
    the problem as its health, so the other sources still start.
    """
    return settled_factory(
        lambda: PullConfig.from_settings(settings),
        PullError,
        lambda cfg, store, pipeline, report: PullSource(
            cfg, store, pipeline, report, clock or SystemClock()
        ),
        SOURCE,
    )


def settled_factory(
    build: Callable[[], T],
    errors: type[Exception],
    start: Callable[[T, Store, Pipeline, HealthCallback], Source],
    source: str,
) -> SourceFactory:
    """A capture factory that reads its settings now (``build``) and never raises for them:
    settings ``build`` refuses with ``errors`` become a :class:`MisconfiguredSource` reporting
    the problem as ``source``'s health, so the other sources still start. The CRM pull, the
    vendor pulls, Gmail and lead ads all start this way."""
    try:
        cfg: T | None = build()
        problem = ""
    except errors as exc:
        cfg, problem = None, str(exc)

    def make(store: Store, pipeline: Pipeline, report: HealthCallback) -> Source:
        if cfg is None:
            return MisconfiguredSource(problem, report, name=source, source=source)
        return start(cfg, store, pipeline, report)

    return make


# --------------------------------------------------------------------------- leadtui pull --once


@dataclass
class PullReport:
    """What a manual pull did; :meth:`lines` is what ``leadtui pull --once`` prints."""

    start: datetime | None = None  # IST: the first window's start
    end: datetime | None = None  # IST: where the committed windows reach
    calls: int = 0
    windows: int = 0  # windows whose leads were committed
    lead_ids: set[int] = field(default_factory=set)
    new_ids: set[int] = field(default_factory=set)
    review: int = 0  # responses kept in the review queue (a lead the parser could not read)
    error: str | None = None  # why it stopped early; None when it reached now
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def leads(self) -> int:
        return len(self.lead_ids)

    @property
    def missed_by_email(self) -> int:
        """Leads new to leadtui: the API found them and no email had brought them."""
        return len(self.new_ids)

    @property
    def known(self) -> int:
        return len(self.lead_ids - self.new_ids)

    def lines(self) -> list[str]:
        out = list(self.notes)
        if self.start is not None and self.end is not None:
            span = (
                f"{format_ist(self.start.timestamp())[:17]} → "
                f"{format_ist(self.end.timestamp())[:17]} IST"
            )
            out.append(f"pulled {span} in {self.calls} call{'s' * (self.calls != 1)}")
        elif self.calls == 0 and self.error is None:
            out.append("nothing to pull: the last pull reached now")
        if self.windows:
            text = f"{self.leads} lead{'s' * (self.leads != 1)}"
            if self.leads:
                text += (
                    f": {self.missed_by_email} new (email missed them), {self.known} already known"
                )
            out.append(text)
        if self.review:
            out.append(f"{self.review} response(s) kept in the review queue: leadtui review")
        if self.error:
            out.append(f"stopped: {self.error}")
        return out


def stop_reason(
    answer: Answer, attempts: int, label: str, rejected: str, url_env: str
) -> str | None:
    """Why a manual pull stops at this failed answer (its ``attempts``-th for the window), with
    what to do, in one line; None when calling again may help (a rate limit, the vendor's
    server failing) and attempts are left. ``rejected`` is the line for a refused key (the
    CRM pull's and the vendor pulls' word it differently)."""
    if answer.code == 401:
        return rejected
    if answer.code == 400:
        return f"{label} refused the request: {answer.describe()}"
    if answer.code == 0:  # no answer: waiting the API's pace would not fix the network
        return f"{answer.describe()}; check the network (and {url_env}), then run it again"
    if attempts >= RUN_ONCE_ATTEMPTS:
        return f"gave up after {attempts} failed calls: {answer.describe()}"
    return None


class Tally(Protocol):
    """What a manual pull's report counts of each committed answer."""

    lead_ids: set[int]
    new_ids: set[int]
    review: int


def tally(report: Tally, committed: Committed) -> None:
    report.lead_ids.update(committed.lead_ids)
    report.new_ids.update(committed.new_ids)
    report.review += int(committed.failed)


def _since_ts(since: datetime, now: float) -> float:
    moment = since if since.tzinfo is not None else since.replace(tzinfo=IST)
    ts = moment.timestamp()
    if ts >= now - END_MARGIN:
        raise PullError(f"--since {since:%Y-%m-%d %H:%M} is not in the past")
    return ts


def run_once(
    settings: Settings,
    store: Store,
    since: datetime | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    clock: Clock | None = None,
    stop: threading.Event | None = None,
) -> PullReport:
    """Pull from the stored cursor (or ``since``) up to now, then return. Blocking.

    ``since`` without a zone is IST. Calls keep IndiaMART's pace (one per interval, shared with
    the capture service through the database), so a long range takes five minutes a window;
    ``progress`` is told each step. Raises :class:`PullError` only for a missing key or a bad
    ``since``; API, network and database failures end up in ``PullReport.error``.
    """
    cfg = PullConfig.from_settings(settings)
    clock = clock or SystemClock()
    return asyncio.run(
        _run_once(
            cfg,
            store,
            since,
            say=progress or (lambda _text: None),
            clock=clock,
            stop=stop or threading.Event(),
        )
    )


async def _run_once(
    cfg: PullConfig,
    store: Store,
    since: datetime | None,
    *,
    say: Callable[[str], None],
    clock: Clock,
    stop: threading.Event,
) -> PullReport:
    puller = Puller(cfg, store, Pipeline(store), clock, random.Random())
    report = PullReport()
    now = clock.now()
    cursor = puller.cursor()
    if since is not None:
        start = _since_ts(since, now)
        if start < earliest_start(now):
            report.notes.append(
                "IndiaMART keeps 365 days of leads: starting at "
                f"{format_ist(earliest_start(now))} IST"
            )
        contiguous = cursor is None or start <= cursor.end
    else:
        start = puller.next_start(now)
        contiguous = True
    attempts = 0
    async with client_session(cfg.loopback) as session:
        while not stop.is_set():
            now = clock.now()
            window = window_from(start, now)
            if window is None:
                break
            due = puller.calls().due(cfg.interval)
            if due > now:
                say(
                    f"waiting {ago(due - now)}: IndiaMART allows one call every {ago(cfg.interval)}"
                )
                if not await clock.sleep_until(due, stop):
                    break
                continue
            left = windows_left(window.start, now)
            say(
                f"calling IndiaMART for {window.describe()} ({left} window{'s' * (left != 1)} to go)"
            )
            report.calls += 1
            finished, answer = await until_stopped(puller.call(session, window), stop)
            if not finished or answer is None:
                break
            try:
                committed = puller.commit(answer) if answer.code == 200 else None
                if answer.ok:
                    puller.advance(window, contiguous=contiguous)
                puller.record(answer, committed, clock.now())
            except StoreError as exc:
                report.error = f"the database failed, the window stays to fetch again: {exc}"
                break
            if answer.ok:
                attempts = 0
                report.windows += 1
                if report.start is None:
                    report.start = datetime.fromtimestamp(window.start, IST)
                report.end = datetime.fromtimestamp(window.end, IST)
                if committed is not None:
                    tally(report, committed)
                    say(committed.describe())
                else:
                    say("no leads")
                if not window.capped:
                    break
                start = window.end - OVERLAP
                continue
            attempts += 1
            rejected = f"{KEY_REJECTED} ({answer.message or 'CODE 401'})"
            report.error = stop_reason(
                answer, attempts, "IndiaMART", rejected, "LEADTUI_INDIAMART_URL"
            )
            if report.error is not None:
                break
            say(f"{answer.describe()}; trying again")
    if stop.is_set() and report.error is None:
        report.error = "interrupted"
    return report


# --------------------------------------------------------------------------- leadtui doctor


def check(
    settings: Settings,
    store: Store | None = None,
    *,
    timeout: float = 15.0,
    clock: Clock | None = None,
) -> list[Check]:
    """The CRM pull's lines for ``leadtui doctor``.

    Key present, the last call and its result (from the stored state), how far leads are
    fetched, leads email missed; then one live call, but only when the last call is older than
    the interval (IndiaMART allows one call in 5 minutes; the capture service keeps that pace
    from the same stored time). Never shows the key.
    """
    clock = clock or SystemClock()
    try:
        cfg = PullConfig.from_settings(settings)
    except PullError as exc:
        return [Check("key", False, str(exc), "set LEADTUI_INDIAMART_KEY or [indiamart] key")]
    checks = [Check("key", True, f"set; calling {cfg.host} at most once every {ago(cfg.interval)}")]
    if store is None:
        checks.append(
            Check("last call", None, "unknown without the database, so IndiaMART is not called")
        )
        return checks
    now = clock.now()
    try:
        calls, cursor = Calls.load(store), Cursor.load(store)
        missed = store.count_missed_by_email(since_ts=now - MISSED_DAYS * 86400, source="indiamart")
    except StoreError as exc:
        checks.append(Check("last call", None, f"unknown: {exc}"))
        return checks
    checks.append(last_call_check(calls, now, KEY_FIX if calls.last_code == 401 else ""))
    if cursor is None:
        checks.append(
            Check("synced", None, f"never; the first pull fetches {cfg.backfill_days} days")
        )
    else:
        checks.append(Check("synced", True, f"leads fetched up to {format_ist(cursor.end)} IST"))
    if missed:
        checks.append(missed_check(missed))
    due = calls.due(cfg.interval)
    if calls.last_call_ts is not None and now < due:
        checks.append(
            Check(
                "live call",
                None,
                f"skipped: the last call was {ago(now - calls.last_call_ts)} ago and IndiaMART "
                f"allows one every {ago(cfg.interval)}; the next may go at {hm(due)}",
            )
        )
        return checks
    checks.append(asyncio.run(_live_check(cfg, store, clock, timeout)))
    return checks


def last_call_check(calls: Calls, now: float, fix: str) -> Check:
    """Doctor's "last call" line from a pull's stored record of calls (the CRM pull's and the
    vendor pulls'): when, and what came of it; ``fix`` shows when it failed."""
    if calls.last_call_ts is None:
        return Check("last call", None, "none yet")
    result = calls.last_result or "unknown"
    if calls.last_error and calls.last_code not in (200, 204):
        result = f"{result}: {calls.last_error}"
    ok = None if calls.last_code == 429 else calls.last_code in (200, 204)
    return Check("last call", ok, f"{ago(now - calls.last_call_ts)} ago: {result}", fix)


def missed_check(missed: int) -> Check:
    """Doctor's line for leads that came only through a marketplace's API lately."""
    return Check(
        "missed by email",
        None,
        f"{missed} lead{'s' * (missed != 1)} in {MISSED_DAYS} days came only through the API: "
        "check the mailbox's filters, forwarding and space",
    )


async def _live_check(cfg: PullConfig, store: Store, clock: Clock, seconds: float) -> Check:
    now = clock.now()
    window = Window(int(now - 3600), int(now - END_MARGIN), capped=False)
    calls = Calls.load(store)
    calls.last_call_ts = now
    calls.save(store)
    async with client_session(cfg.loopback) as session:
        try:
            answer = await asyncio.wait_for(fetch(session, cfg, window), seconds)
        except TimeoutError:
            answer = Answer(0, f"{cfg.host} did not answer within {seconds:g} s")
    message = cfg.redactor()(answer.message)
    answer = Answer(answer.code, message, answer.body, answer.records)
    # Record the result as the last call's (the service's backoff counters stay its own).
    calls = Calls.load(store)
    calls.last_call_ts = clock.now()  # the pace counts from the answer (see Puller.record)
    calls.last_code = answer.code
    calls.last_error = None if answer.ok else answer.describe()
    if answer.ok:
        calls.last_result = "key check by leadtui doctor: accepted"
        calls.last_success_ts = now
        if calls.rejected == cfg.fingerprint:
            calls.rejected = None  # the key works after all: the service may call again
    elif answer.code == 401:
        calls.last_result = "key rejected"
        calls.rejected = cfg.fingerprint
    else:
        calls.last_result = "rate limited" if answer.code == 429 else "failed"
    calls.save(store)
    if answer.ok:
        leads = answer.records or 0
        found = f"{leads} lead{'s' * (leads != 1)} in the last hour"
        return Check("live call", True, f"key accepted ({found})")
    if answer.code == 401:
        return Check("live call", False, f"{KEY_REJECTED} ({answer.describe()})", KEY_FIX)
    if answer.code == 429:
        return Check("live call", None, f"rate limited, key not checked: {answer.describe()}")
    if answer.code == 0:
        return Check(
            "live call",
            False,
            answer.describe(),
            "check the internet connection (and LEADTUI_INDIAMART_URL if you set it)",
        )
    return Check("live call", False, f"IndiaMART answered {answer.describe()}")
