"""The capture write path: a raw item's parse results → leads, with the dedupe rules.

A result is another copy of a lead already stored when it has the same marketplace id (source
+ external id), the same Message-ID, or the same phone or email and product within 48 hours
(FORMATS.md 9); a copy fills in fields the lead lacks, and a website form sent again with
something new to say becomes a message on the lead. A reply is attached to the buyer's newest
lead by phone, email, or name and product; a WhatsApp message from a known phone continues
that buyer's newest lead.

:meth:`Applier.apply_many` applies a batch of raw items in one transaction. Inserts nothing in
the batch reads back (source links, audit events, SQLite search rows) are collected in a
:class:`Batch` passed along the write path and run together at its end, one driver call per
table.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadtui._store.backends import INSERT_FTS_SQL
from leadtui._store.database import INSERT_EVENT_SQL, Database
from leadtui._store.outbox import Outbox, OutboxRoute, PendingEvent
from leadtui._store.records import (
    CONTRACT_FIELDS,
    DEDUPE_WINDOW_SECONDS,
    MERGEABLE,
    SEARCH_FIELDS,
    Outcome,
    StoreError,
    iso,
)

# A reply's lead, by what the reply says of the buyer: each lookup in the shape of an index
# (schema.CAPTURE_INDEXES), so its cost does not grow with the table. "phone OR phone_alt"
# in one statement would scan the whole table on SQLite (the OR of two columns), so the two
# are separate lookups. ``max(id + 0)``, not ``max(id)``: PostgreSQL answers ``max(id)`` by
# walking the primary key down from the newest lead until one matches, which it prefers when
# it thinks a value common (an email on a few hundred leads), and which reads the whole
# table when the value is not there (half a second at a million leads). ``id + 0`` is no
# index's column, so the lookup reads only the leads with that value.
# tests/test_query_plans.py checks every capture statement's plan.
REPLY_LOOKUPS = {
    "phone": "SELECT max(id + 0) FROM lead WHERE phone = ?",
    "phone_alt": "SELECT max(id + 0) FROM lead WHERE phone_alt = ?",
    "email": "SELECT max(id + 0) FROM lead WHERE email = ?",
    "name": "SELECT max(id + 0) FROM lead WHERE lower(name) = ? AND product_key = ?",
}

# The marketplaces whose lead emails the parser reads: a lead pulled from one of these that no
# email brought is "missed by email"; ExportersIndia's mail is not read, so its leads are not.
MAIL_SOURCES = frozenset({"indiamart", "tradeindia"})

# What the capture path reads of an existing lead to merge a new copy into it.
EXISTING_COLS = ("id", *MERGEABLE, "channels", "missed_by_email", "buyer_key")
EXISTING_SQL = ", ".join(EXISTING_COLS)
INSERT_LEAD_COLS = (
    *CONTRACT_FIELDS,
    "received_ts",
    "status",
    "first_seen_ts",
    "updated_ts",
    "buyer_key",
    "product_key",
    "enquiry_no",
    "channels",
    "missed_by_email",
    "notes_count",
    "messages_count",
    "seq",
    "raw_id",
)
INSERT_LEAD_SQL = (
    f"INSERT INTO lead ({', '.join(INSERT_LEAD_COLS)}) VALUES ("
    + ", ".join(
        # "3rd enquiry from this buyer": counted in the insert, not by a statement of its own
        "(SELECT count(*) + 1 FROM lead WHERE buyer_key = ?)" if c == "enquiry_no" else "?"
        for c in INSERT_LEAD_COLS
    )
    + ") ON CONFLICT DO NOTHING RETURNING id"
)
INSERT_LINK_SQL = (
    "INSERT INTO lead_source (lead_id, raw_id, channel, ts) VALUES (?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)


@dataclass
class Batch:
    """Inserts held back while :meth:`Applier.apply_many` applies a batch, run together at its
    end: a lead's source links, its events and its search row (SQLite), keyed by lead."""

    links: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    search: dict[int, str] = field(default_factory=dict)
    outbox: list[PendingEvent] = field(default_factory=list)

    def link(self, lead_id: int, raw_id: int, channel: str, now: float) -> None:
        """Record that a raw item delivered a lead (once)."""
        self.links.append((lead_id, raw_id, channel, now))

    def event(self, lead_id: int, actor: str, action: str, detail: str | None = None) -> None:
        """Add a line to a lead's audit trail."""
        self.events.append((lead_id, time.time(), actor[:64], action, detail))

    def emit(self, kind: str, lead_id: int, **extra: Any) -> None:
        """Something that may leave leadtui happened to a lead (the outbox decides for whom)."""
        self.outbox.append((kind, lead_id, extra))


