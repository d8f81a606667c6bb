"""Committed lead → notification received, with no TUI running (the outbox's budget).

    .venv/bin/python bench/notify_latency.py              # one line per figure
    .venv/bin/python bench/notify_latency.py --json       # a dict, for bench/run_all.py

A real ``leadtui serve`` (its own process, no TUI) holds the capture lease
and runs the outbox sender with one ``[[webhook]]`` target: an aiohttp receiver on loopback in
this process that verifies each ``X-Leadtui-Signature``. This process commits synthetic
IndiaMART leads through the capture pipeline into the same SQLite database, one at a time,
50–250 ms apart, with the outbox routes set as the capture service sets them (so each lead's
outbox row commits with it). For each lead the figure is

    (the webhook request arrived at the receiver) − (the lead's commit returned)

both on this process's monotonic clock: the serve process noticing the row (its sender is woken by
the commit), signing, POSTing and the receiver reading the body. Budget: p99 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from leadtui import config, parser, synth  # noqa: E402
from leadtui.capture import Pipeline, RawItem  # noqa: E402
from leadtui.outbox import routes, verify  # noqa: E402
from leadtui.store import Store  # noqa: E402

BUDGET_P99_MS = 1000.0
SECRET = "bench-webhook-secret-0123456789"
LEADTUI = str(Path(sys.executable).with_name("leadtui"))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class Receiver:
    """The webhook receiver: notes when each lead's lead.created arrived."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.bad = 0
        self.cond = threading.Condition()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.monotonic()
        if not verify(SECRET, body, request.headers.get("X-Leadtui-Signature", "")):
            self.bad += 1
            return web.json_response({"error": "bad signature"}, status=400)
        event = json.loads(body)
        with self.cond:
            self.arrived.setdefault(int(event["lead"]["id"]), now)
            self.cond.notify_all()
        return web.json_response({"received": event["id"]})

    def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            runner = web.AppRunner(app, handle_signals=False, access_log=None)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock).start())
            ready.set()
            loop.run_forever()

        threading.Thread(target=serve, daemon=True).start()
        ready.wait(5)

    def wait(self, lead_id: int, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while lead_id not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.arrived[lead_id]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def leads(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    found: list[bytes] = []
    while len(found) < count:
        raw = synth.email(rng, "enquiry")
        if parser.parse(raw)[0].get("kind") == "lead":
            found.append(raw)
    return found


def run(count: int, seed: int) -> dict[str, Any]:
    receiver = Receiver()
    receiver.start()
    with tempfile.TemporaryDirectory(prefix="leadtui-notify-bench-") as tmp:
        db = str(Path(tmp) / "leads.db")
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(
            f'[[webhook]]\nname = "bench"\nurl = "http://127.0.0.1:{receiver.port}/hook"\n'
            'secret_env = "BENCH_SECRET"\nevents = ["lead.created"]\n'
        )
        settings = config.load(cfg, environ={"BENCH_SECRET": SECRET})
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADTUI_")}
        env.update(
            LEADTUI_DB=db,
            LEADTUI_CONFIG=str(cfg),
            # serve wants a source: the HTTP ingest on a free port (the leads come in here
            # through the store, as the mailbox watcher would commit them).
            LEADTUI_HTTP_LISTEN=f"127.0.0.1:{free_port()}",
            LEADTUI_API_KEYS="bench:ltk_bench_0123456789abcdef",
            BENCH_SECRET=SECRET,
            HOME=tmp,
            XDG_STATE_HOME=tmp,
        )
        store = Store.open(db)
        store.set_outbox_routes(routes(settings))
        log = Path(tmp) / "serve.stderr"
        with log.open("wb") as err:
            serve = subprocess.Popen(
                [LEADTUI, "serve"], stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env
            )
        try:
            deadline = time.monotonic() + 30
            while "capturing into" not in log.read_text(errors="replace"):
                if serve.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("leadtui serve did not start:\n" + log.read_text()[-2000:])
                time.sleep(0.05)
            pipeline = Pipeline(store)
            rng = random.Random(seed)
            latencies: list[float] = []
            lost = 0
            for raw in leads(count, seed):
                outcome = pipeline.accept(RawItem(raw, source="imap:bench"))
                committed = time.monotonic()
                arrived = receiver.wait(outcome.lead_ids[0], timeout=10)
                if arrived is None:
                    lost += 1
                else:
                    latencies.append((arrived - committed) * 1000)
                time.sleep(rng.uniform(0.05, 0.25))  # independent arrivals
        finally:
            serve.terminate()
            serve.wait(15)
            store.close()
    p99 = percentile(latencies, 99) if latencies else float("inf")
    return {
        "figures": [
            {
                "name": "commit → notification p50",
                "value": round(statistics.median(latencies), 1),
                "unit": "ms",
                "budget": None,
                "ok": None,
            },
            {
                "name": "commit → notification p99",
                "value": round(p99, 1),
                "unit": "ms",
                "budget": f"≤ {BUDGET_P99_MS:.0f} ms",
                "ok": p99 <= BUDGET_P99_MS and not lost,
            },
            {"name": "leads", "value": count, "unit": "", "budget": None, "ok": None},
            {
                "name": "lost or unsigned",
                "value": lost + receiver.bad,
                "unit": "",
                "budget": "0",
                "ok": lost + receiver.bad == 0,
            },
        ],
        "max_ms": round(max(latencies), 1) if latencies else None,
    }


def main() -> None:
    parser_ = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser_.add_argument("--leads", type=int, default=200)
    parser_.add_argument("--seed", type=int, default=1)
    parser_.add_argument("--json", action="store_true")
    args = parser_.parse_args()
    result = run(args.leads, args.seed)
    if args.json:
        print(json.dumps(result))
        return
    for figure in result["figures"]:
        budget = f"  (budget {figure['budget']})" if figure["budget"] else ""
        print(f"{figure['name']}: {figure['value']} {figure['unit']}{budget}")
    print(f"max: {result['max_ms']} ms")


if __name__ == "__main__":
    main()
