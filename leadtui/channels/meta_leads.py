"""Facebook and Instagram lead ads as a capture source, its ``leadtui doctor`` lines and the
``leadtui meta backfill`` command's work.

The rules (queue, fetches, backoff, backfill) are :mod:`leadtui.channels.meta_sync`'s; the Graph
API calls :mod:`leadtui.channels.meta_graph`'s; the webhook :mod:`leadtui.ingest.meta_leads`'s;
the payload mapping :mod:`leadtui.formats.meta_leads`'s. This module runs them: one step every
half second (new notifications are seen that fast), a backfill at start and every few hours, and
the health line with the fix in it when Meta refuses the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from leadtui.capture import HealthCallback, Pipeline, SourceFactory
from leadtui.channels import meta_graph as graph
from leadtui.channels.meta_graph import Answer, GraphConfig, MetaError, Problem
from leadtui.channels.meta_sync import (
    BACKFILL_EVERY,
    FETCH_BATCH,
    FORM_FIX,
    POLL,
    SOURCE,
    STATES,
    BackfillReport,
    Calls,
    MetaLeads,
    Queue,
    fingerprint,
)
from leadtui.config import Check, Settings
from leadtui.formats.text import one_line
from leadtui.ingest.meta_leads import PATH
from leadtui.pull import hm, settled_factory, until_stopped
from leadtui.store import Health, Store, StoreError

log = logging.getLogger(__name__)

__all__ = ["MetaError", "MetaLeadsSource", "check", "meta_factory", "run_backfill"]


# --------------------------------------------------------------------------- the source


@dataclass
class MetaLeadsSource:
    """The capture service's lead ads source: scan, fetch, backfill, report; until ``stop``."""

    leads: MetaLeads
    report: HealthCallback
    clock: Callable[[], float] = time.time
    name: str = "meta leads"
    backfill_due: float = 0.0  # at start

    async def step(self, http: aiohttp.ClientSession) -> float:
        """One round; returns when the next one is wanted (epoch seconds)."""
        now = self.clock()
        self.leads.scan()
        if now >= self.backfill_due and not self.leads.calls().blocked(self.leads.token, now):
            await self.leads.backfill(http, now)
            # Held by an error that holds every call: again once its backoff ends.
            if not self.leads.calls().blocked(self.leads.token, self.clock()):
                self.backfill_due = now + BACKFILL_EVERY
        fetched = await self.leads.fetch_due(http, self.clock())
        self._report(self.clock())
        return self.clock() if fetched >= FETCH_BATCH else self.clock() + POLL

    def run(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (returning within a second); never raises."""
        try:
            asyncio.run(self._run(stop))
        except Exception:  # pragma: no cover - _run catches everything itself
            log.error("meta leads: stopped:\n%s", self.leads.cfg.redact(traceback.format_exc()))

    async def _run(self, stop: threading.Event) -> None:
        redact = self.leads.cfg.redact
        async with graph.session(self.leads.cfg) as http:
            while not stop.is_set():
                try:
                    finished, wake = await until_stopped(self.step(http), stop)
                    if not finished:
                        return
                except Exception as exc:  # the database or a bug: report, wait, go on
                    if isinstance(exc, StoreError):
                        log.warning("meta leads: %s", redact(str(exc)))
                    else:
                        log.error(
                            "meta leads: unexpected error:\n%s", redact(traceback.format_exc())
                        )
                    wake = self.clock() + 30
                    text = redact(one_line(f"{type(exc).__name__}: {exc}", 200))
                    self._health("retrying", text, None, text, wake)
                await self._pause(wake or 0.0, stop)

    async def _pause(self, until: float, stop: threading.Event) -> None:
        """Wait until ``until`` (at most :data:`POLL` at a time), or less when ``stop`` is set."""
        while True:
            left = until - self.clock()
            if stop.is_set() or left <= 0:
                return
            await asyncio.sleep(min(POLL, left))

    def _report(self, now: float) -> None:
        calls = self.leads.calls()
        waiting = len(Queue.load(self.leads.store).pending)
        parts = [f"{waiting} lead{'s' * (waiting != 1)} waiting"] if waiting else []
        if calls.problem is not None and calls.token == self.leads.token:
            problem = Problem(calls.problem)
            fix = graph.EXPIRED_FIX if problem is Problem.TOKEN else ""
            fix = graph.PERMISSION_FIX if problem is Problem.PERMISSION else fix
            text = f"Meta: {calls.error}" + (f"; {fix}" if fix else "")
            retry = calls.not_before
            parts = [text, *parts, f"next try {hm(retry)}"]
            state = STATES.get(problem, "error")
            self._health(state, " · ".join(parts), calls.last_success_ts, text, retry)
            return
        if calls.form_error:
            text = f"Meta: {calls.form_error}; {FORM_FIX}"
            self._health("error", " · ".join([text, *parts]), calls.last_success_ts, text, None)
            return
        parts.insert(0, f"{calls.fetched} lead{'s' * (calls.fetched != 1)} fetched")
        if calls.last_backfill_ts:
            parts.append(f"backfill {hm(calls.last_backfill_ts)}")
        self._health("waiting", " · ".join(parts), calls.last_success_ts, None, None)

    def _health(
        self, state: str, detail: str, ok: float | None, error: str | None, due: float | None
    ) -> None:
        with contextlib.suppress(Exception):
            self.report(Health(SOURCE, state, detail, ok, error, due))


def meta_factory(settings: Settings) -> SourceFactory:
    """The capture service's factory (``sources.SOURCES`` calls it). Never raises."""
    return settled_factory(
        lambda: GraphConfig.from_settings(settings),
        MetaError,
        lambda cfg, store, pipeline, report: MetaLeadsSource(
            MetaLeads(cfg, store, pipeline), report
        ),
        SOURCE,
    )


def run_backfill(
    settings: Settings, store: Store, days: int | None, say: Callable[[str], None]
) -> BackfillReport:
    """``leadtui meta backfill``: every form once, now. Raises :class:`MetaError` for settings."""
    cfg = GraphConfig.from_settings(settings)
    leads = MetaLeads(cfg, store, Pipeline(store))
    if not leads.forms():
        raise MetaError(
            "no lead form to backfill: set [meta] form_ids (or LEADTUI_META_FORM_IDS); forms "
            "named by webhook notifications are added by themselves"
        )

    async def run() -> BackfillReport:
        async with graph.session(cfg) as http:
            return await leads.backfill(http, time.time(), days=days, say=say)

    return asyncio.run(run())


# --------------------------------------------------------------------------- leadtui doctor


def check(settings: Settings, store: Store | None, timeout: float = 15.0) -> list[Check]:
    """``leadtui doctor``'s lines: settings, the webhook, forms, the stored state, a live call."""
    if not settings.meta_leads_enabled:
        return [
            Check(
                SOURCE,
                None,
                "off: set LEADTUI_META_PAGE_TOKEN (or page_token under [meta]) to capture "
                "Facebook and Instagram lead ads",
            )
        ]
    try:
        cfg = GraphConfig.from_settings(settings)
    except MetaError as exc:
        return [Check(SOURCE, False, str(exc), "README: Facebook and Instagram lead ads")]
    lines = [_webhook_check(settings)]
    forms = list(cfg.form_ids)
    if store is not None:
        with contextlib.suppress(StoreError):
            forms = list(dict.fromkeys([*forms, *Queue.load(store).forms]))
            calls = Calls.load(store)
            if calls.problem is not None and calls.token == fingerprint(cfg):
                fix = graph.EXPIRED_FIX if calls.problem == Problem.TOKEN.value else ""
                fix = graph.PERMISSION_FIX if calls.problem == Problem.PERMISSION.value else fix
                lines.append(Check(SOURCE, False, f"last call: {calls.error}", fix))
    if forms:
        lines.append(
            Check(SOURCE, True, f"backfill: form{'s' * (len(forms) != 1)} " + ", ".join(forms))
        )
    else:
        lines.append(
            Check(
                SOURCE,
                None,
                "backfill: no form ids yet; forms named by notifications are added",
                "set [meta] form_ids (LEADTUI_META_FORM_IDS) to backfill before the first lead",
            )
        )
    lines.append(asyncio.run(_live_check(cfg, timeout)))
    return lines


def _webhook_check(settings: Settings) -> Check:
    if not settings.meta_leads_secret:
        return Check(
            SOURCE,
            False,
            "webhook: no app secret, so notifications cannot be checked and are refused",
            "set LEADTUI_META_LEADS_APP_SECRET or [meta] app_secret (the Meta app's secret)",
        )
    if not settings.http_enabled:
        return Check(
            SOURCE, None, "webhook: the HTTP ingest is off, so only the backfill brings leads"
        )
    url = (settings.http_public_url.rstrip("/") or "https://<your public address>") + PATH
    if not settings.meta_leads_verify:
        return Check(
            SOURCE,
            False,
            f"webhook: {url}, but no verify token, so Meta cannot verify the URL",
            "set LEADTUI_META_LEADS_VERIFY_TOKEN or [meta] verify_token to the one in the app",
        )
    return Check(SOURCE, True, f"webhook: {url}, verify token set")


async def _live_check(cfg: GraphConfig, seconds: float) -> Check:
    async with graph.session(cfg) as http:
        try:
            answer = await asyncio.wait_for(graph.whoami(http, cfg), seconds)
        except TimeoutError:
            answer = Answer(0, message=f"{cfg.host} did not answer within {seconds:g} s")
    if answer.ok:
        page = one_line(str(answer.data.get("name") or answer.data.get("id") or "?"), 80)
        return Check(SOURCE, True, f"Page token works: {page}")
    fix = answer.fix() or f"check the internet connection and {cfg.host}"
    return Check(SOURCE, False, f"Page token check: {cfg.redact(answer.describe())}", fix)
