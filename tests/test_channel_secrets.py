"""No channel's credential reaches a screen, a log or the database's error records, even when
the vendor answering is hostile and echoes back everything it was sent.

Every channel of issue 18 is configured at once (JustDial's path token, Gmail's push token,
refresh token and client secret, Meta's Page token, app secret and verify token, the
TradeIndia and ExportersIndia keys), and every outbound call goes to one loopback server that
refuses it with the request echoed in the error shapes the vendors use (Graph's and Google's
``error`` object, OAuth's ``error_description``, the marketplaces' ``MESSAGE``). Then what a
seller runs — ``leadtui doctor`` (twice: the second shows the stored last call), the vendor
pulls' ``pull --once`` and ``meta backfill`` — must show and log the failure without a secret.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock
from urllib.parse import quote, quote_plus

import pytest
from aiohttp import web
from click.testing import CliRunner
from helpers import wait_for
from loopback import LoopbackServer

from leadtui import config, sources
from leadtui.capture import Pipeline
from leadtui.cli import main
from leadtui.store import FAILING_STATES, Health, Store

SECRETS = {
    "LEADTUI_JUSTDIAL_TOKEN": "jdTokenA1b2C3d4E5f6G7h8",
    "LEADTUI_GMAIL_PUSH_TOKEN": "gmailPushQ9w8E7r6T5y4U3",
    "LEADTUI_GMAIL_REFRESH_TOKEN": "1//gmailRefreshZx8Cv7Bn6",
    "LEADTUI_GMAIL_CLIENT_SECRET": "GOCSPXclientSecretMn5Lk4",
    "LEADTUI_META_PAGE_TOKEN": "EAAGpageTokenPo3Iu2Yt1Re0",
    "LEADTUI_META_LEADS_APP_SECRET": "metaAppSecretWq1As2Zx3",
    "LEADTUI_META_LEADS_VERIFY_TOKEN": "metaVerifyEd4Rf5Tg6Yh7",
    "LEADTUI_TRADEINDIA_KEY": "tradeIndiaKeyUj8Ik9Ol0",
    "LEADTUI_EXPORTERSINDIA_KEY": "exportersKeyPl1Ok2Ij3",
}
TRADEINDIA, EXPORTERSINDIA = "/utils/my_inquiry.html", "/api/inquiries"


async def _echo(request: web.Request) -> web.Response:
    """Refuse anything, repeating the request back: URL, headers and body."""
    body = (await request.read()).decode("utf-8", "replace")
    # The body and the query first: an error line is cut short, and these carry the secrets.
    echo = f"{body} {request.path_qs} {dict(request.headers)}"
    if request.path.endswith("/token"):  # Google's OAuth endpoint
        return web.json_response({"error": "invalid_grant", "error_description": echo}, status=400)
    if request.path in (TRADEINDIA, EXPORTERSINDIA):  # the marketplaces refuse with a 200 text
        return web.Response(text=f"Invalid key, unauthorized: {echo}")
    envelope = {
        "error": {"code": 190, "message": echo, "type": "OAuthException", "status": echo},
        "MESSAGE": echo,
        "message": echo,
    }
    return web.Response(text=json.dumps(envelope), status=401, content_type="application/json")


@pytest.fixture
def hostile() -> Iterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    server = LoopbackServer("hostile-vendor")
    port = server.start(app)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _environment(url: str, db: str) -> dict[str, str]:
    return {
        **SECRETS,
        "LEADTUI_DB": db,
        "LEADTUI_HTTP_LISTEN": "127.0.0.1:0",
        "LEADTUI_HTTP_PUBLIC_URL": "https://leads.example.in",
        "LEADTUI_GMAIL_ENABLE": "true",
        "LEADTUI_GMAIL_CLIENT_ID": "client-id.apps.googleusercontent.com",
        "LEADTUI_GMAIL_TOPIC": "projects/shree/topics/leadtui-gmail",
        "LEADTUI_GMAIL_TOKEN_URL": f"{url}/token",
        "LEADTUI_GMAIL_API_URL": url,
        "LEADTUI_META_GRAPH_URL": url,
        "LEADTUI_META_FORM_IDS": "1234567890",
        "LEADTUI_TRADEINDIA_USERID": "1234567",
        "LEADTUI_TRADEINDIA_PROFILE_ID": "7654321",
        "LEADTUI_TRADEINDIA_URL": f"{url}{TRADEINDIA}",
        "LEADTUI_TRADEINDIA_BACKFILL_DAYS": "0",
        "LEADTUI_EXPORTERSINDIA_EMAIL": "sales@seller.example",
        "LEADTUI_EXPORTERSINDIA_URL": f"{url}{EXPORTERSINDIA}",
        "LEADTUI_EXPORTERSINDIA_BACKFILL_DAYS": "0",
        "COLUMNS": "400",  # one line per check: a secret is never split by the wrapping
    }


def test_no_channel_secret_reaches_doctor_the_pulls_or_the_logs(
    hostile: str, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    Store.open(sqlite_url).close()  # doctor calls the vendor pulls only with a database
    outputs: dict[str, str] = {}
    with (
        mock.patch.dict(os.environ, _environment(hostile, sqlite_url)),
        caplog.at_level(logging.DEBUG),
    ):
        for name, argv in {
            "doctor": ["doctor"],
            "doctor again": ["doctor"],
            "tradeindia pull": ["pull", "--source", "tradeindia", "--once"],
            "exportersindia pull": ["pull", "--source", "exportersindia", "--once"],
            "meta backfill": ["meta", "backfill"],
        }.items():
            outputs[name] = CliRunner().invoke(main, argv, catch_exceptions=False).output
    doctor = outputs["doctor"]
    # Every channel was called and failed, and said so (the refusal is what a seller sees).
    for name in ("gmail", "meta leads", "tradeindia", "exportersindia"):
        assert any(line.startswith(f"✗ {name} ") for line in doctor.splitlines()), (
            f"{name} did not fail:\n{doctor}"
        )
    assert "jdToken" not in doctor  # JustDial's URL is shown with <LEADTUI_JUSTDIAL_TOKEN>
    assert "last call" in outputs["doctor again"]  # the stored error of the first run
    logs = caplog.text + "".join(
        path.read_text(errors="replace")
        for path in Path(os.environ["XDG_STATE_HOME"]).rglob("*.log")
    )
    for where, text in {**outputs, "logs": logs}.items():
        for setting, secret in SECRETS.items():
            for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
                assert form not in text, f"{setting} reached the {where} as {form}"


RUNNING = ("meta leads", "gmail", "tradeindia", "exportersindia")


def test_no_channel_secret_reaches_a_running_sources_health_or_log(
    hostile: str, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The capture service's own calls, refused the same way: the health lines the header and
    ``/healthz`` show say the channel fails, and carry no secret."""
    settings = config.load(environ=_environment(hostile, sqlite_url))
    store = Store.open(sqlite_url)
    reported: list[Health] = []
    stop = threading.Event()
    threads = []
    with caplog.at_level(logging.DEBUG):
        for spec in [s for s in sources.SOURCES if s.name in RUNNING]:
            source = spec.factory(settings, sources.Run())(store, Pipeline(store), reported.append)
            thread = threading.Thread(target=source.run, args=(stop,), daemon=True)
            thread.start()
            threads.append(thread)
        try:
            failing = wait_for(
                lambda: (
                    {h.source for h in list(reported) if h.state in FAILING_STATES}
                    >= {"meta leads", "gmail", "tradeindia", "exportersindia"}
                ),
                timeout=30,
                what="every channel's health to say it fails",
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
            store.close()
    assert failing
    shown = caplog.text + "".join(f"{h.state} {h.detail} {h.last_error}" for h in reported)
    for setting, secret in SECRETS.items():
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            assert form not in shown, f"{setting} reached a health line or the log as {form}"
