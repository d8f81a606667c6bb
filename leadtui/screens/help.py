"""``?``: every key of the screen underneath, its setting name, and where settings live."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from leadtui import config


class HelpScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "app.pop_screen", "Back", id="back", tooltip="Close the help"),
    ]  # fmt: skip

    def __init__(self, under: Screen[Any]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(self._render_help(), id="help-text")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def _render_help(self) -> Group:
        keys = Table(box=None, padding=(0, 2), show_edge=False)
        keys.add_column("key", style="bold", no_wrap=True)
        keys.add_column("does")
        keys.add_column("setting", style="dim", no_wrap=True)
        seen: set[str] = set()
        ours: list[Binding] = []
        builtin: list[Binding] = []
        for active in self.under.active_bindings.values():
            binding = active.binding
            name = binding.id or binding.action
            if binding.system or name in seen or not binding.description:
                continue
            if binding.action in {"command_palette", "app.command_palette"}:  # listed below
                continue
            seen.add(name)
            (ours if binding.id else builtin).append(binding)
        for binding in ours:  # leadtui's keys, remappable by their setting name
            what = binding.tooltip or binding.description
            keys.add_row(self.app.get_key_display(binding), Text(what), binding.id or "")
        keys.add_row("^p", Text("Command palette: every action by name"), "")
        for binding in builtin:  # the table's own movement keys
            keys.add_row(self.app.get_key_display(binding), Text(binding.description), "")
        path = config.default_config_path()
        settings = Text()
        settings.append("\nChange a key", style="bold")
        settings.append(f" in {path} (or the file --config names):\n")
        settings.append('  [ui.keys]\n  contacted = "x"\n  copy-phone = "ctrl+y"\n', style="dim")
        settings.append("\nOther settings", style="bold")
        settings.append(": [ui] bell = false, desktop_notify = true, highlight_seconds = 4.\n")
        settings.append("Check the mailbox and database with:  leadtui doctor\n")
        settings.append("\nEnvironment", style="bold")
        settings.append(" (overrides the file):\n")
        env = Table(box=None, padding=(0, 2), show_header=False, show_edge=False)
        env.add_column(style="bold", no_wrap=True)
        env.add_column(style="dim")
        for name, what in config.environment_help():
            env.add_row(name, what)
        title = Text("Keys", style="bold")
        return Group(title, keys, settings, env)
