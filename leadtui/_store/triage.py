"""Triage actions: status, contact, notes, owner, follow-up, each with its audit-trail event."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from leadtui._store.database import Database
from leadtui._store.leads import UNREAD, Leads
from leadtui._store.outbox import Outbox, OutboxRoute, PendingEvent
from leadtui._store.records import (
    CONTACTED_STATUSES,
    STATUSES,
    Lead,
    StoreError,
    current_actor,
)
from leadtui._store.schema import follow_up_ts_of

CALL_OUTCOMES = ("connected", "no answer", "busy", "switched off", "wrong number", "call back")
"""What ``d`` asks after a call; each is a ``call`` event in the lead's history."""


class Triage:
    """What a salesperson does to a lead; every action is one transaction and one change."""

    def __init__(
        self,
        database: Database,
        leads: Leads,
        routes: Callable[[], Sequence[OutboxRoute]] = tuple,
    ) -> None:
        self._d = database
        self._leads = leads
        self._outbox = Outbox(database)
        # Who wants lead.updated / lead.status_changed ([[webhook]]): the store's routes.
        self._routes = routes

    def _change_lead(
        self,
        lead_id: int,
        actor: str,
        action: str,
        detail: str | None,
        updates: Callable[[Any], dict[str, Any] | None],
    ) -> Lead:
        """Apply ``updates(current row)`` with its event; None from ``updates`` means nothing
        would change: no event, no change value, the lead as it is."""

        def txn() -> Lead:
            lead = self._d.m.Lead
            current = lead.get_or_none(lead.id == lead_id)
            if current is None:
                raise StoreError(f"lead {lead_id} does not exist")
            now = time.time()
            values = updates(current)
            if values is None:
                found = self._leads.get_lead(lead_id)
                assert found is not None
                return found
            values.update(
                updated_ts=now, last_action=action, last_actor=actor[:64], last_action_ts=now
            )
            lead.update(**values).where(lead.id == lead_id).execute()
            self._d.event(lead_id, actor, action, detail)
            self._d.stamp_leads([lead_id])
            # Its outbox rows commit with the change, or neither does.
            self._outbox.enqueue_txn(
                self._events(lead_id, actor, action, detail, current.status, values=values),
                self._routes(),
                now,
            )
            found = self._leads.get_lead(lead_id)
            assert found is not None
            return found

        return self._d.retrying(txn)

    @staticmethod
    def _events(
        lead_id: int,
        actor: str,
        /,
        action: str,
        detail: str | None,
        before: str,
        *,
        values: dict[str, Any],
    ) -> list[PendingEvent]:
        """``lead.updated`` for every change, and ``lead.status_changed`` when its status
        moved (a receiver subscribes to either or both)."""
        said = {"action": action, "actor": actor, "detail": detail}
        events: list[PendingEvent] = [("lead.updated", lead_id, said)]
        after = values.get("status", before)
        if after != before:
            moved = {"previous_status": before, "status": after, "actor": actor}
            events.append(("lead.status_changed", lead_id, moved))
        return events

    def set_status(self, lead_id: int, status: str, actor: str | None = None) -> Lead:
        if status not in STATUSES:
            raise StoreError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        who = actor or current_actor()

        def updates(current: Any) -> dict[str, Any] | None:
            if current.status == status:
                return None
            values: dict[str, Any] = {"status": status}
            if status in CONTACTED_STATUSES and current.contacted_ts is None:
                values["contacted_ts"] = time.time()
                values["contacted_by"] = who[:64]
            elif status == "new":  # back to new: nobody has answered, the clock runs again
                values["contacted_ts"] = values["contacted_by"] = None
            return values

        action = "contacted" if status == "contacted" else "status"
        return self._change_lead(lead_id, who, action, status, updates)

    def mark_contacted(self, lead_id: int, actor: str | None = None) -> Lead:
        """Record a call or message to the buyer.

        A new lead becomes contacted; one further on (quoted, won, …) keeps its status, so a
        teammate's contact never undoes progress. The first contact's time and actor stay. A
        lead whose status is contacted already is left as it is: pressing ``c`` twice records
        nothing twice (the caller says who contacted it and when).
        """
        who = actor or current_actor()
        contact = self._contact(who)

        def updates(current: Any) -> dict[str, Any] | None:
            return None if current.status == "contacted" else contact(current)

        return self._change_lead(lead_id, who, "contacted", "contacted", updates)

    def add_note(self, lead_id: int, text: str, actor: str | None = None) -> Lead:
        note = text.strip()
        if not note:
            raise StoreError("a note cannot be empty")
        lead = self._d.m.Lead
        return self._set(lead_id, actor, "note", note[:4000], notes_count=lead.notes_count + 1)

    def assign(self, lead_id: int, owner: str | None, actor: str | None = None) -> Lead:
        clean = (owner or "").strip()[:64] or None
        return self._set(lead_id, actor, "assign", clean or "unassigned", owner=clean)

    def set_follow_up(
        self, lead_id: int, when: date | datetime | None, actor: str | None = None,
        *, action: str = "follow-up",
    ) -> Lead:  # fmt: skip
        """Set (or clear) the follow-up: a day alone rings at 10:00 that day, a datetime (naive:
        the configured zone) at its minute. ``action`` "snooze" says it was pushed on."""
        values = follow_up_values(when)
        shown = f"{when:%Y-%m-%d %H:%M}" if isinstance(when, datetime) else values["follow_up"]
        return self._set(lead_id, actor, action, shown or "cleared", **values)

    def notes(self, lead_id: int) -> list[str]:
        """The lead's notes, oldest first (for an export)."""
        event = self._d.m.Event
        rows = (
            event.select(event.detail)
            .where((event.lead_id == lead_id) & (event.action == "note"))
            .order_by(event.id)
        )
        return [r.detail or "" for r in rows]

    def record_sent(self, lead_id: int, channel: str, text: str, actor: str | None = None) -> Lead:
        """A message sent to the buyer (or opened for sending, as a WhatsApp link): a ``sent``
        event saying on which channel and what, and the first contact if there was none.

        A new lead becomes contacted; one further on keeps its status (as ``c`` does)."""
        who = actor or current_actor()
        body = " ".join(text.split())[:3800]
        contact = self._contact(who)
        return self._change_lead(
            lead_id,
            who,
            "sent",
            f"{channel[:150]}: {body}",
            lambda current: {**contact(current), **_done_follow_up(current)},
        )

    def record_autoreply(self, lead_id: int, channel: str, text: str) -> Lead:
        """An automatic acknowledgement sent: an ``autoreply`` event in the lead's history.
        Not a contact: the lead stays new until a person answers the buyer."""
        body = " ".join(text.split())[:3800]
        return self._change_lead(
            lead_id, "autoreply", "autoreply", f"{channel[:150]}: {body}", lambda _c: {}
        )

    def log_call(
        self,
        lead_id: int,
        outcome: str,
        actor: str | None = None,
        *,
        follow_up: date | datetime | None = None,
        detail: str = "",
    ) -> Lead:
        """A call to the buyer and its outcome, as one ``call`` event. ``connected`` is a
        contact (as ``c``); ``follow_up`` sets the next call (a reminder at that time); without
        one, a follow-up whose time has come is done (this call was it)."""
        if outcome not in CALL_OUTCOMES:
            raise StoreError(
                f"unknown call outcome {outcome!r}; use one of {', '.join(CALL_OUTCOMES)}"
            )
        who = actor or current_actor()
        contact = self._contact(who)

        def updates(current: Any) -> dict[str, Any]:
            values = contact(current) if outcome == "connected" else {}
            if follow_up is not None:
                return {**values, **follow_up_values(follow_up)}
            return {**values, **_done_follow_up(current)}

        shown = f"{outcome} · {detail}" if detail else outcome
        return self._change_lead(lead_id, who, "call", shown[:400], updates)

    @staticmethod
    def _contact(who: str) -> Callable[[Any], dict[str, Any]]:
        """The changes a contact makes: new → contacted, and the first contact's time and actor."""

        def updates(current: Any) -> dict[str, Any]:
            values: dict[str, Any] = {}
            if current.status == "new":
                values["status"] = "contacted"
            status = values.get("status", current.status)
            if current.contacted_ts is None and status in CONTACTED_STATUSES:
                values["contacted_ts"] = time.time()
                values["contacted_by"] = who[:64]
            return values

        return updates

    def mark_read(self, lead_id: int) -> bool:
        """Someone opened the lead: the buyer's messages on it are read, for the whole team.

        One change value, so every viewer drops the marker; no history line and no "last
        action", because reading changes nothing about the lead (and "buyer replied" stays the
        last thing that happened). False, with nothing written, when nothing was unread.
        """

        def txn() -> bool:
            lead = self._d.m.Lead
            done = lead.update(unread=0).where((lead.id == lead_id) & UNREAD).execute()
            if done:
                self._d.stamp_leads([lead_id])
            return bool(done)

        return self._d.retrying(txn)

    def owners(self, limit: int = 200) -> list[str]:
        """Everyone who owns a lead now (served by the owner index), for the owner prompt."""
        lead = self._d.m.Lead
        rows = (
            lead.select(lead.owner)
            .where(lead.owner.is_null(False))
            .distinct()
            .order_by(lead.owner)
            .limit(limit)
        )
        return [r.owner for r in rows]

    def undo(self, before: Lead, after_seq: int, what: str, actor: str | None = None) -> Lead:
        """Put back the triage state ``before`` had, if nobody changed the lead since our change
        (its change value is still ``after_seq``); the history says what was undone."""

        def updates(current: Any) -> dict[str, Any]:
            if current.seq != after_seq:
                raise StoreError("the lead changed since, so it was not undone")
            return {
                "status": before.status,
                "contacted_ts": before.contacted_ts,
                "contacted_by": before.contacted_by,
                "owner": before.owner,
                "follow_up": before.follow_up,
                "follow_up_ts": before.follow_up_ts,
                "notes_count": before.notes_count,
            }

        return self._change_lead(before.id, actor or current_actor(), "undo", what, updates)

    def _set(
        self, lead_id: int, actor: str | None, action: str, detail: str, **values: Any
    ) -> Lead:
        """An action that sets fields to values known beforehand (none: nothing to do)."""

        def updates(current: Any) -> dict[str, Any] | None:
            if action != "note" and all(getattr(current, k) == v for k, v in values.items()):
                return None
            return dict(values)

        return self._change_lead(lead_id, actor or current_actor(), action, detail, updates)


def follow_up_values(when: date | datetime | None) -> dict[str, Any]:
    """The lead's ``follow_up`` (its day, readable) and ``follow_up_ts`` (when it rings)."""
    if when is None:
        return {"follow_up": None, "follow_up_ts": None}
    if isinstance(when, datetime):
        return {"follow_up": when.date().isoformat(), "follow_up_ts": when.timestamp()}
    return {"follow_up": when.isoformat(), "follow_up_ts": follow_up_ts_of(when)}


def _done_follow_up(current: Any) -> dict[str, Any]:
    """A call or a message sent once the follow-up's time has come is that follow-up: it no
    longer counts as overdue (a later one, set by the call itself, stays)."""
    due = current.follow_up_ts
    if due is not None and due <= time.time():
        return {"follow_up": None, "follow_up_ts": None}
    return {}
