"""Value normalisation shared by every format (FORMATS 2.1-2.5).

Every string that reaches a result passes through :func:`clean_text`; the other functions
here turn one written value (a name, a phone number, an address, a timestamp) into its
contract form or ``None``. None of them raises, whatever the input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_tz
from typing import Any

IST = timezone(timedelta(hours=5, minutes=30))

# ---------------------------------------------------------------- text (2.1)

# The control characters of 2.1 (C0, DEL, C1, bidi controls) are deleted, except the
# whitespace ones (tab, LF, VT, FF, CR, NEL): ``str.split()`` turns those into the single
# spaces of rule 4, so a tab between two words does not glue them together.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]")
# A lone surrogate (half of an emoji cut by a JSON producer, "\\ud83d") cannot be encoded
# as UTF-8: the store, the TUI and the JSON output would fail on it. It becomes U+FFFD.
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str | None, *, multiline: bool = False) -> str | None:
    """Strip control characters and collapse whitespace (FORMATS 2.1 rules 3 and 4).

    A lone surrogate becomes U+FFFD, so every cleaned string can be encoded as UTF-8.

    With ``multiline`` the value keeps its line feeds: each line is collapsed on its own
    and empty lines are dropped (the rule for ``message`` and reply messages). Text is
    data: markup such as ``[bold]`` or ``<script>`` is kept verbatim. Returns ``None``
    for a value that is empty after cleaning.
    """
    if not text:
        return None
    if text.isprintable():  # no controls, no line breaks, no exotic spaces
        if "  " not in text and text[0] != " " and text[-1] != " ":
            return text  # already clean: the common case, since lines are cleaned once
    else:
        text = _SURROGATES.sub("\ufffd", _CONTROLS.sub("", text))
    if multiline:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return "\n".join(kept for line in lines if (kept := " ".join(line.split()))) or None
    return " ".join(text.split()) or None


def clean_lines(text: str) -> list[str]:
    """Text as cleaned, non-empty lines (``clean_text`` per line, in one pass)."""
    text = _SURROGATES.sub("\ufffd", _CONTROLS.sub("", text))
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [kept for line in lines if (kept := " ".join(line.split()))]


def as_text(value: object) -> str | None:
    """A JSON scalar as text: strings as they are, integral numbers without ``.0``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value) if value.bit_length() < 200 else None
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() and abs(value) < 1e18 else repr(value)
    return None


def text_reader(row: Mapping[str, Any]) -> Callable[[str], str | None]:
    """A reader of ``row``'s values as cleaned text (None for a missing or blank one): the
    API rows of every marketplace are read this way."""
    return lambda key: clean_text(as_text(row.get(key)))


def some_keys(row: Mapping[str, Any]) -> str:
    """A few of ``row``'s keys, for an error line that says what did come."""
    return ", ".join(sorted(str(key) for key in list(row)[:8]))


def small_int(text: str | None) -> int | None:
    """``"121"`` → 121; anything but a short run of ASCII digits → None."""
    text = text.strip() if text else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def one_line(text: str, limit: int = 300) -> str:
    """A cleaned, length-bounded single line for error and ignore reasons."""
    line = clean_text(text) or ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ---------------------------------------------------------------- names (2.2)

_PLACEHOLDER_NAMES = frozenset({"buyer", "indiamart buyer"})


def normalize_name(text: str | None) -> str | None:
    """A buyer's name: placeholders become ``None``, ALL-CAPITALS names are title-cased."""
    name = clean_text(text)
    if name is None or name.casefold() in _PLACEHOLDER_NAMES:
        return None
    if name.isupper():
        name = " ".join(word[:1].upper() + word[1:].lower() for word in name.split(" "))
    return name


# ---------------------------------------------------------------- phones (2.3)

_VERIFIED_SUFFIX = re.compile(r"\(\s*verified\s*\)\s*$", re.IGNORECASE)
_PHONE_SHAPE = re.compile(r"\+?[0-9 ().\-/]+")
_NON_DIGITS = re.compile(r"[^0-9]")


def normalize_phone(text: str | None) -> str | None:
    """One written phone number as E.164 (``+919845600066``), or ``None``.

    Masked numbers (any ``X`` or ``*``) and anything that is not one of the shapes of
    FORMATS 2.3 give ``None``: a wrong number is worse than none.
    """
    value = clean_text(text)
    if value is None or len(value) > 60:
        return None
    value = _VERIFIED_SUFFIX.sub("", value).strip()
    if not value or "x" in value or "X" in value or "*" in value:
        return None
    if not _PHONE_SHAPE.fullmatch(value):
        return None
    digits = _NON_DIGITS.sub("", value)
    if value.startswith("+") or digits.startswith("00"):
        if not value.startswith("+"):
            digits = digits[2:]
        if digits.startswith("910") and len(digits) == 13:
            digits = "91" + digits[3:]  # +91 (0) 98450 12345: a trunk 0 after the code
        if digits.startswith("91"):
            return "+" + digits if len(digits) == 12 else None
        return "+" + digits if 8 <= len(digits) <= 15 and digits[0] != "0" else None
    if len(digits) == 10 and digits[0] in "6789":
        return "+91" + digits
    if len(digits) == 11 and digits[0] == "0":
        return "+91" + digits[1:]
    if len(digits) == 12 and digits.startswith("91"):
        return "+" + digits
    return None


