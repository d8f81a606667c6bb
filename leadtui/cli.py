"""The ``leadtui`` command and its subcommands."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import logging.handlers
import os
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from leadtui import __version__, config, importing, sources
from leadtui.capture import CaptureService, Pipeline, parse_item
from leadtui.formats import spreadsheet
from leadtui.store import (
    CONTRACT_FIELDS,
    OUTBOX_STATES,
    STATUSES,
    Lead,
    LeadQuery,
    OutboxItem,
    Store,
    StoreError,
    describe_url,
)
from leadtui.widgets import display

log = logging.getLogger("leadtui")

EXIT_FAILED = 1  # some input failed (parse, import)
EXIT_CONFIG = 2  # the configuration is wrong
EXIT_DATABASE = 3  # the database cannot be used


# --------------------------------------------------------------------------- plumbing


@dataclass
class Context:
    config_file: str | None = None
    db: str | None = None
    _settings: config.Settings | None = None

    def reload_settings(self) -> config.Settings:
        """The settings read again (the config file changed); raises ConfigError."""
        return config.load(self.config_file, overrides={"db": self.db})

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            try:
                self._settings = config.load(self.config_file, overrides={"db": self.db})
            except config.ConfigError as exc:
                fail(str(exc))
            config.use_timezone(self._settings.timezone)
        return self._settings


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line that says what happened and what to do, then exit."""
    click.secho(f"leadtui: {message}", fg="red", err=True)
    sys.exit(code)


class _PrivateLog(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file (the first, and each one a rotation starts) is 0600."""

    def _open(self) -> Any:
        def private(name: str, flags: int) -> int:
            return os.open(name, flags, 0o600)

        return open(
            self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=private
        )


def setup_logging(settings: config.Settings, *, stderr: bool = False) -> None:
    """Log to a rotating file in the user state directory; with ``stderr`` also to stderr.

    The TUI never logs to the terminal: it owns the screen.
    """
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = config.log_path()
    try:
        # The log names buyers: the owner's alone (0700 folder, 0600 files), on a shared server.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handler: logging.Handler = _PrivateLog(
            path, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
        )
        with contextlib.suppress(OSError):
            path.chmod(0o600)  # a log an older leadtui created readable by all
        handler.setFormatter(fmt)
        root.addHandler(handler)
    except OSError as exc:
        if not stderr:
            click.secho(f"leadtui: cannot write the log file {path}: {exc.strerror}", err=True)
    if stderr:
        err = logging.StreamHandler(sys.stderr)
        err.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(err)


pass_ctx = click.make_pass_decorator(Context)
_F = TypeVar("_F", bound=Callable[..., Any])


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Keep a --db / --config value; one given after the subcommand is parsed later, so wins."""
    if value is not None and param.name:
        setattr(ctx.ensure_object(Context), param.name, value)


def common_options(fn: _F) -> _F:
    """``--db`` and ``--config``, taken by ``leadtui`` and by every subcommand alike."""
    fn = click.option(
        "--config",
        "config_file",
        metavar="FILE",
        type=click.Path(dir_okay=False),
        expose_value=False,
        callback=_remember,
        help="Config file (env LEADTUI_CONFIG; default in the user config directory).",
    )(fn)
    return click.option(
        "--db",
        metavar="URL",
        expose_value=False,
        callback=_remember,
        help="Database: a file path, sqlite:///path or postgresql://… (env LEADTUI_DB).",
    )(fn)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(__version__, "-V", "--version", prog_name="leadtui")
@click.pass_context
def main(ctx: click.Context) -> None:
    """leadtui: IndiaMART and TradeIndia leads, live in your terminal.

    Run without a command to open the lead table.
    """
    ctx.ensure_object(Context)
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui)


def open_store(settings: config.Settings) -> Store:
    """Open the configured database or exit with one line that says what to do.

    Only the default database's folder is created: a path the user gave must exist, so a
    typo does not quietly start an empty database somewhere else.
    """
    try:
        return Store.open(settings.db_url, create_folder=not settings.db)
    except StoreError as exc:
        fail(str(exc), EXIT_DATABASE)


