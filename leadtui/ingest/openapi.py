"""The OpenAPI 3.1 document of the ingest, generated from the routes.

Each route in :data:`leadtui.ingest.routes.ROUTES` carries its :class:`Operation` (a route
cannot be written without one), and :func:`document` walks the routes to build ``paths``, so
the document describes exactly the routes the server has. :func:`check_routes` (run when the
routes module is imported, and by the tests) refuses an operation that no route serves, one
served twice, and two routes on one method and path.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

from leadtui.formats.justdial import FIELDS as JUSTDIAL_FIELDS
from leadtui.formats.website_form import INPUT_FIELDS, REQUIRED_ONE_OF, FieldPlace
from leadtui.ingest.answers import (
    HEALTH_STATUSES,
    IDEMPOTENCY_KEY_MAX,
    LEAD_STATUSES,
    MAX_LIST,
    PROBLEM_JSON,
)
from leadtui.store import FAILING_STATES

Method = Literal["GET", "POST"]
Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Operation:
    """What the OpenAPI document says of one route, but its method and path (the route's)."""

    operation_id: str
    summary: str
    responses: Mapping[str, Schema]
    api_key: bool = False  # the route needs x-api-key
    parameters: Sequence[Schema] = ()
    request_body: Schema | None = None

    def schema(self) -> Schema:
        """The OpenAPI operation object."""
        out: Schema = {"operationId": self.operation_id, "summary": self.summary}
        if self.api_key:
            out["security"] = [{"apiKey": []}]
        if self.parameters:
            out["parameters"] = [dict(p) for p in self.parameters]
        if self.request_body is not None:
            out["requestBody"] = self.request_body
        out["responses"] = dict(self.responses)
        return out


class RouteLike(Protocol):
    """What the document needs of a route (:class:`leadtui.ingest.routes.Route` has it)."""

    @property
    def method(self) -> Method: ...
    @property
    def path(self) -> str: ...
    @property
    def operation(self) -> Operation: ...


class RouteSchemaMismatch(RuntimeError):
    """The routes and the operations they are documented by do not match one to one."""


# --------------------------------------------------------------------------- building blocks


def _text(description: str = "") -> Schema:
    schema: Schema = {"type": ["string", "number", "null"]}
    if description:
        schema["description"] = description
    return schema


def _problem(description: str, *, retry: bool = False) -> Schema:
    response: Schema = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if retry:
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}
        }
    return response


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str, where: FieldPlace | Literal["path"], *, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required, "schema": {"type": "string"}}


_NOT_FOUND = _problem("unknown URL, wrong token, or this channel is not configured")
_NO_KEY = _problem("no valid x-api-key")
_OVER_RATE = _problem(
    "this key is over its rate, or this address sent too many wrong keys, tokens or signatures",
    retry=True,
)
_GUESSING = _problem(
    "this address sent too many wrong keys, tokens or signatures; retry later", retry=True
)
_DATABASE_DOWN = _problem("the database is unavailable", retry=True)
_NULLABLE_TEXT: Schema = {"type": ["string", "null"]}


def _webhook_responses(ok: Schema, *, limit: str, signed: bool, **more: Schema) -> Schema:
    """A webhook's answers: stored, or a bad signature, no such channel, too large, no database."""
    return {
        "200": ok,
        **({"403": _problem("the signature does not match")} if signed else {}),
        "400": _problem("the body could not be read (a broken chunked or gzip stream)"),
        "404": _NOT_FOUND,
        "413": _problem(f"the body is larger than {limit}"),
        "415": _problem("a Content-Encoding other than gzip or deflate"),
        "429": _GUESSING,
        **more,
        "503": _DATABASE_DOWN,
    }


def _body(media: str, schema: Schema) -> Schema:
    return {"required": True, "content": {media: {"schema": schema}}}


