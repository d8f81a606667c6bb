"""``R``: pick a channel and template for the reply, seeing the text this buyer will get."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from leadtui.screens.messages import PromptReady
from leadtui.screens.prompts import move


@dataclass(frozen=True, slots=True)
class ReplyChoice:
    """One line of the picker: a channel with a template, rendered for the lead."""

    id: str  # "whatsapp:default", "email:price"
    label: str  # "WhatsApp · default"
    preview: str  # the text as the buyer reads it (email: subject, blank line, text)


class ReplyPrompt(ModalScreen[str | None]):
    """The reply picker: arrows or j/k move, the preview follows, enter sends or opens."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="cancel", tooltip="Close without sending"),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
    ]

    DEFAULT_CSS = """
    ReplyPrompt { align: center middle; }
    ReplyPrompt .prompt { width: 76; }
    ReplyPrompt #preview {
        height: auto;
        max-height: 12;
        margin-top: 1;
        padding: 0 1;
        border-left: wide $accent;
    }
    """

    def __init__(self, title: str, choices: list[ReplyChoice], hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices
        self.hint = hint
        self.preview = choices[0].preview if choices else ""  # the text shown now

    def compose(self) -> ComposeResult:
        with Vertical(classes="prompt"):
            yield Label(Text(self.title_text), classes="prompt-title")
            yield OptionList(*[Option(Text(c.label), id=c.id) for c in self.choices])
            yield Static(Text(self.preview), id="preview")
            yield Label(
                Text(self.hint or "enter sends · ↑↓ another template · escape closes"),
                classes="prompt-hint",
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        self.set_focus(options)
        self.post_message(PromptReady())

    def action_move(self, step: int) -> None:
        move(self.query_one(OptionList), step)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        chosen = next((c for c in self.choices if c.id == event.option.id), None)
        if chosen is not None:
            self.preview = chosen.preview
            self.query_one("#preview", Static).update(Text(chosen.preview))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)