def leave(code: int) -> NoReturn:
    """End the TUI's process now that it has given the terminal back and released the lease.

    The interpreter's own teardown (collecting every object the session made, joining idle
    worker threads) added 0.2-0.5 s to a quit that should feel instant; nothing is left for it
    to do: the stores are closed and the log is flushed here.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe must not change the code
            stream.flush()
    logging.shutdown()
    os._exit(code)


@main.command()
@common_options
@pass_ctx
def tui(ctx: Context) -> None:
    """Open the live lead table (the default command)."""
    settings = ctx.settings
    setup_logging(settings)
    open_store(settings).close()
    from leadtui.app import run_tui  # noqa: PLC0415 - Textual loads only for the UI

    leave(run_tui(settings))


@main.command()
@common_options
@click.option("--seed", type=int, default=None, help="Seed the simulated inbox (repeatable demo).")
@pass_ctx
def demo(ctx: Context, seed: int | None) -> None:
    """Open leadtui on a throw-away database fed by a simulated inbox."""
    from leadtui import demo as demo_mode  # noqa: PLC0415

    settings, info = demo_mode.prepare(ctx.settings)
    info.seed = seed
    setup_logging(settings)
    try:
        from leadtui.app import run_tui  # noqa: PLC0415 - Textual loads only for the UI

        code = run_tui(settings, demo=info)
    finally:
        info.cleanup()
    if info.http_url:
        click.echo(f"demo over; its database {info.db_url} was removed")
    leave(code)


@main.command()
@common_options
@pass_ctx
def serve(ctx: Context) -> None:
    """Capture headless (for systemd): mailbox, HTTP ingest and CRM pull, no UI.

    Logs go to stderr and the log file. Stops cleanly on SIGTERM or SIGINT.
    Exit codes: 0 stopped by a signal, 2 configuration error, 3 database unusable.
    """
    settings = ctx.settings
    setup_logging(settings, stderr=True)
    if not settings.names_a_source:
        fail(
            "nothing to capture: set LEADTUI_IMAP_HOST and LEADTUI_IMAP_USER (mailbox), "
            "LEADTUI_API_KEYS or LEADTUI_PUSH_TOKEN (HTTP ingest), LEADTUI_INDIAMART_KEY "
            "or LEADTUI_GMAIL_ENABLE (leadtui doctor checks them)"
        )
    if settings.imap_credentials_missing:
        problem, fix = sources.no_password(settings)
        if not (settings.http_accepts or settings.indiamart_key or settings.gmail_enabled):
            fail(f"{problem}: {fix}")
        # The other channels keep capturing; the mailbox shows "login failed" (and /healthz
        # "degraded") until the password is set.
        log.error("%s: %s; capturing from the other sources meanwhile", problem, fix)
    open_store(settings).close()
    try:
        factories = sources.factories(settings)
    except config.ConfigError as exc:
        fail(str(exc))
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    def on_lease(held: bool) -> None:
        if held:
            log.info("capturing into %s", describe_url(settings.db_url))
        elif stop.is_set():
            log.info("released the capture lease")
        else:
            log.info("another process captures into this database; waiting to take over")

    service = CaptureService(
        settings.db_url,
        factories,
        on_lease=on_lease,
        routes=sources.outbox_routes(settings),
        own_addresses=settings.own_addresses,
    )
    watch = sources.SettingsWatch(settings, ctx.reload_settings)

    def follow_the_config() -> None:  # a fixed password or key is used at once
        while not stop.wait(2.0):
            fresh = watch.changed()
            if fresh is not None:
                log.info("the config file changed: starting the sources again with it")
                service.restart_sources(
                    sources.factories(fresh, on_error=_log_skipped), sources.outbox_routes(fresh)
                )

    threading.Thread(target=follow_the_config, name="config-watch", daemon=True).start()
    log.info("leadtui %s serve: waiting for the capture lease", __version__)
    service.run(stop)
    log.info("stopped")


def _log_skipped(spec: sources.SourceSpec, exc: Exception) -> None:
    log.error("the %s source cannot start: %s", spec.name, str(exc).splitlines()[0])


@main.command()
@common_options
@pass_ctx
def paths(ctx: Context) -> None:
    """Show the config file, database and log in use (after --config, --db and LEADTUI_*)."""
    path, explicit = config.config_file_path(ctx.config_file)
    missing = not (explicit or path.exists())  # a named file that is missing fails below
    note = "  (none yet; optional: leadtui init writes one)" if missing else ""
    click.echo(f"config file  {path}{note}")
    click.echo(f"database     {describe_url(ctx.settings.db_url)}")
    click.echo(f"log file     {config.log_path()}")


# --------------------------------------------------------------------------- parse


def _print_result(console: Console, path: str, result: dict[str, Any]) -> None:
    kind = result.get("kind")
    colour = {"lead": "green", "reply": "cyan", "ignored": "yellow"}.get(str(kind), "red")
    title = Text.assemble((str(kind).upper(), f"bold {colour}"), "  ", (display.clean(path), "dim"))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in result.items():
        if key == "kind" or value in (None, [], {}):
            continue
        if isinstance(value, dict):
            shown = "; ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            shown = "\n".join(str(v) for v in value) if key == "messages" else ", ".join(value)
        else:
            shown = str(value)
        table.add_row(key, Text(shown))  # lead text is data, never markup
    console.print(Panel(table, title=title, title_align="left", border_style=colour))


@main.command()
@common_options
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (JSON Lines).")
@click.option(
    "--channel",
    type=click.Choice(["push", "pull", "api"]),
    help="How a JSON file arrived (default: inferred from its shape).",
)
def parse(files: tuple[str, ...], as_json: bool, channel: str | None) -> None:
    """Parse .eml, .json and mbox files and show what leadtui understands, without a database.

    The answer to "why did this email not become a lead?". Each message of an mbox is shown
    as FILE #N. Exits 1 if any input failed.
    """
    console = Console(highlight=False)
    failed = False
    for name, kind, data in importing.parse_inputs(files):
        results = (
            parse_item(data, kind, channel)
            if isinstance(data, bytes)
            else [{"kind": "error", "error": f"cannot read: {data}"}]
        )
        if not results:
            results = [{"kind": "ignored", "reason": "no leads in this item", "message_id": None}]
        for result in results:
            failed = failed or result.get("kind") == "error"
            if as_json:
                click.echo(json.dumps({**result, "file": name}, ensure_ascii=False))
            else:
                _print_result(console, name, result)
    sys.exit(EXIT_FAILED if failed else 0)


# --------------------------------------------------------------------------- import


@main.command(name="import")
@common_options
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--channel",
    type=click.Choice(["push", "pull", "api"]),
    help="How JSON files arrived (default: inferred from their shape).",
)
@click.option(
    "--map",
    "column_map",
    metavar="COLUMN=field,…",
    help="Read a spreadsheet column as a lead field, e.g. 'Customer=name,Cell=phone'.",
)
@pass_ctx
def import_(
    ctx: Context, paths: tuple[str, ...], channel: str | None, column_map: str | None
) -> None:
    """Import .eml files, mbox files, Maildir folders, JSON payloads and .csv/.xlsx sheets.

    Safe to repeat: importing the same mailbox or sheet twice adds nothing.
    """
    try:
        sheet_map = spreadsheet.parse_map(column_map)
    except ValueError as exc:
        fail(str(exc))
    settings = ctx.settings
    setup_logging(settings)
    store = open_store(settings)
    try:
        inputs = importing.expand(paths, sheet_map)
    except importing.InputError as exc:
        store.close()
        fail(str(exc))
    except OSError as exc:
        store.close()
        fail(f"cannot read {exc.filename or 'an input'}: {exc.strerror or exc}", EXIT_FAILED)
    total = sum(i.count for i in inputs)
    console = Console(stderr=True, highlight=False)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    try:
        # Only a terminal sees a progress bar: in a pipe or a log it would be a stray line.
        quiet = not console.is_terminal
        with Progress(*columns, console=console, transient=True, disable=quiet) as progress:
            task = progress.add_task("importing", total=total)
            tally = importing.import_items(
                Pipeline(store, ctx.settings.own_addresses),
                inputs,
                channel=channel,
                on_input=lambda i: progress.update(
                    task, description=f"importing {Path(i.label).name}"
                ),
                on_batch=lambda n: progress.advance(task, n),
            )
    except StoreError as exc:
        fail(str(exc), EXIT_DATABASE)
    except OSError as exc:  # an input that cannot be read (a folder named x.eml, no permission)
        fail(
            f"cannot read {exc.filename or 'an input'}: {exc.strerror or exc}; fix it and run "
            "the same import again (nothing is doubled)",
            EXIT_FAILED,
        )
    except KeyboardInterrupt:
        console.print("interrupted; run the same import again to finish (nothing is doubled)")
        sys.exit(130)
    finally:
        store.close()
    counts, problems = tally.counts, tally.problems
    _print_sheets(inputs, tally)
    if any(i.rows is None for i in inputs):
        added = f" ({counts['updated']} added details)" if counts["updated"] else ""
        summary = (
            f"{counts['leads']} new lead{'s' if counts['leads'] != 1 else ''}, "
            f"{counts['duplicate'] + counts['updated']} duplicate{added}, "
            f"{counts['reply']} replies, {counts['ignored']} ignored, {counts['failed']} failed"
        )
        click.echo(f"imported {total} item{'s' if total != 1 else ''}: {summary}")
    for line in problems:
        click.echo(f"  {line}")
    if counts["failed"]:
        click.echo("failed items wait in the review queue: leadtui review")
        sys.exit(EXIT_FAILED)


def _print_sheets(inputs: Sequence[importing.Input], tally: importing.Tally) -> None:
    """Each sheet's summary, then every failed row (up to a limit) with its reason: one line
    each, as plain text (cells are the buyer's words, never markup)."""
    for source in inputs:
        if source.rows is None:
            continue
        if source.note:
            click.echo(f"{display.clean(source.label)}: {display.clean(source.note)}")
        n = tally.sheets.get(id(source)) or Counter()
        click.echo(
            f"{display.clean(source.label)}: {n['rows']} row{'s' if n['rows'] != 1 else ''} "
            f"read, {n['new']} new lead{'s' if n['new'] != 1 else ''}, "
            f"{n['known']} already known, {n['failed']} failed"
        )
    for line in tally.failed_rows:
        click.echo(f"  {display.clean(line)}")
    failed = sum(n["failed"] for n in tally.sheets.values())
    if failed > len(tally.failed_rows):
        click.echo(f"  … and {failed - len(tally.failed_rows)} more failed rows")


# --------------------------------------------------------------------------- list / export


def parse_since(text: str | None) -> float | None:
    """'2d', '6h', '30m', 'today', '2026-03-01' or an ISO time, to a timestamp."""
    if not text:
        return None
    value = text.strip().lower()
    now = datetime.now().astimezone()
    if value == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    if value == "yesterday":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        return start.timestamp()
    match = re.fullmatch(r"(\d+)\s*([mhdw])", value)
    if match:
        unit = {"m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        return now.timestamp() - int(match.group(1)) * unit
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time; use 2d, 6h, today or a date like 2026-03-01"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.timestamp()


def _query_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--limit", type=click.IntRange(1), default=None, help="At most N leads.")(fn)
    fn = click.option("--search", metavar="Q", help="Words to find in name, phone, product…")(fn)
    fn = click.option("--since", metavar="T", help="Since 2d, 6h, today or a date.")(fn)
    statuses = click.Choice([*STATUSES, "open"])
    return click.option("--status", type=statuses, help="Only leads with this status.")(fn)


def _iter_leads(store: Store, query: LeadQuery, limit: int | None) -> Iterator[Lead]:
    """All matching leads, newest first, paged so a million rows never sit in memory."""
    remaining = limit
    before: int | None = None
    while remaining is None or remaining > 0:
        page = min(500, remaining) if remaining is not None else 500
        leads = store.list_leads(replace(query, before_id=before, limit=page))
        yield from leads
        if len(leads) < page:
            return
        before = leads[-1].id
        if remaining is not None:
            remaining -= len(leads)


def _when(ts: float) -> str:
    moment = datetime.fromtimestamp(ts)
    if moment.year != datetime.now().year:
        return moment.strftime("%d %b %Y")
    return moment.strftime("%d %b %H:%M")


@main.command(name="list")
@common_options
@_query_options
@click.option("--json", "as_json", is_flag=True, help="JSON Lines with the contract's fields.")
@click.option(
    "--due", "timed", flag_value="due", help="Open follow-ups due later today, soonest first."
)
@click.option(
    "--overdue",
    "timed",
    flag_value="overdue",
    help="Open follow-ups whose time has come, oldest first.",
)
@click.option("--calls", is_flag=True, help="Phone leads nobody has called back, oldest first.")
@click.option("--unread", is_flag=True, help="Only leads with a buyer's message nobody read.")
@pass_ctx
def list_(
    ctx: Context,
    status: str | None,
    since: str | None,
    search: str | None,
    limit: int | None,
    as_json: bool,
    timed: str | None,
    calls: bool,
    unread: bool,
) -> None:
    """List leads, newest first (--due, --overdue, --calls: the ones to act on, soonest first)."""
    store = open_store(ctx.settings)
    query = LeadQuery(
        status=status,
        since_ts=parse_since(since),
        search=search,
        unread=unread,
        calls_to_return=calls,
    )
    if timed:  # for scripts and cron: the follow-ups themselves, by their time
        leads_in: Iterable[Lead] = store.follow_ups(timed, limit=limit or 1000)
    else:
        leads_in = _iter_leads(store, query, limit if as_json else (limit or 50))
        if calls:
            leads_in = reversed(list(leads_in))
    if as_json:
        for lead in leads_in:
            click.echo(json.dumps(store.with_messages([lead])[0], ensure_ascii=False))
        return
    console = Console(highlight=False)
    display.measure_like_terminals()
    leads = list(leads_in)
    if leads:
        console.print(_lead_table(leads, console.width, follow_up=bool(timed)))
    else:
        asked = status or since or search or unread or timed or calls
        console.print("no leads match" if asked else "no leads yet")


# The columns of `leadtui list`, in order. The flexible ones share the width the others leave
# and end in "…" when their text is longer; the others always show in full. On a narrow
# terminal the optional ones give way, first to last, so id and status never do.
_LIST_COLUMNS = ("id", "received", "type", "name", "company", "phone", "product", "city", "status")
_FLEX_RATIOS = {"name": 3, "company": 3, "product": 3, "city": 2}
_FLEX_MIN = 6
_OPTIONAL = ("type", "received", "phone")


def _lead_table(leads: Sequence[Lead], width: int, *, follow_up: bool = False) -> Table:
    """The lead table for a terminal (or a pipe) ``width`` columns wide; with ``follow_up``
    the time column is the follow-up's."""
    rows = [
        {
            "id": str(lead.id),
            "received": display.follow_up(lead) if follow_up else _when(lead.received_ts),
            "type": display.type_label(lead),
            # a buyer's message nobody has opened the lead to read: marked as the TUI marks it
            "name": (display.UNREAD_MARK if lead.unread else "") + (lead.name or ""),
            "company": lead.company or "",
            "phone": lead.phone or "",
            "product": lead.product or "",
            "city": lead.city or "",
            "status": lead.status,
        }
        for lead in leads
    ]
    flexible = ["name", "company", "product", "city"] if width >= 110 else ["name", "product"]
    fixed = {
        c: max(cell_len(c), *(cell_len(row[c]) for row in rows))
        for c in _LIST_COLUMNS
        if c not in _FLEX_RATIOS
    }
    for optional in _OPTIONAL:
        gaps = 2 * (len(fixed) + len(flexible) - 1)
        if sum(fixed.values()) + _FLEX_MIN * len(flexible) + gaps <= width:
            break
        del fixed[optional]
    columns = [c for c in _LIST_COLUMNS if c in fixed or c in flexible]
    table = Table(box=None, header_style="bold", pad_edge=False, expand=True)
    for column in columns:
        if column in fixed:
            justify: JustifyMethod = "right" if column == "id" else "left"
            label = "follow-up" if follow_up and column == "received" else column
            table.add_column(label, justify=justify, no_wrap=True, min_width=fixed[column])
        else:
            table.add_column(column, overflow="ellipsis", no_wrap=True, ratio=_FLEX_RATIOS[column])
    for row in rows:
        table.add_row(*(Text(row[c]) for c in columns))  # lead text is never markup
    return table


EXPORT_COLUMNS = (
    "id",
    *CONTRACT_FIELDS,
    "status",
    "owner",
    "follow_up",
    "first_seen_at",
    "contacted_at",
    "contacted_by",
    "messages",
    "notes",
)


@main.command()
@common_options
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
@_query_options
@pass_ctx
def export(
    ctx: Context,
    fmt: str,
    output: str | None,
    status: str | None,
    since: str | None,
    search: str | None,
    limit: int | None,
) -> None:
    """Export leads as CSV (for a spreadsheet) or JSON Lines."""
    store = open_store(ctx.settings)
    query = LeadQuery(status=status, since_ts=parse_since(since), search=search)
    try:
        target = (
            Path(output).open("w", newline="", encoding="utf-8")  # noqa: SIM115 - closed below
            if output
            else contextlib.nullcontext(sys.stdout)
        )
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}; check -o names a folder you can write")
    count = 0
    try:
        with target as out:
            writer = (
                csv.DictWriter(out, EXPORT_COLUMNS, extrasaction="ignore") if fmt == "csv" else None
            )
            if writer:
                writer.writeheader()
            for lead in _iter_leads(store, query, limit):
                row = store.with_messages([lead])[0]
                texts = store.notes(lead.id) if lead.notes_count else []
                if writer:
                    row["notes"] = " | ".join(texts)
                    row["messages"] = " | ".join(m["text"] for m in row["messages"])
                    row["specs"] = "; ".join(f"{k}: {v}" for k, v in lead.specs.items())
                    row["verified"] = " ".join(lead.verified)
                    writer.writerow({k: _csv_safe(row.get(k)) for k in EXPORT_COLUMNS})
                else:  # "notes" stays the count, as in the API; the texts beside it
                    out.write(json.dumps({**row, "note_texts": texts}, ensure_ascii=False) + "\n")
                count += 1
    except OSError as exc:  # the disk filled up (a closed stdout pipe is click's to handle)
        if not output:
            raise
        fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_FAILED)
    if output:
        click.echo(f"exported {count} lead{'s' if count != 1 else ''} to {output}", err=True)