_LEAD_FIELD_NOTES = {
    "source": "indiamart, tradeindia, website, whatsapp, facebook, justdial or other (default other; "
    "facebook for a body with Facebook's leadgen_id, ad_id or form_id)",
    "phone": "any common Indian or international form; stored as E.164",
    "email": "stored lower-cased",
    "received_at": "ISO-8601 with a UTC offset; default: when leadtui received it",
    "pincode": "6 digits",
    "country": "ISO 3166 alpha-2 code or an English country name",
    "message": "free text; line breaks are kept",
    "external_id": "your system's id for the lead: the same id is the same lead",
}


def _lead_in_schema() -> Schema:
    props: Schema = {}
    for name in INPUT_FIELDS:
        if name == "specs":
            props[name] = {
                "type": ["object", "null"],
                "additionalProperties": {"type": ["string", "number"]},
                "description": "other label: value pairs of the requirement",
            }
        elif name == "verified":
            props[name] = {
                "type": ["array", "null"],
                "items": {"enum": ["phone", "email", "gst"]},
            }
        elif name == "call_duration":
            props[name] = {"type": ["integer", "string", "null"], "description": "seconds"}
        else:
            props[name] = _text(_LEAD_FIELD_NOTES.get(name, ""))
    return {
        "type": "object",
        "properties": props,
        "anyOf": [{"required": [k]} for k in REQUIRED_ONE_OF],
        "description": "FORMATS 8: at least one of name, phone or email. Other field names "
        "get the form aliases (full_name, phone_number, comments, …); a question about the "
        "product is the product when none is given; every other field is kept in specs under a "
        "readable label. Facebook lead ads (as Zapier sends them, or with field_data): "
        "leadgen_id is the external_id, created_time the received_at.",
    }


def _string_fields(names: Iterable[str]) -> Schema:
    return {name: {"type": "string"} for name in names}


_FORM_SCHEMA: Schema = {
    "type": "object",
    "properties": _string_fields(
        (
            "name",
            "full_name",
            "first_name",
            "last_name",
            "phone",
            "mobile",
            "tel",
            "email",
            "company",
            "city",
            "product",
            "interest",
            "message",
            "comments",
        )
    ),
    "additionalProperties": {"type": "string"},
    "description": "A website form. Field names are matched case-insensitively with "
    "aliases (full_name, mobile, tel, comments, interest, …); unknown fields are kept in "
    "specs; captcha and CSRF fields are dropped.",
}

# --------------------------------------------------------------------------- the operations

ADD_LEAD = Operation(
    "addLead",
    "Add one lead (JSON with the contract's field names, or a form)",
    api_key=True,
    parameters=(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
            "description": "a replay with the same key and body answers 200 with the first "
            "request's lead, and stores nothing new; the same key with a different body is 422 "
            "(keys are per API key)",
        },
    ),
    request_body={
        "required": True,
        "content": {
            "application/json": {"schema": _lead_in_schema()},
            "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
            "multipart/form-data": {"schema": _FORM_SCHEMA},
        },
    },
    responses={
        "201": _json("a new lead; the answer names it", _ref("Accepted")),
        "200": _json(
            "a lead already known (an Idempotency-Key replay, an identical body, or the same "
            "enquiry by leadtui's dedupe keys; a WhatsApp lead from a known phone is appended "
            "to that buyer's lead)",
            _ref("Accepted"),
        ),
        "202": _json(
            "kept, but it went to the review queue instead of the table", _ref("Accepted")
        ),
        "400": _problem(
            "the body is not JSON or not a readable form, or the Idempotency-Key is longer "
            f"than {IDEMPOTENCY_KEY_MAX} characters or not printable ASCII"
        ),
        "401": _NO_KEY,
        "403": _problem("this API key may not add leads (its scopes)"),
        "413": _problem("the body is larger than 64 KiB"),
        "415": _problem(
            "not JSON, urlencoded or multipart form data, or a Content-Encoding other than "
            "gzip or deflate"
        ),
        "422": _problem(
            "invalid fields, each named in errors (the lead is kept in the review queue); or "
            "the Idempotency-Key was already used for a different request body"
        ),
        "429": _OVER_RATE,
        "503": _problem(
            "the database is unavailable: nothing was stored, or (the detail says so) the "
            "request was stored but its lead not made yet; retry either way",
            retry=True,
        ),
    },
)

