"""ExportersIndia's inquiry API (``api-inquiry-detail.php``): one inquiry object → a lead.

The field names come from public integrations, not from ExportersIndia's documentation: two
public PHP CRMs that poll ``api-inquiry-detail.php`` (a CodeIgniter lead sync and a Laravel CRM
marketplace module) read ``inq_id`` (the inquiry id), ``inq_type``, ``name``, ``company``,
``mobile``, ``alt_mobile``, ``email``, ``alt_email``, ``address``, ``city``, ``state``,
``country``, ``subject``, ``product``, ``detail_req`` (the buyer's requirement) and
``enq_date``. Only those are mapped. ``inq_type``'s values are not known, so it stays a spec
rather than becoming IndiaMART's ``query_type``; every other field is kept on the lead as a
spec under its API name, and the raw inquiry is kept as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadtui.formats.places import iso_country, state_name
from leadtui.formats.requirement import apply_pairs, split_query_message
from leadtui.formats.results import Result, error, finish_lead, guarded, new_lead
from leadtui.formats.text import (
    as_text,
    emails_in,
    first_two,
    normalize_name,
    phones_in,
    some_keys,
    text_reader,
)
from leadtui.formats.tradeindia_api import keep_unknown, listed_time, reachable

SOURCE = "exportersindia"
ID_FIELD = "inq_id"
# ``inq_id`` or a field no other shape or website form uses marks an ExportersIndia inquiry.
MARKERS = frozenset({ID_FIELD, "detail_req", "enq_date", "inq_type"})
WRAPPERS = ("data", "inquiries", "result", "response")  # not seen in public code: tolerated
MAPPED = frozenset(
    {
        ID_FIELD,
        "name",
        "company",
        "mobile",
        "alt_mobile",
        "email",
        "alt_email",
        "address",
        "city",
        "state",
        "country",
        "product",
        "detail_req",
        "enq_date",
    }
)


def is_inquiry(obj: Mapping[str, Any]) -> bool:
    return not MARKERS.isdisjoint(obj)


def parse_inquiry(row: Mapping[str, Any], channel: str) -> Result:
    get = text_reader(row)

    external_id = get(ID_FIELD)
    if not external_id:
        keys = some_keys(row)
        return error(f"ExportersIndia inquiry without an inq_id (keys: {keys}): kept for review")
    lead = new_lead(SOURCE, channel)
    lead["external_id"] = external_id
    lead["received_at"] = listed_time(get("enq_date"))
    lead["name"] = normalize_name(get("name"))
    lead["company"] = get("company")
    lead["phone"], lead["phone_alt"] = first_two(
        phones_in(get("mobile")) + phones_in(get("alt_mobile"))
    )
    lead["email"], lead["email_alt"] = first_two(
        emails_in(get("email")) + emails_in(get("alt_email"))
    )
    lead["address"] = get("address")
    lead["city"] = get("city")
    state = get("state")
    lead["state"] = state_name(state) or state
    lead["country"] = iso_country(get("country"))
    lead["product"] = get("product") or get("subject")
    detail = as_text(row.get("detail_req"))
    if detail:
        free, pairs = split_query_message(detail)
        apply_pairs(lead, pairs)
        lead["message"] = "\n".join(free) or None
    if lead["received_at"] is None and get("enq_date"):
        lead["specs"]["enq_date"] = get("enq_date")
    same = lead["product"] == get("subject")  # the subject stood in for the product
    keep_unknown(lead, row, MAPPED | {"subject"} if same else MAPPED)
    return reachable(finish_lead(lead), "ExportersIndia inquiry")


def parse(row: Mapping[str, Any], channel: str) -> list[Result]:
    return [guarded("ExportersIndia API inquiry", parse_inquiry, row, channel)]