def _csv_safe(value: Any) -> Any:
    """Keep a spreadsheet from running lead text as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _PHONE.match(value):
        return "'" + value
    return value


_PHONE = re.compile(r"^\+\d{6,15}$")


# --------------------------------------------------------------------------- review


@main.command()
@common_options
@click.option("--limit", type=click.IntRange(1), default=100)
@pass_ctx
def review(ctx: Context, limit: int) -> None:
    """List items that failed to become leads, with the reason."""
    store = open_store(ctx.settings)
    items = store.review_items(limit)
    if not items:
        click.echo("the review queue is empty")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "received", "source", "reason"):
        table.add_column(column, overflow="fold")
    for item in items:
        received = _when(item.received_ts)
        table.add_row(str(item.id), received, Text(item.source), Text(item.error or ""))
    Console(highlight=False).print(table)
    click.echo("fix the cause, then: leadtui reparse ID (or --all)")


@main.command()
@common_options
@click.argument("raw_id", type=int, required=False)
@click.option("--all", "all_", is_flag=True, help="Reparse every item in the review queue.")
@pass_ctx
def reparse(ctx: Context, raw_id: int | None, all_: bool) -> None:
    """Run the current parser again over a kept raw item (or all failed ones)."""
    if (raw_id is None) == (not all_):
        fail("give one item id, or --all")
    store = open_store(ctx.settings)
    pipeline = Pipeline(store, ctx.settings.own_addresses)
    try:
        outcomes = pipeline.reparse_failed() if all_ else [pipeline.reparse(int(raw_id or 0))]
    except StoreError as exc:
        fail(str(exc), EXIT_FAILED)
    for outcome in outcomes:
        detail = f": {outcome.detail}" if outcome.detail else ""
        click.echo(f"item {outcome.raw_id}: {outcome.status}{detail}")
    if not outcomes:
        click.echo("the review queue is empty")
    if any(o.status == "failed" for o in outcomes):
        sys.exit(EXIT_FAILED)


# --------------------------------------------------------------------------- keys and config


@main.group()
@common_options
def keys() -> None:
    """HTTP API keys for website forms and other tools."""


@keys.command(name="add")
@common_options
@click.argument("name")
@click.option(
    "--read",
    "read",
    is_flag=True,
    help="Also let the key read every lead (GET /api/leads), for a CRM or a report.",
)
@click.option(
    "--scope",
    "scope",
    multiple=True,
    type=click.Choice(config.SCOPES),
    help="What the key may do: ingest (add leads) and/or read (read every lead). "
    "Default: ingest only.",
)
@pass_ctx
def keys_add(ctx: Context, name: str, read: bool, scope: tuple[str, ...]) -> None:
    """Create a key called NAME; it is printed once and only its hash is kept.

    A new key may only add leads (POST /api/leads): a website form needs no more. Give
    --read (or --scope read) to a tool that must read the leads back, every buyer's details.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name):
        fail("a key name is 1-40 letters, digits, '.', '_' or '-'")
    scopes = set(scope) or set(config.NEW_KEY_SCOPES)
    if read:
        scopes.add("read")
    path, _ = config.config_file_path(ctx.config_file)
    key = config.new_api_key()
    try:
        config.add_api_key(path, name, config.hash_api_key(key), scopes)
    except config.ConfigError as exc:
        fail(str(exc))
    click.echo(key)
    may = " and ".join(
        {"ingest": "add leads (POST /api/leads)", "read": "read every lead (GET /api/leads)"}[s]
        for s in config.SCOPES
        if s in scopes
    )
    hint = (
        ""
        if "read" in scopes
        else " It cannot read leads; for a tool that must, add one with: "
        "leadtui keys add NAME --read."
    )
    click.echo(
        f"saved the hash of key {name!r} in {path}; the key is shown only now. "
        f"Send it as the x-api-key header. It may {may}.{hint}",
        err=True,
    )


