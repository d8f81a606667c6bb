"""The lead table: a window of at most ``MAX_ROWS`` leads, keyed by lead id, updated by diff.

The table never holds the database. It shows a *window*: contiguous leads of the current view,
newest first (by id). Scrolling near either edge asks the app for the next page (keyset paging
by id) and trims the far edge, so the table stays small whatever the database holds. Changes
from the feed arrive as "these leads match the view" / "these ids no longer do"; a lead inside
the window's id range (or newer than it when the window is at the head) is added or updated in
place, everything else is ignored. The cursor stays on the lead it was on.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from leadtui.store import Lead
from leadtui.widgets import display, reminders

PAGE = 100
PageKind = Literal["head", "tail", "older", "newer"]
FIRST_PAGE = 60  # a fresh view loads a screenful or two: the first paint is what counts
MAX_ROWS = 300
EDGE = 10  # rows from an edge that trigger loading the next page

HIGHLIGHT_STYLE = "bold on #2a4d1c"  # new rows, for ``highlight_seconds``


class Cell(Text):
    """A table cell: plain text that knows its lead (the table sorts rows by it)."""

    lead_id: int = 0


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    key: str
    label: str
    minimum: int
    ideal: int
    keep: float  # lower: dropped first when the terminal is narrow


COLUMNS = (
    ColumnSpec("time", "Time", 6, 6, 10),
    ColumnSpec("type", "Type", 8, 10, 4),
    ColumnSpec("name", "Name", 10, 22, 7),
    ColumnSpec("company", "Company", 10, 24, 2),
    ColumnSpec("phone", "Phone", 13, 16, 9),
    ColumnSpec("product", "Product", 12, 28, 8),
    ColumnSpec("quantity", "Qty", 6, 12, 1),
    ColumnSpec("city", "City", 8, 14, 6),
    ColumnSpec("status", "Status", 9, 9, 5),
    ColumnSpec("owner", "Owner", 6, 10, 3),
)
"""What a salesperson decides on stays longest as the terminal narrows: the whole phone
number, the product, the buyer's name and city, then the status (the lead bar shows it too);
company and quantity go first, and the extras (owner, company, quantity) only join once the
columns before them have their ideal width."""
EXTRA = 3  # columns kept this little or less are extras
PADDING = 2  # DataTable's cell padding, both sides
GROW_FIRST = frozenset({"phone", "name", "product"})


TEAM_OWNER_KEEP = 4.5  # with teammates, who has the lead matters more than its type


def layout_columns(width: int, *, team: bool = False) -> list[tuple[ColumnSpec, int]]:
    """Which columns fit in ``width`` cells, and how wide each is (in display order).

    Columns are dropped, least needed first, until the rest fit a sixth of the way from their
    minimum to their ideal width; the extras come only when the others have their ideal width:
    a whole product name beats a company column. With ``team`` (more than one person uses this
    database) the owner is kept like a core column.
    """
    columns = [
        dataclasses.replace(c, keep=TEAM_OWNER_KEEP) if team and c.key == "owner" else c
        for c in COLUMNS
    ]

    def comfortable(c: ColumnSpec) -> int:
        return c.minimum + (c.ideal - c.minimum) // 6 + PADDING

    core = [c for c in columns if c.keep > EXTRA]
    while len(core) > 3 and sum(comfortable(c) for c in core) > width:
        core.remove(min(core, key=lambda c: c.keep))
    used = sum(c.ideal + PADDING for c in core)
    extras: list[ColumnSpec] = []
    everything_core = len(core) == sum(x.keep > EXTRA for x in columns)
    for c in sorted((c for c in columns if c.keep <= EXTRA), key=lambda c: -c.keep):
        if not everything_core or used + comfortable(c) > width:
            break  # in order: no company before there is room for the owner
        extras.append(c)
        used += comfortable(c)
    shown = [c for c in columns if c in core or c in extras]
    widths = {c.key: c.minimum for c in shown}
    spare = width - sum(c.minimum + PADDING for c in shown)
    # Space goes to the name and the product first, then to the rest.
    for first in (True, False):
        growable = [c for c in shown if c.ideal > widths[c.key] and (c.key in GROW_FIRST) == first]
        while spare > 0 and growable:
            for c in list(growable):
                if spare <= 0:
                    break
                widths[c.key] += 1
                spare -= 1
                if widths[c.key] >= c.ideal:
                    growable.remove(c)
    # Past every ideal width the free text columns share what is left.
    flexible = [c for c in shown if c.key in {"name", "company", "product"}]
    i = 0
    while spare > 0 and flexible:
        widths[flexible[i % len(flexible)].key] += 1
        spare -= 1
        i += 1
    return [(c, widths[c.key]) for c in shown]


def cells_of(lead: Lead, now: float) -> dict[str, tuple[str, str]]:
    """(text, style) of every column for one lead. Plain text, control characters removed."""
    return {
        "time": (display.when(lead.received_ts, now), ""),
        "type": (display.type_label(lead), ""),
        "name": _name(lead),
        "company": (display.clean(lead.company), ""),
        "phone": display.phone_cell(lead),
        "product": (display.clean(lead.product), ""),
        "quantity": (display.quantity(lead), ""),
        "city": (display.clean(lead.city), ""),
        "status": (display.clean(lead.status), display.STATUS_STYLES.get(lead.status, "")),
        "owner": (display.clean(lead.owner), ""),
    }


def _name(lead: Lead) -> tuple[str, str]:
    """The buyer's name, marked and bold while a message of theirs is unread."""
    name = display.clean(lead.name) or "—"
    return (display.UNREAD_MARK + name, "bold") if lead.unread else (name, "")


