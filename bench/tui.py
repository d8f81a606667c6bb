"""The TUI's budgets, measured on the real ``leadtui`` in a real terminal (tmux).

    .venv/bin/python bench/tui.py            # one line per measure
    .venv/bin/python bench/tui.py --json     # a dict, for bench/run_all.py

- first paint: from starting ``leadtui --db DB`` to the newest lead's row on the screen (to
  "No leads yet" for the empty database), with 0 / 10k / 100k / 1M leads; the median of
  ``--runs`` starts. Budget: ≤ 1 s at 1M and within 1.2× of the empty database.
- RSS: the process's resident memory two seconds after the first paint. Budget: ≤ 200 MB.
- search: the store query behind a search over 1M leads (budget ≤ 300 ms), and the whole
  round trip in the TUI from the last key typed to the filtered rows on screen (that one
  includes the 150 ms typing debounce).
- commit → highlight: another process commits a lead through the capture pipeline; the time
  until its row is on the TUI's screen, p50 and p99. Budget: ≤ 300 ms p99. Measured twice:
  read from the real terminal, and inside the app (headless) from the commit to the end of
  the screen refresh that draws the row, without the terminal or the polling.

The screen is read with ``tmux capture-pane`` every 10 ms, so every figure includes up to ten
milliseconds of polling (and the polling competes with the TUI for the CPU). The databases
are bench/store.py's (bench/_synthetic.py: synthetic leads with a spread of statuses, built
once and cached under /tmp/leadtui-bench; delete it to rebuild).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from leadtui.capture import Pipeline, RawItem  # noqa: E402
from leadtui.store import LeadQuery, Store  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _synthetic import sqlite_leads_db  # noqa: E402

LEADTUI = Path(sys.executable).with_name("leadtui")
SIZES = (0, 10_000, 100_000, 1_000_000)
POLL = 0.01
BUDGET_PAINT_S = 1.0
BUDGET_PAINT_RATIO = 1.2
BUDGET_RSS_MB = 200
BUDGET_SEARCH_MS = 300
BUDGET_HIGHLIGHT_MS = 300
SEARCHES = ("bricks", "swati", "9000", "pune tiles", "solar street light")


# --------------------------------------------------------------------------- databases


def synthetic_db(n: int) -> Path:
    """A SQLite database with ``n`` synthetic leads: the one bench/store.py queries."""
    return Path(sqlite_leads_db(n))


def newest_phone(db: Path) -> str | None:
    with Store.open(str(db)) as store:
        leads = store.list_leads(LeadQuery(limit=1))
    return leads[0].phone if leads else None


# --------------------------------------------------------------------------- the terminal


class Terminal:
    """The real leadtui in its own tmux server."""

    def __init__(self, db: Path, home: Path, size: tuple[int, int] = (120, 40)) -> None:
        self.socket = f"leadtui-bench-{uuid.uuid4().hex[:8]}"
        env = {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
            "LEADTUI_HTTP_LISTEN": "off",
            "TERM": "xterm-256color",
        }
        exports = " ".join(f"{k}='{v}'" for k, v in env.items())
        self.started = time.perf_counter()
        self._tmux(
            "new-session", "-d", "-s", "b", "-x", str(size[0]), "-y", str(size[1]),
            f"exec env {exports} {LEADTUI} --db '{db}'",
        )  # fmt: skip
        self.pid = int(self._tmux("display", "-p", "-t", "b", "#{pane_pid}").strip())

    def _tmux(self, *args: str) -> str:
        clean = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
            env=clean,
        )
        return out.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "b")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "b", *keys)

    def wait(self, found: Callable[[str], bool], timeout: float = 30.0) -> float:
        """Seconds (perf_counter) when ``found(screen)`` first held."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if found(self.screen()):
                return time.perf_counter()
            time.sleep(POLL)
        raise TimeoutError(f"the screen never showed it:\n{self.screen()}")

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def close(self) -> None:
        self.keys("q")
        deadline = time.time() + 5
        while time.time() < deadline and Path(f"/proc/{self.pid}").exists():
            time.sleep(0.05)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], check=False, capture_output=True)


# --------------------------------------------------------------------------- measures


def first_paint(n: int, runs: int, home: Path) -> dict[str, float]:
    db = synthetic_db(n)
    phone = newest_phone(db)
    paints, rss = [], []
    for _ in range(runs):
        term = Terminal(db, home)
        try:
            mark = phone or "No leads yet"
            shown = term.wait(lambda screen, mark=mark: mark in screen)
            paints.append(shown - term.started)
            time.sleep(2.0)
            rss.append(term.rss_mb())
        finally:
            term.close()
    return {"paint_s": statistics.median(paints), "rss_mb": max(rss)}


