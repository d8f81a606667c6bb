"""Times in the seller's zone: a UTC server shows an IST enquiry at its IST clock time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import static_text

from leadtui.app import LeadApp
from leadtui.capture import Pipeline, RawItem
from leadtui.cli import main
from leadtui.config import Settings
from leadtui.store import Store

IST = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture(autouse=True)
def _utc_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine runs in UTC, as a VM usually does; the seller lives in IST."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, datetime]:
    """One lead that arrived two minutes ago, IST."""
    moment = (datetime.now(IST) - timedelta(minutes=2)).replace(microsecond=0)
    body = {"name": "Kavita Rao", "phone": "9876543210", "received_at": moment.isoformat()}
    path = tmp_path / "leads.db"
    with Store.open(str(path)) as store:
        Pipeline(store).accept(RawItem(json.dumps(body).encode(), source="test", kind="json"))
    return path, moment


def run(db: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), *args], env=env, catch_exceptions=False)


def test_list_and_export_show_ist_on_a_utc_server(db: tuple[Path, datetime]) -> None:
    path, moment = db
    listed = run(path, "list")
    assert f"{moment:%d %b %H:%M}" in listed.output
    assert f"{moment.astimezone(UTC):%d %b %H:%M}" not in listed.output
    exported = run(path, "export")
    assert moment.isoformat() in exported.output  # +05:30, the time the buyer wrote


def test_local_means_the_machines_zone(db: tuple[Path, datetime]) -> None:
    path, moment = db
    listed = run(path, "list", env={"LEADTUI_TIMEZONE": "local"})
    assert f"{moment.astimezone(UTC):%d %b %H:%M}" in listed.output


def test_doctor_names_the_zone_and_a_wrong_zone_is_one_line(db: tuple[Path, datetime]) -> None:
    path, _ = db
    doctor = run(path, "doctor", "--timeout", "1")
    assert "Asia/Kolkata (IST, UTC+05:30)" in doctor.output
    wrong = run(path, "list", env={"LEADTUI_TIMEZONE": "Mars/Olympus"})
    assert wrong.exit_code == 2
    assert "LEADTUI_TIMEZONE" in wrong.output
    assert "no such time zone" in wrong.output
    assert len(wrong.output.strip().splitlines()) == 1


async def test_the_table_and_detail_show_ist_on_a_utc_server(
    db: tuple[Path, datetime],
) -> None:
    path, moment = db
    store = Store.open(str(path))
    app = LeadApp(Settings(db=str(path), http_listen="off"), store, capture=False)
    async with app.run_test(size=(120, 30)) as pilot:
        deadline = time.monotonic() + 5
        while not app.table.row_count:
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        row = app.table.get_row_at(0)
        assert f"{moment:%H:%M}" in " ".join(str(cell) for cell in row)
        await pilot.press("enter")
        deadline = time.monotonic() + 5
        while not app.screen.query("#detail-fields"):
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        await pilot.pause(0.2)
        fields = static_text(app, "#detail-fields")
        assert f"{moment:%d %b %Y %H:%M:%S} IST" in fields
        assert "+05:30" not in fields  # one clock time, not two
    store.close()
