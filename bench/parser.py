"""Parser throughput on one core: sample emails/s (budget 3,000/s) and JSON payloads/s.

    .venv/bin/python bench/parser.py            # one line per measure
    .venv/bin/python bench/parser.py --json     # a dict, for bench/run_all.py

The sample set (tests/fixtures/samples) is repeated to about 20,000 parses per run; the
median of several runs is reported. JSON payloads go through ``parse_json_bytes``, the
path HTTP ingest and imports take, so decoding the body is included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from leadtui.parser import parse, parse_json_bytes  # noqa: E402

SAMPLES = ROOT / "tests" / "fixtures" / "samples"
BUDGET_EMAILS_PER_S = 3000


def pin_to_one_core() -> str:
    """Run on a single CPU so the figure is per core, not per machine."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"cpu {cpu}"
    return "unpinned"


def rate(
    items: list[bytes], parse_one: Callable[[bytes], object], total: int, runs: int
) -> dict[str, float]:
    """Items per second: the median, min and max over ``runs`` runs of ``total`` parses."""
    work = (items * (total // len(items) + 1))[:total]
    for item in items:  # warm up caches and the regex compiler
        parse_one(item)
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for item in work:
            parse_one(item)
        rates.append(total / (time.perf_counter() - start))
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of lines"
    )
    parser.add_argument("--parses", type=int, default=20_000, help="parses per run (default 20000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measure (default 5)")
    args = parser.parse_args()

    emails = [p.read_bytes() for p in sorted((SAMPLES / "email").glob("*.eml"))]
    payloads = [p.read_bytes() for p in sorted((SAMPLES / "payload").glob("*.json"))]
    if not emails or not payloads:
        parser.error(f"no samples under {SAMPLES}")
    pinned = pin_to_one_core()
    email_rate = rate(emails, parse, args.parses, args.runs)
    json_rate = rate(payloads, parse_json_bytes, args.parses, args.runs)
    result = {
        "parser_emails_per_s": round(email_rate["median"]),
        "parser_emails_per_s_min": round(email_rate["min"]),
        "parser_emails_budget_per_s": BUDGET_EMAILS_PER_S,
        "parser_emails_within_budget": email_rate["median"] >= BUDGET_EMAILS_PER_S,
        "parser_json_payloads_per_s": round(json_rate["median"]),
        "parser_json_payloads_per_s_min": round(json_rate["min"]),
        "sample_emails": len(emails),
        "sample_payloads": len(payloads),
        "parses_per_run": args.parses,
        "runs": args.runs,
        "pinned": pinned,
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "within" if result["parser_emails_within_budget"] else "OVER"
        print(
            f"parser: {result['parser_emails_per_s']:,} emails/s on one core "
            f"(median of {args.runs} × {args.parses:,}; slowest run {result['parser_emails_per_s_min']:,}; "
            f"budget ≥ {BUDGET_EMAILS_PER_S:,}/s: {verdict})"
        )
        print(
            f"parser: {result['parser_json_payloads_per_s']:,} JSON payloads/s on one core "
            f"(median of {args.runs} × {args.parses:,}; slowest run {result['parser_json_payloads_per_s_min']:,})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
