"""The ingest's connections: how many, how long, and what a malformed request may log.

The port faces the internet (IndiaMART, Twilio and Meta call it; no proxy in front can be
assumed), so the connection layer defends itself:

* a connection that has not sent a request's headers within :data:`HEADER_TIMEOUT` is closed,
  and one idle between requests is closed after :data:`KEEPALIVE_TIMEOUT`;
* at most :func:`connection_cap` connections are open at once, well below the process's file
  limit, so ``accept`` never runs out of descriptors. A connection beyond the cap closes the
  connection that has been idle longest (one that has not sent a complete request); when
  every one is busy, the new one is answered 503 and closed. Either way ``/healthz`` and the
  webhooks keep answering while someone holds thousands of idle connections;
* a request aiohttp cannot parse (a control byte in a header, bare-LF line endings, a request
  line over 8,190 bytes) gets a fixed short problem+json and one short log line naming the
  error's type, never the request's bytes, which may hold an API key or the push token;
* the event loop's own errors (``accept`` out of descriptors) are logged once a minute per
  kind, not once per attempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("leadtui.ingest")  # one logger for the HTTP source, as before the split

HEADER_TIMEOUT = 10.0  # seconds a new connection gets to send its first request's headers
KEEPALIVE_TIMEOUT = 15.0  # seconds a connection may sit idle between requests
MAX_CONNECTIONS = 4096  # open connections at most, whatever the file limit
FD_RESERVE_MIN = 64  # descriptors kept free for the database, the log, threads' sockets
LOG_EVERY = 60.0  # seconds between two log lines of the same kind of noise
SERVER_HEADER = "leadtui"  # the Server header: no library names, no versions


def connection_cap(soft_limit: int | None = None) -> int:
    """How many connections the ingest keeps open at most, from the open-file limit.

    A quarter of the limit (at least :data:`FD_RESERVE_MIN`) stays free for everything else
    the process opens, so ``accept`` itself never fails for want of a descriptor.
    """
    if soft_limit is None:
        soft_limit = _soft_file_limit()
    if soft_limit <= 0:
        return MAX_CONNECTIONS
    reserve = max(FD_RESERVE_MIN, soft_limit // 4)
    return max(8, min(MAX_CONNECTIONS, soft_limit - reserve))


def _soft_file_limit() -> int:
    try:
        import resource  # noqa: PLC0415 - Unix only
    except ImportError:  # pragma: no cover - Windows
        return 512
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return -1 if soft == resource.RLIM_INFINITY else int(soft)


class Throttle:
    """Lets a log line of one kind through at most once every :data:`LOG_EVERY` seconds."""

    def __init__(self, every: float = LOG_EVERY) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def allow(self, kind: str) -> tuple[bool, int]:
        """Whether to log ``kind`` now, and how many of it were left out since the last line."""
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.every:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return False, 0
        self._last[kind] = now
        if len(self._last) > 1000:  # kinds are few; never let a flood of them grow this
            self._last = {kind: now}
        return True, self.suppressed.pop(kind, 0)


def loop_exception_handler(throttle: Throttle) -> Callable[[Any, dict[str, Any]], None]:
    """An event loop exception handler that says what failed once a minute per kind.

    asyncio logs "socket.accept() out of system resource" with a traceback for every accept
    that fails; with the file limit reached that is tens of thousands of lines a second,
    which rotate every useful line out of the log. Only the message and the error's type
    and errno are logged: an exception's text may quote a client's bytes.
    """

    def handle(loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message") or "event loop error")[:200]
        kind = f"{message}|{type(exc).__name__}|{getattr(exc, 'errno', '')}"
        ok, dropped = throttle.allow(kind)
        if not ok:
            return
        what = type(exc).__name__ if exc is not None else ""
        strerror = getattr(exc, "strerror", None)
        if strerror:
            what += f" ({strerror})"
        more = f"; {dropped} more like it since the last report" if dropped else ""
        log.error(
            "ingest: %s%s%s (shown at most once a minute)",
            message,
            f": {what}" if what else "",
            more,
        )

    return handle


def _problem_bytes(status: int, title: str, detail: str, extra: str = "") -> bytes:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\n"
        f"Server: {SERVER_HEADER}\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{extra}"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


BUSY_ANSWER = _problem_bytes(
    503,
    "Service Unavailable",
    "the server has too many connections open; retry shortly",
    "Retry-After: 5\r\n",
)


class Connections:
    """The open connections, oldest first, and the cap on how many there may be."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[Connection, None] = {}  # insertion order: oldest first
        self.throttle = Throttle()

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, conn: Connection) -> bool:
        """Register ``conn``; close the idlest connection if over the cap. False: refuse it."""
        self._open[conn] = None
        while len(self._open) > self.cap:
            victim = next((c for c in self._open if c is not conn and c.idle), None)
            if victim is None:
                self._note("busy", "every connection is busy; refusing new ones with 503")
                del self._open[conn]
                return False
            del self._open[victim]
            self._note(
                "evicted",
                f"{self.cap} connections open; closing the longest idle ones for new ones",
            )
            victim.drop()
        return True

    def closed(self, conn: Connection) -> None:
        self._open.pop(conn, None)

    def _note(self, kind: str, text: str) -> None:
        ok, dropped = self.throttle.allow(kind)
        if ok:
            more = f" ({dropped} more since the last report)" if dropped else ""
            log.warning("ingest: %s%s", text, more)


