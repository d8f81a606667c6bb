"""Turn one raw item into lead results: the part that decides whether a lead is understood.

``parse(raw)`` takes the bytes of one email or one decoded JSON body and returns a list
of result dicts in the contract of FORMATS.md: ``lead``, ``reply``, ``ignored`` or
``error``. It is pure (no I/O) and never raises, whatever the input.

Two registries say which family reads an item, first match wins:

- :data:`EMAIL_FAMILIES`: each family *claims* a mail from its sender and subject (or, for
  a subject IndiaMART has reworded, from its body) and *parses* its rendered text lines.
  A mail no family claims is ``ignored`` with the reason.
- :data:`JSON_SHAPES`: IndiaMART push/pull envelopes, bare v2 and v1 rows, JustDial's push
  (as the ingest keeps it), TradeIndia and ExportersIndia API inquiries, spreadsheet rows,
  generic leads.

A new IndiaMART template is a new alternative in the pattern that reads that layout; a
new kind of mail is one function pair and one row below. Every family runs inside
:func:`~leadtui.formats.results.guarded`, so a bug in one becomes an ``error`` naming the
family, and the raw item stays in the review queue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from leadtui.formats import (
    authentication,
    exportersindia_api,
    generic,
    indiamart_api,
    indiamart_mail,
    justdial,
    meta_leads,
    spreadsheet,
    tradeindia_api,
    tradeindia_mail,
)
from leadtui.formats.mime import BodyTooLarge, Mail
from leadtui.formats.results import (
    LEAD_FIELDS,
    REPLY_FIELDS,
    NotUnderstood,
    Result,
    error,
    failure,
    guarded,
    ignored,
)
from leadtui.formats.text import (
    clean_text,
    normalize_email,
    normalize_name,
    normalize_phone,
    one_line,
)

__all__ = [
    "EMAIL_FAMILIES",
    "JSON_SHAPES",
    "LEAD_FIELDS",
    "REPLY_FIELDS",
    "clean_text",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
    "parse",
    "parse_json_bytes",
    "readable_email",
]

MAX_EMAIL_BYTES = 30_000_000
API_CHANNELS = ("push", "pull", "api")


# ---------------------------------------------------------------- emails


@dataclass(frozen=True)
class EmailFamily:
    """One family of mail layouts: who claims a mail, and how its lines are read."""

    name: str
    claims: Callable[[Mail], bool]
    parse: Callable[[Mail, Sequence[str]], Result]


# Precedence matters: a reply is claimed before any enquiry (both come from buyershelp+),
# a phone or export subject before the plain "Enquiry for" one.
EMAIL_FAMILIES: tuple[EmailFamily, ...] = (
    EmailFamily("IndiaMART buyer reply", indiamart_mail.is_reply, indiamart_mail.parse_reply),
    EmailFamily(
        "IndiaMART phone enquiry",
        indiamart_mail.is_phone_enquiry,
        indiamart_mail.parse_phone_enquiry,
    ),
    EmailFamily(
        "IndiaMART export enquiry", indiamart_mail.is_export_enquiry, indiamart_mail.parse_enquiry
    ),
    EmailFamily("IndiaMART BuyLead", indiamart_mail.is_buylead, indiamart_mail.parse_buylead),
    EmailFamily("IndiaMART enquiry", indiamart_mail.is_enquiry, indiamart_mail.parse_enquiry),
    EmailFamily("TradeIndia inquiry", tradeindia_mail.is_inquiry, tradeindia_mail.parse_inquiry),
)


def _read_lines(family: EmailFamily, mail: Mail) -> Result:
    """The HTML part is authoritative; the text part is the fallback when it cannot be read."""
    if not mail.lines:
        what = (
            "an unfilled template as its only text"
            if mail.text
            else "no readable text or HTML part"
        )
        raise NotUnderstood(f"{family.name} email with {what}")
    try:
        return family.parse(mail, mail.lines)
    except NotUnderstood as html_failure:
        if not (mail.html and mail.text_lines):
            raise
        try:
            return family.parse(mail, mail.text_lines)
        except NotUnderstood:
            raise html_failure from None


def _not_a_lead(mail: Mail) -> Result:
    if indiamart_mail.from_indiamart(mail):
        reason = indiamart_mail.not_a_lead_reason(mail)
    elif tradeindia_mail.from_tradeindia(mail):
        reason = tradeindia_mail.not_a_lead_reason(mail)
    else:
        reason = (
            f"not a lead: mail from {mail.sender_domain or mail.sender} "
            "(only indiamart.com and tradeindia.com carry leads)"
        )
    return ignored(reason, mail.message_id)


def _marketplace(mail: Mail) -> str | None:
    """The marketplace domain a mail says it comes from, if any."""
    if indiamart_mail.from_indiamart(mail):
        return indiamart_mail.DOMAIN
    if tradeindia_mail.from_tradeindia(mail):
        return tradeindia_mail.DOMAIN
    return None


def _reachable(result: Result, mail: Mail) -> Result:
    """A lead nobody can answer (no phone, email or reply address) goes to review.

    Such a "lead" is what forged or garbled mail produces; in the table it would be a row
    the seller can do nothing with. IndiaMART's masked-number enquiries still carry the
    Reply-To relay, so they stay leads.
    """
    if result["kind"] != "lead" or mail.reply_address:
        return result
    if any(result[key] for key in ("phone", "phone_alt", "email", "email_alt")):
        return result
    return error(
        f"{result['source']} lead email with no way to reach the buyer (no phone, email or "
        f"reply address; name {result['name']!r}, subject {mail.subject!r}): kept for review"
    )


_OUR_MESSAGE_ID = re.compile(r"\.leadtui@", re.IGNORECASE)  # mailer.build's make_msgid("leadtui")


def own_mail(mail: Mail, own: Collection[str]) -> str | None:
    """Why ``mail`` is the seller's own (a reply leadtui or the seller sent, come back into the
    watched folder, or relayed back by the marketplace), or None.

    Own: From one of the seller's addresses (``own``: seller.emails, the SMTP and mailbox
    logins), or a Message-ID that leadtui's mailer made (``<….leadtui@your.domain>``; the
    domain alone is not enough: a company server may give a forwarded IndiaMART mail a
    Message-ID of its own domain). Such mail is never a lead nor a buyer's reply.
    """
    addresses = {a.strip().lower() for a in own if "@" in a}
    if mail.sender in addresses:
        return f"your own mail (from {mail.sender})"
    message_id = mail.message_id or ""
    if _OUR_MESSAGE_ID.search(message_id):
        return "a reply leadtui sent"
    return None


def _parse_email(raw: bytes, own: Collection[str] = ()) -> Result:
    if not raw.strip():
        return error("empty input: not an email")
    if len(raw) > MAX_EMAIL_BYTES:
        return error(f"email of {len(raw):,} bytes is larger than {MAX_EMAIL_BYTES:,}; not read")
    mail = Mail(raw)
    if not any(name in mail.headers for name in ("from", "subject", "date", "message-id")):
        start = one_line(raw[:40].decode("utf-8", "replace"), 40)
        return error(f"not an email: no From, Subject or Date header (starts with {start!r})")
    if not mail.sender:
        return error(f"email without a From address (subject {mail.subject!r})")
    if why := own_mail(mail, own):
        return ignored(f"not a lead: {why}", mail.message_id)
    try:
        family = next((family for family in EMAIL_FAMILIES if family.claims(mail)), None)
    except BodyTooLarge as exc:
        return error(f"email from {mail.sender}: {exc}")
    if family is None:
        return _not_a_lead(mail)
    marketplace = _marketplace(mail)
    if marketplace and (
        why := authentication.forged(mail.headers.get("authentication-results"), marketplace)
    ):
        return error(f"{family.name} email from {mail.sender} failed authentication: {why}")
    return _reachable(guarded(family.name, _read_lines, family, mail), mail)


# ---------------------------------------------------------------- JSON


@dataclass(frozen=True)
class JsonShape:
    """One shape of JSON object: how to recognise it and the channel it implies.

    ``channel`` is inferred for the object on its own; ``in_list`` for the object as an
    item of a bare list (a list of IndiaMART rows is a v1 pull response, FORMATS 1.1).
    """

    name: str
    claims: Callable[[Mapping[str, Any]], bool]
    channel: Callable[[Mapping[str, Any]], str]
    parse: Callable[[Mapping[str, Any], str], list[Result]]
    in_list: str | None = None
    pulled: bool = True  # False: never what a marketplace's pull API answers


def _one(
    parse: Callable[[Mapping[str, Any], str], Result],
) -> Callable[[Mapping[str, Any], str], list[Result]]:
    return lambda obj, channel: [parse(obj, channel)]


JSON_SHAPES: tuple[JsonShape, ...] = (
    JsonShape(
        "IndiaMART API envelope",
        indiamart_api.is_envelope,
        indiamart_api.envelope_channel,
        indiamart_api.parse_envelope,
    ),
    JsonShape(
        "IndiaMART v2 lead",
        indiamart_api.is_v2_row,
        lambda _: "push",
        _one(indiamart_api.parse_v2_row),
        in_list="pull",
    ),
    JsonShape(
        "IndiaMART v1 row",
        indiamart_api.is_v1_row,
        lambda _: "pull",
        _one(indiamart_api.parse_v1_row),
        in_list="pull",
    ),
    JsonShape(
        "Meta lead ads notification",
        meta_leads.is_notification,
        lambda _: "push",
        meta_leads.parse_notification,
    ),
    JsonShape(
        "Meta lead ads lead",
        meta_leads.is_graph_lead,
        lambda _: "pull",
        _one(meta_leads.parse_graph_lead),
        in_list="pull",
    ),
    JsonShape("spreadsheet row", spreadsheet.is_row, lambda _: "api", _one(spreadsheet.parse_row)),
    # Before the generic lead: a JustDial raw item carries the request beside its fields.
    JsonShape(
        "JustDial lead", justdial.is_justdial, lambda _: "push", _one(justdial.parse_justdial)
    ),
    # Before the generic lead: their rows carry contract names too (message, name, email).
    JsonShape(
        "TradeIndia API inquiry",
        tradeindia_api.is_inquiry,
        lambda _: "pull",
        tradeindia_api.parse,
        in_list="pull",
    ),
    JsonShape(
        "ExportersIndia API inquiry",
        exportersindia_api.is_inquiry,
        lambda _: "pull",
        exportersindia_api.parse,
        in_list="pull",
    ),
    JsonShape(
        "generic lead",
        generic.is_generic,
        lambda _: "api",
        _one(generic.parse_generic),
        pulled=False,
    ),
)


def _describe(obj: Mapping[str, Any]) -> str:
    keys = [one_line(str(key), 30) for key in list(obj)[:8]]
    more = ", …" if len(obj) > 8 else ""
    return f"an object with keys {', '.join(keys)}{more}" if keys else "an empty object"


def _parse_object(obj: Mapping[str, Any], channel: str | None, *, in_list: bool) -> list[Result]:
    for shape in JSON_SHAPES:
        if shape.claims(obj):
            inferred = (in_list and shape.in_list) or shape.channel(obj)
            chosen = channel or inferred
            if chosen == "pull" and not shape.pulled:  # a vendor's inquiry missing its id
                return [error(f"pulled item that is no marketplace's inquiry: {_describe(obj)}")]
            try:
                return shape.parse(obj, chosen)
            except NotUnderstood as exc:
                return [error(str(exc))]
            except Exception as exc:  # as guarded() does for one result
                return [error(failure(shape.name, exc))]
    return [
        error(
            f"unknown JSON shape: {_describe(obj)} (expected an IndiaMART push or pull "
            "response, legacy v1 rows, or a lead with the contract's field names)"
        )
    ]


def _parse_json(value: object, channel: str | None) -> list[Result]:
    if isinstance(value, Mapping):
        return _parse_object(value, channel, in_list=False)
    if isinstance(value, list):
        if value and not any(isinstance(item, Mapping) for item in value):
            return [
                error(
                    f"unknown JSON shape: a list of {type(value[0]).__name__} (expected lead objects)"
                )
            ]
        results: list[Result] = []
        for item in value:
            if isinstance(item, Mapping):
                results += _parse_object(item, channel, in_list=True)
            else:
                results.append(
                    error(f"JSON list item that is a {type(item).__name__}, not a lead object")
                )
        return results
    if isinstance(value, str):
        return [
            error("a JSON string is not a lead (pass an email as bytes, a payload as an object)")
        ]
    kind = "null" if value is None else type(value).__name__
    return [error(f"unknown JSON shape: {kind} (expected an object or a list of objects)")]


# ---------------------------------------------------------------- public API


def parse(
    raw: object, *, channel: str | None = None, own: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Parse one item: the bytes of an RFC 822 email, or an already-decoded JSON value.

    ``channel`` (``push``, ``pull`` or ``api``) says how a JSON item arrived; without it
    the channel is inferred from the envelope (FORMATS 1.1). Emails are always ``email``.
    ``own`` are the seller's own addresses: their mail is ignored (see :func:`own_mail`).
    Never raises: failures are ``{"kind": "error", "error": …}`` results.
    """
    try:
        if isinstance(raw, bytes | bytearray | memoryview):
            return [_parse_email(bytes(raw), own)]
        if channel is not None and channel not in API_CHANNELS:
            return [error(f"unknown channel {channel!r} (expected push, pull or api)")]
        return _parse_json(raw, channel)
    except Exception as exc:  # the last line of defence: the guarantee is "never raises"
        return [error(failure("leadtui", exc))]


