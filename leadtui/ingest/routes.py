"""The ingest's routes: the :data:`ROUTES` table, its handlers, and the app built from it.

Every route is one :class:`Route` row (method, path, handler, OpenAPI operation); the aiohttp
router and the OpenAPI document are both built by walking :data:`ROUTES`, so a route cannot
be served without being described, nor described without being served.

Every answer is deliberate: no traceback, no secret, and a request log without keys
(:func:`guard`). Every route that stores answers 503 with Retry-After when the database
refuses the write: nothing is acknowledged that is not committed. Writes go through the
group-commit :class:`~leadtui.ingest.writer.Writer`; reads run in a small thread pool, so
the event loop never waits on SQL.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

from aiohttp import web

from leadtui import parser
from leadtui.capture import HealthCallback, RawItem
from leadtui.config import Settings
from leadtui.formats.text import IST
from leadtui.formats.website_form import (
    FieldError,
    check_lead,
    field_error,
    is_iso_time,
    kept_as_json,
    lead_from_form,
    lead_from_json,
    without_lone_surrogates,
)
from leadtui.formats.whatsapp import Message, meta_messages, twilio_message
from leadtui.ingest import justdial, meta_leads, openapi
from leadtui.ingest.answers import (
    BODY_TIMEOUT,
    LEAD_LIMIT,
    MAX_LIST,
    WEBHOOK_LIMIT,
    HealthStatus,
    generic_detail,
    invalid,
    lead_answer,
    not_found,
    problem,
    too_large,
    unavailable,
)
from leadtui.ingest.auth import (
    Gate,
    idempotency_key,
    idempotency_key_problem,
    meta_handshake,
    meta_signed_body,
    public_url,
    secret_matches,
    twilio_valid,
)
from leadtui.ingest.bodies import ClientGone, SlowBody, TooLarge, Unreadable, read_body
from leadtui.ingest.connections import SERVER_HEADER
from leadtui.ingest.gmail import GMAIL_PREFIX, gmail_push
from leadtui.ingest.openapi import Method, Operation
from leadtui.ingest.writer import NotApplied, Writer
from leadtui.store import Health, Outcome, Store, StoreError

log = logging.getLogger("leadtui.ingest")  # one logger for the HTTP source, as before the split

WRITE_TIMEOUT = 30.0  # a request waits this long for its commit, then gets 503
PUSH_PREFIX = "/api/indiamart/push/"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_T = TypeVar("_T")


@dataclass
class Ingest:
    """What the handlers share: settings, the store to read, the writer, the API key gate."""

    settings: Settings
    store: Store
    writer: Writer
    readers: ThreadPoolExecutor
    gate: Gate = field(init=False)
    # The capture service's health callback: a channel's handlers say how it is doing (JustDial).
    report: HealthCallback | None = None

    def __post_init__(self) -> None:
        self.gate = Gate(self.settings)

    def app(self) -> web.Application:
        """The aiohttp application: one router entry per row of :data:`ROUTES`."""
        app = web.Application(client_max_size=LEAD_LIMIT, middlewares=[guard])
        for route in ROUTES:
            handler = functools.partial(route.handler, self)
            if route.method == "GET":
                app.router.add_get(route.path, handler)  # and HEAD, as aiohttp does for GET
            else:
                app.router.add_route(route.method, route.path, handler)
        return app

    async def commit(
        self, item: RawItem, *, early: bool, results: list[dict[str, Any]] | None = None
    ) -> Any:
        """Queue ``item`` for the writer; return once the commit its answer promises is done."""
        future = self.writer.submit(item, early=early, results=results)
        async with asyncio.timeout(WRITE_TIMEOUT):
            return await future

    async def read(self, read: Callable[[], _T]) -> _T:
        """Run a database read in the reader threads: the event loop never waits on SQL."""
        return await asyncio.get_running_loop().run_in_executor(self.readers, read)


# --------------------------------------------------------------------------- plumbing


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is deliberate: no traceback, no secret, and a log line without keys."""
    start = time.perf_counter()
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own answers: unknown URL, wrong method
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        response = problem(exc.status, generic_detail(exc.status), headers=headers)
    except TooLarge as exc:
        response = too_large(exc.limit)
    except Unreadable as exc:
        response = problem(exc.status, exc.detail)
        response.force_close()
    except ClientGone:
        # Nobody is there to read an answer; one short line, no traceback.
        log.debug(
            "ingest: %s %s: the client left before its body arrived",
            request.method,
            _log_path(request.path),
        )
        response = problem(400, "the connection closed before the body arrived")
        response.force_close()
    except SlowBody:
        response = problem(408, f"the body did not arrive within {BODY_TIMEOUT:.0f} s")
        response.force_close()
    except Exception:
        log.exception("ingest: %s %s failed", request.method, _log_path(request.path))
        response = problem(500, "the server failed to handle this request; it is logged")
    response.headers["Server"] = SERVER_HEADER  # not aiohttp's name and version
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s %s -> %d in %.1f ms",
            request.method,
            _log_path(request.path),
            response.status,
            (time.perf_counter() - start) * 1000,
        )
    return response


