"""The store, against SQLite and against the real PostgreSQL (the ``db_url`` fixture)."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from bench._synthetic import bulk_insert_leads
from leadtui.store import CONTRACT_FIELDS, SCHEMA_VERSION, Health, LeadQuery, Store, StoreError


def make_lead(**over: Any) -> dict[str, Any]:
    lead: dict[str, Any] = {"kind": "lead"}
    lead.update(dict.fromkeys(CONTRACT_FIELDS))
    lead.update(
        source="indiamart",
        channel="email",
        query_type="W",
        received_at="2026-03-02T10:41:07+05:30",
        name="Sunil Rao",
        company="Rao Constructions",
        phone="+919845600066",
        email="sunil.rao@example.com",
        city="Mysuru",
        state="Karnataka",
        country="IN",
        product="Fly Ash Bricks",
        quantity="10000",
        unit="Piece",
        message="I am looking for Fly Ash Bricks.",
        specs={},
        verified=["phone"],
        message_id="m1@mail.indiamart.com",
    )
    lead.update(over)
    return lead


def ingest(store: Store, result: dict[str, Any], body: bytes | None = None) -> Any:
    raw_id, _ = store.add_raw(
        body or repr(sorted(result.items())).encode(), source="test", kind="email"
    )
    return store.apply(raw_id, [result])


@pytest.fixture
def store(db_url: str) -> Any:
    s = Store.open(db_url)
    yield s
    s.close()


def test_a_lead_round_trips_in_the_contract_shape(store: Store) -> None:
    result = make_lead(specs={"GSM": "180"}, verified=["phone", "email", "gst"])
    outcome = ingest(store, result)
    assert outcome.status == "new"
    lead = store.get_lead(outcome.lead_ids[0])
    assert lead is not None
    assert lead.contract() == result
    assert list(lead.contract()) == ["kind", *CONTRACT_FIELDS]
    assert lead.status == "new"
    assert lead.to_json()["id"] == lead.id


def test_identical_raw_items_are_stored_once(store: Store) -> None:
    first = store.add_raw(b"same bytes", source="a", kind="email")
    second = store.add_raw(b"same bytes", source="b", kind="email")
    assert first == (first[0], True)
    assert second == (first[0], False)
    assert store.raw_body(first[0]) == b"same bytes"


def test_idempotency_key_makes_a_different_body_the_same_item(store: Store) -> None:
    first, _ = store.add_raw(b'{"a":1}', source="http", kind="json", dedupe_key="idem:web:42")
    second, is_new = store.add_raw(b'{"a":2}', source="http", kind="json", dedupe_key="idem:web:42")
    assert (second, is_new) == (first, False)


def test_second_delivery_of_the_same_email_is_a_duplicate(store: Store) -> None:
    first = ingest(store, make_lead(), b"copy one")
    again = ingest(store, make_lead(), b"copy two with other headers")
    assert again.status == "duplicate"
    assert again.lead_ids == first.lead_ids
    assert store.count_leads() == 1


def test_dedupe_by_external_id_per_source(store: Store) -> None:
    a = ingest(store, make_lead(channel="push", external_id="2790001234", message_id=None))
    b = ingest(
        store,
        make_lead(channel="pull", external_id="2790001234", message_id=None, company=None),
    )
    other_source = ingest(
        store,
        make_lead(source="tradeindia", external_id="2790001234", message_id=None, product="Tiles"),
    )
    assert b.lead_ids == a.lead_ids
    assert other_source.lead_ids != a.lead_ids
    assert store.count_leads() == 2


def test_email_and_api_copy_merge_into_one_lead(store: Store) -> None:
    email = ingest(store, make_lead())
    lead_before = store.get_lead(email.lead_ids[0])
    assert lead_before is not None
    api = make_lead(
        channel="pull",
        external_id="2790009999",
        message_id=None,
        received_at="2026-03-02T10:41:30+05:30",
        address="Hebbal, Mysuru",
        category="Fly Ash Bricks",
    )
    merged = ingest(store, api)
    assert merged.status == "updated"
    assert merged.lead_ids == email.lead_ids
    lead = store.get_lead(email.lead_ids[0])
    assert lead is not None
    assert lead.external_id == "2790009999"
    assert lead.address == "Hebbal, Mysuru"
    assert lead.received_at == "2026-03-02T10:41:07+05:30"  # the email's time stays
    assert lead.first_seen_ts == lead_before.first_seen_ts
    assert lead.channels == "email pull"
    assert lead.missed_by_email is False


def test_lead_seen_only_by_the_api_is_marked_missed_by_email(store: Store) -> None:
    outcome = ingest(store, make_lead(channel="pull", external_id="1", message_id=None))
    lead = store.get_lead(outcome.lead_ids[0])
    assert lead is not None
    assert lead.missed_by_email


def test_missed_by_email_count_drops_when_the_email_arrives_after_the_api_copy(
    store: Store,
) -> None:
    """The health line's "leads email missed": API-only leads, counted since a time."""
    ingest(store, make_lead(channel="pull", external_id="11", message_id=None))
    ingest(
        store,
        make_lead(
            channel="pull",
            external_id="12",
            message_id=None,
            phone="+919800000012",
            email=None,
            product="Red Clay Bricks",
            received_at="2026-01-02T10:00:00+05:30",
        ),
    )
    ingest(
        store,
        make_lead(phone="+919800000013", email=None, product="Paver Blocks", message_id="m13@x"),
    )
    assert store.count_missed_by_email() == 2
    march = datetime.fromisoformat("2026-03-01T00:00:00+05:30").timestamp()
    assert store.count_missed_by_email(since_ts=march) == 1

    ingest(store, make_lead(received_at="2026-03-02T10:42:00+05:30"))  # the late email of "11"

    assert store.count_missed_by_email() == 1
    assert store.count_missed_by_email(since_ts=march) == 0


