"""The ``leadtui`` command and its subcommands."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from dataclasses import dataclass
from typing import NoReturn

import click

from leadtui import __version__, config

log = logging.getLogger("leadtui")


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


@main.command()
@pass_ctx
def tui(ctx: Context) -> None:
    """Open the live lead table (the default command)."""
    fail("the lead table is not built yet; see 'leadtui --help' for what works today", 1)


@main.command()
@pass_ctx
def demo(ctx: Context) -> None:
    """Open leadtui on a throw-away database fed by a simulated inbox."""
    fail("the demo is not built yet: the lead table arrives with a later release", 1)


@main.command()
def paths() -> None:
    """Show where leadtui keeps its config, data and log."""
    click.echo(f"config file  {config.default_config_path()}")
    click.echo(f"database     {config.default_db_url()}")
    click.echo(f"log file     {config.log_path()}")