SECRET_PATHS: tuple[str, ...] = (PUSH_PREFIX, GMAIL_PREFIX, justdial.PREFIX)
"""Routes whose last path segment is a credential (a token in the URL): never logged."""


def _log_path(path: str) -> str:
    """The path for a log line: a token in the path is a credential and never logged."""
    for prefix in SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + "…"
    return path[:200]


# --------------------------------------------------------------------------- POST /api/leads


async def post_lead(ingest: Ingest, request: web.Request) -> web.Response:
    auth = await ingest.gate.authorise(request, "ingest")
    if isinstance(auth, web.Response):
        return auth
    idempotency = request.headers.get("Idempotency-Key")
    if idempotency is not None and (wrong := idempotency_key_problem(idempotency)):
        # Checked before the item joins a group commit: a value the database cannot hold
        # must not fail the other requests committed with it.
        return problem(
            400,
            f"the Idempotency-Key header {wrong}",
            errors=[field_error("Idempotency-Key", wrong, "header")],
        )
    if request.content_length is not None and request.content_length > LEAD_LIMIT:
        return too_large(LEAD_LIMIT)
    media = request.content_type
    results: list[dict[str, Any]] | None = None
    if media == "application/json" or media.endswith("+json"):
        try:
            body = await read_body(request, LEAD_LIMIT)
        except Unreadable as exc:
            if exc.status != 400 or not exc.raw:
                raise
            return await _refused(ingest, problem(400, exc.detail), exc.raw, auth)
        parsed = _lead_json(body)
        if isinstance(parsed, web.Response):
            return await _refused(ingest, parsed, body, auth)
        body, results = parsed
    elif media in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in {"", "identity"}:
            return problem(415, "send a form without a Content-Encoding")
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            return too_large(LEAD_LIMIT)
        except TimeoutError:
            raise SlowBody from None
        except ConnectionError:
            raise ClientGone from None
        except Exception:
            return problem(400, "the form could not be read (malformed encoding)")
        fields = [(k, v) for k, v in form.items() if isinstance(v, str)]
        lead, names = lead_from_form(fields)
        files = [k for k, v in form.items() if not isinstance(v, str)]
        original = {"content_type": media, "fields": fields, "files": files}
        body = kept_as_json(lead, original)
        errors = check_lead(lead, names)
        if errors:
            return await _refused(ingest, invalid(errors), body, auth)
    else:
        return problem(
            415,
            "send the lead as application/json, application/x-www-form-urlencoded "
            "or multipart/form-data",
            headers={
                "Accept-Post": "application/json, application/x-www-form-urlencoded, "
                "multipart/form-data"
            },
        )
    item = RawItem(
        body,
        source=f"http:{auth}",
        kind="json",
        channel="api",
        dedupe_key=idempotency_key(auth, idempotency),
    )
    try:
        outcome: Outcome = await ingest.commit(item, early=False, results=results)
        # A key seen before keeps its first request's item (nothing new is stored): the
        # same body is a replay, another body a client reusing the key for a new request.
        reused = item.dedupe_key is not None and await ingest.read(
            lambda: ingest.store.raw_body(outcome.raw_id) not in (None, body)
        )
    except NotApplied as exc:
        return unavailable(stored=exc.raw_id)
    except (StoreError, TimeoutError):
        return unavailable()
    if reused:
        answer = problem(
            422,
            "this Idempotency-Key was already used for a different request; "
            "send a new key with a new lead",
            errors=[
                field_error(
                    "Idempotency-Key", "was already used for a different request body", "header"
                )
            ],
        )
        # The other body is a lead all the same: kept for review, as every refused one is.
        return await _refused(ingest, answer, body, auth)
    return lead_answer(outcome)


