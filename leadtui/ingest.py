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
    400 for a body that is not JSON or a form or a longer Idempotency-Key, 401 without a valid
    key, 413 above 64 KiB, 415 for other content types, 422 (RFC 9457 problem+json) naming
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

``POST /api/whatsapp/twilio``, ``GET``/``POST /api/whatsapp/meta``
    WhatsApp messages via Twilio (``X-Twilio-Signature``, over ``LEADTUI_HTTP_PUBLIC_URL`` +
    path when that is set, else over the URL as requested) or Meta's Cloud API
    (``hub.challenge`` handshake, ``X-Hub-Signature-256``). Each message becomes a generic
    lead ``{source: whatsapp, name, phone, message}`` (the webhook's own fields kept beside
    it); the store appends a message from a phone it knows to that buyer's newest lead
    instead of making a new one. Redeliveries are recognised by the message id. A route whose
    secret is not configured answers 404.

``GET /api/leads?since=&limit=``
    For other tools (needs ``x-api-key``). ``since`` is a change cursor: an integer, 0 or
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
nothing is acknowledged that is not committed. ``LEADTUI_HTTP_RATE_PER_MINUTE`` is per API
key (0: no limit); the webhooks are not rate limited, so IndiaMART is never refused.

Writes go through one writer thread (group commit): handlers queue raw items, the writer
commits a batch of them in one transaction and applies their leads in one more, and each
request's answer waits for the commit its answer promises. The event loop never touches the
database; reads run in a small thread pool.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from aiohttp import web

from leadtui import config, parser
from leadtui.capture import (
    HealthCallback,
    Pipeline,
    RawItem,
    Source,
    SourceFactory,
    parse_item,
)
from leadtui.config import ApiKey, ConfigError, hash_api_key
from leadtui.formats.places import iso_country
from leadtui.formats.results import LEAD_FIELDS, SOURCES
from leadtui.formats.text import as_text, clean_text
from leadtui.store import FAILING_STATES, Health, Outcome, Store, StoreError

log = logging.getLogger(__name__)

LEAD_LIMIT = 64 * 1024  # POST /api/leads and Twilio forms
WEBHOOK_LIMIT = 1024 * 1024  # IndiaMART push and Meta: kept for review rather than refused
MAX_BATCH = 256  # raw items per group commit
WRITE_TIMEOUT = 30.0  # a request waits this long for its commit, then gets 503
LISTEN_RETRY = 5.0  # seconds between attempts to bind a busy port
STOP_POLL = 0.1
MAX_LIST = 1000
IDEMPOTENCY_KEY_MAX = 200  # characters of an Idempotency-Key header
KEYS_CHECK_SECONDS = 1.0  # a request looks at the config file for changed API keys this often
IST = timezone(timedelta(hours=5, minutes=30))

PROBLEM_JSON = "application/problem+json"
ORIGINAL_KEY = "request"  # in a lead JSON leadtui made: the request it was made from
BODY_TIMEOUT = 30.0  # a client gets this long to send its body (then 408)
PUSH_PREFIX = "/api/indiamart/push/"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# The lead fields a client may send (FORMATS 1.1 without kind and channel, which leadtui sets).
INPUT_FIELDS = tuple(f for f in LEAD_FIELDS if f not in {"kind", "channel"})
_PHONE_FIELDS = frozenset({"phone", "phone_alt", "receiver_phone"})
_EMAIL_FIELDS = frozenset({"email", "email_alt"})
_REQUIRED_ONE_OF = ("name", "phone", "email")

# Website form field names (lower-case, "-", "." and spaces read as "_") -> contract field.
FORM_ALIASES: dict[str, str] = {
    **{f: f for f in INPUT_FIELDS if f not in {"specs", "verified"}},
    **dict.fromkeys(
        (
            "full_name",
            "fullname",
            "your_name",
            "contact_name",
            "contact_person",
            "customer_name",
            "buyer_name",
        ),
        "name",
    ),
    **dict.fromkeys(
        (
            "mobile",
            "mobile_number",
            "mobile_no",
            "phone_number",
            "phone_no",
            "tel",
            "telephone",
            "contact_number",
            "contact_no",
            "your_phone",
            "your_mobile",
            "whatsapp",
            "whatsapp_number",
        ),
        "phone",
    ),
    **dict.fromkeys(("alternate_phone", "alt_phone", "phone2", "mobile2"), "phone_alt"),
    **dict.fromkeys(("e_mail", "email_address", "email_id", "your_email", "mail"), "email"),
    **dict.fromkeys(
        ("company_name", "organisation", "organization", "business_name", "firm"), "company"
    ),
    **dict.fromkeys(("town", "location"), "city"),
    **dict.fromkeys(("pin", "pin_code", "zip", "zipcode", "zip_code", "postal_code"), "pincode"),
    **dict.fromkeys(
        ("interest", "interested_in", "product_name", "service", "services"), "product"
    ),
    **dict.fromkeys(
        (
            "comments",
            "comment",
            "your_message",
            "enquiry",
            "inquiry",
            "query",
            "requirement",
            "requirements",
            "details",
            "description",
            "remarks",
            "notes",
        ),
        "message",
    ),
    "qty": "quantity",
    "budget": "order_value",
}
_FIRST_LAST = ("first_name", "last_name")
_JUNK_FIELD = re.compile(r"^_|captcha|turnstile|csrf|token|nonce|honeypot|^submit$|^action$")
MAX_FORM_SPECS = 50


class _TooLarge(Exception):
    pass


class _SlowBody(Exception):
    pass


# --------------------------------------------------------------------------- answers


