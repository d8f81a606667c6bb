"""The header (capture health and counts) and the line about the lead under the cursor."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey

from leadtui.store import Health, Lead, LeaseInfo
from leadtui.widgets import display, reminders

COUNT_CAP = 10_000


@dataclass(frozen=True)
class CaptureState:
    """What the header shows, gathered by the change-feed worker."""

    health: tuple[Health, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    lease: LeaseInfo | None = None
    loaded: bool = False  # False until the first read (the header says "starting")
    mailboxes: tuple[str, ...] = ()  # mailboxes captured into this database before
    error: str | None = None  # the database cannot be read right now


class TopBar(Widget):
    """``leadtui  DEMO  mailbox: idle · HTTP: listening on …      new today 4 · awaiting 2``.

    Capture health on the left, counts on the right; on a narrow terminal the counts move to
    a second line. In demo mode a last line shows the HTTP ingest URL and the demo key.
    """

    DEFAULT_CSS = """
    TopBar {
        height: auto;
        max-height: 4;
        padding: 0 1;
        background: $panel;
    }
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        demo_line: str | None = None,
        setup_hint: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.demo_line = demo_line
        self.setup_hint = setup_hint  # e.g. "mailbox: not set up"
        self.state = CaptureState()
        self.holding = False
        self.problems: list[str] = []
        self.reminders: dict[str, int] = {}  # due, overdue, late (the reminder watcher's)

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        # Countdowns ("reconnecting in 12 s") move every second; "last lead 3 min ago" too.
        if any(h.next_retry_ts or h.state == "receiving" for h in self.state.health):
            self.refresh()

    def show(self, state: CaptureState | None = None, *, holding: bool | None = None) -> None:
        if state is not None:
            self.state = state
        if holding is not None:
            self.holding = holding
        self.refresh(layout=True)

    def show_reminders(self, counts: dict[str, int]) -> None:
        if counts != self.reminders:
            self.reminders = counts
            self.refresh(layout=True)

    def add_problem(self, text: str) -> None:
        self.problems.append(text)
        self.refresh(layout=True)

    def health(self) -> Text:
        now = self.clock()
        out = Text()
        out.append("leadtui", style="bold")
        if self.demo_line is not None:
            out.append(" ")
            out.append(" DEMO ", style="bold reverse")
        parts: list[tuple[str, str]] = []
        state = self.state
        if state.error:
            parts.append((f"database: {display.clean(state.error)}", "bold red"))
        elif not state.loaded:
            parts.append(("starting…", "dim"))
        else:
            for h in state.health:
                style = "red" if h.failing else ""
                parts.append((display.health_line(h, now), style))
            lease = state.lease
            if lease is None and not self.holding and state.mailboxes:
                # The team's mailbox is set up somewhere, but nobody reads it now.
                parts.append(("nobody captures: mail waits (run leadtui serve)", "bold red"))
            elif self.setup_hint and not any(h.source == "mailbox" for h in state.health):
                parts.append((self.setup_hint, "yellow"))
            if lease is None and not self.holding and not state.mailboxes:
                parts.append(("not capturing", "yellow"))
            elif lease is not None and not self.holding:
                person, host = display.holder(lease.holder)
                where = f" (on {host})" if host else ""
                parts.append((f"viewing; {person} captures{where}", "dim"))
        parts.extend((p, "yellow") for p in self.problems)
        for i, (text, style) in enumerate(parts):
            out.append("  " if i == 0 else " · ")
            out.append(text, style=style)
        return out

    def counts(self) -> Text:
        out = Text()
        counts = self.state.counts
        if not (self.state.loaded and counts):
            return out
        out.append(f"new today {display.count(counts.get('new_today', 0), COUNT_CAP)}")
        awaiting = counts.get("awaiting", 0)
        out.append(" · ")
        out.append(
            f"awaiting {display.count(awaiting, COUNT_CAP)}", style="bold" if awaiting else ""
        )
        unread = counts.get("unread", 0)
        if unread:
            out.append(" · ")
            out.append(f"unread {display.count(unread, COUNT_CAP)}", style="bold yellow")
        timed = reminders.counts_text(self.reminders, COUNT_CAP)
        if timed:
            out.append(" · ")
            out.append_text(timed)
        review = counts.get("review", 0)
        if review:
            out.append(" · ")
            out.append(f"review {display.count(review, COUNT_CAP)}", style="bold red")
        return out

    def render(self) -> Text:
        width = max(20, self.content_region.width or self.size.width or 80)
        lines = [self.health()]
        if self.demo_line:
            lines.append(Text(self.demo_line, style="dim"))
        right = self.counts()
        for i, line in enumerate(lines):  # the counts go right of the first line with room
            if line.cell_len + 3 + right.cell_len <= width:
                lines[i] = line + Text(" " * (width - line.cell_len - right.cell_len)) + right
                break
        else:
            right.align("right", width)
            lines.append(right)
        return Text("\n").join(lines)


