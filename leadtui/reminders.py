"""The reminder watcher: follow-ups and first-contact limits that come due ring in the TUI.

Each TUI runs one watcher in a thread worker. Every ``TICK`` seconds (and at once when
nudged, after a triage change) it asks the store to record the alerts that came due for this
person (:meth:`Store.claim_alerts`: their leads and the unowned ones, once per due time
whichever of their TUIs gets there first), reads the alerts recorded since it started (by
itself or by another of their open TUIs) and the header's counts, and posts them. The app
rings once and shows one toast per batch. A TUI started later begins after the alerts that
rang already, so a restart or a capture takeover rings for nothing twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.message import Message
from textual.worker import get_current_worker

from leadtui.config import Settings
from leadtui.store import Alert, Lead, Store, StoreError
from leadtui.widgets import display
from leadtui.widgets.bars import COUNT_CAP

log = logging.getLogger(__name__)

TICK = 15.0  # seconds between looks: a due minute rings within the 60 s budget


@dataclass(frozen=True, slots=True)
class Rang:
    """One alert and its lead as it is now."""

    alert: Alert
    lead: Lead


class AlertsRang(Message):
    """Reminders or first-contact limits that came due for this person since the last look."""

    def __init__(self, rang: list[Rang]) -> None:
        super().__init__()
        self.rang = rang


class RemindersCounted(Message):
    """The header's ``due`` / ``overdue`` / ``late`` counts."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__()
        self.counts = counts


class ReminderWatcher:
    """The watcher of one TUI, for the person ``recipient`` (the OS user)."""

    def __init__(
        self,
        store: Store,
        *,
        recipient: str,
        clock: Callable[[], float],
        sla_seconds: Callable[[], float],
        post: Callable[[Message], object],
    ) -> None:
        self.store = store
        self.recipient = recipient
        self.clock = clock
        self.sla_seconds = sla_seconds  # as the config file says now (0: off)
        self.post = post
        self.after: int | None = None  # the last alert seen; None until started
        self._nudge = threading.Event()
        self._stopped = threading.Event()  # the app is closing: end now, not at the next look

    def start(self) -> None:
        """Begin after every alert recorded so far: those rang before this TUI opened."""
        self.after = self.store.last_alert_id()

    def step(self) -> tuple[list[Rang], dict[str, int]]:
        """One look: record what came due, read what rang since, count. No messages."""
        if self.after is None:
            self.start()
        after = self.after or 0
        now = self.clock()
        sla = self.sla_seconds() or None
        store = self.store
        store.claim_alerts(self.recipient, now, sla)
        alerts = store.alerts_after(self.recipient, after)
        rang: list[Rang] = []
        if alerts:
            self.after = alerts[-1].id
            leads = {lead.id: lead for lead in store.get_leads({a.lead_id for a in alerts})}
            rang = [Rang(a, leads[a.lead_id]) for a in alerts if a.lead_id in leads]
        return rang, store.reminder_counts(self.recipient, now, sla, cap=COUNT_CAP)

    def nudge(self) -> None:
        """Look again now (thread-safe): a follow-up was just set, snoozed or done."""
        self._nudge.set()

    def stop(self) -> None:
        """End :meth:`run` at once (quitting should not wait for the next half second)."""
        self._stopped.set()
        self._nudge.set()

    def run(self, cancelled: Callable[[], bool]) -> None:
        """The worker's body: a look every ``TICK`` seconds until ``cancelled()``."""
        try:
            while not cancelled() and not self._stopped.is_set():
                try:
                    rang, counts = self.step()
                    if rang:
                        self.post(AlertsRang(rang))
                    self.post(RemindersCounted(counts))
                except StoreError as exc:
                    log.warning("reminders: %s", exc)
                    self.store.close()
                except Exception:  # a bug must not silence every reminder until a restart
                    log.exception("reminders: a look failed; looking again at the next tick")
                waited = 0.0
                while waited < TICK and not cancelled() and not self._nudge.wait(0.5):
                    waited += 0.5
                self._nudge.clear()
        finally:
            self.store.close()


def toast(rang: list[Rang]) -> str:
    """One line for a batch of alerts, naming the latest lead (plain text, never markup)."""
    latest = rang[-1]
    text = describe(latest)
    if len(rang) == 1:
        return text
    return f"{len(rang)} reminders. Latest: {text}"


def describe(rang: Rang) -> str:
    lead = rang.lead
    what = ", ".join(x for x in (display.clean(lead.product), display.clean(lead.city)) if x)
    who = display.buyer(lead) + (f" — {what}" if what else "")
    if rang.alert.kind == "sla":
        return f"Nobody has contacted {who} yet (first-contact limit)"
    return f"Follow up now: {who} (z snoozes)"


class Reminding:
    """The reminders of one app: its watcher (in a thread worker) and what the app does with
    the watcher's messages: one bell and one toast per batch. Kept here so
    :class:`leadtui.app.LeadApp` only builds it, starts it and forwards the messages."""

    def __init__(
        self,
        app: App[Any],
        store: Store,
        *,
        person: str,
        clock: Callable[[], float],
        settings: Callable[[], Settings],
        desktop: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings  # as the config file says now
        self.desktop = desktop  # OSC 777/9 when ui.desktop_notify is on
        self.watcher = ReminderWatcher(
            store,
            recipient=person,
            clock=clock,
            sla_seconds=lambda: self.settings().sla_first_contact,
            post=app.post_message,
        )
        self.rung = 0  # alerts shown by this TUI (tests read it)

    def start(self) -> None:
        self.app.run_worker(
            lambda: self.watcher.run(lambda: get_current_worker().is_cancelled),
            thread=True, exclusive=True, exit_on_error=False, group="reminders", name="reminders",
        )  # fmt: skip

    def nudge(self) -> None:
        self.watcher.nudge()

    def stop(self) -> None:
        self.watcher.stop()

    def rang(self, message: AlertsRang) -> None:
        self.rung += len(message.rang)
        text = toast(message.rang)
        if self.settings().bell:
            self.app.bell()
        self.app.notify(text, title="Reminder", timeout=20, markup=False)
        if self.desktop is not None:
            self.desktop(text)
