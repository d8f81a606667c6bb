"""The TUI's side of capture: run the sources under the lease, and say what a person must know.

:class:`Capturing` runs :class:`leadtui.capture.CaptureService` in a thread worker of the app,
starts its sources again when the config file changes or on ``ctrl+r`` (a fixed password is
tried at once), and turns what the header shows into words at the moments they matter: a source
that starts failing, the team's mailbox that nobody reads any more, what stops if this leadtui
quits. It reports with messages and toasts only; the app applies them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.message import Message

from leadtui import config, sources
from leadtui.capture import CaptureService, SourceFactory
from leadtui.widgets import display
from leadtui.widgets.bars import CaptureState

if TYPE_CHECKING:
    from leadtui.config import Settings
    from leadtui.demo import DemoInfo

log = logging.getLogger(__name__)

# What each source captures, for the question asked before quitting the capturing leadtui.
CAPTURES = {
    "mailbox": "the mailbox",
    "http": "website, WhatsApp and IndiaMART push posts",
    "pull": "the IndiaMART CRM pull",
    "gmail": "the Gmail mailbox (Gmail API)",
}


class LeaseChanged(Message):
    def __init__(self, holding: bool) -> None:
        super().__init__()
        self.holding = holding


class CaptureProblem(Message):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__()
        self.text = text  # short, for the header
        self.reason = reason


class Capturing:
    """Capture for one app: the service, its restarts, and what is said about it."""

    def __init__(
        self,
        app: App[Any],
        settings: Settings,
        *,
        url: str,
        holder: str,
        demo: DemoInfo | None,
        factories: Sequence[SourceFactory] | None,
        stop: threading.Event,
        done: threading.Event,
    ) -> None:
        self.app = app
        self.settings = settings
        self.url = url
        self.holder = holder
        self.demo = demo
        self.fixed = factories  # sources given (tests): no registry, no reload
        self.stop = stop
        self.done = done
        self.service: CaptureService | None = None
        self.watch = sources.SettingsWatch(
            settings,
            lambda: config.load(settings.config_path, overrides={"db": settings.db or None}),
        )

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """The worker's body: capture until ``stop``; ``done`` is set however it ends."""
        try:
            factories = self.fixed
            if factories is None:
                if self.demo is None and not self.settings.names_a_source:
                    return  # nothing to capture: view, and leave the lease to serve
                factories = self.factories()
            if not factories:
                return
            self.service = CaptureService(
                self.url,
                factories,
                holder=self.holder,
                on_lease=self._lease_changed,
                routes=sources.outbox_routes(self.settings),
                own_addresses=self.settings.own_addresses,
            )
            self.service.run(self.stop)
        finally:
            self.done.set()

    def _lease_changed(self, holding: bool) -> None:
        self.app.post_message(LeaseChanged(holding))

    def factories(self, settings: Settings | None = None) -> list[SourceFactory]:
        """The registry's sources; one whose settings cannot be used is shown and left out."""
        run = sources.Run(
            demo=self.demo is not None, demo_seed=self.demo.seed if self.demo else None
        )

        def skipped(spec: sources.SourceSpec, exc: Exception) -> None:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("capture: the %s source cannot start: %s", spec.name, first)
            self.app.post_message(CaptureProblem(f"{spec.name}: not available", first))

        return sources.factories(settings or self.settings, run, on_error=skipped)

    def retry(self, holding: bool) -> None:
        """Start this process's sources again now, with the settings as the file says today."""
        if self.service is None or not holding:
            self.app.notify("This leadtui does not capture: nothing to retry here", markup=False)
            return
        fresh = self.watch.changed() or self.settings
        self.service.restart_sources(self.fixed or self.factories(fresh))
        self.app.notify("Connecting the sources again…", markup=False)

    def follow_the_config(self) -> None:
        """A config file edited while leadtui runs (a fixed password) is used at once."""
        if self.service is None or self.fixed is not None:
            return
        fresh = self.watch.changed()
        if fresh is not None:
            self.settings = fresh
            self.service.restart_sources(self.factories(fresh), sources.outbox_routes(fresh))
            self.app.notify("The config file changed: capture starts again with it", markup=False)

    # ------------------------------------------------------------------ saying so

    def for_the_team(self, holding: bool, state: CaptureState) -> str:
        """What stops if this process quits: its sources, when it holds the capture (not a demo)."""
        if not holding or self.demo is not None:
            return ""
        mine = [h.source for h in state.health if h.holder == self.holder]
        names = [text for source, text in CAPTURES.items() if source in mine]
        if not names:
            return ""
        return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]

    def tell(self, before: CaptureState, now: CaptureState, holding: bool, clock: float) -> bool:
        """Say once what just went wrong; True when the failing sources changed (the empty
        table's text names them)."""
        was = {h.source: h.state for h in before.health}
        for h in now.health:
            if h.failing and was.get(h.source) != h.state:
                line = display.health_line(h, clock)
                detail = display.clean(h.last_error or h.detail)
                self.app.notify(
                    f"{line}{': ' + detail if detail else ''}. Leads from it cannot arrive until "
                    "this is fixed: leadtui doctor says how.",
                    severity="error",
                    timeout=15,
                    markup=False,
                )
        nobody = now.loaded and now.lease is None and not holding and bool(now.mailboxes)
        told = before.loaded and before.lease is None and not holding and before.mailboxes
        if nobody and not told:
            self.app.notify(
                f"Nobody is capturing leads: the mailbox {display.clean(now.mailboxes[0])} "
                "and the website form wait until leadtui serve runs, or someone opens leadtui "
                "with the mailbox set up.",
                severity="warning",
                timeout=15,
                markup=False,
            )
        return any(h.failing for h in now.health) != any(h.failing for h in before.health)
