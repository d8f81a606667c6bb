"""HTTP ingest throughput and latency on SQLite, against a FastAPI + SQLAlchemy peer in the same run.

    .venv/bin/python bench/ingest.py            # one line per figure
    .venv/bin/python bench/ingest.py --json     # a dict, for bench/run_all.py

Needs the ``bench`` extra (``make bench`` installs it: ``pip install -e '.[bench]'``) for the
peer. Each server runs in its own process (as ``leadtui serve`` would); the load comes from
this process over loopback with a small keep-alive HTTP/1.1 client (an asyncio Protocol that
parses only the status line and Content-Length, so it costs less CPU than the servers).

- leads: ``POST /api/leads`` on a fresh SQLite database, ``--connections`` clients posting
  distinct website leads as fast as they are answered; each 201 means the raw body and the
  lead were committed.
- peer: bench/_peer_fastapi.py, a FastAPI + SQLAlchemy app as its documentation writes one
  (pydantic model, a Session per request, one row committed per lead, SQLite in WAL with
  ``synchronous=NORMAL``), under uvicorn with one worker and its defaults (with the bench
  extra's plain installs: the asyncio loop and the h11 parser; the run records which). The
  same client, connections, body and seconds as leads.
  Budget (DESIGN.md): leads ≥ 1.5× the peer's leads/s. The two are measured interleaved: both
  servers up, ``--rounds`` rounds of ``--seconds / --rounds`` each, leadtui first in even
  rounds and the peer first in odd ones, so load from other work on the machine falls on both
  alike; each figure is its 201s over its own total seconds.
- push: IndiaMART push payloads, answered once the raw body is committed; the leads are
  applied behind the answers, and the run waits until the last one is in (the rate counts
  that wait).
- latency: ``POST /api/leads`` paced at ``--rate`` requests/s (500) for ``--latency-seconds``;
  latency from each request's scheduled time to its answer, so a stall is not hidden by the
  requests it delays. Budget: p99 ≤ 20 ms. The peer's p99 at the same rate is recorded too,
  without a budget.
- nothing lost: every 201/200 answered is a lead in leadtui's database afterwards, and every
  201 of the peer a row in its database.

The earlier budget, 40% of a bare aiohttp handler that stores nothing, is retired (DESIGN.md):
that handler is no longer measured by default. ``--ceilings`` still measures, in one run,
where throughput goes against it (informational). Each server answers ``POST /api/leads``
201 only after its commit, with the same client:

- bare: an aiohttp handler that reads the body and answers 201 with JSON, storing nothing;
- raw: the JSON is parsed and the raw body committed to leadtui's raw_item table by a
  writer thread in batches, with no lead made: what durability before the answer costs;
- split: the whole capture pipeline (``Pipeline.accept_many``) in a second process with a
  core to itself, the HTTP side in this one: the most a process split could give;
- leads: leadtui's ingest as shipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from importlib.util import find_spec
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUDGET_RATIO = 1.5  # leadtui leads/s over the FastAPI + SQLAlchemy peer's
BUDGET_P99_MS = 20.0
API_KEY = "ltk_bench_0123456789"


# --------------------------------------------------------------------------- servers


def serve(kind: str, db: str) -> None:
    """Run one server in this process; print its URL, stop on SIGTERM or stdin EOF."""
    import logging  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING)
    if kind == "peer":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _peer_fastapi import serve as serve_peer  # noqa: PLC0415

        serve_peer(db, API_KEY)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    if kind == "bare":
        asyncio.run(_serve_bare(stop))
        return
    if kind in {"raw", "split"}:
        asyncio.run(_serve_ceiling(kind, db, stop))
        return
    from leadtui import config  # noqa: PLC0415
    from leadtui.capture import Pipeline  # noqa: PLC0415
    from leadtui.ingest import IngestSource, ingest_factory  # noqa: PLC0415
    from leadtui.store import Store  # noqa: PLC0415

    settings = config.load(
        environ={
            "LEADTUI_HTTP_LISTEN": "127.0.0.1:0",
            "LEADTUI_API_KEYS": f"bench:{API_KEY}",
            "LEADTUI_PUSH_TOKEN": "bench-push-token",
            "LEADTUI_HTTP_RATE_PER_MINUTE": "0",
        }
    )
    store = Store.open(db)
    source = ingest_factory(settings)(store, Pipeline(store), lambda _h: None)
    assert isinstance(source, IngestSource)
    thread = threading.Thread(target=source.run, args=(stop,))
    thread.start()
    while source.url is None and thread.is_alive():
        time.sleep(0.01)
    print(source.url, flush=True)
    thread.join()


async def _serve_bare(stop: threading.Event) -> None:
    from aiohttp import web  # noqa: PLC0415

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": 1, "status": "created", "item": 1}, status=201)

    await _run_handler(handler, stop)


async def _run_handler(handler: Any, stop: threading.Event) -> None:
    """Serve ``POST /api/leads`` on a free loopback port; print the URL; run until ``stop``."""
    from aiohttp import web  # noqa: PLC0415

    app = web.Application()
    app.router.add_post("/api/leads", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"http://{host}:{port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, stop.wait)
    await runner.cleanup()


def _split_writer(conn: Any, db: str) -> None:
    """The ``split`` ceiling's second process: the capture pipeline, fed through a pipe."""
    from leadtui.capture import Pipeline, RawItem  # noqa: PLC0415
    from leadtui.store import Store  # noqa: PLC0415

    pipeline = Pipeline(Store.open(db))
    while True:
        try:
            bodies = conn.recv()
        except EOFError:
            return
        items = [RawItem(b, source="http:bench", kind="json", channel="api") for b in bodies]
        conn.send([o.lead_ids[0] if o.lead_ids else 0 for o in pipeline.accept_many(items)])


