"""A local IndiaMART CRM listing API (FORMATS.md 6) for tests, over real HTTP on loopback.

It enforces the documented rules, so a client bug shows up as the error IndiaMART would give:

- a wrong ``glusr_crm_key`` → CODE 401;
- a call sooner than ``interval`` seconds after the previous call with the key → CODE 429 with
  IndiaMART's message (every call counts, also one answered 429);
- ``start_time``/``end_time`` missing or not IST ``DD-Mon-YYYY HH:MM:SS``, a start not before
  the end, a window over 7 days, a start older than 365 days, an end in the future → CODE 400;
- no leads in the window → CODE 204 whose ``STATUS`` alternates between SUCCESS and FAILURE
  (the real API is inconsistent; clients must not rely on it);
- otherwise CODE 200 with the leads whose ``QUERY_TIME`` (IST) lies in the window, both ends
  included, as a ``RESPONSE`` list.

Like the real API it answers HTTP 200 and puts the result in the body's CODE; set
``mirror_http_status`` to send the CODE as the HTTP status too. ``clock`` is the server's idea
of now (share a :class:`FakeClock` with the client so nobody waits five minutes). ``script``
forces the next answers (a 500, a 429, a 400 with a message), ``hang`` holds every request
until it is cleared (a call in flight when the client stops). Every call is logged in
``calls`` with its window, answer and the lead ids returned.

Usage::

    clock = FakeClock(start)
    with FakeIndiaMart(clock=clock.now) as api:
        api.add_lead(start - 3600, SENDER_NAME="Asha Verma")
        settings = Settings(indiamart_key=Secret(api.key), indiamart_url=api.url, ...)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from loopback import LoopbackServer

from leadtui.formats.text import IST

DAY = 86400
RATE_MESSAGE = (
    "It is advised to hit this API once in every 5 minutes, but it seems that you have "
    "crossed this limit. Please try again after 5 minutes."
)
NO_LEADS_MESSAGE = (
    "There are no leads in the given time duration. Please try for a different duration."
)
KEY_MESSAGE = "Key is invalid or expired, or a newer key was generated. Please generate a new key."
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def ist_text(ts: float) -> str:
    """``QUERY_TIME`` as the API writes it: ``YYYY-MM-DD HH:MM:SS`` in IST."""
    return datetime.fromtimestamp(int(ts), IST).strftime("%Y-%m-%d %H:%M:%S")


def parse_api_time(text: str) -> float | None:
    """The request's ``DD-Mon-YYYY HH:MM:SS`` (IST) as epoch seconds; None if malformed."""
    try:
        day, month, rest = text.split("-", 2)
        year, clock = rest.split(" ", 1)
        hour, minute, second = (int(x) for x in clock.split(":"))
        when = datetime(
            int(year), _MONTHS.index(month) + 1, int(day), hour, minute, second, tzinfo=IST
        )
    except ValueError:
        return None
    if len(day) != 2 or len(year) != 4:
        return None
    return when.timestamp()


class FakeClock:
    """Shared fake wall time for a pull source and this server.

    ``sleep_until`` returns at once (moving the time forward) for deadlines up to the limit
    set by :meth:`run_until`; a later deadline blocks until the test moves the limit or the
    time, or until stop. ``blocked`` is the deadline a sleeper is stuck on, so a test can wait
    until the source has done everything it may do before the limit.
    """

    def __init__(self, start: float, run_until: float | None = None) -> None:
        self._now = float(start)
        self._limit = float(start if run_until is None else run_until)
        self._lock = threading.Lock()
        self.blocked: float | None = None

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self._limit = max(self._limit, self._now)

    def run_until(self, when: float) -> None:
        """Let sleepers jump ahead to any deadline up to ``when``."""
        with self._lock:
            self._limit = max(self._limit, when)

    async def sleep_until(self, when: float, stop: threading.Event) -> bool:
        while not stop.is_set():
            with self._lock:
                if self._now >= when:
                    self.blocked = None
                    return True
                if when <= self._limit:
                    self._now = when
                    self.blocked = None
                    return True
                self.blocked = when
            await asyncio.sleep(0.005)
        with self._lock:
            self.blocked = None
        return False

    def idle(self) -> bool:
        """True when a sleeper waits past the limit: it did all it may do until then."""
        with self._lock:
            return self.blocked is not None and self.blocked > self._limit


@dataclass
class Call:
    """One request as the server saw it."""

    ts: float
    key_ok: bool
    start: float | None
    end: float | None
    code: int
    ids: list[str] = field(default_factory=list)
    raw_query: str = ""


