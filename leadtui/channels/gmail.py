"""The Gmail source: a Gmail mailbox read through the Gmail API, for domains where IMAP is off.

It signs in with the OAuth refresh token the mailbox's XOAUTH2 uses (scope ``gmail.readonly``:
it can read and watch, never change a message, so the UNREAD mark stays as it was) and reads
one label (``INBOX`` unless ``LEADTUI_GMAIL_LABEL`` says otherwise).

The cursor is Gmail's ``historyId``, kept in the sync state :data:`CURSOR_STATE`. A sync lists
the history after it (``history.list``, ``historyTypes=messageAdded``, the label, paged), fetches
each new message with ``messages.get?format=raw`` and hands the RFC 822 bytes of the lead
senders' mail (``LEADTUI_IMAP_SENDERS``, as the mailbox watcher filters) to the same pipeline
as IMAP mail. The cursor moves only after those mails are committed; a crash or a failed
commit means the same history is read again, and dedupe makes the repeat harmless. A
``historyId`` Gmail no longer knows (404) falls back to ``messages.list`` over the days since
the last sync (2 to 30), and so does the first run (2 days). A message whose ``raw`` cannot be
read is kept, as Gmail sent it, in the review queue, and the sync goes on.

When is it synced?

- With push (``LEADTUI_GMAIL_TOPIC`` and ``LEADTUI_GMAIL_PUSH_TOKEN`` set, the HTTP ingest on):
  ``users.watch`` on the label at start and again every day (Google: a watch lasts 7 days;
  renew daily), and a sync at once when :mod:`leadtui.ingest.gmail` wakes it. A history check
  every :data:`PUSH_SWEEP` seconds catches a lost push; a recorded push not yet synced (a
  process that died after answering it) is found at start.
- Without push: a history check every ``LEADTUI_GMAIL_POLL_SECONDS``.

Errors are health states with the fix in one line: a revoked refresh token (``invalid_grant``)
or a missing scope wait :data:`LOGIN_RETRY` (or a fixed config file); 429 and 5xx back off
with full jitter. No token reaches a log, a health line or ``leadtui doctor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, TypeVar

from leadtui.capture import HealthCallback, Pipeline, RawItem, SourceFactory
from leadtui.channels.gmail_api import (
    WATCH_FIX,
    ApiError,
    GmailApi,
    GmailConfig,
    as_int,
    day,
    decode_raw,
)
from leadtui.config import ConfigError, Settings
from leadtui.imap import Backoff, redact
from leadtui.ingest.checks import PUSH_TOKEN_MIN
from leadtui.ingest.gmail import PUSH_STATE, WAKEUPS
from leadtui.ingest.source import bridge
from leadtui.pull import hm, settled_factory, until_stopped
from leadtui.store import Health, Store, StoreError

log = logging.getLogger(__name__)

SOURCE = "gmail"
CURSOR_STATE = "gmail:cursor"  # {"history_id": int, "email": str, "synced_ts": float}
WATCH_STATE = "gmail:watch"  # {"topic", "label", "expiration_ms", "renewed_ts"}
RENEW_EVERY = 86400.0  # Google recommends calling watch once a day
RENEW_SOONEST = 3600.0  # however short Gmail makes a watch, renew at most hourly
PUSH_SWEEP = 600.0  # with push: check the history this often anyway (a lost push)
LOGIN_RETRY = 900.0  # a refused grant or scope: try again after this long
WATCH_RETRY = 900.0  # a refused watch: poll meanwhile, try the watch again after this long
FETCH_AT_ONCE = 8  # messages fetched concurrently; committed in order
FIRST_DAYS, MIN_DAYS, MAX_DAYS = 2, 2, 30  # messages.list catch-up: newer_than:Nd
MAX_CATCH_UP = 5000
TICK = 0.25  # how often a wait looks at the stop event
T = TypeVar("T")


@dataclass
class Cursor:
    history_id: int
    synced_ts: float
    email: str = ""

    @classmethod
    def load(cls, store: Store) -> Cursor | None:
        data = store.get_state(CURSOR_STATE) or {}
        history = as_int(data.get("history_id"))
        if history is None:
            return None
        return cls(history, float(data.get("synced_ts") or 0.0), str(data.get("email") or ""))

    def save(self, store: Store) -> None:
        store.set_state(CURSOR_STATE, dict(self.__dict__))


def from_lead_sender(raw: bytes, senders: Sequence[str]) -> bool:
    """Whether the mail's From names a lead sender's domain (the mailbox watcher's filter)."""
    if not senders:
        return True
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
    sender = " ".join(str(v) for v in headers.get_all("From") or []).lower()
    return any(domain.lower() in sender for domain in senders)


@dataclass
class Synced:
    """What one sync did, for the health line and the log."""

    messages: int = 0
    leads: int = 0
    new: int = 0
    review: int = 0
    caught_up: str = ""  # why a messages.list catch-up ran, if one did


@dataclass
class GmailSource:
    cfg: GmailConfig
    senders: tuple[str, ...]
    store: Store
    pipeline: Pipeline
    report: HealthCallback
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    name: str = SOURCE
    _watch_problem: str = ""
    _watch_next: float = 0.0
    _handled_push: int | None = None
    _said: str = ""
    _api: GmailApi | None = None

    def run(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (returning within a second); never raises."""
        try:
            asyncio.run(self._run(stop))
        except Exception:  # pragma: no cover - _run catches everything itself
            log.error("gmail: stopped by an error:\n%s", self._clean(traceback.format_exc()))

    def _clean(self, text: str) -> str:
        """``text`` without the grant's secrets or the access token in use."""
        if self._api is not None:
            return self._api.clean(text)
        return redact(text, list(self.cfg.secrets))

    async def _run(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        stopping = bridge(stop)
        forget = WAKEUPS.listen(lambda: loop.call_soon_threadsafe(wake.set))
        backoff = Backoff(base=2.0, cap=300.0, rng=self.rng.random)
        try:
            async with GmailApi.session_for(self.cfg) as session:
                api = self._api = GmailApi(self.cfg, session)
                due = True
                while not stop.is_set():
                    try:
                        if not await self._guard(self._step(api, wake, due), stop):
                            return
                        backoff.reset()
                        due = await self._wait(wake, stop)
                    except Exception as exc:  # every failure is a health state
                        delay = self._failed(exc, backoff)
                        await self._sleep(delay, stopping)
                        due = True
        finally:
            forget()

    async def _guard(self, work: Awaitable[T], stop: threading.Event) -> bool:
        finished, _ = await until_stopped(work, stop)
        return finished

    async def _step(self, api: GmailApi, wake: asyncio.Event, due: bool) -> None:
        await self._keep_watch(api)
        pushed = self._pending_push()
        if due or pushed is not None:
            wake.clear()
            synced = await self._sync(api)
            if pushed is not None:
                self._handled_push = pushed
            self._healthy(synced)

    # ------------------------------------------------------------------ waiting

    def _push_on(self) -> bool:
        return self.cfg.push and not self._watch_problem

    def _renew_at(self) -> float | None:
        if not self.cfg.push:
            return None
        if self._watch_problem:
            return self._watch_next
        watch = self.store.get_state(WATCH_STATE) or {}
        if watch.get("topic") != self.cfg.topic or watch.get("label") != self.cfg.label:
            return 0.0
        renewed = float(watch.get("renewed_ts") or 0.0)
        expires = float(watch.get("expiration_ms") or 0.0) / 1000
        due = (
            min(renewed + RENEW_EVERY, expires - RENEW_EVERY) if expires else renewed + RENEW_EVERY
        )
        return max(due, renewed + RENEW_SOONEST)  # a short watch must not mean a call a second

    async def _wait(self, wake: asyncio.Event, stop: threading.Event) -> bool:
        """Until a push (True), the next check (True) or a watch renewal is due (False)."""
        timeout = PUSH_SWEEP if self._push_on() else self.cfg.poll_seconds
        deadline = time.monotonic() + timeout
        renew = self._renew_at()
        while not stop.is_set():
            if wake.is_set() or time.monotonic() >= deadline:
                return True
            if renew is not None and self.clock() >= renew:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), TICK)
        return False

    async def _sleep(self, seconds: float, stopping: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)

    def _pending_push(self) -> int | None:
        """A recorded push this process has not synced for (it may have come before it ran)."""
        pushed = as_int((self.store.get_state(PUSH_STATE) or {}).get("history_id"))
        cursor = Cursor.load(self.store)
        if pushed is None or pushed == self._handled_push:
            return None
        if cursor is not None and pushed <= cursor.history_id:
            return None
        return pushed

    # ------------------------------------------------------------------ watch

    async def _keep_watch(self, api: GmailApi) -> None:
        renew = self._renew_at()
        if renew is None or self.clock() < renew:
            return
        try:
            answer = await api.watch()
        except ApiError as exc:
            if exc.kind in ("revoked", "scope", "disabled"):
                raise  # nothing works with this grant: the source's own health state
            what, _fix = exc.explain()
            self._watch_problem = f"push is off, Gmail refused the watch ({what}): {WATCH_FIX}"
            self._watch_next = self.clock() + WATCH_RETRY
            log.warning("gmail: %s", self._watch_problem)
            return
        self._watch_problem = ""
        expiration = as_int(answer.get("expiration")) or 0
        self.store.set_state(
            WATCH_STATE,
            {
                "topic": self.cfg.topic,
                "label": self.cfg.label,
                "expiration_ms": expiration,
                "renewed_ts": self.clock(),
            },
        )
        log.info("gmail: watching %s; the watch lasts until %s", self.cfg.label, day(expiration))

    # ------------------------------------------------------------------ syncing

    async def _sync(self, api: GmailApi) -> Synced:
        cursor = Cursor.load(self.store)
        if cursor is None:
            return await self._catch_up(api, FIRST_DAYS, "first run")
        try:
            return await self._history(api, cursor)
        except ApiError as exc:
            if exc.status != 404:
                raise
        wanted = math.ceil(max(0.0, self.clock() - cursor.synced_ts) / 86400) + 1
        days = max(MIN_DAYS, min(MAX_DAYS, wanted))
        log.warning(
            "gmail: history %d is too old for Gmail; reading %d days", cursor.history_id, days
        )
        why = "Gmail's history had expired"
        if wanted > days:  # said in the health line, not only the log: mail may be missing
            why += (
                f" after {wanted - 1} days without a sync; mail older than {days} days was "
                "not read (export it from Gmail and run leadtui import)"
            )
        return await self._catch_up(api, days, why)

    async def _history(self, api: GmailApi, cursor: Cursor) -> Synced:
        synced, page, last = Synced(), None, cursor.history_id
        while True:
            answer = await api.history(cursor.history_id, page)
            ids: list[str] = []
            for record in answer.get("history") or []:
                if not isinstance(record, dict):
                    continue
                ids += self._added(record.get("messagesAdded"))
                last = max(last, as_int(record.get("id")) or 0)
            await self._deliver(api, ids, cursor.email, synced)
            page = answer.get("nextPageToken")
            if not page:
                current = max(as_int(answer.get("historyId")) or 0, last)
                Cursor(current, self.clock(), cursor.email).save(self.store)
                return synced
            Cursor(last, cursor.synced_ts, cursor.email).save(self.store)  # a checkpoint

    def _added(self, added: Any) -> list[str]:
        ids: list[str] = []
        for entry in added if isinstance(added, list) else []:
            message = entry.get("message") if isinstance(entry, dict) else None
            if not isinstance(message, dict) or not isinstance(message.get("id"), str):
                continue
            labels = message.get("labelIds")
            if not isinstance(labels, list) or self.cfg.label in labels:
                ids.append(message["id"])
        return ids

    async def _catch_up(self, api: GmailApi, days: int, why: str) -> Synced:
        profile = await api.profile()
        start = as_int(profile.get("historyId"))
        if start is None:
            raise ApiError(200, "the profile has no historyId")
        email = str(profile.get("emailAddress") or "")[:320]
        query = f"newer_than:{days}d"
        if self.senders:
            query += " {" + " ".join(f"from:{domain}" for domain in self.senders) + "}"
        ids: list[str] = []
        page = None
        while len(ids) < MAX_CATCH_UP:
            answer = await api.list_messages(query, page)
            for message in answer.get("messages") or []:
                if isinstance(message, dict) and isinstance(message.get("id"), str):
                    ids.append(message["id"])
            page = answer.get("nextPageToken")
            if not page:
                break
        caught_up = f"{why}: read {days} days"
        if page:  # stopped at MAX_CATCH_UP with more to list: say so, do not hide it
            caught_up += (
                f", only the newest {len(ids)} messages (export the rest from Gmail and run "
                "leadtui import)"
            )
            log.warning("gmail: catch-up stopped at %d messages; older ones not read", len(ids))
        synced = Synced(caught_up=caught_up)
        await self._deliver(api, ids[::-1], email, synced)  # the list is newest first
        Cursor(start, self.clock(), email).save(self.store)
        return synced

    async def _deliver(self, api: GmailApi, ids: list[str], email: str, synced: Synced) -> None:
        todo = list(dict.fromkeys(ids))
        for at in range(0, len(todo), FETCH_AT_ONCE):
            chunk = todo[at : at + FETCH_AT_ONCE]
            answers = await asyncio.gather(*(api.raw(i) for i in chunk), return_exceptions=True)
            for message_id, answer in zip(chunk, answers, strict=True):
                if isinstance(answer, ApiError) and answer.status == 404:
                    log.info("gmail: message %s was deleted before it was read", message_id)
                    continue
                if isinstance(answer, BaseException):
                    raise answer
                self._commit(message_id, answer, email, synced)

    def _commit(self, message_id: str, answer: dict[str, Any], email: str, synced: Synced) -> None:
        source = f"gmail:{email or 'me'}/{self.cfg.label}"
        raw = decode_raw(answer.get("raw"))
        if raw is None:
            reason = f"Gmail message {message_id[:40]} has no readable raw RFC 822 message"
            body = json.dumps(answer, sort_keys=True, default=str).encode("utf-8")
            item = RawItem(body, source=source, kind="json", channel="api")
            self.pipeline.accept_many([item], parsed=[[{"kind": "error", "error": reason}]])
            synced.review += 1
            log.warning("gmail: %s; kept for review", reason)
            return
        if not from_lead_sender(raw, self.senders):
            return  # not lead mail: never stored, as the mailbox watcher never fetches it
        outcome = self.pipeline.accept(RawItem(raw, source=source, kind="email"))
        synced.messages += 1
        synced.leads += len(outcome.lead_ids)
        synced.new += len(outcome.new_lead_ids)
        synced.review += outcome.status == "failed"
        log.info("gmail: message %s -> %s %s", message_id[:40], outcome.status, outcome.detail)

    # ------------------------------------------------------------------ health

    def _healthy(self, synced: Synced) -> None:
        cursor = Cursor.load(self.store)
        who = f"{cursor.email} " if cursor and cursor.email else ""
        parts = [f"{who}{self.cfg.label}"]
        if self._push_on():
            renew = self._renew_at()
            parts.append(f"push via {self.cfg.topic}" + (f", renews {hm(renew)}" if renew else ""))
            state = "watching"
        else:
            parts.append(f"checks every {self.cfg.poll_seconds:g} s")
            state = "polling" if not self._watch_problem else "error"
            if self._watch_problem:
                parts.append(self._watch_problem)
        if synced.caught_up:
            parts.append(synced.caught_up)
        if synced.messages or synced.review:
            parts.append(f"last sync {hm(self.clock())}: {synced.new} new lead(s)")
        if synced.review:
            parts.append(f"{synced.review} kept for review")
        self._say(Health(SOURCE, state, " · ".join(parts), last_success_ts=self.clock()), "")

    def _failed(self, exc: Exception, backoff: Backoff) -> float:
        if isinstance(exc, ApiError):
            kind = exc.kind
            if kind in ("revoked", "scope", "disabled"):
                delay, state = LOGIN_RETRY, "login failed" if kind != "disabled" else "error"
            else:
                delay = backoff.next_delay()
                state = {"rate": "rate limited", "retry": "retrying"}.get(kind, "error")
                delay = max(delay, 1.0) if kind != "refused" else max(delay, 60.0)
            detail = self._clean(exc.describe())
        elif isinstance(exc, StoreError):
            delay, state = backoff.next_delay(), "retrying"
            detail = self._clean(f"the database failed, the history is read again: {exc}")
        else:
            delay, state = backoff.next_delay(), "error"
            detail = self._clean(f"unexpected error: {type(exc).__name__}: {exc}")[:300]
            log.error("gmail: unexpected error:\n%s", self._clean(traceback.format_exc()))
        due = self.clock() + delay
        self._say(Health(SOURCE, state, detail, last_error=detail, next_retry_ts=due), detail)
        return delay

    def _say(self, health: Health, problem: str) -> None:
        if problem and problem != self._said:
            log.warning("gmail: %s", problem)
        self._said = problem
        try:
            self.report(health)
        except Exception:
            log.exception("gmail: cannot report health")


def gmail_factory(
    settings: Settings,
    *,
    clock: Callable[[], float] | None = None,
    rng: random.Random | None = None,
) -> SourceFactory:
    """The capture service's factory for the Gmail source (the registry calls it).

    Raises ConfigError for a push token short enough to guess (its URL is its only
    credential); other unusable settings become a source whose health says what to set.
    """
    token = settings.gmail_push_token.reveal()
    if token and len(token) < PUSH_TOKEN_MIN:
        raise ConfigError(
            f"LEADTUI_GMAIL_PUSH_TOKEN is shorter than {PUSH_TOKEN_MIN} characters, and the push "
            "URL is its only credential: use a long random one"
        )
    return settled_factory(
        lambda: GmailConfig.from_settings(settings),
        ValueError,
        lambda cfg, store, pipeline, report: GmailSource(
            cfg,
            settings.imap_senders,
            store,
            pipeline,
            report,
            clock or time.time,
            rng or random.Random(),
        ),
        SOURCE,
    )
