"""Change waiters: block until another connection may have committed a change.

SQLite: poll ``PRAGMA data_version`` (a few microseconds; it changes when another connection
commits). PostgreSQL: LISTEN to the channel every writer NOTIFYs inside its transaction, and
treat a reconnect as "something changed", so the caller runs its catch-up query.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("leadtui.store")


class ChangeWaiter:
    """Block until another connection may have committed a change. One per thread.

    ``wake``, when given and set, ends a wait early with False: the caller has other work
    (a page the user asked for) and should not sit out the timeout first.
    """

    def wait(self, timeout: float, wake: threading.Event | None = None) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteWaiter(ChangeWaiter):
    POLL = 0.02  # PRAGMA data_version is a few microseconds; 50 looks a second cost nothing

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, timeout=5, check_same_thread=False)
        self._version = self._read()

    def _read(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, timeout: float, wake: threading.Event | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            version = self._read()
            if version != self._version:
                self._version = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if wake is None:
                time.sleep(min(self.POLL, left))
            elif wake.wait(min(self.POLL, left)):
                return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()


class PgWaiter(ChangeWaiter):
    """LISTEN on its own connection; a lost connection (a restart, a failover, a pooler's
    idle timeout) is opened again on the next wait, and that wait says "changed"."""

    def __init__(self, url: str, channel: str, scrub: Callable[[str], str] = str) -> None:
        self._url = url
        self._channel = channel
        self._scrub = scrub  # takes the URL's password out of a driver's message
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> None:
        import psycopg  # noqa: PLC0415 - SQLite users never load the PostgreSQL driver

        named: dict[str, Any] = {}
        if "application_name=" not in self._url:
            named["application_name"] = "leadtui"  # how an administrator tells it apart
        self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10, **named)
        self._conn.execute(f"LISTEN {self._channel}")

    def wait(self, timeout: float, wake: threading.Event | None = None) -> bool:
        # ``wake`` is not watched: LISTEN's wait is on the connection's socket, and the
        # feed's timeout is short enough (live.FEED_WAIT) for a page asked for meanwhile.
        del wake
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._connect()
            except Exception as exc:
                log.warning("change feed: cannot listen on PostgreSQL: %s", self._scrub(str(exc)))
                time.sleep(min(timeout, 1.0))
                return False
            return True  # (re)connected: the caller must catch up
        try:
            got = any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
            if got:
                # Drain what else already arrived (the generator above must be finished
                # first: it holds the connection's lock while it runs).
                for _more in self._conn.notifies(timeout=0.001):
                    pass
                return True
        except Exception as exc:
            log.info(
                "change feed: PostgreSQL connection lost (%s); reconnecting", self._scrub(str(exc))
            )
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            return True
        return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
