"""The store's budgets: import, search/filter over 1,000,000 leads, change-feed latency.

    .venv/bin/python bench/store.py              # one line per figure
    .venv/bin/python bench/store.py --json       # a dict, for bench/run_all.py
    .venv/bin/python bench/store.py --only feed  # one part: import, query, feed

- import: the real ``leadtui import`` command (a subprocess, as a user runs it) on a
  10,000-message synthetic mbox into a fresh database; wall time, median of ``--runs``.
  Budget ≤ 15 s.
- scale: the same import of ``--scale-messages`` (100,000) mails, one run, between two
  runs of the 10,000-mail import: the cost per mail against the mean of those two (budget
  ≤ 1.3×: an import costs what it reads, not more per mail as the database fills).
- capture: each capture path (a new enquiry, its duplicate, a website form sent again, a
  reply by phone, by name + product, a reply to no lead, a WhatsApp message continuing a
  lead) against the cached databases of ``--capture-small`` (10,000) and ``--leads``
  leads: median ms per raw item (its commit and its apply, as ``Pipeline.accept`` does
  without the parse), ``--capture-items`` per path, paths interleaved. The figure is the
  big/small ratio per path (budget ≤ 1.3×: a lead costs the same in a big database). What
  the bench adds is deleted afterwards.
- query: the first page (100 leads, as the TUI asks) of realistic filters and searches over
  1,000,000 synthetic leads; median of ``--runs`` after one warm-up. Budget ≤ 300 ms each.
  The databases are built once (``_synthetic.bulk_insert_leads`` from parsed synthetic leads)
  and cached, named by schema version: SQLite as /tmp/leadtui-bench/store-s5-N.db,
  PostgreSQL in the schema leadtui_bench_s5_N of the bench database.
- feed: a lead committed in this process → seen by another process that follows the change
  feed (``waiter()`` + ``changes_since``); p50/p99 over ``--feed-events`` commits.
  Budget ≤ 300 ms p99.

PostgreSQL is measured too when ``--pg URL`` (or LEADTUI_BENCH_PG_URL, or
LEADTUI_TEST_PG_URL) points at a reachable server; the import there runs
``--pg-import-runs`` times (default 1: it is slow and only informative).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from leadtui import synth  # noqa: E402
from leadtui.capture import Pipeline, RawItem  # noqa: E402
from leadtui.store import LeadQuery, Store  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _synthetic import (  # noqa: E402
    BASE_LEADS,
    CACHE,
    CHUNK,
    DB_TAG,
    base_leads,
    bulk_insert_leads,
    mark,
    marked,
    sqlite_leads_db,
    status_mix,
    varied,
)

LEADTUI = str(Path(sys.executable).with_name("leadtui"))
PAGE = 100  # the TUI's first page (leadtui/widgets/table.py)
BUDGET_IMPORT_S = 15.0
BUDGET_QUERY_MS = 300.0
BUDGET_FEED_P99_MS = 300.0
PG_BASE_LEADS = 50_000  # PostgreSQL: bulk-insert these, then copy them server-side


# --------------------------------------------------------------------------- helpers


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def quiet_env(home: Path) -> dict[str, str]:
    """The environment for a ``leadtui`` subprocess: no user config, logs in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADTUI_")}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(home / name.lower())
    return env


def pg_base_url(given: str | None) -> str | None:
    url = given or os.environ.get("LEADTUI_BENCH_PG_URL") or os.environ.get("LEADTUI_TEST_PG_URL")
    if not url:
        return None
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except Exception as exc:
        print(f"store: PostgreSQL at {url} is not reachable ({exc}); skipping it", file=sys.stderr)
        return None
    return url


