"""The triage keys' writes: each store change runs in a thread worker of the app.

The UI thread never touches the database: :class:`Writes` runs each change (a status, a note,
an email reply, an undo) in a worker and answers with a message the app shows as a toast.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.message import Message

from leadtui import imap, mailer
from leadtui.config import Settings
from leadtui.store import Lead, Store, StoreError
from leadtui.triage import UNDO_SECONDS, WRITES, StoreAction, Undoable, describe, unchanged
from leadtui.widgets import display


class TriageDone(Message):
    def __init__(self, text: str, undo: Undoable | None = None) -> None:
        super().__init__()
        self.text = text
        self.undo = undo  # what ``u`` puts back (None: nothing changed, or it was an undo)


class EmailDone(Message):
    """An email reply was sent (``problem`` is None) or not (one line saying why)."""

    def __init__(self, lead_id: int, draft: tuple[str, str, str], problem: str | None) -> None:
        super().__init__()
        self.lead_id = lead_id
        self.draft = draft  # (template, subject, text): kept for R when it failed
        self.problem = problem


class Writes:
    """One app's store changes, each in a thread worker; the last one can be undone."""

    @property
    def actor(self) -> str:
        return self._actor()

    def __init__(
        self,
        app: App[Any],
        store: Store,
        actor: Callable[[], str],
        settings: Callable[[], Settings],
    ) -> None:
        self.app = app
        self.store = store
        self._actor = actor  # asked at each write: the app's actor can be set after start
        self.settings = settings
        self.last: Undoable | None = None  # what ``u`` puts back

    def _worker(self, name: str, fn: Callable[[], None]) -> None:
        self.app.run_worker(fn, thread=True, exit_on_error=False, group="triage", name=name)

    def write(self, action: StoreAction, lead_id: int, value: Any) -> None:
        self._worker("triage", functools.partial(self._write, action, lead_id, value))

    def _write(self, action: StoreAction, lead_id: int, value: Any) -> None:
        store = self.store
        try:
            before = store.get_lead(lead_id)
            after, text = WRITES[action](store, lead_id, value, self.actor)
            if before is not None and after.seq == before.seq:
                self.app.post_message(TriageDone(unchanged(action, after)))
                return
            undo = None
            if before is not None:
                undo = Undoable(before, after.seq, describe(action, value), time.monotonic())
            self.app.post_message(TriageDone(text, undo))
        finally:
            store.close()

    def send_email(self, lead: Lead, draft: tuple[str, str, str]) -> None:
        self.app.notify(f"Sending the email to {display.buyer(lead)}…", markup=False, timeout=3)
        self._worker("email reply", functools.partial(self._send_email, lead, draft))

    def _send_email(self, lead: Lead, draft: tuple[str, str, str]) -> None:
        """Send one email reply, then record it; a failure records nothing and keeps it."""
        name, subject, text = draft
        store = self.store
        try:
            to = lead.email
            if not to and lead.raw_id is not None:
                to = mailer.original_reply_to(store.raw_body(lead.raw_id))
            if not to:
                problem = "the buyer's address is hidden and the original mail has no Reply-To"
                self.app.post_message(EmailDone(lead.id, draft, problem))
                return
            settings = self.settings()
            tokens = None
            if settings.smtp_uses_oauth:  # the mailbox's XOAUTH2 grant signs in to SMTP too
                tokens = imap.TokenSource.for_account(imap.ImapAccount.from_settings(settings))
            try:
                mailer.send(
                    settings,
                    mailer.Reply(to, subject, text, lead.message_id),
                    access_token=tokens.access_token if tokens else None,
                )
            except (mailer.MailError, imap.OAuthError) as exc:
                self.app.post_message(EmailDone(lead.id, draft, str(exc)))
                return
            store.record_sent(lead.id, f"email to {to} · {name}", f"{subject} — {text}", self.actor)
            self.app.post_message(EmailDone(lead.id, draft, None))
        finally:
            store.close()

    def mark_read(self, lead_id: int) -> None:
        """Opened: the buyer's messages on the lead are read (the feed brings the change to
        every viewer, this one included, so nothing is said here)."""
        self._worker("mark read", functools.partial(self._mark_read, lead_id))

    def _mark_read(self, lead_id: int) -> None:
        store = self.store
        try:
            store.mark_read(lead_id)
        finally:
            store.close()

    def undo(self) -> None:
        """``u``: put back the last change, if it is recent enough and nobody changed it since."""
        undo, self.last = self.last, None
        if undo is None or not undo.fresh(time.monotonic()):
            self.app.notify(
                f"Nothing to undo: u undoes your last change within {UNDO_SECONDS:.0f} seconds",
                markup=False,
            )
            return
        self._worker("undo", functools.partial(self._undo, undo))

    def _undo(self, undo: Undoable) -> None:
        store = self.store
        try:
            lead = store.undo(undo.before, undo.after_seq, undo.what, self.actor)
            self.app.post_message(TriageDone(f"Undone: {undo.what} on {display.buyer(lead)}"))
        except StoreError as exc:
            self.app.post_message(TriageDone(f"Not undone: {exc}"))
        finally:
            store.close()