def lead_row(ts: float, query_id: str, **fields: Any) -> dict[str, Any]:
    """A v2 lead row (FORMATS.md 5.2) at ``ts``; ``fields`` override the invented values."""
    row: dict[str, Any] = {
        "UNIQUE_QUERY_ID": query_id,
        "QUERY_TYPE": "W",
        "QUERY_TIME": ist_text(ts),
        "SENDER_NAME": "Asha Verma",
        "SENDER_MOBILE": f"+91-98{int(query_id) % 100_000_000:08d}",
        "SENDER_EMAIL": "",
        "SUBJECT": "Requirement for Red Clay Bricks",
        "SENDER_COMPANY": "Verma Builders",
        "SENDER_ADDRESS": "Baner, Pune, Maharashtra,         411045",
        "SENDER_CITY": "Pune",
        "SENDER_STATE": "Maharashtra",
        "SENDER_PINCODE": "411045",
        "SENDER_COUNTRY_ISO": "IN",
        "SENDER_MOBILE_ALT": "",
        "SENDER_PHONE": "",
        "SENDER_PHONE_ALT": "",
        "SENDER_EMAIL_ALT": "",
        "QUERY_PRODUCT_NAME": "Red Clay Bricks",
        "QUERY_MESSAGE": "I want to buy Red Clay Bricks.<br> Quantity :   5000<br>",
        "QUERY_MCAT_NAME": "Clay Bricks",
        "CALL_DURATION": "",
        "RECEIVER_MOBILE": "",
    }
    row.update(fields)
    return row


class FakeIndiaMart:
    """The listing endpoint on 127.0.0.1, in its own thread with its own event loop."""

    PATH = "/wservce/crm/crmListing/v2/"

    def __init__(
        self,
        *,
        key: str = "fake-crm-key-0123456789abcdef0123456789abcdef",
        clock: Callable[[], float] = time.time,
        interval: float = 300.0,
        mirror_http_status: bool = False,
    ) -> None:
        self.key = key
        self.clock = clock
        self.interval = interval
        self.mirror_http_status = mirror_http_status
        self.leads: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.script: list[tuple[int, str]] = []  # forced answers, first one next
        self.hang = False
        self.in_flight = 0
        self._lock = threading.Lock()
        self._last_call: float | None = None
        self._no_leads_answers = 0
        self._next_id = 2790100000
        self._server = LoopbackServer("fake-indiamart")
        self.port = 0

    # ------------------------------------------------------------------ setup

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.PATH}"

    def add_lead(self, ts: float, query_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """Put a lead at ``ts`` in the seller's account; returns its row."""
        with self._lock:
            if query_id is None:
                self._next_id += 1
                query_id = str(self._next_id)
            row = lead_row(ts, query_id, **fields)
            self.leads.append(row)
        return row

    def fail_next(self, code: int, message: str = "", times: int = 1) -> None:
        with self._lock:
            self.script.extend([(code, message)] * times)

    def codes(self) -> list[int]:
        with self._lock:
            return [c.code for c in self.calls]

    def call_log(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def start(self) -> FakeIndiaMart:
        app = web.Application()
        app.router.add_get(self.PATH, self._handle)
        self.port = self._server.start(app)
        return self

    def close(self) -> None:
        self.hang = False
        self._server.stop()

    def __enter__(self) -> FakeIndiaMart:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the endpoint

    async def _handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self.in_flight += 1
        try:
            while self.hang:  # noqa: ASYNC110 - a plain flag, set from the test's thread
                await asyncio.sleep(0.01)
            code, payload, call = self._answer(request)
        finally:
            with self._lock:
                self.in_flight -= 1
        with self._lock:
            self.calls.append(call)
        status = code if self.mirror_http_status and code != 204 else 200
        return web.json_response(payload, status=status)

    def _answer(self, request: web.Request) -> tuple[int, dict[str, Any], Call]:
        now = self.clock()
        query = request.query
        start = parse_api_time(query.get("start_time", ""))
        end = parse_api_time(query.get("end_time", ""))
        key_ok = query.get("glusr_crm_key") == self.key
        call = Call(now, key_ok, start, end, 0, raw_query=request.query_string)

        def answer(code: int, message: str, rows: list[dict[str, Any]] | None = None) -> Any:
            call.code = code
            status = "SUCCESS" if code == 200 else "FAILURE"
            if code == 204:
                self._no_leads_answers += 1
                status = "FAILURE" if self._no_leads_answers % 2 == 0 else "SUCCESS"
            payload = {
                "CODE": code,
                "STATUS": status,
                "MESSAGE": message,
                "TOTAL_RECORDS": len(rows or []),
                "RESPONSE": rows or [],
            }
            call.ids = [str(r["UNIQUE_QUERY_ID"]) for r in rows or []]
            return code, payload, call

        if not key_ok:
            return answer(401, KEY_MESSAGE)
        with self._lock:
            last, self._last_call = self._last_call, now
            forced = self.script.pop(0) if self.script else None
        if last is not None and now - last < self.interval:
            return answer(429, RATE_MESSAGE)
        if forced is not None:
            return answer(forced[0], forced[1])
        if start is None or end is None:
            return answer(400, "Invalid date format. Use DD-Mon-YYYY HH:MM:SS.")
        if start >= end:
            return answer(400, "The start time must be before the end time.")
        if end - start > 7 * DAY:
            return answer(400, "The time range must not exceed 7 days.")
        if start < now - 365 * DAY:
            return answer(400, "Data older than 365 days cannot be fetched.")
        if end > now:
            return answer(400, "The end time cannot be in the future.")
        with self._lock:
            rows = [r for r in self.leads if start <= _row_ts(r) <= end]
        rows.sort(key=_row_ts)
        if not rows:
            return answer(204, NO_LEADS_MESSAGE)
        return answer(200, "", rows)


def _row_ts(row: dict[str, Any]) -> float:
    return datetime.strptime(row["QUERY_TIME"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST).timestamp()
