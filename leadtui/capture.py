"""The capture pipeline, and the service that runs the sources under the capture lease.

One raw item (the bytes of an email, the body of a request) goes through :meth:`Pipeline.accept`:

1. its bytes are committed as a raw item (an identical item is recognised and not stored twice);
2. the pure parser turns it into results (leads, a reply, ignored, or an error);
3. the results are upserted under their dedupe keys and linked to the raw item (commit two).

A crash between 1 and 3 leaves a *pending* raw item, which :meth:`Pipeline.recover` finishes at
the next start; a parse failure leaves a *failed* one in the review queue. Sources advance their
own watermark (IMAP UID, pull window) or answer 2xx only after ``accept`` returned.

:class:`CaptureService` runs the sources (mailbox watcher, HTTP ingest, CRM pull, demo feed) in
the one process that holds the capture lease, and writes each source's health where every viewer
can read it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

from leadtui import parser
from leadtui.store import Health, OutboxRoute, Outcome, Store, StoreError, current_actor

log = logging.getLogger(__name__)

LEASE_TTL = 15.0
LEASE_RENEW = 4.0
RECOVER_AFTER = 30.0  # a raw item pending this long was left by a process that died


RawKind = Literal["email", "json"]


@dataclass(frozen=True, slots=True)
class RawItem:
    """One item as a source received it."""

    body: bytes
    source: str  # "imap:user@host/INBOX", "http:website", "push", "pull", "import", "demo"
    kind: RawKind = "email"
    channel: str | None = None  # for JSON: push | pull | api (None: inferred by the parser)
    dedupe_key: str | None = None  # e.g. "idem:<api key name>:<Idempotency-Key>"


def parse_item(
    body: bytes, kind: RawKind | str, channel: str | None, own: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Run the pure parser over a raw item's bytes. Never raises. Mail from the seller's
    ``own`` addresses is ignored (``parser.own_mail``)."""
    if kind == "json":
        return parser.parse_json_bytes(body, channel=channel)
    return parser.parse(body, own=own)


