"""The Textual app: the live lead table, triage from the keyboard, capture under the lease.

Threads. The UI thread never touches the database. Three kinds of thread worker do:

- the *change feed* (one, for the app's life): it loads pages of the current view on request
  and, between requests, waits on the store's change waiter (≤ 50 ms at a time) and turns
  ``changes_since(cursor)`` into "these leads match the view, these ids left it, these are
  new", checked against the view with ``matching_ids``. Requests and changes go through this
  one thread, so its messages arrive in the order the database saw them;
- the *capture service* (one): :class:`leadtui.capture.CaptureService` with a stop Event; it
  holds the capture lease when nobody else does and runs the sources;
- *triage* and *screen* workers: one store call each (mark contacted, load a lead's history).

Workers report with ``post_message`` only; widgets change in the message handlers. A thread
worker closes its own database connection when it ends (Peewee keeps one per thread).

Arrival (:mod:`leadtui.arrivals`). New leads in one burst ring the bell once, show one
toast and count into the terminal title until the user presses a key; their rows stay
highlighted for ``settings.highlight_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState, get_current_worker

from leadtui import config, sources
from leadtui.arrivals import Arrivals
from leadtui.capture import Pipeline, SourceFactory, holder_id
from leadtui.capturing import CaptureProblem, Capturing, LeaseChanged
from leadtui.live import ChangeFeed, FeedChanged, PageLoaded, StateRead, View
from leadtui.reminders import AlertsRang, RemindersCounted, Reminding
from leadtui.screens.base import LeadScreen
from leadtui.screens.main import MainScreen
from leadtui.screens.messages import (
    DetailRequested,
    MainReady,
    PromptReady,
    ReadRequested,
    TriageRequested,
    UndoRequested,
    ViewRequested,
)
from leadtui.store import Store, StoreError, current_actor
from leadtui.triage import (
    Triage,
)
from leadtui.widgets import display
from leadtui.widgets.bars import CaptureState, LeadBar, TopBar
from leadtui.widgets.table import LeadTable, PageKind
from leadtui.writes import EmailDone, TriageDone, Writes

if TYPE_CHECKING:
    from leadtui.config import Settings
    from leadtui.demo import DemoInfo

log = logging.getLogger(__name__)

HOLD_KEYS_MAX = 5.0  # seconds keys typed after a prompt's key wait for the prompt
CAPTURE_STOP_WAIT = 5.0  # seconds quitting waits for capture to stop and give the lease back


# --------------------------------------------------------------------------- messages


class PeopleLoaded(Message):
    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names


# --------------------------------------------------------------------------- the app


class LeadApp(App[int]):
    """leadtui's terminal UI."""

    CSS_PATH = str(Path(__file__).with_name("styles.tcss"))  # absolute: subclasses find it too
    TITLE = "leadtui"
    ENABLE_COMMAND_PALETTE = True
    NOTIFICATION_TIMEOUT = 6.0

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Quit leadtui (capture moves to another open leadtui)"),
        Binding("ctrl+r", "retry_capture", "Retry capture", show=False, id="retry-capture", tooltip="Connect the mailbox and the other sources again now (after fixing a password)"),
        Binding("question_mark", "help", "Keys", id="help", tooltip="Every key, and how to change them"),
    ]  # fmt: skip

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        demo: DemoInfo | None = None,
        capture: bool = True,
        factories: list[SourceFactory] | None = None,
        clock: Callable[[], float] = time.time,
        actor: str | None = None,
    ) -> None:
        super().__init__()
        config.use_timezone(settings.timezone)  # every time on screen in the seller's zone
        display.measure_like_terminals()  # names in Indian scripts keep the columns straight
        self.settings = settings
        self.store = store
        self.demo = demo
        self.clock = clock
        self.actor = actor or current_actor()
        self.capture_enabled = capture
        self.holder = holder_id()
        self.stop_capture = threading.Event()
        self.capture_done = threading.Event()
        self._hung_up = False
        self._mailbox_hint_pending = False
        if not capture:
            self.capture_done.set()
        self.view = View()
        self._keep_on_load: int | None = None
        self.generation = 0
        self.feed = ChangeFeed(store, clock, self.post_message)
        self._held_keys: list[events.Key] | None = None
        self.capturing = Capturing(
            self,
            settings,
            url=store.url,
            holder=self.holder,
            demo=demo,
            factories=factories,
            stop=self.stop_capture,
            done=self.capture_done,
        )
        self._held_timer: Timer | None = None
        self.triage = Triage(
            self,
            actor=self.actor,
            clock=clock,
            write=lambda a, lead, v: self.writes.write(a, lead.id, v),
            settings=lambda: self.settings,
            send_email=lambda lead, name, subject, text: self.writes.send_email(
                lead, (name, subject, text)
            ),
        )
        self.writes = Writes(self, store, lambda: self.actor, lambda: self.settings)
        self.triage.know(*settings.team_members)
        self.arrivals = Arrivals(self, settings, demo=demo is not None)
        self.reminders = Reminding(
            self, store, person=self.actor, clock=clock, settings=lambda: self.settings,
            desktop=self.arrivals.desktop_notify if settings.desktop_notify else None,
        )  # fmt: skip
        self.holding = False
        self.first_page_shown = False
        self.table = LeadTable(
            clock=clock, highlight_seconds=settings.highlight_seconds, id="leads"
        )
        self.table.sla_seconds = settings.sla_first_contact
        self.lead_bar = LeadBar(clock=clock, id="lead-bar")
        self.lead_bar.buylead_valid_hours = settings.buylead_valid_hours
        setup_hint = None
        if demo is None and not settings.imap_configured:
            setup_hint = "mailbox: not set up"
        demo_line = None
        if demo is not None:
            demo_line = (
                f"demo API key {demo.api_key}"
                if demo.http_url
                else "simulated inbox only (HTTP ingest off)"
            )
        self.top = TopBar(clock=clock, demo_line=demo_line, setup_hint=setup_hint, id="top")
        self.main_screen = MainScreen(top=self.top, table=self.table, lead_bar=self.lead_bar)
        if settings.keys:
            self.set_keymap(dict(settings.keys))

    # ------------------------------------------------------------------ start and stop

    def get_default_screen(self) -> Screen[Any]:
        return self.main_screen

    def on_mount(self) -> None:
        self._feed()
        self._load_people()
        self.request_page("head", None, new_view=True)
        if self.capture_enabled:
            self.run_worker(
                self.capturing.run, thread=True, exclusive=True, group="capture", name="capture"
            )
        self.reminders.start()
        self.set_interval(60.0, self.table.refresh_times)
        self.set_interval(2.0, self.capturing.follow_the_config)
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._hang_up, sig)
            stdin = sys.__stdin__
            if stdin is not None and os.isatty(stdin.fileno()):
                self.set_interval(2.0, self._check_terminal)
        self.arrivals.start()

    @work(thread=True, exit_on_error=False, group="people", name="team")
    def _load_people(self) -> None:
        store = self.store
        try:
            self.post_message(PeopleLoaded(store.owners()))
        finally:
            store.close()

    def on_people_loaded(self, message: PeopleLoaded) -> None:
        self.triage.know(*message.names)
        self.table.show_team(len(self.triage.people) > 1)

    def on_main_ready(self, _message: MainReady) -> None:
        """The main screen is composed: fill in what depends on its widgets."""
        self.lead_bar.show(self.table.current, view=self.view.label())
        self._greet()

    def _greet(self) -> None:
        demo = self.demo
        if demo is not None:
            text = "A simulated inbox delivers a lead every few seconds."
            if demo.http_url:
                text += " POST your own with the URL and API key in the header."
            self.notify(text, title="leadtui demo", timeout=6, markup=False)
        elif not self.settings.imap_configured:
            self._mailbox_hint_pending = True  # said once the first state read shows no mailbox

    def _hint_mailbox(self, state: CaptureState) -> None:
        """No mailbox here, nor in another process (a team's serve reports one): say so once."""
        self._mailbox_hint_pending = False
        if any(h.source == "mailbox" for h in state.health):
            return
        self.notify(
            "No mailbox is set up, so no email leads will arrive. "
            "Run 'leadtui doctor' to see what is missing.",
            title="Set up the mailbox",
            severity="warning",
            timeout=12,
            markup=False,
        )

    def on_unmount(self) -> None:
        self.stop_capture.set()
        self.reminders.stop()
        self.arrivals.end()

    def _hang_up(self, sig: int) -> None:
        """SIGHUP (the SSH session dropped) or SIGTERM: stop capture, release the lease, exit.

        The terminal may be gone, so Textual's own goodbye to it can block; a watchdog thread
        ends the process once the capture thread has released the lease.
        """
        if self._hung_up:
            return
        self._hung_up = True
        log.info("received %s; stopping", signal.Signals(sig).name)
        self.stop_capture.set()
        threading.Thread(target=self._watchdog, name="hangup-watchdog", daemon=True).start()
        self.exit(0)

    def _check_terminal(self) -> None:
        """A terminal that went away without a SIGHUP: its file answers EIO from then on."""
        stdin = sys.__stdin__
        try:
            if stdin is not None:
                termios.tcgetattr(stdin.fileno())
        except (termios.error, OSError, ValueError):
            log.info("the terminal is gone")
            self._hang_up(signal.SIGHUP)

    def _watchdog(self) -> None:
        self.capture_done.wait(10)
        time.sleep(1.0)  # the normal exit usually wins; a dead terminal can block it
        log.info("exiting after the terminal went away")
        logging.shutdown()
        os._exit(0)

    def action_quit(self) -> None:  # type: ignore[override]
        what = self.capturing.for_the_team(self.holding, self.top.state)
        if what and not isinstance(self.screen, ModalScreen):
            from leadtui.screens.prompts import QuitPrompt  # noqa: PLC0415 - loaded on first use

            def answered(quit_anyway: bool | None) -> None:
                if quit_anyway:
                    self._quit()

            self.push_screen(QuitPrompt(what), answered)
            return
        self._quit()

    def _quit(self) -> None:
        self.stop_capture.set()
        self.exit(0)

    # ------------------------------------------------------------------ the view

    def on_view_requested(self, message: ViewRequested) -> None:
        view = self.view
        if message.filter_name is not None:
            view = replace(view, filter_name=message.filter_name)
        if message.search is not None:
            view = replace(view, search=message.search)
        if view.filter_name == "buyleads":  # fresh as of now
            view = replace(view, now=self.clock(), fresh_hours=self.settings.buylead_valid_hours)
        if view == self.view:
            return
        self.view = view
        self._keep_on_load = self.table.current_id  # stay on this lead if the new view has it
        self.lead_bar.show(self.table.current, view=view.label())
        # Calls to return and BuyLeads: the one waiting longest (or going stale soonest) first,
        # so the cursor starts at the bottom of the view.
        oldest_first = view.filter_name in {"calls", "buyleads"}
        self.request_page("tail" if oldest_first else "head", None, new_view=True)

    def on_lead_table_page_wanted(self, message: LeadTable.PageWanted) -> None:
        self.request_page(message.kind, message.anchor)

    def request_page(self, kind: PageKind, anchor: int | None, *, new_view: bool = False) -> None:
        if new_view:
            self.generation += 1
        query = self.view.query(self.actor)
        self.feed.request(self.generation, query, kind, anchor)

    @work(thread=True, exclusive=True, exit_on_error=False, group="feed", name="change feed")
    def _feed(self) -> None:
        worker = get_current_worker()
        self.feed.run(self.view.query(self.actor), lambda: worker.is_cancelled)

    def _app_closing(self) -> bool:
        """Messages from workers can arrive while the app shuts down: ignore them then."""
        return not self.is_running or not self.screen_stack

    def on_page_loaded(self, message: PageLoaded) -> None:
        if self._app_closing() or message.generation != self.generation:
            return  # shutting down, or an older view's page
        table = self.table
        if message.kind == "head":
            keep, self._keep_on_load = self._keep_on_load, None
            table.replace(
                message.leads,
                at_head=True,
                has_older=message.more,
                cursor=keep if keep is not None else "first",
            )
        elif message.kind == "tail":
            table.replace(message.leads, at_head=not message.more, has_older=False, cursor="last")
        else:
            table.extend(message.kind, message.leads, more=message.more)
        self.first_page_shown = True
        self._show_empty()

    def on_feed_changed(self, message: FeedChanged) -> None:
        if self._app_closing():
            return
        # Changes read for an older view are dropped: the page of the new view was read
        # after them, so it already shows their current state.
        if message.generation == self.generation:
            self.table.apply_changes(
                [lead for lead in message.leads if lead.id in message.matching],
                [lead.id for lead in message.leads if lead.id not in message.matching],
                {lead.id for lead in message.new} | {lead.id for lead, _ in message.replied},
            )
            self._show_empty()
        screen = self.screen
        if isinstance(screen, LeadScreen) and screen is not self.main_screen:
            for lead in message.leads:
                screen.lead_changed(lead)
        if message.new or message.replied:
            self.arrivals.arrived(message.new, message.replied)

    def on_state_read(self, message: StateRead) -> None:
        if self._app_closing():
            return
        review = message.state.counts.get("review")
        if review is not None and review != self.top.state.counts.get("review"):
            from leadtui.screens.review import ReviewScreen  # noqa: PLC0415

            if isinstance(self.screen, ReviewScreen):
                self.screen.reload()  # a new failure, or another viewer reparsed one
        failing_changed = self.capturing.tell(
            self.top.state, message.state, self.holding, self.clock()
        )
        self.top.show(message.state)
        if message.state.loaded and not message.state.error:
            self.arrivals.unread_now(message.state.counts.get("unread", 0))
        if failing_changed:
            self.call_after_refresh(self._show_empty)
        if self._mailbox_hint_pending and message.state.loaded:
            self._hint_mailbox(message.state)

    def on_lease_changed(self, message: LeaseChanged) -> None:
        before = self.top.state.lease  # who captured, as this viewer last saw it
        took_over = message.holding and not self.holding and before is not None
        self.holding = message.holding
        if self._app_closing():
            return
        self.top.show(holding=message.holding)
        if took_over and before is not None and before.holder != self.holder:
            person, host = display.holder(before.holder)
            who = f"{person} (on {host})" if host else person
            self.notify(
                f"{who} stopped capturing, so this leadtui captures now (until you quit)",
                title="Capture taken over",
                markup=False,
            )

    def on_alerts_rang(self, message: AlertsRang) -> None:
        if not self._app_closing():
            self.reminders.rang(message)

    def on_reminders_counted(self, message: RemindersCounted) -> None:
        if not self._app_closing():
            self.top.show_reminders(message.counts)

    def on_capture_problem(self, message: CaptureProblem) -> None:
        self.top.add_problem(message.text)
        self.notify(
            f"{message.text}: {message.reason}", severity="warning", timeout=10, markup=False
        )

    def _show_empty(self) -> None:
        if self.table.row_count or not self.first_page_shown:
            self.main_screen.show_empty(None)
            return
        text = Text()
        if self.view.search.strip() or self.view.filter_name != "all":
            text.append(f"No leads: {self.view.label()}.\n", style="bold")
            if self.view.search.strip():
                text.append("Press 0 for all leads, or escape to clear the search.")
            else:
                text.append("Press 0 for all leads.")
        elif self.demo is None and not self.settings.imap_configured:
            text.append("No leads yet, and no mailbox is set up.\n\n", style="bold")
            text.append("Check the settings with:  leadtui doctor\n")
            text.append(f"Config file:  {config.default_config_path()}\n")
            text.append("Or set these in the environment:\n")
            names = [n for n, _ in config.environment_help() if n.startswith("LEADTUI_IMAP_")]
            text.append("  " + ", ".join(names[:5]) + "\n")
            text.append("Press ? for every key and setting.")
        elif failing := [h for h in self.top.state.health if h.failing]:
            text.append("No leads yet, and capture is failing:\n\n", style="bold")
            for h in failing:
                text.append(f"  {display.health_line(h, self.clock())}\n", style="red")
            text.append("\nLeads from it cannot arrive until this is fixed. ")
            text.append("Check the settings with:  leadtui doctor")
        else:
            text.append("No leads yet. ", style="bold")
            text.append("New leads appear here the moment they arrive.")
        self.main_screen.show_empty(text)

    # ------------------------------------------------------------------ arrival

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """One toast at a time, the newest: toasts live on the two bottom rows, where they
        hide no lead, and an older one there would hide the news."""
        self.clear_notifications()
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    @property
    def unseen(self) -> int:
        """New leads announced since the person last pressed a key."""
        return self.arrivals.unseen

    @property
    def terminal_title(self) -> str:
        return self.arrivals.title

    # ------------------------------------------------------------------ keys typed ahead

    def hold_keys(self) -> None:
        """Keep the keys arriving from now until the prompt being opened is ready for them."""
        if self._held_keys is None:
            self._held_keys = []
            # Should no prompt open (the lead vanished), the keys are not kept for ever, and
            # not run as table keys either: they were typed for a prompt.
            self._held_timer = self.set_timer(HOLD_KEYS_MAX, self._drop_keys)

    def on_prompt_ready(self, _message: PromptReady) -> None:
        self._release_keys()

    def _drop_keys(self) -> None:
        held, self._held_keys, self._held_timer = self._held_keys, None, None
        if held:
            log.info("%d keys typed for a prompt that did not open were dropped", len(held))

    def _release_keys(self) -> None:
        """Send the held keys again, in order, to whatever has the focus now (the prompt)."""
        held, self._held_keys = self._held_keys, None
        if self._held_timer is not None:
            self._held_timer.stop()
            self._held_timer = None
        for key in held or ():
            self.post_message(events.Key(key.key, key.character))

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and self._held_keys is not None:
            self._held_keys.append(event)
            return
        if isinstance(event, events.Key | events.MouseDown):
            self.table.follow_head = False
            self.arrivals.seen()
        await super().on_event(event)

    # ------------------------------------------------------------------ capture

    def action_retry_capture(self) -> None:
        self.capturing.retry(self.holding)

    # ------------------------------------------------------------------ triage

    def on_triage_requested(self, message: TriageRequested) -> None:
        """A triage key: ask what the action needs, then change the store in a thread worker."""
        self.triage.run(message.action, message.lead)

    def on_email_done(self, message: EmailDone) -> None:
        lead = self.table.leads.get(message.lead_id)
        who = display.buyer(lead) if lead is not None else f"lead {message.lead_id}"
        if message.problem is None:
            self.triage.unsent.pop(message.lead_id, None)
            self.notify(f"Email sent to {who}", markup=False, timeout=4)
            return
        self.triage.unsent[message.lead_id] = message.draft
        self.notify(
            f"Email to {who} not sent: {message.problem}. R offers it again.",
            severity="error",
            markup=False,
            timeout=12,
        )

    def on_triage_done(self, message: TriageDone) -> None:
        self.table.show_team(len(self.triage.people) > 1)
        self.reminders.nudge()  # a follow-up set, snoozed or done: the header counts again
        if message.undo is not None:
            self.writes.last = message.undo
            self.notify(f"{message.text}  (u undoes)", markup=False, timeout=3)
        else:
            self.notify(message.text, markup=False, timeout=3)

    def on_undo_requested(self, _message: UndoRequested) -> None:
        self.writes.undo()

    def on_read_requested(self, message: ReadRequested) -> None:
        """A lead with unread messages is open: they are read, for every viewer."""
        self.writes.mark_read(message.lead_id)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures surface: a toast, and the feed restarts."""
        worker = event.worker
        if event.state != WorkerState.ERROR:
            return
        error = worker.error
        text = str(error).splitlines()[0] if error and str(error) else type(error).__name__
        log.error("worker %s failed: %s", worker.name, text, exc_info=error)
        self.notify(f"{worker.name}: {text}", severity="error", markup=False, timeout=8)
        if worker.group == "feed" and self.is_running:
            self.set_timer(1.0, self._feed)

    # ------------------------------------------------------------------ screens

    def on_detail_requested(self, message: DetailRequested) -> None:
        from leadtui.screens.detail import DetailScreen  # noqa: PLC0415 - loaded on first use

        self.push_screen(DetailScreen(message.lead, self.store, self.clock))

    def action_review(self) -> None:
        from leadtui.screens.review import ReviewScreen  # noqa: PLC0415 - loaded on first use

        self.push_screen(ReviewScreen(self.store))

    def action_stats(self) -> None:
        from leadtui.screens.stats import StatsScreen  # noqa: PLC0415 - loaded on first use

        sla = self.settings.sla_first_contact or None
        self.push_screen(StatsScreen(self.store, self.clock, sla))

    def action_help(self) -> None:
        from leadtui.screens.help import HelpScreen  # noqa: PLC0415 - loaded on first use

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def pipeline(self) -> Pipeline:
        return Pipeline(self.store)

    def get_system_commands(self, screen: Screen[Any]) -> Any:
        """The command palette offers every key of the screen it was opened on."""
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if binding.system or not binding.description:
                continue
            name = binding.id or binding.action
            if name in seen:
                continue
            seen.add(name)
            key = self.get_key_display(binding)
            node = active.node

            def run(action: str = binding.action, target: Any = node) -> None:
                self.call_later(self.run_action, action, target)

            yield SystemCommand(
                f"{binding.description}  · key {key}", binding.tooltip or binding.description, run
            )
        yield from super().get_system_commands(screen)


# --------------------------------------------------------------------------- entry point


def run_tui(settings: Settings, *, demo: DemoInfo | None = None) -> int:
    """Open the TUI on ``settings.db_url``; returns the exit code."""
    try:
        store = Store.open(settings.db_url)
    except StoreError as exc:
        print(f"leadtui: {exc}", file=sys.stderr)
        return 3
    # Triage here writes its lead.updated / status_changed rows for [[webhook]] targets.
    store.set_outbox_routes(sources.outbox_routes(settings))
    app = LeadApp(settings, store, demo=demo)
    try:
        code = app.run()
    finally:
        app.stop_capture.set()
        app.capture_done.wait(CAPTURE_STOP_WAIT)  # the lease released before the process ends
        store.close()
    return int(code or app.return_code or 0)