LIST_LEADS = Operation(
    "listLeads",
    "Leads changed after a cursor or since a time",
    api_key=True,
    parameters=(
        {
            **_param("since", "query"),
            "description": "a change cursor (0 or absent: from the start; then the cursor of "
            "the last answer), or an ISO-8601 time with a UTC offset (the leads that arrived "
            "or changed since then)",
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST},
        },
    ),
    responses={
        "200": _json(
            "leads in change order, oldest change first; follow the cursor for the rest",
            _ref("LeadList"),
        ),
        "401": _NO_KEY,
        "403": _problem("this API key may not read leads (create one with --read)"),
        "422": _problem("since or limit is invalid"),
        "429": _OVER_RATE,
        "503": _DATABASE_DOWN,
    },
)

INDIAMART_PUSH = Operation(
    "indiamartPush",
    "IndiaMART's push API; the token is the credential",
    parameters=(_param("token", "path", required=True),),
    request_body={
        "required": False,
        "content": {"application/json": {"schema": {}}},
        "description": "any body: it is stored, then parsed; what cannot be parsed goes to the "
        "review queue",
    },
    responses=_webhook_responses(
        _json("stored (also a duplicate or an unparseable body)", _ref("Received")),
        limit="1 MiB",
        signed=False,
    ),
)

GMAIL_PUSH = Operation(
    "gmailPush",
    "Gmail push notifications through a Cloud Pub/Sub push subscription; the token is the "
    "credential",
    parameters=(_param("token", "path", required=True),),
    request_body={
        "required": False,
        "content": {"application/json": {"schema": {}}},
        "description": "Pub/Sub's push envelope: message.data is base64 of Gmail's "
        '{"emailAddress", "historyId"}. The historyId is recorded and the Gmail source woken; '
        "the mail is then read from the Gmail API",
    },
    responses=_webhook_responses(
        _json("the wake-up is recorded (also for an unreadable body)", _ref("Received")),
        limit="1 MiB",
        signed=False,
    ),
)

WHATSAPP_TWILIO = Operation(
    "whatsappTwilio",
    "WhatsApp messages via Twilio",
    parameters=(_param("X-Twilio-Signature", "header", required=True),),
    request_body=_body(
        "application/x-www-form-urlencoded",
        {
            "type": "object",
            "properties": _string_fields(("From", "Body", "ProfileName", "WaId", "MessageSid")),
            "additionalProperties": {"type": "string"},
        },
    ),
    responses=_webhook_responses(
        {
            "description": "stored; an empty TwiML answer",
            "content": {"text/xml": {"schema": {"type": "string"}}},
        },
        limit="64 KiB",
        signed=True,
        **{"415": _problem("not a urlencoded form")},
    ),
)

_JUSTDIAL_RECEIVED: Schema = {
    "description": "RECEIVED: stored (also a repeat of a leadid, or a request that went to the "
    "review queue), or a call with no fields at all (nothing to store)",
    "content": {"text/plain": {"schema": {"const": "RECEIVED"}}},
}
_JUSTDIAL_NOTE = (
    "JustDial's lead push (field names from public integrations, not vendor documentation); "
    "the token is the credential"
)

JUSTDIAL_GET = Operation(
    "justdialGet",
    _JUSTDIAL_NOTE + "; the lead in the query string",
    parameters=(
        _param("token", "path", required=True),
        *(_param(name, "query") for name in JUSTDIAL_FIELDS),
    ),
    responses={
        "200": _JUSTDIAL_RECEIVED,
        "404": _NOT_FOUND,
        "429": _GUESSING,
        "503": _DATABASE_DOWN,
    },
)