def test_same_buyer_same_product_outside_48h_is_a_new_linked_lead(store: Store) -> None:
    ingest(store, make_lead(message_id=None))
    later = ingest(
        store, make_lead(message_id=None, received_at="2026-03-05T10:41:07+05:30"), b"later"
    )
    assert later.status == "new"
    lead = store.get_lead(later.lead_ids[0])
    assert lead is not None
    assert lead.enquiry_no == 2


def test_repeat_buyer_with_another_product_is_a_new_lead_linked_to_the_earlier(
    store: Store,
) -> None:
    first = ingest(store, make_lead(message_id="a@x"))
    second = ingest(store, make_lead(message_id="b@x", product="Cement Blocks"))
    third = ingest(store, make_lead(message_id="c@x", product="Paver Blocks"))
    assert len({first.lead_ids, second.lead_ids, third.lead_ids}) == 3
    lead = store.get_lead(third.lead_ids[0])
    assert lead is not None
    assert lead.enquiry_no == 3
    history = store.buyer_history(lead)
    assert [h.product for h in history] == ["Cement Blocks", "Fly Ash Bricks"]


def test_masked_phone_never_dedupes(store: Store) -> None:
    ingest(store, make_lead(phone=None, email=None, message_id="a@x"))
    ingest(store, make_lead(phone=None, email=None, message_id="b@x"))
    assert store.count_leads() == 2


def test_reply_attaches_to_the_lead_and_unknown_reply_goes_to_review(store: Store) -> None:
    lead_outcome = ingest(store, make_lead())
    reply = {
        "kind": "reply",
        "source": "indiamart",
        "channel": "email",
        "name": "Sunil Rao",
        "company": "Rao Constructions",
        "product": "Fly Ash Bricks",
        "phone": "+919845600066",
        "email": None,
        "messages": ["Please share best rate.", "Can you deliver by Friday?"],
        "received_at": "2026-03-09T12:20:00+05:30",
        "message_id": "r1@mail.indiamart.com",
    }
    raw_id, _ = store.add_raw(b"reply", source="test", kind="email")
    outcome = store.apply(raw_id, [reply])
    assert outcome.status == "reply"
    assert outcome.lead_ids == lead_outcome.lead_ids
    assert [m.text for m in store.messages(lead_outcome.lead_ids[0])] == reply["messages"]
    assert store.count_leads() == 1

    stranger = dict(reply, phone="+919000000001", name="Nobody", product="Tiles")
    raw2, _ = store.add_raw(b"reply2", source="test", kind="email")
    failed = store.apply(raw2, [stranger])
    assert failed.status == "failed"
    assert "matches no lead" in failed.detail
    assert [r.id for r in store.review_items()] == [raw2]
    assert store.count_leads() == 1


def test_a_parse_error_keeps_the_raw_item_in_the_review_queue(store: Store) -> None:
    raw_id, _ = store.add_raw(b"garbage", source="test", kind="email")
    outcome = store.apply(raw_id, [{"kind": "error", "error": "not an email"}])
    assert outcome.status == "failed"
    review = store.review_items()
    assert [(r.id, r.error) for r in review] == [(raw_id, "not an email")]
    assert store.raw_body(raw_id) == b"garbage"
    # After a fix, reparsing the same item produces the lead and empties the queue.
    fixed = store.apply(raw_id, [make_lead()])
    assert fixed.status == "new"
    assert store.review_items() == []


