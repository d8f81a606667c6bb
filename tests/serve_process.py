"""``leadtui serve`` as systemd runs it: the installed command in a process of its own.

Its stdout and stderr go to files (not pipes, which would fill up), so a test can read what
it logged so far while it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

LEADTUI = str(Path(sys.executable).with_name("leadtui"))


def serve_env(db_url: str, mailbox: Any, **changes: str) -> dict[str, str]:
    """The environment of a ``leadtui serve`` that watches ``mailbox`` over plain IMAP."""
    env = dict(os.environ)
    env.update(
        LEADTUI_DB=db_url,
        LEADTUI_IMAP_HOST=mailbox.host,
        LEADTUI_IMAP_PORT=str(mailbox.server.port),
        LEADTUI_IMAP_USER=mailbox.user,
        LEADTUI_IMAP_PASSWORD=mailbox.password,
        LEADTUI_IMAP_SECURITY="plain",
        LEADTUI_HTTP_LISTEN="off",
    )
    env.update(changes)
    return env


class ServeProcess:
    def __init__(self, env: dict[str, str], directory: Path, name: str) -> None:
        self.stdout_path = directory / f"{name}.stdout"
        self.stderr_path = directory / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [LEADTUI, "serve"], stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 15) -> None:
        """Wait until ``text`` is in its stderr; fail at once if it exits instead."""
        wait_for(
            lambda: text in self.stderr() or self.proc.poll() is not None,
            timeout=timeout,
            what=f"leadtui serve to log {text!r}",
        )
        assert text in self.stderr(), (
            f"leadtui serve exited ({self.proc.returncode}):\n" + (self.stderr()[-3000:])
        )

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Its exit code; fails the test if it is still running after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"leadtui serve did not exit within {timeout}s:\n{self.stderr()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Launcher:
    """Starts ``leadtui serve`` processes (``launcher(env)``); ``close`` kills what is left."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[ServeProcess] = []

    def __call__(self, env: dict[str, str]) -> ServeProcess:
        process = ServeProcess(env, self.directory, f"serve-{len(self.started) + 1}")
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in self.started:
            with contextlib.suppress(Exception):
                process.kill()
