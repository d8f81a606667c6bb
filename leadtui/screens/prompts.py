"""Small modal prompts: pick a status, type a note, an owner or a follow-up date."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from leadtui.screens.messages import PromptReady

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_follow_up(text: str, today: date) -> date | None:
    """``2026-03-05``, ``05-03``, ``today``, ``tomorrow``, ``+3`` (days), ``mon`` … ``sun``.

    Empty text clears the follow-up (None). Raises ValueError with a hint otherwise.
    """
    value = text.strip().lower()
    if not value or value in {"none", "clear", "-"}:
        return None
    if value in {"today", "tod"}:
        return today
    if value in {"tomorrow", "tom", "tmrw"}:
        return today + timedelta(days=1)
    match = re.fullmatch(r"\+?(\d{1,3})\s*(d|days?|w|weeks?)?", value)
    if match and (value.startswith("+") or match.group(2)):
        n = int(match.group(1))
        return today + timedelta(days=n * (7 if (match.group(2) or "d").startswith("w") else 1))
    if value[:3] in _WEEKDAYS and len(value) >= 3:
        ahead = (_WEEKDAYS.index(value[:3]) - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    match = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})(?:[-/.](\d{2,4}))?", value)
    try:
        if match:
            day, month = int(match.group(1)), int(match.group(2))
            year = int(match.group(3)) if match.group(3) else today.year
            year += 2000 if year < 100 else 0
            found = date(year, month, day)
            if not match.group(3) and found < today:
                found = date(year + 1, month, day)
            return found
        return date.fromisoformat(value)
    except ValueError:
        pass
    soon = today + timedelta(days=3)
    raise ValueError(
        f"use a date like {soon.isoformat()} or {soon:%d-%m}, today, tomorrow, +3 or mon"
    )


_TIME = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?")


def parse_when(text: str, now: datetime) -> datetime:
    """A day and a time: ``tomorrow 11:00``, ``+2h``, ``+30m``, ``fri 4pm``, ``15/12 10:30``,
    ``4pm`` (today, or tomorrow once it has passed). A day alone means 10:00 that day.

    ``now`` is naive local time (the configured zone). Raises ValueError with a hint.
    """
    value = " ".join(text.strip().lower().split())
    match = re.fullmatch(r"\+\s*(\d{1,3})\s*(m|min|mins|h|hr|hrs|hours?)", value)
    if match:
        n = int(match.group(1))
        step = timedelta(minutes=n) if match.group(2).startswith("m") else timedelta(hours=n)
        return (now + step).replace(second=0, microsecond=0)
    day_text, _, time_text = value.rpartition(" ")
    at = _clock(time_text)
    if at is None:  # no time at the end: the whole text is a day
        day_text, at = value, None
    try:
        day = parse_follow_up(day_text, now.date()) if day_text else None
    except ValueError:
        day = None
        if day_text or at is None:
            raise ValueError(
                "use a time like tomorrow 11:00, +2h, fri 4pm, 15/12 10:30 or 4pm"
            ) from None
    if day is None and at is None:
        raise ValueError("use a time like tomorrow 11:00, +2h, fri 4pm, 15/12 10:30 or 4pm")
    when = datetime.combine(day or now.date(), at or time(10, 0))
    if day is None and when <= now:
        when += timedelta(days=1)
    return when


_HAS_TIME = re.compile(
    r"\d:\d\d|\d\s*(am|pm)$|^\+\s*\d+\s*(m|min|mins|h|hr|hrs|hours?)$|\s\d{1,2}[:.]\d\d$"
)


def parse_follow_up_at(text: str, now: datetime) -> date | datetime | None:
    """A follow-up: a day alone (:func:`parse_follow_up`, it rings at 10:00) or a day and a
    time (:func:`parse_when`: ``tomorrow 11:00``, ``+2h``, ``fri 4pm``, ``15/12 10:30``).

    ``now`` is naive local time (the configured zone). Empty clears (None); ValueError says how.
    """
    value = " ".join(text.strip().lower().split())
    if _HAS_TIME.search(value):
        return parse_when(value, now)
    return parse_follow_up(value, now.date())


def _clock(text: str) -> time | None:
    match = _TIME.fullmatch(text)
    if not match or (match.group(2) is None and match.group(3) is None):
        return None  # "15" alone is no time; "4pm" and "16:00" are
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if match.group(3):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match.group(3) == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def follow_up_example(today: date) -> str:
    """The prompt's placeholder: a date that is still ahead, and the words."""
    return f"{today + timedelta(days=3):%Y-%m-%d}, tomorrow, +3, mon"


