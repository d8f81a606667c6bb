"""The group-commit writer: one thread commits what the request handlers queue, in batches.

Handlers queue raw items, the writer commits a batch of them in one transaction and applies
their leads in one more, and each request's answer waits for the commit its answer promises.
The event loop never touches the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from leadtui.capture import Pipeline, RawItem, parse_item
from leadtui.store import StoreError

log = logging.getLogger("leadtui.ingest")  # one logger for the HTTP source, as before the split

MAX_BATCH = 256  # raw items per group commit

_Settled = tuple["asyncio.Future[Any]", Any, BaseException | None]


class NotApplied(Exception):
    """The raw item was committed (it is safe), but its lead could not be made yet."""

    def __init__(self, raw_id: int, cause: Exception) -> None:
        super().__init__(_cause(cause))
        self.raw_id = raw_id
        self.cause = cause


def _cause(exc: Exception) -> str:
    """An error's first line for a log or an answer, without a traceback."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{text[:300]}" if isinstance(exc, StoreError) else type(exc).__name__


@dataclass(slots=True)
class _Job:
    item: RawItem
    future: asyncio.Future[Any]
    early: bool  # answered once the raw item is committed (webhooks), else once applied
    results: list[dict[str, Any]] | None = None  # what the item means, decided by the handler


class Writer:
    """One thread that commits what the handlers queue, in batches (group commit).

    A batch costs two transactions however many requests it holds: the raw items, then their
    leads. Each request's future is resolved after the commit its answer promises: the raw
    commit for webhooks (``early``), the lead commit for ``POST /api/leads``.
    """

    def __init__(
        self, pipeline: Pipeline, loop: asyncio.AbstractEventLoop, max_batch: int = MAX_BATCH
    ) -> None:
        self._pipeline = pipeline
        self._loop = loop
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("ingest: the writer is still committing; it finishes in the background")

    def submit(
        self, item: RawItem, *, early: bool, results: list[dict[str, Any]] | None = None
    ) -> asyncio.Future[Any]:
        """Queue an item; ``results`` stands in for parsing it (a lead the route refused)."""
        future: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put(_Job(item, future, early, results))
        return future

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            last = False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    last = True
                    break
                batch.append(more)
            self._commit(batch)
            if last:
                return

    def _commit(self, batch: list[_Job]) -> None:
        stored: list[tuple[int, bool]] = []

        def committed(added: list[tuple[int, bool]]) -> None:
            stored.extend(added)
            self._settle(
                [(j.future, a, None) for j, a in zip(batch, added, strict=True) if j.early]
            )

        parsed = (
            [
                j.results
                if j.results is not None
                else parse_item(j.item.body, j.item.kind, j.item.channel)
                for j in batch
            ]
            if any(j.results is not None for j in batch)
            else None
        )
        try:
            outcomes = self._pipeline.accept_many([j.item for j in batch], committed, parsed)
        except Exception as exc:
            self._failed(batch, stored, exc)
            return
        self._settle(
            [(j.future, o, None) for j, o in zip(batch, outcomes, strict=True) if not j.early]
        )

    def _failed(self, batch: list[_Job], stored: list[tuple[int, bool]], exc: Exception) -> None:
        """Answer each request of a failed batch with what really happened to its item."""
        if not stored and len(batch) > 1 and not isinstance(exc, StoreError):
            # One item the database would not take (a bug, a value it cannot hold) must not
            # fail the requests that happened to share its commit: commit them one by one.
            log.warning(
                "ingest: a batch of %d items failed (%s); committing them one by one",
                len(batch),
                type(exc).__name__,
            )
            for job in batch:
                self._commit([job])
            return
        if stored:
            # The raw items are durable (webhooks were answered); making the leads failed.
            log.warning(
                "ingest: %d items were stored, but making their leads failed: %s; the "
                "requests that wait for their lead are told so (a retry finishes them)",
                len(batch),
                _cause(exc),
            )
            self._settle(
                [
                    (j.future, None, NotApplied(raw_id, exc))
                    for j, (raw_id, _new) in zip(batch, stored, strict=True)
                    if not j.early
                ]
            )
            return
        if isinstance(exc, StoreError):
            log.warning("ingest: storing %d items failed: %s", len(batch), exc)
        else:
            log.exception("ingest: storing an item failed")
        self._settle([(j.future, None, exc) for j in batch])

    def _settle(self, entries: list[_Settled]) -> None:
        if not entries:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            self._loop.call_soon_threadsafe(_resolve, entries)


def _resolve(entries: list[_Settled]) -> None:
    for future, value, exc in entries:
        if future.done():  # the request gave up waiting
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)
