"""SVG snapshots of the main screens, with a fixed clock and fixed data (the sample emails).

Update them only after looking at the diff: ``pytest tests/test_app_snapshots.py
--snapshot-update``, then open ``snapshot_report.html``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers import FIXTURES
from textual.pilot import Pilot

from leadtui import config
from leadtui.app import LeadApp
from leadtui.capture import Pipeline, RawItem
from leadtui.config import Settings
from leadtui.store import LeadQuery, Store

IST = timezone(timedelta(hours=5, minutes=30))
NOW = datetime(2026, 3, 12, 20, 0, tzinfo=IST).timestamp()
SAMPLES = FIXTURES / "samples"


@pytest.fixture(autouse=True)
def _fixed_place_and_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    monkeypatch.setattr(
        config, "default_config_path", lambda: Path("~/.config/leadtui/config.toml")
    )
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def url(tmp_path: Path) -> str:
    """The sample leads, a contacted one with a note, a failed item; every clock fixed."""
    db = str(tmp_path / "leads.db")
    with Store.open(db) as store:
        pipeline = Pipeline(store)
        for path in sorted((SAMPLES / "email").glob("*.eml")):
            pipeline.accept(RawItem(path.read_bytes(), source="imap:sales@example.in/INBOX"))
        for path in sorted((SAMPLES / "payload").glob("*.json")):
            pipeline.accept(RawItem(path.read_bytes(), source="push", kind="json"))
        pipeline.accept(
            RawItem(
                b'{"CODE": 401, "STATUS": "FAILURE", "MESSAGE": "Key is expired"}',
                source="pull",
                kind="json",
            )
        )
        sunil = next(x for x in store.list_leads(LeadQuery(limit=50)) if x.name == "Sunil Rao")
        store.add_note(sunil.id, "wants 10,000 pcs by Friday", actor="ravi")
        store.mark_contacted(sunil.id, actor="ravi")
        store.assign(sunil.id, "ravi", actor="ravi")
        sql = store.db.execute_sql
        sql("UPDATE lead SET first_seen_ts = received_ts, updated_ts = received_ts")
        sql("UPDATE lead SET last_action_ts = ?, contacted_ts = ? WHERE id = ?",
            (NOW - 120, NOW - 120, sunil.id))  # fmt: skip
        sql("UPDATE event SET ts = ? + id * 60", (NOW - 3600,))
        sql("UPDATE lead_message SET ts = ?", (NOW - 7200,))
        sql("UPDATE raw_item SET received_ts = ? + id * 60, updated_ts = ?", (NOW - 86400, NOW))
    return db


def make_app(url: str) -> LeadApp:
    settings = Settings(
        db=url, http_listen="off", imap_host="imap.example.in", imap_user="sales@example.in"
    )
    store = Store.open(url)
    return LeadApp(settings, store, capture=False, clock=lambda: NOW, actor="asha")


async def settled(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, LeadApp)
    deadline = time.monotonic() + 5
    while not (app.first_page_shown and app.top.state.loaded):
        assert time.monotonic() < deadline, "the app did not start"
        await pilot.pause(0.02)
    app.clear_notifications()
    await pilot.pause(0.1)


async def opened(pilot: Pilot[Any], key: str, selector: str) -> None:
    await settled(pilot)
    await pilot.press(key)
    deadline = time.monotonic() + 5
    while not pilot.app.screen.query(selector):
        assert time.monotonic() < deadline, selector
        await pilot.pause(0.02)
    await pilot.pause(0.5)  # the screen's worker has filled it in


def test_main_screen_at_80x24(url: str, snap_compare: Any) -> None:
    assert snap_compare(make_app(url), terminal_size=(80, 24), run_before=settled)


def test_main_screen_at_60x20(url: str, snap_compare: Any) -> None:
    assert snap_compare(make_app(url), terminal_size=(60, 20), run_before=settled)


def test_main_screen_wide(url: str, snap_compare: Any) -> None:
    assert snap_compare(make_app(url), terminal_size=(150, 30), run_before=settled)


def test_detail_screen(url: str, snap_compare: Any) -> None:
    app = make_app(url)

    async def open_sunil(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        table = app.table
        sunil = next(i for i, lead in table.leads.items() if lead.name == "Sunil Rao")
        table.move_cursor(row=table.get_row_index(str(sunil)))
        await opened(pilot, "enter", "#detail-fields")

    assert snap_compare(app, terminal_size=(100, 40), run_before=open_sunil)


def test_help_screen(url: str, snap_compare: Any) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await opened(pilot, "question_mark", "#help-text")

    assert snap_compare(make_app(url), terminal_size=(100, 40), run_before=open_help)


def test_review_queue(url: str, snap_compare: Any) -> None:
    async def open_review(pilot: Pilot[Any]) -> None:
        await opened(pilot, "r", "#review-raw-text")

    assert snap_compare(make_app(url), terminal_size=(100, 24), run_before=open_review)
