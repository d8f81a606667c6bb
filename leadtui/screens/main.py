"""The main screen: header, the live lead table, the search line, the lead line, the keys."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from leadtui.screens.base import TRIAGE_BINDINGS, LeadScreen
from leadtui.screens.messages import DetailRequested, MainReady, ViewRequested
from leadtui.store import Lead
from leadtui.widgets.bars import KeyFooter, LeadBar, TopBar
from leadtui.widgets.table import LeadTable

SEARCH_DEBOUNCE = 0.15

# key, filter name, label in the footer/help
FILTERS = (
    ("0", "all", "All leads"),
    ("1", "new", "New"),
    ("2", "open", "Open"),
    ("3", "contacted", "Contacted"),
    ("4", "quoted", "Quoted"),
    ("5", "won", "Won"),
    ("6", "lost", "Lost"),
    ("7", "spam", "Spam"),
    ("8", "mine", "Mine"),
    ("9", "due", "Follow-up due"),
    ("C", "calls", "Calls to return"),
    ("B", "buyleads", "Fresh BuyLeads"),
    ("m", "unread", "Unread messages"),
)
FILTER_LABELS = {name: label for _key, name, label in FILTERS}


class MainScreen(LeadScreen):
    # Footer order: the most used first, so a narrow terminal still shows them.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Keys", id="help", tooltip="Every key, and how to change them"),
        # priority: handled as the key arrives, so text typed right after "/" (one burst over
        # SSH) already goes to the search box instead of running table keys.
        Binding("slash", "search", "Search", id="search", tooltip="Find leads as you type (name, phone, product, city…)", priority=True),
        *TRIAGE_BINDINGS,
        Binding("escape", "clear_search", "Clear search", show=False, id="clear-search", tooltip="Show every lead again"),
        Binding("r", "app.review", "Review", id="review", tooltip="Items that failed to become leads; reparse them"),
        Binding("t", "app.stats", "Stats", id="stats", tooltip="Leads per day, by type and source, response times"),
        Binding("q", "app.quit", "Quit", id="quit", tooltip="Quit leadtui (capture moves to another open leadtui)"),
        *[
            Binding(key, f"filter('{name}')", label, show=False, id=f"filter-{name}", tooltip=f"Show: {label.lower()}")
            for key, name, label in FILTERS
        ],
    ]  # fmt: skip

    def __init__(self, *, top: TopBar, table: LeadTable, lead_bar: LeadBar) -> None:
        super().__init__(id="main")
        self.top = top
        self.table = table
        self.lead_bar = lead_bar
        self._search_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield self.top
        with Horizontal(id="search-bar"):
            yield Label(Text("Search"), id="search-label")
            yield Input(placeholder="name, phone, product, city…", id="search")
        yield self.table
        yield Static(id="empty")
        yield self.lead_bar
        yield KeyFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.table.focus()
        self.post_message(MainReady())

    def selected(self) -> Lead | None:
        return self.table.current

    # ------------------------------------------------------------------ search and filters

    def action_search(self) -> None:
        bar = self.query_one("#search-bar")
        bar.add_class("-open")
        # Focus now, not on the next idle (Widget.focus defers): keys typed right after "/"
        # over a slow link arrive in the same batch and must go to the search, not run
        # table keys such as "s" (status).
        self.set_focus(self.query_one("#search", Input))

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        bar = self.query_one("#search-bar")
        if not bar.has_class("-open") and not search.value:
            return
        bar.remove_class("-open")
        if search.value:
            search.value = ""  # Input.Changed → the view is reloaded without a search
        self.table.focus()

    def action_filter(self, name: str) -> None:
        self.post_message(ViewRequested(filter_name=name))

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._search_timer is not None:
            self._search_timer.stop()
        value = event.value
        self._search_timer = self.set_timer(
            SEARCH_DEBOUNCE, lambda: self.post_message(ViewRequested(search=value))
        )

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._search_timer is not None:
            self._search_timer.stop()
        self.post_message(ViewRequested(search=event.value))
        if not event.value:
            self.query_one("#search-bar").remove_class("-open")
        self.table.focus()

    # ------------------------------------------------------------------ table messages

    # LeadTable.PageWanted goes on up to the app, which loads pages.

    def on_lead_table_detail_wanted(self, message: LeadTable.DetailWanted) -> None:
        message.stop()
        self.post_message(DetailRequested(message.lead))

    def on_lead_table_lead_focused(self, message: LeadTable.LeadFocused) -> None:
        self.lead_bar.show(message.lead)

    def show_empty(self, text: Text | None) -> None:
        """The empty state: a message under the column headers (None: there are rows)."""
        if text is None:
            self.remove_class("-empty")
        else:
            self.query_one("#empty", Static).update(text)
            self.add_class("-empty")