def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def pg_admin(base: str, sql: str) -> None:
    with psycopg.connect(base, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def fresh_database(backend: str, pg: str | None) -> Iterator[str]:
    """An empty database URL, removed afterwards."""
    if backend == "postgres":
        assert pg is not None
        schema = "bench_" + uuid.uuid4().hex[:10]
        pg_admin(pg, f'CREATE SCHEMA "{schema}"')
        try:
            yield pg_schema_url(pg, schema)
        finally:
            pg_admin(pg, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        directory = Path(tempfile.mkdtemp(prefix="leadtui-bench-", dir="/tmp"))
        try:
            yield str(directory / "leads.db")
        finally:
            shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------- import


def import_mbox(messages: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"import-{messages}.mbox"
    if not path.exists():
        tmp = path.with_suffix(".building")
        tmp.write_bytes(synth.mbox(random.Random(messages), messages))
        tmp.rename(path)
    return path


def bench_import(backend: str, pg: str | None, messages: int, runs: int) -> dict[str, Any]:
    mbox = import_mbox(messages)
    times: list[float] = []
    summary = ""
    for _ in range(runs):
        with fresh_database(backend, pg) as url, tempfile.TemporaryDirectory() as home:
            start = time.perf_counter()
            done = subprocess.run(
                [LEADTUI, "--db", url, "import", str(mbox)],
                capture_output=True,
                text=True,
                env=quiet_env(Path(home)),
                check=False,
            )
            times.append(time.perf_counter() - start)
            if done.returncode not in (0, 1):  # 1: some mails failed (replies to no lead)
                raise RuntimeError(f"leadtui import failed ({done.returncode}): {done.stderr}")
            summary = done.stdout.splitlines()[0] if done.stdout else ""
    median = statistics.median(times)
    return {
        "seconds": round(median, 2),
        "runs_s": [round(t, 2) for t in times],
        "messages_per_s": round(messages / median),
        "summary": summary,
    }


# --------------------------------------------------------------------------- 1M leads


def pg_leads_db(pg: str, n: int) -> str:
    """A PostgreSQL schema with ``n`` synthetic leads, built once and cached.

    ``PG_BASE_LEADS`` go in through ``bulk_insert_leads``; the rest are copies made by the
    server with their own ids, external ids and phones (the search column is generated, so
    the copies are indexed exactly as inserted ones).
    """
    schema = f"leadtui_bench_{DB_TAG}_{n}"
    url = pg_schema_url(pg, schema)
    pg_admin(pg, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    store = Store.open(url)
    try:
        if marked(store, n):
            return url
    finally:
        store.close()
    print(f"store: building PostgreSQL schema {schema} with {n:,} leads (once)…", file=sys.stderr)
    pg_admin(pg, f'DROP SCHEMA "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
    store = Store.open(url)
    try:
        first = min(n, PG_BASE_LEADS)
        base = base_leads(random.Random(n), BASE_LEADS)
        for start in range(0, first, CHUNK):
            bulk_insert_leads(
                store, [varied(base, i) for i in range(start, min(first, start + CHUNK))]
            )
        columns = [
            c.name
            for c in store.db.get_columns("lead")
            if c.name not in {"id", "search", "external_id", "message_id", "phone", "buyer_key"}
        ]
        names = ", ".join(columns)
        copied = first
        while copied < n:
            take = min(first, n - copied)
            phone = f"'+91' || (9000000000 + ((id + {copied}) * 7919) %% 999999999)::text"
            store.db.execute_sql(
                f"INSERT INTO lead ({names}, external_id, message_id, phone, buyer_key) "
                f"SELECT {names}, (3000000000 + id + {copied})::text, "
                f"'bench-' || (id + {copied}) || '@mail.indiamart.com', "
                f"CASE WHEN phone IS NULL THEN NULL ELSE {phone} END, "
                f"CASE WHEN phone IS NULL THEN buyer_key ELSE {phone} END "
                f"FROM lead WHERE id <= {take} ORDER BY id"
            )
            copied += take
        store.db.execute_sql(f"UPDATE lead SET status = {status_mix('%%')}")
        mark(store, n)
    finally:
        store.close()
    pg_admin(url, "VACUUM ANALYZE lead")  # what autovacuum does soon after a big load
    return url


def queries(store: Store, n: int) -> dict[str, LeadQuery]:
    """Realistic first pages: filters, and searches for what a salesperson types."""
    picks = store.get_leads([n // 2, n // 3, n // 4, n // 5, n // 7])
    by_id = {lead.id: lead for lead in picks}
    name = by_id[n // 2].name or "Kumar"
    product_words = [w for w in (by_id[n // 3].product or "bricks").split() if len(w) >= 4]
    product = (product_words or ["bricks"])[0].lower()
    phone = next((lead.phone for lead in picks if lead.phone), "+919845600066")
    national = phone[-10:]
    city = next((lead.city for lead in picks if lead.city), "Pune")
    return {
        "newest": LeadQuery(limit=PAGE),
        "status won": LeadQuery(status="won", limit=PAGE),
        "status open": LeadQuery(status="open", limit=PAGE),
        f"name {name!r}": LeadQuery(search=name, limit=PAGE),
        f"product {product!r}": LeadQuery(search=product, limit=PAGE),
        f"phone fragment {national[:5]!r}": LeadQuery(search=national[:5], limit=PAGE),
        f"whole phone {national!r}": LeadQuery(search=national, limit=PAGE),
        f"city {city!r} + status new": LeadQuery(search=city, status="new", limit=PAGE),
        f"open + {product!r} + name {name.split()[0]!r}": LeadQuery(
            status="open", search=f"{product} {name.split()[0]}", limit=PAGE
        ),
        # The same filter with words of very different match counts: a first page should
        # cost about the same whichever (the "won + word" spread figure).
        **{
            f"{WON_WORD}{word!r}": LeadQuery(status="won", search=word, limit=PAGE)
            for word in (
                product,
                city.lower(),
                name.split()[0].lower(),
                name.split()[-1].lower(),
                national[:5],
            )
        },
    }


WON_WORD = "status won + "


def timed(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench_queries(url: str, n: int, runs: int) -> dict[str, Any]:
    store = Store.open(url, create=False)
    try:
        total = store.count_leads()
        if total != n:
            raise RuntimeError(f"{url} holds {total} leads, not {n}; delete it to rebuild")
        results: dict[str, Any] = {}
        for label, query in queries(store, n).items():
            page_ms = timed(functools.partial(store.list_leads, query), runs)
            count_ms = timed(functools.partial(store.count_leads, query), max(1, runs // 2))
            rows = len(store.list_leads(query))
            results[label] = {
                "first_page_ms": round(page_ms, 1),
                "rows": rows,
                "count_ms": round(count_ms, 1),
                "matches": store.count_leads(query),
                "word_matches": store.count_leads(LeadQuery(search=query.search))
                if query.search
                else None,
            }
        return results
    finally:
        store.close()


# --------------------------------------------------------------------------- capture paths

CAPTURE_PATHS = (
    "new enquiry",
    "duplicate",
    "form sent again",
    "reply by phone",
    "reply by name + product",
    "reply to no lead",
    "whatsapp continuation",
)


def capture_items(path: str, i: int) -> list[tuple[bytes, list[dict[str, Any]]]]:
    """The raw items of one capture of ``path`` (number ``i``): the items that set it up
    (untimed), then the one timed. Every key is the bench's own, so the base leads are
    never touched and the items can be deleted afterwards."""
    tag = f"{uuid.uuid4().hex[:12]}"
    phone = f"+9170{i:08d}"
    lead: dict[str, Any] = {
        "kind": "lead",
        "source": "indiamart",
        "channel": "email",
        "received_at": "2026-03-02T10:41:07+05:30",
        "name": f"Capture Buyer {tag}",
        "company": "Bench Traders",
        "phone": phone,
        "email": f"{tag}@bench.example.com",
        "city": "Pune",
        "product": f"Bench Product {i % 50}",
        "message": "Please quote.",
        "external_id": f"cap-{tag}",
        "message_id": f"{tag}@bench.example.com",
    }
    reply: dict[str, Any] = {
        "kind": "reply",
        "source": "indiamart",
        "channel": "email",
        "name": lead["name"],
        "product": lead["product"],
        "phone": None,
        "email": None,
        "messages": ["What is the best price?"],
        "received_at": "2026-03-02T12:00:00+05:30",
    }
    setup = [(f"setup {tag}".encode(), [lead])]
    if path == "new enquiry":
        return [(f"new {tag}".encode(), [lead])]
    if path == "duplicate":
        return [*setup, (f"dup {tag}".encode(), [dict(lead)])]
    if path == "form sent again":
        form = {**lead, "source": "website", "channel": "api", "external_id": None}
        form["message_id"] = None
        again = {**form, "message": "Also need 500 more by Friday."}
        return [(f"form {tag}".encode(), [form]), (f"again {tag}".encode(), [again])]
    if path == "reply by phone":
        return [*setup, (f"reply {tag}".encode(), [{**reply, "phone": phone}])]
    if path == "reply by name + product":
        return [*setup, (f"byname {tag}".encode(), [reply])]
    if path == "reply to no lead":  # every lookup runs and finds nothing: the costliest
        unknown = {**reply, "phone": f"+9160{i:08d}", "email": f"no-{tag}@bench.example.com"}
        return [(f"noone {tag}".encode(), [{**unknown, "name": f"Nobody {tag}"}])]
    if path == "whatsapp continuation":
        chat = {**lead, "source": "whatsapp", "channel": "api", "external_id": None}
        chat.update(message_id=None, email=None, product=None, message="Is it in stock?")
        return [*setup, (f"chat {tag}".encode(), [chat])]
    raise ValueError(path)


def capture_once(store: Store, path: str, i: int) -> float:
    """Seconds to capture the last item of ``capture_items`` (raw item commit + apply)."""
    items = capture_items(path, i)
    for body, results in items[:-1]:
        raw_id, _ = store.add_raw(body, source="bench", kind="email")
        store.apply(raw_id, results)
    body, results = items[-1]
    start = time.perf_counter()
    raw_id, _ = store.add_raw(body, source="bench", kind="email")
    store.apply(raw_id, results)
    return time.perf_counter() - start


def undo_captures(store: Store, base_max_id: int) -> None:
    """Delete what the capture bench added, so the cached database holds its leads again."""
    with store.db.atomic():
        for table in ("lead_message", "lead_source", "event", "raw_item"):
            store.db.execute_sql(f"DELETE FROM {table}")  # the base leads have none
        store.db.execute_sql(f"DELETE FROM lead WHERE id > {base_max_id}")
        if store.backend == "sqlite":
            store.db.execute_sql(f"DELETE FROM lead_fts WHERE rowid > {base_max_id}")


def bench_capture(url: str, n: int, per_path: int) -> dict[str, Any]:
    """Median ms per capture of each path into the cached ``n``-lead database, paths
    interleaved so the machine's load falls on all of them alike."""
    store = Store.open(url, create=False)
    try:
        base_max_id = int(store.db.execute_sql("SELECT max(id) FROM lead").fetchone()[0])
        if store.count_leads() != n:
            undo_captures(store, base_max_id)  # a run that was killed half-way
        times: dict[str, list[float]] = {p: [] for p in CAPTURE_PATHS}
        try:
            for path in CAPTURE_PATHS:  # warm-up: the first reads of a cold file
                for i in range(5):
                    capture_once(store, path, 900_000 + i)
            for i in range(per_path):
                for path in CAPTURE_PATHS:
                    times[path].append(capture_once(store, path, i))
        finally:
            undo_captures(store, base_max_id)
        return {
            p: {
                "median_ms": round(statistics.median(t) * 1000, 2),
                "p90_ms": round(percentile([x * 1000 for x in t], 90), 2),
            }
            for p, t in times.items()
        }
    finally:
        store.close()


# --------------------------------------------------------------------------- change feed

VIEWER = """
import json, sys, time
from leadtui.store import Store

url, expected = sys.argv[1], int(sys.argv[2])
store = Store.open(url)
waiter = store.waiter()
cursor = store.cursor()
waiter.wait(0.01)  # PostgreSQL: connect and LISTEN before the first commit
print("ready", flush=True)
seen = {}
deadline = time.monotonic() + 120
while len(seen) < expected and time.monotonic() < deadline:
    waiter.wait(1.0)
    changes = store.changes_since(cursor)
    now = time.monotonic()
    for lead in changes.leads:
        seen.setdefault(lead.id, now)
    cursor = changes.cursor
print(json.dumps(seen), flush=True)
"""


def bench_feed(url: str, events: int) -> dict[str, Any]:
    """Commit ``events`` leads here; another process records when its feed shows each one."""
    Store.open(url).close()
    viewer = subprocess.Popen(
        [sys.executable, "-c", VIEWER, url, str(events)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert viewer.stdout is not None
    if viewer.stdout.readline().strip() != "ready":
        raise RuntimeError("the viewer process did not start")
    rng = random.Random(events)
    mails = [synth.email(random.Random(i), "enquiry") for i in range(events)]
    committed: dict[int, float] = {}
    store = Store.open(url)
    try:
        pipeline = Pipeline(store)
        for body in mails:
            time.sleep(rng.uniform(0.005, 0.03))  # commits arrive one by one, not in a burst
            outcome = pipeline.accept(RawItem(body, source="bench", kind="email"))
            done = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
            for lead_id in outcome.new_lead_ids:
                committed[lead_id] = done
    finally:
        store.close()
    out, _ = viewer.communicate(timeout=150)
    seen = {int(k): float(v) for k, v in json.loads(out.splitlines()[-1]).items()}
    missing = set(committed) - set(seen)
    latencies = [max(0.0, seen[i] - t) * 1000 for i, t in committed.items() if i in seen]
    return {
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "events": len(latencies),
        "missing": len(missing),
    }


# --------------------------------------------------------------------------- main


def figure(name: str, value: float, unit: str, budget: str, ok: bool | None) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "budget": budget, "ok": ok}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument(
        "--only",
        default="import,scale,capture,query,feed",
        help="parts to run (default all: import,scale,capture,query,feed)",
    )
    ap.add_argument("--runs", type=int, default=3, help="runs per measure (default 3)")
    ap.add_argument("--pg-import-runs", type=int, default=1, help="PostgreSQL import runs")
    ap.add_argument("--messages", type=int, default=10_000, help="mbox size for import")
    ap.add_argument("--leads", type=int, default=1_000_000, help="leads for the queries")
    ap.add_argument(
        "--scale-messages", type=int, default=100_000, help="the big import (scale part)"
    )
    ap.add_argument(
        "--capture-small", type=int, default=10_000, help="leads in the small capture database"
    )
    ap.add_argument("--capture-items", type=int, default=100, help="captures per path and size")
    ap.add_argument("--feed-events", type=int, default=300, help="commits for the feed")
    ap.add_argument("--pg", metavar="URL", help="PostgreSQL (default LEADTUI_BENCH_PG_URL)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    pg = pg_base_url(args.pg)
    backends = ["sqlite"] + (["postgres"] if pg else [])
    result: dict[str, Any] = {"runs": args.runs, "python": sys.version.split()[0]}
    figures: list[dict[str, Any]] = []

    if "import" in parts:
        for backend in backends:
            runs = args.runs if backend == "sqlite" else args.pg_import_runs
            got = bench_import(backend, pg, args.messages, runs)
            result[f"import_{backend}"] = got
            ok = got["seconds"] <= BUDGET_IMPORT_S
            figures.append(
                figure(
                    f"import {args.messages:,}-message mbox ({backend}, median of {runs})",
                    got["seconds"],
                    "s",
                    f"≤ {BUDGET_IMPORT_S:g} s",
                    ok if backend == "sqlite" else None,
                )
            )
            if not args.json:
                print(
                    f"store: import of {args.messages:,} mails on {backend}: {got['seconds']} s "
                    f"({got['messages_per_s']}/s; runs {got['runs_s']}; "
                    f"budget ≤ {BUDGET_IMPORT_S:g} s: {'within' if ok else 'OVER'}) — {got['summary']}"
                )

    if "scale" in parts:
        for backend in backends:
            # The small import just before and just after the big one, so both sizes see the
            # same load on a shared machine; their mean is the reference.
            before = bench_import(backend, pg, args.messages, 1)
            big = bench_import(backend, pg, args.scale_messages, 1)
            after = bench_import(backend, pg, args.messages, 1)
            small = {**before, "seconds": round((before["seconds"] + after["seconds"]) / 2, 2)}
            small["runs_s"] = [before["seconds"], after["seconds"]]
            per_small = small["seconds"] / args.messages
            per_big = big["seconds"] / args.scale_messages
            ratio = round(per_big / per_small, 2)
            result[f"import_scale_{backend}"] = {"small": small, "big": big, "ratio": ratio}
            figures.append(
                figure(
                    f"import cost per mail, {args.scale_messages:,} / {args.messages:,} mails"
                    f" ({backend})",
                    ratio,
                    "×",
                    "≤ 1.3×",
                    ratio <= 1.3,
                )
            )
            if not args.json:
                print(
                    f"store: import on {backend}: {args.messages:,} mails {small['seconds']} s "
                    f"({per_small * 1000:.3f} ms/mail), {args.scale_messages:,} mails "
                    f"{big['seconds']} s ({per_big * 1000:.3f} ms/mail): {ratio}× per mail "
                    f"(budget ≤ 1.3×) — {big['summary']}"
                )

    if "capture" in parts:
        for backend in backends:
            got = {}
            for size in (args.capture_small, args.leads):
                url = sqlite_leads_db(size) if backend == "sqlite" else pg_leads_db(pg or "", size)
                got[size] = bench_capture(url, size, args.capture_items)
            ratios = {
                path: round(
                    got[args.leads][path]["median_ms"] / got[args.capture_small][path]["median_ms"],
                    2,
                )
                for path in CAPTURE_PATHS
            }
            result[f"capture_{backend}"] = {"sizes": got, "ratios": ratios}
            worst = max(ratios, key=lambda p: ratios[p])
            figures.append(
                figure(
                    f"capture cost, {args.leads:,} / {args.capture_small:,} leads, worst path"
                    f" ({worst}, {backend})",
                    ratios[worst],
                    "×",
                    "≤ 1.3×",
                    ratios[worst] <= 1.3,
                )
            )
            if not args.json:
                for path in CAPTURE_PATHS:
                    small, big = got[args.capture_small][path], got[args.leads][path]
                    print(
                        f"store: capture on {backend}, {path}: {args.capture_small:,} leads "
                        f"{small['median_ms']} ms (p90 {small['p90_ms']}), {args.leads:,} leads "
                        f"{big['median_ms']} ms (p90 {big['p90_ms']}): {ratios[path]}×"
                    )

    if "query" in parts:
        for backend in backends:
            url = (
                sqlite_leads_db(args.leads)
                if backend == "sqlite"
                else pg_leads_db(pg or "", args.leads)
            )
            got = bench_queries(url, args.leads, args.runs * 2 + 1)
            result[f"query_{backend}"] = got
            worst = max(v["first_page_ms"] for v in got.values())
            figures.append(
                figure(
                    f"slowest first page of {len(got)} filters/searches over {args.leads:,} leads ({backend})",
                    worst,
                    "ms",
                    f"≤ {BUDGET_QUERY_MS:g} ms",
                    worst <= BUDGET_QUERY_MS,
                )
            )
            # Full first pages only: a word with fewer matches than a page is cheaper anyway.
            full = {k: v for k, v in got.items() if k.startswith(WON_WORD) and v["rows"] == PAGE}
            won = {k: v["first_page_ms"] for k, v in full.items()}
            counts = [v["word_matches"] for v in full.values()]
            spread = round(max(won.values()) / max(min(won.values()), 0.1), 2)
            result[f"query_{backend}_won_spread"] = spread
            figures.append(
                figure(
                    f"status won + word: slowest / fastest full first page over {len(won)} words"
                    f" found in {min(counts):,}–{max(counts):,} leads, {args.leads:,} leads"
                    f" ({backend})",
                    spread,
                    "×",
                    "≤ 2×",
                    spread <= 2,
                )
            )
            if not args.json:
                for label, v in got.items():
                    verdict = "within" if v["first_page_ms"] <= BUDGET_QUERY_MS else "OVER"
                    print(
                        f"store: {backend} {args.leads:,} leads, {label}: first page "
                        f"{v['first_page_ms']} ms ({v['rows']} rows of {v['matches']:,}; budget ≤ "
                        f"{BUDGET_QUERY_MS:g} ms: {verdict}); count {v['count_ms']} ms"
                    )
                print(
                    f"store: {backend} {args.leads:,} leads, status won + word, full first "
                    f"pages of words found in {min(counts):,}–{max(counts):,} leads: slowest / "
                    f"fastest {spread}× (budget ≤ 2×)"
                )

    if "feed" in parts:
        for backend in backends:
            with fresh_database(backend, pg) as url:
                got = bench_feed(url, args.feed_events)
            result[f"feed_{backend}"] = got
            ok = got["p99_ms"] <= BUDGET_FEED_P99_MS and got["missing"] == 0
            figures.append(
                figure(
                    f"change feed, commit → seen in another process, p99 ({backend})",
                    got["p99_ms"],
                    "ms",
                    f"≤ {BUDGET_FEED_P99_MS:g} ms p99",
                    ok,
                )
            )
            if not args.json:
                print(
                    f"store: change feed on {backend}, commit → seen by another process: "
                    f"p50 {got['p50_ms']} ms, p99 {got['p99_ms']} ms, max {got['max_ms']} ms "
                    f"over {got['events']} commits, {got['missing']} missed (budget p99 ≤ "
                    f"{BUDGET_FEED_P99_MS:g} ms: {'within' if ok else 'OVER'})"
                )

    result["figures"] = figures
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