def _lead_json(body: bytes) -> tuple[bytes, list[dict[str, Any]] | None] | web.Response:
    """The body to store, and its parse results when the writer must not parse it itself.

    A lead in the contract's field names is stored as sent. One in other names (Zapier's
    ``full_name``, ``phone_number``, a Facebook lead's ids and questions) is stored as the
    generic lead :func:`lead_from_json` reads from it, with the body as sent inside, as a
    form is: the pipeline, and a reparse, read the same lead.
    """
    try:
        sent = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return problem(400, "the body is not valid JSON (UTF-8)")
    # Half an emoji ("\ud83d" alone) cannot be stored: it becomes U+FFFD in the lead, while
    # the body is kept as sent.
    value = without_lone_surrogates(sent)
    if not isinstance(value, dict):
        return invalid([field_error("", "the body must be one JSON object (a lead)")])
    mapped = lead_from_json(value)
    lead, names = mapped if mapped is not None else (value, {})
    errors = check_lead(lead, names)
    if errors:
        return invalid(errors)
    results = parser.parse(lead, channel="api")
    if len(results) != 1 or results[0].get("kind") != "lead":
        detail = str(results[0].get("error") or "not a lead") if results else "not a lead"
        return invalid([field_error("", detail)])
    if mapped is not None:
        return kept_as_json(lead, sent), None  # the stored body reads as this lead
    return body, (results if value != sent else None)


async def _refused(
    ingest: Ingest, answer: web.Response, body: bytes, key_name: str
) -> web.Response:
    """``answer`` (400 or 422), after keeping the refused lead in the review queue.

    A form plugin's webhook does not retry: a typo in one field must not lose the buyer.
    The body is stored as a failed item with the reason (an identical one only once), where
    ``leadtui review`` and the TUI show it. The answer is the same whether or not that worked.
    """
    problem_body = json.loads(cast(bytes, answer.body))
    reason = f"refused with HTTP {answer.status}: " + (
        "; ".join(f"{e['field'] or 'body'}: {e['detail']}" for e in problem_body["errors"])
        if problem_body.get("errors")
        else str(problem_body["detail"])
    )

    if not body.strip():
        return answer  # nothing was sent, nothing to lose
    item = RawItem(body, source=f"http:{key_name}", kind="json", channel="api")
    try:  # through the writer: group-committed, and never parsed into a lead by mistake
        await ingest.commit(item, early=False, results=[{"kind": "error", "error": reason}])
    except Exception as exc:  # the caller still learns what was wrong with its lead
        log.warning("ingest: keeping a refused lead for review failed: %s", exc)
    return answer


# --------------------------------------------------------------------------- GET /api/leads