JUSTDIAL_POST = Operation(
    "justdialPost",
    _JUSTDIAL_NOTE + "; the same fields as a form or a JSON object",
    parameters=(_param("token", "path", required=True),),
    request_body={
        "required": False,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "properties": _string_fields(JUSTDIAL_FIELDS),
                    "additionalProperties": True,
                }
            }
            for media in ("application/x-www-form-urlencoded", "application/json")
        },
        "description": "unknown fields are kept in the lead's specs; a body that is not a lead "
        "is stored for the review queue",
    },
    responses=_webhook_responses(_JUSTDIAL_RECEIVED, limit="1 MiB", signed=False),
)

WHATSAPP_META_VERIFY = Operation(
    "whatsappMetaVerify",
    "Meta's webhook verification handshake",
    parameters=tuple(_param(n, "query") for n in ("hub.mode", "hub.verify_token", "hub.challenge")),
    responses={
        "200": {
            "description": "the challenge, echoed",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        "403": _problem("the verify token does not match"),
        "404": _NOT_FOUND,
        "429": _GUESSING,
    },
)

WHATSAPP_META = Operation(
    "whatsappMeta",
    "WhatsApp Cloud API messages",
    parameters=(_param("X-Hub-Signature-256", "header", required=True),),
    request_body=_body("application/json", {"type": "object"}),
    responses=_webhook_responses(_json("stored", _ref("Received")), limit="1 MiB", signed=True),
)

META_LEADGEN_VERIFY = Operation(
    "metaLeadgenVerify",
    "Meta's webhook verification handshake for Facebook and Instagram lead ads",
    parameters=tuple(_param(n, "query") for n in ("hub.mode", "hub.verify_token", "hub.challenge")),
    responses=WHATSAPP_META_VERIFY.responses,
)

META_LEADGEN = Operation(
    "metaLeadgen",
    "Facebook and Instagram lead ads notifications (leadgen); each lead is then fetched from "
    "the Graph API",
    parameters=(_param("X-Hub-Signature-256", "header", required=True),),
    request_body=_body("application/json", {"type": "object"}),
    responses=_webhook_responses(_json("stored", _ref("Received")), limit="1 MiB", signed=True),
)

HEALTH = Operation(
    "health",
    "Database and capture sources (no key needed, no secrets shown)",
    responses={
        "200": _json(
            "ok, or degraded: a capture source is failing (named in failing) while the database "
            "and this ingest work",
            _ref("Health"),
        ),
        "503": _json("database unavailable", _ref("Health")),
    },
)

OPENAPI = Operation(
    "openapi",
    "This document",
    responses={"200": _json("OpenAPI 3.1", {"type": "object"})},
)

# Every operation the document may describe; check_routes holds the routes to exactly these.
OPERATIONS: tuple[Operation, ...] = (
    ADD_LEAD,
    LIST_LEADS,
    INDIAMART_PUSH,
    GMAIL_PUSH,
    WHATSAPP_TWILIO,
    JUSTDIAL_GET,
    JUSTDIAL_POST,
    WHATSAPP_META_VERIFY,
    WHATSAPP_META,
    META_LEADGEN_VERIFY,
    META_LEADGEN,
    HEALTH,
    OPENAPI,
)

# --------------------------------------------------------------------------- components


def _lead_out_schema() -> Schema:
    props: Schema = {
        "id": {"type": "integer"},
        **{
            f: _NULLABLE_TEXT
            for f in INPUT_FIELDS
            if f not in {"specs", "verified", "call_duration"}
        },
        "channel": {"type": "string"},
        "specs": {"type": "object", "additionalProperties": {"type": "string"}},
        "verified": {"type": "array", "items": {"type": "string"}},
        "call_duration": {"type": ["integer", "null"]},
        "status": {"type": "string"},
        "owner": _NULLABLE_TEXT,
        "follow_up": _NULLABLE_TEXT,
        "follow_up_at": _NULLABLE_TEXT,
        "first_seen_at": _NULLABLE_TEXT,
        "updated_at": _NULLABLE_TEXT,
        "contacted_at": _NULLABLE_TEXT,
        "contacted_by": _NULLABLE_TEXT,
        "enquiry_no": {"type": "integer"},
        "missed_by_email": {"type": "boolean"},
        "notes": {"type": "integer"},
        "unread": {
            "type": "integer",
            "description": "the buyer's messages nobody has opened the lead to read yet",
        },
        "messages": {
            "type": "array",
            "description": "the buyer's later messages (replies, WhatsApp follow-ups), oldest first",
            "items": {
                "type": "object",
                "required": ["at", "text"],
                "properties": {"at": _NULLABLE_TEXT, "text": {"type": "string"}},
            },
        },
    }
    return {
        "type": "object",
        "required": ["id", "source", "channel", "received_at", "status"],
        "properties": props,
    }


def _components() -> Schema:
    return {
        "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
        "schemas": {
            "Accepted": {
                "type": "object",
                "required": ["id", "status", "item"],
                "properties": {
                    "id": {"type": ["integer", "null"], "description": "the lead's id"},
                    "status": {"enum": list(LEAD_STATUSES)},
                    "item": {"type": "integer", "description": "the stored raw item"},
                },
            },
            "Received": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "received"}},
            },
            "Lead": _lead_out_schema(),
            "LeadList": {
                "type": "object",
                "required": ["cursor", "more", "leads"],
                "properties": {
                    "cursor": {"type": "integer", "description": "pass as since next time"},
                    "more": {"type": "boolean", "description": "ask again: there may be more"},
                    "leads": {"type": "array", "items": _ref("Lead")},
                },
            },
            "Health": {
                "type": "object",
                "required": ["status", "database", "failing", "sources"],
                "properties": {
                    "status": {"enum": list(HEALTH_STATUSES)},
                    "database": {"enum": ["ok", "unavailable"]},
                    "failing": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "the sources that are not capturing (state "
                        + ", ".join(sorted(FAILING_STATES))
                        + "); not empty when status is degraded",
                    },
                    "sources": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["source", "state"],
                            "properties": {
                                "source": {"type": "string"},
                                "state": {"type": "string"},
                                "updated_at": _NULLABLE_TEXT,
                            },
                        },
                    },
                },
            },
            "Problem": {
                "type": "object",
                "description": "RFC 9457 problem details",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "in", "pointer", "detail"],
                            "properties": {
                                "field": {"type": "string"},
                                "in": {"enum": list(get_args(FieldPlace))},
                                "pointer": {"type": "string"},
                                "detail": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    }


