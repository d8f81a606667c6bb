"""The live table's worker: pages of the view and every commit, as messages for the app.

It serves the table's page requests and, between them, waits on the store's change waiter
(≤ ``FEED_WAIT`` at a time) and turns ``changes_since(cursor)`` into "these leads match the
view, these ids left it, these are new", checked against the view with ``matching_ids``.
Requests and changes go through this one thread, so its messages arrive in the order the
database saw them. It reports only by posting messages; :class:`leadtui.app.LeadApp` runs it
in a thread worker and applies them to the widgets.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from textual.message import Message

from leadtui.screens.main import FILTER_LABELS
from leadtui.store import STATUSES, Lead, LeadQuery, Store, StoreError
from leadtui.widgets import display
from leadtui.widgets.bars import COUNT_CAP, CaptureState
from leadtui.widgets.table import FIRST_PAGE, PAGE, PageKind

log = logging.getLogger(__name__)

STATE_EVERY = 5.0  # refresh the header at least this often (lease expiry, a new day)
STATE_MIN_GAP = 0.5  # and at most this often while changes stream in
FEED_WAIT = 0.05  # the change feed's longest wait between looks at the request queue


@dataclass(frozen=True, slots=True)
class View:
    """What the table shows: a filter and a search."""

    filter_name: str = "all"
    search: str = ""
    now: float = 0.0  # for "buyleads": BuyLeads posted since now - fresh_hours
    fresh_hours: float = 72.0

    def query(self, me: str) -> LeadQuery:
        search = self.search.strip() or None
        name = self.filter_name
        if name in STATUSES or name == "open":
            return LeadQuery(status=name, search=search, limit=PAGE)
        if name == "mine":
            return LeadQuery(owner=me, search=search, limit=PAGE)
        if name == "due":
            return LeadQuery(follow_up_due=True, search=search, limit=PAGE)
        if name == "calls":
            return LeadQuery(calls_to_return=True, search=search, limit=PAGE)
        if name == "buyleads":  # still fresh, the soonest stale at the bottom
            since = self.now - self.fresh_hours * 3600
            return LeadQuery(
                status="open", query_type="B", since_ts=since, search=search, limit=PAGE
            )
        if name == "unread":
            return LeadQuery(unread=True, search=search, limit=PAGE)
        return LeadQuery(search=search, limit=PAGE)

    def label(self) -> str:
        text = FILTER_LABELS.get(self.filter_name, self.filter_name)
        if self.search.strip():
            text += f" matching “{display.clean(self.search.strip())}”"
        return text


def _unfiltered(query: LeadQuery) -> bool:
    return not (
        query.status
        or (query.search and query.search.strip())
        or query.owner
        or query.follow_up_due
        or query.calls_to_return
        or query.query_type
        or query.unread
        or query.since_ts is not None
    )


@dataclass(frozen=True, slots=True)
class _Request:
    generation: int
    query: LeadQuery
    kind: PageKind
    anchor: int | None = None


class _Announcer:
    """Which changed leads are new since the app started (each is announced once)."""

    KEEP = 50_000

    def __init__(self, floor: int) -> None:
        self.floor = floor  # leads up to this id existed before the app started
        self.seen: set[int] = set()

    def take(self, leads: list[Lead]) -> list[Lead]:
        new = [lead for lead in leads if lead.id > self.floor and lead.id not in self.seen]
        self.seen.update(lead.id for lead in new)
        if len(self.seen) > self.KEEP:
            # Forget the oldest half; ids commit in (nearly) increasing order.
            ordered = sorted(self.seen)
            self.floor = ordered[len(ordered) // 2]
            self.seen = set(ordered[len(ordered) // 2 :])
        return new


def fresh_reply(lead: Lead) -> bool:
    """Did this change of the lead bring a buyer's message nobody has read yet?

    The capture path sets ``last_action`` "reply" and ``last_action_ts`` = ``updated_ts`` with
    the message; a later merge moves ``updated_ts``, a triage action ``last_action``, and
    opening the lead clears ``unread``: any of them makes it old news.
    """
    return (
        lead.unread > 0
        and lead.last_action == "reply"
        and lead.last_action_ts is not None
        and lead.last_action_ts == lead.updated_ts
    )


class _Replies:
    """Which changed leads bring a buyer's message this app has not announced (once each)."""

    KEEP = 50_000

    def __init__(self) -> None:
        self.announced: dict[int, int] = {}  # lead id → its message count when announced

    def take(self, leads: list[Lead], new: list[Lead]) -> list[Lead]:
        """The replies among ``leads``; a lead that is ``new`` is announced as new, not twice."""
        created = {lead.id for lead in new}
        out: list[Lead] = []
        for lead in leads:
            if not fresh_reply(lead) or self.announced.get(lead.id, -1) >= lead.messages_count:
                continue
            self.announced[lead.id] = lead.messages_count
            if lead.id not in created:
                out.append(lead)
        if len(self.announced) > self.KEEP:  # forget the oldest half (dicts keep their order)
            for lead_id in list(self.announced)[: self.KEEP // 2]:
                del self.announced[lead_id]
        return out


# --------------------------------------------------------------------------- messages


class PageLoaded(Message):
    def __init__(self, generation: int, kind: str, leads: list[Lead], more: bool) -> None:
        super().__init__()
        self.generation = generation
        self.kind = kind
        self.leads = leads
        self.more = more


class FeedChanged(Message):
    """Leads changed: ``leads`` in their current state, ``matching`` the ids still in the view,
    ``new`` the ones created since the app started and ``replied`` the ones a buyer just wrote
    to, with the newest message (both announced whatever the view)."""

    def __init__(
        self,
        generation: int,
        leads: list[Lead],
        matching: set[int],
        new: list[Lead],
        replied: list[tuple[Lead, str]] | None = None,
    ) -> None:
        super().__init__()
        self.generation = generation
        self.leads = leads
        self.matching = matching
        self.new = new
        self.replied = replied or []


class StateRead(Message):
    def __init__(self, state: CaptureState) -> None:
        super().__init__()
        self.state = state


# --------------------------------------------------------------------------- the feed


class ChangeFeed:
    """The feed of one app: requests in through :meth:`request`, messages out through ``post``."""

    def __init__(
        self, store: Store, clock: Callable[[], float], post: Callable[[Message], object]
    ) -> None:
        self.store = store
        self.clock = clock
        self.post = post
        self._requests: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._wake = threading.Event()  # a request ends the feed's wait for commits early

    def request(
        self, generation: int, query: LeadQuery, kind: PageKind, anchor: int | None
    ) -> None:
        """Ask for a page (thread-safe); requests of an older generation are dropped."""
        self._requests.put(_Request(generation, query, kind, anchor))
        self._wake.set()

    def _drain(self) -> list[_Request]:
        self._wake.clear()  # before reading the queue: a request put after this wakes again
        requests: list[_Request] = []
        with contextlib.suppress(queue.Empty):
            while True:
                requests.append(self._requests.get_nowait())
        if not requests:
            return []
        latest = max(r.generation for r in requests)
        return [r for r in requests if r.generation == latest]

    def run(self, query: LeadQuery, cancelled: Callable[[], bool]) -> None:
        """The worker's body: serve page requests and turn commits into messages until
        ``cancelled()``. ``query`` is the view's until the first request names another."""
        store = self.store
        waiter = None
        cursor: int | None = None
        announcer = _Announcer(0)
        replies = _Replies()
        generation = 0
        last_state = 0.0
        state_due = True
        try:
            while not cancelled():
                try:
                    if cursor is None:
                        cursor = store.cursor()
                        newest = store.list_leads(LeadQuery(limit=1))
                        announcer = _Announcer(newest[0].id if newest else 0)
                    if waiter is None:
                        waiter = store.waiter()
                    for request in self._drain():
                        query, generation = request.query, request.generation
                        self._load(store, request)
                    changed = waiter.wait(FEED_WAIT, self._wake)
                    if cancelled():
                        break
                    if changed:
                        cursor, touched = self._catch_up(
                            store, cursor, query, generation, (announcer, replies)
                        )
                        state_due = state_due or touched
                    now = time.monotonic()
                    if (state_due and now - last_state >= STATE_MIN_GAP) or (
                        now - last_state >= STATE_EVERY
                    ):
                        self.post(StateRead(self._read_state(store)))
                        last_state, state_due = now, False
                except Exception as exc:
                    log.warning("change feed: %s", exc, exc_info=not isinstance(exc, StoreError))
                    self.post(
                        StateRead(CaptureState(loaded=True, error=str(exc).splitlines()[0][:120]))
                    )
                    if waiter is not None:
                        waiter.close()
                    waiter = None
                    store.close()
                    for _ in range(10):  # retry in a second, still answering cancellation
                        if cancelled():
                            break
                        time.sleep(0.1)
                    state_due = True
        finally:
            if waiter is not None:
                waiter.close()
            store.close()

    def _load(self, store: Store, request: _Request) -> None:
        query = request.query
        if request.kind == "older":
            query = replace(query, before_id=request.anchor)
        elif request.kind == "newer":
            query = replace(query, after_id=request.anchor)
        elif request.kind == "tail":
            query = replace(query, after_id=0, limit=FIRST_PAGE)
        else:
            query = replace(query, limit=FIRST_PAGE)
        leads = store.list_leads(query)
        more = len(leads) >= query.limit
        self.post(PageLoaded(request.generation, request.kind, leads, more))

    def _catch_up(
        self,
        store: Store,
        cursor: int,
        query: LeadQuery,
        generation: int,
        news: tuple[_Announcer, _Replies],
    ) -> tuple[int, bool]:
        touched = False
        announcer, replies = news
        while True:
            changes = store.changes_since(cursor)
            cursor = changes.cursor
            touched = touched or bool(changes)
            if changes.leads:
                ids = [lead.id for lead in changes.leads]
                match = set(ids) if _unfiltered(query) else store.matching_ids(query, ids)
                new = announcer.take(changes.leads)
                replied = replies.take(changes.leads, new)
                said = store.latest_messages(x.id for x in replied) if replied else {}
                texts = [(x, said[x.id].text if x.id in said else "") for x in replied]
                self.post(FeedChanged(generation, changes.leads, match, new, texts))
            if not changes.more:
                return cursor, touched

    def _read_state(self, store: Store) -> CaptureState:
        return CaptureState(
            health=tuple(store.health()),
            counts=store.counts(cap=COUNT_CAP, now=self.clock()),
            lease=store.lease_info(),
            loaded=True,
            mailboxes=tuple(store.mailboxes()),
        )