async def list_leads(ingest: Ingest, request: web.Request) -> web.Response:
    auth = await ingest.gate.authorise(request, "read")
    if isinstance(auth, web.Response):
        return auth
    errors: list[FieldError] = [
        field_error(name, "is not a parameter of this route (since, limit)", "query")
        for name in dict.fromkeys(request.query)
        if name not in {"since", "limit"}
    ]
    since_text = request.query.get("since", "").strip()
    limit_text = request.query.get("limit", "100").strip()
    limit = int(limit_text) if limit_text.isascii() and limit_text.isdigit() else 0
    if not 1 <= limit <= MAX_LIST:
        errors.append(field_error("limit", f"must be a whole number from 1 to {MAX_LIST}", "query"))
    cursor: int | None = None
    since_ts: float | None = None
    if not since_text:
        cursor = 0
    elif since_text.isascii() and since_text.isdigit() and len(since_text) < 19:
        cursor = int(since_text)
    elif is_iso_time(since_text):
        since_ts = datetime.fromisoformat(since_text).timestamp()
    else:
        plus = " (a + in the offset must be sent as %2B)" if " " in since_text else ""
        errors.append(
            field_error(
                "since",
                "must be a change cursor (a whole number from an earlier answer) or an "
                f"ISO-8601 time with a UTC offset{plus}",
                "query",
            )
        )
    if errors:
        return invalid(errors)
    store = ingest.store

    def read() -> dict[str, Any] | int:
        if cursor is not None and cursor > (latest := store.cursor()):
            return latest  # a cursor from another (replaced or restored) database
        start = cursor if cursor is not None else _cursor_at(store, since_ts or 0.0)
        changes = store.changes_since(start, limit)
        return {
            "cursor": changes.cursor,
            "more": changes.more,
            "leads": store.with_messages(changes.leads),
        }

    try:
        answer = await ingest.read(read)
    except StoreError:
        return unavailable()
    if isinstance(answer, int):
        detail = (
            f"is ahead of this database's latest change ({answer}): the database was "
            "replaced or restored; start again from 0"
        )
        return invalid([field_error("since", detail, "query")])
    return web.json_response(answer)


def _cursor_at(store: Store, since_ts: float) -> int:
    """The change cursor at a time: the feed after it starts with the first lead changed
    (arrived, merged, triaged) at or after ``since_ts``. Runs in a reader thread.

    Leads take change values in commit order with their ``updated_ts``, so the feed is in
    time order too; a binary search over it costs a few indexed reads of one lead each.
    """
    lo, hi = 0, store.cursor()  # every lead up to lo changed before since_ts
    while lo < hi:
        mid = (lo + hi) // 2
        first = store.changes_since(mid, 1).leads  # the next change value's leads
        if not first or max(x.updated_ts for x in first) >= since_ts:
            hi = mid
        else:
            lo = first[0].seq
    return lo


# --------------------------------------------------------------------------- IndiaMART push


async def indiamart_push(ingest: Ingest, request: web.Request) -> web.Response:
    refused = ingest.gate.throttled(request)
    if refused is not None:
        return refused
    presented = request.match_info.get("token", "")
    if not secret_matches(presented, ingest.settings.push_token.reveal()):
        ingest.gate.failed(request)
        return not_found()
    try:
        body = await read_body(request, WEBHOOK_LIMIT)
    except Unreadable as exc:
        if not exc.raw:
            raise
        body = exc.raw  # kept as it came (the review queue shows it): the 200 still holds
    try:
        await ingest.commit(RawItem(body, source="push", kind="json", channel="push"), early=True)
    except (StoreError, TimeoutError):
        return unavailable()  # not stored: IndiaMART must retry
    return web.json_response({"code": 200, "status": "received"})


# --------------------------------------------------------------------------- WhatsApp


def _message_item(message: Message, source: str) -> RawItem:
    lead, dedupe = message
    return RawItem(kept_as_json(lead), source=source, kind="json", channel="api", dedupe_key=dedupe)


async def twilio(ingest: Ingest, request: web.Request) -> web.Response:
    token = ingest.settings.twilio_auth_token.reveal()
    if not token:
        return not_found()
    refused = ingest.gate.throttled(request)
    if refused is not None:
        return refused
    if request.content_type != "application/x-www-form-urlencoded":
        return problem(415, "Twilio posts application/x-www-form-urlencoded")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature.strip():  # refused before its body is read
        ingest.gate.failed(request)
        return problem(403, "the X-Twilio-Signature header is missing")
    body = await read_body(request, LEAD_LIMIT)
    try:
        params = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        params = None
    url = public_url(ingest.settings, request)
    if params is None or not twilio_valid(token, url, params, signature):
        ingest.gate.failed(request)
        return problem(403, "the X-Twilio-Signature does not match this request")
    message = twilio_message(dict(reversed(params)))
    if message is not None:
        try:
            await ingest.commit(_message_item(message, "whatsapp:twilio"), early=True)
        except (StoreError, TimeoutError):
            return unavailable()
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


