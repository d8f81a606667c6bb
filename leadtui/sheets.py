"""Spreadsheet files as an import source: a CSV or an Excel workbook → its sheets of rows.

Sellers' sheets come out of Excel, Google Sheets and LibreOffice in every encoding Excel
writes (UTF-8 with or without a BOM, Windows-1252, UTF-16 "Unicode text"), with commas,
semicolons (European locales) or tabs between cells, sometimes a title row above the
headers. This module finds the header row and pairs each data row's cells with their headers;
:mod:`leadtui.importing` makes each row a raw item, and :mod:`leadtui.formats.spreadsheet`
reads it into a lead. Bytes in, rows out: the file was read (with its limits) by the importer.

Nothing in a cell is evaluated: a workbook is opened with ``data_only=True``, so a formula
gives the value Excel last saved for it, and a CSV cell starting with ``=`` is text.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from leadtui.formats.spreadsheet import Cell, cell_text, reads_contact

CSV_SUFFIXES = frozenset({".csv", ".tsv"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
SUFFIXES = CSV_SUFFIXES | XLSX_SUFFIXES
# Formats openpyxl does not read: the user is told how to save the file instead.
UNREADABLE = {".xls": "Excel 97-2003", ".ods": "OpenDocument", ".numbers": "Numbers"}
MAX_ROWS = 100_000  # per sheet; a seller's lead sheet is far smaller, a bigger one is split
MAX_COLUMNS = 200
MAX_UNZIPPED = 500 * 1024 * 1024  # an .xlsx is a zip: refuse one that unpacks to more
HEADER_SEARCH = 10  # rows looked through for the header row (titles may sit above it)
_DELIMITERS = (",", ";", "\t")


class SheetError(Exception):
    """A file that cannot be read as a sheet of leads; the text says why and what to do."""


@dataclass(frozen=True)
class Sheet:
    """One table of leads: its headers and its data rows, each with its row number."""

    name: str | None  # the worksheet's name (a workbook); None for a CSV
    headers: tuple[str, ...]
    rows: tuple[tuple[int, tuple[tuple[str, Cell], ...]], ...]  # (row number, (header, cell)…)
    blank: int  # blank rows skipped
    contact: bool  # whether a column is read as a phone or email


def read(data: bytes, suffix: str, mapping: Mapping[str, str]) -> list[Sheet]:
    """The sheets of a file's bytes: a CSV's one sheet, or a workbook's visible worksheets."""
    suffix = suffix.lower()
    if suffix in UNREADABLE:
        raise SheetError(
            f"{UNREADABLE[suffix]} files cannot be read; save the sheet as .xlsx or CSV "
            "(File → Save As) and import that"
        )
    if suffix in XLSX_SUFFIXES:
        return _read_xlsx(data, mapping)
    return [_read_csv(data, mapping, tab=suffix == ".tsv")]


# ---------------------------------------------------------------- CSV