class Pipeline:
    """Raw item in, lead(s) out, nothing lost and nothing doubled.

    ``own``: the seller's own addresses (``Settings.own_addresses``): their mail that reaches
    the watched folder is kept as a raw item and ignored, never a lead nor a buyer's reply.
    """

    def __init__(self, store: Store, own: Sequence[str] = ()) -> None:
        self.store = store
        self.own = tuple(own)

    def accept(self, item: RawItem) -> Outcome:
        raw_id, is_new = self.store.add_raw(
            item.body,
            source=item.source,
            kind=item.kind,
            channel=item.channel,
            dedupe_key=item.dedupe_key,
        )
        if not is_new:
            info = self.store.raw_info(raw_id)
            if info is not None and info.status != "pending":
                return self.store.raw_outcome(raw_id)
            # Committed earlier, never processed (the process died in between): finish it now.
        return self._process(raw_id, item.body, item.kind, item.channel)

    def accept_raw(self, raw_id: int) -> Outcome:
        """Process a raw item that is already committed (e.g. an HTTP push answered first)."""
        info = self.store.raw_info(raw_id)
        body = self.store.raw_body(raw_id)
        if info is None or body is None:
            raise StoreError(f"raw item {raw_id} does not exist")
        return self._process(raw_id, body, info.kind, info.channel)

    def accept_many(
        self,
        items: Sequence[RawItem],
        committed: Callable[[list[tuple[int, bool]]], None] | None = None,
        parsed: Sequence[list[dict[str, Any]]] | None = None,
    ) -> list[Outcome]:
        """:meth:`accept` for a burst of items with two commits in all (group commit).

        The raw items are committed in one transaction; then ``committed`` is told their
        ``(raw_id, is_new)`` (an HTTP webhook answers there); then their results are applied in
        one more. An item repeated in the batch (same body or dedupe key) is processed once, and
        the repeats get the "duplicate" outcome, as they would one after another.

        ``parsed`` may hold each item's parse results, computed elsewhere (``leadtui import``
        parses in a second process while this one writes); they are used only after the raw
        items are committed, so nothing is lost if parsing fails or the process dies.
        """
        added = self.store.add_raw_many(items)
        if committed is not None:
            committed(added)
        todo: dict[int, RawItem] = {}
        known: dict[int, list[dict[str, Any]]] = {}
        for index, (item, (raw_id, is_new)) in enumerate(zip(items, added, strict=True)):
            if raw_id in todo:
                continue
            if is_new:
                todo[raw_id] = item
            else:
                info = self.store.raw_info(raw_id)
                body = self.store.raw_body(raw_id)
                if info is None or info.status != "pending" or body is None:
                    continue
                todo[raw_id] = RawItem(body, info.source, cast("RawKind", info.kind), info.channel)
            if parsed is not None and todo[raw_id].body == item.body:
                known[raw_id] = parsed[index]
        batch = [
            (
                raw_id,
                known[raw_id]
                if raw_id in known
                else self._parse(raw_id, item.body, item.kind, item.channel, self.own),
            )
            for raw_id, item in todo.items()
        ]
        try:
            applied = dict(zip(todo, self.store.apply_many(batch), strict=True))
        except StoreError:
            raise
        except Exception:  # one bad item must not hold up the others: apply them one by one
            log.exception("applying a batch of %d raw items failed; applying singly", len(batch))
            applied = {
                raw_id: self._process(raw_id, item.body, item.kind, item.channel)
                for raw_id, item in todo.items()
            }
        # The first of repeated items gets what processing did; the others are duplicates.
        return [
            applied.pop(raw_id) if raw_id in applied else self.store.raw_outcome(raw_id)
            for raw_id, _new in added
        ]

    @staticmethod
    def _parse(
        raw_id: int, body: bytes, kind: str, channel: str | None, own: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        try:
            return parse_item(body, kind, channel, own)
        except Exception as exc:  # the parser broke its promise: review queue, not a retry loop
            log.exception("parsing raw item %d raised", raw_id)
            reason = f"the parser crashed: {type(exc).__name__}: {exc}".splitlines()[0]
            return [{"kind": "error", "error": reason}]

    def _process(self, raw_id: int, body: bytes, kind: str, channel: str | None) -> Outcome:
        results = self._parse(raw_id, body, kind, channel, self.own)
        try:
            return self.store.apply(raw_id, results)
        except StoreError:
            raise
        except Exception as exc:  # a bug must not lose the item: it waits in the review queue
            log.exception("applying raw item %d failed", raw_id)
            reason = f"internal error while storing: {type(exc).__name__}: {exc}".splitlines()[0]
            return self.store.apply(raw_id, [{"kind": "error", "error": reason}])

    def reparse(self, raw_id: int) -> Outcome:
        """Run the current parser over a kept raw item again (after a fix)."""
        return self.accept_raw(raw_id)

    def reparse_failed(self) -> list[Outcome]:
        return [self.reparse(raw_id) for raw_id in self.store.failed_raw_ids()]

    def recover(self, older_than: float = 30.0) -> list[Outcome]:
        """Finish raw items a crashed process committed but never processed."""
        outcomes = []
        for raw_id in self.store.pending_raw_ids(older_than):
            log.info("recovering raw item %d left pending by an earlier run", raw_id)
            outcomes.append(self.accept_raw(raw_id))
        return outcomes


# --------------------------------------------------------------------------- the service


class Source(Protocol):
    """A capture source. ``run`` blocks until ``stop`` is set, returning within a second."""

    name: str

    def run(self, stop: threading.Event) -> None: ...


HealthCallback = Callable[[Health], None]
SourceFactory = Callable[[Store, Pipeline, HealthCallback], Source]


def holder_id() -> str:
    """Who holds the lease: user@host:pid plus a random suffix (pids get reused)."""
    user = current_actor()
    return f"{user}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _Running:
    source: Source
    thread: threading.Thread
    stop: threading.Event


@dataclass
class CaptureService:
    """Holds the capture lease and, while it does, runs the sources.

    Exactly one process per database captures; the others only view. When the holder stops
    or dies, its lease expires within ``LEASE_TTL`` seconds and another process takes over.
    """

    url: str
    factories: Sequence[SourceFactory]
    holder: str = field(default_factory=holder_id)
    on_lease: Callable[[bool], None] | None = None  # told when this process gains/loses it
    # Who wants which events ([[notify]]): every store this service opens writes outbox rows
    # for them in the transaction of the lead that causes them.
    routes: Sequence[OutboxRoute] = ()
    own_addresses: Sequence[str] = ()  # the seller's: their mail is never a lead
    lease_ttl: float = LEASE_TTL
    renew_every: float = LEASE_RENEW
    recover_after: float = RECOVER_AFTER
    _running: list[_Running] = field(default_factory=list)
    _last_health: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _restart: list[tuple[Sequence[SourceFactory], Sequence[OutboxRoute]]] = field(
        default_factory=list
    )
    holding: bool = False

    def restart_sources(
        self,
        factories: Sequence[SourceFactory] | None = None,
        routes: Sequence[OutboxRoute] | None = None,
    ) -> None:
        """Start the sources again at the next renewal (thread-safe), with new ``factories``
        (and outbox ``routes``) if the settings changed: a fixed password is tried at once,
        not after the backoff."""
        self._restart.append(
            (
                self.factories if factories is None else factories,
                self.routes if routes is None else routes,
            )
        )

    def run(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set. Never raises; every error is logged and retried."""
        store: Store | None = None
        try:
            while not stop.is_set():
                try:
                    if store is None:
                        store = Store.open(self.url)
                    store.set_outbox_routes(self.routes)  # recovered items notify too
                    self._tick(store)
                except StoreError as exc:
                    log.warning("capture: %s", exc)
                    self._set_holding(False, store)
                    if store is not None:
                        store.close()
                    store = None
                except Exception:
                    log.exception("capture: unexpected error in the lease loop")
                self._pause(stop)
        finally:
            self._stop_sources()
            if store is not None:
                if self.holding:
                    with contextlib.suppress(Exception):
                        store.clear_health()
                    store.release_lease(self.holder)
                store.close()
            self._set_holding(False, None)

    def _pause(self, stop: threading.Event) -> None:
        """Wait until the next renewal, a stop, or a restart asked for."""
        deadline = time.monotonic() + self.renew_every
        while not stop.is_set() and not self._restart:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(left, 0.25))

    def _tick(self, store: Store) -> None:
        if self._restart:
            self.factories, self.routes = self._restart.pop()
            self._restart.clear()
            if self.holding:
                log.info("capture: starting the sources again (settings changed, or asked)")
                self._stop_sources()
                self._last_health.clear()
                self._start_sources()
        has = store.try_lease(self.holder, self.lease_ttl)
        if has and not self.holding:
            log.info("capture: this process holds the capture lease (%s)", self.holder)
            self._set_holding(True, store)
            with contextlib.suppress(StoreError):
                store.clear_health()
            Pipeline(store).recover(self.recover_after)
            self._start_sources()
        elif has:
            # Not only at the start: a process that died after a lease change (an HTTP push
            # answered 2xx, then a crash) leaves items nobody will deliver again.
            Pipeline(store).recover(self.recover_after)
        elif self.holding:
            log.warning("capture: lost the capture lease; another process captures now")
            self._set_holding(False, store)
        # A source thread that died (it should not) is restarted.
        for running in list(self._running):
            if not running.thread.is_alive() and not running.stop.is_set():
                log.error(
                    "capture: source %s stopped unexpectedly; restarting", running.source.name
                )
                self._running.remove(running)
                self._start_one_thread(running.source)

    def _set_holding(self, value: bool, store: Store | None) -> None:
        if value == self.holding:
            return
        self.holding = value
        if not value:
            self._stop_sources()
        if self.on_lease is not None:
            try:
                self.on_lease(value)
            except Exception:
                log.exception("capture: lease callback failed")

    def _start_sources(self) -> None:
        for factory in self.factories:
            try:
                store = Store.open(self.url)
                store.set_outbox_routes(self.routes)
                pipeline = Pipeline(store, self.own_addresses)
                source = factory(store, pipeline, self._reporter(store))
            except Exception:
                log.exception("capture: cannot start a source")
                continue
            self._start_one_thread(source)

    def _start_one_thread(self, source: Source) -> None:
        stop = threading.Event()

        def target() -> None:
            try:
                source.run(stop)
            except Exception:
                log.exception("capture: source %s crashed", source.name)

        thread = threading.Thread(target=target, name=f"source-{source.name}", daemon=True)
        self._running.append(_Running(source, thread, stop))
        thread.start()

    def _stop_sources(self) -> None:
        running, self._running = self._running, []
        for r in running:
            r.stop.set()
        for r in running:
            r.thread.join(timeout=5)
            if r.thread.is_alive():
                log.error("capture: source %s did not stop within 5 s", r.source.name)

    def _reporter(self, store: Store) -> HealthCallback:
        lock = threading.Lock()

        def report(health: Health) -> None:
            key = (
                health.state,
                health.detail,
                health.next_retry_ts,
                health.last_error,
                health.last_success_ts,
            )
            with lock:
                if self._last_health.get(health.source) == key:
                    return
                self._last_health[health.source] = key
            try:
                store.set_health(
                    Health(
                        source=health.source,
                        state=health.state,
                        detail=health.detail,
                        last_success_ts=health.last_success_ts,
                        last_error=health.last_error,
                        next_retry_ts=health.next_retry_ts,
                        updated_ts=time.time(),
                        holder=self.holder,
                    )
                )
            except StoreError as exc:
                log.warning("capture: cannot record the health of %s: %s", health.source, exc)

        return report
