"""One lead in full: every field, specs, the message, replies, the buyer's earlier enquiries,
the history of who did what, and the raw email or payload it came from."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from leadtui import parser
from leadtui.screens.base import TRIAGE_BINDINGS, LeadScreen
from leadtui.screens.messages import DetailRequested, ReadRequested
from leadtui.store import Event, Lead, RawSummary, Reply, Store
from leadtui.widgets import display
from leadtui.widgets.bars import KeyFooter

_MASKED = re.compile(r"\+?91[- ]?\d{0,4}X{3,}\d{0,4}")  # a number IndiaMART hid
RAW_LIMIT = 64_000  # characters of the raw item shown; the rest is cut


@dataclass(frozen=True)
class Details:
    lead: Lead
    history: list[Lead]
    events: list[Event]
    replies: list[Reply]
    raw: RawSummary | None
    raw_text: str | None
    readable: str | None = None  # an email's headers and text, decoded


class DetailLoaded(Message):
    def __init__(self, details: Details) -> None:
        super().__init__()
        self.details = details


def _raw_text(body: bytes, kind: str) -> str:
    if kind == "json":
        try:
            return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return _cut(body.decode("utf-8", errors="replace"))


def _cut(text: str) -> str:
    if len(text) > RAW_LIMIT:
        text = text[:RAW_LIMIT] + f"\n… ({len(text) - RAW_LIMIT:,} more characters)"
    return text


class DetailScreen(LeadScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back", id="back", tooltip="Back to the lead table"),
        *TRIAGE_BINDINGS,
        Binding("e", "others", "Other enquiries", id="others", tooltip="Pick another enquiry from this buyer to open"),
        # priority: the page moves even when the list of other enquiries has the focus
        Binding("home", "page_top", "Top", show=False, id="page-top", tooltip="The top of the lead's page", priority=True),
        Binding("end", "page_bottom", "Bottom", show=False, id="page-bottom", tooltip="The bottom of the lead's page (the original email)", priority=True),
    ]  # fmt: skip

    def __init__(self, lead: Lead, store: Store, clock: Callable[[], float]) -> None:
        super().__init__()
        self.lead = lead
        self.store = store
        self.clock = clock
        self.details: Details | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-fields")
            yield Static(id="detail-text")
            yield Static(id="detail-others-title")
            yield OptionList(id="detail-others")
            yield Static(id="detail-history")
            yield Static(id="detail-raw")
        yield KeyFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._draw_title()
        self.query_one("#detail-fields", Static).update(self._fields(self.lead))
        self.query_one("#detail-body").focus()
        self._load(self.lead.id)

    def selected(self) -> Lead | None:
        return self.lead

    def lead_changed(self, lead: Lead) -> None:
        if lead.id == self.lead.id:
            self.lead = lead
            self._draw_title()
            self._load(lead.id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="detail", name="lead detail")
    def _load(self, lead_id: int) -> None:
        store = self.store
        worker = get_current_worker()
        try:
            lead = store.get_lead(lead_id)
            if lead is None or worker.is_cancelled:
                return
            raw_ids = store.lead_raw_ids(lead_id)
            raw_id = lead.raw_id if lead.raw_id is not None else (raw_ids[0] if raw_ids else None)
            info = store.raw_info(raw_id) if raw_id is not None else None
            body = store.raw_body(raw_id) if raw_id is not None else None
            details = Details(
                lead=lead,
                history=store.buyer_history(lead),
                events=store.events(lead_id),
                replies=store.messages(lead_id),
                raw=info,
                raw_text=_raw_text(body, info.kind if info else "email") if body else None,
                readable=_cut(parser.readable_email(body))
                if body and info is not None and info.kind == "email"
                else None,
            )
            self.post_message(DetailLoaded(details))
        finally:
            store.close()

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        details = message.details
        self.details = details
        self.lead = details.lead
        self._draw_title()
        self.query_one("#detail-fields", Static).update(self._fields(details.lead))
        self.query_one("#detail-text", Static).update(self._text(details))
        self._show_others(details)
        self.query_one("#detail-history", Static).update(self._history(details))
        self.query_one("#detail-raw", Static).update(self._raw(details))
        if details.lead.unread:  # the person is reading them now (a reply may arrive while open)
            self.post_message(ReadRequested(details.lead.id))

    def action_page_top(self) -> None:
        self._page_end(top=True)

    def action_page_bottom(self) -> None:
        self._page_end(top=False)

    def _page_end(self, *, top: bool) -> None:
        """Home / End: the whole page moves, whatever has the focus, and the keys that scroll
        it (up, down, page up/down) work again from there."""
        body = self.query_one("#detail-body", VerticalScroll)
        if top:
            body.scroll_home(animate=False)
        else:
            body.scroll_end(animate=False)
        body.focus()

    # ------------------------------------------------------------------ drawing

    def _draw_title(self) -> None:
        lead = self.lead
        title = Text()
        title.append(display.buyer(lead), style="bold")
        if lead.company and lead.name:
            title.append(f" — {display.clean(lead.company)}")
        title.append(f"   {display.type_label(lead)} · {display.clean(lead.status)}")
        action = display.last_action(lead, self.clock())
        if action:
            title.append(f" · {action}", style="dim")
        self.query_one("#detail-title", Static).update(title)

    def _masked_phone(self) -> Text | str:
        """IndiaMART hides some buyers' numbers (``+91-98XXXXXX01``): say so, and where to
        see it, rather than show an empty line."""
        raw = self.details.raw_text if self.details is not None else None
        found = _MASKED.search(raw or "")
        if found is None:
            return ""
        return Text(
            f"{found.group(0)}: hidden by IndiaMART. Open this enquiry in IndiaMART's Lead "
            "Manager (or its app) to call the buyer, or answer there to see the number.",
            style="yellow",
        )

    def _fields(self, lead: Lead) -> RenderableType:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        url = display.whatsapp_url(lead.phone)
        rows: list[tuple[str, Text | str]] = [
            ("Lead", f"#{lead.id}"),
            ("Received", display.full_time(lead.received_ts)),
            ("Type", display.type_label(lead)),
            (
                "Source",
                f"{display.SOURCE_LABELS.get(lead.source, lead.source)} via {lead.channels}",
            ),
            ("Name", display.plain(lead.name)),
            ("Company", display.plain(lead.company)),
            ("Phone", _phone(lead, lead.phone) or self._masked_phone()),
        ]
        if url:
            rows.append(("WhatsApp", Text(url, style=Style(link=url, underline=True))))
        rows += [
            ("Phone 2", _phone(lead, lead.phone_alt)),
            ("Email", display.plain(lead.email)),
            ("Email 2", display.plain(lead.email_alt)),
            ("Address", display.plain(lead.address)),
            ("City", display.plain(lead.city)),
            ("State", display.plain(lead.state)),
            ("PIN code", display.plain(lead.pincode)),
            ("Country", display.plain(lead.country)),
            ("Product", display.plain(lead.product)),
            ("Category", display.plain(lead.category)),
            ("Quantity", Text(display.quantity(lead))),
            ("Order value", display.plain(lead.order_value)),
            ("Requirement", display.plain(lead.requirement_type)),
            ("Call", f"{lead.call_duration} s" if lead.call_duration is not None else ""),
            ("Called number", display.plain(lead.receiver_phone)),
            ("Verified", ", ".join(lead.verified)),
            ("Member since", display.plain(lead.member_since)),
            ("Marketplace id", display.plain(lead.external_id)),
            ("Message-ID", display.plain(lead.message_id)),
            ("Status", display.plain(lead.status)),
            ("Owner", display.plain(lead.owner)),
            ("Follow-up", display.follow_up(lead)),
            ("Contacted", self._contacted(lead)),
            ("Enquiry no.", f"{lead.enquiry_no} from this buyer" if lead.enquiry_no > 1 else ""),
        ]
        for label, value in rows:
            shown = value if isinstance(value, Text) else Text(display.clean(value))
            if shown.plain:
                grid.add_row(label, shown)
        for label, value in lead.specs.items():
            grid.add_row(Text(display.clean(label)), display.plain(value))
        return grid

    def _contacted(self, lead: Lead) -> str:
        if lead.contacted_ts is None:
            return ""
        who = f" by {display.clean(lead.contacted_by)}" if lead.contacted_by else ""
        took = display.duration(lead.response_seconds)
        return f"{display.full_time(lead.contacted_ts)}{who} ({took} after it arrived)"

    def _text(self, details: Details) -> RenderableType:
        parts: list[RenderableType] = []
        if details.lead.message:
            parts.append(Text("\nMessage", style="bold"))
            parts.append(display.plain(details.lead.message, lines=True))
        if details.replies:
            parts.append(Text("\nReplies from the buyer", style="bold"))
            for reply in details.replies:
                line = Text(f"{display.full_time(reply.ts)}  ", style="dim")
                line.append_text(display.plain(reply.text, lines=True))
                parts.append(line)
        return Group(*parts)

    def _show_others(self, details: Details) -> None:
        title = Text("\nOther enquiries from this buyer", style="bold")
        if details.history:
            title.append("  e, then ⏎ opens one", style="dim")
        else:
            title.append("  none", style="dim")
        self.query_one("#detail-others-title", Static).update(title)
        others = self.query_one("#detail-others", OptionList)
        others.clear_options()
        now = self.clock()
        for old in details.history:
            line = Text()
            line.append(f"{display.when(old.received_ts, now):>9}  ")
            line.append(f"{display.type_label(old):<9} ")
            line.append(display.clean(old.product) or "—")
            line.append(f"  {display.clean(old.status)}", style="dim")
            others.add_option(Option(line, id=str(old.id)))
        others.display = bool(details.history)

    def action_others(self) -> None:
        others = self.query_one("#detail-others", OptionList)
        if not others.option_count:
            self.notify("No other enquiries from this buyer", markup=False)
            return
        others.focus()
        others.highlighted = others.highlighted or 0
        others.scroll_visible()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        history = self.details.history if self.details is not None else []
        chosen = next((x for x in history if str(x.id) == event.option.id), None)
        if chosen is not None:
            self.post_message(DetailRequested(chosen))

    def _history(self, details: Details) -> RenderableType:
        parts: list[RenderableType] = [Text("\nHistory", style="bold")]
        for event in details.events:
            line = Text()
            line.append(f"{display.full_time(event.ts)}  ", style="dim")
            line.append(display.clean(event.actor), style="bold")
            line.append(f"  {display.clean(event.action)}")
            if event.detail and event.detail != event.action:
                line.append(": ")
                line.append(display.clean(event.detail))
            parts.append(line)
        return Group(*parts)

    def _raw(self, details: Details) -> RenderableType:
        raw = details.raw
        heading = Text("\nOriginal ", style="bold")
        if raw is None or details.raw_text is None:
            heading.append("(not kept)")
            return heading
        heading.append(f"{'payload' if raw.kind == 'json' else 'email'}", style="bold")
        heading.append(
            f"  item {raw.id} · {display.clean(raw.source)} · {raw.size:,} bytes", style="dim"
        )
        if details.readable is None:
            return Group(heading, display.plain(details.raw_text, "dim", lines=True))
        return Group(
            heading,
            display.plain(details.readable, lines=True),
            Text("\nSource", style="bold"),
            display.plain(details.raw_text, "dim", lines=True),
        )


def _phone(lead: Lead, number: str | None) -> Text:
    """A phone number, with a DNC marker when the number is on the do-not-call registry."""
    shown = display.plain(number)
    if shown.plain and display.do_not_call(lead, number):
        shown.append("  DNC", style=display.DNC_STYLE)
        shown.append(": on India's do-not-call registry (says JustDial); d asks before dialling")
    return shown
