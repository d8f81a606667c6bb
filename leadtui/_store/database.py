"""One open database: its backend and models, and the write primitives every part shares.

Change feed. Every write that changes what a viewer shows takes a value from one counter row
(``UPDATE counter SET value = value + 1 RETURNING value``) as its last statement before commit.
The row lock on the counter is held until commit, so on PostgreSQL a transaction that took
value 10 has committed before any transaction can take 11: values commit in order and a viewer
that has seen 11 can never be missing 10. On SQLite writers are serialised anyway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

import peewee

from leadtui._store.backends import (
    READONLY_HINT,
    Backend,
    describe_url,
    search_values,
)
from leadtui._store.models import Models
from leadtui._store.records import StoreError
from leadtui._store.search import messages_text

pw: Any = peewee  # untyped, as in models.py

_T = TypeVar("_T")

INSERT_EVENT_SQL = "INSERT INTO event (lead_id, ts, actor, action, detail) VALUES (?, ?, ?, ?, ?)"


class Database:
    """The backend, the models bound to it, SQL helpers, write retries and the change counter.

    Thread-safe: Peewee keeps one connection per thread.
    """

    WRITE_RETRIES: ClassVar[int] = 8

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.db = backend.db
        self.url = backend.url
        self.m = Models(self.db)
        # Hand-written SQL with ``?`` placeholders. The capture path runs a dozen statements
        # per lead; building each with Peewee's query builder cost more than the database
        # work, so that path uses fixed SQL strings.
        self.sql = backend.sql
        self.sql_many = backend.sql_many

    def row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.sql(sql, params).fetchone()
        return None if row is None else tuple(row)

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    def retrying(self, fn: Callable[[], _T], *, idempotent: bool = False) -> _T:
        """Run a write transaction, retrying when another process holds the lock or the
        connection was lost (PostgreSQL restarted, failed over, or a pooler dropped it).

        A transaction whose connection was lost before COMMIT was sent did not commit: the
        server rolls it back, so it is run again on a new connection. One lost *during* COMMIT
        may or may not have committed; it is run again only when ``idempotent`` (running it
        twice leaves what running it once does: raw items dedupe by body and key, the lease
        and health are set to a value); otherwise the caller gets a :class:`StoreError` saying
        so, never a silent double.
        """
        delay = 0.05
        for attempt in range(self.WRITE_RETRIES):
            body_done = False
            try:
                with self.write():
                    result = fn()
                    body_done = True  # from here only COMMIT is left
                return result
            except StoreError:
                raise
            except Exception as exc:
                lost = self.backend.lost(exc)
                text = str(exc).lower()
                busy = isinstance(exc, pw.OperationalError) and ("locked" in text or "busy" in text)
                if not (lost or busy or isinstance(exc, pw.OperationalError)):
                    raise  # a bug or a constraint: retrying would do the same
                if lost:
                    self.backend.reset()
                where = describe_url(self.url)
                if lost and body_done and not idempotent:
                    raise StoreError(
                        f"lost the connection to {where} while committing, so this change may "
                        "or may not be saved; look, and do it again if it is missing"
                    ) from exc
                if not (lost or busy) or attempt == self.WRITE_RETRIES - 1:
                    if lost:
                        raise StoreError(
                            f"lost the connection to {where} ({self.backend.error(exc)}); "
                            "check that the database server is up, then try again"
                        ) from exc
                    hint = READONLY_HINT if "readonly" in text else ""
                    raise StoreError(
                        f"the database {where} refused a write: {self.backend.error(exc)}{hint}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    READ_DELAYS: ClassVar[tuple[float, ...]] = (0.0, 0.1, 0.3)

    def reading(self, fn: Callable[[], _T]) -> _T:
        """Run a read, on a new connection when this thread's was lost.

        A read is always safe to run again. When the database cannot be reached after a few
        tries the caller gets a :class:`StoreError` (an HTTP 503, a line in the TUI), never the
        driver's exception.
        """
        if self.db.in_transaction():
            return fn()  # inside a write: its transaction decides
        for delay in (*self.READ_DELAYS, None):
            try:
                return fn()
            except StoreError:
                raise
            except Exception as exc:
                if not self.backend.lost(exc):
                    raise
                self.backend.reset()
                if delay is None:
                    raise StoreError(
                        f"lost the connection to {describe_url(self.url)} "
                        f"({self.backend.error(exc)}); check that the database server is up, "
                        "then try again"
                    ) from exc
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def next_seq(self) -> int:
        """Take the next change-sequence value. Call it last in a write transaction."""
        cursor = self.db.execute_sql(
            "UPDATE counter SET value = value + 1 WHERE name = 'change' RETURNING value"
        )
        value = int(cursor.fetchone()[0])
        self.backend.notify(value)
        return value

    def stamp_leads(self, lead_ids: Iterable[int]) -> int:
        """Mark leads changed under the next change value (last in a write transaction)."""
        ids = sorted(set(lead_ids))
        seq = self.next_seq()
        if ids:
            marks = ",".join("?" * len(ids))
            self.sql(f"UPDATE lead SET seq = ? WHERE id IN ({marks})", [seq, *ids])
        return seq

    def event(self, lead_id: int, actor: str, action: str, detail: str | None = None) -> None:
        """Add a line to a lead's audit trail."""
        self.sql(INSERT_EVENT_SQL, (lead_id, time.time(), actor[:64], action, detail))

    # ------------------------------------------------------------------ search text

    def add_said(
        self, lead_id: int, texts: Sequence[str], pending: dict[int, str] | None = None
    ) -> None:
        """Make a buyer's later messages find their lead in a search (``pending``: a capture
        batch's held-back search rows)."""
        if not texts or (values := search_values(self.m.Lead, lead_id)) is None:
            return
        said = messages_text(values["messages_text"], texts)
        self.m.Lead.update(messages_text=said).where(self.m.Lead.id == lead_id).execute()
        self.backend.index_search(lead_id, {**values, "messages_text": said}, pending)
