"""What the automatic acknowledgement must remember: who opted out, whom it greeted lately,
and how many it sent today.

Kept as ``sync_state`` rows (a key-value table every schema since 1 has), keyed by a hash of
the buyer's phone (its last ten digits) and of their email, so no migration is needed and no
phone number sits in a key:

- ``ack:<hash>``: when this buyer was last acknowledged; a new lead from them within the
  window (48 hours) gets none, whichever channel or product it came by;
- ``optout:<hash>``: the buyer wrote STOP (by WhatsApp or an email reply); never again;
- ``autoreply:<day>:<channel>``: sends that day, for the daily cap.

The first two are written in the capture transaction, with the lead or the message that
caused them (:class:`~leadtui._store.outbox.Outbox` calls these).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from leadtui._store.database import Database
from leadtui._store.health import SourceState

STOP_WORDS = frozenset({"stop", "stop all", "unsubscribe", "opt out", "optout", "stop messages"})
_NOT_WORD = re.compile(r"[^a-z ]+")


def buyer_keys(lead: Mapping[str, Any]) -> list[str]:
    """The buyer's identities: the last ten digits of each phone, and each email."""
    keys = []
    for field in ("phone", "phone_alt"):
        digits = "".join(c for c in str(lead.get(field) or "") if c.isdigit())
        if len(digits) >= 10:
            keys.append(f"tel:{digits[-10:]}")
    for field in ("email", "email_alt"):
        email = str(lead.get(field) or "").strip().lower()
        if "@" in email:
            keys.append(f"mail:{email}")
    return keys


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def is_stop(message: str) -> bool:
    """A message that only says STOP (or unsubscribe, opt out), in any case and punctuation."""
    words = " ".join(_NOT_WORD.sub(" ", message.lower()).split())
    return words in STOP_WORDS


class AutoreplyState:
    """The ``ack:``, ``optout:`` and per-day rows."""

    def __init__(self, database: Database) -> None:
        self._d = database
        self._state = SourceState(database)

    def _get(self, key: str) -> dict[str, Any] | None:
        return self._state.get_state(key)

    def opted_out(self, lead: Mapping[str, Any]) -> bool:
        return any(self._get(f"optout:{_hash(k)}") for k in buyer_keys(lead))

    def greeted_since(self, lead: Mapping[str, Any], since: float) -> bool:
        """Whether this buyer (by any of their phones or emails) was acknowledged since.

        Inside the capture transaction, the buyer's keys are locked first (PostgreSQL), so the
        same buyer captured at the same moment on another connection (IndiaMART's push and its
        email) waits for this answer and sees its ``ack:`` row: one acknowledgement, not two.
        """
        for key in sorted(buyer_keys(lead)):  # one order everywhere: no deadlock
            self._d.backend.lock_key(f"ack:{_hash(key)}")
        for key in buyer_keys(lead):
            row = self._get(f"ack:{_hash(key)}")
            if row and float(row.get("ts", 0)) >= since:
                return True
        return False

    def greet_txn(self, lead: Mapping[str, Any], now: float) -> None:
        for key in buyer_keys(lead):
            self._state.set_state_txn(f"ack:{_hash(key)}", {"ts": now})

    def opt_out_txn(self, lead: Mapping[str, Any], via: str, now: float) -> None:
        for key in buyer_keys(lead):
            self._state.set_state_txn(f"optout:{_hash(key)}", {"ts": now, "via": via})

    def note_stops_txn(self, leads: Iterable[tuple[Mapping[str, Any], str]], now: float) -> None:
        """Opt out the buyers of these (lead, channel) pairs: they wrote STOP."""
        for lead, via in leads:
            self.opt_out_txn(lead, via, now)

    def sent_on(self, day: str, channel: str) -> int:
        row = self._get(f"autoreply:{day}:{channel}")
        return int(row.get("sent", 0)) if row else 0

    def count_sent_txn(self, day: str, channel: str) -> None:
        """One more acknowledgement on ``channel`` today, inside the caller's transaction."""
        sent = self.sent_on(day, channel)
        self._state.set_state_txn(f"autoreply:{day}:{channel}", {"sent": sent + 1})


def received_ts(lead: Mapping[str, Any]) -> float | None:
    """When the buyer enquired (the lead's ``received_at``), as a Unix time; None unknown."""
    text = str(lead.get("received_at") or "")
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
