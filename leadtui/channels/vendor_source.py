"""The day-asked pulls at work: the capture source, a manual pull, and ``leadtui doctor``'s lines.

:mod:`leadtui.channels.vendor_pull` holds the rules (days, cursor, answers, pace); this module
runs them. The shape follows :class:`leadtui.pull.PullSource`: one call when due, the cursor
after the commit, the health line after every step, a rejected key waiting for a new one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import aiohttp

from leadtui.capture import HealthCallback, Pipeline, SourceFactory
from leadtui.channels.vendor_pull import (
    DayCursor,
    DayPuller,
    DayWindow,
    Vendor,
    VendorConfig,
    days_left,
    ist_day,
    window_from,
)
from leadtui.config import Check
from leadtui.pull import (
    MISSED_DAYS,
    REJECTED_RECHECK,
    Answer,
    Calls,
    Clock,
    Committed,
    PullError,
    SystemClock,
    ago,
    client_session,
    hm,
    last_call_check,
    missed_check,
    one_line,
    settled_factory,
    stop_reason,
    tally,
    until_stopped,
)
from leadtui.store import Health, Store, StoreError

log = logging.getLogger(__name__)


@dataclass
class VendorPullSource:
    """The capture service's pull for one vendor: runs until ``stop``; never raises."""

    cfg: VendorConfig
    store: Store
    pipeline: Pipeline
    report: HealthCallback
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.cfg.vendor.name

    def run(self, stop: threading.Event) -> None:
        try:
            asyncio.run(self._run(stop))
        except Exception:  # pragma: no cover - _run catches everything itself
            log.error("%s: stopped:\n%s", self.name, self.cfg.redactor()(traceback.format_exc()))

    async def _run(self, stop: threading.Event) -> None:
        puller = DayPuller(self.cfg, self.store, self.pipeline, self.clock, self.rng)
        redact = puller.redact
        async with client_session(self.cfg.loopback) as session:
            while not stop.is_set():
                try:
                    await self._step(puller, session, stop)
                except Exception as exc:  # a database outage or a bug: report, wait, go on
                    if isinstance(exc, StoreError):
                        log.warning("%s: %s", self.name, redact(str(exc)))
                    else:
                        log.error(
                            "%s: unexpected error:\n%s", self.name, redact(traceback.format_exc())
                        )
                    due = self.clock.now() + self.cfg.retry
                    error = redact(one_line(f"{type(exc).__name__}: {exc}"))
                    self._send(
                        "retrying",
                        [redact(one_line(str(exc))), f"next try {hm(due)}"],
                        None,
                        error,
                        due,
                    )
                    await self.clock.sleep_until(due, stop)

    async def _step(
        self, puller: DayPuller, session: aiohttp.ClientSession, stop: threading.Event
    ) -> None:
        calls = puller.calls()
        now = self.clock.now()
        if calls.rejected == self.cfg.fingerprint:
            self._health(puller, calls, None)
            await self.clock.sleep_until(now + REJECTED_RECHECK, stop)
            return
        due = puller.due(calls, now)
        if due > now:
            self._health(puller, calls, due)
            await self.clock.sleep_until(due, stop)
            return  # look at the stored state again: another process may have called
        window = window_from(self.cfg.vendor, puller.next_start(now), now)
        if window is None:  # cannot happen with a sane clock: the cursor is past today
            await self.clock.sleep_until(now + self.cfg.interval, stop)
            return
        self._health(puller, calls, now, calling=window)
        finished, answer = await until_stopped(puller.call(session, window), stop)
        if not finished or answer is None:
            return
        committed = puller.commit(answer) if answer.code == 200 else None
        if answer.ok:
            puller.advance(window, now)
        calls = puller.record(answer, committed, self.clock.now())
        self._log(window, answer, committed)
        self._health(puller, calls, puller.due(calls, self.clock.now()))

    def _log(self, window: DayWindow, answer: Answer, committed: Committed | None) -> None:
        if answer.ok:
            log.info(
                "%s %s: %s", self.name, window.describe(), (committed or Committed()).describe()
            )
        elif answer.code == 401:
            log.warning(
                "%s: %s (%s); no more calls with it",
                self.name,
                self.cfg.vendor.rejected,
                answer.message,
            )
        else:
            log.warning("%s %s: %s", self.name, window.describe(), answer.describe())

    def _health(
        self, puller: DayPuller, calls: Calls, due: float | None, calling: DayWindow | None = None
    ) -> None:
        vendor, now = self.cfg.vendor, self.clock.now()
        parts: list[str] = []
        if calls.rejected == self.cfg.fingerprint:
            state, due = "key rejected", None
            parts.append(f"{vendor.rejected}: {vendor.key_fix}")
        elif calls.last_code == 429 and calls.rate_limited:
            state = "rate limited"
            parts.append(f"{vendor.label}: {calls.last_error or 'too many requests'}")
        elif calls.failures:
            state = "error" if calls.last_code == 400 else "retrying"
            parts.append(f"{calls.last_error} (failed {calls.failures}×)")
        else:
            start = calling.first if calling else puller.next_start(now)
            cursor = puller.cursor()
            done = cursor.backfill_done if cursor else 0
            left = days_left(vendor, start, now) if puller.behind(now) else 0
            if cursor is None or left:
                state = f"backfilling {done}/{done + max(left, 1)} days"
            else:
                state = "waiting" if calls.last_call_ts is not None else "starting"
            if cursor is not None:
                parts.append(f"settled through {(cursor.next_day - timedelta(days=1)).isoformat()}")
            if calls.last_call_ts is not None:
                parts.append(f"last call {hm(calls.last_call_ts)}: {calls.last_result}")
        if calling is not None:
            parts.append(f"calling {vendor.label} for {calling.describe()}")
        elif due is not None:
            parts.append(f"next call {hm(due)}")
        if missed := puller.missed_by_email(now):
            parts.append(f"{missed} lead{'s' * (missed != 1)} email missed ({MISSED_DAYS} days)")
        self._send(state, parts, calls.last_success_ts, calls.last_error, due)

    def _send(
        self,
        state: str,
        parts: list[str],
        ok_ts: float | None,
        error: str | None,
        due: float | None,
    ) -> None:
        try:
            detail = " · ".join(p for p in parts if p)
            self.report(
                Health(
                    source=self.name,
                    state=state,
                    detail=detail,
                    last_success_ts=ok_ts,
                    last_error=error,
                    next_retry_ts=due,
                )
            )
        except Exception:
            log.exception("%s: cannot report health", self.name)