@keys.command(name="list")
@common_options
@pass_ctx
def keys_list(ctx: Context) -> None:
    """Show the names of the configured keys and what each may do (never the keys)."""
    lines = [
        f"{k.name} ({', '.join(s for s in config.SCOPES if s in k.scopes)})"
        for k in ctx.settings.api_keys
    ]
    click.echo("\n".join(lines) if lines else "no API keys; create one with: leadtui keys add NAME")


@keys.command(name="remove")
@common_options
@click.argument("name")
@pass_ctx
def keys_remove(ctx: Context, name: str) -> None:
    """Revoke the key called NAME."""
    path, _ = config.config_file_path(ctx.config_file)
    try:
        removed = config.remove_api_key(path, name)
    except config.ConfigError as exc:
        fail(str(exc))
    if not removed:
        fail(f"no key called {name!r} in {path}", EXIT_FAILED)
    click.echo(f"removed key {name!r}")


@main.command(name="init")
@common_options
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@pass_ctx
def init(ctx: Context, force: bool) -> None:
    """Write a commented config file to fill in."""
    path, _ = config.config_file_path(ctx.config_file)
    if path.exists() and not force:
        fail(f"{path} exists already; edit it, or use --force to start over")
    try:
        config.write_config(path, config.SAMPLE_CONFIG)
    except config.ConfigError as exc:
        fail(str(exc))
    click.echo(f"wrote {path}; fill in your mailbox, then run: leadtui doctor")


