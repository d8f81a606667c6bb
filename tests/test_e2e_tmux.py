"""The real ``leadtui`` in a real terminal (tmux): what a salesperson on SSH sees and does.

Each test runs its own tmux server (``-L``), so it neither sees nor disturbs other sessions,
and reads the screen with ``capture-pane``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import FIXTURES, need, wait_for

from leadtui.store import LeadQuery, Store, current_actor

pytestmark = pytest.mark.tmux

LEADTUI = Path(sys.executable).with_name("leadtui")
SAMPLE = FIXTURES / "samples" / "email" / "07-buylead-one-line-specs.eml"


class Terminal:
    """One tmux server with one window running a command."""

    def __init__(self, command: list[str], env: dict[str, str], size: tuple[int, int]) -> None:
        self.socket = f"leadtui-test-{uuid.uuid4().hex[:8]}"
        shell = " ".join(_quote(x) for x in command)
        exports = " ".join(f"{k}={_quote(v)}" for k, v in env.items())
        self.tmux(
            "new-session", "-d", "-s", "t", "-x", str(size[0]), "-y", str(size[1]),
            f"env {exports} {shell}; echo leadtui exited $?; sleep 30",
        )  # fmt: skip

    def tmux(self, *args: str) -> str:
        command = ["tmux", "-L", self.socket, *args]
        # A COLUMNS/LINES left in the environment would override the window's real size.
        clean = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
        out = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=10, env=clean
        )
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def wait_for_text(self, text: str, timeout: float = 15.0) -> str:
        last = [""]

        def shown() -> str:
            last[0] = self.screen()
            return last[0] if text in last[0] else ""

        try:
            return wait_for(shown, timeout=timeout, interval=0.05, what=f"{text!r}")
        except pytest.fail.Exception:
            print(f"the screen was:\n{last[0]}")
            raise

    def close(self) -> None:
        command = ["tmux", "-L", self.socket, "kill-server"]
        subprocess.run(command, check=False, capture_output=True, timeout=10)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    if shutil.which("tmux") is None:
        need("tmux is not installed")
    home = tmp_path / "home"
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "LEADTUI_HTTP_LISTEN": "off",
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "USER": current_actor(),
    }


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def test_a_lead_imported_by_another_process_appears_and_c_marks_it_contacted(
    tmp_path: Path, env: dict[str, str], terminals: list[Terminal]
) -> None:
    db = str(tmp_path / "leads.db")
    term = Terminal([str(LEADTUI), "--db", db], env, (120, 40))
    terminals.append(term)
    screen = term.wait_for_text("mailbox: not set up")
    assert "No leads yet" in screen

    subprocess.run(
        [str(LEADTUI), "--db", db, "import", str(SAMPLE)],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    screen = term.wait_for_text("Deepak Sharma")
    row = next(line for line in screen.splitlines() if "Deepak Sharma" in line)
    assert "BuyLead" in row
    assert "+919009800088" in row
    assert "Perforated Bricks" in row
    term.wait_for_text("New BuyLead: Deepak Sharma")  # the toast

    term.keys("c")
    term.wait_for_text(f"contacted by {current_actor()}")

    def contacted() -> bool:
        with Store.open(db) as store:
            return [x.status for x in store.list_leads(LeadQuery())] == ["contacted"]

    wait_for(contacted, timeout=10, what="the lead contacted in the database")

    term.keys("q")
    term.wait_for_text("leadtui exited 0")


def test_keys_sent_in_one_burst_reach_the_prompt_they_follow(
    tmp_path: Path, env: dict[str, str], terminals: list[Terminal]
) -> None:
    db = str(tmp_path / "leads.db")
    subprocess.run(
        [str(LEADTUI), "--db", db, "import", str(SAMPLE)],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    term = Terminal([str(LEADTUI), "--db", db], env, (120, 40))
    terminals.append(term)
    term.wait_for_text("Deepak Sharma")
    term.keys("nsent rates", "Enter")  # one send-keys: one read, as over a slow SSH link

    def notes() -> list[str]:
        with Store.open(db) as store:
            lead = store.list_leads(LeadQuery())[0]
            return [e.detail or "" for e in store.events(lead.id) if e.action == "note"]

    assert wait_for(notes, timeout=10, what="the note in the database") == ["sent rates"]
    assert term.tmux("display", "-p", "-t", "t", "#{pane_title}").strip() == "leadtui"
    term.keys("q")
    term.wait_for_text("leadtui exited 0")
    assert term.tmux("display", "-p", "-t", "t", "#{pane_title}").strip() != "leadtui"


def test_a_name_in_devanagari_keeps_its_row_aligned(
    tmp_path: Path, env: dict[str, str], terminals: list[Terminal]
) -> None:
    db = str(tmp_path / "leads.db")
    for i, name in enumerate(["राजेश वर्मा", "Rajesh Verma"]):
        body = {"name": name, "phone": f"98765{i}3210", "product": "Fly Ash Bricks"}
        (tmp_path / f"{i}.json").write_text(json.dumps(body), encoding="utf-8")
    subprocess.run(
        [str(LEADTUI), "--db", db, "import", str(tmp_path / "0.json"), str(tmp_path / "1.json")],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    term = Terminal([str(LEADTUI), "--db", db], env, (120, 30))
    terminals.append(term)
    screen = term.wait_for_text("Rajesh Verma")
    rows = {
        line: line for line in screen.splitlines() if "+91987650" in line or "+91987651" in line
    }
    columns = [line.index("+9198765") for line in rows]
    assert len(columns) == 2
    # tmux counts the cells the way the terminal draws them: both phones start in one column
    hindi = next(line for line in rows if "+91987650" in line)
    latin = next(line for line in rows if "+91987651" in line)
    assert _cells(hindi[: hindi.index("+91")]) == _cells(latin[: latin.index("+91")])


def _cells(text: str) -> int:
    """Cells as tmux (and glibc's wcwidth) count them: combining marks but Mc take none."""
    return sum(0 if unicodedata.category(c) in {"Mn", "Me", "Cf"} else 1 for c in text)


def test_a_dropped_terminal_ends_the_process_and_releases_the_capture_lease(
    tmp_path: Path, env: dict[str, str], terminals: list[Terminal]
) -> None:
    db = str(tmp_path / "leads.db")
    mailbox = {  # a mailbox that refuses connections: the TUI captures (holds the lease)
        "LEADTUI_IMAP_HOST": "127.0.0.1",
        "LEADTUI_IMAP_PORT": "1",
        "LEADTUI_IMAP_USER": "sales",
        "LEADTUI_IMAP_PASSWORD": "secret",
        "LEADTUI_IMAP_SECURITY": "plain",
    }
    term = Terminal([str(LEADTUI), "--db", db], {**env, **mailbox}, (100, 30))
    terminals.append(term)
    term.wait_for_text("mailbox: reconnecting")

    def holder_pid() -> int | None:
        with Store.open(db) as store:
            lease = store.lease_info()
        return lease.pid if lease else None

    pid = wait_for(holder_pid, timeout=15, what="the TUI to hold the capture lease")
    term.close()  # the SSH session drops: the terminal hangs up (SIGHUP)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout=15, what="the process to end")
    with Store.open(db) as store:
        holders = store.db.execute_sql("SELECT holder FROM lease").fetchall()
    assert holders == [(None,)]  # released on the way out, not left to expire


def test_demo_shows_leads_arriving_with_the_badge_and_the_ingest_url(
    env: dict[str, str], terminals: list[Terminal]
) -> None:
    listening = {**env, "LEADTUI_HTTP_LISTEN": "127.0.0.1:0"}  # any free port
    term = Terminal([str(LEADTUI), "demo", "--seed", "3"], listening, (100, 30))
    terminals.append(term)
    term.wait_for_text(" DEMO ")
    term.wait_for_text("demo API key ltk_")
    term.wait_for_text("HTTP: listening on 127.0.0.1:")
    # The backlog: one toast for all of it, the buyers' replies among it included.
    backlog_toast = re.compile(r"\d+ new leads(, \d+ repl(y|ies))?\. Latest: (New|Reply from) ")
    wait_for(lambda: backlog_toast.search(term.screen()), timeout=15, what="the backlog's toast")

    def new_today() -> int:
        found = re.search(r"new today (\d+)", term.screen())
        return int(found.group(1)) if found else 0

    backlog = wait_for(new_today, timeout=10, what="the header's count")
    wait_for(lambda: new_today() > backlog, timeout=20, interval=0.1, what="a live arrival")
    term.keys("q")
    term.wait_for_text("demo over")
