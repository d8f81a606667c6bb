"""Reading leads: pages, counts, a buyer's history, a lead's events, messages and raw items.

Rows become :class:`Lead` records here, and nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import peewee

from leadtui._store.database import Database
from leadtui._store.records import Event, Lead, LeadQuery, Reply, iso

pw: Any = peewee  # untyped, as in models.py

LEAD_ATTRS = tuple(Lead.__dataclass_fields__)
UNREAD = pw.SQL("unread > 0")
"""Leads with a buyer's message nobody has read: the condition of the partial index
``lead_unread`` (schema.UNREAD_INDEX), as SQL text so both databases see it is that one."""


class Leads:
    """Queries over the lead table and what hangs off a lead."""

    def __init__(self, database: Database) -> None:
        self._d = database

    def columns(self) -> list[Any]:
        lead = self._d.m.Lead
        return [getattr(lead, f) for f in LEAD_ATTRS]

    def to_lead(self, row: Sequence[Any]) -> Lead:
        data = dict(zip(LEAD_ATTRS, row, strict=True))
        data["specs"] = json.loads(data["specs"] or "{}")
        data["verified"] = json.loads(data["verified"] or "[]")
        data["missed_by_email"] = bool(data["missed_by_email"])
        return Lead(**data)

    def get_lead(self, lead_id: int) -> Lead | None:
        lead = self._d.m.Lead
        row = lead.select(*self.columns()).where(lead.id == lead_id).tuples().first()
        return None if row is None else self.to_lead(row)

    def get_leads(self, ids: Iterable[int]) -> list[Lead]:
        ids = list(ids)
        if not ids:
            return []
        lead = self._d.m.Lead
        q = lead.select(*self.columns()).where(lead.id.in_(ids)).tuples()
        return [self.to_lead(r) for r in q]

    def filter(self, q: Any, query: LeadQuery) -> Any:
        lead = self._d.m.Lead
        if query.status == "open":
            q = q.where(lead.status.in_(("new", "contacted", "quoted")))
        elif query.status:
            q = q.where(lead.status == query.status)
        if query.owner:
            q = q.where(lead.owner == query.owner)
        if query.since_ts is not None:
            q = q.where(lead.received_ts >= query.since_ts)
        if query.follow_up_due:
            q = q.where(
                lead.follow_up.is_null(False) & (lead.follow_up <= date.today().isoformat())
            )
        if query.query_type:
            q = q.where(lead.query_type == query.query_type)
        if query.calls_to_return:
            q = q.where((lead.query_type == "P") & (lead.status == "new"))
        if query.unread:
            q = q.where(UNREAD)  # literally, so the partial index lead_unread serves it
        if query.search and query.search.strip():
            q = self._d.backend.search_filter(q, lead, query.search)
        return q

    def list_leads(self, query: LeadQuery | None = None) -> list[Lead]:
        """Leads newest first (by arrival in leadtui), filtered and paged by id."""
        query = query or LeadQuery()
        lead = self._d.m.Lead
        q = self.filter(lead.select(*self.columns()), query)
        if query.before_id is not None:
            q = q.where(lead.id < query.before_id)
        if query.after_id is not None:
            q = q.where(lead.id > query.after_id).order_by(lead.id.asc())
            rows = [self.to_lead(r) for r in q.limit(query.limit).tuples()]
            return rows[::-1]
        # Without the search: SQLite reads its search index itself, newest first.
        unsearched = self.filter(
            lead.select(*self.columns()), dataclasses.replace(query, search=None)
        )
        page = self._d.backend.first_page(q, lead, query, unsearched)
        return [self.to_lead(r) for r in page]

    def count_leads(self, query: LeadQuery | None = None) -> int:
        lead = self._d.m.Lead
        return int(self.filter(lead.select(), query or LeadQuery()).count())

    def count_missed_by_email(
        self, since_ts: float | None = None, source: str | None = None
    ) -> int:
        """Leads that reached leadtui only through the CRM pull (their email never came).

        ``since_ts`` counts only enquiries made since then (by ``received_ts``, which is indexed);
        ``source`` only one marketplace's (each pull's health line counts its own).
        """
        lead = self._d.m.Lead
        q = lead.select().where(lead.missed_by_email == True)  # noqa: E712 - SQL, not Python
        if since_ts is not None:
            q = q.where(lead.received_ts >= since_ts)
        if source is not None:
            q = q.where(lead.source == source)
        return int(q.count())

    def matching_ids(self, query: LeadQuery, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` match ``query`` (to decide whether changed leads belong in a view)."""
        lead = self._d.m.Lead
        ids = list(ids)
        if not ids:
            return set()
        q = self.filter(lead.select(lead.id), query).where(lead.id.in_(ids))
        return {int(r[0]) for r in q.tuples()}

    def buyer_history(self, lead: Lead, limit: int = 20) -> list[Lead]:
        """The buyer's other enquiries (same phone or email), newest first."""
        keys = [k for k in (lead.phone, lead.email) if k]
        if not keys:
            return []
        m = self._d.m.Lead
        q = (
            m.select(*self.columns())
            .where(
                (m.buyer_key.in_(keys) | m.phone.in_(keys) | m.email.in_(keys)) & (m.id != lead.id)
            )
            # id + 0: read the buyer's leads through their indexes and sort them, never walk
            # the whole table by id looking for them (PostgreSQL would, for a common key)
            .order_by((m.id + 0).desc())
            .limit(limit)
        )
        return [self.to_lead(r) for r in q.tuples()]

    def events(self, lead_id: int) -> list[Event]:
        ev = self._d.m.Event
        q = ev.select(ev.id, ev.lead_id, ev.ts, ev.actor, ev.action, ev.detail).where(
            ev.lead_id == lead_id
        )
        return [Event(*r) for r in q.order_by(ev.id).tuples()]

    def with_messages(self, leads: Sequence[Lead]) -> list[dict[str, Any]]:
        """:meth:`Lead.to_json` plus the buyer's later messages (replies, WhatsApp follow-ups),
        oldest first, for other tools: one query for a page of leads."""
        ids = [x.id for x in leads if x.messages_count]
        found: dict[int, list[dict[str, Any]]] = {}
        if ids:
            msg = self._d.m.LeadMessage
            q = msg.select(msg.lead_id, msg.ts, msg.text).where(msg.lead_id.in_(ids))
            for lead_id, ts, text in q.order_by(msg.id).tuples():
                found.setdefault(int(lead_id), []).append({"at": iso(ts), "text": text})
        return [{**x.to_json(), "messages": found.get(x.id, [])} for x in leads]

    def latest_messages(self, lead_ids: Iterable[int]) -> dict[int, Reply]:
        """The newest message of each lead (for the toast that says what the buyer wrote)."""
        ids = list(lead_ids)
        if not ids:
            return {}
        msg = self._d.m.LeadMessage
        newest = msg.select(pw.fn.MAX(msg.id)).where(msg.lead_id.in_(ids)).group_by(msg.lead_id)
        q = msg.select(msg.id, msg.lead_id, msg.ts, msg.text).where(msg.id.in_(newest))
        return {int(r[1]): Reply(*r) for r in q.tuples()}

    def messages(self, lead_id: int) -> list[Reply]:
        msg = self._d.m.LeadMessage
        q = msg.select(msg.id, msg.lead_id, msg.ts, msg.text).where(msg.lead_id == lead_id)
        return [Reply(*r) for r in q.order_by(msg.id).tuples()]

    def lead_raw_ids(self, lead_id: int) -> list[int]:
        links = self._d.m.LeadSource
        q = links.select(links.raw_id).where(links.lead_id == lead_id).order_by(links.raw_id)
        return [int(r[0]) for r in q.tuples()]