async def meta_verify(ingest: Ingest, request: web.Request) -> web.Response:
    return meta_handshake(ingest.gate, request, ingest.settings.meta_verify_token.reveal())


async def meta(ingest: Ingest, request: web.Request) -> web.Response:
    body = await meta_signed_body(ingest.gate, request, ingest.settings.meta_app_secret.reveal())
    if isinstance(body, web.Response):
        return body
    try:
        payload: object = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        payload = None
    messages = meta_messages(payload)
    if messages is None:  # signed by Meta but not understood: keep it for review
        items = [RawItem(body, source="whatsapp:meta", kind="json", channel="api")]
    else:
        items = [_message_item(message, "whatsapp:meta") for message in messages]
    try:
        await asyncio.gather(*(ingest.commit(item, early=True) for item in items))
    except (StoreError, TimeoutError):
        return unavailable()
    return web.json_response({"status": "received", "messages": len(messages or [])})


# --------------------------------------------------------------------------- health, schema


async def healthz(ingest: Ingest, request: web.Request) -> web.Response:
    store = ingest.store

    def read() -> list[Health]:
        store.cursor()  # the database answers
        return store.health()

    try:
        sources = await ingest.read(read)
    except Exception as exc:
        log.warning("ingest: health check: the database does not answer: %s", exc)
        down: HealthStatus = "unavailable"
        return web.json_response(
            {"status": down, "database": "unavailable", "failing": [], "sources": []},
            status=503,
        )
    failing = [h.source for h in sources if h.failing]
    # Degraded is still 200: the ingest takes leads, so keep routing them here.
    status: HealthStatus = "degraded" if failing else "ok"
    return web.json_response(
        {
            "status": status,
            "database": "ok",
            "failing": failing,
            "sources": [
                {
                    "source": h.source,
                    "state": h.state,
                    "updated_at": datetime.fromtimestamp(h.updated_ts, IST).isoformat(
                        timespec="seconds"
                    )
                    if h.updated_ts
                    else None,
                }
                for h in sources
            ],
        }
    )


async def openapi_json(ingest: Ingest, request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route (served at ``/api/openapi.json``)."""
    return openapi.document(ROUTES)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True)
class Route:
    """One route: the router serves ``handler`` at it, the document describes it by ``operation``."""

    method: Method
    path: str
    handler: Callable[[Ingest, web.Request], Awaitable[web.StreamResponse]]
    operation: Operation


ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/leads", post_lead, openapi.ADD_LEAD),
    Route("GET", "/api/leads", list_leads, openapi.LIST_LEADS),
    Route("POST", PUSH_PREFIX + "{token}", indiamart_push, openapi.INDIAMART_PUSH),
    Route("POST", "/api/whatsapp/twilio", twilio, openapi.WHATSAPP_TWILIO),
    Route("GET", justdial.PREFIX + "{token}", justdial.receive, openapi.JUSTDIAL_GET),
    Route("POST", justdial.PREFIX + "{token}", justdial.receive, openapi.JUSTDIAL_POST),
    Route("GET", "/api/whatsapp/meta", meta_verify, openapi.WHATSAPP_META_VERIFY),
    Route("POST", "/api/whatsapp/meta", meta, openapi.WHATSAPP_META),
    Route("GET", meta_leads.PATH, meta_leads.leadgen_verify, openapi.META_LEADGEN_VERIFY),
    Route("POST", meta_leads.PATH, meta_leads.leadgen, openapi.META_LEADGEN),
    Route("POST", GMAIL_PREFIX + "{token}", gmail_push, openapi.GMAIL_PUSH),
    Route("GET", "/healthz", healthz, openapi.HEALTH),
    Route("GET", "/api/openapi.json", openapi_json, openapi.OPENAPI),
)
openapi.check_routes(ROUTES)  # a route without its operation, or the reverse, fails at import