def test_status_workflow_records_actor_time_and_response(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    contacted = store.mark_contacted(lead_id, actor="asha")
    assert contacted.status == "contacted"
    assert contacted.contacted_by == "asha"
    assert contacted.response_seconds is not None
    first_contact = contacted.contacted_ts
    quoted = store.set_status(lead_id, "quoted", actor="ravi")
    assert quoted.contacted_ts == first_contact  # first contact is kept
    won = store.set_status(lead_id, "won", actor="ravi")
    assert won.last_actor == "ravi"
    assert won.last_action == "status"
    actions = [(e.actor, e.action, e.detail) for e in store.events(lead_id)]
    assert actions[1:] == [
        ("asha", "contacted", "contacted"),
        ("ravi", "status", "quoted"),
        ("ravi", "status", "won"),
    ]
    with pytest.raises(StoreError, match="unknown status"):
        store.set_status(lead_id, "maybe")


def test_a_teammates_contact_never_moves_a_quoted_lead_back(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    store.mark_contacted(lead_id, actor="asha")
    store.set_status(lead_id, "quoted", actor="asha")
    again = store.mark_contacted(lead_id, actor="ravi")  # ravi calls the buyer back
    assert again.status == "quoted"
    assert (again.contacted_by, again.last_actor, again.last_action) == (
        "asha",
        "ravi",
        "contacted",
    )
    assert [(e.actor, e.action) for e in store.events(lead_id)][-1] == ("ravi", "contacted")


def test_an_action_that_changes_nothing_records_nothing(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    first = store.mark_contacted(lead_id, actor="asha")
    again = store.mark_contacted(lead_id, actor="ravi")
    assert (again.seq, again.contacted_by, again.last_actor) == (first.seq, "asha", "asha")
    assert store.set_status(lead_id, "contacted", actor="ravi").seq == first.seq
    store.assign(lead_id, "ravi", actor="asha")
    owned = store.assign(lead_id, "ravi", actor="asha")
    assert store.assign(lead_id, " ravi ", actor="ravi").seq == owned.seq
    day = date(2026, 3, 20)
    dated = store.set_follow_up(lead_id, day, actor="asha")
    assert store.set_follow_up(lead_id, day, actor="asha").seq == dated.seq
    actions = [e.action for e in store.events(lead_id)]
    assert actions.count("contacted") == 1
    assert actions.count("assign") == 1
    assert actions.count("follow-up") == 1


def test_back_to_new_clears_the_first_contact(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    store.mark_contacted(lead_id, actor="asha")
    back = store.set_status(lead_id, "new", actor="asha")
    assert (back.contacted_ts, back.contacted_by, back.response_seconds) == (None, None, None)
    assert store.counts()["awaiting"] == 1
    again = store.mark_contacted(lead_id, actor="ravi")
    assert again.contacted_by == "ravi"


def test_undo_puts_back_the_triage_state_and_says_so_in_the_history(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    before = store.get_lead(lead_id)
    assert before is not None
    after = store.mark_contacted(lead_id, actor="asha")
    undone = store.undo(before, after.seq, "contacted", actor="asha")
    assert (undone.status, undone.contacted_ts, undone.contacted_by) == ("new", None, None)
    assert [(e.action, e.detail) for e in store.events(lead_id)][-2:] == [
        ("contacted", "contacted"),
        ("undo", "contacted"),
    ]
    quoted = store.set_status(lead_id, "quoted", actor="asha")
    store.add_note(lead_id, "a teammate called", actor="ravi")  # changed since
    with pytest.raises(StoreError, match="changed since"):
        store.undo(undone, quoted.seq, "status quoted", actor="asha")
    lead = store.get_lead(lead_id)
    assert lead is not None
    assert lead.status == "quoted"


def test_a_contact_on_a_spam_lead_does_not_count_as_contacted(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    store.set_status(lead_id, "spam", actor="asha")
    lead = store.mark_contacted(lead_id, actor="ravi")
    assert (lead.status, lead.contacted_ts) == ("spam", None)


def test_spam_does_not_count_as_contact(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    lead = store.set_status(lead_id, "spam", actor="asha")
    assert lead.contacted_ts is None


def test_notes_owner_and_follow_up(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    store.add_note(lead_id, "  wants a quote by Monday  ", actor="asha")
    lead = store.assign(lead_id, "ravi", actor="asha")
    assert lead.owner == "ravi"
    assert lead.notes_count == 1
    yesterday = date.today() - timedelta(days=1)
    store.set_follow_up(lead_id, yesterday, actor="asha")
    due = store.list_leads(LeadQuery(follow_up_due=True))
    assert [x.id for x in due] == [lead_id]
    store.set_follow_up(lead_id, None, actor="asha")
    assert store.list_leads(LeadQuery(follow_up_due=True)) == []
    notes = [e.detail for e in store.events(lead_id) if e.action == "note"]
    assert notes == ["wants a quote by Monday"]
    with pytest.raises(StoreError, match="empty"):
        store.add_note(lead_id, "   ")


def test_filters_and_keyset_paging(store: Store) -> None:
    ids = [
        ingest(
            store, make_lead(message_id=f"m{i}@x", phone=f"+9198450000{i:02d}", email=None)
        ).lead_ids[0]
        for i in range(25)
    ]
    store.mark_contacted(ids[3], actor="a")
    page1 = store.list_leads(LeadQuery(limit=10))
    page2 = store.list_leads(LeadQuery(limit=10, before_id=page1[-1].id))
    assert [x.id for x in page1 + page2] == ids[::-1][:20]
    back = store.list_leads(LeadQuery(limit=10, after_id=page2[0].id))
    assert [x.id for x in back] == [x.id for x in page1]
    assert [x.id for x in store.list_leads(LeadQuery(status="contacted"))] == [ids[3]]
    assert store.count_leads(LeadQuery(status="new")) == 24
    assert store.count_leads(LeadQuery(status="open")) == 25


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("sunil", True),
        ("SUNIL rao", True),
        ("Rao Constr", True),
        ("9845600066", True),
        ("98456", True),
        ("00066", True),  # the last digits, as people remember a caller
        ("600066", True),
        ("09845600066", True),  # with the trunk prefix, as caller ID shows it
        ("00919845600066", True),  # with the international prefix
        ("+91 98456 00066", True),
        ("08845600066", False),
        ("66006", False),
        ("sunil.rao@example.com", True),
        ("fly ash", True),
        ("mysuru", True),
        ("looking", True),
        ("sunil cement", False),
        ("nobody", False),
    ],
)
def test_search_over_name_company_phone_email_product_city_message(
    store: Store, text: str, hit: bool
) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    ingest(store, make_lead(name="Other", phone="+919000000000", email=None, product="Tiles",
                            company=None, city="Pune", message=None, message_id="o@x"))  # fmt: skip
    found = [x.id for x in store.list_leads(LeadQuery(search=text))]
    assert (found == [lead_id]) is hit


def _reply(text: str, **over: Any) -> dict[str, Any]:
    reply = {
        "kind": "reply", "source": "indiamart", "channel": "email", "name": "Sunil Rao",
        "company": None, "product": "Fly Ash Bricks", "phone": "+919845600066", "email": None,
        "messages": [text], "received_at": "2026-03-03T09:00:00+05:30", "message_id": None,
    }  # fmt: skip
    reply.update(over)
    return reply


def test_search_finds_a_lead_by_what_the_buyer_said_later(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    other = ingest(store, make_lead(name="Other", phone="+919000000000", email=None,
                                    message=None, message_id="o@x")).lead_ids[0]  # fmt: skip
    assert store.list_leads(LeadQuery(search="kerb")) == []
    raw_id, _ = store.add_raw(b"reply", source="test", kind="email")
    assert store.apply(raw_id, [_reply("Also quote for kerb stones")]).status == "reply"
    assert [x.id for x in store.list_leads(LeadQuery(search="kerb stones"))] == [lead_id]
    # Words from the lead and from a later message together find it too.
    assert [x.id for x in store.list_leads(LeadQuery(search="mysuru kerb"))] == [lead_id]
    assert [x.id for x in store.list_leads(LeadQuery(search="looking"))] == [lead_id]
    assert [x.id for x in store.list_leads(LeadQuery(search="other"))] == [other]


def test_search_finds_a_message_that_arrived_in_the_same_batch_as_its_lead(store: Store) -> None:
    first, _ = store.add_raw(b"lead", source="test", kind="email")
    second, _ = store.add_raw(b"reply", source="test", kind="email")
    outcomes = store.apply_many([(first, [make_lead()]), (second, [_reply("Need pallets")])])
    assert [o.status for o in outcomes] == ["new", "reply"]
    lead_id = outcomes[0].lead_ids[0]
    assert [x.id for x in store.list_leads(LeadQuery(search="pallets"))] == [lead_id]
    assert [x.id for x in store.list_leads(LeadQuery(search="rao"))] == [lead_id]


def test_a_copy_that_adds_fields_and_a_message_keeps_both_searchable(store: Store) -> None:
    lead = make_lead(channel="api", source="website", city=None, message_id=None)
    lead_id = ingest(store, lead).lead_ids[0]
    again = dict(lead, city="Hubballi", message="Also need kerb stones")
    outcome = ingest(store, again)
    assert (outcome.status, outcome.lead_ids) == ("reply", (lead_id,))
    assert [x.id for x in store.list_leads(LeadQuery(search="hubballi"))] == [lead_id]
    assert [x.id for x in store.list_leads(LeadQuery(search="kerb"))] == [lead_id]
    assert [x.id for x in store.list_leads(LeadQuery(search="looking"))] == [lead_id]


def test_search_keeps_the_newest_of_a_long_conversation(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    for i in range(60):
        raw_id, _ = store.add_raw(f"reply {i}".encode(), source="test", kind="email")
        store.apply(raw_id, [_reply(f"message number {i} " + "padding " * 10 + f"word{i}x")])
    assert [x.id for x in store.list_leads(LeadQuery(search="word59x"))] == [lead_id]
    assert store.list_leads(LeadQuery(search="word0x")) == []  # beyond the kept text
    assert len(store.messages(lead_id)) == 60  # the messages themselves are all kept


def test_search_pages_are_newest_first_across_old_and_recent_leads(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL searches the newest leads by id and the older ones through the search index;
    # a window of 4 puts this table's matches on both sides of that line.
    monkeypatch.setattr(store.dialect, "SEARCH_WINDOW", 4, raising=False)
    ids = []
    for i in range(12):
        product = "Fly Ash Bricks" if i % 3 == 0 else "Roof Tiles"
        lead = make_lead(
            message_id=f"p{i}@x",
            phone=f"+9198450001{i:02d}",
            email=None,
            product=product,
            message=None,
        )
        ids.append(ingest(store, lead).lead_ids[0])
    bricks = [lead_id for i, lead_id in enumerate(ids) if i % 3 == 0][::-1]
    first = store.list_leads(LeadQuery(search="bricks", limit=3))
    rest = store.list_leads(LeadQuery(search="bricks", limit=3, before_id=first[-1].id))
    assert [x.id for x in first + rest] == bricks
    assert [x.id for x in store.list_leads(LeadQuery(search="000100"))] == [ids[0]]


def test_search_pages_with_filters_are_the_newest_matches_window_after_window(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search page walks the matches newest first a window at a time (SQLite) or the
    newest leads first (PostgreSQL); with tiny windows a page spans several of them, and
    every page holds exactly the newest matches of the filter, as one big query would."""
    monkeypatch.setattr(store.dialect, "FIRST_WINDOW", 2, raising=False)
    monkeypatch.setattr(store.dialect, "SEARCH_WINDOW", 5, raising=False)
    leads = [
        make_lead(
            message_id=f"w{i}@x",
            phone=f"+9198450002{i:02d}",
            email=None,
            product="Fly Ash Bricks" if i % 2 else "Roof Tiles",
            message=None,
        )
        for i in range(40)
    ]
    ids = [ingest(store, lead).lead_ids[0] for lead in leads]
    for i, lead_id in enumerate(ids):
        if i % 5 == 0:
            store.set_status(lead_id, "won", actor="asha")
    won_bricks = [x for i, x in enumerate(ids) if i % 2 and i % 5 == 0][::-1]
    query = LeadQuery(search="bricks", status="won", limit=2)
    pages, before = [], None
    while page := store.list_leads(dataclasses.replace(query, before_id=before)):
        pages.append([x.id for x in page])
        before = page[-1].id
    assert [x for page in pages for x in page] == won_bricks
    assert all(len(page) == 2 for page in pages[:-1])
    assert store.list_leads(LeadQuery(search="bricks", status="spam")) == []
    everything = [x.id for x in store.list_leads(LeadQuery(search="bricks", limit=100))]
    assert everything == [x for i, x in enumerate(ids) if i % 2][::-1]


def test_search_with_punctuation_only_does_not_crash(store: Store) -> None:
    ingest(store, make_lead())
    assert len(store.list_leads(LeadQuery(search='"*^()'))) == 1


def test_change_feed_returns_only_what_changed(store: Store) -> None:
    a = ingest(store, make_lead(message_id="a@x")).lead_ids[0]
    b = ingest(store, make_lead(message_id="b@x", product="Tiles")).lead_ids[0]
    cursor = store.cursor()
    assert store.changes_since(cursor).leads == []
    store.mark_contacted(a, actor="asha")
    changes = store.changes_since(cursor)
    assert [x.id for x in changes.leads] == [a]
    assert changes.leads[0].status == "contacted"
    assert changes.cursor > cursor
    assert store.changes_since(changes.cursor).leads == []
    del b


def test_paging_the_change_feed_delivers_every_lead_of_a_batch(store: Store) -> None:
    # A batch (a burst of HTTP posts, an import) commits its leads under one change value.
    cursor = store.cursor()
    single = ingest(store, make_lead(message_id="first@x", product="Pavers")).lead_ids[0]
    items = [(store.add_raw(f"b{i}".encode(), source="t", kind="email")[0], i) for i in range(5)]
    store.apply_many(
        [(raw_id, [make_lead(message_id=f"m{i}@x", product=f"Tiles {i}")]) for raw_id, i in items]
    )
    seen: list[int] = []
    pages = 0
    while True:  # as GET /api/leads and the TUI page: from the cursor each answer gives
        changes = store.changes_since(cursor, limit=3)
        seen += [x.id for x in changes.leads]
        cursor, pages = changes.cursor, pages + 1
        if not changes.more:
            break
    assert sorted(seen) == sorted(set(seen))  # none twice
    assert len(seen) == 6  # none skipped where a page ended inside the batch
    assert seen[0] == single
    assert pages >= 2


def test_change_feed_reports_review_queue_and_health(store: Store) -> None:
    cursor = store.cursor()
    raw_id, _ = store.add_raw(b"x", source="t", kind="email")
    store.apply(raw_id, [{"kind": "error", "error": "bad"}])
    changes = store.changes_since(cursor)
    assert changes.raw_changed
    assert not changes.leads
    store.set_health(Health(source="imap", state="idle"))
    later = store.changes_since(changes.cursor)
    assert later.health_changed
    assert [(h.source, h.state) for h in store.health()] == [("imap", "idle")]


def test_a_viewer_connection_is_woken_by_another_connections_commit(db_url: str) -> None:
    viewer = Store.open(db_url)
    writer = Store.open(db_url)
    waiter = viewer.waiter()
    waiter.wait(0.05)  # PostgreSQL: the first call connects and asks for a catch-up
    cursor = viewer.cursor()
    woke = threading.Event()

    def wait() -> None:
        if waiter.wait(10):
            woke.set()

    t = threading.Thread(target=wait)
    t.start()
    ingest(writer, make_lead())
    t.join(15)
    assert woke.is_set()
    assert [x.name for x in viewer.changes_since(cursor).leads] == ["Sunil Rao"]
    waiter.close()
    viewer.close()
    writer.close()


def test_a_page_asked_for_ends_the_sqlite_viewers_wait_for_commits(tmp_path: Path) -> None:
    """The TUI's feed waits for commits between pages: a search or a scroll must not sit out
    that wait (the wait here is a minute; the test would hang, not pass, if it did)."""
    viewer = Store.open(str(tmp_path / "leads.db"))
    waiter = viewer.waiter()
    wake = threading.Event()
    answers: list[bool] = []
    t = threading.Thread(target=lambda: answers.append(waiter.wait(60, wake)))
    t.start()
    wake.set()
    t.join(15)
    assert answers == [False]  # woken, and nothing was committed
    waiter.close()
    viewer.close()


def test_capture_lease_is_exclusive_and_taken_over_on_expiry(store: Store) -> None:
    assert store.try_lease("tui-1", ttl=0.5)
    assert not store.try_lease("tui-2", ttl=0.5)
    assert store.try_lease("tui-1", ttl=0.5)  # renew
    info = store.lease_info()
    assert info is not None
    assert info.holder == "tui-1"
    wait_for(lambda: store.try_lease("tui-2", ttl=5), timeout=5, what="lease expiry")
    assert not store.try_lease("tui-1", ttl=5)
    store.release_lease("tui-2")
    assert store.lease_info() is None
    assert store.try_lease("tui-1", ttl=5)


def test_sync_state_round_trips(store: Store) -> None:
    assert store.get_state("imap:x") is None
    store.set_state("imap:x", {"uidvalidity": 7, "last_uid": 42})
    store.set_state("imap:x", {"uidvalidity": 7, "last_uid": 43})
    assert store.get_state("imap:x") == {"uidvalidity": 7, "last_uid": 43}


def _received(days_ago: float) -> str:
    return datetime.fromtimestamp(time.time() - days_ago * 86400).astimezone().isoformat()


def test_contacted_today_counts_older_leads_called_today(store: Store) -> None:
    old = ingest(store, make_lead(message_id="y@x", received_at=_received(1))).lead_ids[0]
    older = ingest(store, make_lead(message_id="z@x", product="Jali", received_at=_received(3)))
    store.mark_contacted(old, actor="asha")
    store.mark_contacted(older.lead_ids[0], actor="ravi")
    stats = store.stats()
    assert (stats.new_today, stats.contacted_today) == (0, 2)


def test_stats_median_response_and_counts(store: Store) -> None:
    a = ingest(store, make_lead(message_id="a@x", received_at=_received(0))).lead_ids[0]
    ingest(
        store,
        make_lead(message_id="b@x", product="Tiles", query_type="B", received_at=_received(0)),
    )
    # Captured today (a first run reads a week of mail), enquired a week ago: not "today".
    ingest(store, make_lead(message_id="old@x", product="Pavers", received_at=_received(7)))
    website = make_lead(message_id="w@x", product="Jali", query_type=None, source="website")
    ingest(store, {**website, "received_at": _received(1)})
    store.mark_contacted(a, actor="asha")
    stats = store.stats()
    assert stats.new_today == 2
    assert stats.contacted_today == 1
    assert stats.awaiting_contact == 3  # awaiting counts every day
    assert stats.by_type == {"W": 1, "B": 1, "website": 1}  # as the table's Type column
    assert stats.median_response_today is not None
    assert stats.median_response_today >= 0
    assert stats.per_day[-1][1] == 2
    assert stats.per_day[-8][1] == 1
    assert store.counts() == {"new_today": 2, "awaiting": 3, "review": 0, "unread": 0}


def test_capped_counts_stop_at_the_cap(store: Store) -> None:
    for i in range(3):
        ingest(
            store, make_lead(message_id=f"c{i}@x", product=f"Tiles {i}", received_at=_received(0))
        )
    raw_id, _ = store.add_raw(b"not a lead", source="test", kind="email")
    store.apply(raw_id, [{"kind": "error", "error": "unreadable"}])
    assert store.counts(cap=2) == {"new_today": 2, "awaiting": 2, "review": 1, "unread": 0}
    assert (
        store.counts(cap=10)
        == store.counts()
        == {"new_today": 3, "awaiting": 3, "review": 1, "unread": 0}
    )


def test_reopening_keeps_the_data_and_the_schema_version(db_url: str) -> None:
    with Store.open(db_url) as first:
        ingest(first, make_lead())
    with Store.open(db_url) as again:
        assert again.count_leads() == 1
        row = again.m.Meta.get(again.m.Meta.key == "schema_version")
        assert int(row.value) >= 1


def test_a_database_from_a_newer_leadtui_is_refused_with_a_clear_message(db_url: str) -> None:
    with Store.open(db_url) as s:
        s.m.Meta.update(value="999").where(s.m.Meta.key == "schema_version").execute()
    with pytest.raises(StoreError, match="newer leadtui"):
        Store.open(db_url)


def test_a_file_that_is_not_a_database_gives_a_one_line_error(tmp_path: Any) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not sqlite\n" * 100)
    with pytest.raises(StoreError, match=r"not a leadtui database|cannot open"):
        Store.open(str(path))


def test_unreachable_postgres_gives_a_one_line_error_without_the_password() -> None:
    with pytest.raises(StoreError) as err:
        Store.open("postgresql://nobody:hunter2@127.0.0.1:1/leads")
    message = str(err.value)
    assert message.startswith("cannot open the database postgresql://nobody@127.0.0.1:1/leads")
    assert "hunter2" not in message
    assert "\n" not in message


def test_racing_writers_store_one_raw_item_and_one_lead(db_url: str) -> None:
    """Two connections deliver the same email at the same moment: one item, one lead."""
    stores = [Store.open(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    outcomes: list[Any] = []
    errors: list[BaseException] = []

    def deliver(s: Store) -> None:
        try:
            barrier.wait(5)
            outcomes.append(ingest(s, make_lead(), b"the very same bytes"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=deliver, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len({o.lead_ids for o in outcomes}) == 1
    with Store.open(db_url) as check:
        assert check.count_leads() == 1
        assert len(check.m.RawItem.select()) == 1


def test_bulk_insert_takes_more_leads_than_one_statement_can_carry(store: Store) -> None:
    """PostgreSQL refuses a statement with more than 65,535 parameters (the benchmarks and
    synthetic databases insert leads in bulk)."""
    leads = [
        make_lead(message_id=f"bulk-{i}@example.com", external_id=str(i), phone=f"+9198{i:08d}")
        for i in range(2500)
    ]
    bulk_insert_leads(store, leads)
    assert store.count_leads() == 2500
    found = store.list_leads(LeadQuery(search="9800001234"))
    assert [lead.message_id for lead in found] == ["bulk-1234@example.com"]


def test_a_database_from_schema_1_is_migrated_with_its_leads(tmp_path: Any) -> None:
    """A user's schema-1 database gets the dedupe indexes of schema 2 and keeps its leads."""
    path = str(tmp_path / "old.db")
    with Store.open(path) as s:
        ingest(s, make_lead())
        s.db.execute_sql("DROP INDEX lead_phone_product_key")
        s.db.execute_sql("DROP INDEX lead_email_product_key")
        s.m.Meta.update(value="1").where(s.m.Meta.key == "schema_version").execute()
    with Store.open(path) as s:
        assert s.count_leads() == 1
        assert s.m.Meta.get(s.m.Meta.key == "schema_version").value == str(SCHEMA_VERSION)
        indexes = {i.name for i in s.db.get_indexes("lead")}
        assert {"lead_phone_product_key", "lead_email_product_key"} <= indexes
        plan = s.db.execute_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM lead WHERE phone = ? AND product_key = ?"
            " AND received_ts BETWEEN ? AND ?",
            ("+919845600066", "fly ash bricks", 0, 1e12),
        ).fetchall()
        assert "lead_phone_product_key" in str(plan)


def test_bulk_insert_takes_leads_without_a_time(store: Store) -> None:
    lead = make_lead(received_at=None, message_id=None)
    bulk_insert_leads(store, [lead, make_lead(message_id=None, name="Asha")])
    assert store.count_leads() == 2
    assert [x.name for x in store.list_leads(LeadQuery(search="asha"))] == ["Asha"]


def test_a_schema_2_database_learns_to_find_phones_by_their_last_digits(db_url: str) -> None:
    with Store.open(db_url) as s:
        ingest(s, make_lead())
        if s.backend == "sqlite":  # schema 2 indexed the number forwards only
            s.db.execute_sql("DELETE FROM lead_fts")
            s.db.execute_sql(
                "INSERT INTO lead_fts(rowid, body) SELECT id, name || ' ' || phone FROM lead"
            )
        else:
            s.db.execute_sql("ALTER TABLE lead DROP COLUMN search")
            s.db.execute_sql(
                "ALTER TABLE lead ADD COLUMN search tsvector GENERATED ALWAYS AS "
                "(to_tsvector('simple', coalesce(name,''))) STORED"
            )
        s.m.Meta.update(value="2").where(s.m.Meta.key == "schema_version").execute()
        assert s.list_leads(LeadQuery(search="600066")) == []
    with Store.open(db_url) as s:
        assert [x.name for x in s.list_leads(LeadQuery(search="600066"))] == ["Sunil Rao"]
        assert [x.name for x in s.list_leads(LeadQuery(search="sunil"))] == ["Sunil Rao"]


def test_a_schema_3_database_learns_to_find_leads_by_later_messages(db_url: str) -> None:
    with Store.open(db_url) as s:
        lead_id = ingest(s, make_lead()).lead_ids[0]
        raw_id, _ = s.add_raw(b"reply", source="test", kind="email")
        s.apply(raw_id, [_reply("Also quote for kerb stones")])
        # Schema 3 had no messages_text column, and its search did not read one.
        if s.backend == "sqlite":
            s.db.execute_sql("ALTER TABLE lead DROP COLUMN messages_text")
            s.db.execute_sql("DELETE FROM lead_fts")
            s.db.execute_sql("INSERT INTO lead_fts(rowid, body) SELECT id, name FROM lead")
        else:
            s.db.execute_sql("ALTER TABLE lead DROP COLUMN search")
            s.db.execute_sql("ALTER TABLE lead DROP COLUMN messages_text")
            s.db.execute_sql(
                "ALTER TABLE lead ADD COLUMN search tsvector GENERATED ALWAYS AS "
                "(to_tsvector('simple', coalesce(name,''))) STORED"
            )
        s.m.Meta.update(value="3").where(s.m.Meta.key == "schema_version").execute()
    with Store.open(db_url) as s:
        assert s.m.Meta.get(s.m.Meta.key == "schema_version").value == str(SCHEMA_VERSION)
        assert [x.id for x in s.list_leads(LeadQuery(search="kerb"))] == [lead_id]
        assert [x.id for x in s.list_leads(LeadQuery(search="sunil"))] == [lead_id]


def test_a_new_database_is_never_world_readable_and_group_shared_only_in_a_team_folder(
    tmp_path: Path,
) -> None:
    """Buyers' phones and emails: the owner's alone (0600), or the team's in a setgid team
    folder (0660, as the README's ``install -d -m 2775 -g sales``), whatever the umask: the
    database and its -wal and -shm."""
    team, mine = tmp_path / "team", tmp_path / "mine"
    team.mkdir()
    team.chmod(0o2775)
    mine.mkdir()
    mine.chmod(0o755)
    umask = os.umask(0o022)
    try:
        for folder in (team, mine):
            with Store.open(str(folder / "leads.db")) as store:
                ingest(store, make_lead())  # writes: the -wal and -shm exist now
                modes = {p.name: p.stat().st_mode & 0o7777 for p in folder.iterdir()}
            if folder == team:
                shared = modes
            else:
                private = modes
    finally:
        os.umask(umask)
    assert shared == {"leads.db": 0o660, "leads.db-wal": 0o660, "leads.db-shm": 0o660}
    assert private == {"leads.db": 0o600, "leads.db-wal": 0o600, "leads.db-shm": 0o600}


def test_an_old_world_readable_database_is_made_private_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "leads.db"
    with Store.open(str(path)) as store:
        ingest(store, make_lead())
    for name in ("leads.db", "leads.db-wal", "leads.db-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).chmod(0o644)  # as an older leadtui left it
    with Store.open(str(path)) as store:
        ingest(store, make_lead(phone="+91-9800000001", email="b@x.in"))
        modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"leads.db": 0o640, "leads.db-wal": 0o640, "leads.db-shm": 0o640}


def test_a_url_of_another_database_is_refused_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=r"cannot use a mysql:// database.*postgresql://"):
        Store.open("mysql://sales@dbhost/leads")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_made_only_when_asked(tmp_path: Path) -> None:
    url = str(tmp_path / "no" / "such" / "leads.db")
    with pytest.raises(
        StoreError, match=r"the folder .*/no/such for the database .* does not exist"
    ):
        Store.open(url, create_folder=False)
    assert not (tmp_path / "no").exists()
    Store.open(url).close()
    assert (tmp_path / "no" / "such" / "leads.db").exists()


def test_a_postgres_schema_that_does_not_exist_is_one_line_without_the_password(
    pg_url: str,
) -> None:
    from urllib.parse import urlparse

    parsed = urlparse(pg_url)
    password = "hunter2-pg"
    netloc = f"{parsed.username}:{password}@{parsed.hostname}"
    if parsed.port:
        netloc += f":{parsed.port}"
    url = f"postgresql://{netloc}{parsed.path}?options=-csearch_path%3Dno_such_schema_here"
    with pytest.raises(StoreError) as err:
        Store.open(url)
    message = str(err.value)
    assert message.startswith(f"the database postgresql://{parsed.username}@{parsed.hostname}")
    assert "no schema has been selected to create in" in message
    assert "search_path" in message
    assert "\n" not in message
    assert password not in message
    assert "the file" not in message