async def _serve_ceiling(kind: str, db: str, stop: threading.Event) -> None:
    """A ``POST /api/leads`` that answers after its batch commits: see ``--ceilings``."""
    import multiprocessing  # noqa: PLC0415
    import queue  # noqa: PLC0415

    from aiohttp import web  # noqa: PLC0415

    from leadtui.capture import RawItem  # noqa: PLC0415
    from leadtui.store import Store  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    jobs: queue.SimpleQueue[tuple[bytes, asyncio.Future[int]]] = queue.SimpleQueue()
    if kind == "split":
        ctx = multiprocessing.get_context("spawn")
        pipe, child_end = ctx.Pipe()
        ctx.Process(target=_split_writer, args=(child_end, db), daemon=True).start()

        def commit(bodies: list[bytes]) -> list[int]:
            pipe.send(bodies)
            return list(pipe.recv())
    else:
        store = Store.open(db)

        def commit(bodies: list[bytes]) -> list[int]:
            items = [RawItem(b, source="http:bench", kind="json", channel="api") for b in bodies]
            return [raw_id for raw_id, _new in store.add_raw_many(items)]

    def writer() -> None:
        while True:
            batch = [jobs.get()]
            while len(batch) < 64 and not jobs.empty():
                batch.append(jobs.get_nowait())
            ids = commit([body for body, _f in batch])
            loop.call_soon_threadsafe(
                lambda b=batch, i=ids: [f.set_result(n) for (_body, f), n in zip(b, i, strict=True)]
            )

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        json.loads(body)
        future: asyncio.Future[int] = loop.create_future()
        jobs.put((body, future))
        return web.json_response({"id": await future, "status": "created"}, status=201)

    threading.Thread(target=writer, daemon=True).start()
    await _run_handler(handler, stop)


class Server:
    def __init__(self, kind: str, db: str = "") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--db", db],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise SystemExit(f"the {kind} server did not start")
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        # The peer says what it runs with (event loop, HTTP parser, versions) on its next line.
        self.info: dict[str, str] = (
            json.loads(self.proc.stdout.readline()) if kind == "peer" else {}
        )

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --------------------------------------------------------------------------- client


def lead_body(n: int) -> bytes:
    return (
        f'{{"name": "Buyer {n}", "phone": "+919{n:09d}", "email": "buyer{n}@example.in", '
        f'"product": "Fly Ash Bricks", "city": "Jaipur", "source": "website", '
        f'"message": "Need 5000 pieces, delivery to Sitapura. Enquiry {n}."}}'
    ).encode()


