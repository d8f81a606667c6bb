"""The HTTP ingest: website forms, WhatsApp and IndiaMART push, into the same pipeline.

It faces the network, so it is built like a payment webhook receiver: every request it
accepts has its raw body committed before the answer (a 2xx means the lead is durable), it
never answers with a traceback or a secret, and its request log carries no key or token.

Routes (``GET /api/openapi.json`` describes them for machines):

``POST /api/leads``
    One lead as JSON with the contract's field names (FORMATS 8: at least one of name, phone,
    email), or a website form post (urlencoded or multipart) whose fields are mapped by
    :data:`FORM_ALIASES` (``full_name``, ``mobile``, ``tel``, ``comments``, ``interest``, …;
    other fields go to ``specs``). Needs ``x-api-key``. ``Idempotency-Key`` (at most 200
    characters, per API key) makes a replay of the same body answer with the first answer's
    lead; the key again with a different body is 422, as the IETF idempotency-key draft says.
    201 with the lead id for a new lead, 200 for one already known (a replay, an identical
    body, or the same enquiry by the dedupe keys), 202 if the item went to the review queue,
    400 for a body that is not JSON or a form or an Idempotency-Key longer than 200 or not
    printable ASCII, 401 without a valid key, 403 for a key without the ``ingest`` scope,
    413 above 64 KiB, 415 for other content types, 422 (RFC 9457 problem+json) naming
    every invalid field, 429 with Retry-After above the key's rate. A body refused with 400
    or 422 is kept all the same, failed, in the review queue with the reason.
    A JSON body is kept as sent; a form is kept as the lead JSON it maps to, with the form's
    own fields beside it (under ``request``, which the parser ignores). A body that does not
    arrive within 30 s is 408.

``POST /api/indiamart/push/{token}``
    IndiaMART's push payloads (FORMATS 5). The unguessable token is the only credential
    (``LEADTUI_PUSH_TOKEN``; a wrong one is 404, like any unknown URL). The body is committed
    and 200 answered at once, for duplicates and unparseable bodies too (those go to the
    review queue): IndiaMART switches a receiver off after 48 hours without a 200.

``POST /api/webhooks/gmail/{token}``
    Gmail push notifications through Cloud Pub/Sub (:mod:`~leadtui.ingest.gmail`): the pushed
    ``historyId`` is recorded, the Gmail source woken, and 200 answered; 404 for a wrong token
    (``LEADTUI_GMAIL_PUSH_TOKEN``).

``GET``/``POST /api/justdial/{token}``
    JustDial's lead push (:mod:`~leadtui.ingest.justdial`): the lead in the query string, or
    the same names as a form or JSON. The token (``LEADTUI_JUSTDIAL_TOKEN``) is the credential
    as for IndiaMART's push; every request with fields is committed (deduplicated by
    ``justdial:<leadid>``) and answered ``RECEIVED``; what is not a lead goes to review.

``POST /api/whatsapp/twilio``, ``GET``/``POST /api/whatsapp/meta``
    WhatsApp messages via Twilio (``X-Twilio-Signature``, over ``LEADTUI_HTTP_PUBLIC_URL`` +
    path when that is set, else over the URL as requested) or Meta's Cloud API
    (``hub.challenge`` handshake, ``X-Hub-Signature-256``). Each message becomes a generic
    lead ``{source: whatsapp, name, phone, message}`` (the webhook's own fields kept beside
    it); the store appends a message from a phone it knows to that buyer's newest lead
    instead of making a new one. Redeliveries are recognised by the message id. A route whose
    secret is not configured answers 404.

``GET /api/leads?since=&limit=``
    For other tools (needs an ``x-api-key`` with the ``read`` scope, else 403: a new key may
    only add leads unless made with ``leadtui keys add NAME --read``). ``since`` is a change cursor: an integer, 0 or
    absent for everything; the answer's ``cursor`` continues the feed, and a lead changed
    again (triage, a merge) comes back with its new state. ``since`` may also be an ISO-8601
    time with a UTC offset: the same feed from that time on (the leads that arrived or changed
    since then, oldest change first), so following the cursor delivers every one of them.

``GET /healthz``
    No key: whether the database answers and the state of each capture source. 200 with
    ``status`` ``ok``, or ``degraded`` naming the ``failing`` sources (a mailbox that cannot
    log in, say: the ingest still takes leads); 503 when the database does not answer.

API keys are the config file's ``[http.api_keys]`` plus ``LEADTUI_API_KEYS``; ``leadtui keys
add/remove`` take effect within a second, without a restart (:class:`ApiKeyRing`).

Every route that stores answers 503 with Retry-After when the database refuses the write:
nothing is acknowledged that is not committed (when the raw item was committed but its lead
could not be made, the 503 says so, and a retry finishes it). Wrong keys, push tokens and
signatures are counted per client address (429 with Retry-After past 30 a minute).
:mod:`~leadtui.ingest.connections` keeps the port answering under floods of idle or slow
connections and keeps request bytes out of the log. ``LEADTUI_HTTP_RATE_PER_MINUTE`` is per API
key (0: no limit); the webhooks are not rate limited, so IndiaMART is never refused.

Writes go through one writer thread (group commit): handlers queue raw items, the writer
commits a batch of them in one transaction and applies their leads in one more, and each
request's answer waits for the commit its answer promises. The event loop never touches the
database; reads run in a small thread pool.

The package, one concern a module: :mod:`~leadtui.ingest.routes` (the ``ROUTES`` table and
its handlers), :mod:`~leadtui.ingest.openapi` (the document generated from ``ROUTES``),
:mod:`~leadtui.ingest.auth` (API keys, rate limits, signatures, idempotency keys),
:mod:`~leadtui.ingest.writer` (group commit), :mod:`~leadtui.ingest.connections` (timeouts, the connection cap, parse
errors), :mod:`~leadtui.ingest.answers` (problem+json and
the other answers), :mod:`~leadtui.ingest.source` (the capture source) and
:mod:`~leadtui.ingest.checks` (``leadtui doctor``). The payload rules are the parser's:
:mod:`leadtui.formats.website_form` and :mod:`leadtui.formats.whatsapp`. The names below are
the ones code outside imports from ``leadtui.ingest``.
"""

from __future__ import annotations

from leadtui.formats.website_form import INPUT_FIELDS, check_lead, lead_from_form
from leadtui.formats.whatsapp import meta_messages, twilio_message
from leadtui.ingest.auth import ApiKeyRing, RateLimiter, twilio_signature, twilio_valid
from leadtui.ingest.checks import check
from leadtui.ingest.routes import ROUTES, Route, openapi_document
from leadtui.ingest.source import IngestSource, ingest_factory

__all__ = [
    "INPUT_FIELDS",
    "ROUTES",
    "ApiKeyRing",
    "IngestSource",
    "RateLimiter",
    "Route",
    "check",
    "check_lead",
    "ingest_factory",
    "lead_from_form",
    "meta_messages",
    "openapi_document",
    "twilio_message",
    "twilio_signature",
    "twilio_valid",
]
