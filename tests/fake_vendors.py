"""Local TradeIndia and ExportersIndia inquiry APIs for tests, over real HTTP on loopback.

Neither vendor publishes its API; these follow what public integrations send and accept
(shared/CHANNELS.md, leadtui/channels/tradeindia.py and exportersindia.py):

TradeIndia ``GET /utils/my_inquiry.html?userid&profile_id&key&from_date&to_date``
    - wrong ``userid``/``profile_id``/``key`` → the error answer of ``error_style``: a plain
      text line, or a JSON object ``{"error": …}`` (the real wording is not public);
    - dates not ``YYYY-MM-DD``, ``from_date`` after ``to_date``, a window over one day (public
      clients ask day by day), or a day after the server's today → HTTP 200 with the plain text
      of a refusal;
    - no inquiries on the day → HTTP 200 with an empty body;
    - otherwise the day's inquiries as a JSON list, or wrapped as ``{"inquiries": […]}`` with
      ``wrapped``.

ExportersIndia ``GET /api-inquiry-detail.php?k&email&date_from``
    - wrong ``k`` or ``email`` → plain text ``Invalid API key or email``;
    - otherwise the inquiries of ``date_from`` and later as a JSON list (``[]`` when none).

``script`` forces the next answers as ``(http_status, body)``; every call is logged in ``calls``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from aiohttp import web
from loopback import LoopbackServer

from leadtui.formats.text import IST

TI_PATH = "/utils/my_inquiry.html"
EI_PATH = "/api-inquiry-detail.php"
TI_REJECTED_TEXT = "Invalid userid, profile_id or key"
EI_REJECTED_TEXT = "Invalid API key or email"


@dataclass
class VendorCall:
    path: str
    query: dict[str, str]
    status: int
    count: int  # inquiries answered


def ti_inquiry(rfi_id: str, day: date, **fields: Any) -> dict[str, Any]:
    """A TradeIndia inquiry as public integrations read it; ``fields`` override."""
    row: dict[str, Any] = {
        "rfi_id": rfi_id,
        "sender_name": "ASHA VERMA",
        "sender_co": "Verma Builders",
        "sender_email": "asha.verma@example.in",
        "sender_mobile": "+91-9822012345",
        "sender_city": "Pune",
        "sender_state": "Maharashtra",
        "sender_country": "India",
        "sender_uid": "88123",
        "receiver_name": "Mohit Bansal",
        "subject": "Red Clay Bricks Inquiry from Asha Verma through tradeindia.com",
        "product_name": "Red Clay Bricks",
        "quantity": "5000 Piece",
        "message": (
            "We need 5000 bricks for a site in Baner.<br>Please quote.<br><br>"
            "-----------------------------------------------------------<br>"
            "<b>Sender Details</b><br>Name: Asha Verma<br>Mobile: +91-9822012345<br>"
            "Email: asha.verma@example.in<br>Contact buyer with your best offer.<br>"
        ),
        "generated_date": day.isoformat(),
        "generated_time": "11:17:14",
    }
    row.update(fields)
    return row


def ei_inquiry(inq_id: str, day: date, **fields: Any) -> dict[str, Any]:
    """An ExportersIndia inquiry as public integrations read it; ``fields`` override."""
    row: dict[str, Any] = {
        "inq_id": inq_id,
        "inq_type": "Direct",
        "name": "Ravi Kumar",
        "company": "Kumar Exports",
        "mobile": "9845012345",
        "alt_mobile": "",
        "email": "ravi@kumar-exports.example",
        "alt_email": "",
        "address": "12 MG Road",
        "city": "Bengaluru",
        "state": "Karnataka",
        "country": "India",
        "subject": "Inquiry for Cotton Yarn",
        "product": "Cotton Yarn",
        "detail_req": "Need 2 tons of 40s combed cotton yarn.\nQuantity : 2 Ton",
        "enq_date": f"{day.isoformat()} 10:05:00",
        "member_type": "Free",
    }
    row.update(fields)
    return row


class FakeVendors:
    """Both endpoints on 127.0.0.1, in a thread with its own event loop."""

    def __init__(self, *, today: Callable[[], date]) -> None:
        self.today = today
        self.userid, self.profile_id = "1234567", "7654321"
        self.ti_key = "tI0123456789abcdef&x=1/+"  # URL-special characters on purpose
        self.ei_key = "ei-key-fedcba9876543210"
        self.ei_email = "sales@seller.example"
        self.ti: list[dict[str, Any]] = []
        self.ei: list[dict[str, Any]] = []
        self.wrapped = False
        self.error_style = "text"  # or "json"
        self.script: list[tuple[int, str]] = []
        self.calls: list[VendorCall] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer("fake-vendors")
        self.port = 0

    @property
    def ti_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{TI_PATH}"

    @property
    def ei_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{EI_PATH}"

    def calls_to(self, path: str) -> list[VendorCall]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    # ------------------------------------------------------------------ endpoints

    def _forced(self) -> tuple[int, str] | None:
        with self._lock:
            return self.script.pop(0) if self.script else None

    def _log(self, request: web.Request, status: int, count: int) -> None:
        with self._lock:
            self.calls.append(VendorCall(request.path, dict(request.query), status, count))

    def _rejected(self, text: str) -> web.Response:
        if self.error_style == "json":
            return web.json_response({"error": text})
        return web.Response(text=text)

    async def _tradeindia(self, request: web.Request) -> web.Response:
        q = request.query
        if (forced := self._forced()) is not None:
            self._log(request, forced[0], 0)
            return web.Response(status=forced[0], text=forced[1])
        if (q.get("userid"), q.get("profile_id"), q.get("key")) != (
            self.userid,
            self.profile_id,
            self.ti_key,
        ):
            self._log(request, 401, 0)
            return self._rejected(TI_REJECTED_TEXT)
        try:
            first = date.fromisoformat(q.get("from_date", ""))
            last = date.fromisoformat(q.get("to_date", ""))
        except ValueError:
            self._log(request, 400, 0)
            return web.Response(text="from_date and to_date must be YYYY-MM-DD")
        if first > last or (last - first).days > 1 or last > self.today():
            self._log(request, 400, 0)
            return web.Response(text="date range greater than 24 hours not allowed")
        days = (first.isoformat(), last.isoformat())
        rows = [r for r in self.ti if days[0] <= str(r.get("generated_date"))[:10] <= days[1]]
        self._log(request, 200, len(rows))
        if not rows:
            return web.Response(text="")
        return web.json_response({"inquiries": rows} if self.wrapped else rows)

    async def _exportersindia(self, request: web.Request) -> web.Response:
        q = request.query
        if (forced := self._forced()) is not None:
            self._log(request, forced[0], 0)
            return web.Response(status=forced[0], text=forced[1])
        if (q.get("k"), q.get("email")) != (self.ei_key, self.ei_email):
            self._log(request, 401, 0)
            return self._rejected(EI_REJECTED_TEXT)
        try:
            since = date.fromisoformat(q.get("date_from", ""))
        except ValueError:
            self._log(request, 400, 0)
            return web.Response(text="date_from must be YYYY-MM-DD")
        rows = [
            r
            for r in self.ei
            if not isinstance(r, dict)
            or r.get("enq_date") is None
            or str(r["enq_date"])[:10] >= since.isoformat()
        ]
        self._log(request, 200, len(rows))
        return web.Response(text=json.dumps(rows), content_type="application/json")

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeVendors:
        app = web.Application()
        app.router.add_get(TI_PATH, self._tradeindia)
        app.router.add_get(EI_PATH, self._exportersindia)
        self.port = self._server.start(app)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def ist_today(now: Callable[[], float]) -> Callable[[], date]:
    return lambda: datetime.fromtimestamp(now(), IST).date()