def push_body(n: int) -> bytes:
    row = {
        "UNIQUE_QUERY_ID": str(3_000_000_000 + n),
        "QUERY_TYPE": "W",
        "QUERY_TIME": "2026-03-02 11:17:14",
        "SENDER_NAME": f"Buyer {n}",
        "SENDER_MOBILE": f"+91-9{n:09d}",
        "SENDER_EMAIL": f"buyer{n}@example.in",
        "SUBJECT": "Requirement for Red Clay Bricks",
        "SENDER_CITY": "Pune",
        "SENDER_STATE": "Maharashtra",
        "SENDER_COUNTRY_ISO": "IN",
        "QUERY_PRODUCT_NAME": "Red Clay Bricks",
        "QUERY_MESSAGE": "I want to buy Red Clay Bricks.<br> Quantity : 5000<br> Quantity Unit : Piece",
        "QUERY_MCAT_NAME": "Clay Bricks",
    }
    return json.dumps({"CODE": 200, "STATUS": "SUCCESS", "RESPONSE": row}).encode()


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"x-api-key: {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends a request when the previous answer is complete."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(int(head[9:12]))

    def send(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(server: Server) -> _Connection:
    loop = asyncio.get_running_loop()
    _transport, conn = await loop.create_connection(_Connection, server.host, server.port)
    return conn


class Counter:
    def __init__(self, start: int) -> None:
        self.value = start

    def next(self) -> int:
        self.value += 1
        return self.value


async def closed_loop(
    server: Server, path: str, body: Any, seconds: float, connections: int, counter: Counter
) -> dict[int, int]:
    """As many requests as the server answers in ``seconds``: how many got each status."""
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        conn = await connect(server)
        try:
            while time.perf_counter() < deadline:
                data = request_bytes(server.host, server.port, path, body(counter.next()))
                status = await conn.send(data)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return statuses


async def paced(
    server: Server, rate: float, seconds: float, connections: int, counter: Counter
) -> tuple[list[float], dict[int, int]]:
    """Requests at ``rate``/s; latency from each one's scheduled time to its answer (ms)."""
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await connect(server))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    total = int(rate * seconds)

    async def one(i: int) -> None:
        scheduled = start + i / rate
        conn = await pool.get()
        try:
            data = request_bytes(server.host, server.port, "/api/leads", lead_body(counter.next()))
            status = await conn.send(data)
        finally:
            pool.put_nowait(conn)
        latencies.append((time.perf_counter() - scheduled) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait().close()
    return latencies, statuses


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --------------------------------------------------------------------------- the run


def count_leads(db: str) -> tuple[int, int]:
    from leadtui.store import Store  # noqa: PLC0415

    with Store.open(db) as store:
        return store.count_leads(), len(store.pending_raw_ids())


def count_peer_rows(db: str) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM leads").fetchone()[0])


def need_peer_packages() -> None:
    missing = [m for m in ("fastapi", "uvicorn", "sqlalchemy") if find_spec(m) is None]
    if missing:
        raise SystemExit(
            f"bench/ingest.py needs {', '.join(missing)} for its peer: "
            "pip install -e '.[bench]' (make bench does)"
        )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    need_peer_packages()
    tmp = Path(tempfile.mkdtemp(prefix="leadtui-bench-ingest-"))
    result: dict[str, Any] = {}

    db = str(tmp / "leads.db")
    peer_db = str(tmp / "peer.db")
    ingest = Server("ingest", db)
    peer = Server("peer", peer_db)
    result["peer"] = peer.info
    counter, peer_counter = Counter(0), Counter(0)
    try:
        # Warm-up, then the interleaved throughput rounds: leadtui first in even rounds, the
        # peer first in odd ones; each runs --seconds / --rounds a round, same client, same
        # connections, same body.
        warm = asyncio.run(
            closed_loop(ingest, "/api/leads", lead_body, 1.0, args.connections, counter)
        )
        peer_warm = asyncio.run(
            closed_loop(peer, "/api/leads", lead_body, 1.0, args.connections, peer_counter)
        )
        accepted = warm.get(201, 0)
        peer_accepted = peer_warm.get(201, 0)
        slice_s = args.seconds / args.rounds
        totals: dict[str, dict[int, int]] = {"ingest": {}, "peer": {}}
        rounds: list[dict[str, int]] = []
        for i in range(args.rounds):
            order = [("ingest", ingest, counter), ("peer", peer, peer_counter)]
            if i % 2:
                order.reverse()
            this: dict[str, int] = {}
            for name, server, numbers in order:
                statuses = asyncio.run(
                    closed_loop(server, "/api/leads", lead_body, slice_s, args.connections, numbers)
                )
                for status, n in statuses.items():
                    totals[name][status] = totals[name].get(status, 0) + n
                this[name] = round(statuses.get(201, 0) / slice_s)
            rounds.append(this)
        answered = totals["ingest"].get(201, 0)
        peer_answered = totals["peer"].get(201, 0)
        accepted += answered
        peer_accepted += peer_answered
        result["ingest_leads_per_s"] = round(answered / args.seconds)
        result["peer_leads_per_s"] = round(peer_answered / args.seconds)
        result["ingest_other_statuses"] = {
            str(k): v for k, v in totals["ingest"].items() if k != 201
        }
        result["peer_other_statuses"] = {str(k): v for k, v in totals["peer"].items() if k != 201}
        result["rounds"] = rounds
        result["round_ratios"] = [round(r["ingest"] / max(1, r["peer"]), 2) for r in rounds]

        latencies, paced_statuses = asyncio.run(
            paced(ingest, args.rate, args.latency_seconds, args.connections, counter)
        )
        result["ingest_latency_rate_per_s"] = args.rate
        result["ingest_latency_p50_ms"] = round(percentile(latencies, 0.50), 2)
        result["ingest_latency_p99_ms"] = round(percentile(latencies, 0.99), 2)
        accepted += paced_statuses.get(201, 0)
        # The same at half the sustained rate: the endpoint's own latency, without a queue.
        easy = max(1.0, result["ingest_leads_per_s"] / 2)
        latencies, paced_statuses = asyncio.run(
            paced(ingest, easy, args.latency_seconds, args.connections, counter)
        )
        result["ingest_half_rate_per_s"] = round(easy)
        result["ingest_half_rate_p99_ms"] = round(percentile(latencies, 0.99), 2)
        accepted += paced_statuses.get(201, 0)
        # The peer at the same paced rate, for comparison (no budget).
        latencies, paced_statuses = asyncio.run(
            paced(peer, args.rate, args.latency_seconds, args.connections, peer_counter)
        )
        result["peer_latency_p50_ms"] = round(percentile(latencies, 0.50), 2)
        result["peer_latency_p99_ms"] = round(percentile(latencies, 0.99), 2)
        peer_accepted += paced_statuses.get(201, 0)
    finally:
        ingest.close()
        peer.close()
    leads, pending = count_leads(db)
    result["accepted"] = accepted
    result["leads_in_database"] = leads
    result["peer_accepted"] = peer_accepted
    result["peer_rows_in_database"] = count_peer_rows(peer_db)
    result["nothing_lost"] = leads == accepted and pending == 0
    result["peer_nothing_lost"] = result["peer_rows_in_database"] == peer_accepted

    db = str(tmp / "push.db")
    push = Server("ingest", db)
    try:
        path = "/api/indiamart/push/bench-push-token"
        start = time.perf_counter()
        statuses = asyncio.run(
            closed_loop(push, path, push_body, args.seconds, args.connections, Counter(0))
        )
        answered_s = time.perf_counter() - start
        pushed = statuses.get(200, 0)
        deadline = time.monotonic() + 300
        while count_leads(db)[0] < pushed and time.monotonic() < deadline:
            time.sleep(0.05)
        drained_s = time.perf_counter() - start
        result["push_all_applied"] = count_leads(db) == (pushed, 0)
        result["push_answers_per_s"] = round(pushed / answered_s)
        result["push_leads_per_s"] = round(pushed / drained_s)
    finally:
        push.close()

    ratio = result["ingest_leads_per_s"] / max(1, result["peer_leads_per_s"])
    result["ingest_ratio_to_peer"] = round(ratio, 2)
    result["ingest_within_budget"] = ratio >= BUDGET_RATIO
    result["ingest_latency_within_budget"] = result["ingest_latency_p99_ms"] <= BUDGET_P99_MS
    result["figures"] = figures(result)
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def ceilings(args: argparse.Namespace) -> dict[str, Any]:
    """Requests/s of each ``--ceilings`` server, and its share of bare."""
    tmp = Path(tempfile.mkdtemp(prefix="leadtui-bench-ceilings-"))
    result: dict[str, Any] = {}
    try:
        for kind in ("bare", "raw", "split", "ingest"):
            server = Server(kind, str(tmp / f"{kind}.db"))
            try:
                counter = Counter(0)
                asyncio.run(
                    closed_loop(server, "/api/leads", lead_body, 1.0, args.connections, counter)
                )
                statuses = asyncio.run(
                    closed_loop(
                        server, "/api/leads", lead_body, args.seconds, args.connections, counter
                    )
                )
            finally:
                server.close()
            result[f"{kind}_requests_per_s"] = round(statuses.get(201, 0) / args.seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bare = max(1, result["bare_requests_per_s"])
    for kind in ("raw", "split", "ingest"):
        result[f"{kind}_share_of_bare"] = round(result[f"{kind}_requests_per_s"] / bare, 3)
    return result


def figures(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures in bench/run_all.py's shape, one per printed line."""
    rate = r["ingest_latency_rate_per_s"]
    peer = r["peer"]
    peer_name = (
        f"FastAPI {peer.get('fastapi')} + SQLAlchemy {peer.get('sqlalchemy')} peer "
        f"(uvicorn {peer.get('uvicorn')}, 1 worker, {peer.get('loop', '?').rsplit('.', 1)[-1]}, "
        f"{peer.get('http', '?').rsplit('.', 1)[-1]}), SQLite WAL, row committed before the answer"
    )
    ok_peer = r["nothing_lost"] and r["peer_nothing_lost"]
    return [
        {"name": peer_name, "value": r["peer_leads_per_s"], "unit": "leads/s",
         "budget": None, "ok": None},
        {"name": "POST /api/leads, SQLite, raw body and lead committed before the answer",
         "value": r["ingest_leads_per_s"], "unit": "leads/s",
         "budget": f"≥ {BUDGET_RATIO}× peer = {BUDGET_RATIO * r['peer_leads_per_s']:,.0f}",
         "ok": r["ingest_within_budget"]},
        {"name": "POST /api/leads over the peer (same client, same run, interleaved)",
         "value": r["ingest_ratio_to_peer"], "unit": "×", "budget": f"≥ {BUDGET_RATIO}×",
         "ok": r["ingest_within_budget"]},
        {"name": f"POST /api/leads p99 at {rate:.0f} requests/s", "value": r["ingest_latency_p99_ms"],
         "unit": "ms", "budget": f"≤ {BUDGET_P99_MS:.0f} ms", "ok": r["ingest_latency_within_budget"]},
        {"name": f"POST /api/leads p50 at {rate:.0f} requests/s", "value": r["ingest_latency_p50_ms"],
         "unit": "ms", "budget": None, "ok": None},
        {"name": f"POST /api/leads p99 at {r['ingest_half_rate_per_s']} requests/s (half the sustained rate)",
         "value": r["ingest_half_rate_p99_ms"], "unit": "ms", "budget": None, "ok": None},
        {"name": f"peer p99 at {rate:.0f} requests/s", "value": r["peer_latency_p99_ms"],
         "unit": "ms", "budget": None, "ok": None},
        {"name": "IndiaMART push, answered once the body is committed",
         "value": r["push_answers_per_s"], "unit": "answers/s", "budget": None, "ok": None},
        {"name": "IndiaMART push, leads applied behind the answers",
         "value": r["push_leads_per_s"], "unit": "leads/s", "budget": None, "ok": None},
        {"name": "answered 2xx and in the database afterwards (leadtui; peer)",
         "value": f"{r['leads_in_database']:,} of {r['accepted']:,}; "
                  f"{r['peer_rows_in_database']:,} of {r['peer_accepted']:,}",
         "unit": "", "budget": "all", "ok": ok_peer},
        {"name": "IndiaMART push, every 200 a lead afterwards", "value": r["push_all_applied"],
         "unit": "", "budget": "all", "ok": r["push_all_applied"]},
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run (default 10)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds the seconds are split in (5)"
    )
    parser.add_argument("--connections", type=int, default=32, help="client connections (32)")
    parser.add_argument("--rate", type=float, default=500.0, help="paced rate (500 req/s)")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="paced run (10 s)")
    parser.add_argument("--ceilings", action="store_true", help="where the budget is lost")
    parser.add_argument(
        "--serve", choices=["bare", "ingest", "peer", "raw", "split"], help=argparse.SUPPRESS
    )
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.db)
        return 0
    if args.ceilings:
        c = ceilings(args)
        if args.json:
            print(json.dumps(c))
            return 0
        for kind in ("bare", "raw", "split", "ingest"):
            share = c.get(f"{kind}_share_of_bare", 1.0)
            print(f"{kind}: {c[f'{kind}_requests_per_s']:,} requests/s ({share:.1%} of bare)")
        return 0
    r = measure(args)
    if args.json:
        print(json.dumps(r))
        return 0
    for f in r["figures"]:
        if isinstance(f["value"], bool):
            value = "yes" if f["value"] else "no"
        elif isinstance(f["value"], int | float):
            value = f"{f['value']:,}"
        else:
            value = str(f["value"])
        verdict = "" if f["ok"] is None else ("  ok" if f["ok"] else "  MISSED")
        budget = f"  (budget {f['budget']})" if f["budget"] else ""
        print(f"{f['name']}: {value} {f['unit']}".rstrip() + budget + verdict)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
