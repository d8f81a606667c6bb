"""Synthetic lead databases shared by bench/store.py and bench/tui.py, built once and cached.

Not a benchmark itself (bench/run_all.py skips files starting with ``_``). Leads go in through
:func:`bulk_insert_leads`, without the capture path's dedupe (the tests use it too). The leads are parsed
synthetic IndiaMART push payloads and lead emails, each copy with its own ids and phone, and
statuses spread like a working table.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from leadtui import parser, synth  # noqa: E402
from leadtui._store.apply import parse_received, product_key_of  # noqa: E402
from leadtui._store.database import Database  # noqa: E402
from leadtui._store.records import CONTRACT_FIELDS, iso  # noqa: E402
from leadtui.store import SCHEMA_VERSION, Store  # noqa: E402

CACHE = Path("/tmp/leadtui-bench")
BASE_LEADS = 5000  # distinct parsed leads; the rest are copies with their own ids and phone
CHUNK = 20_000
# Cached databases are named by schema version: a branch with another schema (here or in
# another worktree) neither migrates them under the others' feet nor reads one it cannot.
DB_TAG = f"s{SCHEMA_VERSION}"


def base_leads(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Parsed synthetic leads: IndiaMART push payloads and lead emails, as captured."""
    leads: list[dict[str, Any]] = []
    kinds = ("enquiry", "buylead", "phone", "tradeindia")
    while len(leads) < n:
        if rng.random() < 0.5:
            results = parser.parse(synth.push_payload(rng))
        else:
            results = parser.parse(synth.email(rng, rng.choice(kinds)))
        leads += [r for r in results if r.get("kind") == "lead"]
    return leads[:n]


def varied(base: list[dict[str, Any]], i: int) -> dict[str, Any]:
    """Lead ``i``: a base lead with its own ids and phone, so keys stay unique."""
    lead = dict(base[i % len(base)])
    lead["external_id"] = str(3_000_000_000 + i)
    lead["message_id"] = f"bench-{i}@mail.indiamart.com"
    if lead.get("phone"):
        lead["phone"] = f"+91{9_000_000_000 + (i * 7919) % 999_999_999}"
    return lead


def status_mix(mod: str) -> str:
    """SQL for a realistic spread of statuses (``mod``: the modulo operator as written)."""
    m = f"id {mod} 100"
    return (
        f"CASE WHEN {m} < 45 THEN 'new' WHEN {m} < 70 THEN 'contacted' "
        f"WHEN {m} < 82 THEN 'quoted' WHEN {m} < 88 THEN 'won' "
        f"WHEN {m} < 97 THEN 'lost' ELSE 'spam' END"
    )


def bulk_insert_leads(store: Store, results: Sequence[dict[str, Any]], batch: int = 2000) -> None:
    """Insert many parsed leads without dedupe (for benchmarks and synthetic databases)."""
    now = time.time()
    rows = []
    for result in results:
        row = {f: result.get(f) for f in CONTRACT_FIELDS}
        row["specs"] = json.dumps(result.get("specs") or {}, ensure_ascii=False)
        row["verified"] = json.dumps(result.get("verified") or [])
        row.update(
            source=row["source"] or "other",
            channel=row["channel"] or "api",
            received_at=row["received_at"] or iso(now),
            received_ts=parse_received(result.get("received_at")),
            first_seen_ts=now,
            updated_ts=now,
            buyer_key=result.get("phone") or result.get("email"),
            product_key=product_key_of(result.get("product")),
            channels=row["channel"] or "api",
        )
        rows.append(row)
    database = Database(store.dialect)  # the store's backend, with its write helpers
    lead = database.m.Lead
    # PostgreSQL takes at most 65,535 parameters in one statement (a value for each field).
    batch = max(1, min(batch, 65_535 // len(lead._meta.sorted_fields)))
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]

        def txn(chunk: list[dict[str, Any]] = chunk) -> None:
            if store.backend == "postgres":
                ids = [r[0] for r in lead.insert_many(chunk).returning(lead.id).tuples()]
            else:
                first = int(lead.insert_many(chunk).execute()) - len(chunk) + 1
                ids = list(range(first, first + len(chunk)))
            for lead_id, values in zip(ids, chunk, strict=True):
                store.dialect.index_search(lead_id, values, new=True)
            database.stamp_leads(ids)

        database.retrying(txn)


def marked(store: Store, n: int) -> bool:
    meta = store.m.Meta
    return bool(meta.select().where((meta.key == "bench_leads") & (meta.value == str(n))).exists())


def mark(store: Store, n: int) -> None:
    meta = store.m.Meta
    meta.delete().where(meta.key == "bench_leads").execute()
    meta.insert(key="bench_leads", value=str(n)).execute()


def sqlite_leads_db(n: int) -> str:
    """A SQLite database with ``n`` synthetic leads, built once and cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"store-{DB_TAG}-{n}.db"
    if path.exists():
        return str(path)
    tmp = CACHE / f"store-{DB_TAG}-{n}.building"
    for leftover in CACHE.glob(tmp.name + "*"):
        leftover.unlink()
    print(f"store: building {path} with {n:,} leads (once)…", file=sys.stderr)
    base = base_leads(random.Random(n), BASE_LEADS)
    store = Store.open(str(tmp))
    try:
        for start in range(0, n, CHUNK):
            bulk_insert_leads(store, [varied(base, i) for i in range(start, min(n, start + CHUNK))])
        store.db.execute_sql(f"UPDATE lead SET status = {status_mix('%')}")
        mark(store, n)
        store.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    tmp.rename(path)
    return str(path)
