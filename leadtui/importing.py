"""Files as a source: .eml files, mbox files, Maildir folders, JSON payloads and spreadsheets
(.csv, .xlsx) to raw items, one per email, payload or sheet row.

``leadtui import`` and ``leadtui parse`` read their inputs here; :func:`import_items` runs them
through the capture pipeline in batches (one commit for the raw items, one for their leads)
while a second process parses the next batch. Safe to repeat: an item imported twice is
recognised, and an import killed half-way finishes when it is run again.
"""

from __future__ import annotations

import errno
import mailbox
import os
import stat
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from leadtui import sheets
from leadtui.capture import Pipeline, RawItem, RawKind, parse_item
from leadtui.formats import spreadsheet
from leadtui.formats.text import IST
from leadtui.store import Outcome

IMPORT_BATCH = 100  # items per pair of commits: fast, and the capture process waits briefly
PARALLEL_PARSE_FROM = 1000  # items; below this a second process costs more than it saves
PROBLEMS_KEPT = 10
FAILED_ROWS_SHOWN = 50  # failed sheet rows listed one per line; the review queue has them all


class InputError(Exception):
    """An input named on the command line does not exist."""


@dataclass(frozen=True)
class Input:
    """One named input: its label, how to read its items, and how many it holds.

    A sheet's input also names each of its items (``leads.csv row 7``), so a failed row is
    reported by its row; ``note`` says what was skipped (blank rows, a sheet with no leads).
    """

    label: str
    items: Callable[[], Iterator[RawItem]]
    count: int
    rows: tuple[str, ...] | None = None
    note: str = ""


Origin = tuple[Input, int]  # the input an item came from, and its place in it


