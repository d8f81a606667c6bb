"""What screens ask the app to do: small messages up, never a call into the app.

Screens get what they read (the store, the clock) in their constructor and post one of these
for anything that changes the data or the view; :class:`leadtui.app.LeadApp` acts on each
through one table of actions.
"""

from __future__ import annotations

from typing import Literal, Protocol, get_args, runtime_checkable

from textual.message import Message

from leadtui.store import Lead

TriageAction = Literal[
    "contacted",
    "status",
    "note",
    "assign",
    "follow-up",
    "copy-phone",
    "copy-email",
    "whatsapp",
    "reply",
    "call",
    "snooze",
]
TRIAGE_ACTIONS: tuple[TriageAction, ...] = get_args(TriageAction)
PROMPTED: frozenset[TriageAction] = frozenset(
    {"status", "note", "assign", "follow-up", "reply", "call", "snooze"}
)
"""The actions that open a prompt: the keys typed right after theirs belong to it."""


@runtime_checkable
class HoldsKeys(Protocol):
    """An app that can keep the keys arriving now for the prompt about to open.

    Over a slow link or from a paste, ``n o k Enter`` arrive in one read: without this the
    keys after ``n`` would run table keys (``3`` is a filter) before the prompt exists.
    """

    def hold_keys(self) -> None: ...


class TriageRequested(Message):
    """A triage key was pressed on ``lead``."""

    def __init__(self, action: TriageAction, lead: Lead) -> None:
        super().__init__()
        self.action: TriageAction = action
        self.lead = lead


class ViewRequested(Message):
    """Show another filter or search in the lead table (None: keep that part as it is)."""

    def __init__(self, *, filter_name: str | None = None, search: str | None = None) -> None:
        super().__init__()
        self.filter_name = filter_name
        self.search = search


class DetailRequested(Message):
    """Open the detail screen of ``lead``."""

    def __init__(self, lead: Lead) -> None:
        super().__init__()
        self.lead = lead


class ReadRequested(Message):
    """The lead ``lead_id`` is open with messages nobody had read: they are read now."""

    def __init__(self, lead_id: int) -> None:
        super().__init__()
        self.lead_id = lead_id


class MainReady(Message):
    """The main screen is mounted: the first page can be loaded."""


class PromptReady(Message):
    """A prompt is on screen with its input focused: the keys held for it can go there."""


class UndoRequested(Message):
    """Undo this salesperson's last triage change (``u``)."""
