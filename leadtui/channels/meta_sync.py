"""Lead ads, the rules: notified leads fetched from the Graph API, and the backfill per form.

The webhook (:mod:`leadtui.ingest.meta_leads`) commits each ``leadgen`` notification as a raw
item and answers; this source does the rest, under the capture lease:

Queue
    The committed notifications are the queue. :meth:`MetaLeads.scan` reads those after its
    cursor (``store.raw_ids_after``) and moves the lead ids they name into the pending set;
    cursor and pending set are one sync-state value, written at once, so a restart loses
    nothing and adds nothing twice. A pending lead leaves the set only after its Graph answer
    is committed through the pipeline (raw first; ``external_id`` = the lead id, and the raw
    item's dedupe key ``meta:lead:<id>``, so webhook, backfill and a Zapier copy are one lead).

Errors
    A Graph error that concerns every call (token expired, permission missing, rate limit,
    Meta down) is stored with a backoff and shown as the health state with its fix; nothing
    leaves the pending set, and the next call goes after the backoff (at once when the token
    is changed). An error about one lead (code 100: no such lead) is tried
    :data:`MAX_TRIES` times, then kept in the review queue with Meta's answer.

Backfill
    At start, every :data:`BACKFILL_EVERY` and on demand (``leadtui meta backfill``), each form
    (``[meta] form_ids`` plus every form a notification named) is listed with
    ``filtering=time_created GREATER_THAN`` its cursor minus :data:`OVERLAP`, following
    ``paging.next``; its leads are committed page by page, and the form's cursor moves to the
    time the listing began only after its last page is committed.

The Page token is never logged, shown or stored: texts pass through ``GraphConfig.redact``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from leadtui.capture import Pipeline, RawItem
from leadtui.channels import meta_graph as graph
from leadtui.channels.meta_graph import Answer, GraphConfig, Problem
from leadtui.formats.meta_leads import (
    LEAD_SOURCE,
    NOTIFICATION_SOURCE,
    graph_id,
    lead_dedupe_key,
    notified_leads,
)
from leadtui.formats.text import one_line
from leadtui.formats.website_form import without_lone_surrogates
from leadtui.pull import hm
from leadtui.store import Store

log = logging.getLogger(__name__)

SOURCE = "meta leads"  # Health.source and the doctor lines
QUEUE_KEY = "meta:leads:queue"
CALLS_KEY = "meta:leads:calls"
FORM_KEY = "meta:leads:form:"  # + form id: {"since": epoch s}, advanced after commit

POLL = 0.5  # how often new notifications are looked for (and the stop event)
SCAN_BATCH = 200
FETCH_BATCH = 20  # leads fetched per step; the next step comes at once
OVERLAP = 600  # a backfill asks from this long before its cursor: a lead indexed late is caught
BACKFILL_EVERY = 6 * 3600
MAX_TRIES = 5  # a lead Meta says nothing of (code 100) goes to review after this many tries
BACKOFF = {Problem.DOWN: 30.0, Problem.RATE: 300.0, Problem.TOKEN: 600.0, Problem.PERMISSION: 600.0}
MAX_BACKOFF = 3600.0
OBJECT_BACKOFF = 60.0
JITTER = 0.2
FORM_FIX = "check [meta] form_ids (LEADTUI_META_FORM_IDS): the form must be on the token's Page"
STATES = {
    Problem.TOKEN: "key rejected",  # failing: red in the header, /healthz degraded
    Problem.PERMISSION: "error",
    Problem.RATE: "rate limited",
    Problem.DOWN: "retrying",
}


def fingerprint(cfg: GraphConfig) -> str:
    """Which token a stored error belongs to (a hash prefix, not the token)."""
    digest = hashlib.sha256(b"leadtui-meta-token:" + cfg.token.reveal().encode("utf-8"))
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- stored state


@dataclass
class Queue:
    """Notifications read up to raw item ``after``; leads still to fetch; forms seen."""

    after: int = 0
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    forms: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, store: Store) -> Queue:
        data = store.get_state(QUEUE_KEY) or {}
        pending = data.get("pending")
        return cls(
            int(data.get("after") or 0),
            dict(pending) if isinstance(pending, dict) else {},
            [str(f) for f in data.get("forms") or []],
        )

    def save(self, store: Store) -> None:
        store.set_state(QUEUE_KEY, asdict(self))


@dataclass
class Calls:
    """The last Graph calls' result: a backoff that holds every call, and the counts shown."""

    token: str = ""  # fingerprint of the token the error below belongs to
    problem: str | None = None
    error: str | None = None
    failures: int = 0
    not_before: float = 0.0
    last_success_ts: float | None = None
    fetched: int = 0
    last_backfill_ts: float | None = None
    form_error: str | None = None  # forms the last backfill could not list (code 100)

    @classmethod
    def load(cls, store: Store) -> Calls:
        data = store.get_state(CALLS_KEY) or {}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, store: Store) -> None:
        store.set_state(CALLS_KEY, asdict(self))

    def blocked(self, token: str, now: float) -> bool:
        """Whether calls wait (a backoff for this token that has not run out)."""
        return self.problem is not None and self.token == token and now < self.not_before


