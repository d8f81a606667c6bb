"""How a new lead, or a buyer writing again, is announced: one bell and one toast per burst,
and the count in the title.

New leads and replies closer together than ``BURST_SECONDS`` are one arrival (a stream is
still announced at least every ``BURST_MAX``). The terminal title, ``(3) leadtui``, counts the
new leads until the person presses a key, plus the leads with a message nobody has read until
someone opens them (the header's count, the same in every viewer). The terminal's own title is
kept on xterm's title stack and given back when leadtui ends.
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
        self.replies: list[tuple[Lead, str]] = []  # (lead, the buyer's newest message)
        self.latest = ""  # the toast of the newest arrival in the burst
        self.timer: Timer | None = None
        self.started = 0.0
        self.unseen = 0
        self.unread = 0  # leads with a message nobody has read (from the header's counts)
        self.title = "leadtui"

    def start(self) -> None:
        self.write(TITLE_PUSH)  # keep the title the terminal had, for the quit
        self.set_title()

    def end(self) -> None:
        if self.timer is not None:  # a burst still waiting is not announced to a closing app
            self.timer.stop()
            self.timer = None
        self.write(TITLE_POP)  # the terminal's own title again

    def arrived(self, new: list[Lead], replied: list[tuple[Lead, str]] | None = None) -> None:
        """Leads created since the app started, and leads a buyer wrote to again (with what
        they wrote); announced once the burst is over."""
        self.pending.extend(new)
        self.replies.extend(replied or ())
        if replied:
            self.latest = display.announce_reply(*replied[-1])
        elif new:
            self.latest = display.announce(max(new, key=lambda lead: lead.id))
        now = time.monotonic()
        if self.timer is None:
            self.started = now
            self.timer = self.app.set_timer(BURST_SECONDS, self.announce)
        elif now - self.started < BURST_MAX:
            self.timer.reset()  # the burst goes on: announce once it is over

    def announce(self) -> None:
        self.timer = None
        if not self.app.is_running or not self.app.screen_stack:
            return  # the app is closing (its screens are gone): nobody to tell
        new, self.pending = self.pending, []
        replies, self.replies = self.replies, []
        if not new and not replies:
            return
        text = self.latest
        if len(new) + len(replies) > 1:
            parts = [f"{len(new)} new lead{'s' if len(new) > 1 else ''}"] if new else []
            if replies:
                parts.append(f"{len(replies)} repl{'ies' if len(replies) > 1 else 'y'}")
            text = f"{', '.join(parts)}. Latest: {text}"
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

    def unread_now(self, count: int) -> None:
        """The leads with a message nobody has read, as the database counts them now."""
        if count != self.unread:
            self.unread = count
            self.set_title()

    def desktop_notify(self, text: str) -> None:
        """OSC 9 (iTerm2) or OSC 777 (most others) for terminals that show notifications."""
        body = display.clean(text).replace(";", ",")[:200]
        if os.environ.get("TERM_PROGRAM") == "iTerm.app":
            self.write(f"\x1b]9;{body}\x07")
        else:
            self.write(f"\x1b]777;notify;leadtui;{body}\x07")

    def set_title(self) -> None:
        waiting = self.unseen + self.unread
        title = f"({waiting}) leadtui" if waiting else "leadtui"
        if self.demo:
            title += " demo"
        self.title = title
        self.app.title = title
        self.write(f"\x1b]2;{title}\x07")

    def write(self, sequence: str) -> None:
        driver = self.app._driver
        if driver is not None and not self.app.is_headless:
            driver.write(sequence)
