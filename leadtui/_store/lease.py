"""The capture lease: one process at a time captures, on any number of machines.

A holder takes or renews the lease until now + ttl by the database's clock; another process
may take it once it has expired, or at once when the holder is known to be gone: it ran on
this host and its process no longer exists (``kill -9``, a crash, a reboot), so a restarted
``leadtui serve`` does not wait out the dead one's lease. Viewers read who holds it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Any

import peewee

from leadtui._store.database import Database
from leadtui._store.records import LEASE_NAME, LeaseInfo, StoreError

pw: Any = peewee  # untyped, as in models.py

log = logging.getLogger("leadtui.store")


class Lease:
    """The ``lease`` table's one row, named ``capture``."""

    def __init__(self, database: Database) -> None:
        self._d = database

    def take(self, holder: str, ttl: float = 15.0) -> bool:
        """Take or renew the capture lease. True when ``holder`` holds it until now + ttl."""
        host = socket.gethostname()[:200]

        def txn() -> bool:
            lease = self._d.m.Lease
            now = self._d.backend.now()
            lease.insert(name=LEASE_NAME, expires_ts=0).on_conflict_ignore().execute()
            current = (
                lease.select(lease.holder, lease.host, lease.pid)
                .where(lease.name == LEASE_NAME)
                .tuples()
                .first()
            )
            free = (lease.holder == holder) | (lease.expires_ts < now) | lease.holder.is_null()
            if current is not None and _gone(current, holder, host):
                log.info(
                    "capture lease: its holder %s is no longer running; taking over", current[0]
                )
                free = free | (lease.holder == current[0])
            updated = (
                lease.update(
                    holder=holder,
                    host=host,
                    pid=os.getpid(),
                    acquired_ts=pw.Case(None, [(lease.holder == holder, lease.acquired_ts)], now),
                    expires_ts=now + ttl,
                )
                .where((lease.name == LEASE_NAME) & free)
                .execute()
            )
            return bool(updated)

        return self._d.retrying(txn, idempotent=True)  # renewing twice is renewing

    def release(self, holder: str) -> None:
        lease = self._d.m.Lease

        def txn() -> None:
            lease.update(holder=None, expires_ts=0).where(
                (lease.name == LEASE_NAME) & (lease.holder == holder)
            ).execute()

        with contextlib.suppress(StoreError):
            self._d.retrying(txn, idempotent=True)

    def info(self) -> LeaseInfo | None:
        lease = self._d.m.Lease
        row = (
            lease.select(lease.holder, lease.host, lease.pid, lease.acquired_ts, lease.expires_ts)
            .where((lease.name == LEASE_NAME) & lease.holder.is_null(False))
            .tuples()
            .first()
        )
        if row is None or row[4] < self._d.backend.now():
            return None
        return LeaseInfo(*row)


def _gone(current: tuple[Any, ...], me: str, host: str) -> bool:
    """Whether the lease's holder (``(holder, host, pid)``) ran on this host and its process
    has ended. A holder on another host, or whose process still runs, keeps its lease."""
    holder, its_host, pid = current
    if holder is None or holder == me or its_host != host or not pid or pid == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False  # it exists (another user's), or not a pid we can ask about
    return False
