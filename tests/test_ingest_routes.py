"""The ingest's routes are data: the router and the OpenAPI document both come from ROUTES,
and ``leadtui.ingest.check`` says exactly what ``leadtui doctor`` says of the HTTP ingest."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from leadtui import config
from leadtui.cli import main
from leadtui.config import Check
from leadtui.doctor import NAME_WIDTH
from leadtui.ingest import ROUTES, check, openapi_document
from leadtui.ingest.openapi import OPERATIONS, Operation, RouteSchemaMismatch, check_routes
from leadtui.ingest.routes import Ingest
from leadtui.store import Store

# --------------------------------------------------------------------------- ROUTES


def test_the_router_serves_exactly_what_the_document_describes(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        settings = config.load(environ={})
        app = Ingest(settings, store, writer=None, readers=None).app()  # type: ignore[arg-type]
        routed = {
            (r.method.lower(), r.resource.canonical)
            for r in app.router.routes()
            if r.resource is not None and r.method != "HEAD"  # aiohttp adds HEAD to each GET
        }
    finally:
        store.close()
    described = {(m, path) for path, item in openapi_document()["paths"].items() for m in item}
    assert routed == described
    assert len(routed) == len(ROUTES) == len(OPERATIONS)


def test_a_route_without_its_operation_or_the_reverse_is_refused() -> None:
    check_routes(ROUTES)  # as the import of leadtui.ingest.routes did
    with pytest.raises(RouteSchemaMismatch, match="served by 0 routes"):
        check_routes(ROUTES[:-1])  # an operation no route serves
    stray = Operation("stray", "not in OPERATIONS", responses={"200": {"description": "ok"}})
    with pytest.raises(RouteSchemaMismatch, match="'stray' is not in OPERATIONS"):
        check_routes([*ROUTES, dataclasses.replace(ROUTES[0], path="/x", operation=stray)])
    with pytest.raises(RouteSchemaMismatch, match="routed twice"):
        check_routes([*ROUTES, ROUTES[0]])


# --------------------------------------------------------------------------- doctor


def doctor_lines(checks: list[Check]) -> list[str]:
    """The lines ``leadtui doctor`` prints for ``checks`` on a wide terminal."""
    marks = {True: "✓", False: "✗", None: "·"}
    lines: list[str] = []
    for c in checks:
        head = f"{marks[c.ok]} {c.name:<{NAME_WIDTH}} "
        lines.append(head + c.detail)
        if c.fix and c.ok is False:
            lines.append(" " * len(head) + f"→ {c.fix}")
    return lines


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        yield int(blocker.getsockname()[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def doctor_output(db: Path, env: dict[str, str]) -> list[str]:
    result = CliRunner().invoke(
        main, ["--db", str(db), "doctor"], env={**env, "COLUMNS": "400"}, catch_exceptions=False
    )
    return [line.rstrip() for line in result.output.splitlines()]


def same_as_doctor(tmp_path: Path, env: dict[str, str], *, lease: bool = False) -> list[Check]:
    """``check``'s lines, after asserting that ``leadtui doctor`` prints the same ones."""
    db = tmp_path / "leads.db"
    store = Store.open(str(db))
    try:
        if lease:
            assert store.try_lease("another process", ttl=300)
        checks = check(config.load(environ=env), store)
        printed = doctor_output(db, env)
    finally:
        store.close()
    expected = doctor_lines(checks)
    start = printed.index(expected[0])
    assert printed[start : start + len(expected)] == expected
    # The next line is the CRM pull's: nothing of the HTTP ingest is left out.
    assert "crm pull" in printed[start + len(expected)]
    return checks


def named(checks: list[Check]) -> dict[str, Any]:
    return {c.name: (c.ok, c.detail) for c in checks}


def test_doctor_http_off(tmp_path: Path) -> None:
    checks = same_as_doctor(tmp_path, {"LEADTUI_HTTP_LISTEN": "off"})
    assert checks == [Check("http", None, "off (LEADTUI_HTTP_LISTEN=off)")]


def test_doctor_http_listen_address_that_is_not_host_port() -> None:
    # config.load refuses such settings before doctor runs; settings built otherwise can have it.
    settings = config.load(environ={}).replace(http_listen="localhost:http")
    (only,) = check(settings)
    assert (only.name, only.ok) == ("http", False)
    assert "must be host:port" in only.detail
    assert only.fix == "set LEADTUI_HTTP_LISTEN to host:port or off"


def test_doctor_free_port_without_keys_and_a_short_push_token(tmp_path: Path) -> None:
    port = free_port()
    env = {"LEADTUI_HTTP_LISTEN": f"127.0.0.1:{port}", "LEADTUI_PUSH_TOKEN": "abc"}
    checks = same_as_doctor(tmp_path, env)
    assert named(checks)["http"] == (True, f"127.0.0.1:{port} is free for the ingest")
    assert named(checks)["api keys"][0] is None
    push = checks[-1]
    assert (push.name, push.ok) == ("push", False)
    assert "shorter than 16 characters" in push.detail
    assert all("abc" not in c.detail + c.fix for c in checks)  # never the secret


def test_doctor_port_taken_by_another_program(tmp_path: Path, busy_port: int) -> None:
    env = {
        "LEADTUI_HTTP_LISTEN": f"127.0.0.1:{busy_port}",
        "LEADTUI_API_KEYS": "website:ltk_website_key_for_doctor,crm:ltk_crm_key_for_doctor",
        "LEADTUI_PUSH_TOKEN": "x" * 24,
    }
    checks = same_as_doctor(tmp_path, env)
    assert named(checks) == {
        "http": (False, f"127.0.0.1:{busy_port} is in use by another program"),
        "api keys": (True, "website, crm"),
        "push": (True, "on: /api/indiamart/push/<LEADTUI_PUSH_TOKEN>"),
    }


def test_doctor_port_taken_by_the_capturing_process(tmp_path: Path, busy_port: int) -> None:
    env = {"LEADTUI_HTTP_LISTEN": f"127.0.0.1:{busy_port}"}
    checks = same_as_doctor(tmp_path, env, lease=True)
    assert checks[0] == Check(
        "http", True, f"127.0.0.1:{busy_port} in use (by the capturing process)"
    )
    assert check(config.load(environ=env))[0].ok is False  # without the database: not known


def test_the_payload_rules_stay_pure() -> None:
    code = (
        "import sys\n"
        "import leadtui.formats.website_form, leadtui.formats.whatsapp\n"
        "bad = [m for m in ('aiohttp', 'leadtui.store', 'leadtui.ingest', 'leadtui.capture')"
        " if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
