"""Pulls from marketplaces whose inquiry API is asked by IST day: TradeIndia, ExportersIndia.

Neither vendor documents its API publicly; what is known comes from public integrations (see
:mod:`leadtui.channels.tradeindia` and :mod:`leadtui.channels.exportersindia`). The rules are
the IndiaMART CRM pull's (:mod:`leadtui.pull`), whose pieces this module reuses: the stored
record of calls and its backoff with jitter (:class:`~leadtui.pull.Calls`), the answer codes
(:class:`~leadtui.pull.Answer`: 200, 204, 401, 429, 400, 500, 0 for no answer), the redactor,
the HTTP client and the clock.

Days and the cursor
    A call asks for IST days: TradeIndia for one day (``from_date`` = ``to_date``), ExportersIndia
    from a day up to now (``date_from``). The cursor is the first day not yet *settled*: a day
    settles :data:`SETTLE` after its midnight, so the last call for a day is made after it ended
    and a lead the vendor lists late is fetched on that second look (overlapping windows). The
    cursor moves only after the call's inquiries are committed. A first run starts
    ``backfill_days`` ago and walks forward, ``backfilling k/n days`` in the health line.

Pace
    While behind (a backfill, or the day after midnight) calls go :data:`CATCH_UP_GAP` apart;
    once caught up, one call per interval (TradeIndia: 2 hours by default, as public integrations
    poll; never under 30 minutes; ExportersIndia: 1 hour, never under 15 minutes). The time of
    the last call is stored in the database, as for IndiaMART, so a restart, a second process,
    ``leadtui pull --source …`` and ``leadtui doctor`` share it. A loopback URL (the tests'
    stand-in) lifts the floors. Errors back off from :data:`RETRY_BASE` with jitter; a rejected
    key stops the calls until the key changes, with the fix in one line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import aiohttp

from leadtui.capture import Pipeline, RawItem
from leadtui.config import Secret
from leadtui.formats.text import IST
from leadtui.pull import (
    LOOPBACK_MIN_INTERVAL,
    MISSED_DAYS,
    Answer,
    Calls,
    Clock,
    Committed,
    PullError,
    get_answer,
    is_loopback_url,
    make_redactor,
    one_line,
)
from leadtui.store import Store

log = logging.getLogger(__name__)

SETTLE = 2 * 3600  # a day is fetched once more this long after its midnight (IST)
CATCH_UP_GAP = 20.0  # seconds between calls while behind (public clients call back to back)
RETRY_BASE = 600.0  # the first wait after an error; doubles, up to 12×, with jitter
MAX_BACKFILL_DAYS = 90
ACCEPT = {"Accept": "application/json"}

# An error text that means the credentials were refused (the vendors' wording is unknown).
_REJECTED = re.compile(
    r"\bkey\b|unauthori[sz]ed|authenticat|credential|access\s+denied|forbidden"
    r"|invalid\s+(?:user|profile|e-?mail|account|login)",
    re.IGNORECASE,
)
_ERROR_KEYS = ("error", "Error", "message", "msg", "MESSAGE", "status", "errorMessage")


@dataclass(frozen=True)
class Vendor:
    """What differs between the day-asked APIs; everything else is shared."""

    name: str  # Health.source, RawItem.source, the state keys: "tradeindia"
    label: str  # "TradeIndia"
    lead_source: str  # the leads' source (missed-by-email counts only its own)
    min_interval: float
    one_day: bool  # True: one day a call (TradeIndia); False: a day up to now
    wrappers: tuple[str, ...]  # keys a list of inquiries may come wrapped in
    is_item: Callable[[Mapping[str, Any]], bool]
    params: Callable[[VendorConfig, DayWindow], dict[str, str]]
    settings_hint: str  # what to set, for "off" and missing settings
    key_fix: str  # one line: how to get a key the vendor accepts
    url_env: str
    emails_read: bool  # leadtui parses this vendor's emails: API-only leads are "missed"

    @property
    def cursor_key(self) -> str:
        return f"pull:{self.name}:cursor"

    @property
    def calls_key(self) -> str:
        return f"pull:{self.name}:calls"

    @property
    def rejected(self) -> str:
        return f"{self.label} rejected the API key or account"


@dataclass(frozen=True)
class VendorConfig:
    vendor: Vendor
    url: str
    key: Secret = field(repr=False)
    account: tuple[tuple[str, str], ...]  # userid/profile_id or email: sent, not secret
    interval: float
    backfill_days: int
    loopback: bool

    @classmethod
    def build(
        cls,
        vendor: Vendor,
        *,
        url: str,
        key: Secret,
        account: dict[str, str],
        interval: float,
        backfill_days: int,
    ) -> VendorConfig:
        """Checked settings; :class:`PullError` says what to set when they cannot work."""
        missing = [name for name, value in account.items() if not value.strip()]
        if not key or missing:
            raise PullError(f"{vendor.label} pull needs more settings: {vendor.settings_hint}")
        url = url.strip()
        if urlparse(url).scheme not in ("http", "https"):
            raise PullError(f"{vendor.url_env} must be an http(s) URL, not {url[:80]!r}")
        loopback = is_loopback_url(url)
        wanted = interval if math.isfinite(interval) else vendor.min_interval
        floor = LOOPBACK_MIN_INTERVAL if loopback else vendor.min_interval
        days = max(0, min(int(backfill_days), MAX_BACKFILL_DAYS))
        pairs = tuple((k, v.strip()) for k, v in account.items())
        return cls(vendor, url, key, pairs, max(wanted, floor), days, loopback)

    @property
    def gap(self) -> float:
        return LOOPBACK_MIN_INTERVAL if self.loopback else CATCH_UP_GAP

    @property
    def retry(self) -> float:
        """The backoff's unit: short enough that an outage does not cost a day of leads."""
        return max(self.gap, min(self.interval, RETRY_BASE))

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or self.url

    def reveal_key(self) -> str:
        return self.key.reveal()

    @property
    def fingerprint(self) -> str:
        """Which key and account a stored "rejected" mark belongs to (a hash, not the key)."""
        text = "\0".join([self.vendor.name, self.reveal_key(), *(v for _, v in self.account)])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def redactor(self) -> Callable[[str], str]:
        return make_redactor(self.reveal_key())


