"""Several processes on one database: writers never see "database is locked", no lead is
lost or doubled, and every viewer sees every lead.

These run real processes (``python -c`` scripts)
against one SQLite file and one PostgreSQL schema (``db_url``).
"""

from __future__ import annotations

import json
import pickle
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from leadtui import parser, synth
from leadtui.capture import Pipeline, RawItem
from leadtui.store import LeadQuery, Store

WRITERS = 4
PER_WRITER = 250
STRIDE = 150  # writer i takes mails [i*STRIDE, i*STRIDE + PER_WRITER): neighbours share 100
LEAD_KINDS = ("enquiry", "export", "phone", "buylead", "tradeindia", "newsletter")

# Waits for "go" on stdin, then accepts its mails; prints what went wrong, if anything.
WRITER = """
import json, pickle, sys
from leadtui.capture import Pipeline, RawItem
from leadtui.store import Store

url, mails, name = sys.argv[1], pickle.load(open(sys.argv[2], "rb")), sys.argv[3]
store = Store.open(url)
pipeline = Pipeline(store)
sys.stdin.readline()
errors, outcomes = [], {}
for body in mails:
    try:
        outcome = pipeline.accept(RawItem(body, source=name, kind="email"))
    except BaseException as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    else:
        outcomes[outcome.status] = outcomes.get(outcome.status, 0) + 1
store.close()
print(json.dumps({"errors": errors, "outcomes": outcomes}))
"""

# Follows the change feed the way a TUI does (waiter + changes_since from a cursor) until
# the stop file appears, then drains once more and prints every lead id it was shown.
VIEWER = """
import json, sys
from pathlib import Path
from leadtui.store import Store

url, ready, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
store = Store.open(url)
waiter = store.waiter()
cursor = store.cursor()
waiter.wait(0.01)  # on PostgreSQL the first wait connects and LISTENs
ready.touch()
seen, woken, errors = set(), 0, []
while True:
    stopping = stop.exists()
    woken += bool(waiter.wait(1.0))
    while True:
        changes = store.changes_since(cursor, limit=150)
        for lead in changes.leads:
            if lead.seq <= cursor:
                errors.append(f"lead {lead.id} came with seq {lead.seq} <= cursor {cursor}")
            seen.add(lead.id)
        if changes.cursor < cursor:
            errors.append(f"the cursor went back from {cursor} to {changes.cursor}")
        if changes.cursor == cursor:
            break
        cursor = changes.cursor
    if stopping:
        break
waiter.close()
print(json.dumps({"ids": sorted(seen), "woken": woken, "errors": errors}))
"""


def mail(seed: int) -> bytes:
    return synth.email(random.Random(seed), LEAD_KINDS[seed % len(LEAD_KINDS)])


def writer_mails(index: int) -> list[bytes]:
    """Writer ``index``'s mails. Mails shared with a neighbour come byte for byte (even
    seeds: the same raw item) or as the writer's own copy of the same mail (odd seeds:
    another raw item, the same Message-ID, so the same lead)."""
    mails = []
    for seed in range(index * STRIDE, index * STRIDE + PER_WRITER):
        body = mail(seed)
        if seed % 2:
            body = f"X-Delivered-To: writer-{index}@example.in\r\n".encode() + body
        mails.append(body)
    random.Random(index).shuffle(mails)
    return mails


def expected_message_ids() -> set[str]:
    ids = set()
    for seed in range((WRITERS - 1) * STRIDE + PER_WRITER):
        for result in parser.parse(mail(seed)):
            if result["kind"] == "lead":
                ids.add(result["message_id"])
    return ids


def spawn(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def test_writers_and_viewers_in_several_processes_lose_and_double_nothing(
    db_url: str, tmp_path: Path
) -> None:
    Store.open(db_url).close()  # the schema exists before anyone races for it
    expected = expected_message_ids()
    stop = tmp_path / "stop"
    viewers, ready = [], []
    for v in range(2):
        ready.append(tmp_path / f"viewer-{v}.ready")
        viewers.append(spawn(VIEWER, db_url, str(ready[-1]), str(stop)))
    writers = []
    for w in range(WRITERS):
        path = tmp_path / f"writer-{w}.pickle"
        path.write_bytes(pickle.dumps(writer_mails(w)))
        writers.append(spawn(WRITER, db_url, str(path), f"writer-{w}", stdin=subprocess.PIPE))
    try:
        wait_for(lambda: all(r.exists() for r in ready), timeout=30, what="the viewers")
        for proc in writers:  # all at once, for the most contention
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [finish(proc) for proc in writers]
        stop.touch()
        seen = [finish(proc) for proc in viewers]
    finally:
        for proc in [*writers, *viewers]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    for result in results:
        assert result["errors"] == []
    assert sum(sum(r["outcomes"].values()) for r in results) == WRITERS * PER_WRITER
    store = Store.open(db_url)
    try:
        leads = store.list_leads(LeadQuery(limit=len(expected) + 100))
        ids = [lead.message_id for lead in leads]
        assert len(ids) == len(set(ids)), "a lead was doubled"
        assert set(ids) == expected
        assert store.count_leads() == len(expected)
        assert store.pending_raw_ids() == []
        assert store.review_count() == 0
        for viewer in seen:
            assert viewer["errors"] == []
            assert viewer["ids"] == sorted(lead.id for lead in leads)
            assert viewer["woken"] > 0, "the viewer was never told of a change"
    finally:
        store.close()


def test_a_viewer_never_skips_a_lead_committed_while_it_reads_the_feed(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process commits between the statements of one changes_since call."""
    viewer = Store.open(db_url)
    writer = Store.open(db_url)
    try:
        cursor = viewer.cursor()
        committed: list[int] = []
        model = viewer.m.RawItem
        real_select = model.select

        def select_with_a_commit_in_between(*args: Any) -> Any:
            if not committed:
                outcome = Pipeline(writer).accept(RawItem(mail(0), source="w", kind="email"))
                committed.extend(outcome.new_lead_ids)
            return real_select(*args)

        monkeypatch.setattr(model, "select", select_with_a_commit_in_between)
        shown: list[int] = []
        for _ in range(2):
            changes = viewer.changes_since(cursor)
            shown += [lead.id for lead in changes.leads]
            cursor = changes.cursor

        assert len(committed) == 1
        assert committed[0] in shown, "the viewer's cursor moved past a lead it never showed"
    finally:
        viewer.close()
        writer.close()
