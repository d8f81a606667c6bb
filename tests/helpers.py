"""Helpers shared by the test modules (import them as ``from helpers import …``)."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from leadtui.capture import Pipeline, SourceFactory
from leadtui.store import Health, Store

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


@dataclass
class Running:
    """A capture source running in its thread, and every health line it reported."""

    source: Any = None
    health: list[Health] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def last(self) -> Health:
        return self.health[-1]

    def states(self) -> list[str]:
        """The states it went through, each run of one state once."""
        out: list[str] = []
        for h in self.health:
            if not out or out[-1] != h.state:
                out.append(h.state)
        return out

    def reached(self, state: str) -> Health | None:
        return next((h for h in reversed(self.health) if h.state == state), None)


@contextmanager
def running_source(
    factory: SourceFactory, db: str, pipeline: type[Pipeline] = Pipeline
) -> Iterator[Running]:
    """Start a source as the capture service would (its own store, a pipeline, a thread);
    stop it at the end, and fail if it does not stop within 5 s."""
    store = Store.open(db)
    run = Running()
    run.source = factory(store, pipeline(store), run.health.append)
    thread = threading.Thread(target=run.source.run, args=(run.stop,), daemon=True)
    thread.start()
    try:
        yield run
    finally:
        run.stop.set()
        thread.join(5)
        store.close()
    assert not thread.is_alive(), "the source did not stop within 5 s"
