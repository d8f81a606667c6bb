"""Helpers shared by the test modules (import them as ``from helpers import …``)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
IN_CI = os.environ.get("CI", "").lower() == "true"

T = TypeVar("T")


def need(reason: str) -> NoReturn:
    """Skip on a developer machine; fail in CI, where every integration must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def wait_for(
    condition: Callable[[], T], timeout: float = 5.0, interval: float = 0.01, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds.

    This waits for a condition with a deadline; it is not a sleep used as synchronisation.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def static_text(app: Any, selector: str) -> str:
    """The plain text a Static on the app's screen shows (Text, tables and groups alike)."""
    from rich.console import Console
    from textual.widgets import Static

    widget = app.screen.query_one(selector, Static)
    console = Console(width=max(40, widget.size.width), file=io.StringIO(), color_system=None)
    with console.capture() as captured:
        console.print(widget.content)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())
