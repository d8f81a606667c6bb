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
    first_line,
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

    def retrying(self, fn: Callable[[], _T]) -> _T:
        """Run a write transaction, retrying when another process holds the lock."""
        delay = 0.05
        for attempt in range(self.WRITE_RETRIES):
            try:
                with self.write():
                    return fn()
            except pw.OperationalError as exc:
                text = str(exc).lower()
                transient = "locked" in text or "busy" in text
                reconnect = self.backend.lost_connection(text)
                if not (transient or reconnect) or attempt == self.WRITE_RETRIES - 1:
                    hint = READONLY_HINT if "readonly" in text else ""
                    raise StoreError(
                        f"the database {describe_url(self.url)} refused a write: "
                        f"{first_line(exc)}{hint}"
                    ) from exc
                if reconnect:
                    with contextlib.suppress(Exception):
                        self.db.close()
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except pw.InterfaceError as exc:
                with contextlib.suppress(Exception):
                    self.db.close()
                if attempt == self.WRITE_RETRIES - 1:
                    raise StoreError(
                        f"lost the connection to {describe_url(self.url)}: {exc}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
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
