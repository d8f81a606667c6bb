"""TradeIndia inquiry emails (FORMATS 4)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qs, unquote

from leadtui.formats.mime import Mail, decode_base64
from leadtui.formats.places import iso_country, state_name
from leadtui.formats.results import NotUnderstood, Result, finish_lead, new_lead
from leadtui.formats.text import emails_in, first_two, normalize_name, phones_in

DOMAIN = "tradeindia.com"

_INQUIRY_SUBJECT = re.compile(
    r"\binquiry\s+from\b|^looking\s+for\s+suppliers\s+of\b|\bthrough\s+ti\s+whatsapp\b",
    re.IGNORECASE,
)
_WHATSAPP_SUBJECT = re.compile(r"\bthrough\s+ti\s+whats\s?app\b", re.IGNORECASE)
_BULLET = re.compile(r"^[•*·\-–]\s*")
_FIELD = re.compile(
    r"(sender\s+name|product\s+details|requirement\s+details|buyer\s+details)\s*:\s*(.*)",
    re.IGNORECASE,
)
_BUYER_FIELD = re.compile(
    r"(name|company|e-?mail|mobile|phone|city|state|country)\s*(?:-|–|:)\s*(.*)", re.IGNORECASE
)
_BODY_END = re.compile(
    r"click\s+here\b.*|respond\s+quickly\b.*|tradeindia\.com\s*\|.*", re.IGNORECASE
)
_EXT = re.compile(r"[?&](?:amp;)?ext=([A-Za-z0-9_\-+/=%]{4,2000})")
_RFI_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,40}")


def from_tradeindia(mail: Mail) -> bool:
    """The From domain is ``tradeindia.com`` or one of its subdomains (``rfis.``)."""
    domain = mail.sender_domain
    return domain == DOMAIN or domain.endswith("." + DOMAIN)


def is_inquiry(mail: Mail) -> bool:
    """An inquiry by its subject, or (new subject wording) by its body's labels."""
    if not from_tradeindia(mail):
        return False
    if _INQUIRY_SUBJECT.search(mail.subject):
        return True
    return any(_FIELD.match(line) for line in mail.lines[:40])


def not_a_lead_reason(mail: Mail) -> str:
    return f"not a lead: TradeIndia mail that is not an inquiry ('{mail.subject}')"


def inquiry_id(source: str) -> str | None:
    """``rfi_id`` from the ``ext`` parameter: URL-safe base64 of a query string."""
    for match in _EXT.finditer(source):
        encoded = unquote(match[1]).rstrip("=").replace("-", "+").replace("_", "/")
        query = decode_base64(encoded.encode("ascii", "replace")).decode("utf-8", "replace")
        rfi_id = parse_qs(query).get("rfi_id", [""])[0].strip()
        if _RFI_ID.fullmatch(rfi_id):
            return rfi_id
        if rfi_id:
            return None  # rfi_id=__RFI_ID__: an unfilled placeholder, no id
    return None


def parse_inquiry(mail: Mail, lines: Sequence[str]) -> Result:
    """A TradeIndia inquiry: bullets, then ``Buyer Details`` as ``Label - value`` lines."""
    fields: dict[str, str] = {}
    buyer: dict[str, str] = {}
    current: str | None = None
    in_buyer = False
    for raw in lines:
        line = _BULLET.sub("", raw)
        if _BODY_END.fullmatch(line):
            break
        if match := _FIELD.fullmatch(line):
            current = " ".join(match[1].lower().split())
            in_buyer = current == "buyer details"
            fields[current] = match[2]
        elif (in_buyer or "buyer details" not in fields) and (
            match := _BUYER_FIELD.fullmatch(line)
        ):
            key = match[1].lower().replace("-", "")
            buyer.setdefault(key, match[2])
            current = None
        elif current == "requirement details":  # the requirement runs over several lines
            fields[current] = f"{fields[current]}\n{line}"
    if "product details" not in fields and not buyer:
        raise NotUnderstood("TradeIndia inquiry without 'Product Details' or 'Buyer Details'")

    lead = new_lead("tradeindia", "email")
    lead["query_type"] = "WA" if _WHATSAPP_SUBJECT.search(mail.subject) else None
    lead["external_id"] = inquiry_id(mail.raw_body_text)
    lead["name"] = normalize_name(buyer.get("name")) or normalize_name(fields.get("sender name"))
    lead["company"] = buyer.get("company")
    lead["phone"], lead["phone_alt"] = first_two(
        phones_in(buyer.get("mobile")) + phones_in(buyer.get("phone"))
    )
    lead["email"], lead["email_alt"] = first_two(emails_in(buyer.get("email")))
    lead["city"] = buyer.get("city")
    state = buyer.get("state")
    lead["state"] = state_name(state) or state
    lead["country"] = iso_country(buyer.get("country"))
    lead["product"] = fields.get("product details") or _subject_product(mail.subject)
    lead["message"] = fields.get("requirement details")
    lead["message_id"] = mail.message_id
    lead["received_at"] = mail.received_at
    return finish_lead(lead)


_SUBJECT_PRODUCT = re.compile(
    r"looking\s+for\s+suppliers\s+of\s+(.+)|(.+?)\s+inquiry\s+from\b", re.IGNORECASE
)


def _subject_product(subject: str) -> str | None:
    match = _SUBJECT_PRODUCT.match(subject)
    return (match[1] or match[2]) if match else None