# --------------------------------------------------------------------------- doctor


@main.command()
@common_options
@click.option("--timeout", type=float, default=15.0, help="Seconds to wait for the mailbox.")
@pass_ctx
def doctor(ctx: Context, timeout: float) -> None:
    """Check the configuration, database, mailbox and ports, one line each."""
    from leadtui import doctor as checks  # noqa: PLC0415

    failures = checks.run(ctx.settings, timeout, Console(highlight=False))
    sys.exit(EXIT_FAILED if failures else 0)


# --------------------------------------------------------------------------- meta


@main.group()
@common_options
def meta() -> None:
    """Facebook and Instagram lead ads (Meta)."""


@meta.command(name="backfill")
@common_options
@click.option(
    "--days",
    type=click.IntRange(0, 90),
    default=None,
    help="List this many days back instead of from each form's cursor (Meta keeps 90).",
)
@pass_ctx
def meta_backfill(ctx: Context, days: int | None) -> None:
    """Fetch every lead form's leads since the last backfill (leads a webhook missed)."""
    from leadtui.channels import meta_leads  # noqa: PLC0415

    settings = ctx.settings
    store = open_store(settings)
    try:
        report = meta_leads.run_backfill(
            settings, store, days, say=lambda text: click.echo(text, err=True)
        )
    except meta_leads.MetaError as exc:
        fail(str(exc))
    except StoreError as exc:
        fail(str(exc), EXIT_DATABASE)
    finally:
        store.close()
    for line in report.lines():
        click.echo(line)
    if report.error:
        sys.exit(EXIT_FAILED)


