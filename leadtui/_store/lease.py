"""The capture lease: one process at a time captures, on any number of machines.

A holder takes or renews the lease until now + ttl by the database's clock; another process
may take it once it has expired. Viewers read who holds it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import peewee

from leadtui._store.database import Database
from leadtui._store.records import LEASE_NAME, LeaseInfo, StoreError

pw: Any = peewee  # untyped, as in models.py


class Lease:
    """The ``lease`` table's one row, named ``capture``."""

    def __init__(self, database: Database) -> None:
        self._d = database

    def take(self, holder: str, ttl: float = 15.0) -> bool:
        """Take or renew the capture lease. True when ``holder`` holds it until now + ttl."""

        def txn() -> bool:
            lease = self._d.m.Lease
            now = self._d.backend.now()
            lease.insert(name=LEASE_NAME, expires_ts=0).on_conflict_ignore().execute()
            updated = (
                lease.update(
                    holder=holder,
                    host=socket.gethostname()[:200],
                    pid=os.getpid(),
                    acquired_ts=pw.Case(None, [(lease.holder == holder, lease.acquired_ts)], now),
                    expires_ts=now + ttl,
                )
                .where(
                    (lease.name == LEASE_NAME)
                    & ((lease.holder == holder) | (lease.expires_ts < now) | lease.holder.is_null())
                )
                .execute()
            )
            return bool(updated)

        return self._d.retrying(txn)

    def release(self, holder: str) -> None:
        lease = self._d.m.Lease

        def txn() -> None:
            lease.update(holder=None, expires_ts=0).where(
                (lease.name == LEASE_NAME) & (lease.holder == holder)
            ).execute()

        with contextlib.suppress(StoreError):
            self._d.retrying(txn)

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
