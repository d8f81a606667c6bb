"""Facebook lead ads through Zapier, and JSON in other names than the contract's, over real HTTP.

Zapier's Facebook Lead Ads trigger posts the lead flat, in Facebook's field names
(``full_name``, ``phone_number``, ``ad_name``, one key per custom question). Such a body gets
the form aliases; what has none is kept in ``specs``; Facebook's ids make it ``source:
facebook`` with the lead id as ``external_id``. And a buyer who sends the form again with a new
comment gets ``"appended"``, as the README says, whether the form came as JSON or as a form.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_server import API_KEYS, Reply, Server, running

from leadtui import parser
from leadtui.formats.website_form import check_lead, lead_from_json, readable_label
from leadtui.ingest import openapi_document
from leadtui.store import Lead, LeadQuery


@pytest.fixture
def server(sqlite_url: str) -> Iterator[Server]:
    with running(sqlite_url) as s:
        yield s


@pytest.fixture
def any_db_server(db_url: str) -> Iterator[Server]:
    with running(db_url) as s:
        yield s


def only_lead(server: Server) -> Lead:
    (lead,) = server.store.list_leads(LeadQuery())
    return lead


def form_post(server: Server, fields: dict[str, str]) -> Reply:
    return server.request(
        "POST",
        "/api/leads",
        urlencode(list(fields.items())).encode(),
        {"content-type": "application/x-www-form-urlencoded", "x-api-key": API_KEYS["website"]},
    )


# What Zapier's "Facebook Lead Ads: New Lead" trigger sends on to a webhook (invented data).
ZAPIER_FACEBOOK: dict[str, Any] = {
    "id": "1234567890123456",
    "leadgen_id": "1234567890123456",
    "created_time": "2026-03-06T09:50:12+0000",
    "ad_id": "120210000000000011",
    "ad_name": "Pavers - Pune - March",
    "adset_name": "Pune homeowners",
    "campaign_name": "Garden season",
    "form_id": "987654321098765",
    "form_name": "Paver quote",
    "is_organic": False,
    "platform": "fb",
    "full_name": "Meera Joshi",
    "phone_number": "+919822098220",
    "email": "Meera.Joshi@example.com",
    "city": "Pune",
    "what_product_are_you_interested_in?": "Interlocking pavers",
    "how_many_sq_ft?": "800",
}


def test_a_facebook_lead_from_zapier_keeps_the_buyer(any_db_server: Server) -> None:
    server = any_db_server
    reply = server.post_json("/api/leads", ZAPIER_FACEBOOK, key="zapier")
    assert reply.status == 201, reply.body
    lead = only_lead(server)
    # The name, the phone and the buyer's answer were dropped before: all are on the lead.
    assert (lead.name, lead.phone, lead.email, lead.city) == (
        "Meera Joshi",
        "+919822098220",
        "meera.joshi@example.com",
        "Pune",
    )
    assert lead.product == "Interlocking pavers"
    assert (lead.source, lead.channel, lead.external_id) == ("facebook", "api", "1234567890123456")
    assert lead.received_at == "2026-03-06T09:50:12+00:00"
    assert lead.specs == {
        "Ad ID": "120210000000000011",
        "Ad name": "Pavers - Pune - March",
        "Ad set name": "Pune homeowners",
        "Campaign name": "Garden season",
        "Form ID": "987654321098765",
        "Form name": "Paver quote",
        "Organic": "no",
        "Platform": "fb",
        "How many sq ft?": "800",
        "id": "1234567890123456",
    }
    # The body as Zapier sent it is kept beside the lead it became.
    kept = json.loads(server.store.raw_body(reply.json()["item"]) or b"")
    assert kept["request"] == ZAPIER_FACEBOOK
    # Zapier replaying the lead (a re-run zap, another field added) is the same lead.
    again = server.post_json("/api/leads", {**ZAPIER_FACEBOOK, "zap_run": "2"}, key="zapier")
    assert (again.status, again.json()["status"], again.json()["id"]) == (
        200,
        "duplicate",
        lead.id,
    )
    assert server.store.count_leads() == 1


def test_a_graph_api_lead_with_field_data(server: Server) -> None:
    graph = {
        "id": "555000111222333",
        "created_time": "2026-03-07T04:30:00+0000",
        "ad_id": "120210000000000099",
        "form_id": "987654321098765",
        "field_data": [
            {"name": "full_name", "values": ["Karan Mehta"]},
            {"name": "phone_number", "values": ["09812345678"]},
            {"name": "which_products_do_you_need?", "values": ["Kerb stones", "Pavers"]},
        ],
    }
    assert server.post_json("/api/leads", graph).status == 201
    lead = only_lead(server)
    assert (lead.name, lead.phone, lead.product) == (
        "Karan Mehta",
        "+919812345678",
        "Kerb stones, Pavers",
    )
    assert (lead.source, lead.external_id) == ("facebook", "555000111222333")
    assert lead.received_at == "2026-03-07T04:30:00+00:00"


def test_a_product_question_beside_a_product_goes_to_specs(server: Server) -> None:
    body = {**ZAPIER_FACEBOOK, "product_name": "Garden Pavers"}
    assert server.post_json("/api/leads", body).status == 201
    lead = only_lead(server)
    assert lead.product == "Garden Pavers"
    assert lead.specs["What product are you interested in?"] == "Interlocking pavers"


def test_fields_leadtui_does_not_know_are_kept_not_dropped(server: Server) -> None:
    body = {
        "name": "Asha Kulkarni",
        "phone": "9822012345",
        "product": "Garden Pavers",
        "specs": {"Colour": "Grey"},
        "comments": "Need 300 sq ft",
        "budget_in_rs": 50000,
        "site": {"area": "Baner"},
        "utm_source": "google",
    }
    reply = server.post_json("/api/leads", body)
    assert reply.status == 201
    lead = only_lead(server)
    assert lead.message == "Need 300 sq ft"  # an alias, as in a form
    assert lead.source == "other"  # FORMATS 8's default: nothing says Facebook
    assert lead.specs == {
        "Colour": "Grey",
        "Budget in rs": "50000",
        "site": '{"area":"Baner"}',
        "Utm source": "google",
    }


def test_a_lead_in_the_contract_names_is_stored_as_sent(server: Server) -> None:
    body = {"name": "Asha", "phone": "9822012345", "kind": "lead", "channel": "api"}
    reply = server.post_json("/api/leads", body)
    assert reply.status == 201
    assert server.store.raw_body(reply.json()["item"]) == json.dumps(body).encode()


def test_an_unreadable_aliased_field_is_named_as_sent(server: Server) -> None:
    reply = server.post_json("/api/leads", {"full_name": "Meera", "phone_number": "12"})
    assert reply.status == 422
    assert [e["field"] for e in reply.json()["errors"]] == ["phone_number"]
    assert server.store.count_leads() == 0
    assert len(server.store.review_items()) == 1  # refused, but kept for review


def test_facebook_is_a_source_a_client_may_name(server: Server) -> None:
    reply = server.post_json("/api/leads", {"name": "Meera", "source": "Facebook"})
    assert reply.status == 201
    assert only_lead(server).source == "facebook"
    notes = openapi_document()["paths"]["/api/leads"]["post"]["requestBody"]["content"]
    assert "facebook" in notes["application/json"]["schema"]["properties"]["source"]["description"]


def test_a_named_source_wins_over_facebook_ids() -> None:
    mapped = lead_from_json({"name": "Meera", "source": "website", "form_id": "42"})
    assert mapped is not None
    assert mapped[0]["source"] == "website"
    assert mapped[0]["specs"] == {"Form ID": "42"}


_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=30),
        st.sampled_from(["9822012345", "2026-03-06T09:50:12+0000", "99999999999999999999"]),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
_keys = st.one_of(
    st.sampled_from([*ZAPIER_FACEBOOK, "field_data", "name", "specs", "first_name", "mobile"]),
    st.text(max_size=20),
)


@given(body=st.dictionaries(_keys, _values, max_size=8))
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_json_in_other_names_maps_without_raising(body: dict[str, Any]) -> None:
    mapped = lead_from_json(body)
    if mapped is None:
        return
    lead, names = mapped
    errors = check_lead(lead, names)
    assert {e["field"] for e in errors} <= {*body, *lead, "name", "phone", "email", ""}
    if not errors:
        [result] = parser.parse(lead, channel="api")
        assert result["kind"] in {"lead", "error"}
        json.dumps(lead)  # storable as it is


def test_readable_labels() -> None:
    assert readable_label("what_product_are_you_interested_in?") == (
        "What product are you interested in?"
    )
    assert readable_label("Preferred Location") == "Preferred Location"
    assert readable_label("GSM") == "GSM"


# --------------------------------------------------------------- the README's "appended"

FIRST = {
    "full_name": "Asha Kulkarni",
    "phone_number": "9822012345",
    "email": "asha@example.com",
    "product": "Garden Pavers",
    "comments": "Need 300 sq ft",
}


@pytest.mark.parametrize("sent_as", ["json", "form"])
def test_the_same_buyer_sending_the_form_again_with_a_new_comment_is_appended(
    server: Server, sent_as: str
) -> None:
    def post(fields: dict[str, str]) -> Reply:
        return (
            server.post_json("/api/leads", fields)
            if sent_as == "json"
            else form_post(server, fields)
        )

    first = post(FIRST)
    assert first.status == 201
    lead_id = first.json()["id"]
    # Before: as JSON, "comments" was dropped, so the copy said nothing new: "duplicate".
    again = post({**FIRST, "comments": "Also 50 kerb stones"})
    assert (again.status, again.json()["status"], again.json()["id"]) == (200, "appended", lead_id)
    assert [m.text for m in server.store.messages(lead_id)] == ["Also 50 kerb stones"]
    same = post(FIRST)
    assert (same.status, same.json()["status"]) == (200, "duplicate")


def test_a_first_comment_on_a_lead_without_one_fills_it_and_is_a_duplicate(server: Server) -> None:
    """As the README says: a copy that fills in what the lead lacked is "duplicate"."""
    first = {k: v for k, v in FIRST.items() if k != "comments"}
    lead_id = form_post(server, first).json()["id"]
    again = form_post(server, FIRST)
    assert (again.status, again.json()["status"], again.json()["id"]) == (200, "duplicate", lead_id)
    assert server.store.get_lead(lead_id).message == "Need 300 sq ft"
    assert server.store.messages(lead_id) == []