# --------------------------------------------------------------------------- the document


def check_routes(routes: Iterable[RouteLike]) -> None:
    """Raise :class:`RouteSchemaMismatch` unless routes and :data:`OPERATIONS` match one to one."""
    routes = list(routes)
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for route in routes:
        where = (route.method, route.path)
        if where in seen:
            problems.append(f"{route.method} {route.path} is routed twice")
        seen[where] = route.operation.operation_id
        if not any(route.operation is op for op in OPERATIONS):
            problems.append(
                f"{route.method} {route.path}: operation {route.operation.operation_id!r} "
                "is not in OPERATIONS"
            )
    for op in OPERATIONS:
        served = sum(route.operation is op for route in routes)
        if served != 1:
            problems.append(f"operation {op.operation_id!r} is served by {served} routes, not 1")
    ids = [op.operation_id for op in OPERATIONS]
    problems += [
        f"operationId {i!r} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})
    ]
    if problems:
        raise RouteSchemaMismatch("; ".join(problems))


def document(routes: Iterable[RouteLike]) -> Schema:
    """The OpenAPI 3.1 description of ``routes`` (served at ``/api/openapi.json``)."""
    paths: dict[str, dict[str, Schema]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = route.operation.schema()
    paths = copy.deepcopy(paths)  # the operations share their pieces; the caller may not
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "leadtui ingest",
            "version": "1",
            "description": "Adds leads from websites, WhatsApp, IndiaMART push and JustDial to leadtui. "
            "A 2xx answer means the request's body is committed to the database.",
        },
        "paths": paths,
        "components": _components(),
    }
