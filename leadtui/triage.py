"""What the triage keys do: ask what an action needs on the UI thread, then write it.

A screen posts :class:`~leadtui.screens.messages.TriageRequested`; the app hands it to
:meth:`Triage.run`, which looks the action up in :data:`ACTIONS`. An action either acts at once
(copy the phone), or asks first (a prompt) and then calls ``write``, which runs the matching
:data:`WRITES` entry in a thread worker: the UI thread never touches the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from textual.app import App

from leadtui.screens.messages import TriageAction
from leadtui.store import STATUSES, Lead, Store
from leadtui.widgets import display

StoreAction = Literal["contacted", "status", "note", "assign", "follow-up"]


Written = tuple[Lead, str]  # the lead after the change, and the toast that says what changed
UNDO_SECONDS = 30.0


def _mark_contacted(store: Store, lead_id: int, _value: Any, actor: str) -> Written:
    lead = store.mark_contacted(lead_id, actor)
    if lead.status == "contacted":
        return lead, f"Contacted: {display.buyer(lead)}"
    return lead, f"Contact noted on {display.buyer(lead)} (still {display.clean(lead.status)})"


def _set_status(store: Store, lead_id: int, value: Any, actor: str) -> Written:
    lead = store.set_status(lead_id, str(value), actor)
    return lead, f"{display.buyer(lead)}: {value}"


def _add_note(store: Store, lead_id: int, value: Any, actor: str) -> Written:
    lead = store.add_note(lead_id, str(value), actor)
    return lead, f"Note added to {display.buyer(lead)}"


def _assign(store: Store, lead_id: int, value: Any, actor: str) -> Written:
    lead = store.assign(lead_id, str(value) or None, actor)
    owner = display.clean(lead.owner)
    return lead, f"{display.buyer(lead)}: " + (f"owner {owner}" if owner else "unassigned")


def _set_follow_up(store: Store, lead_id: int, value: Any, actor: str) -> Written:
    day: date | None = value
    lead = store.set_follow_up(lead_id, day, actor)
    return lead, (f"Follow up {display.buyer(lead)} on {day}" if day else "Follow-up cleared")


WRITES: dict[StoreAction, Callable[[Store, int, Any, str], Written]] = {
    "contacted": _mark_contacted,
    "status": _set_status,
    "note": _add_note,
    "assign": _assign,
    "follow-up": _set_follow_up,
}
"""Each store change a triage key makes, run in a thread worker."""


def unchanged(action: StoreAction, lead: Lead) -> str:
    """What a toast says when the action found the lead already so (nothing was recorded)."""
    buyer = display.buyer(lead)
    if action == "contacted":
        who = display.clean(lead.contacted_by) or "someone"
        return f"{buyer}: already contacted by {who}, {display.stamp(lead.contacted_ts or 0)}"
    if action == "status":
        return f"{buyer}: already {display.clean(lead.status)}"
    if action == "assign":
        owner = display.clean(lead.owner)
        return f"{buyer}: " + (f"already owned by {owner}" if owner else "already unassigned")
    return f"{buyer}: follow-up already {lead.follow_up or 'none'}"


@dataclass(frozen=True)
class Undoable:
    """The last triage change, kept for ``u``: the lead before it and its change value after."""

    before: Lead
    after_seq: int
    what: str  # "status contacted", for the toast and the history
    at: float  # time.monotonic() when it was made

    def fresh(self, now: float) -> bool:
        return now - self.at <= UNDO_SECONDS


def describe(action: StoreAction, value: Any) -> str:
    if action in {"contacted", "note"}:
        return "contacted" if action == "contacted" else "the note"
    shown = value.isoformat() if isinstance(value, date) else (value or "cleared")
    return f"{action} {display.clean(str(shown))}"


def _prompts() -> Any:
    from leadtui.screens import prompts  # noqa: PLC0415 - loaded on first use

    return prompts


class Triage:
    """The triage actions of one app, for one salesperson (``actor``)."""

    def __init__(
        self,
        app: App[Any],
        *,
        actor: str,
        clock: Callable[[], float],
        write: Callable[[StoreAction, Lead, Any], object],
    ) -> None:
        self.app = app
        self.actor = actor
        self.clock = clock
        self.write = write
        self.drafts: dict[int, str] = {}  # lead id → a note closed with escape, not saved
        self.people: list[str] = [actor]  # the team: configured, owners, this person

    def know(self, *names: str) -> None:
        """Add people to the team (case-insensitively: "Asha" is asha)."""
        for name in names:
            clean = name.strip()
            if clean and not self.match(clean):
                self.people.append(clean)
        self.people.sort(key=str.casefold)

    def match(self, name: str) -> str | None:
        """The team's spelling of ``name``, or None for someone new."""
        wanted = name.strip().casefold()
        return next((p for p in self.people if p.casefold() == wanted), None)

    def run(self, action: TriageAction, lead: Lead) -> None:
        ACTIONS[action](self, lead)

    def ask_status(self, lead: Lead) -> None:
        def set_status(status: str | None) -> None:
            if status:
                self.write("status", lead, status)

        prompt = _prompts().ChoicePrompt(f"Status of {display.buyer(lead)}", STATUSES, lead.status)
        self.app.push_screen(prompt, set_status)

    def ask_note(self, lead: Lead) -> None:
        def add_note(text: str | None) -> None:
            if text is not None:
                self.drafts.pop(lead.id, None)
            if text and text.strip():
                self.write("note", lead, text)

        def keep_draft(text: str) -> None:
            if not text.strip():
                self.drafts.pop(lead.id, None)
            else:
                self.drafts[lead.id] = text
                self.app.notify(
                    f"Note on {display.buyer(lead)} kept as a draft: n opens it again",
                    markup=False,
                )

        draft = self.drafts.get(lead.id, "")
        prompt = _prompts().TextPrompt(
            f"Note on {display.buyer(lead)}",
            value=draft,
            placeholder="called, sent the rate list…",
            hint="your draft; enter saves it, escape keeps it" if draft else "",
            on_cancel=keep_draft,
        )
        self.app.push_screen(prompt, add_note)

    def ask_owner(self, lead: Lead) -> None:
        asked_once: set[str] = set()

        def check(text: str) -> str | None:
            name = text.strip()
            if not name or self.match(name) or name.casefold() in asked_once:
                return None
            asked_once.add(name.casefold())  # a second enter adds them
            team = ", ".join(self.people[:6])
            return f"{name} is new here: enter again to add them, or pick one of {team}"

        def assign(owner: str | None) -> None:
            if owner is not None:
                name = self.match(owner) or owner.strip()
                self.know(name)
                self.write("assign", lead, name)

        owner = display.clean(lead.owner)
        taken = bool(owner) and owner != self.actor
        prompt = _prompts().TextPrompt(
            f"Owner of {display.buyer(lead)}" + (f" (now {owner})" if taken else ""),
            value=self.actor,
            hint=(
                f"{owner} owns it: enter takes it over for you; type a name (→ completes), "
                "or clear it"
                if taken
                else "enter claims it for you; type a teammate's name (→ completes), or clear "
                "to unassign"
            ),
            check=check,
            suggestions=self.people,
        )
        self.app.push_screen(prompt, assign)

    def copy_field(self, lead: Lead, field: str) -> None:
        value = display.clean(getattr(lead, field))
        if not value:
            self.app.notify(
                f"No {field} for {display.buyer(lead)}", severity="warning", markup=False
            )
            return
        self.app.copy_to_clipboard(value)
        self.app.notify(f"Copied {value}", markup=False)

    def copy_whatsapp(self, lead: Lead) -> None:
        url = display.whatsapp_url(lead.phone)
        if url is None:
            self.app.notify(f"No phone for {display.buyer(lead)}", severity="warning", markup=False)
            return
        self.app.copy_to_clipboard(url)
        # The URL is built from digits only, so it is safe inside markup.
        self.app.notify(f"Copied [link='{url}']{url}[/link]", title="WhatsApp")

    def ask_follow_up(self, lead: Lead) -> None:
        prompts = _prompts()
        today = datetime.fromtimestamp(self.clock()).date()

        def check(text: str) -> str | None:
            try:
                day = prompts.parse_follow_up(text, today)
            except ValueError as exc:
                return str(exc)
            if day is not None and day < today and text.strip() != (lead.follow_up or ""):
                return f"{day:%d %b %Y} has passed: use today or a later date"
            return None

        def done(text: str | None) -> None:
            if text is not None:
                self.write("follow-up", lead, prompts.parse_follow_up(text, today))

        self.app.push_screen(
            prompts.TextPrompt(
                f"Follow up {display.buyer(lead)} on",
                value=lead.follow_up or "",
                placeholder=prompts.follow_up_example(today),
                hint="a date, today, tomorrow, +3 (days) or a weekday; empty clears it",
                check=check,
            ),
            done,
        )


ACTIONS: dict[TriageAction, Callable[[Triage, Lead], object]] = {
    "contacted": lambda t, lead: t.write("contacted", lead, None),
    "status": Triage.ask_status,
    "note": Triage.ask_note,
    "assign": Triage.ask_owner,
    "follow-up": Triage.ask_follow_up,
    "copy-phone": lambda t, lead: t.copy_field(lead, "phone"),
    "copy-email": lambda t, lead: t.copy_field(lead, "email"),
    "whatsapp": Triage.copy_whatsapp,
}
"""What each triage key does on the UI thread: act at once, or ask first and then write."""
