"""The review queue: raw items that failed to become leads, with the reason; reparse them."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from leadtui.capture import Pipeline
from leadtui.store import Outcome, RawSummary, Store
from leadtui.widgets import display


class ReviewLoaded(Message):
    def __init__(self, items: list[RawSummary]) -> None:
        super().__init__()
        self.items = items


class RawLoaded(Message):
    def __init__(self, raw_id: int, text: str) -> None:
        super().__init__()
        self.raw_id = raw_id
        self.text = text


class Reparsed(Message):
    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__()
        self.outcomes = outcomes


class ReviewScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back", id="back", tooltip="Back to the lead table"),
        Binding("p", "reparse", "Reparse", id="reparse", tooltip="Run the current parser over this item again"),
        Binding("P", "reparse_all", "Reparse all", id="reparse-all", tooltip="Reparse every item in the queue"),
    ]  # fmt: skip

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.items: dict[int, RawSummary] = {}

    def compose(self) -> ComposeResult:
        yield Static(
            Text("Review queue: items that did not become leads", style="bold"), id="review-title"
        )
        table: DataTable[Text] = DataTable(cursor_type="row", id="review-table")
        yield table
        with VerticalScroll(id="review-raw"):
            yield Static(id="review-raw-text")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Item", key="id", width=6)
        table.add_column("Received", key="time", width=12)
        table.add_column("Source", key="source", width=14)
        table.add_column("Reason", key="reason")
        table.focus()
        self._load()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="review", name="review queue")
    def _load(self) -> None:
        store = self.store
        try:
            self.post_message(ReviewLoaded(store.review_items()))
        finally:
            store.close()

    def on_review_loaded(self, message: ReviewLoaded) -> None:
        table = self.query_one(DataTable)
        keep = self._current()
        table.clear()
        self.items = {item.id: item for item in message.items}
        for item in message.items:
            table.add_row(
                Text(str(item.id)),
                Text(display.stamp(item.received_ts)),
                display.plain(item.source),
                display.plain(item.error or item.summary or "failed"),
                key=str(item.id),
            )
        if keep is not None and str(keep) in table.rows:
            table.move_cursor(row=table.get_row_index(str(keep)))
        if not message.items:
            self.query_one("#review-raw-text", Static).update(
                Text("Nothing to review: every item became a lead, a reply or was ignored.")
            )
        else:
            self._show_raw()

    def _current(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_raw()

    def _show_raw(self) -> None:
        raw_id = self._current()
        if raw_id is not None:
            self._load_raw(raw_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="review-raw", name="raw item")
    def _load_raw(self, raw_id: int) -> None:
        store = self.store
        try:
            body = store.raw_body(raw_id) or b""
            text = body.decode("utf-8", errors="replace")[:32_000]
            self.post_message(RawLoaded(raw_id, text))
        finally:
            store.close()

    def on_raw_loaded(self, message: RawLoaded) -> None:
        item = self.items.get(message.raw_id)
        out = Text()
        if item is not None:
            out.append(f"Item {item.id}", style="bold")
            out.append(
                f" · {display.clean(item.source)} · {item.size:,} bytes · tried {item.attempts}×\n"
            )
            out.append("Reason: ", style="bold")
            out.append(display.clean(item.error or "unknown") + "\n\n")
        out.append_text(display.plain(message.text, "dim", lines=True))
        self.query_one("#review-raw-text", Static).update(out)

    def action_reparse(self) -> None:
        raw_id = self._current()
        if raw_id is None:
            self.notify("The review queue is empty", markup=False)
            return
        self._reparse([raw_id])

    def action_reparse_all(self) -> None:
        if not self.items:
            self.notify("The review queue is empty", markup=False)
            return
        self._reparse(sorted(self.items))

    @work(thread=True, exclusive=True, exit_on_error=False, group="reparse", name="reparse")
    def _reparse(self, raw_ids: list[int]) -> None:
        store = self.store
        try:
            pipeline = Pipeline(store)
            outcomes = [pipeline.reparse(raw_id) for raw_id in raw_ids]
            self.post_message(Reparsed(outcomes))
            self.post_message(ReviewLoaded(store.review_items()))
        finally:
            store.close()

    def on_reparsed(self, message: Reparsed) -> None:
        outcomes = message.outcomes
        if len(outcomes) == 1:
            outcome = outcomes[0]
            if outcome.status == "failed":
                text = f"Item {outcome.raw_id} still fails: {display.clean(outcome.detail)}"
            else:
                text = f"Item {outcome.raw_id}: {outcome.status}"
                if outcome.new_lead_ids:
                    text += f" (lead #{outcome.new_lead_ids[0]})"
        else:
            failed = sum(1 for o in outcomes if o.status == "failed")
            text = f"Reparsed {len(outcomes)} items: {len(outcomes) - failed} fixed, {failed} still fail"
        self.notify(text, markup=False)