# --------------------------------------------------------------------------- pull


@main.command(name="pull")
@common_options
@click.option("--once", is_flag=True, required=True, help="One manual sync, then exit.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M"]),
    help="Pull from this date (IST) instead of the stored cursor.",
)
@click.option(
    "--source",
    "vendor",
    type=click.Choice(["indiamart", "tradeindia", "exportersindia"]),
    default="indiamart",
    show_default=True,
    help="Which marketplace's API to pull.",
)
@pass_ctx
def pull_cmd(ctx: Context, once: bool, since: datetime | None, vendor: str) -> None:
    """Sync leads from IndiaMART's CRM API now (one call per 5 minutes, as IndiaMART allows),
    or from TradeIndia's or ExportersIndia's inquiry API with --source."""
    from leadtui import pull  # noqa: PLC0415

    del once
    settings = ctx.settings
    setup_logging(settings)
    store = open_store(settings)
    say = lambda t: click.echo(t, err=True)  # noqa: E731
    try:
        if vendor == "indiamart":
            report: Any = pull.run_once(settings, store, since, progress=say)
        else:
            from leadtui.channels import exportersindia, tradeindia, vendor_source  # noqa: PLC0415

            module = tradeindia if vendor == "tradeindia" else exportersindia
            day = since.date() if since else None
            report = vendor_source.run_once(module.config(settings), store, day, progress=say)
    except pull.PullError as exc:
        fail(str(exc))
    finally:
        store.close()
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.ok else EXIT_FAILED)


