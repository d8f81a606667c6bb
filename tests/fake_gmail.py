"""A local Gmail API and Google OAuth token endpoint for tests, over real HTTP on loopback.

It follows Google's documented shapes (developers.google.com/workspace/gmail/api/reference,
developers.google.com/identity/protocols/oauth2) and refuses what the real services refuse:

- ``POST /token`` takes a form with ``grant_type=refresh_token``, ``refresh_token``,
  ``client_id`` and ``client_secret``; a revoked refresh token is 400 ``invalid_grant``;
  success is ``{"access_token", "expires_in", "scope", "token_type": "Bearer"}``.
- Every ``/gmail/v1/users/me/...`` call needs ``Authorization: Bearer <a token it issued>``
  (else 401) and a grant with a Gmail scope (else 403 ``insufficientPermissions``); errors are
  ``{"error": {"code", "message", "errors": [{"reason", ...}], "status"}}``.
- ``GET profile``, ``POST watch`` (``topicName`` ``projects/P/topics/T``, ``labelIds``),
  ``GET history`` (``startHistoryId`` required; one older than :attr:`oldest_history` is 404;
  ``historyTypes``/``labelId`` filter; pages of :attr:`page_size` with ``nextPageToken``),
  ``GET messages`` (``q`` with ``newer_than:Nd``, ``labelIds``, newest first) and
  ``GET messages/{id}`` (``format=raw``: base64url RFC 822). Nothing here changes a label; any
  other route is 404 and listed in :attr:`unexpected`.

``script`` forces the next answers of one route (``("history", 429)``); ``calls`` logs every
request (route, query, whether the bearer token was valid).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from loopback import LoopbackServer

READONLY = "https://www.googleapis.com/auth/gmail.readonly"
EMAIL = "sales@shreesteel.in"


def error(code: int, message: str, reason: str, status: str) -> web.Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }
    return web.json_response(body, status=code)


ERRORS = {
    401: ("Request had invalid authentication credentials.", "authError", "UNAUTHENTICATED"),
    403: ("Request had insufficient authentication scopes.", "insufficientPermissions", "PERMISSION_DENIED"),
    404: ("Requested entity was not found.", "notFound", "NOT_FOUND"),
    429: ("Too many concurrent requests for user.", "rateLimitExceeded", "RESOURCE_EXHAUSTED"),
    500: ("Backend Error", "backendError", "INTERNAL"),
}  # fmt: skip


def pubsub_push(email: str, history_id: int, message_id: str = "2070443601311540") -> bytes:
    """A Pub/Sub push request body carrying a Gmail notification (both documented shapes)."""
    data = json.dumps({"emailAddress": email, "historyId": history_id}).encode()
    envelope = {
        "message": {
            "data": base64.b64encode(data).decode("ascii"),
            "messageId": message_id,
            "publishTime": "2026-12-05T09:30:00.000Z",
        },
        "subscription": "projects/shree-leads/subscriptions/leadtui-gmail-push",
    }
    return json.dumps(envelope).encode()


@dataclass
class Message:
    id: str
    raw: str  # base64url, or anything for a malformed one
    labels: list[str]
    internal_ms: int
    history_id: int


@dataclass
class Call:
    route: str
    method: str
    query: dict[str, str]
    bearer_ok: bool
    body: Any = None


@dataclass
class FakeGoogle:
    """Gmail API + token endpoint on 127.0.0.1, in its own thread and event loop."""

    email: str = EMAIL
    refresh_token: str = "1//0gFakeRefreshToken-abcdefghijklmnop"
    client_id: str = "123456789-leadtui.apps.googleusercontent.com"
    client_secret: str = "GOCSPX-fake-client-secret-xyz"
    scope: str = READONLY
    revoked: bool = False
    page_size: int = 100
    history_id: int = 100_000
    oldest_history: int = 0
    messages: dict[str, Message] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    watches: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    script: list[tuple[str, int]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer = field(default_factory=lambda: LoopbackServer("fake-google"))

    # ------------------------------------------------------------------ the mailbox

    def add_message(
        self, raw: bytes | None = None, *, labels: tuple[str, ...] = ("INBOX", "UNREAD"),
        malformed: str | None = None, at: float | None = None,
    ) -> str:  # fmt: skip
        """A new message in the mailbox: a history record ``messageAdded``; returns its id."""
        with self._lock:
            self.history_id += 7  # ids grow, with gaps, as Google's do
            message_id = f"18c{self.history_id:013x}"
            text = (
                malformed
                if malformed is not None
                else base64.urlsafe_b64encode(raw or b"").decode()
            )
            message = Message(
                message_id, text, list(labels), int((at or time.time()) * 1000), self.history_id
            )
            self.messages[message_id] = message
            brief = {"id": message_id, "threadId": message_id, "labelIds": list(labels)}
            self.history.append(
                {"id": str(self.history_id), "messages": [{"id": message_id, "threadId": message_id}],
                 "messagesAdded": [{"message": brief}]}
            )  # fmt: skip
            return message_id

    def expire_history(self) -> None:
        """Gmail forgets every history record so far: an older startHistoryId is 404."""
        with self._lock:
            self.oldest_history = self.history_id

    def calls_to(self, route: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.route == route]

    # ------------------------------------------------------------------ serving

    def __enter__(self) -> FakeGoogle:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_route("*", "/gmail/v1/users/me/{rest:.*}", self._gmail)
        self.url = f"http://127.0.0.1:{self._server.start(app)}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        fields = {k: str(v) for k, v in form.items()}
        with self._lock:
            self.token_requests.append(fields)
        if request.content_type != "application/x-www-form-urlencoded":
            return web.json_response({"error": "invalid_request"}, status=400)
        if fields.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (fields.get("client_id"), fields.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "The OAuth client was not found."},
                status=401,
            )  # fmt: skip
        if self.revoked or fields.get("refresh_token") != self.refresh_token:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
                status=400,
            )  # fmt: skip
        token = "ya29.a0Fake" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.add(token)
        return web.json_response(
            {"access_token": token, "expires_in": 3599, "scope": self.scope, "token_type": "Bearer"}
        )

    async def _gmail(self, request: web.Request) -> web.StreamResponse:
        rest = request.match_info["rest"]
        route = "messages/get" if rest.startswith("messages/") else rest
        auth = request.headers.get("Authorization", "")
        body = await request.json() if request.method == "POST" and request.can_read_body else None
        with self._lock:
            bearer_ok = auth.startswith("Bearer ") and auth[7:] in self.tokens
            self.calls.append(Call(route, request.method, dict(request.query), bearer_ok, body))
            forced = next((s for s in self.script if s[0] == route), None)
            if forced is not None:
                self.script.remove(forced)
        if not bearer_ok:
            return error(401, *ERRORS[401])
        if "gmail" not in self.scope and "mail.google.com" not in self.scope:
            return error(403, *ERRORS[403])
        if forced is not None:
            return error(forced[1], *ERRORS[forced[1]])
        handler = {
            ("GET", "profile"): self._profile,
            ("POST", "watch"): self._watch,
            ("GET", "history"): self._history,
            ("GET", "messages"): self._list,
            ("GET", "messages/get"): self._get,
        }.get((request.method, route))
        if handler is None:
            with self._lock:
                self.unexpected.append(f"{request.method} {rest}")
            return error(404, *ERRORS[404])
        with self._lock:
            return handler(request, body)

    def _profile(self, request: web.Request, body: Any) -> web.Response:
        return web.json_response(
            {"emailAddress": self.email, "messagesTotal": len(self.messages),
             "threadsTotal": len(self.messages), "historyId": str(self.history_id)}
        )  # fmt: skip

    def _watch(self, request: web.Request, body: Any) -> web.Response:
        topic = body.get("topicName", "") if isinstance(body, dict) else ""
        if not re.fullmatch(r"projects/[^/]+/topics/[^/]+", str(topic)):
            return error(
                400,
                "Invalid topicName does not match projects/*/topics/*",
                "invalidArgument",
                "INVALID_ARGUMENT",
            )
        self.watches.append(body)
        expiration = int(time.time() * 1000) + 7 * 86400 * 1000
        return web.json_response({"historyId": str(self.history_id), "expiration": str(expiration)})

    def _history(self, request: web.Request, body: Any) -> web.Response:
        start = request.query.get("startHistoryId", "")
        if not start.isdigit():
            return error(
                400, "Missing required parameter: startHistoryId", "required", "INVALID_ARGUMENT"
            )
        if int(start) < self.oldest_history:
            return error(404, *ERRORS[404])
        label = request.query.get("labelId")
        types = request.query.getall("historyTypes", [])
        records = [
            r for r in self.history
            if int(r["id"]) > int(start)
            and (not label or label in r["messagesAdded"][0]["message"]["labelIds"])
            and (not types or "messageAdded" in types)
        ]  # fmt: skip
        offset = int(request.query.get("pageToken") or 0)
        page = records[offset : offset + self.page_size]
        answer: dict[str, Any] = {"historyId": str(self.history_id)}
        if page:
            answer["history"] = page
        if offset + self.page_size < len(records):
            answer["nextPageToken"] = str(offset + self.page_size)
        return web.json_response(answer)

    def _list(self, request: web.Request, body: Any) -> web.Response:
        query = request.query.get("q", "")
        days = re.search(r"newer_than:(\d+)d", query)
        since = (time.time() - int(days.group(1)) * 86400) * 1000 if days else 0
        label = request.query.get("labelIds")
        found = [
            {"id": m.id, "threadId": m.id}
            for m in sorted(self.messages.values(), key=lambda m: -m.internal_ms)
            if m.internal_ms >= since and (not label or label in m.labels)
        ]
        answer: dict[str, Any] = {"resultSizeEstimate": len(found)}
        offset = int(request.query.get("pageToken") or 0)
        if found[offset : offset + self.page_size]:
            answer["messages"] = found[offset : offset + self.page_size]
        if offset + self.page_size < len(found):
            answer["nextPageToken"] = str(offset + self.page_size)
        return web.json_response(answer)

    def _get(self, request: web.Request, body: Any) -> web.Response:
        message = self.messages.get(request.match_info["rest"].split("/", 1)[1])
        if message is None:
            return error(404, *ERRORS[404])
        if request.query.get("format") != "raw":
            return error(
                400, "this stand-in only serves format=raw", "invalidArgument", "INVALID_ARGUMENT"
            )
        return web.json_response(
            {"id": message.id, "threadId": message.id, "labelIds": message.labels,
             "snippet": "", "historyId": str(message.history_id),
             "internalDate": str(message.internal_ms), "sizeEstimate": len(message.raw),
             "raw": message.raw}
        )  # fmt: skip
