"""The outbox sender: delivers what the store queued, once per team, at least once.

The capture path (and a triage change) writes an outbox row per event and target in the
transaction that commits the change (``_store/outbox.py``). This module delivers them:
:class:`Sender` is a capture source (the registry starts it under the capture lease when a
``[[notify]]`` or ``[[webhook]]`` target is configured), so a team gets each message once, not
once per TUI. The targets themselves (ntfy, Telegram, webhook, email, command) are in
``leadtui/targets.py``.

Delivery is at least once. A row is marked sent only after the receiver answered 2xx (a
command: exit 0; email: the server took it), so a sender killed mid-delivery leaves it pending
and the next holder of the lease sends it again; every request carries the event's stable id
(``Idempotency-Key`` and ``X-Leadtui-Event-Id`` headers, and ``id`` in a webhook's body) for
the receiver to dedupe on. A failure is retried with exponential backoff and jitter (or after
the receiver's ``Retry-After``/``retry_after``) for 24 hours; then the row is a dead letter
with its last error (``leadtui outbox list``, ``doctor``, the review queue). A receiver that
refuses the message itself (400, 413, 422) makes it a dead letter at once.

A target's quiet hours (in ``ui.timezone``) hold its rows until they end, not counted as an
attempt, or mark them skipped, as the target chose.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from datetime import time as clock

from leadtui import autoreply
from leadtui.alerts import Watcher
from leadtui.capture import HealthCallback, Pipeline, Source, SourceFactory
from leadtui.config import Check, NotifyTarget, Settings
from leadtui.store import Health, OutboxCounts, OutboxItem, OutboxRoute, Store, StoreError
from leadtui.targets import (
    Answer,
    Target,
    sample_event,
    sign,
    text_of,
    title_of,
    verify,
)
from leadtui.targets import make_target as make_notify_target

__all__ = [
    "Answer",
    "Sender",
    "make_target",
    "next_attempt",
    "quiet_until",
    "routes",
    "sample_event",
    "send_test",
    "sign",
    "text_of",
    "title_of",
    "verify",
]

log = logging.getLogger(__name__)

GIVE_UP_AFTER = 24 * 3600.0  # then a dead letter
BASE_DELAY = 5.0  # the first retry, before jitter
MAX_DELAY = 3600.0  # backoff stops growing here
POLL_SECONDS = 0.5  # the sender's longest sleep; a commit elsewhere wakes it at once
_IST = timezone(timedelta(hours=5, minutes=30), "IST")


def route_of(target: NotifyTarget, settings: Settings | None = None) -> OutboxRoute:
    route = OutboxRoute(
        target.name,
        target.events,
        target.lead_types,
        target.sources,
        target.min_order_value,
        target.words,
        target.owners,
    )
    if target.type in autoreply.TYPES and settings is not None:
        config = settings.autoreply
        route = OutboxRoute(
            target.name,
            frozenset({"lead.created"}),
            needs=autoreply.needs(target),
            once_per_buyer=config.once_per_buyer_hours * 3600 or 1.0,
            max_age=config.max_age_hours * 3600,
        )
    return route


def all_targets(settings: Settings) -> list[NotifyTarget]:
    """``[[notify]]`` and ``[[webhook]]`` tables, and the acknowledgements ``[autoreply]`` asks for."""
    return [*settings.notify, *autoreply.targets(settings)]


def routes(settings: Settings) -> list[OutboxRoute]:
    """The outbox routes of these settings: which target wants which events of which leads."""
    return [route_of(t, settings) for t in all_targets(settings)]


def make_target(config: NotifyTarget, settings: Settings | None = None) -> Target:
    """The target for one table (or an acknowledgement); email ones need ``settings``."""
    if config.type in autoreply.TYPES:
        return autoreply.make(config, settings or Settings())
    return make_notify_target(config, settings)


# --------------------------------------------------------------------------- quiet hours


def zone_of(name: str) -> tzinfo | None:
    """The time zone of ``ui.timezone`` (None: this machine's own, for ``local``). India's
    zones work without a time zone database, as elsewhere in leadtui."""
    if name == "local":
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return _IST


def quiet_until(hours: tuple[int, int] | None, now: float, zone: tzinfo | None) -> float | None:
    """When the quiet hours ``now`` falls in end (a Unix time), or None outside them.

    ``hours`` is (start, end) in minutes after local midnight; a start after the end spans
    midnight (22:00-07:00).
    """
    if hours is None:
        return None
    start, end = hours
    local = datetime.fromtimestamp(now, zone)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    day: date = local.date() if minute < end else local.date() + timedelta(days=1)
    until = datetime.combine(day, clock(end // 60, end % 60), tzinfo=zone)
    return until.timestamp()


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --------------------------------------------------------------------------- the sender


def next_attempt(
    item: OutboxItem,
    answer: Answer,
    now: float,
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    give_up_after: float = GIVE_UP_AFTER,
    rng: random.Random | None = None,
) -> float | None:
    """When to try a failed row again (None: never, it is a dead letter).

    Exponential backoff with jitter (half to all of ``base * 2**attempts``, at most ``cap``),
    never sooner than the receiver's ``Retry-After``, and nothing after ``give_up_after``
    seconds from the row's creation.
    """
    if answer.permanent:
        return None
    delay = min(cap, base * 2 ** min(item.attempts, 30)) * (rng or random).uniform(0.5, 1.0)
    if answer.retry_after is not None:
        delay = max(delay, min(answer.retry_after, cap))
    at = now + delay
    return None if at > item.created_ts + give_up_after else at


@dataclass
class Sender:
    """Delivers due outbox rows, one at a time, until stopped. A capture source."""

    store: Store
    targets: Sequence[Target]
    report: HealthCallback
    base_delay: float = BASE_DELAY
    max_delay: float = MAX_DELAY
    give_up_after: float = GIVE_UP_AFTER
    poll: float = POLL_SECONDS
    name: str = "notify"
    zone: tzinfo | None = _IST  # quiet hours are read in ui.timezone
    watcher: Watcher | None = None  # alerts about the service (source failing, digest, …)
    _by_name: dict[str, Target] = field(default_factory=dict)
    _last_error: str | None = None
    _last_success: float | None = None

    def __post_init__(self) -> None:
        self._by_name = {t.name: t for t in self.targets}

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set (returns within ``poll`` + one delivery's timeout)."""
        try:
            woken = self.store.outbox_due_now()  # a restart or new settings: retry at once
            if woken:
                log.info("notify: %d waiting notification(s) are due now", woken)
        except StoreError as exc:
            log.warning("notify: %s", exc)
        self._health()
        # Woken by another connection's commit (a captured lead writes its outbox rows in
        # its own transaction), so a notification leaves within milliseconds; ``poll`` is
        # the longest sleep, for retries falling due and for a stop on PostgreSQL.
        waiter = self.store.waiter()
        try:
            while not stop.is_set():
                try:
                    if self.watcher is not None:
                        self.watcher.tick()
                    sent = self.deliver_due(stop)
                except StoreError as exc:
                    log.warning("notify: %s", exc)
                    sent = 0
                    stop.wait(1.0)
                except Exception as exc:  # a bug must not end every notification for good
                    log.exception("notify: the sender's pass failed; trying again in 5 s")
                    self._last_error = f"internal error: {type(exc).__name__} (see the log)"
                    self._health()
                    sent = 0
                    stop.wait(5.0)
                if not sent:
                    waiter.wait(self.poll, stop)
        finally:
            waiter.close()

    def deliver_due(self, stop: threading.Event | None = None, limit: int = 20) -> int:
        """One pass: deliver the rows due now. Returns how many were attempted."""
        items = self.store.outbox_due(time.time(), limit)
        for item in items:
            if stop is not None and stop.is_set():
                break
            self.deliver(item)
        if items:
            self._health()
        return len(items)

    def deliver(self, item: OutboxItem) -> Answer | None:
        """Deliver one row; None when its target's quiet hours held or dropped it."""
        target = self._by_name.get(item.target)
        if target is not None and (self._quiet(item, target) or self._held_back(item, target)):
            return None
        if target is None:
            answer = Answer(False, None, f"no [[notify]] target is called {item.target!r} now")
        else:
            try:
                answer = target.deliver(item.payload)
            except Exception as exc:  # a bug must not stop the others; the row waits
                log.exception("notify: delivering outbox row %d to %s raised", item.id, item.target)
                detail = f"internal error: {type(exc).__name__}"
                answer = Answer(False, None, target.scrub(detail))
        now = time.time()
        if answer.ok:
            if (
                answer.sent
                and item.lead_id is not None
                and isinstance(target, autoreply.Acknowledgement)
            ):
                self.store.autoreply_sent(
                    item.id, item.lead_id, target.channel, answer.sent, self._today()
                )
            else:
                self.store.outbox_sent(item.id)
            self._last_success = now
            self._last_error = None
            log.info(
                "notify: %s %s for lead %s to %s: %s",
                item.kind,
                item.event_id,
                item.lead_id,
                item.target,
                answer.detail,
            )
            return answer
        at = next_attempt(
            item, answer, now, base=self.base_delay, cap=self.max_delay,
            give_up_after=self.give_up_after,
        )  # fmt: skip
        self.store.outbox_failed(item.id, answer.detail, at)
        self._last_error = f"{item.target}: {answer.detail}"
        if at is None:
            log.warning(
                "notify: gave up on %s %s to %s (a dead letter): %s",
                item.kind,
                item.event_id,
                item.target,
                answer.detail,
            )
        else:
            log.warning(
                "notify: %s %s to %s failed (%s); retrying in %.0f s",
                item.kind,
                item.event_id,
                item.target,
                answer.detail,
                at - now,
            )
        return answer

    def _today(self) -> str:
        return datetime.fromtimestamp(time.time(), self.zone).date().isoformat()

    def _held_back(self, item: OutboxItem, target: Target) -> bool:
        """An acknowledgement the buyer no longer wants (STOP since it was queued), or one
        over the day's cap: skipped, with the reason in the outbox listing."""
        if not isinstance(target, autoreply.Acknowledgement):
            return False
        reason = ""
        if self.store.autoreply_opted_out(item.payload.get("lead") or {}):
            reason = "not sent: the buyer wrote STOP"
        elif self.store.autoreply_sent_on(self._today(), target.channel) >= target.daily_cap:
            reason = f"not sent: the daily cap of {target.daily_cap} {target.channel} acknowledgements was reached"
        if not reason:
            return False
        self.store.outbox_skip(item.id, reason)
        log.info("notify: %s %s to %s %s", item.kind, item.event_id, item.target, reason)
        return True

    def _quiet(self, item: OutboxItem, target: Target) -> bool:
        """Hold or drop ``item`` if its target is in quiet hours now."""
        hours = target.config.quiet_hours
        until = quiet_until(hours, time.time(), self.zone)
        if until is None or hours is None:
            return False
        span = f"{_hhmm(hours[0])}-{_hhmm(hours[1])}"
        if target.config.quiet == "drop":
            self.store.outbox_skip(item.id, f"dropped: quiet hours {span}")
            log.info(
                "notify: %s %s to %s dropped in quiet hours", item.kind, item.event_id, item.target
            )
        else:
            self.store.outbox_defer(item.id, until)
            log.info(
                "notify: %s %s to %s held until quiet hours end (%s)",
                item.kind, item.event_id, item.target, _hhmm(hours[1]),
            )  # fmt: skip
        return True

    def _health(self) -> None:
        try:
            counts = {c.target: c for c in self.store.outbox_counts()}
        except StoreError:
            return
        waiting = sum(counts[t].pending for t in self._by_name if t in counts)
        dead = sum(c.dead for c in counts.values())
        detail = f"{len(self._by_name)} target(s), {waiting} waiting, {dead} dead letter(s)"
        self.report(
            Health(
                source="notify",
                state="error" if self._last_error else "ok",
                detail=detail,
                last_success_ts=self._last_success,
                last_error=self._last_error,
            )
        )


def sender_factory(settings: Settings) -> SourceFactory:
    """The capture service's factory for the sender (the registry calls it)."""
    targets = [make_target(t, settings) for t in all_targets(settings)]
    zone = zone_of(settings.timezone)

    def make(store: Store, pipeline: Pipeline, report: HealthCallback) -> Source:
        del pipeline
        watcher = Watcher(store, settings, zone)
        return Sender(store, targets, report, zone=zone, watcher=watcher)

    return make


def send_test(config: NotifyTarget, settings: Settings | None = None) -> Answer:
    """Send :func:`sample_event` to one target now (``leadtui notify test``), not through the
    outbox: the answer is printed, nothing is kept."""
    return make_target(config, settings).deliver(sample_event())


def check(settings: Settings, store: Store | None) -> list[Check]:
    """``doctor``'s lines: each target (no secret), its waiting and dead rows, and the newest
    dead letter's error."""
    configured = all_targets(settings)
    if not configured:
        return [Check("notify", None, "off: add a [[notify]] table to reach you away from here")]
    counts: dict[str, OutboxCounts] = {}
    newest_dead: dict[str, OutboxItem] = {}
    if store is not None:
        try:
            counts = {c.target: c for c in store.outbox_counts()}
            for item in store.outbox_items("dead", 200):
                newest_dead.setdefault(item.target, item)
        except StoreError as exc:
            return [Check("notify", False, str(exc))]
    lines = []
    for config in configured:
        target = make_target(config, settings)
        c = counts.get(config.name)
        events = ", ".join(sorted(route_of(config, settings).events))
        line = f"{config.name}: {target.describe()}, for {events}"
        if c is None:
            lines.append(Check("notify", True, f"{line}; nothing sent yet"))
            continue
        state = f"{c.sent} sent, {c.pending} waiting, {c.dead} dead letter(s)"
        fix = ""
        if c.dead:
            dead = newest_dead.get(config.name)
            error = f"newest, {dead.id}: {target.scrub(dead.last_error or '?')}; " if dead else ""
            fix = f"{error}see leadtui outbox list --state dead, then retry ID or drop ID"
        lines.append(Check("notify", not c.dead, f"{line}; {state}", fix))
    return lines