# --------------------------------------------------------------------------- notify / outbox


@main.group()
@common_options
def notify() -> None:
    """Notifications to your phone or another system ([[notify]] in the config file)."""


@notify.command(name="test")
@common_options
@click.argument("target", required=False)
@pass_ctx
def notify_test(ctx: Context, target: str | None) -> None:
    """Send a sample notification to TARGET (default: every target) and print the answer.

    The sample goes straight to the target, not through the outbox; nothing is kept.
    """
    from leadtui import outbox  # noqa: PLC0415

    settings = ctx.settings
    chosen = [t for t in settings.notify if target in (None, t.name)]
    if not chosen:
        names = ", ".join(t.name for t in settings.notify) or "none is configured"
        fail(f"no [[notify]] target called {target!r} (targets: {names})", EXIT_FAILED)
    failed = 0
    for config_target in chosen:
        answer = outbox.send_test(config_target, settings)
        where = outbox.make_target(config_target, settings).describe()
        verdict = "ok" if answer.ok else "FAILED"
        click.echo(f"{config_target.name} ({where}): {verdict}: {answer.detail}")
        failed += not answer.ok
    sys.exit(EXIT_FAILED if failed else 0)


@main.group(name="outbox")
@common_options
def outbox_group() -> None:
    """What leadtui sends out: notifications waiting, sent, and dead letters."""


