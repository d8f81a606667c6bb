"""The ``leadtui`` command and its subcommands."""

from __future__ import annotations

import logging
import logging.handlers
import signal
import sys
import threading
from dataclasses import dataclass
from typing import NoReturn

import click

from leadtui import __version__, config
from leadtui.capture import CaptureService, build_factories
from leadtui.store import Store, StoreError, describe_url

log = logging.getLogger("leadtui")

EXIT_FAILED = 1  # some input failed (parse, import)
EXIT_CONFIG = 2  # the configuration is wrong
EXIT_DATABASE = 3  # the database cannot be used


# --------------------------------------------------------------------------- plumbing


@dataclass
class Context:
    config_file: str | None
    db: str | None
    _settings: config.Settings | None = None

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            try:
                self._settings = config.load(self.config_file, overrides={"db": self.db})
            except config.ConfigError as exc:
                fail(str(exc))
        return self._settings


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one line that says what happened and what to do, then exit."""
    click.secho(f"leadtui: {message}", fg="red", err=True)
    sys.exit(code)


def setup_logging(settings: config.Settings, *, stderr: bool = False) -> None:
    """Log to a rotating file in the user state directory; with ``stderr`` also to stderr.

    The TUI never logs to the terminal: it owns the screen.
    """
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = config.log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
        )
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


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="URL",
    help="Database: a file path, sqlite:///path or postgresql://… (env LEADTUI_DB).",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Config file (env LEADTUI_CONFIG; default in the user config directory).",
)
@click.version_option(__version__, "-V", "--version", prog_name="leadtui")
@click.pass_context
def main(ctx: click.Context, db: str | None, config_file: str | None) -> None:
    """leadtui: IndiaMART and TradeIndia leads, live in your terminal.

    Run without a command to open the lead table.
    """
    ctx.obj = Context(config_file=config_file, db=db)
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui)


def open_store(settings: config.Settings) -> Store:
    """Open the configured database or exit with one line that says what to do."""
    try:
        return Store.open(settings.db_url)
    except StoreError as exc:
        fail(str(exc), EXIT_DATABASE)


@main.command()
@pass_ctx
def tui(ctx: Context) -> None:
    """Open the live lead table (the default command)."""
    settings = ctx.settings
    setup_logging(settings)
    open_store(settings).close()
    from leadtui.app import run_tui  # noqa: PLC0415 - Textual loads only for the UI

    sys.exit(run_tui(settings))


@main.command()
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
    sys.exit(code)


@main.command()
@pass_ctx
def serve(ctx: Context) -> None:
    """Capture headless (for systemd): mailbox, HTTP ingest and CRM pull, no UI.

    Logs go to stderr and the log file. Stops cleanly on SIGTERM or SIGINT.
    Exit codes: 0 stopped by a signal, 2 configuration error, 3 database unusable.
    """
    settings = ctx.settings
    setup_logging(settings, stderr=True)
    open_store(settings).close()
    try:
        factories = build_factories(settings)
    except config.ConfigError as exc:
        fail(str(exc))
    if not factories:
        fail(
            "nothing to capture: set LEADTUI_IMAP_HOST and LEADTUI_IMAP_USER, "
            "LEADTUI_HTTP_LISTEN or LEADTUI_INDIAMART_KEY (leadtui doctor checks them)"
        )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    def on_lease(held: bool) -> None:
        if held:
            log.info("capturing into %s", describe_url(settings.db_url))
        else:
            log.info("another process captures into this database; waiting to take over")

    service = CaptureService(settings.db_url, factories, on_lease=on_lease)
    log.info("leadtui %s serve: waiting for the capture lease", __version__)
    service.run(stop)
    log.info("stopped")


@main.command()
def paths() -> None:
    """Show where leadtui keeps its config, data and log."""
    click.echo(f"config file  {config.default_config_path()}")
    click.echo(f"database     {config.default_db_url()}")
    click.echo(f"log file     {config.log_path()}")
