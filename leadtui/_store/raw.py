"""Raw items: the original bytes of every email and request, kept before anything is parsed.

Committing the raw item first means a crash between receiving and parsing loses nothing: the
item stays "pending" and is applied again. A failed item waits in the review queue.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Sequence
from typing import Any

from leadtui._store.database import Database
from leadtui._store.records import Outcome, RawSpec, RawSummary, StoreError


def compress(body: bytes) -> bytes:
    return zlib.compress(body, 1)  # fast: emails still shrink about 4x


def decompress(body: bytes | memoryview) -> bytes:
    data = bytes(body)
    try:
        return zlib.decompress(data)
    except zlib.error:
        return data


class RawItems:
    """The raw-item table: adding items (deduplicated by content or key), reading them back."""

    def __init__(self, database: Database) -> None:
        self._d = database

    def add_raw_many(self, items: Sequence[RawSpec]) -> list[tuple[int, bool]]:
        """Commit several raw items in one transaction: ``(raw_id, is_new)`` for each, in order.

        Group commit for the HTTP ingest: one commit for a burst of requests instead of one
        each. Duplicates (by content or ``dedupe_key``) are recognised as in :meth:`add_raw`,
        also between items of the same batch.
        """
        now = time.time()

        def txn() -> list[tuple[int, bool]]:
            return [
                self.add_txn(
                    i.body,
                    source=i.source,
                    kind=i.kind,
                    channel=i.channel,
                    dedupe_key=i.dedupe_key,
                    received_ts=None,
                    now=now,
                )
                for i in items
            ]

        # Safe to run again after a commit whose answer was lost: items dedupe by body and key.
        return self._d.retrying(txn, idempotent=True) if items else []

    def add_txn(
        self,
        body: bytes,
        *,
        source: str,
        kind: str,
        channel: str | None,
        dedupe_key: str | None,
        received_ts: float | None,
        now: float,
    ) -> tuple[int, bool]:
        digest = hashlib.sha256(body).hexdigest()
        lookup: tuple[str, tuple[str, ...]]
        if dedupe_key is None:
            lookup = ("SELECT id FROM raw_item WHERE content_hash = ?", (digest,))
        else:
            lookup = (
                "SELECT id FROM raw_item WHERE content_hash = ? OR dedupe_key = ? LIMIT 1",
                (digest, dedupe_key),
            )
        # Insert first: a new item (the usual case) costs one statement. When the same body or
        # dedupe key is there already (from us or from another process), nothing is inserted
        # and that row is the answer.
        inserted = self._d.row(
            "INSERT INTO raw_item (source, kind, channel, content_hash, dedupe_key, body,"
            " size, received_ts, updated_ts, status, attempts, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0)"
            " ON CONFLICT DO NOTHING RETURNING id",
            (
                source[:200],
                kind,
                channel,
                digest,
                dedupe_key,
                compress(body),
                len(body),
                received_ts or now,
                now,
            ),
        )
        if inserted is not None:
            return int(inserted[0]), True
        found = self._d.row(*lookup)
        if found is None:
            raise StoreError(f"raw item {digest[:12]} vanished while it was being stored")
        return int(found[0]), False

    def raw_body(self, raw_id: int) -> bytes | None:
        raw = self._d.m.RawItem
        body = raw.select(raw.body).where(raw.id == raw_id).scalar()
        return None if body is None else decompress(body)

    def raw_info(self, raw_id: int) -> RawSummary | None:
        rows = self._raw_summaries(self._d.m.RawItem.id == raw_id, limit=1)
        return rows[0] if rows else None

    def raw_outcome(self, raw_id: int) -> Outcome:
        """The outcome of an item already processed (for a duplicate delivery)."""
        raw = self._d.m.RawItem
        status = raw.select(raw.status).where(raw.id == raw_id).scalar() or "pending"
        links = self._d.m.LeadSource
        ids = tuple(
            int(r[0]) for r in links.select(links.lead_id).where(links.raw_id == raw_id).tuples()
        )
        detail = f"already received (item {raw_id}, {status})"
        return Outcome(raw_id, "duplicate", ids, (), detail, earlier=status)

    def pending_raw_ids(self, older_than: float = 0.0) -> list[int]:
        """Raw items committed but never processed (a crash between the two commits)."""
        raw = self._d.m.RawItem
        cutoff = time.time() - older_than
        q = raw.select(raw.id).where((raw.status == "pending") & (raw.updated_ts <= cutoff))
        return [int(r[0]) for r in q.order_by(raw.id).tuples()]

    def raw_ids_after(self, source: str, after_id: int, limit: int) -> list[int]:
        """Raw items of ``source`` committed after ``after_id``, oldest first (a work queue)."""
        raw = self._d.m.RawItem
        q = raw.select(raw.id).where((raw.id > after_id) & (raw.source == source))
        return [int(r[0]) for r in q.order_by(raw.id).limit(limit).tuples()]

    def _raw_summaries(self, where: Any, limit: int = 200) -> list[RawSummary]:
        raw = self._d.m.RawItem
        q = (
            raw.select(
                raw.id,
                raw.source,
                raw.kind,
                raw.channel,
                raw.received_ts,
                raw.status,
                raw.error,
                raw.summary,
                raw.size,
                raw.attempts,
            )
            .where(where)
            .order_by(raw.id.desc())
            .limit(limit)
        )
        return [RawSummary(*row) for row in q.tuples()]

    def review_items(self, limit: int = 500) -> list[RawSummary]:
        """The review queue: raw items that failed to become leads, newest first."""
        return self._raw_summaries(self._d.m.RawItem.status == "failed", limit)

    def review_count(self) -> int:
        raw = self._d.m.RawItem
        return int(raw.select().where(raw.status == "failed").count())

    def failed_raw_ids(self) -> list[int]:
        raw = self._d.m.RawItem
        q = raw.select(raw.id).where(raw.status == "failed").order_by(raw.id)
        return [int(r[0]) for r in q.tuples()]
