"""Spreadsheet rows (CSV and Excel sheets) → leads: the column names sellers' sheets use, and
how a cell is read.

A seller moving to leadtui brings a sheet whose headers nobody agreed on: ``Customer Name``,
``Mobile No.``, ``E-mail``, ``Firm``, ``Enquiry Date``. :data:`HEADER_ALIASES` names them all
in one table (a new variant is one line here); ``--map "Cell=phone"`` names the rest. A column
read as no field is kept on the lead in ``specs`` under its header, never dropped.

One row is one raw item (:func:`row_item`): its cells as read, with the file, the row number,
the ``--map`` and the time of the import, so the parser here stays pure and a row can be read
again after a fix (``leadtui reparse``). Excel's damage is undone where it can be: phones
turned into numbers (``9.87654321E+09``, ``9876543210.0``), dates as serial numbers. Cells are
text: a formula-like cell (``=``, ``+``, ``-``, ``@``) is kept as written, never evaluated.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from leadtui.formats.generic import parse_generic
from leadtui.formats.results import LEAD_FIELDS, SOURCES, NotUnderstood, Result
from leadtui.formats.text import (
    IST,
    as_text,
    clean_text,
    normalize_email,
    normalize_phone,
    one_line,
)

ROW_KEY = "spreadsheet"  # a raw item of a sheet row is {"spreadsheet": {...}}
SPEC = "spec"  # the --map target that keeps a column on the lead as it is

# The fields a column can be read as (the targets --map accepts): the lead contract's that a
# person types (company through message), plus a first/last name pair, the source and id,
# and the date and its own time column.
_TYPED = LEAD_FIELDS[LEAD_FIELDS.index("company") : LEAD_FIELDS.index("message") + 1]
FIELDS = (
    "name",
    "first_name",
    "last_name",
    *_TYPED,
    "source",
    "external_id",
    "date",
    "time",
    SPEC,
)
_CONTACT = frozenset({"phone", "phone_alt", "email", "email_alt"})


def _aliases(field: str, *headers: str) -> dict[str, str]:
    return {header_key(h): field for h in headers}


def header_key(name: str) -> str:
    """A header as the aliases know it: case-folded, spaces and punctuation removed, so
    ``Mobile No.``, ``mobile_no`` and ``MOBILE NO`` are one name."""
    return re.sub(r"[\W_]+", "", name.casefold())


# Normalised header -> field. Order within a field does not matter; a header is in one field.
HEADER_ALIASES: dict[str, str] = {
    **_aliases("name", "Name", "Customer Name", "Buyer", "Buyer Name", "Client Name", "Full Name"),
    **_aliases("name", "Contact Name", "Contact Person", "Party Name", "Lead Name", "Sender Name"),
    **_aliases("first_name", "First Name"),
    **_aliases("last_name", "Last Name", "Surname"),
    **_aliases("phone", "Mobile", "Mobile No", "Mobile Number", "Mob", "Mob No", "Phone"),
    **_aliases("phone", "Phone No", "Phone Number", "Contact", "Contact No", "Contact Number"),
    **_aliases("phone", "WhatsApp", "WhatsApp No", "WhatsApp Number", "Telephone", "Tel"),
    **_aliases("phone", "Sender Mobile", "Buyer Mobile", "Customer Mobile", "Customer Phone"),
    **_aliases("phone_alt", "Alternate Mobile", "Alternate Number", "Alternate Phone"),
    **_aliases("phone_alt", "Alt Mobile", "Alt Phone", "Mobile 2", "Phone 2", "Other Phone"),
    **_aliases("email", "Email", "E-mail", "Email ID", "Email Address", "Mail", "Mail ID"),
    **_aliases("email", "Sender Email", "Buyer Email", "Customer Email"),
    **_aliases("email_alt", "Alternate Email", "Alt Email", "Email 2"),
    **_aliases("company", "Company", "Company Name", "Firm", "Firm Name", "Organisation"),
    **_aliases("company", "Organization", "Business Name", "Shop Name", "Sender Company"),
    **_aliases("address", "Address", "Full Address", "Sender Address"),
    **_aliases("city", "City", "Location", "Town", "Sender City"),
    **_aliases("state", "State", "Sender State"),
    **_aliases("pincode", "Pincode", "Pin Code", "PIN", "Zip", "Zip Code", "Postal Code"),
    **_aliases("country", "Country"),
    **_aliases("product", "Product", "Product Name", "Item", "Item Name", "Product/Service"),
    **_aliases("product", "Products", "Service", "Product Enquired"),
    **_aliases("category", "Category", "Product Category"),
    **_aliases("quantity", "Quantity", "Qty", "Required Quantity"),
    **_aliases("unit", "Unit", "UOM", "Quantity Unit"),
    **_aliases("order_value", "Order Value", "Budget", "Probable Order Value"),
    **_aliases("requirement_type", "Requirement Type", "Probable Requirement Type"),
    **_aliases("message", "Requirement", "Requirements", "Requirement Details", "Message"),
    **_aliases("message", "Remarks", "Remark", "Enquiry", "Enquiry Details", "Inquiry"),
    **_aliases("message", "Query", "Query Details", "Description", "Details", "Comments"),
    **_aliases("message", "Comment", "Notes", "Buyer Message"),
    **_aliases("source", "Source", "Lead Source"),
    **_aliases("date", "Date", "Enquiry Date", "Inquiry Date", "Lead Date", "Query Date"),
    **_aliases("date", "Date/Time", "Date Time", "Enquiry Date/Time", "Enquiry Time Stamp"),
    **_aliases("date", "Received", "Received On", "Received At", "Created On", "Created At"),
    **_aliases("date", "Created Date", "Timestamp", "Query Time"),
    **_aliases("time", "Time", "Enquiry Time", "Inquiry Time"),
}


# ---------------------------------------------------------------- --map and columns


def parse_map(text: str | None) -> dict[str, str]:
    """``"Customer=name,Cell=phone"`` as ``{header_key: field}``; ValueError says what is wrong."""
    mapping: dict[str, str] = {}
    for piece in (text or "").split(","):
        if not piece.strip():
            continue
        header, sep, field = piece.partition("=")
        field = field.strip().lower()
        field = "date" if field == "received_at" else field
        if not sep or not header_key(header):
            raise ValueError(f"--map {piece.strip()!r} is not COLUMN=field (e.g. Cell=phone)")
        if field not in FIELDS:
            raise ValueError(
                f"--map {piece.strip()!r}: {field!r} is not a lead field; use one of "
                + ", ".join(FIELDS)
            )
        mapping[header_key(header)] = field
    return mapping


def field_of(header: str, mapping: Mapping[str, str]) -> str | None:
    """The field a column is read as: ``--map`` first, then the aliases; None keeps it a spec."""
    key = header_key(header)
    return mapping.get(key) or HEADER_ALIASES.get(key)


def reads_contact(headers: Sequence[str], mapping: Mapping[str, str]) -> bool:
    """Whether a header row has a column read as a phone or an email (a sheet of leads)."""
    return any(field_of(h, mapping) in _CONTACT for h in headers)


def row_label(file: str, sheet: str | None, row: int) -> str:
    """How a row is named to the user: ``leads.csv row 7``, ``leads.xlsx [March] row 7``."""
    return f"{file} [{sheet}] row {row}" if sheet else f"{file} row {row}"


# ---------------------------------------------------------------- the raw item of a row

Cell = str | int | float | None


def row_item(
    *,
    file: str,
    sheet: str | None,
    row: int,
    cells: Sequence[tuple[str, Cell]],
    mapping: Mapping[str, str],
    imported_at: str,
) -> tuple[bytes, str]:
    """The raw item of one row and its dedupe key.

    The key is made of what the row says (headers and cells) and the ``--map`` that reads it,
    not of the file name, the row number or the time: the same row imported again, from a
    renamed file or a sheet with rows added above it, is the same item. A different ``--map``
    reads the row afresh (the way to fix a row that failed for a column read wrongly).
    """
    used = {header_key(h): mapping[header_key(h)] for h, _ in cells if header_key(h) in mapping}
    content = json.dumps([cells, sorted(used.items())], ensure_ascii=False, separators=(",", ":"))
    key = "sheet:" + hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()
    body = {
        ROW_KEY: {
            "file": file,
            "sheet": sheet,
            "row": row,
            "cells": [list(pair) for pair in cells],
            "map": used,
            "imported_at": imported_at,
        }
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "replace"), key


def is_row(obj: Mapping[str, Any]) -> bool:
    return len(obj) == 1 and isinstance(obj.get(ROW_KEY), Mapping)


# ---------------------------------------------------------------- reading a row


def parse_row(obj: Mapping[str, Any], channel: str) -> Result:
    """One row's raw item as a lead: mapped columns to fields, the rest to specs.

    A row nobody can answer (no readable phone or email) and a date that cannot be read go to
    the review queue with the reason, naming the file and row.
    """
    row = obj[ROW_KEY]
    cells, given_map = row.get("cells"), row.get("map") or {}
    if not isinstance(cells, list) or not isinstance(given_map, Mapping):
        raise NotUnderstood("spreadsheet row without its cells")
    mapping = {k: v for k, v in given_map.items() if isinstance(v, str) and v in FIELDS}
    where = row_label(str(row.get("file")), row.get("sheet"), int(row.get("row") or 0))
    fields: dict[str, Any] = {}
    given: dict[str, tuple[str, str]] = {}  # field -> (header, cell text), to keep what fails
    specs: dict[str, str] = {}
    unreachable: list[str] = []  # contact cells that could not be read, for the reason
    for pair in cells:
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        header, value = as_text(pair[0]) or "", pair[1]
        text = cell_text(value)
        if text is None:
            continue
        field = field_of(header, mapping)
        if field in {"phone", "phone_alt"}:
            if not _add_phones(fields, given, specs, (header, value, text)):
                unreachable.append(f"{header} {one_line(text, 40)!r} is not a phone number")
                _add(specs, header, text)
        elif field in {"email", "email_alt"}:
            slot = next((f for f in ("email", "email_alt") if f not in fields), None)
            if (email := normalize_email(text)) is None:
                unreachable.append(f"{header} {one_line(text, 40)!r} is not an email address")
            if email is None or slot is None:
                _add(specs, header, text)
            else:
                fields[slot], given[slot] = email, (header, text)
        elif field in {"date", "time"} and field not in fields:
            fields[field], given[field] = value, (header, text)
        elif field == "source" and text.strip().lower() in SOURCES and field not in fields:
            fields[field] = text.strip().lower()
        elif field in {None, SPEC, "source", "date", "time"} or field in fields:
            _add(specs, header, text)
        else:
            pin = field == "pincode" and _PIN_NUMBER.fullmatch(text)
            fields[field], given[field] = (pin[1] if pin else text), (header, text)
    _name_from_parts(fields)
    fields["received_at"] = _received_at(fields, given, specs, where) or row.get("imported_at")
    fields["specs"] = specs
    lead = parse_generic(fields, channel)
    if not any(lead[k] for k in _CONTACT):
        why = "; ".join(unreachable) or "no phone or email column has a value"
        raise NotUnderstood(f"{where}: no phone or email to reach the buyer ({why})")
    for field, (header, text) in given.items():  # a value the lead could not use stays on it
        if lead.get(field, "") is None and field != "quantity" and (label := clean_text(header)):
            lead["specs"].setdefault(label, clean_text(text))
    return lead


def _add_phones(
    fields: dict[str, Any],
    given: dict[str, tuple[str, str]],
    specs: dict[str, str],
    cell: tuple[str, object, str],
) -> bool:
    """Put a phone cell's numbers in ``phone`` then ``phone_alt``; False if it has none.

    A cell with more numbers than free slots is also kept as a spec, so none is lost.
    """
    header, value, text = cell
    phones = sheet_phones(value)
    new = [p for p in phones if p not in (fields.get("phone"), fields.get("phone_alt"))]
    free = [slot for slot in ("phone", "phone_alt") if slot not in fields]
    for slot, phone in zip(free, new, strict=False):
        fields[slot], given[slot] = phone, (header, text)
    if len(new) > len(free):
        _add(specs, header, text)
    return bool(phones)


def _add(specs: dict[str, str], header: str, text: str) -> None:
    label = header.strip() or "Column"
    specs[label] = f"{specs[label]}, {text}" if label in specs else text


def _name_from_parts(fields: dict[str, Any]) -> None:
    parts = [fields.pop(k) for k in ("first_name", "last_name") if k in fields]
    if parts and "name" not in fields:
        fields["name"] = " ".join(parts)


def _received_at(
    fields: dict[str, Any],
    given: dict[str, tuple[str, str]],
    specs: dict[str, str],
    where: str,
) -> str | None:
    """The row's date (with its Time column) in IST; None for a row without a date."""
    date, time_of_day = fields.pop("date", None), fields.pop("time", None)
    (date_header, date_text), time_cell = given.pop("date", ("", "")), given.pop("time", None)
    if date is None:
        if time_cell is not None:
            _add(specs, *time_cell)
        return None
    when = sheet_time(date, time_of_day)
    if when is None:
        raise NotUnderstood(
            f"{where}: {date_header} {one_line(date_text, 40)!r} is not a date leadtui reads "
            "(DD/MM/YYYY, DD-MM-YYYY, YYYY-MM-DD or 05-Mar-2026, with an optional time); "
            f"correct the cell, or keep the column as text with --map '{date_header}=spec'"
        )
    return when


