"""JustDial's lead push: ``GET`` or ``POST /api/justdial/{token}``.

JustDial calls the URL the seller registered with the lead in the query string (some accounts
``POST`` the same names, as a form or as JSON; see :mod:`leadtui.formats.justdial`). As for
IndiaMART's push, the only credential is the unguessable token in the path: compared in
constant time, a wrong one is 404 like any unknown URL (and counted against the address by the
:class:`~leadtui.ingest.auth.Gate`), and the path is never logged (``SECRET_PATHS``). A
JustDial that is not configured, or whose token is too short to be safe, is 404 too.

Every request that reaches the right URL is committed as a raw item before the answer: the
fields read and the request as it came (:func:`leadtui.formats.justdial.kept`), deduplicated
by ``justdial:<leadid>``, so a lead JustDial sends again adds nothing. A request that is not a
lead (no leadid, nobody to call, a body that is not a form or JSON, values no person typed)
waits in the review queue with its raw kept, and the answer is the same plain ``RECEIVED``
the public receivers give: JustDial has nothing to fix, and a refusal buys nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from leadtui.capture import RawItem
from leadtui.config import Settings
from leadtui.formats import justdial as payload
from leadtui.ingest.answers import WEBHOOK_LIMIT, unavailable
from leadtui.ingest.bodies import Unreadable, read_body
from leadtui.ingest.checks import PUSH_TOKEN_MIN
from leadtui.ingest.writer import NotApplied
from leadtui.store import Health, Outcome, StoreError

if TYPE_CHECKING:
    from leadtui.ingest.routes import Ingest

log = logging.getLogger("leadtui.ingest")

PREFIX = "/api/justdial/"
RECEIVED = "RECEIVED"  # what the public receivers answer JustDial
HEALTH_SOURCE = "justdial"
MAX_FIELDS = 500  # name=value pairs read from one query string or form

Fields = list[tuple[str, Any]]


def token(settings: Settings) -> str:
    """The token JustDial's URL carries, or "" when JustDial is off here: unset, or shorter
    than :data:`PUSH_TOKEN_MIN` (``leadtui serve`` refuses such a token; the TUI leaves the
    channel off and says why)."""
    value = settings.justdial_token.reveal()
    return value if len(value) >= PUSH_TOKEN_MIN else ""


async def receive(ingest: Ingest, request: web.Request) -> web.Response:
    refused = ingest.gate.path_token(request, token(ingest.settings))
    if refused is not None:
        return refused
    fields, meta, why = await _read(request)
    if not fields and not why:
        return _received()  # a bare call (JustDial checking the URL, a browser): nothing to keep
    item = RawItem(
        payload.kept(fields, meta, why),
        source=HEALTH_SOURCE,
        kind="json",
        channel="push",
        dedupe_key=payload.dedupe_key(fields),
    )
    try:
        outcome: Outcome = await ingest.commit(item, early=False)
    except NotApplied:
        return _received()  # the raw item is committed; the capture finishes its lead
    except (StoreError, TimeoutError):
        return unavailable()  # nothing stored: JustDial must send it again
    _report(ingest, outcome)
    return _received()


def _received() -> web.Response:
    return web.Response(text=RECEIVED, content_type="text/plain")


async def _read(request: web.Request) -> tuple[Fields | None, dict[str, Any], str]:
    """The fields of one request, the request as it came (for the raw item), and why no
    fields could be read from a body that was sent ("" when they could)."""
    query: Fields = list(request.query.items())[:MAX_FIELDS]
    meta: dict[str, Any] = {"method": request.method}
    if request.rel_url.raw_query_string:
        meta["query"] = request.rel_url.raw_query_string
    if request.method in {"GET", "HEAD"}:
        return query, meta, ""
    try:
        body = await read_body(request, WEBHOOK_LIMIT)
    except Unreadable as exc:
        if not exc.raw:
            raise
        meta.update(payload.body_text(exc.raw))
        return None, meta, exc.detail  # kept as it came: the review queue shows it
    if not body.strip():
        return query, meta, ""
    meta["content_type"] = request.content_type
    meta.update(payload.body_text(body))
    sent, why = _body_fields(request.content_type, body)
    if sent is None:
        return None, meta, why
    return sent + query, meta, ""  # the body's value of a name wins over the query's


def _body_fields(media: str, body: bytes) -> tuple[Fields | None, str]:
    """A POST body's fields: JSON (one object) or a urlencoded form, whatever it is labelled."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"the body is not UTF-8 text (byte {exc.start})"
    if media == "multipart/form-data":
        return None, "a multipart body, which JustDial does not send"
    if media == "application/json" or media.endswith("+json") or text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None, "the body is not valid JSON"
        if not isinstance(value, dict):
            return None, f"the JSON body is a {type(value).__name__}, not one object of fields"
        return list(value.items())[:MAX_FIELDS], ""
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS), ""
    except ValueError:
        return None, f"the body is neither JSON nor a form (more than {MAX_FIELDS} fields?)"


def _report(ingest: Ingest, outcome: Outcome) -> None:
    """Tell the header and /healthz what the last request did: a new lead, or review.

    A repeat changes nothing. The health write runs in a reader thread, after the answer's
    commit and without holding up the answer.
    """
    report = ingest.report
    if report is None:
        return
    if outcome.status == "new":
        health = Health(HEALTH_SOURCE, "receiving", "last lead", last_success_ts=time.time())
    elif outcome.status == "failed":
        health = Health(
            HEALTH_SOURCE,
            "review",
            "the last request went to the review queue (leadtui review)",
            last_error=outcome.detail[:200],
        )
    else:
        return

    def write() -> None:
        try:
            report(health)
        except Exception as exc:  # health is a courtesy: it never fails a request
            log.warning("ingest: recording JustDial's health failed: %s", exc)

    asyncio.get_running_loop().run_in_executor(ingest.readers, write)
