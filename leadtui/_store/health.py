"""Source health (what the header and doctor show) and each source's sync state."""

from __future__ import annotations

import json
import time
from typing import Any

from leadtui._store.database import Database
from leadtui._store.records import LEASE_NAME, Health


class SourceState:
    """The ``source_health`` and ``sync_state`` tables."""

    def __init__(self, database: Database) -> None:
        self._d = database

    def set_health(self, health: Health) -> None:
        def txn() -> None:
            sh = self._d.m.SourceHealth
            seq = self._d.next_seq()
            values = {
                "state": health.state,
                "detail": health.detail,
                "last_success_ts": health.last_success_ts,
                "last_error": health.last_error,
                "next_retry_ts": health.next_retry_ts,
                "updated_ts": time.time(),
                "holder": health.holder,
                "seq": seq,
            }
            sh.insert(source=health.source, **values).on_conflict(
                conflict_target=[sh.source], update=values
            ).execute()

        self._d.retrying(txn, idempotent=True)

    def health(self) -> list[Health]:
        """Each source's health, as its capture process last wrote it.

        Health written by a holder of the capture lease shows only while that lease lives: a
        process killed with ``kill -9`` cannot clear what it wrote, and "HTTP listening" from
        it would be a lie once nothing listens.
        """
        live = self._live_holder()
        sh = self._d.m.SourceHealth
        q = sh.select(
            sh.source,
            sh.state,
            sh.detail,
            sh.last_success_ts,
            sh.last_error,
            sh.next_retry_ts,
            sh.updated_ts,
            sh.holder,
        ).order_by(sh.source)
        return [h for h in (Health(*r) for r in q.tuples()) if h.holder in (None, live)]

    def _live_holder(self) -> str | None:
        lease = self._d.m.Lease
        row = (
            lease.select(lease.holder, lease.expires_ts)
            .where((lease.name == LEASE_NAME) & lease.holder.is_null(False))
            .tuples()
            .first()
        )
        if row is None or row[1] < self._d.backend.now():
            return None
        return str(row[0])

    def clear_health(self) -> None:
        """Forget every source's health (the capture process that wrote it is gone)."""

        def txn() -> None:
            self._d.m.SourceHealth.delete().execute()
            self._d.next_seq()

        self._d.retrying(txn, idempotent=True)

    def mailboxes(self) -> list[str]:
        """The mailboxes some process has read into this database (their watermark keys)."""
        st = self._d.m.SyncState
        rows = st.select(st.key).where(st.key.startswith("imap:")).order_by(st.key).limit(20)
        return [r.key.removeprefix("imap:") for r in rows]

    def get_state(self, key: str) -> dict[str, Any] | None:
        st = self._d.m.SyncState
        value = st.select(st.value).where(st.key == key).scalar()
        return None if value is None else dict(json.loads(value))

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        self._d.retrying(lambda: self.set_state_txn(key, value), idempotent=True)

    def set_state_txn(self, key: str, value: dict[str, Any]) -> None:
        """:meth:`set_state` inside the caller's transaction (with what the state is about)."""
        st = self._d.m.SyncState
        text = json.dumps(value, sort_keys=True)
        st.insert(key=key, value=text, updated_ts=time.time()).on_conflict(
            conflict_target=[st.key], update={"value": text, "updated_ts": time.time()}
        ).execute()