_LIST_SEPARATORS = re.compile(r"\s*(?:[,;]|\s/\s|\bor\b)\s*", re.IGNORECASE)


def phones_in(text: str | None) -> list[str]:
    """Every valid number in a field that may list several (``+91-98…, +91-97…``)."""
    if not text:
        return []
    found = [normalize_phone(piece) for piece in _LIST_SEPARATORS.split(text)[:8]]
    return [phone for phone in found if phone]


def first_two(values: Iterable[str | None]) -> tuple[str | None, str | None]:
    """The first value and the next *different* one (``phone``/``phone_alt`` and the like)."""
    first: str | None = None
    for value in values:
        if value is None:
            continue
        if first is None:
            first = value
        elif value != first:
            return first, value
    return first, None


# ---------------------------------------------------------------- emails (2.5)

_EMAIL_SHAPE = re.compile(r"[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[^@\s<>(),;:\"]+")
_RELAY_SUFFIXES = ("@reply.indiamart.com", ".reply.indiamart.com")
_PLACEHOLDER_EMAILS = frozenset({"noreply@noreply.tradeindia.com"})


def normalize_email(text: str | None) -> str | None:
    """The buyer's own address, lower-cased; relays, placeholders and non-addresses: None."""
    value = clean_text(text)
    if value is None or len(value) > 320:
        return None
    value = _VERIFIED_SUFFIX.sub("", value).strip().strip("<>").strip()
    if value[:7].lower() == "mailto:":
        value = value[7:].strip()
    value = value.lower()
    if value == "not provided" or not _EMAIL_SHAPE.fullmatch(value):
        return None
    if value.endswith(_RELAY_SUFFIXES) or value in _PLACEHOLDER_EMAILS:
        return None
    return value


def emails_in(text: str | None) -> list[str]:
    """Every valid address in a field that may list several."""
    if not text:
        return []
    found = [normalize_email(piece) for piece in _LIST_SEPARATORS.split(text)[:8]]
    return [email for email in found if email]


# ---------------------------------------------------------------- times (2.4)

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_ISO_LOCAL = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?")
_DAY_MON_YEAR = re.compile(
    r"(\d{1,2})[- ]([A-Za-z]{3})[A-Za-z]*[- ](\d{4}) ?(\d{1,2}):(\d{2})(?::(\d{2}))?(?: ?([AaPp])\.?[Mm]\.?)?"
)


def _ist(*fields: int) -> str | None:
    """Year, month, day, hour, minute[, second] in IST as ISO-8601; None if no such time."""
    year, month, day, hour, minute, *second = fields
    try:
        seconds = second[0] if second else 0
        return datetime(year, month, day, hour, minute, seconds, tzinfo=IST).isoformat()
    except ValueError:
        return None


def _hour24(hour: int, meridiem: str | None) -> int:
    if not meridiem or hour > 12:
        return hour
    if meridiem.lower() == "a":
        return 0 if hour == 12 else hour
    return hour if hour == 12 else hour + 12


def api_time(text: str | None) -> str | None:
    """An IndiaMART API time (zone-less, IST) as ISO-8601 with ``+05:30``.

    Accepts ``2026-03-02 11:17:14``, ``02-Mar-2026 11:17:14``, ``02-Mar-202611:17:14`` and
    the v1 ``16-Apr-2022 09:33:16 AM``.
    """
    value = clean_text(text)
    if value is None or len(value) > 40:
        return None
    if match := _ISO_LOCAL.fullmatch(value):
        return _ist(*(int(group or 0) for group in match.groups()))
    match = _DAY_MON_YEAR.fullmatch(value)
    if match is None or (month := _MONTHS.get(match[2].lower())) is None:
        return None
    hour = _hour24(int(match[4]), match[7])
    return _ist(int(match[3]), month, int(match[1]), hour, int(match[5]), int(match[6] or 0))


_SUBJECT_TIME = re.compile(
    r"\bon\s+(\d{1,2})-([A-Za-z]{3})-(\d{4})\s+at\s+(\d{1,2}):(\d{2})\s*([AaPp])\.?[Mm]\b"
)


def subject_time(subject: str) -> str | None:
    """The IST time in a phone-enquiry subject: ``on 05-MAR-2026 at 04:12 PM``."""
    match = _SUBJECT_TIME.search(subject)
    if match is None or (month := _MONTHS.get(match[2].lower())) is None:
        return None
    hour = _hour24(int(match[4]), match[6])
    return _ist(int(match[3]), month, int(match[1]), hour, int(match[5]))


def header_time(value: str | None) -> str | None:
    """An RFC 5322 date (a ``Date`` header) as ISO-8601, keeping its own UTC offset."""
    if not value or len(value) > 200:
        return None
    try:
        parsed = parsedate_tz(value)
        if parsed is None:
            return None
        zone = timezone(timedelta(seconds=parsed[9] or 0))
        return datetime(*parsed[:6], tzinfo=zone).isoformat()
    except (ValueError, OverflowError, TypeError, IndexError):
        return None