class LeadTable(DataTable[Text]):
    """The window of leads. The app feeds it; it asks the app for pages."""

    DEFAULT_CSS = """
    LeadTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_detail", "Detail", id="detail", tooltip="Every field of the lead"),
        Binding("j", "cursor_down", "Down", show=False, id="down", tooltip="Next lead"),
        Binding("k", "cursor_up", "Up", show=False, id="up", tooltip="Previous lead"),
        Binding("g", "first", "First", show=False, id="top", tooltip="Newest lead"),
        Binding("G", "last", "Last", show=False, id="bottom", tooltip="Oldest lead"),
    ]

    class PageWanted(Message):
        """Load the page ``kind`` ("older", "newer", "head", "tail") next to ``anchor``."""

        def __init__(self, kind: PageKind, anchor: int | None) -> None:
            super().__init__()
            self.kind: PageKind = kind
            self.anchor = anchor

    class DetailWanted(Message):
        def __init__(self, lead: Lead) -> None:
            super().__init__()
            self.lead = lead

    class LeadFocused(Message):
        """The cursor is on ``lead`` (None: the table is empty)."""

        def __init__(self, lead: Lead | None) -> None:
            super().__init__()
            self.lead = lead

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        highlight_seconds: float = 4.0,
        id: str | None = None,
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, id=id)
        self.clock = clock
        self.highlight_seconds = highlight_seconds
        self.leads: dict[int, Lead] = {}
        self.at_head = True  # no matching lead is newer than the window
        self.has_older = False  # matching leads exist below the window
        self.waiting: str | None = None  # the page asked for and not yet loaded
        # Until the user presses a key the cursor follows the newest lead; after that it
        # stays on the lead it is on, so a key never lands on a lead that just arrived.
        self.follow_head = True
        self._rendered: dict[int, dict[str, tuple[str, str]]] = {}
        self._highlight_until: dict[int, float] = {}
        self._layout: list[tuple[ColumnSpec, int]] = []
        self.team = False  # more than one person: the owner column is kept
        self._last_focused: tuple[int, int] | None = (-1, -1)
        self.sla_seconds = 0.0  # sla.first_contact: waiting new leads turn amber, then red

    # ------------------------------------------------------------------ columns

    def on_mount(self) -> None:
        self._apply_layout(self.size.width or 80)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_layout(event.size.width)

    def _apply_layout(self, width: int) -> None:
        layout = layout_columns(max(20, width - 1), team=self.team)
        if layout == self._layout:
            return
        self._layout = layout
        keep = self.current_id
        with self.app.batch_update():
            self.clear(columns=True)
            for spec, w in layout:
                self.add_column(spec.label, width=w, key=spec.key)
            self._rendered.clear()
            for lead in sorted(self.leads.values(), key=lambda x: -x.id):
                self._add(lead)
            self._restore(keep, 0)

    def show_team(self, team: bool) -> None:
        """More than one person works these leads: keep the Owner column in view."""
        if team != self.team:
            self.team = team
            self._apply_layout(self.size.width or 80)

    @property
    def shown_columns(self) -> list[str]:
        return [spec.key for spec, _ in self._layout]

    # ------------------------------------------------------------------ reading

    @property
    def current_id(self) -> int | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    @property
    def current(self) -> Lead | None:
        lead_id = self.current_id
        return None if lead_id is None else self.leads.get(lead_id)

    @property
    def ids(self) -> list[int]:
        """Lead ids in display order."""
        return [int(row.key.value) for row in self.ordered_rows if row.key.value is not None]

    def is_highlighted(self, lead_id: int) -> bool:
        return self._highlight_until.get(lead_id, 0.0) > time.monotonic()

    # ------------------------------------------------------------------ rows

    def _cells(self, lead: Lead) -> dict[str, tuple[str, str]]:
        values = cells_of(lead, self.clock())
        late = reminders.sla_style(lead, self.clock(), self.sla_seconds)
        if late and not self.is_highlighted(lead.id):
            values = {k: (text, f"{style} {late}".strip()) for k, (text, style) in values.items()}
        if self.is_highlighted(lead.id):
            values = {
                k: (text, f"{style} {HIGHLIGHT_STYLE}".strip())
                for k, (text, style) in values.items()
            }
        return values

    def _cell(self, lead_id: int, text: str, style: str, width: int) -> Cell:
        # Cut to the column here, once: a Text that ellipsizes itself costs twice as much
        # to draw, on every frame.
        if cell_len(text) > width:
            text = set_cell_size(text, width - 1).rstrip() + "…"
        cell = Cell(text, style=style, end="")
        cell.lead_id = lead_id
        return cell

    def _add(self, lead: Lead) -> None:
        values = self._cells(lead)
        self._rendered[lead.id] = values
        cells = [self._cell(lead.id, *values[spec.key], w) for spec, w in self._layout]
        self.add_row(*cells, key=str(lead.id))

    def _update(self, lead: Lead) -> None:
        values = self._cells(lead)
        before = self._rendered.get(lead.id, {})
        for spec, width in self._layout:
            if before.get(spec.key) != values[spec.key]:
                cell = self._cell(lead.id, *values[spec.key], width)
                self.update_cell(str(lead.id), spec.key, cell)
        self._rendered[lead.id] = values

    def _remove(self, lead_id: int) -> None:
        self.remove_row(str(lead_id))
        self.leads.pop(lead_id, None)
        self._rendered.pop(lead_id, None)
        self._highlight_until.pop(lead_id, None)

    def _sort(self) -> None:
        first = self.shown_columns[0]
        self.sort(first, key=lambda cell: -getattr(cell, "lead_id", 0))

    def _view_anchor(self) -> int | None:
        """The lead in the top visible row, to keep in place while rows come and go above it.

        None at the live head, scrolled to the top: there new leads push the rows down.
        """
        if not self.row_count or (self.at_head and self.scroll_y < 1):
            return None
        row = min(int(self.scroll_y), self.row_count - 1)
        key = self._row_locations.get_key(row)
        return int(key.value) if key is not None and key.value is not None else None

    def _keep_view(self, anchor: int | None) -> None:
        if anchor is None or str(anchor) not in self.rows:
            return
        target = self.get_row_index(str(anchor))
        if target != int(self.scroll_y):
            # After the refresh: the table's height is only known then.
            self.call_after_refresh(self.scroll_to, y=target, animate=False)

    def _restore(self, lead_id: int | None, fallback_row: int) -> None:
        """Put the cursor back on ``lead_id`` (rows moved around it) or near where it was."""
        if not self.row_count:
            return
        if lead_id is not None and str(lead_id) in self.rows:
            row = self.get_row_index(str(lead_id))
        else:
            row = min(max(0, fallback_row), self.row_count - 1)
        if row != self.cursor_row:
            self.move_cursor(row=row, animate=False, scroll=False)

    # ------------------------------------------------------------------ the window

    def replace(
        self,
        leads: list[Lead],
        *,
        at_head: bool,
        has_older: bool,
        cursor: str | int | None = None,
    ) -> None:
        """Show a fresh window (a new filter or search, or a jump).

        ``cursor``: a lead id to stay on when it is still shown, ``"first"`` or ``"last"``.
        """
        self.waiting = None
        self.at_head = at_head
        self.has_older = has_older
        with self.app.batch_update():
            self.clear()
            self.leads = {lead.id: lead for lead in leads}
            self._rendered.clear()
            self._highlight_until = {
                i: t for i, t in self._highlight_until.items() if i in self.leads
            }
            for lead in leads:
                self._add(lead)
            if self.row_count:
                if cursor == "last":
                    self.move_cursor(row=self.row_count - 1, animate=False)
                elif isinstance(cursor, int):
                    self._restore(cursor, 0)
                    self.call_after_refresh(self._scroll_cursor_into_view)
        self._report_focus()

    def extend(self, kind: str, leads: list[Lead], *, more: bool) -> None:
        """Add a page at one edge (``kind`` "older" or "newer") and trim the other edge."""
        self.waiting = None
        keep = self.current_id
        row = self.cursor_row
        anchor = self._view_anchor()
        new = [lead for lead in leads if lead.id not in self.leads]
        with self.app.batch_update():
            for lead in new:
                self.leads[lead.id] = lead
                self._add(lead)
            if kind == "older":
                self.has_older = more
                trim = self.ids[: max(0, self.row_count - MAX_ROWS)]
                if trim:
                    self.at_head = False
            else:
                self._sort()
                self.at_head = not more
                trim = self.ids[MAX_ROWS:]
                if trim:
                    self.has_older = True
            for lead_id in trim:
                self._remove(lead_id)
            self._restore(keep, row)
            self._keep_view(anchor)

    def belongs(self, lead_id: int) -> bool:
        """Would a lead with this id sit inside the window (or at its live head)?"""
        if lead_id in self.leads:
            return True
        if not self.leads:
            return self.at_head and not self.has_older
        if lead_id > max(self.leads):
            return self.at_head
        if lead_id < min(self.leads):
            return not self.has_older
        return True

    def apply_changes(
        self, matching: Iterable[Lead], gone: Iterable[int], new_ids: set[int]
    ) -> list[int]:
        """Apply a change-feed diff; ``new_ids`` are highlighted (new leads, and leads a buyer
        just wrote to). Returns the ids of rows added for them.

        Rows stay in arrival order (by id, as the window pages): a lead a buyer writes to is
        highlighted and marked where it is, never moved under the cursor; the unread filter
        gathers those leads."""
        keep = self.current_id
        row = self.cursor_row
        if self.follow_head and row == 0:
            keep = None  # nobody has touched the table yet: stay on the newest lead
        anchor = self._view_anchor()
        added: list[int] = []
        highlighted: list[int] = []
        until = time.monotonic() + self.highlight_seconds
        candidates = [x for x in matching if x.id not in self.leads and self.belongs(x.id)]
        if len(candidates) + len(self.leads) > MAX_ROWS:
            # A big burst (an import): only the newest MAX_ROWS can stay in the window.
            top = set(sorted([*self.leads, *(x.id for x in candidates)])[-MAX_ROWS:])
            candidates = [x for x in candidates if x.id in top]
        wanted = {x.id for x in candidates}
        with self.app.batch_update():
            for lead in matching:
                if lead.id in new_ids and self.highlight_seconds > 0:
                    self._highlight_until[lead.id] = until
                    highlighted.append(lead.id)
                if lead.id in self.leads:
                    self.leads[lead.id] = lead
                    self._update(lead)
                elif lead.id in wanted:
                    self.leads[lead.id] = lead
                    self._add(lead)
                    added.append(lead.id)
            for lead_id in gone:
                if lead_id in self.leads:
                    self._remove(lead_id)
            if added:
                self._sort()
                for lead_id in self.ids[MAX_ROWS:]:
                    self._remove(lead_id)
                    self.has_older = True
            self._restore(keep, row)
            self._keep_view(anchor)
        if highlighted:
            self.set_timer(self.highlight_seconds + 0.05, self._expire_highlights)
        self._report_focus()
        return [i for i in added if i in new_ids]

    def _expire_highlights(self) -> None:
        now = time.monotonic()
        done = [i for i, t in self._highlight_until.items() if t <= now]
        with self.app.batch_update():
            for lead_id in done:
                del self._highlight_until[lead_id]
                if lead_id in self.leads:
                    self._update(self.leads[lead_id])

    def refresh_times(self) -> None:
        """Re-render cells that depend on the clock (today's times become dates at midnight)."""
        with self.app.batch_update():
            for lead in self.leads.values():
                self._update(lead)

    # ------------------------------------------------------------------ paging

    def _want(self, kind: PageKind, anchor: int | None) -> None:
        if self.waiting is None:
            self.waiting = kind
            self.post_message(self.PageWanted(kind, anchor))

    def check_edges(self, *, by_scroll: bool = False) -> None:
        """Ask for the next page when the cursor (or, scrolling, the view) nears an edge."""
        if not self.row_count:
            return
        ids = self.ids
        if by_scroll:
            near_bottom = self.size.height > 0 and self.scroll_y >= self.max_scroll_y - EDGE
            near_top = False
        else:
            near_bottom = self.cursor_row >= self.row_count - EDGE
            near_top = self.cursor_row < EDGE
        if near_bottom and self.has_older:
            self._want("older", ids[-1])
        elif near_top and not self.at_head:
            self._want("newer", ids[0])

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new > old and self.waiting is None:  # the wheel, or a scrollbar drag
            self.call_after_refresh(self.check_edges, by_scroll=True)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._report_focus()
        self.check_edges()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_detail()

    def _report_focus(self) -> None:
        lead = self.current
        marker = None if lead is None else (lead.id, lead.seq)
        if marker != self._last_focused:
            self._last_focused = marker
            self.post_message(self.LeadFocused(lead))

    # ------------------------------------------------------------------ actions

    def action_open_detail(self) -> None:
        lead = self.current
        if lead is not None:
            self.post_message(self.DetailWanted(lead))

    def action_first(self) -> None:
        if self.at_head:
            if self.row_count:
                self.move_cursor(row=0, animate=False)
        else:
            self._want("head", None)

    def action_last(self) -> None:
        if not self.has_older:
            if self.row_count:
                self.move_cursor(row=self.row_count - 1, animate=False)
        else:
            self._want("tail", None)

    def row_of(self, lead_id: int) -> list[str]:
        """The plain text of a row, for tests and the bench: what the user reads."""
        return [str(cell) for cell in self.get_row(str(lead_id))]
