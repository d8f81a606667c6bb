"""How a new lead is announced: one bell and one toast per burst, and the count in the title.

New leads closer together than ``BURST_SECONDS`` are one arrival (a stream is still announced
at least every ``BURST_MAX``); they count into the terminal title, ``(3) leadtui``, until the
person presses a key. The terminal's own title is kept on xterm's title stack and given back
when leadtui ends.
"""

from __future__ import annotations

import os
import time
from typing import Any

from textual.app import App
from textual.screen import ModalScreen
from textual.timer import Timer

from leadtui.config import Settings
from leadtui.store import Lead
from leadtui.widgets import display

BURST_SECONDS = 0.3  # new leads closer together than this are one arrival: one bell, one toast
BURST_MAX = 2.0  # … but a long stream is announced at least this often
TITLE_PUSH, TITLE_POP = "\x1b[22;0t", "\x1b[23;0t"  # xterm's title stack (tmux has it too)


class Arrivals:
    """The announcements of one app."""

    def __init__(self, app: App[Any], settings: Settings, *, demo: bool) -> None:
        self.app = app
        self.settings = settings
        self.demo = demo
        self.pending: list[Lead] = []
        self.timer: Timer | None = None
        self.started = 0.0
        self.unseen = 0
        self.title = "leadtui"

    def start(self) -> None:
        self.write(TITLE_PUSH)  # keep the title the terminal had, for the quit
        self.set_title()

    def end(self) -> None:
        self.write(TITLE_POP)  # the terminal's own title again

    def arrived(self, new: list[Lead]) -> None:
        """Leads created since the app started; announced once the burst is over."""
        self.pending.extend(new)
        now = time.monotonic()
        if self.timer is None:
            self.started = now
            self.timer = self.app.set_timer(BURST_SECONDS, self.announce)
        elif now - self.started < BURST_MAX:
            self.timer.reset()  # the burst goes on: announce once it is over

    def announce(self) -> None:
        self.timer = None
        new, self.pending = self.pending, []
        if not new:
            return
        newest = max(new, key=lambda lead: lead.id)
        if len(new) == 1:
            text = display.announce(newest)
        else:
            text = f"{len(new)} new leads. Latest: {display.announce(newest)}"
        self.unseen += len(new)
        self.set_title()
        if self.settings.bell:
            self.app.bell()
        if not isinstance(self.app.screen, ModalScreen):  # a toast would cover its choices
            self.app.notify(text, markup=False)
        if self.settings.desktop_notify:
            self.desktop_notify(text)

    def seen(self) -> None:
        """A key or a click: the person is here, the count goes."""
        if self.unseen:
            self.unseen = 0
            self.set_title()

    def desktop_notify(self, text: str) -> None:
        """OSC 9 (iTerm2) or OSC 777 (most others) for terminals that show notifications."""
        body = display.clean(text).replace(";", ",")[:200]
        if os.environ.get("TERM_PROGRAM") == "iTerm.app":
            self.write(f"\x1b]9;{body}\x07")
        else:
            self.write(f"\x1b]777;notify;leadtui;{body}\x07")

    def set_title(self) -> None:
        title = f"({self.unseen}) leadtui" if self.unseen else "leadtui"
        if self.demo:
            title += " demo"
        self.title = title
        self.app.title = title
        self.write(f"\x1b]2;{title}\x07")

    def write(self, sequence: str) -> None:
        driver = self.app._driver
        if driver is not None and not self.app.is_headless:
            driver.write(sequence)
