"""How reminders and first-contact limits look: the header's counts, a waiting lead's colour,
a BuyLead's time left.

A new lead nobody has contacted turns amber at half the first-contact limit and red at the
limit (``sla.first_contact``); old mail (an import) has no clock. A BuyLead goes stale
``buylead_valid_hours`` after the buyer posted it (``received_ts``).
"""

from __future__ import annotations

from rich.text import Text

from leadtui.store import Lead
from leadtui.widgets import display

AMBER = "#ffb000"
RED = "bold #ff5f5f"
OLD_MAIL = 86400.0  # as the store's: enquired a day before leadtui saw it, no clock


def sla_style(lead: Lead, now: float, limit: float) -> str:
    """The row's style: amber past half the limit, red past it; "" otherwise or when off."""
    if not limit or lead.status != "new" or lead.contacted_ts is not None:
        return ""
    if lead.received_ts < lead.first_seen_ts - OLD_MAIL:
        return ""
    waited = now - lead.first_seen_ts
    if waited >= limit:
        return RED
    return AMBER if waited >= limit / 2 else ""


def stale_in(lead: Lead, now: float, valid_hours: float) -> float | None:
    """Seconds before a BuyLead goes stale (negative: it has); None for other leads."""
    if lead.query_type != "B" or valid_hours <= 0:
        return None
    return lead.received_ts + valid_hours * 3600 - now


def stale_label(left: float | None) -> str:
    """``31 h left``, ``40 min left`` or ``stale``."""
    if left is None:
        return ""
    if left <= 0:
        return "stale"
    return f"{display.duration(left)} left"


def counts_text(counts: dict[str, int], cap: int) -> Text:
    """``due 3 · overdue 1 · late 2`` (what is zero is left out)."""
    out = Text()
    parts = [
        ("due", counts.get("due", 0), "bold"),
        ("overdue", counts.get("overdue", 0), "bold red"),
        ("late", counts.get("late", 0), "bold red"),
    ]
    for name, n, style in parts:
        if not n:
            continue
        if out:
            out.append(" · ")
        out.append(f"{name} {display.count(n, cap)}", style=style)
    return out