class Connection(RequestHandler):
    """aiohttp's HTTP/1.1 connection with a header timeout, the cap, and quiet parse errors."""

    __slots__ = ("_connections", "_header_timer", "_tracked")

    def __init__(self, manager: web.Server, connections: Connections, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._connections = connections
        self._header_timer: asyncio.TimerHandle | None = None
        self._tracked = False

    @property
    def idle(self) -> bool:
        """No request under way and none waiting: closing it loses nobody's answer."""
        return not self._request_in_progress and not self._messages

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._connections.opened(self):
            # Over the cap and every connection busy: say so and close, without parsing.
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(BUSY_ANSWER)
            transport.close()
            return
        self._tracked = True
        super().connection_made(transport)
        self._header_timer = self._loop.call_later(HEADER_TIMEOUT, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._request_count == 0:  # not one request's headers yet
            self.drop()

    def drop(self) -> None:
        """Close the connection now (idle, or too slow to send its headers)."""
        self.force_close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and self._request_count:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if not self._tracked:
            return  # refused in connection_made: aiohttp never knew it
        self._connections.closed(self)
        super().connection_lost(exc)

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request aiohttp could not read: a fixed answer, and a log line without its bytes."""
        kind = type(exc).__name__ if exc is not None else "error"
        ok, dropped = self._connections.throttle.allow(f"malformed|{status}|{kind}")
        if ok:
            more = f"; {dropped} more since the last report" if dropped else ""
            log.info(
                "ingest: refused a request from %s that is not valid HTTP (%s, HTTP %d)%s",
                request.remote,
                kind,
                status,
                more,
            )
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was already under way")
        if status >= 500:
            detail = "the server failed to handle this request; it is logged"
        else:
            detail = "the request is not valid HTTP/1.1; check the request line and headers"
        title = {400: "Bad Request", 413: "Request Entity Too Large"}.get(status, "Error")
        if status == 431 or (status == 400 and "too long" in kind.lower()):
            detail = "a request line or header is too long (at most 8,190 bytes)"
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        response = web.json_response(
            body,
            status=status,
            content_type="application/problem+json",
            headers={"Server": SERVER_HEADER},
        )
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's "Unhandled exception" lines: the type only, the text may hold request bytes."""
        exc = kw.get("exc_info")
        kind = type(exc).__name__ if isinstance(exc, BaseException) else "error"
        ok, _dropped = self._connections.throttle.allow(f"unhandled|{kind}")
        if ok:
            log.warning("ingest: a connection failed (%s); it was closed", kind)


class Site(web.BaseSite):
    """A TCP listener whose connections are :class:`Connection`, under one :class:`Connections`."""

    __slots__ = ("_factory", "_host", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        connections: Connections,
        *,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        server = runner.server
        assert server is not None
        loop = asyncio.get_running_loop()

        def factory() -> Connection:
            return Connection(
                server,
                connections,
                loop=loop,
                keepalive_timeout=KEEPALIVE_TIMEOUT,
                access_log=None,
                auto_decompress=False,
                lingering_time=2.0,
            )

        self._factory = factory

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
        )
