"""TradeIndia's inquiry API (``my_inquiry.html``): one inquiry object → a lead.

The field names come from public integrations, not from TradeIndia's documentation:
nilpatel42/tradeindia_connect (``tradeindia_connect/api.py`` and its settings' field list) and a
public Laravel CRM that syncs ``my_inquiry.html``. Confirmed there: ``rfi_id`` (the inquiry id,
the same one TradeIndia's emails carry in their ``ext`` link, FORMATS 4), ``sender_name``,
``sender_co``, ``sender_email``, ``sender_mobile``, ``sender_city``, ``sender_state``,
``sender_country``, ``sender_uid``, ``subject``, ``product_name``, ``quantity``,
``generated_date`` and ``message``: HTML whose requirement comes first and whose "Sender
Details" block repeats the buyer's contact. ``generated_time`` is listed by
``shared/CHANNELS.md`` but was not seen in that code: it is read only beside
``generated_date``.

Every other field (``receiver_name``, ``sender_uid``, a field TradeIndia adds later) is kept
on the lead as a spec, labelled with its API name, so nothing the API said is dropped; the raw
inquiry is kept as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from leadtui.formats.html import html_to_lines
from leadtui.formats.places import iso_country, state_name
from leadtui.formats.requirement import apply_pairs
from leadtui.formats.results import Result, error, finish_lead, guarded, new_lead
from leadtui.formats.text import (
    IST,
    api_time,
    as_text,
    emails_in,
    first_two,
    normalize_name,
    phones_in,
    some_keys,
    text_reader,
)

ID_FIELD = "rfi_id"
# Any of these marks an object as a TradeIndia inquiry: names no other shape or website form
# uses (``sender_name`` or ``product_name`` alone could be a form's, so they do not count).
MARKERS = frozenset({ID_FIELD, "sender_co", "sender_uid", "generated_date", "generated_time"})
WRAPPERS = ("inquiries", "data", "results", "items", "response")  # seen in public clients
MAPPED = frozenset(
    {
        ID_FIELD,
        "sender_name",
        "sender_co",
        "sender_email",
        "sender_mobile",
        "sender_city",
        "sender_state",
        "sender_country",
        "subject",
        "product_name",
        "quantity",
        "message",
        "generated_date",
        "generated_time",
    }
)
MAX_SPECS = 40

_SENDER_DETAILS = re.compile(r"sender\s+details\s*:?", re.IGNORECASE)
_SEPARATOR = re.compile(r"[-_=*]{5,}")
_BOILERPLATE = re.compile(r"contact\s+(?:the\s+)?buyer\s+with\s+your\s+best\s+offer\.?", re.I)
_CONTACT = re.compile(
    r"(name|company|e-?mail|mobile|phone|city|state|country)\s*(?:-|–|:)\s*(.*)", re.IGNORECASE
)
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


def is_inquiry(obj: Mapping[str, Any]) -> bool:
    return not MARKERS.isdisjoint(obj)


def listed_time(date: str | None, clock: str | None = None) -> str | None:
    """An API's zone-less IST date (and time) as ISO-8601; a bare date is its midnight."""
    if not date:
        return None
    if found := api_time(f"{date} {clock}" if clock else date):
        return found
    if found := api_time(date):
        return found
    match = _DATE.fullmatch(date.strip())
    if match is None:
        return None
    try:
        year, month, day = (int(g) for g in match.groups())
        return datetime(year, month, day, tzinfo=IST).isoformat()
    except ValueError:
        return None


def keep_unknown(lead: Result, row: Mapping[str, Any], mapped: Iterable[str]) -> None:
    """Every field the mapping does not read becomes a spec (its API name → its value)."""
    known = set(mapped)
    pairs: list[tuple[str, str]] = []
    for key, value in list(row.items())[: MAX_SPECS * 2]:
        if key in known or value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        pairs.append((str(key), text[:2000]))
    for label, text in pairs[:MAX_SPECS]:
        lead["specs"].setdefault(label, text)


def reachable(lead: Result, family: str) -> Result:
    """A lead nobody can answer (no phone and no email) goes to review, as for email."""
    if any(lead[key] for key in ("phone", "phone_alt", "email", "email_alt")):
        return lead
    return error(
        f"{family} with no phone or email (id {lead['external_id']!r}, name {lead['name']!r}): "
        "kept for review"
    )


def split_message(markup: str | None) -> tuple[str | None, dict[str, str]]:
    """The requirement text, and the "Sender Details" block as label → value."""
    if not markup:
        return None, {}
    said: list[str] = []
    contact: dict[str, str] = {}
    in_sender = False
    for line in html_to_lines(markup):
        if _SENDER_DETAILS.fullmatch(line):
            in_sender = True
        elif _SEPARATOR.fullmatch(line) or _BOILERPLATE.fullmatch(line):
            continue
        elif in_sender and (match := _CONTACT.fullmatch(line)):
            contact.setdefault(match[1].lower().replace("-", ""), match[2])
        elif not in_sender:
            said.append(line)
    return ("\n".join(said) or None), contact


def parse_inquiry(row: Mapping[str, Any], channel: str) -> Result:
    """One inquiry of ``my_inquiry.html``; the API's fields first, the message's block after."""

    get = text_reader(row)

    external_id = get(ID_FIELD)
    if not external_id:
        keys = some_keys(row)
        return error(f"TradeIndia inquiry without an rfi_id (keys: {keys}): kept for review")
    message, contact = split_message(as_text(row.get("message")))
    lead = new_lead("tradeindia", channel)
    lead["external_id"] = external_id
    lead["received_at"] = listed_time(get("generated_date"), get("generated_time"))
    lead["name"] = normalize_name(get("sender_name")) or normalize_name(contact.get("name"))
    lead["company"] = get("sender_co") or contact.get("company")
    lead["phone"], lead["phone_alt"] = first_two(
        phones_in(get("sender_mobile")) + phones_in(contact.get("mobile"))
        + phones_in(contact.get("phone"))
    )  # fmt: skip
    lead["email"], lead["email_alt"] = first_two(
        emails_in(get("sender_email")) + emails_in(contact.get("email"))
    )
    lead["city"] = get("sender_city") or contact.get("city")
    state = get("sender_state") or contact.get("state")
    lead["state"] = state_name(state) or state
    lead["country"] = iso_country(get("sender_country") or contact.get("country"))
    lead["product"] = get("product_name") or get("subject")
    lead["message"] = message
    apply_pairs(lead, [("Quantity", get("quantity") or "")])
    if (subject := get("subject")) and subject != lead["product"]:
        lead["specs"]["subject"] = subject
    if lead["received_at"] is None and get("generated_date"):
        lead["specs"]["generated_date"] = get("generated_date")
    keep_unknown(lead, row, MAPPED)
    return reachable(finish_lead(lead), "TradeIndia inquiry")


def parse(row: Mapping[str, Any], channel: str) -> list[Result]:
    return [guarded("TradeIndia API inquiry", parse_inquiry, row, channel)]
