"""API keys changed with ``leadtui keys`` take effect in a running ingest, without a restart.

The keys are changed the way a user changes them (the ``leadtui keys`` command on the config
file the server reads) and tried over real HTTP on loopback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import wait_for
from ingest_server import API_KEYS, Server, running

from leadtui import ingest
from leadtui.cli import main
from leadtui.ingest import auth


def keys_command(config_file: Path, *args: str) -> str:
    """``leadtui --config FILE keys …``; its standard output (the new key for ``add``)."""
    result = CliRunner().invoke(main, ["--config", str(config_file), "keys", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def answer_to(server: Server, key: str) -> int:
    return server.request("GET", "/api/leads?limit=1", headers={"x-api-key": key}).status


def test_keys_added_and_removed_work_at_once_and_environment_keys_stay(
    sqlite_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Polling with a key not yet (or no longer) known is a stream of wrong keys: this test is
    # about reloading keys, not about throttling guesses (test_ingest_hardening is).
    monkeypatch.setattr(auth, "FAILURES_PER_MINUTE", 0)
    config_file = tmp_path / "config.toml"
    crm = keys_command(config_file, "add", "crm", "--read")
    with (
        caplog.at_level(logging.INFO, logger="leadtui.ingest"),
        running(sqlite_url, LEADTUI_CONFIG=str(config_file)) as server,
    ):
        assert answer_to(server, crm) == 200
        late = keys_command(config_file, "add", "late", "--read")
        wait_for(lambda: answer_to(server, late) == 200, what="the added key to be accepted")
        keys_command(config_file, "remove", "crm")
        wait_for(lambda: answer_to(server, crm) == 401, what="the removed key to be refused")
        assert answer_to(server, late) == 200
        for key in API_KEYS.values():  # LEADTUI_API_KEYS still apply
            assert answer_to(server, key) == 200
    reloads = [r.getMessage() for r in caplog.records if "API keys" in r.getMessage()]
    assert any("late" in m for m in reloads)  # the operator sees which key came and went
    assert any("crm" in m for m in reloads)
    assert not any(key in caplog.text for key in (crm, late, *API_KEYS.values()))


def _not_toml(path: Path) -> None:
    path.write_text(path.read_text() + "\n[http\n")


def _key_not_a_hash(path: Path) -> None:
    path.write_text(path.read_text().replace('"sha256:', '"plain:'))


def _removed(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("breakage", [_not_toml, _key_not_a_hash, _removed])
def test_a_broken_config_file_keeps_the_keys_with_one_warning(
    sqlite_url: str,
    tmp_path: Path,
    breakage: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(ingest.auth, "KEYS_CHECK_SECONDS", 0.0)  # look at the file every request
    config_file = tmp_path / "config.toml"
    crm = keys_command(config_file, "add", "crm", "--read")
    with running(sqlite_url, LEADTUI_CONFIG=str(config_file)) as server:
        assert answer_to(server, crm) == 200
        with caplog.at_level(logging.WARNING, logger="leadtui.ingest"):
            breakage(config_file)
            for _ in range(3):
                assert answer_to(server, crm) == 200
                assert answer_to(server, API_KEYS["website"]) == 200
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1
        assert str(config_file) in warnings[0].getMessage()
        assert crm not in caplog.text
        # Fixed again: the file's keys are read as they are now.
        config_file.write_text("")
        fresh = keys_command(config_file, "add", "fresh", "--read")
        assert answer_to(server, fresh) == 200
        assert answer_to(server, crm) == 401


def test_the_demo_key_stays_the_only_key_when_the_user_has_a_config_file(tmp_path: Path) -> None:
    from leadtui import demo
    from leadtui.config import load

    config_file = tmp_path / "config.toml"
    keys_command(config_file, "add", "web")
    settings, info = demo.prepare(load(config_file, environ={}).replace(http_listen="off"))
    try:
        ring = ingest.ApiKeyRing(settings, environ={})
        ring.refresh()  # the first look reads a config file that was there at start
        assert [k.name for k in ring.keys] == ["demo"]
    finally:
        info.cleanup()
