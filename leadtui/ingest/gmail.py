"""Gmail push: Cloud Pub/Sub posts here when the watched mailbox changes.

``POST /api/webhooks/gmail/{token}``. The secret path token (``LEADTUI_GMAIL_PUSH_TOKEN``) is
the credential; a wrong one is 404, like any unknown URL, and the path is never logged.

A push carries no mail, only ``message.data``: base64 of ``{"emailAddress", "historyId"}`` (the
mailbox's history after the change). Acknowledging it loses nothing once the wake-up is
recorded, because the mail itself stays in Gmail and the Gmail source reads everything after
its own committed ``historyId``. So the handler, before its 2xx:

1. commits the pushed ``historyId`` (the highest seen) to the sync state :data:`PUSH_STATE`:
   a process that dies after answering leaves a wake-up the next capturing process finds;
2. wakes the Gmail source of this process (:data:`WAKEUPS`), which runs ``history.list``.

When the database refuses the write it answers 503 and Pub/Sub delivers again. A body that
cannot be read is still a wake-up (Pub/Sub would redeliver a refused one for days): the source
syncs from its own cursor either way. A wake-up lost in any other way (Pub/Sub gives up, the
watch lapsed) is caught by the source's periodic history check.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadtui.ingest.answers import WEBHOOK_LIMIT, unavailable
from leadtui.ingest.bodies import Unreadable, read_body
from leadtui.store import Store, StoreError

if TYPE_CHECKING:
    from leadtui.ingest.routes import Ingest

log = logging.getLogger("leadtui.ingest")

GMAIL_PREFIX = "/api/webhooks/gmail/"
PUSH_STATE = "gmail:push"  # {"history_id": int, "email": str, "received_ts": float}


class Wakeups:
    """Push → Gmail source, within one process: every listener is called on each push.

    The HTTP ingest and the Gmail source both run in the process that holds the capture
    lease, each in its own thread and event loop; a listener is a thread-safe callable
    (``loop.call_soon_threadsafe(event.set)``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], object]] = []

    def listen(self, callback: Callable[[], object]) -> Callable[[], object]:
        """Call ``callback`` on every push until the returned function is called."""
        with self._lock:
            self._listeners.append(callback)

        def forget() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return forget

    def wake(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback()
            except Exception:  # a source whose loop has ended: it was stopping anyway
                log.debug("gmail: a wake-up listener failed", exc_info=True)


WAKEUPS = Wakeups()
_RECORD = threading.Lock()  # pushes arrive concurrently: keep the highest historyId


def push_notification(body: bytes) -> tuple[int | None, str]:
    """The ``historyId`` and ``emailAddress`` a Pub/Sub push carries; ``(None, "")`` if unreadable.

    ``message.data`` is base64 (Pub/Sub's JSON) of Gmail's JSON; the URL-safe alphabet and a
    missing padding are accepted too.
    """
    try:
        envelope = json.loads(body.decode("utf-8"))
        data = envelope["message"]["data"]
        text = str(data).strip().replace("-", "+").replace("_", "/")
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        inner: Any = json.loads(decoded.decode("utf-8"))
        history = int(str(inner["historyId"]).strip())
    except (
        UnicodeDecodeError,
        ValueError,
        RecursionError,
        KeyError,
        TypeError,
        binascii.Error,
    ):
        return None, ""
    if history <= 0:
        return None, ""
    email = inner.get("emailAddress") if isinstance(inner, dict) else None
    return history, str(email or "")[:320]


def record_push(store: Store, history_id: int | None, email: str, now: float) -> None:
    """Commit the wake-up: the highest pushed ``historyId`` and when the last push came."""
    with _RECORD:
        state = store.get_state(PUSH_STATE) or {}
        values = [h for h in (history_id, state.get("history_id")) if isinstance(h, int)]
        highest = max(values) if values else None
        store.set_state(
            PUSH_STATE,
            {"history_id": highest, "email": email or state.get("email", ""), "received_ts": now},
        )


async def gmail_push(ingest: Ingest, request: web.Request) -> web.Response:
    refused = ingest.gate.path_token(request, ingest.settings.gmail_push_token.reveal())
    if refused is not None:
        return refused
    try:
        body = await read_body(request, WEBHOOK_LIMIT)
    except Unreadable as exc:
        body = exc.raw
    history_id, email = push_notification(body)
    if history_id is None:
        log.warning("gmail push: the body is not a Gmail notification; syncing all the same")
    store = ingest.store
    try:
        await ingest.read(lambda: record_push(store, history_id, email, time.time()))
    except StoreError:
        return unavailable()  # not recorded: Pub/Sub delivers it again
    WAKEUPS.wake()
    return web.json_response({"status": "received"})
