"""What screens ask the app to do: small messages up, never a call into the app.

Screens get what they read (the store, the clock) in their constructor and post one of these
for anything that changes the data or the view; :class:`leadtui.app.LeadApp` acts on each
through one table of actions.
"""

from __future__ import annotations

from typing import Literal, get_args

from textual.message import Message

from leadtui.store import Lead

TriageAction = Literal[
    "contacted", "status", "note", "assign", "follow-up", "copy-phone", "copy-email", "whatsapp"
]
TRIAGE_ACTIONS: tuple[TriageAction, ...] = get_args(TriageAction)


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


class MainReady(Message):
    """The main screen is mounted: the first page can be loaded."""
