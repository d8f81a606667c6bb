"""``leadtui doctor``: every check a person setting leadtui up needs, one line each.

The configuration and the database are checked here; each source's lines come from the source
registry (:func:`leadtui.sources.checks`), so a new channel brings its own.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import stat
import textwrap
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

from leadtui import config, sources
from leadtui.store import Store, StoreError, current_actor, describe_url, sqlite_file

NAME_WIDTH = len("exportersindia")  # the longest source name: every detail starts in one column


@dataclass
class Doctor:
    """Prints one check a line: a mark, the name, the detail and, for a failure, the fix."""

    console: Console
    failures: int = 0

    def line(self, ok: bool | None, name: str, detail: str, fix: str = "") -> None:
        """One check. A long detail and its fix wrap at spaces, indented under the detail."""
        mark, style = {True: ("✓", "green"), False: ("✗", "red"), None: ("·", "dim")}[ok]
        head = Text.assemble((f"{mark} ", style), (f"{name:<{NAME_WIDTH}}", "bold"), " ")
        indent = len(head)
        wrap = functools.partial(
            textwrap.wrap,
            width=max(self.console.width - indent, 30),
            break_long_words=False,  # a path or a URL stays whole, even when too long
            break_on_hyphens=False,
        )
        lines = [Text(text) for text in wrap(detail) or [""]]
        if fix and ok is False:
            lines += [Text(text, "yellow") for text in wrap(f"→ {fix}", subsequent_indent="  ")]
        for i, text in enumerate(lines):
            self.console.print((head if i == 0 else Text(" " * indent)) + text, soft_wrap=True)
        if ok is False:
            self.failures += 1


def write_problem(path: Path) -> tuple[str, str] | None:
    """Why this user cannot write the SQLite database at ``path``, and the fix; None if it can.

    SQLite writes the file, its -wal and -shm files, and the folder (it creates those there).
    """
    folder = path.parent
    files = (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
    blocked = [p for p in files if p.exists() and not os.access(p, os.W_OK)]
    if not os.access(folder, os.W_OK | os.X_OK):
        blocked.append(folder)
    if not blocked:
        return None
    user = current_actor()
    info = (path if path.exists() else folder).stat()
    group, owner = str(info.st_gid), str(info.st_uid)
    with contextlib.suppress(ImportError, KeyError):
        import grp  # noqa: PLC0415 - POSIX only
        import pwd  # noqa: PLC0415

        group, owner = grp.getgrgid(info.st_gid).gr_name, pwd.getpwuid(info.st_uid).pw_name
    gid = info.st_gid
    steps = []
    closed = [p for p in blocked if not p.stat().st_mode & stat.S_IWGRP]
    if closed:
        names = " ".join(shlex.quote(str(p)) for p in closed)
        steps.append(f"have {owner} (the owner) run: chmod g+w {names}")
    if gid not in {os.getegid(), *os.getgroups()}:
        steps.append(f"run leadtui as a member of group {group} (e.g. usermod -aG {group} {user})")
    if not steps:
        steps.append("check the permissions of " + " ".join(str(p) for p in blocked))
    what = {path: "the file", files[1]: "its -wal file", files[2]: "its -shm file"}
    names = " and ".join(what.get(p, "its folder") for p in blocked)
    return f"{user} cannot write {names}", "; ".join(steps)


def run(settings: config.Settings, timeout: float, console: Console) -> int:
    """Check everything; print a line per check; return the number of failures."""
    doc = Doctor(console)
    path = settings.config_path
    if path:
        doc.line(True, "config", f"{path}")
    else:
        doc.line(None, "config", f"no file (optional): {config.default_config_path()}")
    doc.line(None, "log", str(config.log_path()))
    doc.line(None, "time zone", f"{config.timezone_label()}: times are shown in it (ui.timezone)")

    store: Store | None = None
    file = sqlite_file(settings.db_url)
    problem = write_problem(file) if file is not None and file.parent.is_dir() else None
    missing = file is not None and not file.exists()
    if missing:  # doctor only looks: the first leadtui or leadtui serve creates it
        where = describe_url(settings.db_url)
        doc.line(
            None, "database", f"{where} does not exist yet: leadtui or leadtui serve creates it"
        )
    else:
        try:
            store = Store.open(settings.db_url)
        except StoreError as exc:
            if problem is None:
                doc.line(False, "database", str(exc), "check --db / LEADTUI_DB")
    if problem is not None:
        doc.line(False, "database", f"{describe_url(settings.db_url)}: {problem[0]}", problem[1])
    elif store is not None:
        counts = store.counts()
        total = store.count_leads()
        doc.line(
            True,
            "database",
            f"{describe_url(settings.db_url)} ({store.backend}): {total} leads, "
            f"{counts['awaiting']} awaiting contact, {counts['review']} in review",
        )
        lease = store.lease_info()
        if lease:
            doc.line(True, "capture", f"running in {lease.holder}")
        else:
            doc.line(None, "capture", "no process captures now: start leadtui or leadtui serve")
        for health in store.health():
            ok = not health.failing
            doc.line(ok, health.source, f"{health.state} {health.detail}".strip())

    for check in sources.checks(settings, store, timeout):
        doc.line(check.ok, check.name, check.detail, check.fix)
    if store is not None:
        store.close()
    return doc.failures
