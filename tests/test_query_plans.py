"""Every statement the capture path runs is served by an index, on SQLite and PostgreSQL.

A lookup no index serves costs time in proportion to the table: a buyer's reply that
scanned the lead table took a quarter of a second at a million leads, against a millisecond
and a half for a new enquiry. These tests record the SQL each capture path runs (a new
enquiry, its duplicate and copies, a website form sent again, replies matched every way,
WhatsApp messages, a reparse) and ask the database how it would run each statement:

- SQLite: ``EXPLAIN QUERY PLAN``; a ``SCAN`` of a table (or of a whole index) fails, a
  ``SEARCH`` passes. No ``ANALYZE``: a user's database has no statistics either.
- PostgreSQL: ``EXPLAIN`` after ``ANALYZE`` over a few thousand leads, with
  ``enable_seqscan = off`` so a sequential scan appears only when no index can serve the
  statement; a sequential scan, or an index scan with no index condition (a walk of the
  whole index, filtering), fails.

So a later change cannot bring a scan back to the capture path without a test failing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from test_store import make_lead

from bench._synthetic import bulk_insert_leads
from leadtui._store.apply import REPLY_LOOKUPS
from leadtui.store import SCHEMA_VERSION, LeadQuery, Store

SEED = 3000  # leads already in the table, so the planner's choice means something


def _reply(**over: Any) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "kind": "reply",
        "source": "indiamart",
        "channel": "email",
        "name": "Sunil Rao",
        "company": None,
        "product": "Fly Ash Bricks",
        "phone": None,
        "email": None,
        "messages": ["Please send the price list."],
        "received_at": "2026-03-02T12:00:00+05:30",
        "message_id": None,
    }
    reply.update(over)
    return reply


# A repeat buyer of long ago: many leads, all older than the rest. PostgreSQL's statistics
# call this buyer common, which tempts it to answer "the newest lead of this buyer" by walking
# the whole table down from the newest lead (and finding theirs only at the very end).
OLD_BUYER = {
    "phone": "+919500000001",
    "phone_alt": "+919400000001",
    "email": "old.buyer@example.com",
    "name": "Old Buyer",
    "product": "Product 0",
}
OLD_LEADS = 300


def _seed(store: Store) -> None:
    old = [
        make_lead(message_id=f"old-{i}@x", external_id=str(1_000_000_000 + i), **OLD_BUYER)
        for i in range(OLD_LEADS)
    ]
    leads = old + [
        make_lead(
            message_id=f"seed-{i}@mail.indiamart.com",
            external_id=str(2_000_000_000 + i),
            phone=f"+9197{i:08d}",
            phone_alt=f"+9196{i:08d}" if i % 3 == 0 else None,
            email=f"buyer{i}@example.com",
            name=f"Buyer {i}",
            product=f"Product {i % 400}",
        )
        for i in range(SEED)
    ]
    bulk_insert_leads(store, leads)
    if store.backend == "postgres":
        store.db.execute_sql("ANALYZE")


class Recorder:
    """The statements a store runs through Peewee's ``execute_sql`` (every statement of the
    capture path but the batched inserts of links, events and search rows)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self._execute = store.db.execute_sql

    def __enter__(self) -> Recorder:
        def execute_sql(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            self.statements.append((sql, tuple(params or ())))
            return self._execute(sql, params, *args, **kwargs)

        self.store.db.execute_sql = execute_sql
        return self

    def __exit__(self, *exc: object) -> None:
        del self.store.db.execute_sql  # the class's method again


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as s:
        _seed(s)
        yield s


def _capture(store: Store, body: bytes, *results: dict[str, Any]) -> Any:
    raw_id, _ = store.add_raw(body, source="test", kind="email")
    return store.apply(raw_id, list(results))


def _reads_a_table(sql: str) -> bool:
    text = sql.lstrip().upper()
    if text.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "PRAGMA", "SET")):
        return False
    return "PG_NOTIFY" not in text and "CLOCK_TIMESTAMP" not in text


