"""How lead data looks on screen: plain text only, control characters removed, short labels.

Lead text comes from strangers (a buyer's name, an email body), so every string shown goes
through :func:`clean` and into a :class:`rich.text.Text` (never a markup string): ESC, BEL,
the other C0/C1 controls and bidirectional overrides cannot reach the terminal, and ``[bold]``
stays the seven characters a buyer typed.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.cells import cell_len
from rich.text import Text

from leadtui.formats.justdial import do_not_call as dnc_numbers
from leadtui.store import Health, Lead

# C0 controls, DEL, C1 controls, and the Unicode bidi embeddings/overrides/isolates that
# could make a cell display something other than what it contains.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"[ \t\r\n\x0b\x0c\x85\u2028\u2029]+")
_CONTROL_KEEP_LINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

TYPE_LABELS = {"W": "Enquiry", "B": "BuyLead", "P": "Call", "WA": "WhatsApp", "BIZ": "Catalog"}
# For "New BuyLead: …" toasts.
TOAST_LABELS = {
    "W": "enquiry",
    "B": "BuyLead",
    "P": "call",
    "WA": "WhatsApp enquiry",
    "BIZ": "catalog view",
}
SOURCE_LABELS = {
    "indiamart": "IndiaMART",
    "tradeindia": "TradeIndia",
    "exportersindia": "ExportersIndia",
    "website": "Website",
    "whatsapp": "WhatsApp",
    "facebook": "Facebook",
    "justdial": "JustDial",
    "other": "Other",
}
STATUS_STYLES = {
    "new": "bold",
    "contacted": "green",
    "quoted": "cyan",
    "won": "bold green",
    "lost": "dim",
    "spam": "dim red",
}
HEALTH_LABELS = {
    "mailbox": "mailbox",
    "demo": "demo inbox",
    "pull": "IndiaMART pull",
    "justdial": "JustDial",
    "tradeindia": "TradeIndia pull",
    "exportersindia": "ExportersIndia pull",
    "meta leads": "Facebook leads",
    "gmail": "Gmail",
    "notify": "notifications",
}


def clean(value: object, *, lines: bool = False) -> str:
    """``value`` as display text: no control characters; one line unless ``lines``."""
    if value is None:
        return ""
    text = str(value)
    if lines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return _CONTROL_KEEP_LINES.sub("", text.replace("\t", "    "))
    return _CONTROL.sub("", _SPACES.sub(" ", text)).strip()


def plain(value: object, style: str = "", *, lines: bool = False) -> Text:
    """A :class:`Text` of cleaned lead data: never parsed as markup."""
    return Text(clean(value, lines=lines), style=style)


def type_label(lead: Lead) -> str:
    if lead.query_type:
        return TYPE_LABELS.get(lead.query_type, clean(lead.query_type))
    return SOURCE_LABELS.get(lead.source, clean(lead.source).title() or "Other")


def buyer(lead: Lead) -> str:
    return clean(lead.name) or clean(lead.company) or clean(lead.phone) or "unknown buyer"


def do_not_call(lead: Lead, number: str | None) -> bool:
    """Whether ``number`` (one of the lead's phones) is marked do-not-call: JustDial's DNC
    flag, kept in the lead's specs. One dict lookup for a lead without it."""
    return bool(number) and number in dnc_numbers(lead.specs)


DNC_STYLE = "bold red"


def phone_cell(lead: Lead) -> tuple[str, str]:
    """The table's phone cell: the number, or ``DNC 9876543210`` (red) for a do-not-call one.

    The marker goes first and India's +91 goes, so it fits the phone column (16 cells at
    most) without the number being cut.
    """
    phone = clean(lead.phone)
    if not phone or not do_not_call(lead, lead.phone):
        return phone, ""
    national = phone[3:] if phone.startswith("+91") and len(phone) == 13 else phone
    return f"DNC {national}", DNC_STYLE


def quantity(lead: Lead) -> str:
    return " ".join(x for x in (clean(lead.quantity), clean(lead.unit)) if x)


def announce(lead: Lead) -> str:
    """The toast for one new lead: ``New BuyLead: <buyer> — <product>, <city>``."""
    kind = TOAST_LABELS.get(lead.query_type or "", "lead")
    what = ", ".join(x for x in (clean(lead.product), clean(lead.city)) if x)
    return f"New {kind}: {buyer(lead)}" + (f" — {what}" if what else "")


def first_words(text: object, limit: int = 60) -> str:
    """The start of a message for a one-line toast: cleaned, cut at a word, ``…`` if cut."""
    line = clean(text)
    if len(line) <= limit:
        return line
    head = line[: limit + 1]  # one more: a word that ends right at the limit stays whole
    cut = head.rsplit(" ", 1)[0] if " " in head else line[:limit]
    return cut.rstrip(" ,.;:-") + "…"


def announce_reply(lead: Lead, text: str) -> str:
    """The toast for a buyer writing again: ``Reply from <buyer>: “<first words>”``."""
    said = first_words(text)
    return f"Reply from {buyer(lead)}" + (f": “{said}”" if said else "")


UNREAD_MARK = "● "  # before the name of a lead with a message nobody has read


def when(ts: float, now: float) -> str:
    """A short arrival time: ``14:05`` today, ``02 Mar`` this year, ``2025`` before (the
    year alone, so an old lead never reads as a day of this year; detail shows the date)."""
    moment = datetime.fromtimestamp(ts)
    today = datetime.fromtimestamp(now)
    if moment.date() == today.date():
        return moment.strftime("%H:%M")
    if moment.year == today.year:
        return moment.strftime("%d %b")
    return moment.strftime("%Y")


def full_time(ts: float | None) -> str:
    """One exact time, with its zone: ``12 Mar 2026 19:31:02 IST``."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts).astimezone().strftime("%d %b %Y %H:%M:%S %Z")


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%d %b %H:%M")


def ago(ts: float, now: float) -> str:
    seconds = max(0.0, now - ts)
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 86400:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} d ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def follow_up(lead: Lead) -> str:
    """The follow-up as the seller reads it: ``Fri 15 Mar 16:00`` (its day alone before its
    time was known)."""
    if lead.follow_up_ts is None:
        return clean(lead.follow_up)
    return datetime.fromtimestamp(lead.follow_up_ts).strftime("%a %d %b %H:%M")


def last_action(lead: Lead, now: float) -> str:
    """``contacted by asha, 2 min ago`` (what a teammate did last), or ``""``."""
    if not lead.last_action or lead.last_action_ts is None:
        return ""
    verb = {
        "contacted": "contacted",
        "status": f"marked {lead.status}",
        "note": "note added",
        "assign": f"assigned to {clean(lead.owner)}" if lead.owner else "unassigned",
        "follow-up": f"follow-up {follow_up(lead)}" if lead.follow_up else "follow-up cleared",
        "snooze": f"snoozed to {follow_up(lead)}" if lead.follow_up else "follow-up cleared",
        "reply": "buyer replied",
    }.get(lead.last_action, clean(lead.last_action))
    who = clean(lead.last_actor)
    by = f" by {who}" if who and lead.last_action != "reply" else ""
    return f"{verb}{by}, {ago(lead.last_action_ts, now)}"


def whatsapp_url(phone: str | None) -> str | None:
    """``https://wa.me/<digits>`` for a phone number, or None when there is none."""
    digits = re.sub(r"\D", "", phone or "")
    return f"https://wa.me/{digits}" if len(digits) >= 8 else None


def count(value: int, cap: int) -> str:
    return f"{cap:,}+" if value >= cap else f"{value:,}"


def holder(holder_id: str) -> tuple[str, str]:
    """(person, host) of a capture lease's holder ``user@host:pid:tag``: the person named as
    triage actions name them (``asha``), and the machine apart."""
    who = clean(holder_id).split(":")[0]
    person, _, host = who.partition("@")
    return person or who, host


def health_line(h: Health, now: float) -> str:
    """``mailbox: reconnecting in 12 s``, ``HTTP: listening on 127.0.0.1:8765``."""
    source = clean(h.source)
    label = HEALTH_LABELS.get(source, "HTTP" if source.startswith("http") else source)
    state = clean(h.state)
    detail = clean(h.detail)
    if h.next_retry_ts is not None and state in {"reconnecting", "login failed"}:
        left = max(0, round(h.next_retry_ts - now))
        state = (
            f"{state} (retry in {left} s)" if state == "login failed" else f"{state} in {left} s"
        )
    elif state == "listening" and detail:
        state = f"listening on {detail.split(' (')[0].removeprefix('http://')}"
    elif state == "error" and detail:
        state = detail
    elif state == "receiving" and h.last_success_ts is not None:  # a push channel's last lead
        state = f"last lead {ago(h.last_success_ts, now)}"
    elif state == "ready":  # a push channel that has had no lead since capture started
        state = "on, no lead yet"
    elif state == "review":
        state = "last request kept for review"
    return f"{label}: {state}"


# --------------------------------------------------------------------------- Indian scripts


def _spacing_marks_one_cell(widths: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Rich's width table with every spacing combining mark (Unicode Mc) one cell wide."""
    out: list[tuple[int, int, int]] = []
    for start, end, width in widths:
        if width != 0:
            out.append((start, end, width))
            continue
        run_start, run_width = start, 0
        for code in range(start, end + 1):
            w = 1 if unicodedata.category(chr(code)) == "Mc" else 0
            if w != run_width and code > run_start:
                out.append((run_start, code - 1, run_width))
                run_start = code
            run_width = w
        out.append((run_start, end, run_width))
    return out


def cells(text: str) -> int:
    """How many terminal cells ``text`` takes."""
    return cell_len(text)


def measure_like_terminals() -> None:
    """Make Rich (and so Textual) count cells as terminals do for names in Indian scripts.

    A spacing vowel sign such as the ``ा`` in ``राजेश`` (Unicode category Mc) takes a cell in
    glibc's ``wcwidth``, tmux and the usual Linux terminals, but Rich counts it as zero, so a
    row with a Hindi, Tamil or Bengali name drew one to three cells wider than its columns and
    pushed Phone and Status to the right. Called once by the UI before it draws anything.
    """
    import rich.cells  # noqa: PLC0415 - Rich is loaded by now; this only adjusts its table

    cells: Any = rich.cells  # the table loader is Rich's own, not exported
    if getattr(cells, "_leadtui_spacing_marks", False):
        return
    original = cells.load_cell_table

    @functools.lru_cache(maxsize=8)
    def load(unicode_version: str = "auto") -> Any:
        table = original(unicode_version)
        return table._replace(widths=_spacing_marks_one_cell(table.widths))

    cells.load_cell_table = load
    cells._leadtui_spacing_marks = True
    cells.get_character_cell_size.cache_clear()
    cells.cached_cell_len.cache_clear()