def store_search(n: int) -> dict[str, float]:
    db = synthetic_db(n)
    times = []
    with Store.open(str(db)) as store:
        for text in SEARCHES:
            store.list_leads(LeadQuery(search=text, limit=100))  # warm the page cache
            start = time.perf_counter()
            store.list_leads(LeadQuery(search=text, limit=100))
            times.append(time.perf_counter() - start)
    return {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000}


def tui_search(n: int, home: Path) -> float:
    """Last key typed → the filtered rows on screen, in the TUI, ms (median of SEARCHES)."""
    db = synthetic_db(n)
    with Store.open(str(db)) as store:
        expected = {
            text: [x.phone for x in store.list_leads(LeadQuery(search=text, limit=3))]
            for text in SEARCHES
        }
    term = Terminal(db, home)
    times = []
    try:
        term.wait(lambda screen: "All leads" in screen)
        for text in SEARCHES:
            phones = [p for p in expected[text] if p]
            term.keys("/")
            term.wait(lambda screen: "name, phone, product" in screen)
            start = time.perf_counter()
            term.keys("-l", text)
            shown = term.wait(
                lambda screen, t=text, p=phones: (
                    f"matching “{t}”" in screen and all(x in screen for x in p)
                )
            )
            times.append(shown - start)
            term.keys("Escape")
            term.wait(lambda screen: "matching" not in screen)
    finally:
        term.close()
    return statistics.median(times) * 1000


def commit_to_highlight(n: int, samples: int, home: Path) -> dict[str, float]:
    source = synthetic_db(n)
    work = Path(tempfile.mkdtemp(prefix="leadtui-bench-"))
    db = work / "leads.db"
    shutil.copy(source, db)
    term = Terminal(db, home)
    latencies = []
    try:
        term.wait(lambda screen: "All leads" in screen)
        store = Store.open(str(db))
        pipeline = Pipeline(store)
        for i in range(samples):
            phone = f"98{77_000_000 + i:08d}"  # unique, so each is a new lead
            body = {
                "source": "website",
                "name": f"Latency Buyer {i}",
                "phone": phone,
                "product": "Bench Bricks",
                "city": "Pune",
                "external_id": f"bench-{uuid.uuid4().hex}",
            }
            item = RawItem(json.dumps(body).encode(), source="bench", kind="json", channel="api")
            pipeline.accept(item)
            committed = time.perf_counter()
            # The row's name column, at the left: toasts (which repeat the name) stack on the
            # right and would also hide the row's right-hand columns.
            name = body["name"]
            shown = term.wait(
                lambda screen, n=name: any(n in line[:45] for line in screen.splitlines()),
                timeout=10,
            )
            latencies.append(shown - committed)
            time.sleep(0.4)  # its own burst
        store.close()
    finally:
        term.close()
        shutil.rmtree(work, ignore_errors=True)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    return {"p50_ms": statistics.median(latencies) * 1000, "p99_ms": p99 * 1000}


_COMMITTER = """
import json, sys, time, uuid
from leadtui.capture import Pipeline, RawItem
from leadtui.store import Store
store = Store.open(sys.argv[1])
pipeline = Pipeline(store)
for line in sys.stdin:
    body = {"source": "website", "name": line.strip(), "phone": None, "product": "Bench Bricks",
            "external_id": "bench-" + uuid.uuid4().hex}
    pipeline.accept(RawItem(json.dumps(body).encode(), source="bench", kind="json", channel="api"))
    print(time.monotonic(), flush=True)
"""