def factory(
    make_config: Callable[[], VendorConfig], vendor: Vendor, *, clock: Clock | None = None
) -> SourceFactory:
    """The capture service's factory; unusable settings become a source that says why."""
    return settled_factory(
        make_config,
        PullError,
        lambda cfg, store, pipeline, report: VendorPullSource(
            cfg, store, pipeline, report, clock or SystemClock()
        ),
        vendor.name,
    )


# --------------------------------------------------------------------------- a manual pull


@dataclass
class DayReport:
    """What a manual pull did; :meth:`lines` is what ``leadtui pull --source …`` prints."""

    label: str
    first: date | None = None
    last: date | None = None
    calls: int = 0
    lead_ids: set[int] = field(default_factory=set)
    new_ids: set[int] = field(default_factory=set)
    review: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.first is not None and self.last is not None:
            span = f"{self.first.isoformat()} → {self.last.isoformat()} (IST)"
            out.append(f"pulled {self.label} {span} in {self.calls} call{'s' * (self.calls != 1)}")
        leads = len(self.lead_ids)
        known = len(self.lead_ids - self.new_ids)
        if self.first is not None or self.error is None:  # not "0 leads" for a refused first call
            out.append(
                f"{leads} lead{'s' * (leads != 1)}: {len(self.new_ids)} new, {known} already known"
            )
        if self.review:
            out.append(f"{self.review} inquiry batch(es) kept in the review queue: leadtui review")
        if self.error:
            out.append(f"stopped: {self.error}")
        return out


def run_once(
    cfg: VendorConfig,
    store: Store,
    since: date | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    clock: Clock | None = None,
    stop: threading.Event | None = None,
) -> DayReport:
    """Pull from the stored cursor (or ``since``, an IST day) up to today, then return."""
    clock = clock or SystemClock()
    say = progress or (lambda _text: None)
    return asyncio.run(
        _run_once(cfg, store, since, say, clock=clock, stop=stop or threading.Event())
    )


async def _run_once(
    cfg: VendorConfig,
    store: Store,
    since: date | None,
    say: Callable[[str], None],
    *,
    clock: Clock,
    stop: threading.Event,
) -> DayReport:
    vendor = cfg.vendor
    puller = DayPuller(cfg, store, Pipeline(store), clock)
    report = DayReport(vendor.label)
    cursor = puller.cursor()
    if since is not None and since > ist_day(clock.now()):
        raise PullError(f"--since {since.isoformat()} is not in the past")
    start = since if since is not None else puller.next_start(clock.now())
    contiguous = since is None or cursor is None or since <= cursor.next_day
    attempts = 0
    async with client_session(cfg.loopback) as session:
        while not stop.is_set():
            now = clock.now()
            window = window_from(vendor, start, now)
            if window is None:
                break
            due = puller.calls().due(cfg.gap)
            if due > now:
                say(f"waiting {ago(due - now)} before the next call")
                if not await clock.sleep_until(due, stop):
                    break
                continue
            say(f"calling {vendor.label} for {window.describe()}")
            report.calls += 1
            finished, answer = await until_stopped(puller.call(session, window), stop)
            if not finished or answer is None:
                break
            try:
                committed = puller.commit(answer) if answer.code == 200 else None
                if answer.ok:
                    puller.advance(window, now, contiguous=contiguous)
                puller.record(answer, committed, clock.now())
            except StoreError as exc:
                report.error = f"the database failed, the day stays to fetch again: {exc}"
                break
            if answer.ok:
                attempts = 0
                report.first = report.first or window.first
                report.last = window.last
                if committed is not None:
                    tally(report, committed)
                say((committed or Committed()).describe())
                start = window.last + timedelta(days=1)
                continue
            attempts += 1
            rejected = f"{vendor.rejected} ({answer.message or 'HTTP 401'}): {vendor.key_fix}"
            report.error = stop_reason(answer, attempts, vendor.label, rejected, vendor.url_env)
            if report.error is not None:
                break
            say(f"{answer.describe()}; trying again")
    if stop.is_set() and report.error is None:
        report.error = "interrupted"
    return report