# ---------------------------------------------------------------- cells


def cell_text(value: object) -> str | None:
    """A cell as text (None when empty): numbers without Excel's ``.0``."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    text = as_text(value)
    return text if text and text.strip() else None


_PIN_NUMBER = re.compile(r"^(\d{6})\.0+$")  # a PIN code Excel made a number: 411045.0
_EXCEL_TEXT = re.compile(r'^="(.*)"$')  # ="09876543210": Excel's way to keep digits as text
_SCIENTIFIC = re.compile(r"^\+?(\d+)(?:\.(\d+))?[eE]\+?(\d{1,2})$")
_POINT_ZERO = re.compile(r"^(\d{6,15})\.0+$")
_SEPARATORS = re.compile(r"\s*(?:[,;/|\n]|\bor\b)\s*", re.IGNORECASE)


def sheet_phones(value: object) -> list[str]:
    """Every phone in a cell, as E.164: Excel's number forms undone, several numbers split.

    ``9.87654321E+09`` and ``9876543210.0`` are 9876543210 (Excel made a number of it and lost
    the leading 0 or +, which FORMATS 2.3 reads without). A number Excel shortened
    (``9.88E+09``, digits replaced by zeros) is not guessed: it gives nothing.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = as_text(value) or ""
    else:
        text = (as_text(value) or "").strip().lstrip("'")
    if match := _EXCEL_TEXT.match(text):
        text = match[1]
    text = _digits_of_number(text) or text
    phones: list[str] = []
    for piece in _SEPARATORS.split(text)[:8]:
        phone = normalize_phone(_digits_of_number(piece) or piece)
        if phone and phone not in phones:
            phones.append(phone)
    return phones


