"""The change feed: what changed after a cursor, for viewers that follow the database.

Every write that changes what a viewer shows takes a value from the change counter last in its
transaction (``database.py``); values commit in order, so a viewer asks for everything after
the last value it has seen, and waits for the next commit with a waiter (``waiters.py``).
"""

from __future__ import annotations

from typing import Any

import peewee

from leadtui._store.database import Database
from leadtui._store.leads import Leads
from leadtui._store.records import ChangeSet

pw: Any = peewee  # untyped, as in models.py


class Feed:
    """Cursor and catch-up query of the change feed."""

    def __init__(self, database: Database, leads: Leads) -> None:
        self._d = database
        self._leads = leads

    def cursor(self) -> int:
        """The latest change-sequence value: start a change feed from here."""
        counter = self._d.m.Counter
        value = counter.select(counter.value).where(counter.name == "change").scalar()
        return int(value or 0)

    def changes_since(self, cursor: int, limit: int = 1000) -> ChangeSet:
        """Everything that changed after ``cursor``: leads (current state), review, health."""
        # Each statement sees its own snapshot. The review and health tops are read before the
        # leads: a change committed in between then shows up in the leads query, while read
        # after it would move the cursor past a lead this call never returned. (Values commit
        # in order, so everything up to a top read first is visible to the leads query.)
        raw = self._d.m.RawItem
        raw_top = raw.select(pw.fn.MAX(raw.seq)).where(raw.seq > cursor).scalar()
        health = self._d.m.SourceHealth
        health_top = health.select(pw.fn.MAX(health.seq)).where(health.seq > cursor).scalar()
        lead = self._d.m.Lead
        q = (
            lead.select(*self._leads.columns())
            .where(lead.seq > cursor)
            .order_by(lead.seq, lead.id)
            .limit(limit + 1)
        )
        leads = [self._leads.to_lead(r) for r in q.tuples()]
        more = len(leads) > limit
        if more:
            # A batch commits its leads under one change value, and the next page starts
            # after the cursor: a page must end at a whole value, or the rest of it is lost.
            after = leads.pop()
            last = leads[-1].seq
            if after.seq == last and leads[0].seq == last:  # one value fills the page: all of it
                rest = (
                    lead.select(*self._leads.columns())
                    .where((lead.seq == last) & (lead.id > leads[-1].id))
                    .order_by(lead.id)
                )
                leads += [self._leads.to_lead(r) for r in rest.tuples()]
            elif after.seq == last:  # the page would end inside a value: end before it
                leads = [x for x in leads if x.seq != last]
        top = max((x.seq for x in leads), default=cursor)
        if not more:
            top = max(top, int(raw_top or 0), int(health_top or 0))
        return ChangeSet(top, leads, raw_top is not None, health_top is not None, more)
