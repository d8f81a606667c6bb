"""The ingest's answers: RFC 9457 problem+json, the lead answer, and the limits they state.

Every answer a client can get is built here, so its wording, status and headers are the same
from every route, and the OpenAPI document (:mod:`leadtui.ingest.openapi`) can promise them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Literal, get_args

from aiohttp import web

from leadtui.formats.website_form import FieldError
from leadtui.store import Outcome

LEAD_LIMIT = 64 * 1024  # POST /api/leads and Twilio forms
WEBHOOK_LIMIT = 1024 * 1024  # IndiaMART push and Meta: kept for review rather than refused
BODY_TIMEOUT = 30.0  # a client gets this long to send its body (then 408)
IDEMPOTENCY_KEY_MAX = 200  # characters of an Idempotency-Key header
MAX_LIST = 1000  # leads in one answer of GET /api/leads
RETRY_AFTER = "5"  # seconds a client waits when the database is not available

PROBLEM_JSON = "application/problem+json"

# What POST /api/leads says happened to the lead (the "status" of its answer).
LeadStatus = Literal["created", "duplicate", "appended", "review"]
LEAD_STATUSES: tuple[LeadStatus, ...] = get_args(LeadStatus)
# What GET /healthz says of the ingest as a whole.
HealthStatus = Literal["ok", "degraded", "unavailable"]
HEALTH_STATUSES: tuple[HealthStatus, ...] = get_args(HealthStatus)


def problem(
    status: int,
    detail: str,
    *,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An RFC 9457 problem answer. ``errors`` names each invalid field (``pointer``, ``detail``)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = list(errors)
    return web.json_response(body, status=status, headers=headers, content_type=PROBLEM_JSON)


def invalid(errors: list[FieldError]) -> web.Response:
    """422 naming every invalid field."""
    fields = ", ".join(e["field"] or "(body)" for e in errors)
    return problem(422, f"invalid: {fields}", errors=errors)


def too_large(limit: int = LEAD_LIMIT) -> web.Response:
    """413 naming the route's own limit."""
    response = problem(413, f"the body is larger than {size(limit)}; send at most that")
    response.force_close()
    return response


def size(limit: int) -> str:
    """``64 KiB``, ``1 MiB``: a limit as people write it."""
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit // 1024} KiB"


def unavailable(stored: int | None = None) -> web.Response:
    """503: the database refused the write. ``stored``: the raw item was committed after all
    (it is safe), only its lead could not be made; a retry of the same request finishes it."""
    if stored is not None:
        detail = (
            f"the request was stored (item {stored}) but its lead could not be made: the "
            "database refused the write; retry the same request to finish it"
        )
    else:
        detail = "the database is not available; the item was not accepted, retry"
    return problem(503, detail, headers={"Retry-After": RETRY_AFTER})


def not_found() -> web.Response:
    """404, the same for an unknown URL, a wrong token and a channel that is not configured."""
    return problem(404, generic_detail(404))


def generic_detail(status: int) -> str:
    if status == 404:
        return "no such resource"
    if status == 405:
        return "this method is not allowed here; see the Allow header"
    return HTTPStatus(status).description or HTTPStatus(status).phrase


def lead_status(outcome: Outcome) -> tuple[LeadStatus, int]:
    """What POST /api/leads answers for what the store did: the status word and HTTP code."""
    if outcome.status == "new":
        return "created", 201
    if outcome.status in {"duplicate", "updated"}:
        return "duplicate", 200
    if outcome.status == "reply":
        return "appended", 200
    return "review", 202  # failed or ignored: kept in the review queue


def lead_answer(outcome: Outcome) -> web.Response:
    lead_id = outcome.lead_ids[0] if outcome.lead_ids else None
    status, code = lead_status(outcome)
    body: dict[str, Any] = {"id": lead_id, "status": status, "item": outcome.raw_id}
    return web.json_response(body, status=code)