def full_scans(store: Store, sql: str, params: tuple[Any, ...]) -> list[str]:
    """How the database would read a whole table (or a whole index) to run ``sql``."""
    if store.backend == "sqlite":
        rows = store.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return [
            row[3]
            for row in rows
            if re.match(r"SCAN \w+", row[3])
            and "VIRTUAL TABLE" not in row[3]  # lead_fts: searched by its own index
            and "CONSTANT ROW" not in row[3]
        ]
    store.db.execute_sql("SET enable_seqscan = off")
    try:
        (plan,) = store.db.execute_sql("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    finally:
        store.db.execute_sql("RESET enable_seqscan")
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node.get("Node Type", "")
        cond = node.get("Index Cond", "")
        if kind == "Seq Scan" or (
            # an index scan with no condition, or filtering a walk of the whole index
            # (max(id) as "id IS NOT NULL", newest first, until a row passes the filter)
            kind in ("Index Scan", "Index Only Scan")
            and (not cond or ("Filter" in node and re.fullmatch(r"\(\w+ IS NOT NULL\)", cond)))
        ):
            found.append(f"{kind} on {node.get('Relation Name')}: {json.dumps(node)[:300]}")
        for child in node.get("Plans", []):
            walk(child)

    walk((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return found


def assert_served_by_indexes(store: Store, recorder: Recorder) -> None:
    statements = [(s, p) for s, p in recorder.statements if _reads_a_table(s)]
    assert statements, "nothing was recorded"
    scans = {sql: found for sql, params in statements if (found := full_scans(store, sql, params))}
    assert not scans, "statements on the capture path that scan:\n" + "\n".join(
        f"{sql}\n    -> {found}" for sql, found in scans.items()
    )


def test_a_new_enquiry_its_copies_and_a_form_sent_again_use_indexes(store: Store) -> None:
    with Recorder(store) as rec:
        new = _capture(store, b"new", make_lead(external_id="555", message_id="n@x"))
        assert new.status == "new"
        # the same email again, and the same enquiry by another channel
        assert _capture(store, b"again", make_lead(external_id="555", message_id="n@x")).status
        assert (
            _capture(
                store, b"api", make_lead(external_id="555", message_id=None, channel="pull")
            ).lead_ids
            == new.lead_ids
        )
        # a copy known only by phone / email and product within 48 hours
        for over in ({"email": None}, {"phone": None}):
            copy = make_lead(external_id=None, message_id=None, city="Mandya", **over)
            assert _capture(store, repr(over).encode(), copy).lead_ids == new.lead_ids
        # a website form sent again with something new to say
        form = make_lead(
            source="website",
            channel="api",
            external_id=None,
            message_id=None,
            phone="+919800000001",
        )
        first = _capture(store, b"form", form)
        again = _capture(store, b"form again", {**form, "message": "Need it by Friday"})
        assert again.lead_ids == first.lead_ids
        assert again.status == "reply"
        # a repeat buyer, another product: a new lead counted as their second enquiry
        _capture(store, b"repeat", make_lead(message_id="r@x", product="Cement", external_id=None))
    assert_served_by_indexes(store, rec)


def test_replies_matched_every_way_and_unmatched_use_indexes(store: Store) -> None:
    seeded = 3 * 7  # has a phone_alt
    newest_old = store.list_leads(LeadQuery(search="old buyer", limit=1))[0].id
    with Recorder(store) as rec:
        # the old repeat buyer, known each way only (their newest lead is old)
        for key in ("phone", "phone_alt", "email"):
            found = _capture(
                store,
                key.encode(),
                _reply(name=None, **{"phone" if key == "phone_alt" else key: OLD_BUYER[key]}),
            )
            assert found.lead_ids == (newest_old,)
        by_old_name = _capture(store, b"old name", _reply(name="old buyer", product="product 0"))
        assert by_old_name.lead_ids == (newest_old,)
        by_phone = _capture(store, b"r1", _reply(phone=f"+9197{seeded:08d}"))
        by_alt = _capture(store, b"r2", _reply(phone=f"+9196{seeded:08d}"))
        by_email = _capture(store, b"r3", _reply(email=f"buyer{seeded}@example.com"))
        by_name = _capture(store, b"r4", _reply(name=f"BUYER {seeded}", product="product 21"))
        assert by_phone.lead_ids == by_alt.lead_ids == by_email.lead_ids == by_name.lead_ids
        # the costly case: a reply that matches nothing runs every lookup
        unknown = _reply(phone="+919000000000", email="no@example.com", name="Nobody")
        assert _capture(store, b"r5", unknown).status == "failed"
        # a reparse of a reply that was applied: recognised, not applied twice
        raw_id, _ = store.add_raw(b"r1", source="test", kind="email")
        store.apply(raw_id, [_reply(phone=f"+9197{seeded:08d}")])
    assert len(store.messages(by_phone.lead_ids[0])) == 4
    assert_served_by_indexes(store, rec)


def test_whatsapp_messages_use_indexes(store: Store) -> None:
    def chat(phone: str, text: str) -> dict[str, Any]:
        return make_lead(
            source="whatsapp",
            channel="api",
            phone=phone,
            email=None,
            external_id=None,
            message_id=None,
            product=None,
            message=text,
        )

    with Recorder(store) as rec:
        known = _capture(store, b"w1", chat("+919700000042", "Is it available?"))
        assert known.status == "reply"
        assert _capture(store, b"w2", chat("+918888888888", "Hello")).status == "new"
        raw_id, _ = store.add_raw(b"w1", source="test", kind="email")  # a reparse
        assert store.apply(raw_id, [chat("+919700000042", "Is it available?")]).lead_ids
    assert_served_by_indexes(store, rec)


def test_each_reply_lookup_uses_its_own_index(store: Store) -> None:
    expected = {
        "phone": "lead_phone_product_key",
        "phone_alt": "lead_phone_alt",
        "email": "lead_email_product_key",
        "name": "lead_lower_name_product_key",
    }
    assert set(expected) == set(REPLY_LOOKUPS)
    for key, sql in REPLY_LOOKUPS.items():
        params: tuple[Any, ...] = ("buyer 7", "product 7") if key == "name" else ("+919700000007",)
        # the old repeat buyer's values, and values no lead has
        old = ("old buyer", "product 0") if key == "name" else (OLD_BUYER[key],)
        for values in (old, ("nobody", "product 0") if key == "name" else ("+910000000000",)):
            pg_sql = sql if store.backend == "sqlite" else sql.replace("?", "%s")
            assert not full_scans(store, pg_sql, values), f"{key} {values}"
        if store.backend == "sqlite":
            plan = str(store.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        else:
            pg_sql = sql.replace("?", "%s")
            store.db.execute_sql("SET enable_seqscan = off")
            plan = str(store.db.execute_sql("EXPLAIN " + pg_sql, params).fetchall())
            store.db.execute_sql("RESET enable_seqscan")
        assert expected[key] in plan, f"{key}: {plan}"


def test_a_buyers_history_uses_indexes(store: Store) -> None:
    newest = store.list_leads(LeadQuery(limit=1))[0]
    old = store.list_leads(LeadQuery(search="old buyer", limit=1))[0]
    with Recorder(store) as rec:
        assert store.buyer_history(newest) == []
        assert len(store.buyer_history(old)) == 20
    assert_served_by_indexes(store, rec)


def test_schema_4_database_gets_the_reply_indexes(db_url: str) -> None:
    """An existing database (schema 4) is migrated: the indexes appear, its leads stay, and
    a reply by the other phone or by name still finds its lead."""
    with Store.open(db_url) as s:
        lead = make_lead(phone_alt="+919111111111")
        lead_id = _capture(s, b"lead", lead).lead_ids[0]
        s.db.execute_sql("DROP INDEX lead_phone_alt")
        s.db.execute_sql("DROP INDEX lead_lower_name_product_key")
        s.m.Meta.update(value="4").where(s.m.Meta.key == "schema_version").execute()
    with Store.open(db_url) as s:
        assert s.m.Meta.get(s.m.Meta.key == "schema_version").value == str(SCHEMA_VERSION)
        indexes = {i.name for i in s.db.get_indexes("lead")}
        assert {"lead_phone_alt", "lead_lower_name_product_key"} <= indexes
        assert _capture(s, b"r1", _reply(phone="+919111111111")).lead_ids == (lead_id,)
        assert _capture(s, b"r2", _reply(name="sunil RAO")).lead_ids == (lead_id,)
        found = s.get_lead(lead_id)
        assert found is not None
        assert found.messages_count == 2


def test_the_unread_view_and_count_read_only_the_unread_leads(store: Store) -> None:
    """The unread filter, its count and the header's count go through the partial index
    ``lead_unread``, which holds only leads with an unread message: their cost follows those
    leads, not the table (a scan of that index is the point, so it is checked by name)."""
    newest = store.list_leads(LeadQuery(limit=1))[0]
    assert _capture(store, b"r", _reply(phone=newest.phone)).lead_ids == (newest.id,)
    if store.backend == "postgres":
        store.db.execute_sql("ANALYZE lead")
    with Recorder(store) as rec:
        assert [x.id for x in store.list_leads(LeadQuery(unread=True, limit=60))] == [newest.id]
        assert store.count_leads(LeadQuery(unread=True)) == 1
        assert store.matching_ids(LeadQuery(unread=True), [newest.id, 1]) == {newest.id}
        assert store.counts(cap=10_000)["unread"] == 1
    statements = [(s, p) for s, p in rec.statements if "unread > 0" in s]
    assert len(statements) == 4
    for sql, params in statements:
        by_id = '"id" IN' in sql  # matching_ids: a few leads by their ids
        if store.backend == "sqlite":
            plan = str(store.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            wanted = "INTEGER PRIMARY KEY" if by_id else "USING INDEX lead_unread"
            assert wanted in plan, f"{sql}: {plan}"
            assert not re.search(r"SCAN t1(?! USING (COVERING )?INDEX lead_unread)", plan), plan
        else:
            store.db.execute_sql("SET enable_seqscan = off")
            plan = str(store.db.execute_sql("EXPLAIN " + sql, params).fetchall())
            store.db.execute_sql("RESET enable_seqscan")
            assert "lead_unread" in plan or (by_id and "lead_pkey" in plan), f"{sql}: {plan}"
            assert "Seq Scan" not in plan, plan


def test_the_stats_count_of_todays_contacts_reads_an_index_not_the_table(store: Store) -> None:
    """Schema 9: "contacted today" read every lead (0.4-0.7 s at a million) until
    ``contacted_ts`` was indexed."""
    with Recorder(store) as rec:
        store.stats(sla_seconds=900.0)
    counts = [(s, p) for s, p in rec.statements if '"contacted_ts" >=' in s]
    assert counts, "the stats did not count today's contacts"
    assert not {s: f for s, p in counts if (f := full_scans(store, s, p))}


def test_schema_8_database_gets_the_contacted_index(db_url: str) -> None:
    with Store.open(db_url) as s:
        s.db.execute_sql("DROP INDEX lead_contacted_ts")
        s.m.Meta.update(value="8").where(s.m.Meta.key == "schema_version").execute()
    with Store.open(db_url) as s:
        assert s.m.Meta.get(s.m.Meta.key == "schema_version").value == str(SCHEMA_VERSION)
        assert "lead_contacted_ts" in {i.name for i in s.db.get_indexes("lead")}