# --------------------------------------------------------------------------- leadtui doctor


def check(
    cfg: VendorConfig, store: Store | None, *, timeout: float = 15.0, clock: Clock | None = None
) -> list[Check]:
    """Doctor's lines: settings, the last call, how far inquiries are settled, and one live
    call for today when the pace allows it. Never shows the key."""
    clock = clock or SystemClock()
    vendor = cfg.vendor
    who = ", ".join(f"{k} {v}" for k, v in cfg.account)
    lines = [
        Check(
            "key", True, f"set for {who}; calling {cfg.host} at most once every {ago(cfg.interval)}"
        )
    ]
    if store is None:
        lines.append(
            Check(
                "last call", None, f"unknown without the database, so {vendor.label} is not called"
            )
        )
        return lines
    puller = DayPuller(cfg, store, Pipeline(store), clock)
    now = clock.now()
    try:
        calls, cursor = puller.calls(), DayCursor.load(store, vendor)
        missed = puller.missed_by_email(now)
    except StoreError as exc:
        return [*lines, Check("last call", None, f"unknown: {exc}")]
    lines.append(
        last_call_check(calls, now, vendor.key_fix if calls.rejected == cfg.fingerprint else "")
    )
    if cursor is None:
        lines.append(
            Check("synced", None, f"never; the first pull fetches {cfg.backfill_days} days")
        )
    else:
        through = (cursor.next_day - timedelta(days=1)).isoformat()
        lines.append(Check("synced", True, f"inquiries settled through {through} (IST)"))
    if missed:
        lines.append(missed_check(missed))
    due = calls.due(cfg.gap)
    if calls.rejected != cfg.fingerprint and now < due:
        lines.append(
            Check(
                "live call",
                None,
                f"skipped: the last call was {ago(now - (calls.last_call_ts or now))} ago",
            )
        )
        return lines
    return [*lines, asyncio.run(_live_check(puller, timeout))]


def doctor_lines(
    vendor: Vendor,
    enabled: bool,
    build: Callable[[], VendorConfig],
    store: Store | None,
    timeout: float,
) -> list[Check]:
    """One vendor pull's lines under its own name: how to turn it on when it is off, what is
    wrong with its settings, or :func:`check`'s lines (the registry calls this per vendor)."""
    if not enabled:
        return [
            Check(
                vendor.name, None, f"off: {vendor.settings_hint} to pull {vendor.label} inquiries"
            )
        ]
    try:
        cfg = build()
    except PullError as exc:
        return [Check(vendor.name, False, str(exc), vendor.settings_hint)]
    return [
        Check(vendor.name, item.ok, f"{item.name}: {item.detail}", item.fix)
        for item in check(cfg, store, timeout=timeout)
    ]


async def _live_check(puller: DayPuller, seconds: float) -> Check:
    cfg, vendor, now = puller.cfg, puller.vendor, puller.clock.now()
    window = DayWindow(ist_day(now), ist_day(now))
    async with client_session(cfg.loopback) as session:
        try:
            answer = await asyncio.wait_for(puller.call(session, window), seconds)
        except TimeoutError:
            answer = Answer(0, f"{cfg.host} did not answer within {seconds:g} s")
    calls = puller.calls()
    calls.last_call_ts, calls.last_code = puller.clock.now(), answer.code
    calls.last_error = None if answer.ok else answer.describe()
    if answer.ok:
        calls.last_result, calls.last_success_ts = "key check by leadtui doctor: accepted", now
        if calls.rejected == cfg.fingerprint:
            calls.rejected = None  # the key works after all: the service may call again
    elif answer.code == 401:
        calls.last_result, calls.rejected = "key rejected", cfg.fingerprint
    else:
        calls.last_result = "failed"
    calls.save(puller.store, vendor.calls_key)
    if answer.ok:
        found = answer.records or 0
        return Check(
            "live call", True, f"key accepted ({found} inquir{'ies' if found != 1 else 'y'} today)"
        )
    if answer.code == 401:
        return Check("live call", False, f"{vendor.rejected} ({answer.describe()})", vendor.key_fix)
    if answer.code == 0:
        return Check(
            "live call",
            False,
            answer.describe(),
            f"check the internet connection (and {vendor.url_env})",
        )
    return Check(
        "live call",
        None if answer.code == 429 else False,
        f"{vendor.label} answered {answer.describe()}",
    )