class LeadBar(Static):
    """One line about the lead under the cursor: who did what last, owner, follow-up, notes."""

    DEFAULT_CSS = """
    LeadBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text-muted;
    }
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.lead: Lead | None = None
        self.view = ""
        self.buylead_valid_hours = 72.0

    def on_mount(self) -> None:
        self.set_interval(30.0, self._draw)  # "2 min ago" moves on

    def show(self, lead: Lead | None = None, *, view: str | None = None) -> None:
        self.lead = lead
        if view is not None:
            self.view = view
        self._draw()

    def line(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(self.view, style="bold")
        lead = self.lead
        if lead is None:
            return out
        now = self.clock()
        bits = [f"#{lead.id} {display.buyer(lead)}"]
        action = display.last_action(lead, now)
        if action:
            bits.append(action)
        if lead.owner:
            bits.append(f"owner {display.clean(lead.owner)}")
        if lead.follow_up:
            bits.append(f"follow-up {display.follow_up(lead)}")
        left = reminders.stale_in(lead, now, self.buylead_valid_hours)
        if left is not None:
            bits.append(f"BuyLead {reminders.stale_label(left)}")
        if lead.notes_count:
            bits.append(f"{lead.notes_count} note{'s' if lead.notes_count != 1 else ''}")
        if lead.messages_count:
            replies = f"{lead.messages_count} repl{'ies' if lead.messages_count != 1 else 'y'}"
            bits.append(f"{replies} ({lead.unread} unread)" if lead.unread else replies)
        if lead.enquiry_no > 1:
            bits.append(f"enquiry no. {lead.enquiry_no} from this buyer")
        out.append("  ")
        out.append(" · ".join(bits))
        return out

    def _draw(self) -> None:
        self.update(self.line())


class KeyFooter(Footer):
    """The footer cut to the keys that fit the terminal, always ending with ``? keys``.

    Textual's footer clips at the right edge (``a C`` at 80 columns, Claim to Quit gone); this
    one shows the keys that fit whole, in order, and the help key last, which lists them all.
    """

    HELP_ACTIONS = frozenset({"help", "app.help"})

    def compose(self) -> ComposeResult:
        keys = [k for k in super().compose() if isinstance(k, FooterKey)]
        help_key = next((k for k in keys if k.action in self.HELP_ACTIONS), None)
        others = [k for k in keys if k is not help_key]
        if help_key is not None:
            short = help_key.description
            help_key.description = "more keys"  # room for the longer label, if it is needed
        # One cell spare: the last key must never be cut, whatever the terminal rounds.
        room = self.app.size.width - 1 - (_key_cells(help_key) if help_key else 0)
        shown: list[FooterKey] = []
        for key in others:
            room -= _key_cells(key)
            if room < 0:
                break
            shown.append(key)
        if help_key is not None:
            if len(shown) == len(others):
                help_key.description = short
            shown.append(help_key)
        self.styles.grid_size_columns = max(1, len(shown))
        yield from shown

    def on_resize(self, _event: events.Resize) -> None:
        if self.is_attached:
            self.call_after_refresh(self.recompose)


def _key_cells(key: FooterKey) -> int:
    """Cells a compact footer key takes: ``c Contacted`` and the gap after it."""
    return display.cells(key.key_display) + 1 + display.cells(key.description) + 1
