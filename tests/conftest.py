"""Shared test fixtures.

Tests that need a real server (PostgreSQL, Dovecot, tmux) call :func:`need` when it is
missing: on a laptop that skips with the reason; in CI (``CI=true``) it fails, because CI
must prove the integration, not skip it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from helpers import need
from smtp_server import Inbox, serving

# Fixture modules that belong to one area each (Dovecot, HTTP servers, …).
pytest_plugins = ["dovecot_fixtures"]


def _pg_base_url() -> str:
    url = os.environ.get("LEADTUI_TEST_PG_URL", "")
    if not url:
        need("PostgreSQL tests need LEADTUI_TEST_PG_URL, e.g. postgresql://postgres@127.0.0.1/test")
    return url


@pytest.fixture(autouse=True)
def _private_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests never read or write the real user's config, data or log directories."""
    home = tmp_path_factory.mktemp("home")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    for name in [n for n in os.environ if n.startswith("LEADTUI_") and n != "LEADTUI_TEST_PG_URL"]:
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _zone_restored() -> Iterator[None]:
    """A command sets the process's time zone (ui.timezone); the next test starts without it."""
    before = os.environ.get("TZ")
    yield
    if os.environ.get("TZ") != before:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = _pg_base_url()
    try:
        import psycopg

        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except Exception as exc:
        need(f"PostgreSQL at LEADTUI_TEST_PG_URL is not reachable: {exc}".splitlines()[0])
    schema = "t_" + uuid.uuid4().hex[:12]
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in base else "?"
        try:
            yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "leads.db")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Every store test runs against SQLite and against the real PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    """A real SMTP server on loopback (tests/smtp_server.py): (controller, inbox)."""
    with serving() as pair:
        yield pair