@dataclass
class BackfillReport:
    forms: int = 0
    pages: int = 0
    leads: int = 0
    new: int = 0
    review: int = 0
    error: str | None = None
    fix: str = ""

    def lines(self) -> list[str]:
        out = [
            f"{self.forms} form{'s' * (self.forms != 1)}, {self.pages} page"
            f"{'s' * (self.pages != 1)}: {self.leads} lead{'s' * (self.leads != 1)}, "
            f"{self.new} new"
        ]
        if self.review:
            out.append(f"{self.review} kept in the review queue: leadtui review")
        if self.error:
            out.append(f"stopped: {self.error}" + (f"; {self.fix}" if self.fix else ""))
        return out


# --------------------------------------------------------------------------- the rules


class MetaLeads:
    """What every caller shares: the queue, the fetches, the backfill, the stored backoff."""

    def __init__(
        self,
        cfg: GraphConfig,
        store: Store,
        pipeline: Pipeline,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.pipeline = pipeline
        self.rng = rng or random.Random()
        self.token = fingerprint(cfg)

    def scan(self) -> int:
        """Move the leads of newly committed notifications into the pending set."""
        queue = Queue.load(self.store)
        ids = self.store.raw_ids_after(NOTIFICATION_SOURCE, queue.after, SCAN_BATCH)
        added = 0
        for raw_id in ids:
            body = self.store.raw_body(raw_id) or b""
            try:
                payload: object = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                payload = None  # the parser put it in the review queue
            for lead in notified_leads(payload):
                if lead.form_id and lead.form_id not in queue.forms:
                    queue.forms.append(lead.form_id)
                if lead.leadgen_id not in queue.pending:
                    queue.pending[lead.leadgen_id] = {"raw": raw_id, "tries": 0, "next": 0.0}
                    added += 1
            queue.after = raw_id
        if ids:
            queue.save(self.store)
        return added

    def calls(self) -> Calls:
        return Calls.load(self.store)

    def _failed(self, answer: Answer, now: float) -> Calls:
        """Store an error that holds every call, with the backoff it earns."""
        problem = answer.problem or Problem.DOWN
        calls = self.calls()
        calls.failures = calls.failures + 1 if calls.token == self.token else 1
        calls.token, calls.problem = self.token, problem.value
        calls.error = self.cfg.redact(answer.describe())
        base = BACKOFF.get(problem, OBJECT_BACKOFF)
        wait = min(base * 2 ** min(calls.failures - 1, 10), MAX_BACKOFF)
        calls.not_before = now + wait * (1 + self.rng.uniform(0, JITTER))
        calls.save(self.store)
        log.warning("meta leads: %s; next call %s", calls.error, hm(calls.not_before))
        return calls

    def _succeeded(self, now: float, fetched: int = 0, backfill: bool = False) -> None:
        calls = self.calls()
        calls.token, calls.problem, calls.error, calls.failures = self.token, None, None, 0
        calls.not_before, calls.last_success_ts = 0.0, now
        calls.fetched += fetched
        if backfill:
            calls.last_backfill_ts = now
        calls.save(self.store)

    async def fetch_due(self, http: aiohttp.ClientSession, now: float) -> int:
        """Fetch pending leads that are due; how many were committed. Stops at an error that
        holds every call (it is stored, and the leads stay pending)."""
        if self.calls().blocked(self.token, now):
            return 0
        queue = Queue.load(self.store)
        due = [k for k, v in queue.pending.items() if float(v.get("next") or 0) <= now]
        done = 0
        for leadgen_id in due[:FETCH_BATCH]:
            answer = await graph.get_lead(http, self.cfg, leadgen_id)
            if answer.ok:
                self._commit_lead(leadgen_id, answer.body, "push")
                self._forget(leadgen_id)
                done += 1
            elif answer.problem is Problem.OBJECT:
                self._object_failed(leadgen_id, answer, now)
            else:
                self._failed(answer, now)
                break
        if done:
            self._succeeded(now, fetched=done)
        return done

    def _commit_lead(self, leadgen_id: str, body: bytes, channel: str) -> Any:
        item = RawItem(
            body,
            source=LEAD_SOURCE,
            kind="json",
            channel=channel,
            dedupe_key=lead_dedupe_key(leadgen_id),
        )
        outcome = self.pipeline.accept(item)
        log.info("meta leads: lead %s -> %s %s", leadgen_id, outcome.status, outcome.detail)
        return outcome

    def _forget(self, leadgen_id: str) -> None:
        queue = Queue.load(self.store)
        if queue.pending.pop(leadgen_id, None) is not None:
            queue.save(self.store)

    def _object_failed(self, leadgen_id: str, answer: Answer, now: float) -> None:
        """A lead Meta would not give: again later, then the review queue with its answer."""
        queue = Queue.load(self.store)
        entry = queue.pending.get(leadgen_id)
        if entry is None:
            return
        entry["tries"] = int(entry.get("tries") or 0) + 1
        entry["error"] = self.cfg.redact(answer.describe())
        if entry["tries"] < MAX_TRIES:
            entry["next"] = now + OBJECT_BACKOFF * 2 ** (entry["tries"] - 1)
            queue.save(self.store)
            return
        reason = f"Meta lead {leadgen_id} could not be fetched: {entry['error']}"
        shown = self.cfg.redact(answer.body.decode("utf-8", errors="replace"))
        kept = {"leadgen_id": leadgen_id, "graph_answer": shown}
        body = json.dumps(kept, ensure_ascii=False, sort_keys=True).encode()
        raw_id, _new = self.store.add_raw(
            body,
            source=LEAD_SOURCE,
            kind="json",
            channel="push",
            dedupe_key=lead_dedupe_key(leadgen_id) + ":unfetched",
        )
        self.store.apply(raw_id, [{"kind": "error", "error": one_line(reason, 300)}])
        queue.pending.pop(leadgen_id, None)
        queue.save(self.store)
        log.warning("meta leads: %s; kept for review", reason)

    # ------------------------------------------------------------------ backfill

    def forms(self) -> list[str]:
        return list(dict.fromkeys([*self.cfg.form_ids, *Queue.load(self.store).forms]))

    async def backfill(
        self,
        http: aiohttp.ClientSession,
        now: float,
        *,
        days: int | None = None,
        say: Callable[[str], None] | None = None,
    ) -> BackfillReport:
        """List each form's leads since its cursor (or ``days`` ago) and commit them.

        An error that holds every call stops the backfill (stored, with its backoff); a form
        Meta does not know (code 100) is skipped, named in the health line, and the rest go on.
        """
        report = BackfillReport()
        unknown: list[str] = []
        for form in self.forms():
            report.forms += 1
            failed = await self._backfill_form(http, form, now, days, report)
            if failed is None:
                if say is not None:
                    say(f"form {form}: listed")
                continue
            report.error = f"form {form}: {self.cfg.redact(failed.describe())}"
            if failed.problem is not Problem.OBJECT:
                self._failed(failed, now)
                report.fix = failed.fix()
                return report
            report.fix = FORM_FIX
            unknown.append(report.error)
            log.warning("meta leads: %s; %s", report.error, FORM_FIX)
        if report.forms:
            self._succeeded(now, backfill=True)
            calls = self.calls()
            calls.form_error = "; ".join(unknown)[:500] or None
            calls.save(self.store)
        return report

    async def _backfill_form(
        self,
        http: aiohttp.ClientSession,
        form: str,
        now: float,
        days: int | None,
        report: BackfillReport,
    ) -> Answer | None:
        """One form's listing, page by page; the failing answer, or None when all is committed."""
        cursor = self.store.get_state(FORM_KEY + form) or {}
        if days is None and cursor.get("since") is not None:
            since = float(cursor["since"]) - OVERLAP
        else:
            span = self.cfg.backfill_days if days is None else days
            since = now - max(0, min(span, graph.MAX_BACKFILL_DAYS)) * 86400
        url: str | None = f"{self.cfg.base}/{form}/leads"
        params: dict[str, str] | None = graph.leads_query(int(since))
        while url is not None:
            answer = await graph.get(http, self.cfg, url, params)
            if not answer.ok:
                return answer
            self._commit_page(answer, report)
            url, params = graph.next_page(self.cfg, answer), None
        # Every page is committed: only now may the cursor pass these leads.
        self.store.set_state(FORM_KEY + form, {"since": now})
        return None

    def _commit_page(self, answer: Answer, report: BackfillReport) -> None:
        report.pages += 1
        data = answer.data.get("data") if isinstance(answer.data, dict) else None
        items = []
        for lead in data if isinstance(data, list) else []:
            lead_id = graph_id(lead.get("id")) if isinstance(lead, dict) else None
            if lead_id is None:
                continue
            body = json.dumps(without_lone_surrogates(lead), ensure_ascii=False).encode()
            items.append(RawItem(body, LEAD_SOURCE, "json", "pull", lead_dedupe_key(lead_id)))
        for outcome in self.pipeline.accept_many(items) if items else []:
            report.leads += len(outcome.lead_ids)
            report.new += len(outcome.new_lead_ids)
            report.review += outcome.status == "failed"
