"""WhatsApp webhooks (Twilio and Meta's Cloud API): each message → a generic lead.

Pure payload → lead rules: a message becomes ``{source: whatsapp, name, phone, message}``
(FORMATS 8) with the webhook's own fields kept beside it under ``request``, and a dedupe key
from the message id, so a redelivery is recognised. The store appends a message from a phone
it knows to that buyer's newest lead. Signatures and answers are the ingest's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leadtui.formats.text import IST, as_text
from leadtui.formats.website_form import ORIGINAL_KEY

Message = tuple[dict[str, Any], str | None]  # a generic lead, and its raw item's dedupe key


def whatsapp_lead(
    phone: str | None, name: str | None, message: str | None, received_at: str | None = None
) -> dict[str, Any]:
    """The generic lead a WhatsApp message becomes (the store may append it to a known buyer)."""
    lead: dict[str, Any] = {"source": "whatsapp", "name": name, "phone": phone, "message": message}
    if received_at:
        lead["received_at"] = received_at
    return {k: v for k, v in lead.items() if v}


def twilio_message(fields: Mapping[str, str]) -> Message | None:
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


def meta_messages(payload: object) -> list[Message] | None:
    """The messages of a WhatsApp Cloud API webhook as (lead, dedupe key) pairs.

    None when the payload is not a WhatsApp Business webhook at all; an empty list when it
    is one without messages (delivery statuses, which are not leads).
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("entry"), list):
        return None
    found: list[Message] = []
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
    if not text or not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    try:  # a timestamp past the year 9999 (12 digits can be) is no time: leave it out
        return datetime.fromtimestamp(int(text), IST).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        return None
