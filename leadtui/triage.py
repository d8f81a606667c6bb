"""What the triage keys do: ask what an action needs on the UI thread, then write it.

A screen posts :class:`~leadtui.screens.messages.TriageRequested`; the app hands it to
:meth:`Triage.run`, which looks the action up in :data:`ACTIONS`. An action either acts at once
(copy the phone), or asks first (a prompt) and then calls ``write``, which runs the matching
:data:`WRITES` entry in a thread worker: the UI thread never touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from textual.app import App

from leadtui import templates
from leadtui.screens.messages import TriageAction
from leadtui.store import STATUSES, Lead, Store
from leadtui.widgets import display

if TYPE_CHECKING:
    from leadtui.config import Settings

StoreAction = Literal["contacted", "status", "note", "assign", "follow-up", "sent", "call"]


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


@dataclass(frozen=True, slots=True)
class Snooze:
    """A follow-up pushed on (``z``): the history says snoozed."""

    until: datetime


def _set_follow_up(store: Store, lead_id: int, value: Any, actor: str) -> Written:
    if isinstance(value, Snooze):
        lead = store.set_follow_up(lead_id, value.until, actor, action="snooze")
        return lead, f"{display.buyer(lead)} snoozed to {display.follow_up(lead)}"
    when: date | datetime | None = value
    lead = store.set_follow_up(lead_id, when, actor)
    if when is None:
        return lead, "Follow-up cleared"
    return lead, f"Follow up {display.buyer(lead)}: {display.follow_up(lead)}"


@dataclass(frozen=True, slots=True)
class Sent:
    """A message that went to the buyer (or opened pre-filled): the channel line and the text."""

    channel: str  # "whatsapp · default", "email to x@y · price"
    text: str


def _record_sent(store: Store, lead_id: int, value: Any, actor: str) -> Written:
    sent: Sent = value
    lead = store.record_sent(lead_id, sent.channel, sent.text, actor)
    return lead, f"Sent to {display.buyer(lead)}: {sent.channel}"


@dataclass(frozen=True, slots=True)
class Call:
    """How a call went, and the next call it sets (a day for the lead, the time in history)."""

    outcome: str  # one of store.CALL_OUTCOMES
    next_call: datetime | None = None
    spam: bool = False  # wrong number, and the salesperson said spam


def _log_call(store: Store, lead_id: int, value: Any, actor: str) -> Written:
    call: Call = value
    detail = f"next call {call.next_call:%Y-%m-%d %H:%M}" if call.next_call else ""
    lead = store.log_call(lead_id, call.outcome, actor, follow_up=call.next_call, detail=detail)
    if call.spam:
        lead = store.set_status(lead_id, "spam", actor)
    text = f"Call to {display.buyer(lead)}: {call.outcome}"
    if call.next_call:
        text += f", next call {call.next_call:%a %d %b %H:%M}"
    elif call.spam:
        text += ", marked spam"
    return lead, text


WRITES: dict[StoreAction, Callable[[Store, int, Any, str], Written]] = {
    "contacted": _mark_contacted,
    "status": _set_status,
    "note": _add_note,
    "assign": _assign,
    "follow-up": _set_follow_up,
    "sent": _record_sent,
    "call": _log_call,
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
    return f"{buyer}: follow-up already {display.follow_up(lead) or 'none'}"


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
    if isinstance(value, Sent):
        return f"sent {value.channel}"
    if isinstance(value, Call):
        return f"call {value.outcome}"
    if isinstance(value, Snooze):
        return f"snooze to {value.until:%d %b %H:%M}"
    if action in {"contacted", "note"}:
        return "contacted" if action == "contacted" else "the note"
    if isinstance(value, datetime):
        return f"{action} {value:%Y-%m-%d %H:%M}"
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
        settings: Callable[[], Settings],
        send_email: Callable[[Lead, str, str, str], object],
    ) -> None:
        self.app = app
        self.actor = actor
        self.clock = clock
        self.write = write
        self.settings = settings  # as the config file says now
        self.send_email = send_email  # (lead, template name, subject, text), in a worker
        self.unsent: dict[int, tuple[str, str, str]] = {}  # lead id → an email that failed
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
        now = datetime.fromtimestamp(self.clock())
        today = now.date()
        shown = display.follow_up(lead) if lead.follow_up else ""
        current = lead.follow_up or ""
        if lead.follow_up_ts is not None:
            current = f"{datetime.fromtimestamp(lead.follow_up_ts):%d/%m/%Y %H:%M}"

        def check(text: str) -> str | None:
            if text.strip() == current:
                return None
            try:
                when = prompts.parse_follow_up_at(text, now)
            except ValueError as exc:
                return str(exc)
            if isinstance(when, datetime) and when < now:
                return f"{when:%d %b %H:%M} has passed: use a later time"
            if isinstance(when, date) and not isinstance(when, datetime) and when < today:
                return f"{when:%d %b %Y} has passed: use today or a later date"
            return None

        def done(text: str | None) -> None:
            if text is not None and text.strip() != current:
                self.write("follow-up", lead, prompts.parse_follow_up_at(text, now))

        self.app.push_screen(
            prompts.TextPrompt(
                f"Follow up {display.buyer(lead)}" + (f" (now {shown})" if shown else ""),
                value=current,
                placeholder=prompts.follow_up_example(today),
                hint="a day and a time (tomorrow 11:00, fri 4pm, 15/12 10:30), +2h, +3 (days); "
                "a day alone rings at 10:00; empty clears it",
                check=check,
            ),
            done,
        )

    def ask_snooze(self, lead: Lead) -> None:
        """``z``: push the follow-up on by an hour, or to tomorrow 10:00: two keys."""
        now = datetime.fromtimestamp(self.clock()).replace(second=0, microsecond=0)
        choices = {
            "+1 h": now + timedelta(hours=1),
            "tomorrow 10:00": datetime.combine(now.date() + timedelta(days=1), dtime(10, 0)),
        }

        def chosen(choice: str | None) -> None:
            if choice in choices:
                self.write("follow-up", lead, Snooze(choices[choice]))

        self.app.push_screen(
            _prompts().ChoicePrompt(
                f"Snooze {display.buyer(lead)}",
                list(choices),
                letters={"+1 h": "h", "tomorrow 10:00": "t"},
                hint="h: an hour from now · t: tomorrow 10:00 · escape: leave it",
            ),
            chosen,
        )

    # -------------------------------------------------------------- reply (R)

    def rendered(self, lead: Lead, template: templates.Template) -> tuple[str, str]:
        """(subject, text) of ``template`` for ``lead`` and this seller."""
        fields = templates.values(
            {name: getattr(lead, name, None) for name in templates.LEAD_PLACEHOLDERS},
            self.settings().seller,
        )
        return (
            templates.render(template.subject, fields),
            templates.render(template.text, fields),
        )

    def ask_reply(self, lead: Lead) -> None:
        settings = self.settings()
        phone = phone_digits(lead.phone)
        email = settings.smtp_configured and bool(lead.email or lead.raw_id)
        reply_prompt = _reply()
        choices: list[Any] = []
        unsent = self.unsent.get(lead.id)
        if unsent is not None and email:
            name, subject, text = unsent
            choices.append(
                reply_prompt.ReplyChoice(
                    f"unsent:{name}",
                    f"Email · {name} (not sent yet: again)",
                    f"{subject}\n\n{text}",
                )
            )
        for channel in ("whatsapp", "email"):
            if (channel == "whatsapp" and not phone) or (channel == "email" and not email):
                continue
            for template in settings.templates.values():
                subject, text = self.rendered(lead, template)
                label = f"{'WhatsApp' if channel == 'whatsapp' else 'Email'} · {template.name}"
                preview = text if channel == "whatsapp" else f"{subject}\n\n{text}"
                choices.append(
                    reply_prompt.ReplyChoice(f"{channel}:{template.name}", label, preview)
                )
        if not choices:
            self.app.notify(
                f"No phone for {display.buyer(lead)}, and email replies are not set up ([smtp])",
                severity="warning",
                markup=False,
            )
            return

        def chosen(choice: str | None) -> None:
            if not choice:
                return
            channel, _, name = choice.partition(":")
            if channel == "unsent" and unsent is not None:
                self.send_email(lead, *unsent)
                return
            template = settings.templates[name]
            subject, text = self.rendered(lead, template)
            if channel == "whatsapp":
                self.open_whatsapp(lead, name, text)
            else:
                self.send_email(lead, name, subject, text)

        self.app.push_screen(
            reply_prompt.ReplyPrompt(f"Reply to {display.buyer(lead)}", choices), chosen
        )

    def open_whatsapp(self, lead: Lead, template: str, text: str) -> None:
        """The wa.me link with the message pre-filled: a hyperlink, and on the clipboard."""
        url = whatsapp_message_url(lead.phone, text)
        if url is None:
            return
        self.app.copy_to_clipboard(url)
        # Every character of the URL outside [0-9A-Za-z_.~-] is %-encoded: safe in markup.
        shown = url if len(url) <= 60 else url[:57] + "…"
        self.app.notify(f"Copied [link='{url}']{shown}[/link]", title="WhatsApp message", timeout=8)
        self.write("sent", lead, Sent(f"whatsapp · {template}", text))

    # -------------------------------------------------------------- call (d)

    def ask_call(self, lead: Lead) -> None:
        number = tel_number(lead.phone)
        if number is None:
            self.app.notify(f"No phone for {display.buyer(lead)}", severity="warning", markup=False)
            return
        if display.do_not_call(lead, lead.phone):
            self.ask_dnc(lead, number)
        else:
            self.dial(lead, number)

    def ask_dnc(self, lead: Lead, number: str) -> None:
        """A number on India's do-not-call registry: say so, and dial only when told to."""

        def answered(choice: str | None) -> None:
            if choice == "call anyway":
                self.dial(lead, number)
            else:
                self.app.notify(f"Not called: {number} is do-not-call", markup=False)

        self.app.push_screen(
            _prompts().ChoicePrompt(
                f"{number} is on India's do-not-call registry (JustDial marks it DNC). "
                f"Call {display.buyer(lead)} anyway?",
                ["call anyway", "don't call"],
                letters={"call anyway": "c", "don't call": "n"},
                hint="c: call anyway (the buyer asked you to) · n or escape: don't call",
            ),
            answered,
        )

    def dial(self, lead: Lead, number: str) -> None:
        """Copy the number to dial and ask how the call went."""
        self.app.copy_to_clipboard(number)
        # A tel: URL of digits and a plus: safe inside markup.
        self.app.notify(f"Copied [link='tel:{number}']tel:{number}[/link]", title="Call")
        prompts = _prompts()
        outcomes = {
            "connected": "c",
            "no answer": "n",
            "busy": "b",
            "switched off": "o",
            "wrong number": "w",
            "call back at…": "l",
        }

        def answered(outcome: str | None) -> None:
            if outcome is None:
                return
            now = datetime.fromtimestamp(self.clock())
            if outcome in {"no answer", "busy", "switched off"}:
                later = now + timedelta(hours=self.settings().call_retry_hours)
                self.write("call", lead, Call(outcome, later.replace(second=0, microsecond=0)))
            elif outcome == "wrong number":
                self.ask_spam(lead)
            elif outcome == "call back at…":
                self.ask_call_back(lead)
            else:
                self.write("call", lead, Call(outcome))

        self.app.push_screen(
            prompts.ChoicePrompt(
                f"Calling {display.buyer(lead)} on {number}: how did it go?",
                list(outcomes),
                letters=outcomes,
                hint="one key: the underlined letter · escape: not called",
            ),
            answered,
        )

    def ask_spam(self, lead: Lead) -> None:
        def answered(choice: str | None) -> None:
            self.write("call", lead, Call("wrong number", spam=choice == "spam"))

        self.app.push_screen(
            _prompts().ChoicePrompt(
                f"Wrong number for {display.buyer(lead)}: mark the lead spam?",
                ["spam", "keep it"],
                letters={"spam": "s", "keep it": "n"},
                hint="s: spam · n or escape: keep it (the call is logged either way)",
            ),
            answered,
        )

    def ask_call_back(self, lead: Lead) -> None:
        prompts = _prompts()

        def now() -> datetime:
            return datetime.fromtimestamp(self.clock())

        def check(text: str) -> str | None:
            try:
                when = prompts.parse_when(text, now())
            except ValueError as exc:
                return str(exc)
            return f"{when:%d %b %H:%M} has passed: use a later time" if when < now() else None

        def done(text: str | None) -> None:
            if text is not None:
                when = prompts.parse_when(text, now())
                self.write("call", lead, Call("call back", when))

        self.app.push_screen(
            prompts.TextPrompt(
                f"Call {display.buyer(lead)} back at",
                placeholder="tomorrow 11:00, +2h, fri 4pm, 15/12 10:30",
                hint="a day and a time, or +2h; enter saves it as the next call",
                check=check,
            ),
            done,
        )


