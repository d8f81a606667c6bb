"""Parser throughput on one core: sample emails/s (budget 3,000/s) and JSON payloads/s.

    .venv/bin/python bench/parser.py            # one line per measure
    .venv/bin/python bench/parser.py --json     # a dict, for bench/run_all.py

The sample set (tests/fixtures/samples) is repeated to about 20,000 parses per run; the
median of several runs is reported. JSON payloads go through ``parse_json_bytes``, the
path HTTP ingest and imports take, so decoding the body is included.

Two more figures, from the same run:

- the stdlib's bare ``compat32`` decode of the same mails (``message_from_bytes`` and
  ``get_payload(decode=True)`` of every text part), timed in turns with the parser, so
  the budget's "≥ 50% of the stdlib" compares like with like on the same machine state;
- one hostile mail: a 5 MB header folded over 100,000 lines (the shape that used to take
  seconds), parsed once; the stdlib's compat32 time for it is shown beside it.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from leadtui.parser import parse, parse_json_bytes  # noqa: E402

SAMPLES = ROOT / "tests" / "fixtures" / "samples"
BUDGET_EMAILS_PER_S = 3000
BUDGET_PERCENT_OF_COMPAT32 = 50
BUDGET_FOLDED_HEADER_S = 1.0
FOLDED_LINES = 100_000


def pin_to_one_core() -> str:
    """Run on a single CPU so the figure is per core, not per machine."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"cpu {cpu}"
    return "unpinned"


def compat32_decode(raw: bytes) -> object:
    """What the budget compares with: the stdlib's cheapest full decode of one mail."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    return [
        part.get_payload(decode=True)
        for part in msg.walk()
        if part.get_content_maintype() == "text"
    ]


def rates(
    items: list[bytes], parsers: list[Callable[[bytes], object]], total: int, runs: int
) -> list[dict[str, float]]:
    """Items per second for each parser: median, min and max over ``runs`` runs of ``total``.

    The parsers take turns within each run, so a slow patch of the machine hits all alike.
    """
    work = (items * (total // len(items) + 1))[:total]
    for parse_one in parsers:
        for item in items:  # warm up caches and the regex compiler
            parse_one(item)
    measured: list[list[float]] = [[] for _ in parsers]
    for _ in range(runs):
        for index, parse_one in enumerate(parsers):
            start = time.perf_counter()
            for item in work:
                parse_one(item)
            measured[index].append(total / (time.perf_counter() - start))
    return [{"median": statistics.median(r), "min": min(r), "max": max(r)} for r in measured]


def folded_header_mail(lines: int = FOLDED_LINES) -> bytes:
    """An IndiaMART-looking mail whose Subject is folded over ``lines`` lines (about 5 MB)."""
    fold = b"".join(b"\r\n\t=?utf-8?q?Fly_Ash_Bricks_and_more_bricks_?=" for _ in range(lines))
    return (
        b"From: IndiaMART <buyershelp+enq@indiamart.com>\r\n"
        b"Subject: Enquiry for" + fold + b"\r\n"
        b"Content-Type: text/plain\r\n\r\nI am looking for Fly Ash Bricks.\r\n"
    )


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


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
    email_rate, stdlib_rate = rates(emails, [parse, compat32_decode], args.parses, args.runs)
    (json_rate,) = rates(payloads, [parse_json_bytes], args.parses, args.runs)
    percent = round(100 * email_rate["median"] / stdlib_rate["median"], 1)
    hostile = folded_header_mail()
    folded_s = seconds(lambda: parse(hostile))
    folded_stdlib_s = seconds(lambda: compat32_decode(hostile))
    result = {
        "parser_emails_per_s": round(email_rate["median"]),
        "parser_emails_per_s_min": round(email_rate["min"]),
        "parser_emails_budget_per_s": BUDGET_EMAILS_PER_S,
        "parser_emails_within_budget": email_rate["median"] >= BUDGET_EMAILS_PER_S,
        "stdlib_compat32_emails_per_s": round(stdlib_rate["median"]),
        "parser_vs_compat32_percent": percent,
        "parser_vs_compat32_budget_percent": BUDGET_PERCENT_OF_COMPAT32,
        "parser_vs_compat32_within_budget": percent >= BUDGET_PERCENT_OF_COMPAT32,
        "folded_header_5mb_s": round(folded_s, 3),
        "folded_header_5mb_budget_s": BUDGET_FOLDED_HEADER_S,
        "folded_header_5mb_within_budget": folded_s < BUDGET_FOLDED_HEADER_S,
        "folded_header_5mb_stdlib_compat32_s": round(folded_stdlib_s, 3),
        "folded_header_bytes": len(hostile),
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
        share = "within" if result["parser_vs_compat32_within_budget"] else "OVER"
        print(
            f"parser: {result['parser_vs_compat32_percent']}% of the stdlib's compat32 decode "
            f"({result['stdlib_compat32_emails_per_s']:,} emails/s in the same run; "
            f"budget ≥ {BUDGET_PERCENT_OF_COMPAT32}%: {share})"
        )
        print(
            f"parser: a {len(hostile) / 1e6:.1f} MB header folded over {FOLDED_LINES:,} lines "
            f"in {result['folded_header_5mb_s']} s (stdlib compat32 "
            f"{result['folded_header_5mb_stdlib_compat32_s']} s; budget < {BUDGET_FOLDED_HEADER_S} s)"
        )
        print(
            f"parser: {result['parser_json_payloads_per_s']:,} JSON payloads/s on one core "
            f"(median of {args.runs} × {args.parses:,}; slowest run {result['parser_json_payloads_per_s_min']:,})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
