"""What the HTTP ingest needs of the store and the pipeline, on SQLite and PostgreSQL.

Group commit (``Store.add_raw_many``, ``Store.apply_many``, ``Pipeline.accept_many``) must
give every item the outcome it would get one at a time, and a WhatsApp message from a phone
the store knows continues that buyer's lead instead of making a new one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from leadtui import parser
from leadtui.capture import Pipeline, RawItem
from leadtui.store import LeadQuery, Store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


def lead_item(n: int, *, key: str | None = None, **extra: Any) -> RawItem:
    body = {"name": f"Buyer {n}", "phone": f"+91980000{n:04d}", "product": "Fly Ash Bricks"}
    body.update(extra)
    return RawItem(
        json.dumps(body).encode(), source="http:test", kind="json", channel="api", dedupe_key=key
    )


def whatsapp(phone: str, message: str, name: str | None = "Asha") -> RawItem:
    body = {"source": "whatsapp", "phone": phone, "message": message, "name": name}
    return RawItem(json.dumps(body).encode(), source="whatsapp:test", kind="json", channel="api")


# --------------------------------------------------------------------------- add_raw_many


def test_add_raw_many_commits_every_item_and_recognises_repeats(store: Store) -> None:
    earlier, _ = store.add_raw(b"already here", source="x", kind="json")
    items = [
        lead_item(1),
        lead_item(2, key="idem:k:a"),
        lead_item(1),  # same body as the first
        lead_item(3, key="idem:k:a"),  # another body under the same Idempotency-Key
        RawItem(b"already here", source="x", kind="json"),
    ]
    added = store.add_raw_many(items)
    first, second = added[0][0], added[1][0]
    assert added == [
        (first, True),
        (second, True),
        (first, False),
        (second, False),
        (earlier, False),
    ]
    assert store.raw_body(first) == items[0].body
    assert store.raw_body(second) == items[1].body
    assert store.add_raw_many([]) == []


# --------------------------------------------------------------------------- accept_many


def test_accept_many_gives_each_item_the_outcome_it_would_get_alone(store: Store) -> None:
    pipeline = Pipeline(store)
    seen: list[list[tuple[int, bool]]] = []

    def committed(added: list[tuple[int, bool]]) -> None:
        # Told after the raw commit and before any lead exists: a webhook answers here.
        seen.append(added)
        assert store.count_leads() == 0
        assert {store.raw_info(raw_id).status for raw_id, _ in added} == {"pending"}  # type: ignore[union-attr]

    items = [lead_item(1), lead_item(2, key="idem:k:2"), lead_item(1), lead_item(9, key="idem:k:2")]
    outcomes = pipeline.accept_many(items, committed)

    assert len(seen) == 1
    assert [o.status for o in outcomes] == ["new", "new", "duplicate", "duplicate"]
    assert outcomes[2].lead_ids == outcomes[0].lead_ids
    assert outcomes[3].lead_ids == outcomes[1].lead_ids
    assert store.count_leads() == 2
    names = sorted(lead.name or "" for lead in store.list_leads(LeadQuery()))
    assert names == ["Buyer 1", "Buyer 2"]


def test_accept_many_again_is_all_duplicates(store: Store) -> None:
    pipeline = Pipeline(store)
    items = [lead_item(n) for n in range(5)]
    first = pipeline.accept_many(items)
    again = pipeline.accept_many(items)
    assert [o.status for o in again] == ["duplicate"] * 5
    assert [o.lead_ids for o in again] == [o.lead_ids for o in first]
    assert store.count_leads() == 5


def test_accept_many_finishes_an_item_committed_but_never_processed(store: Store) -> None:
    item = lead_item(7)
    raw_id, _ = store.add_raw(item.body, source=item.source, kind=item.kind, channel=item.channel)
    (outcome,) = Pipeline(store).accept_many([item])
    assert outcome.status == "new"
    assert outcome.raw_id == raw_id
    assert store.raw_info(raw_id).status == "parsed"  # type: ignore[union-attr]


def test_accept_many_sends_unreadable_items_to_review_and_keeps_the_rest(store: Store) -> None:
    items = [lead_item(1), RawItem(b"{not json", source="push", kind="json", channel="push")]
    outcomes = Pipeline(store).accept_many(items)
    assert [o.status for o in outcomes] == ["new", "failed"]
    assert [r.id for r in store.review_items()] == [outcomes[1].raw_id]


def test_a_store_bug_in_one_item_does_not_hold_up_the_batch(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store._apply._upsert_lead

    def upsert(result: dict[str, Any], raw_id: int, now: float, batch: Any) -> Any:
        if result.get("name") == "Buyer 2":
            raise ValueError("a bug")
        return real(result, raw_id, now, batch)

    monkeypatch.setattr(store._apply, "_upsert_lead", upsert)
    outcomes = Pipeline(store).accept_many([lead_item(1), lead_item(2), lead_item(3)])
    assert [o.status for o in outcomes] == ["new", "failed", "new"]
    assert "a bug" in outcomes[1].detail
    assert store.count_leads() == 2


def test_apply_many_applies_in_order_in_one_go(store: Store) -> None:
    items = [lead_item(1), lead_item(1, product="Red Bricks")]
    added = store.add_raw_many(items)
    batch = [
        (raw_id, parser.parse_json_bytes(i.body))
        for (raw_id, _), i in zip(added, items, strict=True)
    ]
    outcomes = store.apply_many(batch)
    assert [o.status for o in outcomes] == ["new", "new"]
    assert [lead.enquiry_no for lead in store.list_leads(LeadQuery())] == [2, 1]
    assert store.apply_many([]) == []


# --------------------------------------------------------------------------- WhatsApp


def test_whatsapp_message_from_an_unknown_phone_is_a_new_lead(store: Store) -> None:
    outcome = Pipeline(store).accept(whatsapp("+919812300001", "Need 2000 bricks"))
    assert outcome.status == "new"
    lead = store.get_lead(outcome.lead_ids[0])
    assert lead is not None
    assert (lead.source, lead.phone, lead.name, lead.message) == (
        "whatsapp",
        "+919812300001",
        "Asha",
        "Need 2000 bricks",
    )


def test_whatsapp_message_from_a_known_phone_continues_that_lead(store: Store) -> None:
    pipeline = Pipeline(store)
    first = pipeline.accept(whatsapp("+919812300001", "Need 2000 bricks"))
    second = pipeline.accept(whatsapp("+919812300001", "Can you deliver by Friday?"))
    assert second.status == "reply"
    assert second.lead_ids == first.lead_ids
    assert store.count_leads() == 1
    texts = [m.text for m in store.messages(first.lead_ids[0])]
    assert texts == ["Can you deliver by Friday?"]


def test_whatsapp_message_joins_the_buyers_newest_lead_from_any_source(store: Store) -> None:
    pipeline = Pipeline(store)
    older = pipeline.accept(lead_item(5, product="Cement"))
    newer = pipeline.accept(lead_item(5, product="Roof Tiles"))
    assert older.lead_ids != newer.lead_ids
    outcome = pipeline.accept(whatsapp("+919800000005", "Price for tiles?"))
    assert outcome.lead_ids == newer.lead_ids
    assert [m.text for m in store.messages(newer.lead_ids[0])] == ["Price for tiles?"]
    assert store.messages(older.lead_ids[0]) == []


def test_whatsapp_messages_in_one_batch_make_one_lead(store: Store) -> None:
    outcomes = Pipeline(store).accept_many(
        [whatsapp("+919812300002", "Hello"), whatsapp("+919812300002", "Are you there?")]
    )
    assert [o.status for o in outcomes] == ["new", "reply"]
    assert store.count_leads() == 1
    assert [m.text for m in store.messages(outcomes[0].lead_ids[0])] == ["Are you there?"]


def test_whatsapp_message_applied_twice_is_appended_once(store: Store) -> None:
    pipeline = Pipeline(store)
    first = pipeline.accept(whatsapp("+919812300003", "Hello"))
    second = pipeline.accept(whatsapp("+919812300003", "Send the catalogue"))
    for raw_id in (first.raw_id, second.raw_id, second.raw_id):
        pipeline.reparse(raw_id)
    assert [m.text for m in store.messages(second.lead_ids[0])] == ["Send the catalogue"]
    assert store.count_leads() == 1
    lead = store.get_lead(first.lead_ids[0])
    assert lead is not None
    assert lead.message == "Hello"