def decode(data: bytes) -> str:
    """A CSV's text in the encoding Excel wrote it in: a BOM says which; UTF-16 without one
    shows as zero bytes between ASCII letters; UTF-8 if it decodes, else Windows-1252."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", "replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    head = data[:400]
    if len(head) >= 4 and head.count(0) * 3 >= len(head):
        even_zeros = head[0::2].count(0) > head[1::2].count(0)
        return data.decode("utf-16-be" if even_zeros else "utf-16-le", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _delimiter(lines: Sequence[str]) -> str:
    """The delimiter that splits the first non-empty line into the most cells (a tie: comma)."""
    first = next((line for line in lines if line.strip()), "")
    counts = {d: len(next(csv.reader([first], delimiter=d), [])) for d in _DELIMITERS}
    return max(_DELIMITERS, key=lambda d: (counts[d], -_DELIMITERS.index(d)))


def _read_csv(data: bytes, mapping: Mapping[str, str], *, tab: bool) -> Sheet:
    text = decode(data).replace("\x00", "")
    first_line, _, rest = text.partition("\n")
    skipped = 0
    if first_line.strip().lower().startswith("sep=") and len(first_line.strip()) == 5:
        delimiter, text, skipped = first_line.strip()[4], rest, 1  # Excel's "sep=;" hint line
    else:
        delimiter = "\t" if tab else _delimiter(text.split("\n", 20)[:20])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def records() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for number, record in enumerate(reader, 1 + skipped):
                yield number, [cell.strip() for cell in record[:MAX_COLUMNS]]
        except csv.Error as exc:
            raise SheetError(f"line {reader.line_num + skipped} cannot be read: {exc}") from None

    return _sheet(None, records(), mapping)


# ---------------------------------------------------------------- XLSX


def _read_xlsx(data: bytes, mapping: Mapping[str, str]) -> list[Sheet]:
    from openpyxl import load_workbook  # noqa: PLC0415 - loaded only when a workbook is read

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise SheetError(
            f"not an Excel .xlsx workbook ({exc}); save it again as .xlsx or CSV"
        ) from None
    if unzipped > MAX_UNZIPPED:
        raise SheetError(f"unpacks to more than {MAX_UNZIPPED >> 20} MB; export it as CSV")
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise SheetError(f"not an Excel workbook leadtui can read ({why}); save it again") from None
    try:
        sheets = []
        for worksheet in workbook.worksheets:
            if worksheet.sheet_state != "visible":
                continue
            worksheet.reset_dimensions()  # some writers record wrong ones; read what is there
            rows = worksheet.iter_rows(values_only=True)
            records = (
                (number, [_cell(v) for v in row[:MAX_COLUMNS]])
                for number, row in enumerate(rows, 1)
            )
            sheets.append(_sheet(str(worksheet.title), records, mapping))
    finally:
        workbook.close()
    return sheets


def _cell(value: Any) -> Cell:
    """A workbook cell as a JSON value: dates as ISO text (as the sheet shows them, no zone)."""
    if value is None or isinstance(value, str | int):
        return value.strip() if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | time):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


# ---------------------------------------------------------------- rows


def _sheet(
    name: str | None, records: Iterator[tuple[int, list[Cell]]], mapping: Mapping[str, str]
) -> Sheet:
    """Find the header row (the first of the top rows with a phone or email column, else the
    first non-empty one) and pair every later row's cells with the headers."""
    head: list[tuple[int, list[Cell]]] = []  # the rows read while looking for the headers
    filled: list[tuple[int, tuple[str, ...]]] = []
    for number, cells in records:
        head.append((number, cells))
        if any(cell_text(c) for c in cells):
            filled.append((number, _headers(cells)))
            if len(filled) >= HEADER_SEARCH:
                break
    at = next((i for i, (_, h) in enumerate(filled) if reads_contact(h, mapping)), 0)
    header_number, headers = filled[at] if filled else (0, ())
    rows: list[tuple[int, tuple[tuple[str, Cell], ...]]] = []
    blank = gap = 0  # blank rows between data rows (trailing ones are not worth a word)
    for number, cells in _chain(head, records):
        if number <= header_number:
            continue
        pairs = tuple(
            (headers[i] if i < len(headers) else f"Column {i + 1}", cell)
            for i, cell in enumerate(cells)
            if cell_text(cell) is not None
        )
        if not pairs:
            gap += 1
            continue
        blank, gap = blank + gap, 0
        if len(rows) >= MAX_ROWS:
            raise SheetError(f"more than {MAX_ROWS:,} rows; split it into smaller files")
        rows.append((number, pairs))
    return Sheet(name, headers, tuple(rows), blank, reads_contact(headers, mapping))


def _headers(cells: Sequence[Cell]) -> tuple[str, ...]:
    return tuple(cell_text(c) or f"Column {i + 1}" for i, c in enumerate(cells))


def _chain(
    first: list[tuple[int, list[Cell]]], rest: Iterator[tuple[int, list[Cell]]]
) -> Iterator[tuple[int, list[Cell]]]:
    yield from first
    yield from rest