@dataclass
class Tally:
    """What an import did: counts by outcome status, new leads, the first failures; for each
    sheet its rows read, new leads, rows already known and failed rows, with their reasons."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    sheets: dict[int, Counter[str]] = field(default_factory=dict)  # by id() of the Input
    failed_rows: list[str] = field(default_factory=list)


MAX_FILE_BYTES = 50 * 1024 * 1024  # one email or payload; a bigger file is an mbox or a mistake


def read_file(path: Path) -> tuple[RawKind, bytes]:
    """(kind, bytes) of a file given to parse/import: .json files are JSON, the rest email."""
    return ("json" if path.suffix.lower() == ".json" else "email"), read_bytes(path)


def read_bytes(path: Path) -> bytes:
    """The bytes of a file given to parse/import.

    Only regular files, and at most ``MAX_FILE_BYTES``: ``/dev/zero`` or a FIFO named by
    mistake is an error at once, not memory filling up or a wait for ever.
    """
    with open(path, "rb", opener=_no_wait) as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a device or a pipe?)", str(path))
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_FILE_BYTES >> 20} MB", str(path))
    return data


def _no_wait(name: str, flags: int) -> int:
    """Open without blocking (a FIFO would wait for a writer), then read as usual."""
    fd = os.open(name, flags | os.O_NONBLOCK)
    os.set_blocking(fd, True)
    return fd


def is_mbox(path: Path) -> bool:
    try:
        with open(path, "rb", opener=_no_wait) as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return False
            return fh.read(5) == b"From "
    except OSError:
        return False


def parse_inputs(files: Sequence[str]) -> Iterator[tuple[str, RawKind, bytes | OSError]]:
    """(label, kind, bytes or the error reading them) for each file, and each mbox message."""
    for name in files:
        path = Path(name)
        try:
            if is_mbox(path):  # an .eml with a "From " line is an mbox of one: no number
                box = mailbox.mbox(path, factory=None, create=False)
                keys = box.keys()
                for number, key in enumerate(keys, 1):
                    label = f"{name} #{number}" if len(keys) > 1 else name
                    yield label, "email", box.get_bytes(key)
                continue
            kind, data = read_file(path)
        except OSError as exc:
            yield name, "email", exc
            continue
        yield name, kind, data


def _mailbox_input(label: str, box: mailbox.Mailbox[Any]) -> Input:
    keys = list(box.keys())

    def items() -> Iterator[RawItem]:
        for key in keys:
            yield RawItem(box.get_bytes(key), source="import", kind="email")

    return Input(label, items, len(keys))


def _files_input(label: str, paths: list[Path]) -> Input:
    def items() -> Iterator[RawItem]:
        for path in paths:
            kind, data = read_file(path)
            yield RawItem(data, source="import", kind=kind)

    return Input(label, items, len(paths))


def expand(paths: Sequence[str], sheet_map: Mapping[str, str] | None = None) -> list[Input]:
    """Every import input: a Maildir, an mbox, a folder of .eml/.json files, one file, or
    each sheet of a spreadsheet (read with ``sheet_map``, from :func:`spreadsheet.parse_map`).

    Raises :class:`InputError` for a name that does not exist or a sheet that cannot be read
    as leads, ``OSError`` for one that cannot be read.
    """
    inputs: list[Input] = []
    mapping = dict(sheet_map or {})
    imported_at = datetime.now(IST).isoformat(timespec="seconds")
    headers: set[str] = set()
    for name in paths:
        path = Path(name)
        if path.suffix.lower() in sheets.SUFFIXES | sheets.UNREADABLE.keys() and path.is_file():
            inputs += _sheet_inputs(name, path, mapping, imported_at, headers)
        elif path.is_dir():
            if (path / "cur").is_dir() and (path / "new").is_dir():
                inputs.append(
                    _mailbox_input(name, mailbox.Maildir(path, factory=None, create=False))
                )
            else:
                found = sorted(p for p in path.rglob("*") if p.suffix.lower() in {".eml", ".json"})
                inputs.append(_files_input(name, found))
        elif is_mbox(path):
            inputs.append(_mailbox_input(name, mailbox.mbox(path, factory=None, create=False)))
        elif path.exists():
            inputs.append(_files_input(name, [path]))
        else:
            raise InputError(f"{name}: no such file or folder")
    if unused := sorted(set(mapping) - headers):
        raise InputError(f"--map names a column no sheet has: {', '.join(unused)}")
    return inputs


def _sheet_inputs(
    name: str, path: Path, mapping: dict[str, str], imported_at: str, seen: set[str]
) -> list[Input]:
    """An input for each sheet of leads in a spreadsheet; InputError if it has none.

    ``seen`` collects the headers read, so a ``--map`` naming a column no file has is an error.
    """
    try:
        found = sheets.read(read_bytes(path), path.suffix, mapping)
    except sheets.SheetError as exc:
        raise InputError(f"{name}: {exc}") from None
    seen.update(spreadsheet.header_key(h) for s in found for h in s.headers)
    usable = [s for s in found if s.contact]
    if not usable:
        columns = ", ".join(found[0].headers[:12]) if found and found[0].headers else "none"
        raise InputError(
            f"{name}: no column is read as a phone or email (columns: {columns}); "
            "name yours with --map, e.g. --map 'Cell=phone,Customer=name'"
        )
    notes = [f"sheet {s.name!r} skipped (no phone or email column)" for s in found if not s.contact]
    inputs = []
    for sheet in usable:
        if sheet.blank:
            notes.append(f"{sheet.blank} blank row{'s' if sheet.blank != 1 else ''} skipped")
        named = sheet.name if len(found) > 1 else None  # "Sheet1" alone is no news
        inputs.append(
            _sheet_input(
                path.name,
                name=named,
                sheet=sheet,
                mapping=mapping,
                imported_at=imported_at,
                note="; ".join(notes),
            )
        )
        notes = []
    return inputs


def _sheet_input(
    file: str,
    *,
    name: str | None,
    sheet: sheets.Sheet,
    mapping: Mapping[str, str],
    imported_at: str,
    note: str,
) -> Input:
    def items() -> Iterator[RawItem]:
        for number, cells in sheet.rows:
            body, key = spreadsheet.row_item(
                file=file,
                sheet=name,
                row=number,
                cells=cells,
                mapping=mapping,
                imported_at=imported_at,
            )
            yield RawItem(body, source="import", kind="json", channel="api", dedupe_key=key)

    labels = tuple(spreadsheet.row_label(file, name, number) for number, _ in sheet.rows)
    label = f"{file} [{name}]" if name else file
    return Input(label, items, len(sheet.rows), rows=labels, note=note)


def _parse_batch(
    items: list[tuple[bytes, RawKind, str | None]], own: tuple[str, ...] = ()
) -> list[list[dict[str, Any]]]:
    """Parse a batch in the parser process (a top-level function, so it can be sent there)."""
    return [parse_item(body, kind, channel, own) for body, kind, channel in items]


def import_items(
    pipeline: Pipeline,
    inputs: Sequence[Input],
    *,
    channel: str | None = None,
    on_input: Callable[[Input], None] = lambda _i: None,
    on_batch: Callable[[int], None] = lambda _n: None,
) -> Tally:
    """Run every item of ``inputs`` through ``pipeline``; ``on_batch`` hears each stored batch.

    A big import parses in a second process while this one reads and writes: the parser is
    pure, and its results are applied only after the raw items commit, so nothing is lost if
    the import dies. ``channel`` says how JSON items arrived (push, pull, api).
    """
    tally = Tally()
    total = sum(i.count for i in inputs)
    pool = ProcessPoolExecutor(1) if total >= PARALLEL_PARSE_FROM else None
    pending: deque[tuple[list[RawItem], list[Origin], Future[list[Any]] | None]] = deque()

    def store_oldest() -> None:
        # Group commit: one transaction for the batch's raw items, one for its leads.
        batch, origins, parsing = pending.popleft()
        parsed = parsing.result() if parsing is not None else None
        outcomes = pipeline.accept_many(batch, parsed=parsed)
        for outcome, (source, index) in zip(outcomes, origins, strict=True):
            # An item imported again that still fails is a failure, not a duplicate: it is
            # still in the review queue, and the import must say so (and exit 1).
            still_failed = outcome.status == "duplicate" and outcome.earlier == "failed"
            status = "failed" if still_failed else outcome.status
            tally.counts[status] += 1
            tally.counts["leads"] += len(outcome.new_lead_ids)
            if source.rows is not None:
                _count_row(tally, pipeline, (source, index), outcome)
            elif status == "failed" and len(tally.problems) < PROBLEMS_KEPT:
                why = "still in the review queue (leadtui review)" if still_failed else ""
                tally.problems.append(f"item {outcome.raw_id}: {why or outcome.detail}")
        on_batch(len(batch))

    def queue(batch: list[RawItem], origins: list[Origin]) -> None:
        parsing = None
        if pool is not None:
            work = [(i.body, i.kind, i.channel) for i in batch]
            parsing = pool.submit(_parse_batch, work, pipeline.own)
        pending.append((batch, origins, parsing))
        while len(pending) > 2:  # one batch parsing ahead of the one being stored
            store_oldest()

    try:
        batch: list[RawItem] = []
        origins: list[Origin] = []
        for source in inputs:
            on_input(source)
            for index, item in enumerate(source.items()):
                if channel and item.kind == "json" and item.channel is None:
                    item = RawItem(item.body, item.source, item.kind, channel)  # noqa: PLW2901
                batch.append(item)
                origins.append((source, index))
                if len(batch) >= IMPORT_BATCH:
                    queue(batch, origins)
                    batch, origins = [], []
        if batch:
            queue(batch, origins)
        while pending:
            store_oldest()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return tally


def _count_row(tally: Tally, pipeline: Pipeline, origin: Origin, outcome: Outcome) -> None:
    """Count a sheet row's outcome; a failed row is listed as ``row: reason`` (the reason the
    review queue holds, for a row that failed before and was imported again)."""
    source, index = origin
    row = source.rows[index] if source.rows else source.label
    counts = tally.sheets.setdefault(id(source), Counter())
    counts["rows"] += 1
    failed = outcome.status == "failed" or outcome.earlier == "failed"
    if not failed:
        counts["new" if outcome.new_lead_ids else "known"] += 1
        return
    counts["failed"] += 1
    if len(tally.failed_rows) >= FAILED_ROWS_SHOWN:
        return
    reason = outcome.detail
    if outcome.status == "duplicate":
        info = pipeline.store.raw_info(outcome.raw_id)
        earlier = (info.error if info else None) or "failed"
        reason = f"{row}: still in the review queue: {earlier.removeprefix(f'{row}: ')}"
    tally.failed_rows.append(reason if reason.startswith(f"{row}:") else f"{row}: {reason}")
