"""Run every benchmark in bench/ with --json and print one Markdown table of the budgets.

    .venv/bin/python bench/run_all.py                 # all of bench/*.py (what `make bench` runs)
    .venv/bin/python bench/run_all.py --only store    # some of them

A benchmark prints one JSON object as its last line of stdout. Its figures are read from
``"figures"`` (a list of ``{"name", "value", "unit", "budget", "ok"}``) when it has one;
otherwise from the ``<figure>_within_budget`` / ``<figure>_budget_<unit>`` / ``<figure>_<unit>``
keys (bench/parser.py's shape); anything else numeric is listed without a budget. The
machine, Python and date come first, for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 3 * 3600


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GB RAM"
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs{memory}, {platform.system()} {platform.release()}"


def rows_of(bench: str, data: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(bench, figure, measured, budget, result) rows from one benchmark's JSON."""
    if isinstance(data.get("figures"), list):
        rows = []
        for f in data["figures"]:
            ok = f.get("ok")
            result = "—" if ok is None else ("pass" if ok else "**FAIL**")
            value = f.get("value")
            if isinstance(value, bool):  # before int: True is an int too
                shown = "yes" if value else "no"
            elif isinstance(value, int | float):
                shown = f"{value:,}"
            else:
                shown = str(value)
            rows.append((bench, str(f.get("name")), f"{shown} {f.get('unit', '')}".strip(),
                         str(f.get("budget") or "—"), result))  # fmt: skip
        return rows
    rows = []
    used: set[str] = set()
    for key, ok in data.items():
        if not key.endswith("_within_budget") or not isinstance(ok, bool):
            continue
        prefix = key[: -len("_within_budget")]
        budget_key = next((k for k in data if k.startswith(prefix + "_budget")), None)
        unit = budget_key[len(prefix + "_budget") :] if budget_key else ""
        value_key = prefix + unit
        value = data.get(value_key)
        budget = data.get(budget_key) if budget_key else None
        nice_unit = unit.lstrip("_").replace("_per_", "/").replace("per_", "/")
        rows.append(
            (
                bench,
                prefix.replace("_", " "),
                f"{value:,} {nice_unit}" if isinstance(value, int | float) else "see below",
                f"{budget:,} {nice_unit}" if isinstance(budget, int | float) else "—",
                "pass" if ok else "**FAIL**",
            )
        )
        used.update({key, value_key, budget_key or ""})
    for key, value in data.items():
        if key in used or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if key in {"runs", "parses_per_run", "sample_emails", "sample_payloads"}:
            continue
        rows.append((bench, key.replace("_", " "), f"{value:,}", "—", "—"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", help="comma-separated benchmark names (default: all)")
    args = ap.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    benches = sorted(
        p for p in HERE.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_")
    )
    if wanted:
        benches = [p for p in benches if p.stem in wanted]

    print(f"- date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"- machine: {machine()}")
    print(f"- Python {platform.python_version()} ({sys.executable})")
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"- load average at the start: {load} (other work on the machine skews figures)")
    print()
    table: list[tuple[str, str, str, str, str]] = []
    raw: dict[str, Any] = {}
    failed = False
    for path in benches:
        print(f"running bench/{path.name} …", file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, str(path), "--json"],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            table.append((path.stem, "(timed out)", "—", "—", "**FAIL**"))
            failed = True
            continue
        took = time.monotonic() - start
        print(f"  … {took:.0f} s", file=sys.stderr, flush=True)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            data = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            data = None
        if done.returncode != 0 or not isinstance(data, dict):
            why = (done.stderr.strip().splitlines() or ["no output"])[-1][:120]
            table.append((path.stem, f"(did not run: exit {done.returncode}: {why})", "—", "—",
                          "**FAIL**"))  # fmt: skip
            failed = True
            continue
        table += rows_of(path.stem, data)
        raw[path.stem] = data

    print("| bench | figure | measured | budget | result |")
    print("| --- | --- | --- | --- | --- |")
    for row in table:
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    print()
    print("<details><summary>every figure, as each benchmark reported it</summary>")
    print()
    for name, data in raw.items():
        print(f"bench/{name}.py:")
        print()
        print("```json")
        print(json.dumps({k: v for k, v in data.items() if k != "figures"}, indent=1))
        print("```")
        print()
    print("</details>")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
