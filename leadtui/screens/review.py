"""The review queue: raw items that failed to become leads, with the reason; reparse them.

Below them, the outbox's dead letters (a notification, webhook delivery or acknowledgement
that failed for a day, or that its receiver refused): what it was, where to, the last error;
``t`` tries one again now (the capturing leadtui sends it).
"""

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
from leadtui.store import OutboxItem, Outcome, RawSummary, Store
from leadtui.widgets import display


class ReviewLoaded(Message):
    def __init__(self, items: list[RawSummary], dead: list[OutboxItem] | None = None) -> None:
        super().__init__()
        self.items = items
        self.dead = dead or []


class Retried(Message):
    def __init__(self, item_id: int, done: bool) -> None:
        super().__init__()
        self.item_id = item_id
        self.done = done


DEAD = "out:"  # the row key prefix of a dead letter (a raw item's key is its id)


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
        Binding("t", "retry_delivery", "Retry delivery", id="retry-delivery", tooltip="Send this dead letter again now"),
    ]  # fmt: skip

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.items: dict[int, RawSummary] = {}
        self.dead: dict[int, OutboxItem] = {}

    def compose(self) -> ComposeResult:
        yield Static(
            Text(
                "Review queue: items that did not become leads, messages that did not leave",
                style="bold",
            ),
            id="review-title",
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
            self.post_message(ReviewLoaded(store.review_items(), store.outbox_items("dead", 200)))
        finally:
            store.close()

    def on_review_loaded(self, message: ReviewLoaded) -> None:
        table = self.query_one(DataTable)
        keep = self._current_key()
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
        self.dead = {item.id: item for item in message.dead}
        for dead in message.dead:
            lead = f" lead #{dead.lead_id}" if dead.lead_id else ""
            table.add_row(
                Text(f"out {dead.id}", style="bold"),
                Text(display.stamp(dead.created_ts)),
                display.plain(dead.target),
                display.plain(f"not delivered: {dead.kind}{lead}: {dead.last_error or '?'}"),
                key=f"{DEAD}{dead.id}",
            )
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep))
        if not message.items and not message.dead:
            self.query_one("#review-raw-text", Static).update(
                Text("Nothing to review: every item became a lead, a reply or was ignored.")
            )
        else:
            self._show_raw()

    def _current_key(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _current(self) -> int | None:
        """The highlighted raw item's id (None on a dead letter or an empty queue)."""
        key = self._current_key()
        return int(key) if key is not None and not key.startswith(DEAD) else None

    def _current_dead(self) -> OutboxItem | None:
        key = self._current_key()
        if key is None or not key.startswith(DEAD):
            return None
        return self.dead.get(int(key.removeprefix(DEAD)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_raw()

    def _show_raw(self) -> None:
        raw_id = self._current()
        if raw_id is not None:
            self._load_raw(raw_id)
        elif (dead := self._current_dead()) is not None:
            self._show_dead(dead)

    def _show_dead(self, item: OutboxItem) -> None:
        """A dead letter's story, as plain text (lead text is data)."""
        out = Text()
        out.append(f"Outbox row {item.id}", style="bold")
        out.append(f" · {display.clean(item.kind)} to {display.clean(item.target)}")
        out.append(f" · tried {item.attempts}× · event {display.clean(item.event_id)}\n")
        out.append("Last error: ", style="bold")
        out.append(display.clean(item.last_error or "unknown") + "\n")
        lead = item.payload.get("lead") or {}
        about = [f"lead #{item.lead_id}"] if item.lead_id else []
        about += [str(lead[k]) for k in ("name", "company", "phone", "product") if lead.get(k)]
        if not lead and item.payload.get("title"):
            about.append(str(item.payload["title"]))
        out.append(display.clean(", ".join(about)) + "\n\n")
        out.append("t sends it again now; leadtui outbox drop ", style="dim")
        out.append(f"{item.id} forgets it.", style="dim")
        self.query_one("#review-raw-text", Static).update(out)

    def action_retry_delivery(self) -> None:
        dead = self._current_dead()
        if dead is None:
            self.notify("Highlight a dead letter (out N) to send it again", markup=False)
            return
        self._retry(dead.id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="retry", name="retry delivery")
    def _retry(self, item_id: int) -> None:
        store = self.store
        try:
            self.post_message(Retried(item_id, store.outbox_retry(item_id)))
            self.post_message(ReviewLoaded(store.review_items(), store.outbox_items("dead", 200)))
        finally:
            store.close()

    def on_retried(self, message: Retried) -> None:
        if message.done:
            text = f"Outbox row {message.item_id} is due now: the capturing leadtui sends it"
        else:
            text = f"Outbox row {message.item_id} was sent or dropped meanwhile"
        self.notify(text, markup=False)

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
        if raw_id is None and self._current_dead() is not None:
            self.notify("That is a dead letter: t sends it again", markup=False)
            return
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
            self.post_message(ReviewLoaded(store.review_items(), store.outbox_items("dead", 200)))
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