def _outbox_line(item: OutboxItem) -> str:
    """One row as text. The buyer's name and a receiver's error are untrusted: cleaned of
    terminal control sequences, as on the TUI's review screen."""
    lead = item.payload.get("lead") or {}
    who = display.clean(str(lead.get("name") or lead.get("company") or lead.get("phone") or "?"))
    when = display.full_time(item.created_ts)
    error = display.clean(item.last_error or "")
    tail = f" [{error}]" if error and item.state != "sent" else ""
    title = display.clean(str(item.payload.get("title") or ""))
    about = f"lead #{item.lead_id} {who}" if item.lead_id else title
    return (
        f"{item.id:>6}  {item.state:<7} {item.target:<12} {item.kind:<13} {when}  "
        f"{about}  tries {item.attempts}{tail}"
    )


@outbox_group.command(name="list")
@common_options
@click.option("--state", type=click.Choice(OUTBOX_STATES), help="Only rows in this state.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def outbox_list(ctx: Context, state: str | None, limit: int, as_json: bool) -> None:
    """The newest outbox rows: id, state, target, event, lead, attempts, last error."""
    store = open_store(ctx.settings)
    try:
        items = store.outbox_items(state, limit)
    finally:
        store.close()
    for item in items:
        if as_json:
            row = {
                "id": item.id,
                "event_id": item.event_id,
                "kind": item.kind,
                "target": item.target,
                "lead_id": item.lead_id,
                "state": item.state,
                "attempts": item.attempts,
                "last_error": item.last_error,
                "created_ts": item.created_ts,
                "next_attempt_ts": item.next_attempt_ts,
                "sent_ts": item.sent_ts,
            }
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(_outbox_line(item))
    if not items and not as_json:
        click.echo("the outbox is empty" if state is None else f"no {state} rows")


@outbox_group.command(name="retry")
@common_options
@click.argument("item_id", metavar="ID", type=int)
@pass_ctx
def outbox_retry(ctx: Context, item_id: int) -> None:
    """Deliver the row ID again now (a dead letter, or one backing off)."""
    store = open_store(ctx.settings)
    try:
        done = store.outbox_retry(item_id)
    finally:
        store.close()
    if not done:
        fail(f"no waiting or dead outbox row {item_id} (leadtui outbox list)", EXIT_FAILED)
    click.echo(f"outbox row {item_id} is due now; the capture process delivers it")


@outbox_group.command(name="drop")
@common_options
@click.argument("item_id", metavar="ID", type=int)
@pass_ctx
def outbox_drop(ctx: Context, item_id: int) -> None:
    """Forget the undelivered row ID."""
    store = open_store(ctx.settings)
    try:
        done = store.outbox_drop(item_id)
    finally:
        store.close()
    if not done:
        fail(f"no waiting or dead outbox row {item_id} (leadtui outbox list)", EXIT_FAILED)
    click.echo(f"dropped outbox row {item_id}")
