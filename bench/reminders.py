"""Reminders and first contact over 1,000,000 leads: the queries a TUI runs every 15 s.

    .venv/bin/python bench/reminders.py            # one line per figure
    .venv/bin/python bench/reminders.py --json     # a dict, for bench/run_all.py

Each TUI's reminder watcher (``leadtui/reminders.py``) records the alerts that came due
(``claim_alerts``), reads the ones since it last looked (``alerts_after``) and counts the
header's ``due · overdue · late`` (``reminder_counts``); ``leadtui list --due`` /
``--overdue`` read ``follow_ups``; the calls-to-return filter is a first page; the stats
screen adds first contact on time per day and person (``stats`` with ``sla_seconds``).
Budget: each ≤ 300 ms (the search/filter budget; stats: the 1 s report budget).

The database is bench/store.py's cached one with ``--leads`` synthetic leads (built once by
``_synthetic``; SQLite, and PostgreSQL with ``--pg`` / LEADTUI_BENCH_PG_URL), copied and then
given a working day's shape: first seen when enquired, a first contact for every lead past
new (half within 15 minutes), five owners and unowned leads, and a follow-up on one lead in
five, from a month ago to a week ahead. The copy is the bench's own: the cached database
stays as store.py left it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from _synthetic import CACHE, DB_TAG, marked, sqlite_leads_db  # noqa: E402
from store import pg_admin, pg_base_url, pg_leads_db, pg_schema_url  # noqa: E402

from leadtui._store.schema import FOLLOW_UP_INDEX  # noqa: E402
from leadtui.store import LeadQuery, Store  # noqa: E402
from leadtui.widgets.bars import COUNT_CAP  # noqa: E402

BUDGET_MS = 300.0
BUDGET_STATS_MS = 1000.0
SLA = 900.0
PEOPLE = ("asha", "ravi", "meena", "kiran", "farhan")
SHAPED = "reminders_shaped"  # the Meta key saying a copy has its working day's shape


def shape_sql(now: float, mod: str) -> list[str]:
    """Statements that give the synthetic leads follow-ups, owners and first contacts."""
    owners = " ".join(f"WHEN {i} THEN '{p}'" for i, p in enumerate(PEOPLE))
    return [
        # first seen a few seconds after the buyer enquired, as live capture does; the newest
        # leads are today's (the bench's "now")
        f"UPDATE lead SET first_seen_ts = {now} - (SELECT MAX(id) FROM lead) * 6 + id * 6 ",
        "UPDATE lead SET received_ts = first_seen_ts - 5",
        f"UPDATE lead SET owner = CASE id {mod} 6 {owners} ELSE NULL END",
        # past new: contacted, half within 15 minutes (id even), the rest within 3 hours
        f"UPDATE lead SET contacted_ts = first_seen_ts + CASE WHEN id {mod} 2 = 0 "
        f"THEN 60 + id {mod} 800 ELSE 1000 + id {mod} 10000 END, "
        f"contacted_by = CASE id {mod} 5 {owners} END WHERE status <> 'new'",
        # one lead in five has a follow-up, from 30 days ago to 7 days ahead
        f"UPDATE lead SET follow_up_ts = {now} - 30 * 86400 + (id * 7919) {mod} (37 * 86400) "
        f"WHERE id {mod} 5 = 0",
    ]


def cached_sqlite(n: int) -> str:
    """bench/store.py's cached database of ``n`` leads; one of an older schema will do (the
    copy is migrated when opened), so a branch's new schema need not build a million again."""
    own = CACHE / f"store-{DB_TAG}-{n}.db"
    older = sorted(CACHE.glob(f"store-s*-{n}.db"))
    if own.exists() or not older:
        return sqlite_leads_db(n)
    return str(older[-1])


