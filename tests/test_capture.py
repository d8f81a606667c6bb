"""The capture pipeline: raw first, so no crash and no parser bug can lose a lead.

Every test runs against SQLite and the real PostgreSQL (``db_url``). A crash is a real
process killed with SIGKILL between the raw commit and the lead upsert, not a mock.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

from leadtui import parser, synth
from leadtui.capture import CaptureService, Pipeline, RawItem
from leadtui.store import LeadQuery, Store

# Commits the raw item, then dies by SIGKILL where the lead would be upserted.
CRASH_AFTER_RAW_COMMIT = """
import os, signal, sys
from pathlib import Path
from leadtui.capture import Pipeline, RawItem
from leadtui.store import Store

store = Store.open(sys.argv[1])
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
store.apply = die
Pipeline(store).accept(RawItem(Path(sys.argv[2]).read_bytes(), source="imap:test", kind="email"))
"""


def crash_after_raw_commit(url: str, body: bytes, tmp_path: Path) -> None:
    """Run a process that accepts ``body`` and is killed between the two commits."""
    mail = tmp_path / f"mail-{random.getrandbits(32):08x}.eml"
    mail.write_bytes(body)
    done = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_RAW_COMMIT, url, str(mail)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def lead_mail(seed: int = 1) -> tuple[bytes, dict[str, Any]]:
    """A synthetic IndiaMART enquiry and the lead the parser reads in it."""
    raw = synth.email(random.Random(seed), "enquiry")
    (lead,) = parser.parse(raw)
    assert lead["kind"] == "lead"
    return raw, lead


def message_ids(store: Store) -> list[str]:
    """The Message-IDs of every lead in the table, sorted."""
    return sorted(lead.message_id or "" for lead in store.list_leads(LeadQuery(limit=1000)))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.mark.parametrize("finish", ["recover", "redelivery"])
def test_a_crash_between_raw_commit_and_lead_is_finished_exactly_once(
    db_url: str, store: Store, tmp_path: Path, finish: str
) -> None:
    body, expected = lead_mail()

    crash_after_raw_commit(db_url, body, tmp_path)

    pending = store.pending_raw_ids()
    assert len(pending) == 1, "the mail was not kept before the crash"
    assert store.raw_body(pending[0]) == body
    assert store.count_leads() == 0

    after_restart = Store.open(db_url)  # the next process
    try:
        pipeline = Pipeline(after_restart)
        if finish == "recover":
            outcomes = pipeline.recover(older_than=0)
            assert [o.status for o in outcomes] == ["new"]
        else:  # the mailbox hands the same mail over again (its watermark did not move)
            outcome = pipeline.accept(RawItem(body, source="imap:test", kind="email"))
            assert outcome.status == "new"
        assert pipeline.recover(older_than=0) == []
        again = pipeline.accept(RawItem(body, source="imap:test", kind="email"))
        assert again.status == "duplicate"
    finally:
        after_restart.close()

    assert store.pending_raw_ids() == []
    assert message_ids(store) == [expected["message_id"]]
    lead = store.list_leads()[0]
    assert (lead.name, lead.phone, lead.product) == (
        expected["name"],
        expected["phone"],
        expected["product"],
    )
    assert store.lead_raw_ids(lead.id) == pending


def test_a_parser_bug_keeps_the_mail_for_review_and_a_reparse_makes_the_lead(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, expected = lead_mail(2)

    def broken(raw: bytes, *_own: object) -> dict[str, Any]:  # (raw, the seller's addresses)
        raise KeyError("a bug in the email family")

    with monkeypatch.context() as patch:
        patch.setattr(parser, "_parse_email", broken)
        outcome = Pipeline(store).accept(RawItem(body, source="imap:test", kind="email"))

    assert outcome.status == "failed"
    assert store.count_leads() == 0
    review = store.review_items()
    assert [item.id for item in review] == [outcome.raw_id]
    assert "KeyError" in (review[0].error or "")
    assert store.raw_body(outcome.raw_id) == body

    fixed = Pipeline(store).reparse_failed()

    assert [o.status for o in fixed] == ["new"]
    assert store.review_count() == 0
    assert message_ids(store) == [expected["message_id"]]


def test_a_parser_that_raises_cannot_stall_capture(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser promises never to raise; if it breaks that promise, the mail still waits in
    the review queue, and the source gets an answer instead of an exception to retry forever."""
    body, expected = lead_mail(3)
    next_body, next_expected = lead_mail(4)

    def broken(raw: object, *, channel: str | None = None) -> list[dict[str, Any]]:
        raise RecursionError("maximum recursion depth exceeded")

    with monkeypatch.context() as patch:
        patch.setattr(parser, "parse", broken)
        outcome = Pipeline(store).accept(RawItem(body, source="imap:test", kind="email"))

    assert outcome.status == "failed"
    assert [item.id for item in store.review_items()] == [outcome.raw_id]
    assert store.pending_raw_ids() == []
    assert Pipeline(store).accept(RawItem(next_body, source="imap:test", kind="email")).status == (
        "new"
    )

    assert [o.status for o in Pipeline(store).reparse_failed()] == ["new"]
    assert message_ids(store) == sorted([expected["message_id"], next_expected["message_id"]])


def test_the_capturing_process_finishes_items_a_crashed_one_left_behind(
    db_url: str, store: Store, tmp_path: Path
) -> None:
    """An item left pending while another process already holds the lease (the HTTP ingest
    answered 2xx before it crashed, so nobody delivers it again) still becomes a lead."""
    stop = threading.Event()
    service = CaptureService(db_url, [], renew_every=0.05, recover_after=0.0)
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: service.holding, what="the service to hold the lease")
        body, expected = lead_mail(5)

        crash_after_raw_commit(db_url, body, tmp_path)

        wait_for(lambda: store.count_leads() == 1, what="the pending item to be finished")
        assert message_ids(store) == [expected["message_id"]]
        assert store.pending_raw_ids() == []
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
