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
from leadtui.ingest.answers import unavailable
from leadtui.ingest.auth import meta_handshake, meta_signed_body
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
    body = await meta_signed_body(ingest.gate, request, secret)
    if isinstance(body, web.Response):
        return body
    item = RawItem(body, source=NOTIFICATION_SOURCE, kind="json", channel="push")
    try:
        await ingest.commit(item, early=True)
    except (StoreError, TimeoutError):
        return unavailable()  # not stored: Meta delivers it again
    return web.json_response({"status": "received"})
