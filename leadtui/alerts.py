"""The outbox's watcher: alerts about the service, and leads whose time has come.

- ``source.failing``: a source (the mailbox, the CRM pull, …) has failed for more than
  ``[alerts] source_failing_minutes``; told once per failure, again only after it recovered.
- ``review.growing``: the review queue grew by ``review_growth`` items since it was last told
  (or since the watcher first looked: a queue that was long already is not news).
- ``push.watchdog``: no IndiaMART push for ``push_silence_hours`` (12 by default) while email
  or the CRM pull still found IndiaMART leads. IndiaMART switches a push URL off, silently,
  after 48 hours without success; this warns well before.
- ``digest``: once a day at ``digest_at`` in ``ui.timezone``: new leads, uncontacted, due
  today, BuyLeads going stale, leads missed by email. A digest more than three hours late
  (the service was down at the time) is skipped for that day rather than sent at night.
- ``reminder.due`` / ``sla.breached``: a lead's follow-up came due, or a new lead passed
  ``sla.first_contact`` with nobody contacting it; the lead travels with the event, so a
  target's filters (an owner's own phone) apply as for a new lead. Each due time once.

It runs inside the outbox sender, so under the capture lease: one process in a team watches.
What it has told is kept in the database with the alert (``Store.queue_alert``), so a restart
or a second TUI does not tell it again.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from datetime import time as clock
from typing import Any

from leadtui.config import ALERT_EVENTS, DUE_EVENTS, Settings
from leadtui.store import Store

log = logging.getLogger(__name__)

CHECK_EVERY = 15.0  # seconds between looks (the queries are cheap; alerts are not urgent)
DIGEST_GRACE = 3 * 3600.0  # a digest later than this after its time is skipped that day
DUE_LOOKBACK = 900.0  # a first look at due reminders goes back this far, no further


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass
class Watcher:
    """Looks at the service every ``every`` seconds and queues the alerts that are due."""

    store: Store
    settings: Settings
    zone: tzinfo | None
    every: float = CHECK_EVERY
    _next: float = 0.0
    _saved: dict[str, Any] | None = None  # the state as the database has it

    def tick(self, now: float | None = None) -> int:
        """Queue what is due now; returns the outbox rows added."""
        now = time.time() if now is None else now
        if now < self._next:
            return 0
        self._next = now + self.every
        wanted = {e for r in self.store.outbox_routes for e in r.events} & {
            *ALERT_EVENTS,
            *DUE_EVENTS,
        }
        if not wanted:
            return 0
        state = self.store.alert_state()
        self._saved = copy.deepcopy(state)
        added = 0
        if "source.failing" in wanted:
            added += self._sources(now, state)
        if "review.growing" in wanted:
            added += self._review(state)
        if "push.watchdog" in wanted and self.settings.push_token:
            added += self._push(now, state)
        if "digest" in wanted:
            added += self._digest(now, state)
        if wanted & set(DUE_EVENTS):
            added += self._due(now, state)
        if state != self._saved:
            self.store.save_alert_state(state)
        return added

    def _queue(self, kind: str, event_id: str, payload: dict[str, Any], state: Any) -> int:
        added = self.store.queue_alert(kind, event_id, payload, state)
        self._saved = copy.deepcopy(state)
        log.info("notify: %s queued for %d target(s)", kind, added)
        return added

    # ------------------------------------------------------------------ the checks

    def _sources(self, now: float, state: dict[str, Any]) -> int:
        failing: dict[str, float] = state.setdefault("failing", {})
        told: list[str] = state.setdefault("failing_told", [])
        limit = self.settings.alert_source_failing_minutes * 60
        added = 0
        for health in self.store.health():
            name = health.source
            if name == "notify":  # the sender itself: it cannot tell of its own failure
                continue
            if not health.failing:
                failing.pop(name, None)
                if name in told:
                    told.remove(name)
                continue
            since = failing.setdefault(name, now)
            if name in told or now - since < limit:
                continue
            told.append(name)
            minutes = int((now - since) // 60)
            text = f"{name} has failed for {minutes} min: {health.last_error or health.state}."
            payload = {
                "title": f"leadtui: {name} failing for {minutes} min",
                "text": f"{text}\nRun leadtui doctor on the server to see why.",
                "source": name,
                "state": health.state,
                "error": health.last_error,
                "failing_since": _iso(since),
            }
            added += self._queue(
                "source.failing", f"source.failing:{name}:{int(since)}", payload, state
            )
        return added

    def _review(self, state: dict[str, Any]) -> int:
        count = self.store.review_count()
        base = state.get("review_base")
        if base is None or count < base:
            state["review_base"] = count
            return 0
        if count - base < self.settings.alert_review_growth:
            return 0
        state["review_base"] = count
        payload = {
            "title": f"leadtui: the review queue grew to {count}",
            "text": (
                f"{count - base} more items could not be read as leads ({count} waiting). "
                "Open the review queue (v in leadtui) to see them."
            ),
            "review": count,
            "grew_by": count - base,
        }
        return self._queue("review.growing", f"review.growing:{base}:{count}", payload, state)

    def _push(self, now: float, state: dict[str, Any]) -> int:
        hours = self.settings.alert_push_silence_hours
        watching = state.setdefault("push_watch_since", now)
        total, by_push = self.store.push_window(now - hours * 3600)
        if by_push:
            state.pop("push_told", None)
            return 0
        if not total or state.get("push_told") or now - watching < hours * 3600:
            return 0
        state["push_told"] = now
        payload = {
            "title": f"leadtui: no IndiaMART push for {hours:g} h",
            "text": (
                f"No IndiaMART push for {hours:g} h, while email and the CRM pull found "
                f"{total} IndiaMART lead(s). IndiaMART switches a push URL off after 48 h "
                "without success: check the push URL in Lead Manager and that the server "
                "is reachable (leadtui doctor)."
            ),
            "silent_hours": hours,
            "found_elsewhere": total,
        }
        return self._queue("push.watchdog", f"push.watchdog:{int(now // 3600)}", payload, state)

    def _due(self, now: float, state: dict[str, Any]) -> int:
        """Follow-ups and first-contact limits that came due since the last look: each told
        once (the window and the rows are saved together). A first look starts
        :data:`DUE_LOOKBACK` ago, so turning the event on does not replay last month."""
        start = float(state.get("due_until") or now - DUE_LOOKBACK)
        if now <= start:
            return 0
        state["due_until"] = now
        sla = self.settings.sla_first_contact or None
        added = self.store.queue_due_alerts(start, now, sla, state)
        self._saved = copy.deepcopy(state)
        if added:
            log.info("notify: %d reminder/first-contact alert(s) queued", added)
        return added

    def _digest(self, now: float, state: dict[str, Any]) -> int:
        local = datetime.fromtimestamp(now, self.zone)
        today = local.date().isoformat()
        if state.get("digest_day") == today:
            return 0
        hour, minute = (int(x) for x in self.settings.alert_digest_at.split(":"))
        due = datetime.combine(local.date(), clock(hour, minute), tzinfo=self.zone).timestamp()
        if now < due:
            return 0
        state["digest_day"] = today
        if now - due > DIGEST_GRACE:
            log.info("notify: today's digest was due at %s; skipped", self.settings.alert_digest_at)
            return 0
        stale = self.settings.alert_stale_buylead_hours * 3600
        counts = self.store.digest_counts(now, today, stale)
        lines = [
            f"New in the last 24 h: {counts['new']}",
            f"Not contacted yet: {counts['uncontacted']}",
            f"Follow-ups due today: {counts['due_today']}",
            f"BuyLeads going stale: {counts['buyleads_stale']}",
            f"Missed by email (found by the CRM pull): {counts['missed_by_email']}",
        ]
        payload = {
            "title": f"leadtui digest for {today}",
            "text": "\n".join(lines),
            "day": today,
            "counts": counts,
        }
        return self._queue("digest", f"digest:{today}", payload, state)