def shaped_copy(url: str, backend: str, pg: str | None, n: int, now: float) -> str:
    """A copy of the cached database at ``url`` with the working day's shape."""
    if backend == "sqlite":
        path = CACHE / f"reminders-{DB_TAG}-{n}.db"
        if not path.exists():
            print(f"reminders: copying {url} to {path} (once)…", file=sys.stderr)
            shutil.copyfile(url, str(path) + ".building")
            Path(str(path) + ".building").rename(path)
        target = str(path)
    else:
        assert pg is not None
        schema = f"leadtui_bench_reminders_{DB_TAG}_{n}"
        target = pg_schema_url(pg, schema)
        source = url.rsplit("search_path%3D", 1)[1]
        pg_admin(pg, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        with Store.open(target) as store:
            done = marked(store, n) and _shaped(store)
        if not done:
            print(f"reminders: copying schema {source} to {schema} (once)…", file=sys.stderr)
            pg_admin(pg, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
            with psycopg.connect(pg, autocommit=True) as conn:
                columns = ", ".join(
                    f'"{name}"'
                    for (name,) in conn.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema"
                        " = %s AND table_name = 'lead' AND is_generated = 'NEVER'",
                        (source,),
                    )
                )
                for sql in (
                    f'CREATE TABLE "{schema}".lead (LIKE "{source}".lead INCLUDING ALL)',
                    f'INSERT INTO "{schema}".lead ({columns}) SELECT {columns} FROM "{source}".lead',
                    f'CREATE TABLE "{schema}".meta (LIKE "{source}".meta INCLUDING ALL)',
                    f'INSERT INTO "{schema}".meta SELECT * FROM "{source}".meta',
                    f'CREATE TABLE "{schema}".counter AS SELECT * FROM "{source}".counter',
                ):
                    conn.execute(sql)  # type: ignore[arg-type]
    with Store.open(target) as store:
        store.db.create_tables(list(store.m.all), safe=True)  # what a copied schema lacks
        store.db.execute_sql(FOLLOW_UP_INDEX)  # a cache built before the index had it
        if not _shaped(store):
            mod = "%" if backend == "sqlite" else "%%"
            for sql in shape_sql(now, mod):
                store.db.execute_sql(sql)
            store.m.Meta.insert(key=SHAPED, value=str(now)).execute()
        if backend == "sqlite":  # a user's database has no statistics: plan without them
            store.db.execute_sql("DROP TABLE IF EXISTS sqlite_stat1")
    if backend == "postgres":
        pg_admin(target, "VACUUM ANALYZE lead")
    return target


def _shaped(store: Store) -> bool:
    meta = store.m.Meta
    return bool(meta.select().where(meta.key == SHAPED).exists())


def shaped_now(store: Store) -> float:
    meta = store.m.Meta
    return float(meta.get(meta.key == SHAPED).value)


def timed(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def measure(url: str, runs: int) -> dict[str, Any]:
    store = Store.open(url, create=False)
    try:
        now = shaped_now(store)
        after = store.last_alert_id()
        store.claim_alerts("asha", now, SLA)  # the first look records the day's alerts …
        if store.backend == "postgres":  # … and autovacuum soon analyzes the grown table
            store.db.execute_sql("ANALYZE alert")
        counts = store.reminder_counts("asha", now, SLA, cap=COUNT_CAP)
        out: dict[str, Any] = {
            "counts (due, overdue, late)": timed(
                lambda: store.reminder_counts("asha", now, SLA, cap=COUNT_CAP), runs
            ),
            "claim alerts (watcher step)": timed(
                lambda: store.claim_alerts("asha", now, SLA), runs
            ),
            "alerts since the last look": timed(lambda: store.alerts_after("asha", after), runs),
            "list --due": timed(lambda: store.follow_ups("due", now, 1000), runs),
            "list --overdue (1,000)": timed(lambda: store.follow_ups("overdue", now, 1000), runs),
            "calls to return, first page": timed(
                lambda: store.list_leads(LeadQuery(calls_to_return=True, limit=100)), runs
            ),
            "stats with first contact on time (14 days)": timed(
                lambda: store.stats(now=now, days=14, sla_seconds=SLA), max(1, runs // 2)
            ),
            "_stats without it (14 days)": timed(
                lambda: store.stats(now=now, days=14), max(1, runs // 2)
            ),
        }
        out["_counts"] = counts
        out["_alerts"] = len(store.alerts_after("asha", 0))
        return out
    finally:
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--runs", type=int, default=7, help="runs per query (median)")
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--pg", metavar="URL", help="PostgreSQL (default LEADTUI_BENCH_PG_URL)")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = ap.parse_args()
    pg = None if args.no_pg else pg_base_url(args.pg)
    now = time.time()
    result: dict[str, Any] = {"leads": args.leads, "runs": args.runs}
    figures: list[dict[str, Any]] = []
    for backend in ["sqlite"] + (["postgres"] if pg else []):
        cached = (
            cached_sqlite(args.leads) if backend == "sqlite" else pg_leads_db(pg or "", args.leads)
        )
        url = shaped_copy(cached, backend, pg, args.leads, now)
        got = measure(url, args.runs)
        result[backend] = got
        for name, ms in got.items():
            if name.startswith("_"):
                continue
            budget = BUDGET_STATS_MS if name.startswith("stats") else BUDGET_MS
            figures.append(
                {
                    "name": f"{name}, {args.leads:,} leads ({backend})",
                    "value": ms,
                    "unit": "ms",
                    "budget": f"≤ {budget:g} ms",
                    "ok": ms <= budget,
                }
            )
            if not args.json:
                print(f"reminders: {backend}: {name}: {ms} ms (budget ≤ {budget:g} ms)")
        if not args.json:
            print(
                f"reminders: {backend}: stats without first contact on time: "
                f"{got['_stats without it (14 days)']} ms; header for asha {got['_counts']}, "
                f"alerts {got['_alerts']}"
            )
    result["figures"] = figures
    if args.json:
        print(json.dumps(result))
    return 0 if all(f["ok"] for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
