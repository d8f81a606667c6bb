"""Facebook / Instagram lead ads, natively: the Page webhook's notification and the Graph API lead.

Two payloads, both pure here (CHANNELS.md "Facebook / Instagram lead ads"):

- The ``leadgen`` notification Meta POSTs to the webhook,
  ``{"object": "page", "entry": [{"id", "time", "changes": [{"field": "leadgen", "value":
  {"leadgen_id", "page_id", "form_id", "ad_id", "adgroup_id", "created_time"}}]}]}``. It
  carries no answers, so it is no lead: the parser calls it ``ignored`` (the raw item is kept),
  and :func:`notified_leads` tells the fetcher which leads to ask the Graph API for. A Page
  webhook that names no lead it can fetch is an ``error``, for the review queue.
- The lead the Graph API answers for ``GET /{leadgen_id}`` (and lists under
  ``/{form_id}/leads``): ``{"id", "created_time", "field_data": [{"name", "values"}], "ad_id",
  "ad_name", "form_id", "campaign_name", "platform"}``. :func:`parse_graph_lead` maps Meta's
  standard questions onto the lead's fields and keeps every other answer in ``specs`` under a
  readable label: a custom question is never dropped, nor is a standard answer the lead's
  field cannot hold (a foreign ZIP code, a phone number that is not one).

The lead is ``source: facebook`` with the lead id as ``external_id``, so the webhook's copy, the
backfill's and a Zapier copy (:func:`~leadtui.formats.website_form.lead_from_json`) are one lead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadtui.formats.generic import parse_generic
from leadtui.formats.places import iso_country
from leadtui.formats.results import NotUnderstood, Result, ignored
from leadtui.formats.text import as_text, normalize_email, normalize_phone
from leadtui.formats.website_form import (
    FACEBOOK_LABELS,
    PRODUCT_QUESTION,
    add_spec,
    facebook_time,
    readable_label,
    spec_text,
)

# Meta's standard lead form questions (field_data names) -> the lead's field.
STANDARD_FIELDS: dict[str, str] = {
    "full_name": "name",
    "email": "email",
    "work_email": "email_alt",
    "phone_number": "phone",
    "work_phone_number": "phone_alt",
    "street_address": "address",
    "city": "city",
    "state": "state",
    "province": "state",
    "zip_code": "pincode",
    "post_code": "pincode",
    "country": "country",
    "company_name": "company",
}
_FIRST_LAST = ("first_name", "last_name")
# The lead's own fields beside field_data that a salesperson may want: kept in specs.
AD_FIELDS = (
    "ad_id",
    "ad_name",
    "adset_id",
    "adset_name",
    "campaign_id",
    "campaign_name",
    "form_id",
    "form_name",
    "page_id",
    "platform",
    "is_organic",
)
PLATFORMS = {"fb": "Facebook", "ig": "Instagram", "msg": "Messenger", "wa": "WhatsApp"}
MAX_SPECS = 100  # the generic lead keeps this many; a lead form has far fewer questions
_GRAPH_ID = re.compile(r"[0-9]{1,40}")


@dataclass(frozen=True, slots=True)
class Notified:
    """One lead a notification names: what to fetch, and the form to backfill."""

    leadgen_id: str
    form_id: str | None = None
    page_id: str | None = None


def graph_id(value: object) -> str | None:
    """A Graph object id (digits only) as text; None for anything else.

    The id goes into a URL path, so nothing but digits is ever let through.
    """
    text = as_text(value)
    text = text.strip() if text else None
    return text if text and _GRAPH_ID.fullmatch(text) else None


# --------------------------------------------------------------------------- the notification


def is_notification(obj: Mapping[str, Any]) -> bool:
    """A Page webhook (``object: page`` with ``entry``): the only kind the lead ads app gets."""
    return obj.get("object") == "page" and "entry" in obj


def _changes(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = obj.get("entry")
    found: list[Mapping[str, Any]] = []
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        found += [
            c for c in (changes if isinstance(changes, list) else []) if isinstance(c, Mapping)
        ]
    return found


def notified_leads(obj: object) -> list[Notified]:
    """The leads a ``leadgen`` notification names, in order, each once; [] for anything else."""
    if not isinstance(obj, Mapping) or not is_notification(obj):
        return []
    found: dict[str, Notified] = {}
    for change in _changes(obj):
        value = change.get("value")
        if change.get("field") != "leadgen" or not isinstance(value, Mapping):
            continue
        lead_id = graph_id(value.get("leadgen_id"))
        if lead_id is not None and lead_id not in found:
            found[lead_id] = Notified(
                lead_id, graph_id(value.get("form_id")), graph_id(value.get("page_id"))
            )
    return list(found.values())


def parse_notification(obj: Mapping[str, Any], channel: str) -> list[Result]:
    """``ignored`` (the leads are fetched from the Graph API), or an error for the review queue."""
    del channel
    leads = notified_leads(obj)
    if leads:
        ids = ", ".join(n.leadgen_id for n in leads[:5]) + (", …" if len(leads) > 5 else "")
        return [ignored(f"Meta lead ads notification for lead {ids}: fetched from the Graph API")]
    fields = sorted({str(c.get("field")) for c in _changes(obj) if c.get("field") != "leadgen"})
    if fields and not any(c.get("field") == "leadgen" for c in _changes(obj)):
        return [ignored(f"Meta Page webhook for {', '.join(fields[:5])}, not lead ads")]
    raise NotUnderstood(
        "a Meta Page webhook without a leadgen change that names a numeric leadgen_id"
    )


# --------------------------------------------------------------------------- the Graph API lead


def _label(name: str) -> str:
    """A form question's key as a spec label: ``zip_code`` → ``Zip code``, ``country`` →
    ``Country`` (Meta's keys are machine names, never written for people)."""
    text = readable_label(name)
    return text[:1].upper() + text[1:]


def is_graph_lead(obj: Mapping[str, Any]) -> bool:
    """A lead as the Graph API answers it: an ``id`` and a ``field_data`` list."""
    return "id" in obj and isinstance(obj.get("field_data"), list)


def _fits(field: str, text: str) -> bool:
    """Whether the lead's field can hold ``text``; if not, the answer goes to specs instead."""
    if field == "pincode":
        digits = text.replace(" ", "")
        return len(digits) == 6 and digits.isascii() and digits.isdigit()
    if field == "country":
        return iso_country(text) is not None
    if field in {"phone", "phone_alt"}:
        return normalize_phone(text) is not None
    if field in {"email", "email_alt"}:
        return normalize_email(text) is not None
    return True


def parse_graph_lead(obj: Mapping[str, Any], channel: str) -> Result:
    """The lead from a Graph API lead object; every answer ends up in a field or in specs."""
    lead_id = as_text(obj.get("id"))
    if not lead_id or not lead_id.strip():
        raise NotUnderstood("a Graph API lead without an id")
    generic: dict[str, Any] = {"source": "facebook", "external_id": lead_id.strip()}
    created = as_text(obj.get("created_time"))
    when = facebook_time(created.strip()) if created else None
    if when is not None:
        generic["received_at"] = when
    specs: dict[str, str] = {}
    first_last: dict[str, str] = {}
    for item in obj["field_data"]:
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            continue
        text = spec_text(item.get("values"))
        if text is None:
            continue
        key = name.strip().lower()
        target = STANDARD_FIELDS.get(key)
        if key in _FIRST_LAST:
            first_last.setdefault(key, text)
        elif target is not None and target not in generic and _fits(target, text):
            generic[target] = text
        elif target is None and "product" not in generic and PRODUCT_QUESTION.search(key):
            generic["product"] = text
        elif len(specs) < MAX_SPECS:
            add_spec(specs, _label(name), text)
    if "name" not in generic and first_last:
        generic["name"] = " ".join(first_last[k] for k in _FIRST_LAST if k in first_last)
    elif first_last:  # a form that asks for both: the parts stay beside the full name
        for key, text in first_last.items():
            add_spec(specs, _label(key), text)
    for key in AD_FIELDS:
        text = spec_text(obj.get(key))
        if text is not None and len(specs) < MAX_SPECS:
            add_spec(specs, FACEBOOK_LABELS.get(key, _label(key)), PLATFORMS.get(text, text))
    generic["specs"] = specs
    return parse_generic(generic, channel)


NOTIFICATION_SOURCE = "meta:leadgen"  # RawItem.source of a notification the webhook committed
LEAD_SOURCE = "meta:leads"  # RawItem.source of a lead fetched from the Graph API


def lead_dedupe_key(leadgen_id: str) -> str:
    """The raw item key of a fetched lead: the webhook's fetch and the backfill's are one item."""
    return f"meta:lead:{leadgen_id}"