def problem(
    status: int,
    detail: str,
    *,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An RFC 9457 problem answer. ``errors`` names each invalid field (``pointer``, ``detail``)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = list(errors)
    return web.json_response(body, status=status, headers=headers, content_type=PROBLEM_JSON)


def _field_error(name: str, detail: str, where: str = "body") -> dict[str, str]:
    pointer = f"#/{name.replace('~', '~0').replace('/', '~1')}" if where == "body" else name
    return {"field": name, "in": where, "pointer": pointer, "detail": detail}


# --------------------------------------------------------------------------- lead input


def check_lead(
    obj: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    """Every problem with a lead in the contract's field names, one entry per field.

    ``names`` maps a contract field to the name the client used (a form's ``mobile``), so the
    answer names the field as the client knows it. An empty list means the lead is fine.
    """
    names = names or {}
    errors: list[dict[str, str]] = []

    def bad(key: str, detail: str) -> None:
        errors.append(_field_error(names.get(key, key), detail))

    for key in INPUT_FIELDS:
        if key not in obj or obj[key] is None:
            continue
        value = obj[key]
        if key == "specs":
            if not isinstance(value, Mapping) or not all(
                isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
            ):
                bad(key, "must be an object of label: text pairs")
            continue
        if key == "verified":
            if not isinstance(value, list) or not all(
                v in ("phone", "email", "gst") for v in value
            ):
                bad(key, 'must be a list of "phone", "email" and "gst"')
            continue
        if isinstance(value, float) and not math.isfinite(value):
            bad(key, "must be text or a number")
            continue
        text = as_text(value)
        if text is None:
            bad(key, "must be text or a number")
            continue
        cleaned = clean_text(text)
        if cleaned is None:
            continue  # empty after cleaning: the same as absent
        if key in _PHONE_FIELDS and parser.normalize_phone(cleaned) is None:
            bad(key, "is not a phone number leadtui can read (e.g. +919876543210 or 9876543210)")
        elif key in _EMAIL_FIELDS and parser.normalize_email(cleaned) is None:
            bad(key, "is not an email address")
        elif key == "source" and cleaned.lower() not in SOURCES:
            bad(key, "must be one of " + ", ".join(sorted(SOURCES)))
        elif key == "received_at" and not _is_iso_time(cleaned):
            bad(key, "must be an ISO-8601 time with a UTC offset, e.g. 2026-03-02T11:17:14+05:30")
        elif key == "pincode" and not re.fullmatch(r"[0-9]{6}", cleaned.replace(" ", "")):
            bad(key, "must be a 6-digit PIN code")
        elif key == "country" and iso_country(cleaned) is None:
            bad(key, "must be an ISO 3166 country code such as IN, or a country name")
        elif key == "call_duration" and not cleaned.isdigit():
            bad(key, "must be a whole number of seconds")
    present = any(
        (parser.normalize_name(clean_text(as_text(obj.get(k)))) if k == "name" else None)
        or (k != "name" and clean_text(as_text(obj.get(k))))
        for k in _REQUIRED_ONE_OF
    )
    if not present and not errors:
        for key in _REQUIRED_ONE_OF:
            bad(key, "at least one of name, phone or email is required")
    return errors


def _is_iso_time(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def lead_from_form(fields: Iterable[tuple[str, str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """A website form's fields as a generic lead, and which form field gave each lead field.

    Known names and :data:`FORM_ALIASES` fill the contract's fields (the first non-empty value
    wins; a second phone becomes ``phone_alt``); ``first_name`` + ``last_name`` make the name;
    captcha, CSRF and other plumbing fields are dropped; the rest go to ``specs`` as labelled.
    """
    lead: dict[str, Any] = {}
    names: dict[str, str] = {}
    specs: dict[str, str] = {}
    first_last: dict[str, str] = {}
    for raw_name, raw_value in fields:
        value = raw_value.strip()
        lowered = raw_name.strip().lower()
        key = re.sub(r"[\s.\-]+", "_", lowered).strip("_[]")
        if not value or not key or _JUNK_FIELD.search(lowered) or _JUNK_FIELD.search(key):
            continue
        if key in _FIRST_LAST:
            first_last.setdefault(key, value)
            continue
        target = FORM_ALIASES.get(key)
        if target == "phone" and "phone" in lead and value != lead["phone"]:
            target = "phone_alt"  # a second, different number
        if target is not None and target not in lead:
            lead[target] = value
            names[target] = raw_name
        elif len(specs) < MAX_FORM_SPECS:
            label = raw_name.strip()[:100]
            specs[label] = f"{specs[label]}, {value}" if label in specs else value
    if "name" not in lead and first_last:
        lead["name"] = " ".join(first_last[k] for k in _FIRST_LAST if k in first_last)
        names["name"] = next(k for k in _FIRST_LAST if k in first_last)
    lead.setdefault("source", "website")
    if specs:
        lead["specs"] = specs
    return lead, names


def kept_as_json(lead: Mapping[str, Any], original: object) -> bytes:
    """The raw item for a request leadtui reads into a lead itself (a form, a WhatsApp hook).

    The pipeline reads generic lead JSON, so that is what is stored; the request as received
    rides along under :data:`ORIGINAL_KEY`, which the parser ignores, so nothing of it is lost.
    """
    data = {**lead, ORIGINAL_KEY: original}
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode()


def idempotency_key(key_name: str, header: str | None) -> str | None:
    """The raw item's dedupe key for an ``Idempotency-Key``, scoped to the API key's name."""
    if not header:
        return None
    value = header.strip().strip('"').strip()
    if not value:
        return None
    key = f"idem:{key_name}:{value}"
    if len(key) > 300:
        key = f"idem:{key_name[:60]}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"
    return key


# --------------------------------------------------------------------------- signatures


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of the URL + sorted ``name value`` pairs."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_valid(
    auth_token: str, url: str, params: Sequence[tuple[str, str]], presented: str
) -> bool:
    """Check a Twilio signature against the URL as given and with its default port toggled."""
    if not auth_token or not presented:
        return False
    ok = False
    for candidate in _with_and_without_port(url):
        expected = twilio_signature(auth_token, candidate, params)
        ok |= hmac.compare_digest(expected.encode(), presented.strip().encode())
    return ok


def _with_and_without_port(url: str) -> list[str]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return [url]
    other = (
        parts._replace(netloc=host)
        if port is not None
        else parts._replace(netloc=f"{host}:{default}")
    )
    return [url, urlunsplit(other)] if default is not None else [url]


def meta_signature_valid(app_secret: str, body: bytes, presented: str) -> bool:
    """Meta's ``X-Hub-Signature-256``: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    if not app_secret or not presented:
        return False
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), presented.strip().lower().encode())


# --------------------------------------------------------------------------- WhatsApp payloads


def whatsapp_lead(
    phone: str | None, name: str | None, message: str | None, received_at: str | None = None
) -> dict[str, Any]:
    """The generic lead a WhatsApp message becomes (the store may append it to a known buyer)."""
    lead: dict[str, Any] = {"source": "whatsapp", "name": name, "phone": phone, "message": message}
    if received_at:
        lead["received_at"] = received_at
    return {k: v for k, v in lead.items() if v}


def twilio_message(fields: Mapping[str, str]) -> tuple[dict[str, Any], str | None] | None:
    """A Twilio WhatsApp webhook's lead and dedupe key; None for a post that is no message."""
    wa_id = fields.get("WaId", "").strip()
    sender = fields.get("From", "").strip().removeprefix("whatsapp:").strip()
    phone = f"+{wa_id}" if wa_id.isdigit() else sender or None
    text = fields.get("Body", "").strip()
    media = fields.get("NumMedia", "0").strip()
    if media.isdigit() and int(media) > 0:
        note = f"[{media} attachment{'s' if media != '1' else ''}]"
        text = f"{text}\n{note}" if text else note
    if not phone and not text:
        return None
    if "Body" not in fields and not text:
        # A status callback (MessageStatus=sent/delivered/read about our own message, From our
        # number): an incoming message always has Body, empty only beside media.
        return None
    sid = fields.get("MessageSid", "").strip() or fields.get("SmsMessageSid", "").strip()
    lead = whatsapp_lead(phone, fields.get("ProfileName", "").strip() or None, text or None)
    lead[ORIGINAL_KEY] = dict(fields)
    return lead, (f"wa:twilio:{sid}"[:300] if sid else None)


def meta_messages(payload: object) -> list[tuple[dict[str, Any], str | None]] | None:
    """The messages of a WhatsApp Cloud API webhook as (lead, dedupe key) pairs.

    None when the payload is not a WhatsApp Business webhook at all; an empty list when it
    is one without messages (delivery statuses, which are not leads).
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("entry"), list):
        return None
    found: list[tuple[dict[str, Any], str | None]] = []
    for entry in payload["entry"]:
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, Mapping) else None
            if not isinstance(value, Mapping):
                continue
            contacts = value.get("contacts")
            known = {
                str(c.get("wa_id")): c
                for c in (contacts if isinstance(contacts, list) else [])
                if isinstance(c, Mapping)
            }
            messages = value.get("messages")
            for msg in messages if isinstance(messages, list) else []:
                if not isinstance(msg, Mapping):
                    continue
                sender = as_text(msg.get("from")) or ""
                phone = f"+{sender}" if sender.isdigit() else sender or None
                contact = known.get(sender)
                lead = whatsapp_lead(
                    phone,
                    _dig(contact, "profile", "name"),
                    _meta_text(msg),
                    _epoch_time(msg.get("timestamp")),
                )
                lead[ORIGINAL_KEY] = {"message": msg, "contact": contact}
                mid = as_text(msg.get("id"))
                found.append((lead, f"wa:meta:{mid}"[:300] if mid else None))
    return found


def _dig(obj: object, *path: str) -> str | None:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return as_text(obj)


def _meta_text(msg: Mapping[str, Any]) -> str:
    kind = as_text(msg.get("type")) or "message"
    text = (
        _dig(msg, "text", "body")
        or _dig(msg, "button", "text")
        or _dig(msg, "interactive", "button_reply", "title")
        or _dig(msg, "interactive", "list_reply", "title")
        or _dig(msg, kind, "caption")
    )
    if kind in {"image", "video", "audio", "document", "sticker", "location", "contacts"}:
        return f"{text}\n[{kind}]" if text else f"[{kind}]"
    return text or f"[{kind}]"


def _epoch_time(value: object) -> str | None:
    text = as_text(value)
    if not text or not text.isdigit() or len(text) > 12:
        return None
    return datetime.fromtimestamp(int(text), IST).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- API keys

_UNSEEN = ("unseen",)  # a config file signature no file has: read the file at the first look


def _file_signature(path: os.PathLike[str] | str) -> tuple[object, ...] | None:
    """What changes when a file is rewritten (``leadtui keys`` replaces it): None if absent."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # unreadable directory, say: reading it will say what is wrong
        return ("error", exc.errno)
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ApiKeyRing:
    """The API keys in force: the settings' keys, read again when the config file changes.

    ``leadtui keys add/remove`` rewrite the config file while the ingest runs. :meth:`refresh`
    looks at the file (one ``stat``) and, when it changed, reads the keys as a restart would,
    through :func:`config.load`: the file's ``[http.api_keys]`` plus ``LEADTUI_API_KEYS``
    from the environment. A file that is gone, unreadable or invalid keeps the keys in use,
    with one warning per change of the file. Logs name keys, never show them.
    """

    def __init__(self, settings: Any, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self.path, _explicit = config.config_file_path(settings.config_path, self._environ)
        self.keys: tuple[ApiKey, ...] = tuple(settings.api_keys)
        # A file read at startup is read again at the first look: it may have changed since
        # (a standby process loads its settings long before it takes over the capture).
        self._seen: tuple[object, ...] | None = None if settings.config_path is None else _UNSEEN
        self._fixed = bool(settings.api_keys_fixed)
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Re-read the keys if the config file changed. Blocking: run it off the event loop."""
        if self._fixed or not self._lock.acquire(blocking=False):
            return  # another request is looking right now
        try:
            seen = _file_signature(self.path)
            if seen == self._seen:
                return
            self._seen = seen
            if seen is None:
                log.warning(
                    "ingest: the config file %s is gone; keeping the %d API keys in use",
                    self.path,
                    len(self.keys),
                )
                return
            try:
                fresh = config.load(self.path, environ=self._environ).api_keys
            except (ConfigError, ValueError, OSError) as exc:
                log.warning(
                    "ingest: the config file %s changed but cannot be used (%s); keeping "
                    "the %d API keys in use",
                    self.path,
                    exc,
                    len(self.keys),
                )
                return
            if fresh != self.keys:
                added = sorted({k.name for k in set(fresh) - set(self.keys)})
                gone = sorted({k.name for k in set(self.keys) - set(fresh)})
                log.info(
                    "ingest: API keys reloaded from %s: %d in use (added: %s; removed: %s)",
                    self.path,
                    len(fresh),
                    ", ".join(added) or "none",
                    ", ".join(gone) or "none",
                )
                self.keys = fresh
        finally:
            self._lock.release()


# --------------------------------------------------------------------------- rate limit


class RateLimiter:
    """A token bucket per API key: ``per_minute`` requests a minute, bursts up to that many."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if self.capacity <= 0:
            return 0.0  # rate_per_minute = 0: no limit
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.refill)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.refill


# --------------------------------------------------------------------------- the writer


@dataclass(slots=True)
class _Job:
    item: RawItem
    future: asyncio.Future[Any]
    early: bool  # answered once the raw item is committed (webhooks), else once applied
    results: list[dict[str, Any]] | None = None  # what the item means, decided by the handler


class Writer:
    """One thread that commits what the handlers queue, in batches (group commit).

    A batch costs two transactions however many requests it holds: the raw items, then their
    leads. Each request's future is resolved after the commit its answer promises: the raw
    commit for webhooks (``early``), the lead commit for ``POST /api/leads``.
    """

    def __init__(
        self, pipeline: Pipeline, loop: asyncio.AbstractEventLoop, max_batch: int = MAX_BATCH
    ) -> None:
        self._pipeline = pipeline
        self._loop = loop
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("ingest: the writer is still committing; it finishes in the background")

    def submit(
        self, item: RawItem, *, early: bool, results: list[dict[str, Any]] | None = None
    ) -> asyncio.Future[Any]:
        """Queue an item; ``results`` stands in for parsing it (a lead the route refused)."""
        future: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put(_Job(item, future, early, results))
        return future

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            last = False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    last = True
                    break
                batch.append(more)
            self._commit(batch)
            if last:
                return

    def _commit(self, batch: list[_Job]) -> None:
        def committed(added: list[tuple[int, bool]]) -> None:
            self._settle(
                [(j.future, a, None) for j, a in zip(batch, added, strict=True) if j.early]
            )

        parsed = (
            [
                j.results
                if j.results is not None
                else parse_item(j.item.body, j.item.kind, j.item.channel)
                for j in batch
            ]
            if any(j.results is not None for j in batch)
            else None
        )
        try:
            outcomes = self._pipeline.accept_many([j.item for j in batch], committed, parsed)
        except Exception as exc:
            if not isinstance(exc, StoreError):
                log.exception("ingest: committing %d items failed", len(batch))
            else:
                log.warning("ingest: committing %d items failed: %s", len(batch), exc)
            self._settle([(j.future, None, exc) for j in batch])
            return
        self._settle(
            [(j.future, o, None) for j, o in zip(batch, outcomes, strict=True) if not j.early]
        )

    def _settle(self, entries: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
        if not entries:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            self._loop.call_soon_threadsafe(_resolve, entries)


def _resolve(entries: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, exc in entries:
        if future.done():  # the request gave up waiting
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)


# --------------------------------------------------------------------------- the application


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_T = TypeVar("_T")


@dataclass
class Ingest:
    """The aiohttp application and what its handlers share."""

    settings: Any
    store: Store
    writer: Writer
    readers: ThreadPoolExecutor
    limiter: RateLimiter = field(init=False)
    api_keys: ApiKeyRing = field(init=False)
    _keys_checked: float = field(init=False, default=-math.inf)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(int(self.settings.http_rate_per_minute))
        self.api_keys = ApiKeyRing(self.settings)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=LEAD_LIMIT, middlewares=[self._guard])
        app.router.add_post("/api/leads", self.post_lead)
        app.router.add_get("/api/leads", self.list_leads)
        app.router.add_post(PUSH_PREFIX + "{token}", self.indiamart_push)
        app.router.add_post("/api/whatsapp/twilio", self.twilio)
        app.router.add_get("/api/whatsapp/meta", self.meta_verify)
        app.router.add_post("/api/whatsapp/meta", self.meta)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/openapi.json", self.openapi)
        return app

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every answer is deliberate: no traceback, no secret, and a log line without keys."""
        start = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # aiohttp's own answers: unknown URL, wrong method
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            response = problem(exc.status, _generic_detail(exc.status), headers=headers)
        except _TooLarge:
            response = _too_large()
        except _SlowBody:
            response = problem(408, f"the body did not arrive within {BODY_TIMEOUT:.0f} s")
            response.force_close()
        except Exception:
            log.exception("ingest: %s %s failed", request.method, _log_path(request.path))
            response = problem(500, "the server failed to handle this request; it is logged")
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %d in %.1f ms",
                request.method,
                _log_path(request.path),
                response.status,
                (time.perf_counter() - start) * 1000,
            )
        return response

    async def _keys(self) -> tuple[ApiKey, ...]:
        """The API keys in force, after a look at the config file at most once a second."""
        now = time.monotonic()
        if now - self._keys_checked >= KEYS_CHECK_SECONDS:
            self._keys_checked = now
            await asyncio.get_running_loop().run_in_executor(None, self.api_keys.refresh)
        return self.api_keys.keys

    async def _authorise(self, request: web.Request) -> str | web.Response:
        """The API key's name, or the 401/429 answer."""
        presented = request.headers.get("x-api-key", "")
        name: str | None = None
        if presented:
            digest = hash_api_key(presented)
            for key in await self._keys():  # every key is compared: no early exit
                if hmac.compare_digest(digest.encode(), key.digest.encode()) and name is None:
                    name = key.name
        if name is None:
            return problem(
                401,
                "a valid API key is required in the x-api-key header",
                headers={"WWW-Authenticate": 'ApiKey header="x-api-key"'},
            )
        wait = self.limiter.take(name)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            return problem(
                429,
                f"this API key is over its rate of {self.settings.http_rate_per_minute} "
                f"requests a minute; retry after {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
        return name

    async def _commit(
        self, item: RawItem, *, early: bool, results: list[dict[str, Any]] | None = None
    ) -> Any:
        future = self.writer.submit(item, early=early, results=results)
        async with asyncio.timeout(WRITE_TIMEOUT):
            return await future

    async def _read(self, read: Callable[[], _T]) -> _T:
        """Run a database read in the reader threads: the event loop never waits on SQL."""
        return await asyncio.get_running_loop().run_in_executor(self.readers, read)

    # ------------------------------------------------------------------ POST /api/leads

    async def post_lead(self, request: web.Request) -> web.Response:
        auth = await self._authorise(request)
        if isinstance(auth, web.Response):
            return auth
        idempotency = request.headers.get("Idempotency-Key")
        if idempotency is not None and len(idempotency.strip()) > IDEMPOTENCY_KEY_MAX:
            return problem(
                400,
                f"the Idempotency-Key header is longer than {IDEMPOTENCY_KEY_MAX} characters",
                errors=[
                    _field_error(
                        "Idempotency-Key",
                        f"must be at most {IDEMPOTENCY_KEY_MAX} characters",
                        "header",
                    )
                ],
            )
        if request.content_length is not None and request.content_length > LEAD_LIMIT:
            return _too_large()
        media = request.content_type
        if media == "application/json" or media.endswith("+json"):
            body = await _read_body(request, LEAD_LIMIT)
            parsed = _lead_json(body)
            if isinstance(parsed, web.Response):
                return await self._refused(parsed, body, auth)
        elif media in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            try:
                async with asyncio.timeout(BODY_TIMEOUT):
                    form = await request.post()
            except web.HTTPRequestEntityTooLarge:
                return _too_large()
            except TimeoutError:
                raise _SlowBody from None
            except Exception:
                return problem(400, "the form could not be read (malformed encoding)")
            fields = [(k, v) for k, v in form.items() if isinstance(v, str)]
            lead, names = lead_from_form(fields)
            files = [k for k, v in form.items() if not isinstance(v, str)]
            original = {"content_type": media, "fields": fields, "files": files}
            body = kept_as_json(lead, original)
            errors = check_lead(lead, names)
            if errors:
                return await self._refused(_invalid(errors), body, auth)
        else:
            return problem(
                415,
                "send the lead as application/json, application/x-www-form-urlencoded "
                "or multipart/form-data",
                headers={
                    "Accept-Post": "application/json, application/x-www-form-urlencoded, "
                    "multipart/form-data"
                },
            )
        item = RawItem(
            body,
            source=f"http:{auth}",
            kind="json",
            channel="api",
            dedupe_key=idempotency_key(auth, idempotency),
        )
        try:
            outcome: Outcome = await self._commit(item, early=False)
            # A key seen before keeps its first request's item (nothing new is stored): the
            # same body is a replay, another body a client reusing the key for a new request.
            reused = item.dedupe_key is not None and await self._read(
                lambda: self.store.raw_body(outcome.raw_id) not in (None, body)
            )
        except (StoreError, TimeoutError):
            return _unavailable()
        if reused:
            return problem(
                422,
                "this Idempotency-Key was already used for a different request; "
                "send a new key with a new lead",
                errors=[
                    _field_error(
                        "Idempotency-Key",
                        "was already used for a different request body",
                        "header",
                    )
                ],
            )
        return _lead_answer(outcome)

    async def _refused(self, answer: web.Response, body: bytes, key_name: str) -> web.Response:
        """``answer`` (400 or 422), after keeping the refused lead in the review queue.

        A form plugin's webhook does not retry: a typo in one field must not lose the buyer.
        The body is stored as a failed item with the reason (an identical one only once), where
        ``leadtui review`` and the TUI show it. The answer is the same whether or not that worked.
        """
        problem_body = json.loads(cast(bytes, answer.body))
        reason = f"refused with HTTP {answer.status}: " + (
            "; ".join(f"{e['field'] or 'body'}: {e['detail']}" for e in problem_body["errors"])
            if problem_body.get("errors")
            else str(problem_body["detail"])
        )

        if not body.strip():
            return answer  # nothing was sent, nothing to lose
        item = RawItem(body, source=f"http:{key_name}", kind="json", channel="api")
        try:  # through the writer: group-committed, and never parsed into a lead by mistake
            await self._commit(item, early=False, results=[{"kind": "error", "error": reason}])
        except Exception as exc:  # the caller still learns what was wrong with its lead
            log.warning("ingest: keeping a refused lead for review failed: %s", exc)
        return answer

    # ------------------------------------------------------------------ GET /api/leads

    async def list_leads(self, request: web.Request) -> web.Response:
        auth = await self._authorise(request)
        if isinstance(auth, web.Response):
            return auth
        errors = [
            _field_error(name, "is not a parameter of this route (since, limit)", "query")
            for name in dict.fromkeys(request.query)
            if name not in {"since", "limit"}
        ]
        since_text = request.query.get("since", "").strip()
        limit_text = request.query.get("limit", "100").strip()
        limit = int(limit_text) if limit_text.isascii() and limit_text.isdigit() else 0
        if not 1 <= limit <= MAX_LIST:
            errors.append(
                _field_error("limit", f"must be a whole number from 1 to {MAX_LIST}", "query")
            )
        cursor: int | None = None
        since_ts: float | None = None
        if not since_text:
            cursor = 0
        elif since_text.isascii() and since_text.isdigit() and len(since_text) < 19:
            cursor = int(since_text)
        elif _is_iso_time(since_text):
            since_ts = datetime.fromisoformat(since_text).timestamp()
        else:
            plus = " (a + in the offset must be sent as %2B)" if " " in since_text else ""
            errors.append(
                _field_error(
                    "since",
                    "must be a change cursor (a whole number from an earlier answer) or an "
                    f"ISO-8601 time with a UTC offset{plus}",
                    "query",
                )
            )
        if errors:
            return _invalid(errors)

        def read() -> dict[str, Any] | int:
            if cursor is not None and cursor > (latest := self.store.cursor()):
                return latest  # a cursor from another (replaced or restored) database
            start = cursor if cursor is not None else self._cursor_at(since_ts or 0.0)
            changes = self.store.changes_since(start, limit)
            return {
                "cursor": changes.cursor,
                "more": changes.more,
                "leads": self.store.with_messages(changes.leads),
            }

        try:
            answer = await self._read(read)
        except StoreError:
            return _unavailable()
        if isinstance(answer, int):
            detail = (
                f"is ahead of this database's latest change ({answer}): the database was "
                "replaced or restored; start again from 0"
            )
            return _invalid([_field_error("since", detail, "query")])
        return web.json_response(answer)

    def _cursor_at(self, since_ts: float) -> int:
        """The change cursor at a time: the feed after it starts with the first lead changed
        (arrived, merged, triaged) at or after ``since_ts``. Runs in a reader thread.

        Leads take change values in commit order with their ``updated_ts``, so the feed is in
        time order too; a binary search over it costs a few indexed reads of one lead each.
        """
        lo, hi = 0, self.store.cursor()  # every lead up to lo changed before since_ts
        while lo < hi:
            mid = (lo + hi) // 2
            first = self.store.changes_since(mid, 1).leads  # the next change value's leads
            if not first or max(x.updated_ts for x in first) >= since_ts:
                hi = mid
            else:
                lo = first[0].seq
        return lo

    # ------------------------------------------------------------------ IndiaMART push

    async def indiamart_push(self, request: web.Request) -> web.Response:
        configured = self.settings.push_token.reveal()
        presented = request.match_info.get("token", "")
        if not configured or not hmac.compare_digest(presented.encode(), configured.encode()):
            return problem(404, _generic_detail(404))
        body = await _read_body(request, WEBHOOK_LIMIT)
        try:
            await self._commit(
                RawItem(body, source="push", kind="json", channel="push"), early=True
            )
        except (StoreError, TimeoutError):
            return _unavailable()  # not stored: IndiaMART must retry
        return web.json_response({"code": 200, "status": "received"})

    # ------------------------------------------------------------------ WhatsApp

    async def twilio(self, request: web.Request) -> web.Response:
        token = self.settings.twilio_auth_token.reveal()
        if not token:
            return problem(404, _generic_detail(404))
        if request.content_type != "application/x-www-form-urlencoded":
            return problem(415, "Twilio posts application/x-www-form-urlencoded")
        body = await _read_body(request, LEAD_LIMIT)
        try:
            params = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            params = None
        url = _public_url(self.settings, request)
        signature = request.headers.get("X-Twilio-Signature", "")
        if params is None or not twilio_valid(token, url, params, signature):
            return problem(403, "the X-Twilio-Signature does not match this request")
        message = twilio_message(dict(reversed(params)))
        if message is not None:
            lead, dedupe = message
            item = RawItem(
                json.dumps(lead, ensure_ascii=False, sort_keys=True).encode(),
                source="whatsapp:twilio",
                kind="json",
                channel="api",
                dedupe_key=dedupe,
            )
            try:
                await self._commit(item, early=True)
            except (StoreError, TimeoutError):
                return _unavailable()
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def meta_verify(self, request: web.Request) -> web.Response:
        configured = self.settings.meta_verify_token.reveal()
        if not configured:
            return problem(404, _generic_detail(404))
        mode = request.query.get("hub.mode", "")
        token = request.query.get("hub.verify_token", "")
        challenge = request.query.get("hub.challenge", "")
        if (
            mode == "subscribe"
            and hmac.compare_digest(token.encode(), configured.encode())
            and challenge
            and len(challenge) <= 200
            and challenge.isprintable()
        ):
            return web.Response(text=challenge, content_type="text/plain")
        return problem(403, "the verification request does not match the configured verify token")

    async def meta(self, request: web.Request) -> web.Response:
        secret = self.settings.meta_app_secret.reveal()
        if not secret:
            return problem(404, _generic_detail(404))
        body = await _read_body(request, WEBHOOK_LIMIT)
        if not meta_signature_valid(secret, body, request.headers.get("X-Hub-Signature-256", "")):
            return problem(403, "the X-Hub-Signature-256 does not match this body")
        try:
            payload: object = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            payload = None
        messages = meta_messages(payload)
        if messages is None:  # signed by Meta but not understood: keep it for review
            items = [RawItem(body, source="whatsapp:meta", kind="json", channel="api")]
        else:
            items = [
                RawItem(
                    json.dumps(lead, ensure_ascii=False, sort_keys=True).encode(),
                    source="whatsapp:meta",
                    kind="json",
                    channel="api",
                    dedupe_key=dedupe,
                )
                for lead, dedupe in messages
            ]
        try:
            await asyncio.gather(*(self._commit(item, early=True) for item in items))
        except (StoreError, TimeoutError):
            return _unavailable()
        return web.json_response({"status": "received", "messages": len(messages or [])})

    # ------------------------------------------------------------------ health, schema

    async def healthz(self, request: web.Request) -> web.Response:
        def read() -> list[Health]:
            self.store.cursor()  # the database answers
            return self.store.health()

        try:
            sources = await self._read(read)
        except Exception as exc:
            log.warning("ingest: health check: the database does not answer: %s", exc)
            return web.json_response(
                {"status": "unavailable", "database": "unavailable", "failing": [], "sources": []},
                status=503,
            )
        failing = [h.source for h in sources if h.failing]
        return web.json_response(
            {
                # Degraded is still 200: the ingest takes leads, so keep routing them here.
                "status": "degraded" if failing else "ok",
                "database": "ok",
                "failing": failing,
                "sources": [
                    {
                        "source": h.source,
                        "state": h.state,
                        "updated_at": datetime.fromtimestamp(h.updated_ts, IST).isoformat(
                            timespec="seconds"
                        )
                        if h.updated_ts
                        else None,
                    }
                    for h in sources
                ],
            }
        )

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or :class:`_TooLarge` once it passes ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in request.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise _TooLarge
    except TimeoutError:
        raise _SlowBody from None
    return bytes(body)


def _lead_json(body: bytes) -> dict[str, Any] | web.Response:
    try:
        value = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return problem(400, "the body is not valid JSON (UTF-8)")
    if not isinstance(value, dict):
        return _invalid([_field_error("", "the body must be one JSON object (a lead)")])
    errors = check_lead(value)
    if errors:
        return _invalid(errors)
    results = parser.parse(value, channel="api")
    if len(results) != 1 or results[0].get("kind") != "lead":
        detail = str(results[0].get("error") or "not a lead") if results else "not a lead"
        return _invalid([_field_error("", detail)])
    return value


def _lead_answer(outcome: Outcome) -> web.Response:
    lead_id = outcome.lead_ids[0] if outcome.lead_ids else None
    if outcome.status == "new":
        status, code = "created", 201
    elif outcome.status in {"duplicate", "updated"}:
        status, code = "duplicate", 200
    elif outcome.status == "reply":
        status, code = "appended", 200
    else:  # failed or ignored: kept in the review queue
        status, code = "review", 202
    body: dict[str, Any] = {"id": lead_id, "status": status, "item": outcome.raw_id}
    return web.json_response(body, status=code)


def _invalid(errors: list[dict[str, str]]) -> web.Response:
    fields = ", ".join(e["field"] or "(body)" for e in errors)
    return problem(422, f"invalid: {fields}", errors=errors)


def _too_large() -> web.Response:
    response = problem(413, f"the body is larger than {LEAD_LIMIT // 1024} KiB")
    response.force_close()
    return response


def _unavailable() -> web.Response:
    return problem(
        503,
        "the database is not available; the item was not accepted, retry",
        headers={"Retry-After": "5"},
    )


def _generic_detail(status: int) -> str:
    if status == 404:
        return "no such resource"
    if status == 405:
        return "this method is not allowed here; see the Allow header"
    return HTTPStatus(status).description or HTTPStatus(status).phrase


def _log_path(path: str) -> str:
    """The path for a log line: the push token is a credential and never logged."""
    if path.startswith(PUSH_PREFIX):
        return PUSH_PREFIX + "…"
    return path[:200]


def _public_url(settings: Any, request: web.Request) -> str:
    """The URL Twilio signed: the configured public URL plus the path, or what we were sent."""
    base = str(settings.http_public_url or "").rstrip("/")
    if base:
        return base + request.raw_path
    return str(request.url)


# --------------------------------------------------------------------------- OpenAPI


def _text(description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "number", "null"]}
    if description:
        schema["description"] = description
    return schema


def _problem_response(description: str, *, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if retry:
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}
        }
    return response


_LEAD_FIELD_NOTES = {
    "source": "indiamart, tradeindia, website, whatsapp or other (default other)",
    "phone": "any common Indian or international form; stored as E.164",
    "email": "stored lower-cased",
    "received_at": "ISO-8601 with a UTC offset; default: when leadtui received it",
    "pincode": "6 digits",
    "country": "ISO 3166 alpha-2 code or an English country name",
    "message": "free text; line breaks are kept",
    "external_id": "your system's id for the lead: the same id is the same lead",
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route (served at ``/api/openapi.json``)."""
    lead_in_props: dict[str, Any] = {}
    for name in INPUT_FIELDS:
        if name == "specs":
            lead_in_props[name] = {
                "type": ["object", "null"],
                "additionalProperties": {"type": ["string", "number"]},
                "description": "other label: value pairs of the requirement",
            }
        elif name == "verified":
            lead_in_props[name] = {
                "type": ["array", "null"],
                "items": {"enum": ["phone", "email", "gst"]},
            }
        elif name == "call_duration":
            lead_in_props[name] = {"type": ["integer", "string", "null"], "description": "seconds"}
        else:
            lead_in_props[name] = _text(_LEAD_FIELD_NOTES.get(name, ""))
    form_props = {
        name: {"type": "string"}
        for name in (
            "name",
            "full_name",
            "first_name",
            "last_name",
            "phone",
            "mobile",
            "tel",
            "email",
            "company",
            "city",
            "product",
            "interest",
            "message",
            "comments",
        )
    }
    form_schema = {
        "type": "object",
        "properties": form_props,
        "additionalProperties": {"type": "string"},
        "description": "A website form. Field names are matched case-insensitively with "
        "aliases (full_name, mobile, tel, comments, interest, …); unknown fields are kept in "
        "specs; captcha and CSRF fields are dropped.",
    }
    nullable_text = {"type": ["string", "null"]}
    lead_out_props: dict[str, Any] = {
        "id": {"type": "integer"},
        **{
            f: nullable_text
            for f in INPUT_FIELDS
            if f not in {"specs", "verified", "call_duration"}
        },
        "channel": {"type": "string"},
        "specs": {"type": "object", "additionalProperties": {"type": "string"}},
        "verified": {"type": "array", "items": {"type": "string"}},
        "call_duration": {"type": ["integer", "null"]},
        "status": {"type": "string"},
        "owner": nullable_text,
        "follow_up": nullable_text,
        "first_seen_at": nullable_text,
        "updated_at": nullable_text,
        "contacted_at": nullable_text,
        "contacted_by": nullable_text,
        "enquiry_no": {"type": "integer"},
        "missed_by_email": {"type": "boolean"},
        "notes": {"type": "integer"},
        "messages": {
            "type": "array",
            "description": "the buyer's later messages (replies, WhatsApp follow-ups), oldest first",
            "items": {
                "type": "object",
                "required": ["at", "text"],
                "properties": {"at": nullable_text, "text": {"type": "string"}},
            },
        },
    }
    lead_post_responses = {
        "201": {
            "description": "a new lead; the answer names it",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        },
        "200": {
            "description": "a lead already known (an Idempotency-Key replay, an identical body, "
            "or the same enquiry by leadtui's dedupe keys; a WhatsApp lead from a known phone "
            "is appended to that buyer's lead)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        },
        "202": {
            "description": "kept, but it went to the review queue instead of the table",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        },
        "400": _problem_response(
            "the body is not JSON or not a readable form, or the Idempotency-Key is longer "
            f"than {IDEMPOTENCY_KEY_MAX} characters"
        ),
        "401": _problem_response("no valid x-api-key"),
        "413": _problem_response("the body is larger than 64 KiB"),
        "415": _problem_response("not JSON, urlencoded or multipart form data"),
        "422": _problem_response(
            "invalid fields, each named in errors (the lead is kept in the review queue); or "
            "the Idempotency-Key was already used for a different request body"
        ),
        "429": _problem_response("this key is over its rate", retry=True),
        "503": _problem_response("the database is unavailable; nothing was stored", retry=True),
    }
    not_found = _problem_response("unknown URL, wrong token, or this channel is not configured")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "leadtui ingest",
            "version": "1",
            "description": "Adds leads from websites, WhatsApp and IndiaMART push to leadtui. "
            "A 2xx answer means the request's body is committed to the database.",
        },
        "paths": {
            "/api/leads": {
                "post": {
                    "operationId": "addLead",
                    "summary": "Add one lead (JSON with the contract's field names, or a form)",
                    "security": [{"apiKey": []}],
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
                            "description": "a replay with the same key and body answers 200 "
                            "with the first request's lead, and stores nothing new; the same "
                            "key with a different body is 422 (keys are per API key)",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": lead_in_props,
                                    "anyOf": [{"required": [k]} for k in _REQUIRED_ONE_OF],
                                    "description": "FORMATS 8: at least one of name, phone "
                                    "or email. Unknown fields are ignored.",
                                }
                            },
                            "application/x-www-form-urlencoded": {"schema": form_schema},
                            "multipart/form-data": {"schema": form_schema},
                        },
                    },
                    "responses": lead_post_responses,
                },
                "get": {
                    "operationId": "listLeads",
                    "summary": "Leads changed after a cursor or since a time",
                    "security": [{"apiKey": []}],
                    "parameters": [
                        {
                            "name": "since",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "a change cursor (0 or absent: from the start; then "
                            "the cursor of the last answer), or an ISO-8601 time with a UTC "
                            "offset (the leads that arrived or changed since then)",
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "leads in change order, oldest change first; "
                            "follow the cursor for the rest",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/LeadList"}
                                }
                            },
                        },
                        "401": _problem_response("no valid x-api-key"),
                        "422": _problem_response("since or limit is invalid"),
                        "429": _problem_response("this key is over its rate", retry=True),
                        "503": _problem_response("the database is unavailable", retry=True),
                    },
                },
            },
            "/api/indiamart/push/{token}": {
                "post": {
                    "operationId": "indiamartPush",
                    "summary": "IndiaMART's push API; the token is the credential",
                    "parameters": [
                        {
                            "name": "token",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {}}},
                        "description": "any body: it is stored, then parsed; what cannot be "
                        "parsed goes to the review queue",
                    },
                    "responses": {
                        "200": {
                            "description": "stored (also a duplicate or an unparseable body)",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Received"}
                                }
                            },
                        },
                        "404": not_found,
                        "413": _problem_response("the body is larger than 1 MiB"),
                        "503": _problem_response("the database is unavailable", retry=True),
                    },
                }
            },
            "/api/whatsapp/twilio": {
                "post": {
                    "operationId": "whatsappTwilio",
                    "summary": "WhatsApp messages via Twilio",
                    "parameters": [
                        {
                            "name": "X-Twilio-Signature",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        k: {"type": "string"}
                                        for k in (
                                            "From",
                                            "Body",
                                            "ProfileName",
                                            "WaId",
                                            "MessageSid",
                                        )
                                    },
                                    "additionalProperties": {"type": "string"},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "stored; an empty TwiML answer",
                            "content": {"text/xml": {"schema": {"type": "string"}}},
                        },
                        "403": _problem_response("the signature does not match"),
                        "404": not_found,
                        "413": _problem_response("the body is larger than 64 KiB"),
                        "415": _problem_response("not a urlencoded form"),
                        "503": _problem_response("the database is unavailable", retry=True),
                    },
                }
            },
            "/api/whatsapp/meta": {
                "get": {
                    "operationId": "whatsappMetaVerify",
                    "summary": "Meta's webhook verification handshake",
                    "parameters": [
                        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                        for n in ("hub.mode", "hub.verify_token", "hub.challenge")
                    ],
                    "responses": {
                        "200": {
                            "description": "the challenge, echoed",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "403": _problem_response("the verify token does not match"),
                        "404": not_found,
                    },
                },
                "post": {
                    "operationId": "whatsappMeta",
                    "summary": "WhatsApp Cloud API messages",
                    "parameters": [
                        {
                            "name": "X-Hub-Signature-256",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "stored",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Received"}
                                }
                            },
                        },
                        "403": _problem_response("the signature does not match"),
                        "404": not_found,
                        "413": _problem_response("the body is larger than 1 MiB"),
                        "503": _problem_response("the database is unavailable", retry=True),
                    },
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Database and capture sources (no key needed, no secrets shown)",
                    "responses": {
                        code: {
                            "description": text,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        }
                        for code, text in (
                            (
                                "200",
                                "ok, or degraded: a capture source is failing (named in "
                                "failing) while the database and this ingest work",
                            ),
                            ("503", "database unavailable"),
                        )
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "schemas": {
                "Accepted": {
                    "type": "object",
                    "required": ["id", "status", "item"],
                    "properties": {
                        "id": {"type": ["integer", "null"], "description": "the lead's id"},
                        "status": {"enum": ["created", "duplicate", "appended", "review"]},
                        "item": {"type": "integer", "description": "the stored raw item"},
                    },
                },
                "Received": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": "received"}},
                },
                "Lead": {
                    "type": "object",
                    "required": ["id", "source", "channel", "received_at", "status"],
                    "properties": lead_out_props,
                },
                "LeadList": {
                    "type": "object",
                    "required": ["cursor", "more", "leads"],
                    "properties": {
                        "cursor": {"type": "integer", "description": "pass as since next time"},
                        "more": {"type": "boolean", "description": "ask again: there may be more"},
                        "leads": {"type": "array", "items": {"$ref": "#/components/schemas/Lead"}},
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "database", "failing", "sources"],
                    "properties": {
                        "status": {"enum": ["ok", "degraded", "unavailable"]},
                        "database": {"enum": ["ok", "unavailable"]},
                        "failing": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "the sources that are not capturing (state "
                            + ", ".join(sorted(FAILING_STATES))
                            + "); not empty when status is degraded",
                        },
                        "sources": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["source", "state"],
                                "properties": {
                                    "source": {"type": "string"},
                                    "state": {"type": "string"},
                                    "updated_at": nullable_text,
                                },
                            },
                        },
                    },
                },
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["field", "in", "pointer", "detail"],
                                "properties": {
                                    "field": {"type": "string"},
                                    "in": {"enum": ["body", "query", "header"]},
                                    "pointer": {"type": "string"},
                                    "detail": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    }


# --------------------------------------------------------------------------- the source


@dataclass
class IngestSource:
    """The HTTP endpoint as a capture source: it listens only while this process captures."""

    settings: Any
    store: Store
    pipeline: Pipeline
    report: HealthCallback
    name: str = "http"
    url: str | None = None  # http://host:port once listening (the real port when 0 was asked)

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set; return within a second of it. Never raises."""
        try:
            asyncio.run(self._serve(stop))
        except Exception as exc:
            log.exception("ingest: the HTTP endpoint failed")
            self.report(
                Health(
                    "http",
                    "error",
                    "the HTTP endpoint failed; see the log",
                    last_error=str(exc)[:200],
                )
            )
            stop.wait()
        finally:
            self.url = None

    async def _serve(self, stop: threading.Event) -> None:
        stopping = _bridge(stop)
        try:
            host, port = self.settings.http_host_port
        except ConfigError as exc:
            self.report(Health("http", "error", str(exc), last_error=str(exc)))
            await stopping.wait()
            return
        loop = asyncio.get_running_loop()
        writer = Writer(self.pipeline, loop)
        readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest-read")
        ingest = Ingest(self.settings, self.store, writer, readers)
        runner = web.AppRunner(
            ingest.app(), access_log=None, handle_signals=False, shutdown_timeout=0.3
        )
        writer.start()
        await runner.setup()
        try:
            while not stopping.is_set() and not await self._listen(runner, host, port):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), LISTEN_RETRY)
            await stopping.wait()
        finally:
            self.url = None
            await runner.cleanup()  # stops listening, gives requests in flight 0.3 s
            await loop.run_in_executor(None, writer.stop, 0.4)
            readers.shutdown(wait=False, cancel_futures=True)

    async def _listen(self, runner: web.AppRunner, host: str, port: int) -> bool:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno in {98, 48, 10048}:  # EADDRINUSE on Linux, macOS, Windows
                detail = f"port {port} in use: set LEADTUI_HTTP_LISTEN"
            else:
                detail = f"cannot listen on {host}:{port}: {exc.strerror}; set LEADTUI_HTTP_LISTEN"
            log.warning("ingest: %s", detail)
            self.report(
                Health(
                    "http",
                    "error",
                    detail,
                    last_error=detail,
                    next_retry_ts=time.time() + LISTEN_RETRY,
                )
            )
            return False
        bound = runner.addresses[0] if runner.addresses else (host, port)
        shown = f"[{bound[0]}]" if ":" in str(bound[0]) else str(bound[0])
        self.url = f"http://{shown}:{bound[1]}"
        channels = ["leads"]
        if self.settings.push_token:
            channels.append("IndiaMART push")
        if self.settings.twilio_auth_token or self.settings.meta_app_secret:
            channels.append("WhatsApp")
        log.info("ingest: listening on %s", self.url)
        self.report(
            Health(
                "http",
                "listening",
                f"{self.url} ({', '.join(channels)})",
                last_success_ts=time.time(),
            )
        )
        return True


def _bridge(stop: threading.Event) -> asyncio.Event:
    """An asyncio event set as soon as the capture service sets ``stop`` (from its thread)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def watch() -> None:
        stop.wait()
        with contextlib.suppress(RuntimeError):  # the loop has ended already
            loop.call_soon_threadsafe(stopping.set)

    threading.Thread(target=watch, name="ingest-stop", daemon=True).start()
    return stopping


def ingest_factory(settings: Any) -> SourceFactory:
    """The capture source factory for the HTTP ingest (``build_factories`` calls it)."""

    def make(store: Store, pipeline: Pipeline, report: HealthCallback) -> Source:
        return IngestSource(settings, store, pipeline, report)

    return make
