"""Several processes on one database: writers never see "database is locked", no lead is
lost or doubled, every viewer sees every lead, and a killed import leaves nothing behind.

These run real processes (``python -c`` scripts and the installed ``leadtui`` command)
against one SQLite file and one PostgreSQL schema (``db_url``).
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from leadtui import parser, synth
from leadtui.capture import Pipeline, RawItem
from leadtui.store import LeadQuery, Store

LEADTUI = str(Path(sys.executable).with_name("leadtui"))
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


# Opens the database named by each line on stdin as soon as it arrives; prints the outcome.
OPENER = """
import sys
from leadtui.store import Store
for line in sys.stdin:
    try:
        Store.open(line.strip()).close()
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", flush=True)
    else:
        print("ok", flush=True)
"""


def test_processes_starting_together_on_a_new_sqlite_database_all_open_it(
    tmp_path: Path,
) -> None:
    # e.g. `leadtui serve` and a salesperson's `leadtui` started on the same new database.
    # SQLite refused one of two connections that switched a new file to WAL at once, without
    # waiting; a round is a new file, so each one is another chance to meet that.
    openers = [spawn(OPENER, stdin=subprocess.PIPE) for _ in range(4)]
    failures = []
    try:
        for round_ in range(30):
            for proc in openers:
                assert proc.stdin is not None
                proc.stdin.write(f"{tmp_path / f'new-{round_}.db'}\n")
                proc.stdin.flush()
            for proc in openers:
                assert proc.stdout is not None
                answer = proc.stdout.readline().strip()
                if answer != "ok":
                    failures.append(f"round {round_}: {answer or 'the opener ended'}")
    finally:
        for proc in openers:
            proc.communicate(input="", timeout=30)
    assert failures == []


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


# --------------------------------------------------------------------------- a killed import


def state_of(url: str) -> dict[str, Any]:
    """What a user would compare: the leads by Message-ID and the fate of every raw item."""
    store = Store.open(url)
    try:
        leads = {
            lead.message_id: (
                lead.name,
                lead.phone,
                lead.product,
                lead.status,
                lead.enquiry_no,
                lead.messages_count,
            )
            for lead in store.list_leads(LeadQuery(limit=100_000))
        }
        raw = store.m.RawItem
        items = sorted(raw.select(raw.content_hash, raw.status, raw.error).tuples())
        return {
            "leads": leads,
            "lead_count": store.count_leads(),
            "raw": items,
            "pending": store.pending_raw_ids(),
        }
    finally:
        store.close()


def leadtui_import(url: str, mbox: Path, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LEADTUI, "--db", url, "import", str(mbox)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
        **kwargs,
    )


def new_leads(summary: str) -> int:
    """The count of new leads in the summary line of ``leadtui import``."""
    match = re.search(r"(\d+) new leads?,", summary)
    assert match, summary
    return int(match.group(1))


@pytest.mark.slow
def test_an_import_killed_midway_and_run_again_ends_as_a_clean_import(
    db_url: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.mbox"
    big.write_bytes(synth.mbox(random.Random(11), 400))
    watcher = Store.open(db_url)
    try:
        proc = leadtui_import(db_url, big)
        try:
            wait_for(
                lambda: watcher.count_leads() >= 20 or proc.poll() is not None,
                timeout=60,
                what="the import to store some leads",
            )
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the import finished before it was killed"
        killed_at = watcher.count_leads()
    finally:
        watcher.close()

    again = leadtui_import(db_url, big)
    again_out, err = again.communicate(timeout=120)
    assert again.returncode in (0, 1), err  # 1: some mails failed (replies to unknown leads)

    clean_url = str(tmp_path / "clean.db")  # the reference: one uninterrupted import
    clean = leadtui_import(clean_url, big)
    clean_out, clean_err = clean.communicate(timeout=120)
    assert clean.returncode == again.returncode, clean_err

    after_crash, reference = state_of(db_url), state_of(clean_url)
    assert 0 < killed_at < reference["lead_count"]
    assert after_crash["pending"] == []
    assert after_crash["lead_count"] == reference["lead_count"]
    assert after_crash["leads"] == reference["leads"]
    assert after_crash["raw"] == reference["raw"]
    assert new_leads(clean_out) == reference["lead_count"]
    assert new_leads(again_out) == reference["lead_count"] - killed_at
