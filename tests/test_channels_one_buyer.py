"""One buyer, three channels: IndiaMART mail, JustDial and Facebook lead ads (issue 18).

A buyer who asks on IndiaMART in the morning, calls JustDial at noon and fills a Facebook
form in the evening is three enquiries of one buyer: each keeps its own channel, id and
answers, and each later one says which enquiry it is ("3rd enquiry") and lists the earlier
ones. Not three strangers (the salesperson would call three times), and not one merged lead
(the JustDial and Facebook answers would vanish into the IndiaMART one).
"""

from __future__ import annotations

import json

from helpers import FIXTURES

from leadtui.capture import Pipeline, RawItem
from leadtui.formats import justdial
from leadtui.store import LeadQuery, Store

PHONE = "+919845600066"  # the buyer of the IndiaMART sample below


def _justdial_item() -> RawItem:
    fields = {
        "leadid": "JD0312345678",
        "name": "RAJESH KUMAR",
        "mobile": "9845600066",
        "date": "2026-03-02",
        "time": "12:05:09",
        "category": "Fly Ash Bricks",
        "city": "Mysuru",
    }
    raw = justdial.kept(list(fields.items()), {"method": "GET"})
    return RawItem(raw, source="justdial", kind="json", channel="push")


def _facebook_item() -> RawItem:
    graph_lead = {
        "id": "900000000000700",
        "created_time": "2026-03-02T13:30:00+0000",  # 19:00 IST, the same day
        "form_id": "1200000000000001",
        "field_data": [
            {"name": "full_name", "values": ["Rajesh Kumar"]},
            {"name": "phone_number", "values": [PHONE]},
            {"name": "city", "values": ["Mysuru"]},
            {"name": "which_product?", "values": ["Fly Ash Bricks"]},
            {"name": "how_many_pieces?", "values": ["20,000"]},
        ],
    }
    return RawItem(json.dumps(graph_lead).encode(), "meta:leads", "json", "push")


def test_one_buyer_by_indiamart_justdial_and_facebook_is_three_linked_enquiries(
    db_url: str,
) -> None:
    email = FIXTURES / "samples" / "email" / "01-direct-enquiry-qp.eml"
    with Store.open(db_url) as store:
        pipeline = Pipeline(store)
        for item in (
            RawItem(email.read_bytes(), source="mailbox", kind="email"),
            _justdial_item(),
            _facebook_item(),
        ):
            outcome = pipeline.accept(item)
            assert outcome.status != "failed", outcome.detail

        newest_first = store.list_leads(LeadQuery(limit=10))
        assert [lead.source for lead in newest_first] == ["facebook", "justdial", "indiamart"]
        assert {lead.phone for lead in newest_first} == {PHONE}
        assert [lead.enquiry_no for lead in newest_first] == [3, 2, 1]
        facebook, by_justdial, indiamart = newest_first
        # The third enquiry lists the two before it, newest first: the buyer's history.
        assert [x.id for x in store.buyer_history(facebook)] == [by_justdial.id, indiamart.id]
        # Each keeps what its channel said: nothing merged away.
        assert indiamart.external_id != by_justdial.external_id
        assert by_justdial.external_id == "JD0312345678"
        assert facebook.product == "Fly Ash Bricks"
        assert "20,000" in json.dumps(facebook.specs, ensure_ascii=False)  # a custom question
