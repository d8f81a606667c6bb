"""``GET``/``POST /api/meta/leadgen``: the Page webhook for Facebook and Instagram lead ads.

Meta verifies the URL once with the ``hub.challenge`` handshake (the lead ads verify token,
:func:`~leadtui.ingest.auth.meta_handshake`), then POSTs a ``leadgen`` notification for every
lead, signed with the app secret in ``X-Hub-Signature-256``. A notification carries only ids, so
this handler does no more than a webhook must: check the signature, commit the body as a raw
item (source ``meta:leadgen``), and answer 200 only after that commit. The lead ads source
(:mod:`leadtui.channels.meta_leads`) reads the committed notifications as its queue and fetches
each lead from the Graph API, so a notification survives a restart, a Graph outage and an
expired token. A signed body that names no lead lands in the review queue (the parser says
why); an unsigned one is refused with 403 and not stored.

Both routes answer 404 until lead ads are configured (a Page token and an app secret).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from leadtui.capture import RawItem
from leadtui.formats.meta_leads import NOTIFICATION_SOURCE
from leadtui.ingest.answers import WEBHOOK_LIMIT, not_found, problem, unavailable
from leadtui.ingest.auth import meta_handshake, meta_signature_valid
from leadtui.ingest.bodies import read_body
from leadtui.store import StoreError

if TYPE_CHECKING:
    from leadtui.ingest.routes import Ingest

PATH = "/api/meta/leadgen"


async def leadgen_verify(ingest: Ingest, request: web.Request) -> web.Response:
    settings = ingest.settings
    token = settings.meta_leads_verify.reveal() if settings.meta_leads_enabled else ""
    return meta_handshake(ingest.gate, request, token)


async def leadgen(ingest: Ingest, request: web.Request) -> web.Response:
    settings = ingest.settings
    secret = settings.meta_leads_secret.reveal() if settings.meta_leads_enabled else ""
    if not secret:
        return not_found()
    refused = ingest.gate.throttled(request)
    if refused is not None:
        return refused
    signature = request.headers.get("X-Hub-Signature-256", "")
    if not signature.strip():  # refused before its body is read
        ingest.gate.failed(request)
        return problem(403, "the X-Hub-Signature-256 header is missing")
    body = await read_body(request, WEBHOOK_LIMIT)
    if not meta_signature_valid(secret, body, signature):
        ingest.gate.failed(request)
        return problem(403, "the X-Hub-Signature-256 does not match this body")
    item = RawItem(body, source=NOTIFICATION_SOURCE, kind="json", channel="push")
    try:
        await ingest.commit(item, early=True)
    except (StoreError, TimeoutError):
        return unavailable()  # not stored: Meta delivers it again
    return web.json_response({"status": "received"})