def _digits_of_number(text: str) -> str | None:
    """The digits of a phone Excel wrote as a number, or None if it is not one of those."""
    if match := _POINT_ZERO.match(text):
        return match[1]
    match = _SCIENTIFIC.match(text)
    if match is None:
        return None
    try:
        number = Decimal(f"{match[1]}.{match[2] or '0'}e{match[3]}")
    except InvalidOperation:
        return None
    if number != number.to_integral_value():
        return None
    digits = str(int(number))
    significant = len((match[1] + (match[2] or "")).lstrip("0").rstrip("0"))
    # Excel drops only trailing zeros of the number itself; more missing digits were rounded.
    if len(digits) - significant > 2 or len(digits) < 10:
        return None
    return digits


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_TIME = r"(?:[ T]+(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:\.\d+)?)?\s*([AaPp])?\.?[Mm]?\.?)?"
_DMY = re.compile(r"(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{4}|\d{2})" + _TIME)
_YMD = re.compile(r"(\d{4})[/\-.](\d{1,2})[/\-.](\d{1,2})" + _TIME + r"(Z|[+-]\d{2}:?\d{2})?")
_D_MON_Y = re.compile(r"(\d{1,2})[\- ]([A-Za-z]{3,9}),?[\- ](\d{4})" + _TIME)
_ONLY_TIME = re.compile(r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?\s*([AaPp])?\.?[Mm]?\.?")
_EXCEL_EPOCH = datetime(1899, 12, 30)  # serial 1 is 1900-01-01, past Excel's 1900 leap bug
_SERIALS = (20_000, 80_000)  # 1954 to 2119: a number outside is not a lead's date


def sheet_time(value: object, time_of_day: object = None) -> str | None:
    """A sheet's date (and a separate time cell) as ISO-8601 in IST; None if unreadable.

    Indian sheets write the day first: ``05/03/2026`` is the 5th of March. Also read:
    ``YYYY-MM-DD`` (with ``T``, and a zone if given), ``05-Mar-2026``, an optional time with
    AM/PM, and Excel's serial day numbers (``46086.5``), in a cell or as text.
    """
    text = (as_text(value) or "").strip()
    when: datetime | None
    if (serial := _serial(value if isinstance(value, int | float) else text)) is not None:
        when = serial
    elif match := _DMY.fullmatch(text):
        year = int(match[3]) + (2000 if len(match[3]) == 2 else 0)
        when = _local(year, int(match[2]), int(match[1]), *match.groups()[3:7])
    elif match := _YMD.fullmatch(text):
        when = _local(int(match[1]), int(match[2]), int(match[3]), *match.groups()[3:7])
        if when is not None and match[8]:
            zone = match[8].replace("Z", "+00:00")
            return datetime.fromisoformat(when.isoformat() + zone).isoformat(timespec="seconds")
    elif (match := _D_MON_Y.fullmatch(text)) and match[2][:3].lower() in _MONTHS:
        month = _MONTHS[match[2][:3].lower()]
        when = _local(int(match[3]), month, int(match[1]), *match.groups()[3:7])
    else:
        return None
    if when is None:
        return None
    if time_of_day is not None and when.time() == datetime.min.time():
        when = _with_time(when, time_of_day)
    return when.replace(tzinfo=IST).isoformat(timespec="seconds")


def _serial(value: object) -> datetime | None:
    try:
        number = float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        return None
    if number is None or not _SERIALS[0] <= number < _SERIALS[1]:
        return None
    return _EXCEL_EPOCH + timedelta(seconds=round(number * 86400))


def _local(year: int, month: int, day: int, *clock: str | None) -> datetime | None:
    hour, minute, second, meridiem = (*clock, None, None, None, None)[:4]
    try:
        h = int(hour or 0)
        if meridiem and h <= 12:
            h = (0 if h == 12 else h) + (12 if meridiem.lower() == "p" else 0)
        return datetime(year, month, day, h, int(minute or 0), int(second or 0))
    except (ValueError, TypeError):
        return None


def _with_time(day: datetime, value: object) -> datetime:
    """The day with a separate Time cell's clock: ``10:30``, ``4:12 PM`` or a day fraction."""
    if isinstance(value, float) and 0 <= value < 1:
        return day + timedelta(seconds=round(value * 86400))
    text = (as_text(value) or "").strip()
    match = _ONLY_TIME.fullmatch(text.rpartition("T")[2])
    if match is None:
        return day
    clock = _local(day.year, day.month, day.day, *match.groups())
    return clock or day