# --------------------------------------------------------------------------- days


def ist_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, IST).date()


def first_unsettled(ts: float) -> date:
    """The earliest IST day that may still gain inquiries at ``ts`` (today, or yesterday
    during the first :data:`SETTLE` after midnight)."""
    return ist_day(ts - SETTLE)


@dataclass(frozen=True, slots=True)
class DayWindow:
    first: date
    last: date  # TradeIndia: the same day; ExportersIndia: today

    def describe(self) -> str:
        if self.first == self.last:
            return f"{self.first.isoformat()} (IST)"
        return f"{self.first.isoformat()} → {self.last.isoformat()} (IST)"


def window_from(vendor: Vendor, start: date, now: float) -> DayWindow | None:
    today = ist_day(now)
    if start > today:
        return None
    return DayWindow(start, start if vendor.one_day else today)


def days_left(vendor: Vendor, start: date, now: float) -> int:
    """Calls it takes from ``start`` to today."""
    span = (ist_day(now) - start).days + 1
    return max(0, span) if vendor.one_day else int(span > 0)


def next_after(window: DayWindow, call_ts: float) -> date:
    """Where the cursor goes once ``window``'s inquiries are committed: past every day that
    was settled when the call was made, never before the window's own first day."""
    return max(window.first, min(window.last + timedelta(days=1), first_unsettled(call_ts)))


# --------------------------------------------------------------------------- answers


