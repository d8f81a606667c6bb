"""Stats: leads per day, by type and by source, and how fast the team answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.columns import Columns
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, LoadingIndicator, Sparkline, Static

from leadtui.store import SlaRow, Stats, Store
from leadtui.widgets import display

DAYS = 14


class StatsLoaded(Message):
    def __init__(self, stats: Stats) -> None:
        super().__init__()
        self.stats = stats


class StatsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back", id="back", tooltip="Back to the lead table"),
        Binding("t", "reload", "Refresh", id="stats-refresh", tooltip="Count again"),
    ]

    def __init__(
        self, store: Store, clock: Callable[[], float], sla_seconds: float | None = None
    ) -> None:
        super().__init__()
        self.store = store
        self.clock = clock
        self.sla_seconds = sla_seconds  # sla.first_contact (None: off)

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Leads in the last {DAYS} days", style="bold"), id="stats-title")
        yield LoadingIndicator(id="stats-loading")
        with VerticalScroll(id="stats-body"):
            yield Sparkline([], id="stats-spark")
            yield Static(id="stats-days")
            yield Static(id="stats-tables")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#stats-body").display = False
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="stats", name="stats")
    def _load(self) -> None:
        store = self.store
        try:
            self.post_message(
                StatsLoaded(store.stats(now=self.clock(), days=DAYS, sla_seconds=self.sla_seconds))
            )
        finally:
            store.close()

    def on_stats_loaded(self, message: StatsLoaded) -> None:
        stats = message.stats
        self.query_one("#stats-loading").display = False
        self.query_one("#stats-body").display = True
        self.query_one("#stats-spark", Sparkline).data = [n for _, n in stats.per_day]
        days = Text()
        if stats.per_day:
            first, last = stats.per_day[0][0], stats.per_day[-1][0]
            peak = max(n for _, n in stats.per_day)
            days.append(f"{first:%d %b} … {last:%d %b}, busiest day {peak:,}\n", style="dim")
        days.append("Today: ", style="bold")
        days.append(
            f"{stats.new_today:,} new · {stats.contacted_today:,} contacted · "
            f"{stats.awaiting_contact:,} awaiting contact"
        )
        self.query_one("#stats-days", Static).update(days)

        answer = Table(title="First contact", title_justify="left", box=None)
        answer.add_column("")
        answer.add_column("median", justify="right")
        answer.add_row("today", display.duration(stats.median_response_today))
        answer.add_row("this week", display.duration(stats.median_response_week))

        by_type = Table(title="By type, 7 days", title_justify="left", box=None)
        by_type.add_column("type")
        by_type.add_column("leads", justify="right")
        for code, n in sorted(stats.by_type.items(), key=lambda kv: -kv[1]):
            label = display.TYPE_LABELS.get(code) or display.SOURCE_LABELS.get(
                code, display.clean(code).capitalize()
            )
            by_type.add_row(label, f"{n:,}")

        by_source = Table(title="By source, 7 days", title_justify="left", box=None)
        by_source.add_column("source")
        by_source.add_column("leads", justify="right")
        for source, n in sorted(stats.by_source.items(), key=lambda kv: -kv[1]):
            by_source.add_row(display.SOURCE_LABELS.get(source, display.clean(source)), f"{n:,}")

        # Side by side when they fit, one under another on a narrow terminal.
        shown: list[Table] = [answer, by_type, by_source]
        if stats.sla_seconds:
            limit = display.duration(stats.sla_seconds)
            shown.append(sla_table(f"Within {limit}, per day", stats.sla_by_day))
            shown.append(sla_table(f"Within {limit}, per person", stats.sla_by_person))
        tables = Columns(shown, padding=(1, 4))
        self.query_one("#stats-tables", Static).update(tables)


def sla_table(title: str, rows: list[SlaRow]) -> Table:
    """Share of leads contacted within the limit and the median first contact, one row each."""
    table = Table(title=title, title_justify="left", box=None)
    table.add_column("")
    table.add_column("on time", justify="right")
    table.add_column("median", justify="right")
    for row in rows:
        share = "—" if row.share is None else f"{row.share:.0%} of {row.leads:,}"
        table.add_row(display.plain(row.label), share, display.duration(row.median_seconds))
    if not rows:
        table.add_row(Text("no leads yet", style="dim"), "", "")
    return table
