"""What every screen that shows one lead under the cursor shares: the triage keys."""

from __future__ import annotations

from textual.binding import Binding, BindingType
from textual.screen import Screen

from leadtui.screens.messages import (
    PROMPTED,
    TRIAGE_ACTIONS,
    HoldsKeys,
    TriageRequested,
    UndoRequested,
)
from leadtui.store import Lead

# In the order of the footer, which a narrow terminal cuts: the calls to a buyer first.
TRIAGE_BINDINGS: list[BindingType] = [
    Binding("R", "triage('reply')", "Reply", id="reply", tooltip="Reply with a template: WhatsApp link or email, recorded in the history"),
    Binding("d", "triage('call')", "Call", id="call", tooltip="Call the buyer (tel: link, number copied), then log how it went"),
    Binding("c", "triage('contacted')", "Contacted", id="contacted", tooltip="Mark the lead contacted"),
    Binding("y", "triage('copy-phone')", "Copy phone", id="copy-phone", tooltip="Copy the buyer's phone number"),
    Binding("w", "triage('whatsapp')", "WhatsApp", id="whatsapp", tooltip="Copy a wa.me link to chat with the buyer"),
    Binding("Y", "triage('copy-email')", "Copy email", show=False, id="copy-email", tooltip="Copy the buyer's email address"),
    Binding("s", "triage('status')", "Status", id="status", tooltip="Set the status: new, contacted, quoted, won, lost, spam"),
    Binding("n", "triage('note')", "Note", id="note", tooltip="Add a note to the lead"),
    Binding("a", "triage('assign')", "Claim", id="assign", tooltip="Claim the lead, or assign it to a teammate"),
    Binding("f", "triage('follow-up')", "Follow-up", id="follow-up", tooltip="The follow-up day and time: it rings then"),
    Binding("z", "triage('snooze')", "Snooze", show=False, id="snooze", tooltip="Push the follow-up on: +1 h or tomorrow 10:00"),
    Binding("u", "undo", "Undo", show=False, id="undo", tooltip="Undo your last change to a lead (within 30 seconds)"),
]  # fmt: skip


class LeadScreen(Screen[None]):
    """A screen with a selected lead that the triage keys act on.

    Subclasses list ``TRIAGE_BINDINGS`` in their own ``BINDINGS``, where the footer order suits
    them (inherited bindings would always come first).
    """

    def selected(self) -> Lead | None:
        raise NotImplementedError

    def action_triage(self, what: str) -> None:
        if what not in TRIAGE_ACTIONS:  # a remapped key naming no action
            self.notify(f"No such action: {what}", severity="error", markup=False)
            return
        lead = self.selected()
        if lead is None:
            self.notify("No lead selected", severity="warning", markup=False)
            return
        if what in PROMPTED and isinstance(self.app, HoldsKeys):
            self.app.hold_keys()  # the keys typed after this one go to the prompt
        self.post_message(TriageRequested(what, lead))

    def action_undo(self) -> None:
        self.post_message(UndoRequested())

    def lead_changed(self, lead: Lead) -> None:
        """A lead changed in the database (any process); screens showing it refresh."""