def readable_email(raw: bytes) -> str:
    """An email as a person reads it: From, To, Date and Subject, then its text lines.

    For the lead's detail screen, where the source (base64, quoted-printable HTML) cannot be
    read. Pure, and never raises: what cannot be decoded is shown as it is.
    """
    try:
        mail = Mail(raw[:MAX_EMAIL_BYTES])
        labels = (("From", "from"), ("To", "to"), ("Date", "date"), ("Subject", "subject"))
        head = [f"{label}: {value}" for label, name in labels if (value := mail.header(name))]
        try:
            body = mail.lines
        except BodyTooLarge as exc:
            body = [str(exc)]
        return "\n".join([*head, "", *body] if head else body)
    except Exception:  # a parser bug must not hide the email: show its bytes
        return raw.decode("utf-8", errors="replace")


def parse_json_bytes(data: bytes, *, channel: str | None = None) -> list[dict[str, Any]]:
    """Decode a JSON body (an HTTP request, a ``.json`` file), then :func:`parse` it.

    Bad UTF-8, invalid JSON and nesting too deep to decode become an ``error`` result.
    """
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [error(f"not JSON: invalid UTF-8 at byte {exc.start}")]
    except Exception as exc:
        return [error(f"not JSON: {type(exc).__name__}")]
    if not text.strip():
        return [error("not JSON: the body is empty")]
    try:
        value = json.loads(text)
    except RecursionError:
        return [error("not JSON: nested too deeply to decode")]
    except ValueError as exc:  # JSONDecodeError, and integers beyond Python's digit limit
        return [error(f"not JSON: {exc}")]
    return parse(value, channel=channel)