def _decode(body: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False, None


def items_of(vendor: Vendor, value: Any) -> list[Any] | None:
    """The inquiries in a decoded answer: a list, a list wrapped in a key, or one inquiry."""
    if value is None or value in ([], {}, ""):
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        for key in vendor.wrappers:
            if isinstance(value.get(key), list):
                return list(value[key])
        if vendor.is_item(value):
            return [value]
    return None


def _refusal(text: str) -> Answer:
    message = one_line(text, 200)
    if _REJECTED.search(text):
        return Answer(401, message)
    return Answer(400, message)


def classify(vendor: Vendor, status: int, body: bytes) -> Answer:
    """An HTTP answer as the vendor means it, in the IndiaMART pull's codes."""
    if status in (401, 403):
        return Answer(401, f"HTTP {status}")
    if status == 429:
        return Answer(429, "HTTP 429")
    if status >= 500:
        return Answer(500, f"HTTP {status}")
    text = body.decode("utf-8", "replace").strip()
    if status != 200:
        return Answer(400, f"HTTP {status}" + (f": {one_line(text, 120)}" if text else ""))
    if text.lower() in ("", "null"):
        return Answer(204)  # "an empty body means no inquiries"
    decoded, value = _decode(body)
    if not decoded:
        if text.startswith("<"):
            return Answer(500, f"{vendor.label} answered a web page, not JSON")
        return _refusal(text)  # a plain-text error such as "Invalid key"
    items = items_of(vendor, value)
    if items is not None:
        return Answer(200 if items else 204, "", body if items else b"", len(items))
    if isinstance(value, str):
        return _refusal(value)
    if isinstance(value, Mapping):
        said = " ".join(str(value[k]) for k in _ERROR_KEYS if value.get(k) not in (None, ""))
        if said:
            return _refusal(said)
    return Answer(500, f"the answer is not a list of {vendor.label} inquiries")


async def fetch(session: aiohttp.ClientSession, cfg: VendorConfig, window: DayWindow) -> Answer:
    """One GET of the vendor's inquiry API. Never raises (but can be cancelled)."""
    answer = await get_answer(
        session,
        cfg.url,
        cfg.vendor.params(cfg, window),
        host=cfg.host,
        redact=cfg.redactor(),
        classify=lambda status, body: classify(cfg.vendor, status, body),
        headers=ACCEPT,
    )
    return Answer(answer.code, cfg.redactor()(answer.message), answer.body, answer.records)


# --------------------------------------------------------------------------- stored state


@dataclass
class DayCursor:
    next_day: date  # inquiries of the days before are committed, this day may still grow
    backfill_done: int = 0  # calls done in the running backfill (0 when caught up)
    seen: bool = False  # next_day was already asked for once (it is today, or was)

    @classmethod
    def load(cls, store: Store, vendor: Vendor) -> DayCursor | None:
        data = store.get_state(vendor.cursor_key) or {}
        if not data.get("next_day"):
            return None
        day = date.fromisoformat(str(data["next_day"]))
        return cls(day, int(data.get("backfill_done") or 0), bool(data.get("seen")))


class DayPuller:
    """The rules every caller shares: days, the stored pace, committing, backoff."""

    def __init__(
        self,
        cfg: VendorConfig,
        store: Store,
        pipeline: Pipeline,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.vendor = cfg.vendor
        self.store = store
        self.pipeline = pipeline
        self.clock = clock
        self.rng = rng or random.Random()
        self.redact = cfg.redactor()

    def calls(self) -> Calls:
        return Calls.load(self.store, self.vendor.calls_key)

    def cursor(self) -> DayCursor | None:
        return DayCursor.load(self.store, self.vendor)

    def next_start(self, now: float) -> date:
        """The cursor's day, or the backfill's first day (stored by the first attempt, so a
        retry asks for the same day rather than one that slid with the clock)."""
        data = self.store.get_state(self.vendor.cursor_key) or {}
        for key in ("next_day", "backfill_from"):
            if data.get(key):
                return date.fromisoformat(str(data[key]))
        start = ist_day(now) - timedelta(days=self.cfg.backfill_days)
        self.store.set_state(self.vendor.cursor_key, {"backfill_from": start.isoformat()})
        return start

    def behind(self, now: float) -> bool:
        """Days to catch up: a settled day not fetched since, or a day never asked for."""
        cursor = self.cursor()
        if cursor is None:
            return True
        return cursor.next_day < first_unsettled(now) or not cursor.seen

    def due(self, calls: Calls, now: float) -> float:
        return calls.due(self.cfg.gap if self.behind(now) else self.cfg.interval)

    async def call(self, session: aiohttp.ClientSession, window: DayWindow) -> Answer:
        """Record the call's time first (a crash mid-call still counts), then make it."""
        calls = self.calls()
        calls.last_call_ts = self.clock.now()
        calls.save(self.store, self.vendor.calls_key)
        return await fetch(session, self.cfg, window)

    def commit(self, answer: Answer) -> Committed:
        """Each inquiry of a 200 as its own raw item through the pipeline, in one batch: a
        malformed one goes to the review queue and the others still land."""
        if answer.code != 200:
            return Committed()
        _, value = _decode(answer.body)
        items = [
            RawItem(
                json.dumps(item, ensure_ascii=False).encode("utf-8"),
                source=self.vendor.name,
                kind="json",
                channel="pull",
            )
            for item in items_of(self.vendor, value) or []
        ]
        outcomes = self.pipeline.accept_many(items)
        lead_ids = tuple(dict.fromkeys(i for o in outcomes for i in o.lead_ids))
        new_ids = tuple(dict.fromkeys(i for o in outcomes for i in o.new_lead_ids))
        return Committed(lead_ids, new_ids, any(o.status == "failed" for o in outcomes))

    def advance(self, window: DayWindow, call_ts: float, *, contiguous: bool = True) -> None:
        """Move the cursor (never back) after ``window``'s inquiries are committed."""
        cursor = self.cursor()
        if cursor is not None and not contiguous:
            return
        target = next_after(window, call_ts)
        seen = target <= window.last
        if cursor is not None and cursor.next_day > target:
            target, seen = cursor.next_day, cursor.seen
        behind = target < first_unsettled(self.clock.now()) or not seen
        done = (cursor.backfill_done if cursor else 0) + 1 if behind else 0
        state = {"next_day": target.isoformat(), "backfill_done": done, "seen": seen}
        self.store.set_state(self.vendor.cursor_key, state)

    def record(self, answer: Answer, committed: Committed | None, now: float) -> Calls:
        calls = self.calls()
        result = (committed or Committed()).describe()
        calls.note(
            answer,
            result,
            now,
            interval=self.cfg.retry,
            rng=self.rng,
            fingerprint=self.cfg.fingerprint,
        )
        calls.save(self.store, self.vendor.calls_key)
        return calls

    def missed_by_email(self, now: float) -> int:
        if not self.vendor.emails_read:
            return 0
        since = now - MISSED_DAYS * 86400
        return self.store.count_missed_by_email(since_ts=since, source=self.vendor.lead_source)
