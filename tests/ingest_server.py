"""A real HTTP ingest on a free loopback port, for the ``test_ingest*`` modules.

The server is the real capture source (``ingest_factory``) with settings loaded the way a
user's are (``LEADTUI_*`` variables in the process environment through ``config.load``, as
``leadtui serve`` reads them), over a real store; requests go over real sockets with the
standard library's ``http.client``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from helpers import wait_for

from leadtui import config
from leadtui.capture import Pipeline
from leadtui.ingest import IngestSource, ingest_factory
from leadtui.store import Health, Store

API_KEYS = {"website": "ltk_website_0123456789abcdef", "zapier": "ltk_zapier_fedcba9876543210"}
PUSH_TOKEN = "push-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"
TWILIO_TOKEN = "twilio-auth-token-5e8b1d"
META_SECRET = "meta-app-secret-c41a07"
META_VERIFY = "meta-verify-token-9d2e6f"
META_PAGE_TOKEN = "EAAGmetaPageToken4f1c9e"  # turns the lead ads webhook on (nothing is fetched)
JUSTDIAL_TOKEN = "justdial-5c8e2a7f1b9d4036"  # the path tokens of the JustDial and Gmail pushes
GMAIL_PUSH_TOKEN = "gmail-push-e41b7c9a2d5f8036"
SECRETS = (
    *API_KEYS.values(),
    PUSH_TOKEN,
    TWILIO_TOKEN,
    META_SECRET,
    META_VERIFY,
    META_PAGE_TOKEN,
    JUSTDIAL_TOKEN,
    GMAIL_PUSH_TOKEN,
)
PUBLIC_URL = "https://leads.example.in"


def environment(**overrides: str) -> dict[str, str]:
    env = {
        "LEADTUI_HTTP_LISTEN": "127.0.0.1:0",
        "LEADTUI_API_KEYS": ",".join(f"{name}:{key}" for name, key in API_KEYS.items()),
        "LEADTUI_PUSH_TOKEN": PUSH_TOKEN,
        "LEADTUI_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "LEADTUI_META_APP_SECRET": META_SECRET,
        "LEADTUI_META_VERIFY_TOKEN": META_VERIFY,
        "LEADTUI_META_PAGE_TOKEN": META_PAGE_TOKEN,
        "LEADTUI_JUSTDIAL_TOKEN": JUSTDIAL_TOKEN,
        "LEADTUI_GMAIL_PUSH_TOKEN": GMAIL_PUSH_TOKEN,
        "LEADTUI_HTTP_RATE_PER_MINUTE": "1000000",
        "LEADTUI_HTTP_PUBLIC_URL": PUBLIC_URL,
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


@dataclass
class Server:
    url: str
    store: Store
    source: IngestSource
    health: list[Health]
    stop: threading.Event
    thread: threading.Thread
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        chunked: bool = False,
    ) -> Reply:
        """One request on a kept-alive connection (a fresh one after the server closed it)."""
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                send = iter([body]) if chunked and body is not None else body
                self._conn.request(
                    method, path, body=send, headers=dict(headers or {}), encode_chunked=chunked
                )
                response = self._conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
                continue
            reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
            if response.will_close:
                self._conn.close()
                self._conn = None
            return reply
        raise AssertionError("unreachable")

    def post_json(
        self, path: str, value: Any, key: str | None = "website", **headers: str
    ) -> Reply:
        sent = {"content-type": "application/json", **headers}
        if key is not None:
            sent["x-api-key"] = API_KEYS[key]
        return self.request("POST", path, json.dumps(value).encode(), sent)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@contextmanager
def running(db_url: str, **env: str) -> Iterator[Server]:
    """Run the ingest source in a thread until the block ends.

    The ``LEADTUI_*`` variables are in the process environment while it runs, as they are for
    ``leadtui serve``: the ingest reads them again when the config file's API keys change.
    """
    with mock.patch.dict(os.environ, environment(**env)):
        settings = config.load()
        store = Store.open(db_url)
        health: list[Health] = []
        source = ingest_factory(settings)(store, Pipeline(store), health.append)
        assert isinstance(source, IngestSource)
        stop = threading.Event()
        thread = threading.Thread(target=source.run, args=(stop,), name="test-ingest", daemon=True)
        thread.start()
        url = wait_for(lambda: source.url, timeout=10, what="the ingest to listen")
        server = Server(url, store, source, health, stop, thread)
        try:
            yield server
        finally:
            server.close()
            stop.set()
            thread.join(timeout=5)
            store.close()
    assert not thread.is_alive(), "the ingest did not stop"


def twilio_signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's algorithm, written out here independently of leadtui's code."""
    data = url
    for name in sorted(params):
        data += name + params[name]
    mac = hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def meta_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