def move(options: OptionList, step: int) -> None:
    """``j``/``k`` in a list of choices: the highlight one down or one up."""
    if step > 0:
        options.action_cursor_down()
    else:
        options.action_cursor_up()


class ChoicePrompt(ModalScreen[str | None]):
    """Pick one of a few values (a status): arrows or j/k and enter, or a value's first letter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="cancel", tooltip="Close without change"),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
    ]

    def __init__(
        self,
        title: str,
        choices: Sequence[str],
        current: str | None = None,
        *,
        letters: dict[str, str] | None = None,
        hint: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.choices = list(choices)
        self.current = current
        self.letters = letters  # each choice's key, where first letters would clash
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt"):
            yield Label(Text(self.title_text), classes="prompt-title")
            yield OptionList(*[self._option(c) for c in self.choices], id="choices")
            if self.hint:
                yield Label(Text(self.hint), classes="prompt-hint")

    def _option(self, choice: str) -> Option:
        label = Text()
        letter = self._letters().get(choice)
        if letter and choice[:1].lower() == letter:
            label.append(choice[:1], style="bold underline")
            label.append(choice[1:])
        elif letter:
            label.append(letter, style="bold underline")
            label.append(f" {choice}")
        else:
            label.append(choice)
        return Option(label, id=choice)

    def _letters(self) -> dict[str, str]:
        """Each choice's key: its first letter, where no earlier choice took it."""
        if self.letters is not None:
            return self.letters
        taken: dict[str, str] = {}
        for choice in self.choices:
            first = choice[:1].lower()
            if first and first not in taken.values() and first not in "jk":
                taken[choice] = first
        return taken

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.choices:
            options.highlighted = self.choices.index(self.current)
        self.set_focus(options)
        self.post_message(PromptReady())

    def action_move(self, step: int) -> None:
        move(self.query_one(OptionList), step)

    def on_key(self, event: events.Key) -> None:
        for choice, letter in self._letters().items():
            if event.character == letter:
                event.stop()
                self.dismiss(choice)
                return

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)


class TextPrompt(ModalScreen[str | None]):
    """One line of text (a note, an owner, a date). ``check`` returns an error or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="cancel", tooltip="Close without change")
    ]

    def __init__(
        self,
        title: str,
        *,
        value: str = "",
        placeholder: str = "",
        hint: str = "",
        check: Callable[[str], str | None] | None = None,
        on_cancel: Callable[[str], None] | None = None,
        suggestions: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.hint = hint
        self.check = check
        self.on_cancel = on_cancel  # told what was typed when escape closes the prompt
        self.suggestions = list(suggestions)  # completed as you type (→ accepts)

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#answer", Input))
        self.post_message(PromptReady())

    def action_cancel(self) -> None:
        if self.on_cancel is not None:
            self.on_cancel(self.query_one("#answer", Input).value)
        self.dismiss(None)

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt"):
            yield Label(Text(self.title_text), classes="prompt-title")
            suggester = (
                SuggestFromList(self.suggestions, case_sensitive=False)
                if self.suggestions
                else None
            )
            yield Input(
                value=self.value, placeholder=self.placeholder, suggester=suggester, id="answer"
            )
            yield Label(Text(self.hint), id="hint", classes="prompt-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.check(event.value) if self.check else None
        if problem:
            hint = self.query_one("#hint", Label)
            hint.update(Text(problem))
            hint.add_class("-error")
            return
        self.dismiss(event.value)


class QuitPrompt(ModalScreen[bool]):
    """Asked before quitting the one leadtui that captures: the team would stop getting leads."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,y", "dismiss(True)", "Quit", id="quit-anyway", tooltip="Quit: capture stops"),
        Binding("n,escape", "dismiss(False)", "Stay", id="stay", tooltip="Keep leadtui open"),
    ]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what  # "the mailbox and the HTTP ingest"

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt"):
            yield Label(Text("Quit and stop capturing?"), classes="prompt-title")
            yield Label(
                Text(
                    f"This leadtui captures {self.what} for everyone using this database. "
                    "After you quit, new leads wait until leadtui is opened again with these "
                    "settings, or `leadtui serve` runs (it captures with nobody logged in)."
                ),
                classes="prompt-hint",
            )
            yield Label(Text("q or y: quit   ·   n or escape: stay"), classes="prompt-hint")

    def on_mount(self) -> None:
        self.post_message(PromptReady())