class Applier:
    """Applies parse results to the database: upsert, merge, replies, chats."""

    def __init__(self, database: Database) -> None:
        self._d = database
        self._m = database.m
        self._backend = database.backend
        # Bound once: the capture path calls these for every lead.
        self._sql = database.sql
        self._sql_many = database.sql_many
        self._row = database.row
        self._index_search = database.backend.index_search
        self._outbox = Outbox(database)
        # Who wants which events (the [[notify]] targets); none: no outbox rows are written.
        self.routes: tuple[OutboxRoute, ...] = ()

    def apply_many(self, items: Sequence[tuple[int, Sequence[dict[str, Any]]]]) -> list[Outcome]:
        """:meth:`apply` for several raw items in one transaction (group commit), in order.

        All or nothing: when one item raises, nothing is applied and the caller can fall back
        to applying them one by one.
        """
        if not items:
            return []

        def txn() -> list[Outcome]:
            ids = sorted({raw_id for raw_id, _res in items})
            marks = ",".join("?" * len(ids))
            found = {r[0] for r in self._sql(f"SELECT id FROM raw_item WHERE id IN ({marks})", ids)}
            if missing := [i for i in ids if i not in found]:
                raise StoreError(f"raw item {missing[0]} does not exist")
            batch = Batch()
            done = [self._apply_txn(raw_id, res, batch) for raw_id, res in items]
            self._flush(batch)
            # One change value for the whole batch: it commits as one, so a viewer sees all
            # of it or none, and the counter and its lock are taken once.
            # The outbox rows of this batch's new leads and messages commit with them.
            self._outbox.enqueue_txn(batch.outbox, self.routes, time.time())
            seq = self._d.stamp_leads(lead for _outcome, changed, _raw in done for lead in changed)
            self._sql_many(
                "UPDATE raw_item SET status = ?, error = ?, summary = ?, message_id = ?,"
                " attempts = attempts + 1, updated_ts = ?, seq = ? WHERE id = ?",
                [(*raw[:-1], seq, raw[-1]) for _outcome, _changed, raw in done],
            )
            return [outcome for outcome, _changed, _raw in done]

        return self._d.retrying(txn)

    def _apply_txn(
        self, raw_id: int, results: Sequence[dict[str, Any]], batch: Batch
    ) -> tuple[Outcome, list[int], tuple[Any, ...]]:
        """Apply one item's results; returns its outcome, the leads it changed, and the
        values of its raw item's row (without the change value, which the batch adds)."""
        now = time.time()
        lead_ids: list[int] = []
        new_ids: list[int] = []
        changed: list[int] = []
        errors: list[str] = []
        ignored: list[str] = []
        replies = 0
        message_id = next((r.get("message_id") for r in results if r.get("message_id")), None)
        for result in results:
            kind = result.get("kind")
            if (
                kind == "lead"
                and (chat := self._continue_chat(result, raw_id, now, batch)) is not None
            ):
                lead_ids.append(chat)
                if chat not in changed:
                    changed.append(chat)
                replies += 1
            elif kind == "lead":
                lead_id, created, change = self._upsert_lead(result, raw_id, now, batch)
                lead_ids.append(lead_id)
                if created:
                    new_ids.append(lead_id)
                if change:
                    changed.append(lead_id)
                if change == "appended":  # the buyer wrote again: answered as a reply is
                    replies += 1
            elif kind == "reply":
                target = self._attach_reply(result, raw_id, now, batch)
                if target is None:
                    errors.append(
                        f"reply from {result.get('name') or 'an unknown buyer'} about "
                        f"{result.get('product') or 'an unknown product'} matches no lead"
                    )
                else:
                    lead_ids.append(target)
                    if target not in changed:
                        changed.append(target)
                    replies += 1
            elif kind == "ignored":
                ignored.append(str(result.get("reason") or "not a lead"))
            else:
                errors.append(str(result.get("error") or "could not be understood"))

        if errors:
            status, outcome_status, detail = "failed", "failed", "; ".join(errors)
        elif lead_ids:
            status = "parsed"
            if new_ids:
                outcome_status = "new"
            elif replies:
                outcome_status = "reply"
            elif changed:
                outcome_status = "updated"
            else:
                outcome_status = "duplicate"
            detail = ""
        elif ignored:
            status, outcome_status, detail = "ignored", "ignored", "; ".join(ignored)
        else:  # e.g. a pull response with no leads (CODE 204)
            status, outcome_status, detail = "parsed", "ignored", "no leads in this item"
        summary = "; ".join(summary_of(r) for r in results[:3]) if results else detail
        raw_row = (
            status,
            detail if status in {"failed", "ignored"} else None,
            summary[:500] or None,
            message_id,
            now,
            raw_id,
        )
        outcome = Outcome(raw_id, outcome_status, tuple(lead_ids), tuple(new_ids), detail)
        return outcome, changed, raw_row

    def _find_existing(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """The lead this result is another copy of, by the dedupe keys of FORMATS.md 9."""
        select = f"SELECT {EXISTING_SQL} FROM lead WHERE "
        found: tuple[Any, ...] | None = None
        if values.get("external_id"):
            found = self._row(
                select + "source = ? AND external_id = ? LIMIT 1",
                (values["source"], values["external_id"]),
            )
        if found is None and values.get("message_id"):
            found = self._row(select + "message_id = ? LIMIT 1", (values["message_id"],))
        product_key = product_key_of(values.get("product"))
        if found is None and product_key:
            ts = parse_received(values.get("received_at"))
            window = (ts - DEDUPE_WINDOW_SECONDS, ts + DEDUPE_WINDOW_SECONDS)
            phone, email = values.get("phone"), values.get("email")  # never a masked phone
            # Same source only: the same buyer's JustDial and IndiaMART enquiries are two
            # leads of one buyer (enquiry_no links them), never one merged lead.
            rows = (
                self._sql(
                    select + "(phone = ? OR email = ?) AND product_key = ? AND source = ?"
                    " AND received_ts BETWEEN ? AND ? ORDER BY id",
                    (phone, email, product_key, values["source"], *window),
                ).fetchall()
                if phone or email
                else []
            )
            for column, value in (("phone", phone), ("email", email)):
                index = EXISTING_COLS.index(column)
                candidate = next((r for r in rows if value and r[index] == value), None)
                if candidate is None:
                    continue
                other_id = candidate[EXISTING_COLS.index("external_id")]
                if values.get("external_id") and other_id and other_id != values["external_id"]:
                    continue  # two different marketplace enquiries: not the same lead
                found = candidate
                break
        return None if found is None else dict(zip(EXISTING_COLS, found, strict=True))

    def _upsert_lead(
        self, result: dict[str, Any], raw_id: int, now: float, batch: Batch
    ) -> tuple[int, bool, str | None]:
        """Store a lead or merge it into the one it copies: ``(lead_id, created, change)``,
        where change says what a copy did to its lead: "merged" (new fields), "appended" (a
        new message) or None (nothing new)."""
        values = {f: result.get(f) for f in CONTRACT_FIELDS}
        values["source"] = values["source"] or "other"
        values["channel"] = values["channel"] or "api"
        channel = str(values["channel"])
        existing = self._find_existing(values)
        lead = self._m.Lead
        if existing is not None:
            updates: dict[str, Any] = {}
            for name in MERGEABLE:
                new = values.get(name)
                if new in (None, "", [], {}):
                    continue
                current = existing[name]
                if name == "specs":
                    merged = {**new, **json.loads(current or "{}")}
                    if merged != json.loads(current or "{}"):
                        updates[name] = json.dumps(merged, ensure_ascii=False)
                elif name == "verified":
                    have = json.loads(current or "[]")
                    merged_list = [v for v in ("phone", "email", "gst") if v in have or v in new]
                    if merged_list != have:
                        updates[name] = json.dumps(merged_list)
                elif current in (None, ""):
                    updates[name] = new
            lead_id = int(existing["id"])
            channels = str(existing["channels"]).split()
            if channel not in channels:
                updates["channels"] = " ".join([*channels, channel])
                if channel == "email" and existing["missed_by_email"]:
                    updates["missed_by_email"] = False
            batch.link(lead_id, raw_id, channel, now)
            # The buyer filled the website form again (within the dedupe window) with something
            # new to say: that is a message on the lead, not lost in a duplicate.
            said = values.get("message")
            appended = (
                channel == "api"
                and bool(said and existing["message"] and said != existing["message"])
                and self._append_message(lead_id, raw_id, str(said), values, now, batch=batch)
            )
            if updates:
                if "phone" in updates or "email" in updates:
                    updates["buyer_key"] = (
                        existing["buyer_key"] or updates.get("phone") or updates.get("email")
                    )
                if "product" in updates:
                    updates["product_key"] = product_key_of(updates["product"])
                updates["updated_ts"] = now
                lead.update(**updates).where(lead.id == lead_id).execute()
                batch.event(lead_id, "capture", "merged", _merge_detail(updates, channel))
                batch.emit("lead.updated", lead_id, action="merged", actor="capture")
                if any(k in SEARCH_FIELDS for k in updates):
                    self._backend.reindex(lead, lead_id, batch.search)
                return lead_id, False, "appended" if appended else "merged"
            return lead_id, False, "appended" if appended else None

        buyer_key = values.get("phone") or values.get("email")
        row = dict(values)
        row["specs"] = json.dumps(values.get("specs") or {}, ensure_ascii=False)
        row["verified"] = json.dumps(values.get("verified") or [])
        row.update(
            received_at=values.get("received_at") or iso(now),
            received_ts=parse_received(values.get("received_at")),
            status="new",
            first_seen_ts=now,
            updated_ts=now,
            buyer_key=buyer_key,
            product_key=product_key_of(values.get("product")),
            enquiry_no=buyer_key,  # the SQL counts this buyer's earlier leads
            channels=channel,
            # Only where leadtui reads the marketplace's mail can a pulled lead be one email missed.
            missed_by_email=channel == "pull" and values["source"] in MAIL_SOURCES,
            notes_count=0,
            messages_count=0,
            seq=0,
            raw_id=raw_id,
        )
        inserted = self._row(INSERT_LEAD_SQL, [row.get(c) for c in INSERT_LEAD_COLS])
        if inserted is None:  # another process inserted this lead (same id or Message-ID) first
            existing = self._find_existing(values)
            if existing is None:
                raise StoreError("a lead vanished while its duplicate was being stored")
            batch.link(int(existing["id"]), raw_id, channel, now)
            return int(existing["id"]), False, None
        lead_id = int(inserted[0])
        batch.link(lead_id, raw_id, channel, now)
        self._index_search(lead_id, values, batch.search, new=True)
        batch.event(lead_id, "capture", "created", f"via {channel}")
        batch.emit("lead.created", lead_id)
        return lead_id, True, "created"

    def _append_message(
        self,
        lead_id: int,
        raw_id: int,
        text: str,
        values: dict[str, Any],
        now: float,
        *,
        batch: Batch,
    ) -> bool:
        """Add a later message from the buyer to a lead (once per raw item)."""
        msg = self._m.LeadMessage
        seen = (msg.raw_id == raw_id) | (msg.text == text[:4000])
        if msg.select().where((msg.lead_id == lead_id) & seen).exists():
            return False  # applied before (a reparse), or the buyer said it already
        ts = parse_received(values.get("received_at"))
        msg.insert(lead_id=lead_id, raw_id=raw_id, ts=ts, text=text[:4000]).execute()
        self._d.add_said(lead_id, [text[:4000]], batch.search)
        lead = self._m.Lead
        lead.update(
            messages_count=lead.messages_count + 1,
            unread=lead.unread + 1,  # news until someone opens the lead (Store.mark_read)
            updated_ts=now,
            last_action="reply",
            last_actor=str(values.get("name") or "buyer")[:64],
            last_action_ts=now,
        ).where(lead.id == lead_id).execute()
        batch.event(lead_id, str(values.get("name") or "buyer"), "reply", text[:80])
        batch.emit("lead.replied", lead_id, messages=[text[:4000]])
        return True

    def _attach_reply(
        self, result: dict[str, Any], raw_id: int, now: float, batch: Batch
    ) -> int | None:
        lead = self._m.Lead
        target = self._reply_target(result)
        if target is None:
            return None
        msg = self._m.LeadMessage
        if msg.select().where((msg.raw_id == raw_id) & (msg.lead_id == target)).exists():
            return int(target)
        messages = [str(m) for m in result.get("messages") or [] if m]
        ts = parse_received(result.get("received_at"))
        for text in messages:
            msg.insert(lead_id=target, raw_id=raw_id, ts=ts, text=text).execute()
        self._d.add_said(int(target), messages, batch.search)
        lead.update(
            messages_count=lead.messages_count + len(messages),
            unread=lead.unread + len(messages),
            updated_ts=now,
            last_action="reply",
            last_actor=str(result.get("name") or "buyer")[:64],
            last_action_ts=now,
        ).where(lead.id == target).execute()
        self._m.LeadSource.insert(
            lead_id=target, raw_id=raw_id, channel=result.get("channel") or "email", ts=now
        ).on_conflict_ignore().execute()
        preview = messages[0][:80] if messages else ""
        batch.event(int(target), result.get("name") or "buyer", "reply", preview)
        batch.emit("lead.replied", int(target), messages=messages)
        return int(target)

    def _reply_target(self, result: dict[str, Any]) -> int | None:
        """The buyer's newest lead a reply belongs to: by phone (the lead's or its other
        phone), else by email, else by name and product; each lookup one index search."""
        phone, email = result.get("phone"), result.get("email")
        name, product = result.get("name"), result.get("product")
        found: list[int] = []
        if phone:
            found = self._newest(("phone", (phone,)), ("phone_alt", (phone,)))
        if not found and email:
            found = self._newest(("email", (email,)))
        if not found and name and product:
            found = self._newest(("name", (str(name).lower(), product_key_of(str(product)))))
        return max(found) if found else None

    def _newest(self, *lookups: tuple[str, tuple[Any, ...]]) -> list[int]:
        """The newest lead each of :data:`REPLY_LOOKUPS` finds (none for no match)."""
        ids = []
        for key, params in lookups:
            row = self._row(REPLY_LOOKUPS[key], params)
            if row is not None and row[0] is not None:
                ids.append(int(row[0]))
        return ids

    def _continue_chat(
        self, result: dict[str, Any], raw_id: int, now: float, batch: Batch
    ) -> int | None:
        """A WhatsApp message from a phone we know continues that buyer's newest lead.

        The message is appended to the lead (as a reply is) instead of making a new lead; a
        phone with no lead yet returns None, and the message becomes a lead of its own.
        """
        if result.get("source") != "whatsapp" or not result.get("phone"):
            return None
        links = self._m.LeadSource
        done = links.select(links.lead_id).where(links.raw_id == raw_id).scalar()
        if done is not None:  # applied before (a reparse): the message is there already
            return int(done)
        message = result.get("message")
        reply = {
            "kind": "reply",
            "source": "whatsapp",
            "channel": result.get("channel") or "api",
            "name": result.get("name"),
            "company": None,
            "product": None,
            "phone": result["phone"],
            "email": None,
            "messages": [message] if message else [],
            "received_at": result.get("received_at"),
            "message_id": None,
        }
        return self._attach_reply(reply, raw_id, now, batch)

    def _flush(self, batch: Batch) -> None:
        """Run a batch's held-back inserts, one driver call per table."""
        if batch.links:
            self._sql_many(INSERT_LINK_SQL, batch.links)
        if batch.events:
            self._sql_many(INSERT_EVENT_SQL, batch.events)
        if batch.search:
            self._sql_many(INSERT_FTS_SQL, list(batch.search.items()))


def parse_received(text: str | None) -> float:
    if text:
        try:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.astimezone()
            return parsed.timestamp()
        except ValueError:
            pass
    return time.time()


def product_key_of(product: str | None) -> str | None:
    if not product:
        return None
    return re.sub(r"\s+", " ", product).strip().casefold() or None


def _merge_detail(updates: dict[str, Any], channel: str) -> str:
    fields = sorted(k for k in updates if k in CONTRACT_FIELDS)
    return f"via {channel}: added " + ", ".join(fields) if fields else f"seen via {channel}"


def summary_of(result: dict[str, Any]) -> str:
    kind = result.get("kind")
    if kind == "lead":
        who = result.get("name") or result.get("company") or result.get("phone") or "unknown"
        return f"{who} — {result.get('product') or 'no product'}"
    if kind == "reply":
        return f"reply from {result.get('name') or 'unknown'} — {result.get('product') or ''}"
    if kind == "ignored":
        return str(result.get("reason") or "ignored")
    return str(result.get("error") or "error")
