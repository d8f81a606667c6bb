"""The output contract (FORMATS 1): result kinds, their keys in order, and their builders.

Every family builds its result through these functions, so key order, ``null`` for absent
values (never ``""``) and control-character stripping hold for every result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec

from leadtui.formats.text import clean_text, one_line

Result = dict[str, Any]

LEAD_FIELDS: tuple[str, ...] = (
    "kind",
    "source",
    "channel",
    "external_id",
    "query_type",
    "received_at",
    "name",
    "company",
    "phone",
    "phone_alt",
    "email",
    "email_alt",
    "address",
    "city",
    "state",
    "pincode",
    "country",
    "product",
    "category",
    "quantity",
    "unit",
    "order_value",
    "requirement_type",
    "message",
    "specs",
    "call_duration",
    "receiver_phone",
    "message_id",
    "verified",
    "member_since",
)
REPLY_FIELDS: tuple[str, ...] = (
    "kind",
    "source",
    "channel",
    "name",
    "company",
    "product",
    "phone",
    "email",
    "messages",
    "received_at",
    "message_id",
)
SOURCES = frozenset(
    {
        "indiamart",
        "tradeindia",
        "exportersindia",
        "website",
        "whatsapp",
        "facebook",
        "justdial",
        "other",
    }
)
VERIFIABLE = ("phone", "email", "gst")

_STRUCTURED = frozenset({"kind", "specs", "verified", "call_duration", "message"})


P = ParamSpec("P")


class NotUnderstood(Exception):
    """A family recognised the item but could not read it; the text says why, for a user."""


def guarded(family: str, parse: Callable[P, Result], *args: P.args, **kwargs: P.kwargs) -> Result:
    """Run one family's parser; whatever goes wrong becomes an ``error`` naming the family."""
    try:
        return parse(*args, **kwargs)
    except NotUnderstood as exc:
        return error(str(exc))
    except Exception as exc:  # a bug or an input nobody foresaw: report it, never raise
        return error(failure(family, exc))


def failure(family: str, exc: Exception) -> str:
    """The error text for a family that crashed: which one, and what it raised."""
    return f"{family} parser failed ({type(exc).__name__}: {exc}); the item is kept for review"


def new_lead(source: str, channel: str) -> Result:
    """An empty lead: every field null, ``specs`` ``{}``, ``verified`` ``[]``."""
    lead: Result = dict.fromkeys(LEAD_FIELDS)
    lead.update(kind="lead", source=source, channel=channel, specs={}, verified=[])
    return lead


def finish_lead(lead: Result) -> Result:
    """Clean every text field in place and return the lead in contract order."""
    for key in LEAD_FIELDS:
        if key not in _STRUCTURED:
            value = lead[key]
            lead[key] = clean_text(value) if isinstance(value, str) else None
    lead["message"] = (
        clean_text(lead["message"], multiline=True) if isinstance(lead["message"], str) else None
    )
    specs: dict[str, str] = {}
    for label, value in lead["specs"].items():
        clean_label, clean_value = clean_text(label), clean_text(value)
        if clean_label and clean_value:
            specs[clean_label] = clean_value
    lead["specs"] = specs
    marks = set(lead["verified"])
    lead["verified"] = [mark for mark in VERIFIABLE if mark in marks]
    if not isinstance(lead["call_duration"], int) or isinstance(lead["call_duration"], bool):
        lead["call_duration"] = None
    return {key: lead[key] for key in LEAD_FIELDS}


def reply(
    *,
    name: str | None,
    company: str | None,
    product: str | None,
    phone: str | None,
    messages: list[str],
    received_at: str | None,
    message_id: str | None,
) -> Result:
    """A buyer's message on an existing IndiaMART conversation (FORMATS 1.2)."""
    kept = [m for m in (clean_text(m, multiline=True) for m in messages) if m]
    return {
        "kind": "reply",
        "source": "indiamart",
        "channel": "email",
        "name": clean_text(name),
        "company": clean_text(company),
        "product": clean_text(product),
        "phone": phone,
        "email": None,
        "messages": kept,
        "received_at": received_at,
        "message_id": clean_text(message_id),
    }


def ignored(reason: str, message_id: str | None = None) -> Result:
    """A well-formed item that is not a lead (FORMATS 1.3)."""
    return {"kind": "ignored", "reason": one_line(reason), "message_id": clean_text(message_id)}


def error(text: str) -> Result:
    """An item that could not be understood (FORMATS 1.4): one line, for a user."""
    return {"kind": "error", "error": one_line(text) or "not understood"}
