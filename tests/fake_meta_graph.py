"""A local Graph API for lead ads, over real HTTP on loopback, following Meta's documented shapes.

- ``GET /v{N}/{leadgen_id}?fields=…&access_token=…`` → the lead with the fields asked for
  (``id`` always), ``created_time`` as Meta writes it (``2026-12-05T04:30:00+0000``); an unknown id
  is HTTP 400 with error code 100, subcode 33 ("Unsupported get request …"), and so is the
  listing of a form in ``unknown_forms``.
- ``GET /v{N}/{form_id}/leads?filtering=[{"field":"time_created","operator":"GREATER_THAN",
  "value":UNIX}]&fields=…&limit=…`` → ``{"data": […], "paging": {"cursors": {"before", "after"},
  "next": …}}``, newest first, at most ``page_size`` a page; ``next`` carries the query and the
  access token, as Meta's does. A malformed ``filtering`` is code 100.
- ``GET /v{N}/me?fields=id,name`` → the Page the token belongs to.

Errors are ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` (Meta's
"Handling Errors"): a wrong token or ``expired`` → 190 (subcode 463 for expired), ``down`` → HTTP
500 with code 2, ``script`` forces the next answers (e.g. a rate limit, code 4). Every call is
logged in ``calls`` (path and query, token included, for assertions).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from loopback import LoopbackServer

PAGE_ID = "104857600123456"
PAGE_NAME = "Shree Steel Traders"
VERSION = "v26.0"


@dataclass(frozen=True)
class Call:
    path: str
    query: dict[str, str]


def graph_error(
    code: int, message: str, *, subcode: int | None = None, kind: str = "OAuthException"
) -> dict[str, Any]:
    err: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    err["fbtrace_id"] = "AbCdEfGh123"
    return {"error": err}


EXPIRED = graph_error(
    190,
    "Error validating access token: Session has expired on Friday, 04-Dec-26 10:00:00 PST.",
    subcode=463,
)
INVALID_TOKEN = graph_error(190, "Invalid OAuth access token - Cannot parse access token")
DOWN = graph_error(2, "An unexpected error has occurred. Please retry your request later.")
RATE_LIMITED = graph_error(4, "Application request limit reached", kind="OAuthException")
NO_PERMISSION = graph_error(10, "(#10) Application does not have permission for this action")


def meta_time(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class FakeGraph:
    """The Graph API's lead ads reads on 127.0.0.1, in its own thread and event loop."""

    def __init__(self, token: str = "EAAGfakePageToken0123456789abcdefXYZ", page_size: int = 2):
        self.token = token
        self.page_size = page_size
        self.leads: dict[str, dict[str, Any]] = {}  # id -> the full lead, with "_ts"
        self.calls: list[Call] = []
        # Forced answers, next first; None lets that call through.
        self.script: list[tuple[int, dict[str, Any]] | None] = []
        self.expired = False
        self.unknown_forms: set[str] = set()  # ids that are no form of this Page: code 100
        self.down = False
        self._lock = threading.Lock()
        self._server = LoopbackServer("fake-graph")
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_lead(
        self, lead_id: str, form_id: str, ts: float, answers: dict[str, str], **more: Any
    ) -> dict[str, Any]:
        lead = {
            "id": lead_id,
            "created_time": meta_time(ts),
            "form_id": form_id,
            "field_data": [{"name": k, "values": [v]} for k, v in answers.items()],
            "_ts": int(ts),
            **more,
        }
        with self._lock:
            self.leads[lead_id] = lead
        return lead

    def calls_to(self, suffix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.endswith(suffix)]

    # ------------------------------------------------------------------ running

    def start(self) -> FakeGraph:
        app = web.Application()
        app.router.add_get("/{version}/{obj}", self._object)
        app.router.add_get("/{version}/{form}/leads", self._form_leads)
        self.port = self._server.start(app)
        return self

    def close(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeGraph:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the endpoints

    def _refusal(self, request: web.Request) -> web.Response | None:
        """Log the call; the error every call gets first (script, down, token), if any."""
        with self._lock:
            self.calls.append(Call(request.path, dict(request.query)))
            forced = self.script.pop(0) if self.script else None  # None: answer normally
        if forced is not None:
            return web.json_response(forced[1], status=forced[0])
        if self.down:
            return web.json_response(DOWN, status=500)
        if request.query.get("access_token") != self.token:
            return web.json_response(INVALID_TOKEN, status=400)
        if self.expired:
            return web.json_response(EXPIRED, status=400)
        version = request.match_info["version"]
        if not (version.startswith("v") and version[1:].replace(".", "").isdigit()):
            return web.json_response(graph_error(2500, "Unknown path components"), status=400)
        return None

    @staticmethod
    def _no_object(obj: str) -> dict[str, Any]:
        return graph_error(
            100,
            f"Unsupported get request. Object with ID '{obj}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation.",
            subcode=33,
            kind="GraphMethodException",
        )

    @staticmethod
    def _shown(lead: dict[str, Any], fields: str) -> dict[str, Any]:
        wanted = {f for f in fields.split(",") if f} | {"id"}
        return {k: v for k, v in lead.items() if k in wanted}

    async def _object(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        obj = request.match_info["obj"]
        if obj == "me":
            return web.json_response({"id": PAGE_ID, "name": PAGE_NAME})
        with self._lock:
            lead = self.leads.get(obj)
        if lead is None:
            return web.json_response(self._no_object(obj), status=400)
        return web.json_response(self._shown(lead, request.query.get("fields", "")))

    async def _form_leads(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        since = self._since(request.query.get("filtering"))
        if since is None:
            return web.json_response(
                graph_error(
                    100, "(#100) Filtering field time_created is invalid", kind="OAuthException"
                ),
                status=400,
            )
        form = request.match_info["form"]
        if form in self.unknown_forms:
            return web.json_response(self._no_object(form), status=400)
        with self._lock:
            found = [x for x in self.leads.values() if x["form_id"] == form and x["_ts"] > since]
        found.sort(key=lambda x: (-x["_ts"], x["id"]))
        start = int(request.query.get("after", "0") or 0)
        size = min(self.page_size, int(request.query.get("limit", "25")))
        page = found[start : start + size]
        fields = request.query.get("fields", "")
        body: dict[str, Any] = {"data": [self._shown(x, fields) for x in page]}
        if page:
            body["paging"] = {"cursors": {"before": str(start), "after": str(start + len(page))}}
            if start + len(page) < len(found):
                query = {**request.query, "after": str(start + len(page))}
                body["paging"]["next"] = f"{self.url}{request.path}?{urlencode(query)}"
        return web.json_response(body)

    @staticmethod
    def _since(text: str | None) -> int | None:
        try:
            rules = json.loads(text or "")
            (rule,) = rules
            if rule["field"] != "time_created" or rule["operator"] != "GREATER_THAN":
                return None
            value = rule["value"]
            return value if isinstance(value, int) else None
        except (ValueError, TypeError, KeyError):
            return None