def _reply() -> Any:
    from leadtui.screens import reply  # noqa: PLC0415 - loaded on first use

    return reply


def phone_digits(phone: str | None) -> str | None:
    """The digits to dial, with India's 91 before a bare 10-digit mobile number."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]
    if len(digits) == 10:
        digits = "91" + digits
    return digits if len(digits) >= 8 else None


def tel_number(phone: str | None) -> str | None:
    digits = phone_digits(phone)
    return f"+{digits}" if digits else None


def whatsapp_message_url(phone: str | None, text: str) -> str | None:
    """``https://wa.me/<digits>?text=<encoded>``: WhatsApp opens with the message typed."""
    digits = phone_digits(phone)
    if digits is None:
        return None
    return f"https://wa.me/{digits}?text={quote(text, safe='')}"


ACTIONS: dict[TriageAction, Callable[[Triage, Lead], object]] = {
    "contacted": lambda t, lead: t.write("contacted", lead, None),
    "status": Triage.ask_status,
    "note": Triage.ask_note,
    "assign": Triage.ask_owner,
    "follow-up": Triage.ask_follow_up,
    "copy-phone": lambda t, lead: t.copy_field(lead, "phone"),
    "copy-email": lambda t, lead: t.copy_field(lead, "email"),
    "whatsapp": Triage.copy_whatsapp,
    "reply": Triage.ask_reply,
    "call": Triage.ask_call,
    "snooze": Triage.ask_snooze,
}
"""What each triage key does on the UI thread: act at once, or ask first and then write."""