def commit_to_row_in_app(n: int, samples: int) -> dict[str, float]:
    """The same, inside the app: commit in another process → the row drawn (headless).

    No terminal and no screen polling: the time from the other process's commit to the end
    of the first screen refresh that shows the row (CLOCK_MONOTONIC is shared by processes).
    """
    import asyncio  # noqa: PLC0415

    from leadtui.app import FeedChanged, LeadApp  # noqa: PLC0415
    from leadtui.config import Settings  # noqa: PLC0415

    source = synthetic_db(n)
    work = Path(tempfile.mkdtemp(prefix="leadtui-bench-"))
    db = work / "leads.db"
    shutil.copy(source, db)
    drawn: dict[str, float] = {}
    waiting: dict[str, asyncio.Event] = {}

    class Timed(LeadApp):
        def on_feed_changed(self, message: FeedChanged) -> None:
            super().on_feed_changed(message)
            names = [lead.name or "" for lead in message.leads if lead.id in self.table.leads]

            def stamp() -> None:
                now = time.monotonic()
                for name in names:
                    drawn.setdefault(name, now)
                    if name in waiting:
                        waiting[name].set()

            self.call_after_refresh(stamp)

    committer = subprocess.Popen(
        [sys.executable, "-c", _COMMITTER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert committer.stdin is not None
    assert committer.stdout is not None
    commits, times = committer.stdin, committer.stdout

    async def run() -> list[float]:
        settings = Settings(db=str(db), http_listen="off")
        app = Timed(settings, Store.open(str(db)), capture=False)
        latencies = []
        async with app.run_test(size=(120, 40)) as pilot:
            while not app.first_page_shown:
                await pilot.pause(0.01)
            await pilot.pause(0.5)
            for i in range(samples):
                name = f"In-app Buyer {i}"
                waiting[name] = asyncio.Event()
                commits.write(name + "\n")
                commits.flush()
                committed = float(await asyncio.to_thread(times.readline))
                await asyncio.wait_for(waiting[name].wait(), 10)
                latencies.append(drawn[name] - committed)
                await asyncio.sleep(0.4)
        return latencies

    try:
        latencies = sorted(asyncio.run(run()))
    finally:
        commits.close()
        committer.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    return {"p50_ms": statistics.median(latencies) * 1000, "p99_ms": p99 * 1000}


def main() -> int:
    parser_ = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser_.add_argument("--json", action="store_true", help="print one JSON object")
    parser_.add_argument("--runs", type=int, default=3, help="starts per database (default 3)")
    parser_.add_argument("--samples", type=int, default=30, help="commits timed (default 30)")
    parser_.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="lead counts, comma-separated"
    )
    args = parser_.parse_args()
    if shutil.which("tmux") is None:
        parser_.error("tmux is not installed")
    sizes = [int(x) for x in args.sizes.split(",")]
    largest = max(sizes)
    home = Path(tempfile.mkdtemp(prefix="leadtui-bench-home-"))
    result: dict[str, Any] = {}
    lines: list[str] = []
    try:
        for n in sizes:
            synthetic_db(n)
        paint = {n: first_paint(n, args.runs, home) for n in sizes}
        empty = paint.get(0, {}).get("paint_s")
        for n in sizes:
            result[f"tui_first_paint_s_{n}"] = round(paint[n]["paint_s"], 3)
            result[f"tui_rss_mb_{n}"] = round(paint[n]["rss_mb"], 1)
            ratio = f" ({paint[n]['paint_s'] / empty:.2f}× empty)" if empty else ""
            lines.append(
                f"first paint, {n:>9,} leads: {paint[n]['paint_s'] * 1000:6.0f} ms{ratio}, "
                f"RSS {paint[n]['rss_mb']:.0f} MB"
            )
        big = paint[largest]
        ratio = big["paint_s"] / empty if empty else None
        result["tui_first_paint_ratio_largest_vs_empty"] = round(ratio, 2) if ratio else None
        result["tui_first_paint_within_budget"] = big["paint_s"] <= BUDGET_PAINT_S and (
            ratio is None or ratio <= BUDGET_PAINT_RATIO
        )
        result["tui_rss_within_budget"] = all(p["rss_mb"] <= BUDGET_RSS_MB for p in paint.values())

        search = store_search(largest)
        result["store_search_ms_median"] = round(search["median_ms"], 1)
        result["store_search_ms_max"] = round(search["max_ms"], 1)
        result["store_search_within_budget"] = search["max_ms"] <= BUDGET_SEARCH_MS
        lines.append(
            f"search query, {largest:,} leads: median {search['median_ms']:.0f} ms, "
            f"max {search['max_ms']:.0f} ms (budget {BUDGET_SEARCH_MS} ms)"
        )
        typed = tui_search(largest, home)
        result["tui_search_ms_median"] = round(typed, 1)
        lines.append(
            f"search in the TUI, {largest:,} leads: {typed:.0f} ms from the last key "
            "to the rows (includes the 150 ms typing debounce)"
        )
        highlight = commit_to_highlight(min(largest, 100_000), args.samples, home)
        result["tui_commit_to_row_ms_p50"] = round(highlight["p50_ms"], 1)
        result["tui_commit_to_row_ms_p99"] = round(highlight["p99_ms"], 1)
        result["tui_commit_to_row_within_budget"] = highlight["p99_ms"] <= BUDGET_HIGHLIGHT_MS
        lines.append(
            f"commit → highlighted row in another process: p50 {highlight['p50_ms']:.0f} ms, "
            f"p99 {highlight['p99_ms']:.0f} ms (budget {BUDGET_HIGHLIGHT_MS} ms p99)"
        )
        in_app = commit_to_row_in_app(min(largest, 100_000), args.samples)
        result["app_commit_to_row_ms_p50"] = round(in_app["p50_ms"], 1)
        result["app_commit_to_row_ms_p99"] = round(in_app["p99_ms"], 1)
        lines.append(
            f"commit → row drawn inside the app (headless, no terminal): "
            f"p50 {in_app['p50_ms']:.0f} ms, p99 {in_app['p99_ms']:.0f} ms"
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
