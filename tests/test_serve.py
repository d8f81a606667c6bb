"""``leadtui serve`` as an administrator meets it: systemd starts it, stops it, starts two.

The installed command runs in a process of its own against a real Dovecot and a real
database; a test reads its exit code, its stderr and the database, never its insides.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dovecot_fixtures import Mailbox
from helpers import wait_for
from serve_process import LEADTUI, Launcher, serve_env

from leadtui import parser, synth
from leadtui.store import LeadQuery, Store

pytestmark = pytest.mark.dovecot


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.close()


def lead_mail(seed: int) -> tuple[bytes, str]:
    """A synthetic IndiaMART enquiry and its Message-ID as the lead table shows it."""
    raw = synth.email(random.Random(seed), "enquiry")
    return raw, str(parser.parse(raw)[0]["message_id"])


def message_ids(url: str) -> list[str]:
    with Store.open(url) as store:
        return sorted(lead.message_id or "" for lead in store.list_leads(LeadQuery(limit=1000)))


def mailbox_state(url: str) -> str | None:
    with Store.open(url) as store:
        return next((h.state for h in store.health() if h.source == "mailbox"), None)


def lease_pid(url: str) -> int | None:
    with Store.open(url) as store:
        lease = store.lease_info()
        return lease.pid if lease else None


def test_serve_with_nothing_configured_says_what_to_set_and_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [LEADTUI, "serve"],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
        check=False,
    )

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "LEADTUI_IMAP_HOST" in lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"LEADTUI_IMAP_HOST": "imap.example.in", "LEADTUI_IMAP_USER": "sales@example.in"},
            "set LEADTUI_IMAP_PASSWORD",
        ),
        (
            {"LEADTUI_HTTP_LISTEN": "127.0.0.1:99999", "LEADTUI_API_KEYS": "website:k"},
            "LEADTUI_HTTP_LISTEN",
        ),
    ],
    ids=["no-imap-password", "listen-port-out-of-range"],
)
def test_serve_with_a_setting_it_cannot_use_says_which_and_exits_2(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    done = subprocess.run(
        [LEADTUI, "serve"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "LEADTUI_DB": str(tmp_path / "leads.db"), **env},
        check=False,
    )

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert says in lines[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_captures_then_stops_cleanly_on_a_signal(
    sig: signal.Signals, sqlite_url: str, mailbox: Mailbox, serve: Launcher
) -> None:
    process = serve(serve_env(sqlite_url, mailbox))
    process.wait_for_log("capturing into")
    wait_for(lambda: mailbox_state(sqlite_url) == "idle", timeout=15, what="the watcher to idle")
    raw, message_id = lead_mail(1)
    mailbox.append(raw)
    wait_for(lambda: message_ids(sqlite_url) == [message_id], what="the mail to become a lead")

    process.send(sig)

    assert process.wait(timeout=5) == 0
    assert "stopped" in process.stderr()
    assert "waiting to take over" not in process.stderr(), "a clean stop is not a lost lease"
    assert process.stdout() == "", "serve logs to stderr only"
    assert mailbox.password not in process.stderr()
    assert lease_pid(sqlite_url) is None, "the lease was not released for the next process"


def test_serve_never_logs_the_password_even_when_the_login_is_refused(
    sqlite_url: str, mailbox: Mailbox, serve: Launcher
) -> None:
    wrong = "Wrong-Password-4711"
    process = serve(serve_env(sqlite_url, mailbox, LEADTUI_IMAP_PASSWORD=wrong))
    wait_for(lambda: mailbox_state(sqlite_url) == "login failed", timeout=15, what="login failed")
    process.send(signal.SIGTERM)

    assert process.wait(timeout=5) == 0
    assert "LEADTUI_IMAP_PASSWORD" in process.stderr(), "the log should say what to fix"
    assert wrong not in process.stderr()
    assert wrong not in process.stdout()


def test_a_password_fixed_in_the_config_file_is_used_at_once(
    tmp_path: Path, sqlite_url: str, mailbox: Mailbox, serve: Launcher
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[imap]\npassword = "Wrong-Password-4711"\n')
    env = serve_env(sqlite_url, mailbox, LEADTUI_CONFIG=str(cfg))
    del env["LEADTUI_IMAP_PASSWORD"]  # the file holds it, as an admin's set-up does
    process = serve(env)
    wait_for(lambda: mailbox_state(sqlite_url) == "login failed", timeout=15, what="login failed")
    cfg.write_text(f'[imap]\npassword = "{mailbox.password}"\n')  # the admin fixes it
    # Not after the 15 minutes an authentication failure waits: within seconds.
    wait_for(lambda: mailbox_state(sqlite_url) == "idle", timeout=15, what="the fixed login")
    raw, message_id = lead_mail(1)
    mailbox.append(raw)
    wait_for(lambda: message_ids(sqlite_url) == [message_id], what="the mail to become a lead")
    assert "the config file changed" in process.stderr()
    process.send(signal.SIGTERM)
    assert process.wait(timeout=5) == 0


def test_serve_without_the_mailbox_password_still_captures_the_other_channels(
    sqlite_url: str, mailbox: Mailbox, serve: Launcher
) -> None:
    env = serve_env(
        sqlite_url,
        mailbox,
        LEADTUI_IMAP_PASSWORD="",
        LEADTUI_HTTP_LISTEN="127.0.0.1:0",
        LEADTUI_API_KEYS="website:ltk_test_key_0123456789",
    )
    process = serve(env)
    process.wait_for_log("capturing into")
    assert "set LEADTUI_IMAP_PASSWORD" in process.stderr()
    assert "capturing from the other sources meanwhile" in process.stderr()
    wait_for(lambda: mailbox_state(sqlite_url) == "login failed", timeout=15, what="login failed")
    process.send(signal.SIGTERM)
    assert process.wait(timeout=5) == 0


def test_a_second_serve_waits_while_the_first_captures_then_takes_over(
    db_url: str, mailbox: Mailbox, serve: Launcher
) -> None:
    first = serve(serve_env(db_url, mailbox))
    first.wait_for_log("capturing into")
    second = serve(serve_env(db_url, mailbox))
    second.wait_for_log("waiting for the capture lease")
    raw, message_id = lead_mail(2)
    mailbox.append(raw)
    wait_for(lambda: message_ids(db_url) == [message_id], timeout=10, what="the first lead")
    assert lease_pid(db_url) == first.pid
    assert "capturing into" not in second.stderr()

    first.send(signal.SIGTERM)
    assert first.wait(timeout=5) == 0
    second.wait_for_log("capturing into", timeout=15)
    assert lease_pid(db_url) == second.pid
    later, later_id = lead_mail(3)
    mailbox.append(later)

    wait_for(
        lambda: message_ids(db_url) == sorted([message_id, later_id]),
        timeout=15,
        what="the second process to capture the next mail",
    )
    second.send(signal.SIGINT)
    assert second.wait(timeout=5) == 0
