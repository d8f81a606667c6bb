"""The outbox's further targets and rules: email through a real SMTP server (aiosmtpd), a local
command (JSON on stdin, a timeout that kills it, an exit status that is retried), per-target
filters, quiet hours in the seller's time zone, and ``[[webhook]]`` integrations that get every
triage change (``lead.updated``, ``lead.status_changed``) signed, in the same JSON as
``GET /api/leads``, written in the transaction of the change.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from helpers import static_text, wait_for
from smtp_server import Inbox
from test_outbox import (
    SECRETS,
    WEBHOOK_SECRET,
    Receivers,
    apply_json,
    lead_mail,
    open_store,
    targets,
)

from leadtui import config
from leadtui.capture import Pipeline, RawItem
from leadtui.config import NotifyTarget, Secret, Settings
from leadtui.outbox import Sender, make_target, quiet_until, routes
from leadtui.store import Health, OutboxRoute, Store, order_value_ceiling

SMTP_PASSWORD = "smtp-pass-never-shown-77aa"
IST = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    r = Receivers().start()
    yield r
    r.stop()


class Running:
    def __init__(self, store: Store, configs: tuple[NotifyTarget, ...], settings: Settings) -> None:
        self.health: list[Health] = []
        self.sender = Sender(
            store, [make_target(c, settings) for c in configs], self.health.append, poll=0.02
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sender.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def run_sender() -> Iterator[Any]:
    started: list[Running] = []

    def start(
        store: Store, configs: tuple[NotifyTarget, ...], settings: Settings | None = None
    ) -> Running:
        started.append(Running(store, configs, settings or Settings(notify=configs)))
        return started[-1]

    yield start
    for running in started:
        running.close()


def capture(store: Store, seed: int) -> tuple[int, dict[str, Any]]:
    raw, lead = lead_mail(seed)
    outcome = Pipeline(store).accept(RawItem(raw, source="imap:test"))
    return outcome.lead_ids[0], lead


# --------------------------------------------------------------------------- email


def smtp_settings(controller: Controller, password: str, configs: Any) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        smtp_security="plain",
        smtp_user="sales@shreesteel.in",
        smtp_password=Secret(password),
        notify=configs,
    )


def test_an_email_target_mails_each_address_with_the_event_id(
    sqlite_url: str,
    smtp: tuple[Controller, Inbox],
    run_sender: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    controller, inbox = smtp
    configs = (NotifyTarget("owner", "email", to=("owner@shreesteel.in", "asha@shreesteel.in")),)
    settings = smtp_settings(controller, "s3cret", configs)
    with open_store(sqlite_url, configs) as store:
        lead_id, lead = capture(store, 21)
        run_sender(store, configs, settings)
        wait_for(lambda: len(inbox.messages) == 2, timeout=10, what="two mails")
        wait_for(lambda: store.outbox_items()[0].state == "sent", timeout=5)
    recipients = sorted(envelope.rcpt_tos[0] for envelope, _m in inbox.messages)
    assert recipients == ["asha@shreesteel.in", "owner@shreesteel.in"]
    _envelope, message = inbox.messages[0]
    assert message["Subject"].startswith("New lead: ")
    assert lead["product"] in message["Subject"]
    body = message.get_content()
    assert lead["phone"] in body
    assert f"lead #{lead_id}" in body
    assert "WhatsApp: https://wa.me/" in body
    ids = {m["X-Leadtui-Event-Id"] for _e, m in inbox.messages}
    assert len(ids) == 1
    assert next(iter(ids))


def test_an_email_login_refused_waits_and_never_shows_the_password(
    sqlite_url: str,
    smtp: tuple[Controller, Inbox],
    run_sender: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    controller, inbox = smtp
    configs = (NotifyTarget("owner", "email", to=("owner@shreesteel.in",)),)
    settings = smtp_settings(controller, SMTP_PASSWORD, configs)
    with open_store(sqlite_url, configs) as store:
        capture(store, 22)
        running = run_sender(store, configs, settings)
        wait_for(lambda: store.outbox_items()[0].attempts >= 1, timeout=10)
        item = store.outbox_items()[0]
        assert item.state == "pending"  # a password can be fixed within the day
        assert item.last_error is not None
        assert "refused the login" in item.last_error
        wait_for(lambda: running.health and running.health[-1].state == "error", timeout=5)
        checks = make_target(configs[0], settings).describe()
    assert inbox.messages == []
    for text in (caplog.text, item.last_error, repr(running.health), checks):
        assert SMTP_PASSWORD not in text


# --------------------------------------------------------------------------- command


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_command_gets_the_event_on_stdin_and_a_failing_one_is_retried(
    sqlite_url: str, run_sender: Any, tmp_path: Path
) -> None:
    got = tmp_path / "got"
    count = tmp_path / "count"
    # Fails the first time (exit 3, a line on stderr), then keeps the event.
    program = script(
        tmp_path,
        "on-lead",
        f"""\
        n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}
        if [ "$n" = 0 ]; then cat >/dev/null; echo "sheet is locked" >&2; exit 3; fi
        cat > {got}; echo "$LEADTUI_EVENT_ID $LEADTUI_EVENT" > {got}.env
        """,
    )
    configs = (NotifyTarget("local", "command", command=(str(program),), timeout=10),)
    with open_store(sqlite_url, configs) as store:
        lead_id, _lead = capture(store, 23)
        running = run_sender(store, configs)
        running.sender.base_delay = 0.01
        wait_for(lambda: store.outbox_items()[0].state == "sent", timeout=15, what="the retry")
        (item,) = store.outbox_items()
    assert item.attempts == 2
    event = json.loads(got.read_text())
    assert event["id"] == item.event_id
    assert event["type"] == "lead.created"
    assert event["lead"]["id"] == lead_id
    assert (tmp_path / "got.env").read_text().split() == [item.event_id, "lead.created"]
    failure = next(h for h in running.health if h.last_error)
    assert "exit status 3" in (failure.last_error or "")
    assert "sheet is locked" in (failure.last_error or "")


def test_a_hanging_command_is_killed_with_its_children(
    sqlite_url: str, run_sender: Any, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    program = script(
        tmp_path,
        "hangs",
        f"""\
        sleep 300 &
        echo $$ $! > {pids}
        wait
        """,
    )
    configs = (NotifyTarget("local", "command", command=(str(program),), timeout=1),)
    with open_store(sqlite_url, configs) as store:
        capture(store, 24)
        run_sender(store, configs)
        wait_for(lambda: store.outbox_items()[0].attempts >= 1, timeout=15, what="the timeout")
        item = store.outbox_items()[0]
    assert item.state == "pending"
    assert "ran past 1 s and was stopped" in (item.last_error or "")
    for pid in map(int, pids.read_text().split()):
        wait_for(lambda pid=pid: not _alive(pid), timeout=5, what=f"process {pid} to be gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead (its parent reaps it later); only a running one counts.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_command_and_email_tables(tmp_path: Path) -> None:
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(
        '[[notify]]\ntype = "command"\ncommand = "/usr/local/bin/add-to-erp --fast"\n'
        '[[notify]]\ntype = "email"\nto = ["Owner@Example.com"]\nquiet_hours = "22:00-07:30"\n'
        'quiet = "drop"\nmin_order_value = 50000\nwords = ["Steel", "pune"]\nowners = ["Asha"]\n'
    )
    command, mail = config.load(cfg, environ={}).notify
    assert command.command == ("/usr/local/bin/add-to-erp", "--fast")
    assert mail.to == ("Owner@Example.com",)
    assert mail.quiet_hours == (22 * 60, 7 * 60 + 30)
    assert mail.quiet == "drop"
    assert (mail.min_order_value, mail.words, mail.owners) == (
        50000.0,
        ("steel", "pune"),
        frozenset({"asha"}),
    )


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('type = "email"', "set to"),
        ('type = "email"\nto = ["nobody"]', "set to"),
        ('type = "command"', "set command"),
        ('type = "command"\ncommand = [1]', "list of strings"),
        ('type = "ntfy"\ntopic = "x"\nquiet_hours = "late"', "quiet_hours must look like"),
        ('type = "ntfy"\ntopic = "x"\nquiet_hours = "07:00-07:00"', "two different times"),
        ('type = "ntfy"\ntopic = "x"\nquiet = "later"', "quiet must be queue"),
        ('type = "ntfy"\ntopic = "x"\nmin_order_value = "lots"', "must be numbers"),
    ],
)
def test_bad_new_notify_keys_say_what_to_fix(tmp_path: Path, table: str, says: str) -> None:
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(f"[[notify]]\n{table}\n")
    with pytest.raises(config.ConfigError, match=says):
        config.load(cfg, environ={})


# --------------------------------------------------------------------------- filters


def test_order_value_ceiling_reads_indiamart_ranges() -> None:
    assert order_value_ceiling("Rs. 50,000 to 1 Lakh") == 100_000
    assert order_value_ceiling("Rs. 20,000 to 50,000") == 50_000
    assert order_value_ceiling("Rs. 1 to 2 Crore") == 20_000_000
    assert order_value_ceiling("USD 1,000 - 3,000") == 3_000
    assert order_value_ceiling("Rs. 5 Lakhs") == 500_000
    assert order_value_ceiling("") is None
    assert order_value_ceiling(None) is None


def test_each_filter_narrows_the_leads_a_target_gets() -> None:
    lead = {
        "query_type": "W",
        "source": "indiamart",
        "order_value": "Rs. 50,000 to 1 Lakh",
        "product": "MS Steel Pipes",
        "city": "Pune",
        "owner": "Asha",
    }
    assert OutboxRoute("t").wants("lead.created", lead)
    assert not OutboxRoute("t").wants("lead.updated", lead)
    assert OutboxRoute("t", min_order_value=100_000).wants("lead.created", lead)
    assert not OutboxRoute("t", min_order_value=200_000).wants("lead.created", lead)
    assert not OutboxRoute("t", min_order_value=1).wants("lead.created", {"product": "x"})
    assert OutboxRoute("t", words=("steel",)).wants("lead.created", lead)
    assert OutboxRoute("t", words=("copper", "pune")).wants("lead.created", lead)
    assert not OutboxRoute("t", words=("copper",)).wants("lead.created", lead)
    assert OutboxRoute("t", owners=frozenset({"asha"})).wants("lead.created", lead)
    assert not OutboxRoute("t", owners=frozenset({"ravi"})).wants("lead.created", lead)
    assert not OutboxRoute("t", owners=frozenset({"ravi"})).wants("lead.created", {})


def test_filters_decide_which_targets_get_a_row(sqlite_url: str) -> None:
    url = "http://127.0.0.1:9/t"
    configs = (
        NotifyTarget("all", "ntfy", url=url),
        NotifyTarget("big", "ntfy", url=url, min_order_value=10_000_000_000),
        NotifyTarget("pune", "ntfy", url=url, words=("no-such-place-xyz",)),
    )
    with open_store(sqlite_url, configs) as store:
        capture(store, 25)
        assert [i.target for i in store.outbox_items()] == ["all"]


# --------------------------------------------------------------------------- quiet hours


def at_ist(hour: int, minute: int = 0) -> float:
    return datetime(2026, 3, 2, hour, minute, tzinfo=IST).timestamp()


def test_quiet_hours_end_at_the_next_end_in_the_sellers_zone() -> None:
    night = (22 * 60, 7 * 60)
    assert quiet_until(night, at_ist(21, 59), IST) is None
    assert quiet_until(night, at_ist(22, 0), IST) == at_ist(7) + 86400
    assert quiet_until(night, at_ist(3, 15), IST) == at_ist(7)
    assert quiet_until(night, at_ist(7, 0), IST) is None
    lunch = (13 * 60, 14 * 60)
    assert quiet_until(lunch, at_ist(13, 30), IST) == at_ist(14)
    assert quiet_until(lunch, at_ist(14, 30), IST) is None
    assert quiet_until(None, at_ist(3), IST) is None
    # 22:00 IST is 16:30 UTC: the machine's own zone (UTC here) does not matter.
    assert datetime.fromtimestamp(at_ist(22), UTC).hour == 16


def _around_now() -> tuple[int, int]:
    now = datetime.now(IST)
    minute = now.hour * 60 + now.minute
    return (minute - 60) % 1440, (minute + 60) % 1440


@pytest.mark.parametrize("quiet", ["queue", "drop"])
def test_quiet_hours_hold_or_drop_a_notification(
    sqlite_url: str, receivers: Receivers, run_sender: Any, quiet: str
) -> None:
    (phone,) = targets(receivers)[:1]
    hours = _around_now()
    configs = (
        NotifyTarget(
            phone.name,
            phone.type,
            url=phone.url,
            token=phone.token,
            quiet_hours=hours,
            quiet=quiet,
        ),
    )
    with open_store(sqlite_url, configs) as store:
        capture(store, 26)
        run_sender(store, configs)
        if quiet == "queue":
            wait_for(lambda: store.outbox_items()[0].next_attempt_ts > time.time() + 1800)
            item = store.outbox_items()[0]
            assert (item.state, item.attempts) == ("pending", 0)
            end = datetime.fromtimestamp(item.next_attempt_ts, IST)
            assert end.hour * 60 + end.minute == hours[1]
        else:
            wait_for(lambda: store.outbox_items()[0].state == "skipped")
            assert "quiet hours" in (store.outbox_items()[0].last_error or "")
    assert receivers.deliveries == []


# --------------------------------------------------------------------------- [[webhook]]


def test_webhook_tables_want_every_lead_event_and_share_names_with_notify(tmp_path: Path) -> None:
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(
        '[[notify]]\nname = "erp"\ntype = "ntfy"\ntopic = "x"\n'
        '[[webhook]]\nname = "sheet"\nurl = "https://example.com/h"\nsecret = "s"\n'
    )
    ntfy, sheet = config.load(cfg, environ={}).notify
    assert (sheet.type, sheet.section) == ("webhook", "webhook")
    assert sheet.events == frozenset(config.WEBHOOK_EVENTS)
    assert ntfy.events == frozenset({"lead.created"})
    cfg.write_text(
        '[[notify]]\nname = "erp"\ntype = "ntfy"\ntopic = "x"\n[[webhook]]\nname = "erp"\nurl = "https://e.com"\n'
    )
    with pytest.raises(config.ConfigError, match="another target is called 'erp'"):
        config.load(cfg, environ={})
    cfg.write_text('[[webhook]]\ntype = "ntfy"\nurl = "https://e.com"\n')
    with pytest.raises(config.ConfigError, match=r"a \[\[webhook\]\] is a webhook"):
        config.load(cfg, environ={})


def sheet(r: Receivers) -> tuple[NotifyTarget, ...]:
    return (
        NotifyTarget(
            "sheet",
            "webhook",
            url=f"{r.url}/hook",
            secret=Secret(WEBHOOK_SECRET),
            events=frozenset(config.WEBHOOK_EVENTS),
            timeout=5,
            section="webhook",
        ),
    )


def test_triage_changes_reach_a_webhook_signed_with_the_lead_as_the_api_shows_it(
    db_url: str, receivers: Receivers, run_sender: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    configs = sheet(receivers)
    with open_store(db_url, configs) as store:
        lead_id, _lead = capture(store, 27)
        store.assign(lead_id, "asha", actor="ravi")
        store.set_status(lead_id, "quoted", actor="asha")
        store.add_note(lead_id, "sent the rate card", actor="asha")
        expected = store.get_lead(lead_id)
        assert expected is not None
        run_sender(store, configs)
        wait_for(lambda: len(receivers.ok("webhook")) == 5, timeout=10, what="five events")
        wait_for(lambda: {i.state for i in store.outbox_items()} == {"sent"}, timeout=5)
    events = [json.loads(d.body) for d in receivers.ok("webhook")]
    kinds = [e["type"] for e in events]
    assert kinds == [
        "lead.created",
        "lead.updated",
        "lead.updated",
        "lead.status_changed",
        "lead.updated",
    ]
    assert [e.get("action") for e in events[1:]] == ["assign", "status", None, "note"]
    moved = events[3]
    assert (moved["previous_status"], moved["status"], moved["actor"]) == ("new", "quoted", "asha")
    assert moved["lead"]["status"] == "quoted"
    assert moved["lead"]["owner"] == "asha"
    # The last event carries the lead as GET /api/leads shows it now.
    assert events[-1]["lead"] == json.loads(json.dumps(expected.to_json()))
    assert len({e["id"] for e in events}) == 5
    for delivery in receivers.ok("webhook"):  # the receiver verified every signature
        assert delivery.headers["Idempotency-Key"] == json.loads(delivery.body)["id"]
    for secret in SECRETS:
        assert secret not in caplog.text


def test_a_triage_change_and_its_rows_commit_together_or_not_at_all(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = (
        NotifyTarget(
            "sheet", "webhook", url="http://127.0.0.1:9/h", events=frozenset(config.WEBHOOK_EVENTS)
        ),
    )
    with open_store(db_url, configs) as store:
        lead_id, _lead = capture(store, 28)
        before = len(store.outbox_items())

        def broken(*_args: Any) -> int:
            raise RuntimeError("the disk went away mid-transaction")

        monkeypatch.setattr(store._triage._outbox, "enqueue_txn", broken)
        with pytest.raises(RuntimeError):
            store.set_status(lead_id, "won")
        monkeypatch.undo()
        lead = store.get_lead(lead_id)
        assert lead is not None
        assert lead.status == "new"
        assert len(store.outbox_items()) == before
        store.set_status(lead_id, "won")
        assert [i.kind for i in store.outbox_items()[:2]] == ["lead.status_changed", "lead.updated"]
        # Nothing changed, nothing sent.
        store.set_status(lead_id, "won")
        assert len(store.outbox_items()) == before + 2


def test_a_store_without_webhook_routes_writes_no_triage_rows(sqlite_url: str) -> None:
    configs = (NotifyTarget("phone", "ntfy", url="http://127.0.0.1:9/t"),)
    with open_store(sqlite_url, configs) as store:
        lead_id, _lead = capture(store, 29)
        store.set_status(lead_id, "quoted")
        assert [i.kind for i in store.outbox_items()] == ["lead.created"]


# --------------------------------------------------------------------------- 100 leads


def test_a_hundred_leads_by_email_push_and_pull_notify_each_target_once(
    sqlite_url: str, receivers: Receivers, run_sender: Any
) -> None:
    """Every lead arrives three times (the email, IndiaMART's push, the CRM pull); each target
    gets exactly one lead.created per lead."""
    configs = targets(receivers)
    with open_store(sqlite_url, configs) as store:
        for seed in range(100):
            raw, lead = lead_mail(1000 + seed)
            Pipeline(store).accept(RawItem(raw, source="imap:test"))
            for channel in ("push", "pull"):
                apply_json(store, {**lead, "channel": channel, "message_id": None,
                                   "external_id": f"27900{seed:05d}"})  # fmt: skip
        leads = store.count_leads()
        run_sender(store, configs)
        wait_for(
            lambda: {i.state for i in store.outbox_items(limit=1000)} == {"sent"},
            timeout=60,
            what="every notification to be sent",
        )
        created = [i for i in store.outbox_items(limit=1000) if i.kind == "lead.created"]
    assert leads == 100
    for target in ("ntfy", "telegram", "webhook"):
        ok = receivers.ok(target)
        kinds = [d.headers.get("X-Leadtui-Event") for d in ok]
        assert kinds.count("lead.created") == 100, target
        assert (
            len({d.event_id for d in ok if d.headers.get("X-Leadtui-Event") == "lead.created"})
            == 100
        )
    assert len(created) == 300


def test_routes_follow_the_settings() -> None:
    configs = (
        NotifyTarget("x", "ntfy", url="http://h/t", words=("steel",), owners=frozenset({"a"})),
    )
    (route,) = routes(Settings(notify=configs))
    assert (route.words, route.owners) == (("steel",), frozenset({"a"}))


# --------------------------------------------------------------------------- dead letters


async def test_dead_letters_show_in_the_review_queue_and_t_sends_one_again(
    sqlite_url: str,
) -> None:
    from test_app import SIZE, Recorder, make_app, started, until
    from textual.widgets import DataTable

    from leadtui.screens.review import ReviewScreen

    configs = (NotifyTarget("sheet", "webhook", url="http://127.0.0.1:9/h"),)
    with open_store(sqlite_url, configs) as store:
        lead_id, _lead = capture(store, 30)
        (item,) = store.outbox_items()
        store.outbox_failed(item.id, "503 the sheet is over quota; try later", None)
    app = make_app(sqlite_url)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert "review 1" in str(app.top.render())  # the header counts dead letters too
        await pilot.press("r")
        screen = await until(
            pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen, "review"
        )
        table = screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1, "the dead letter")
        row = [str(c) for c in table.get_row(f"out:{item.id}")]
        assert row[0] == f"out {item.id}"
        assert row[2] == "sheet"
        assert f"not delivered: lead.created lead #{lead_id}" in row[3]
        assert "over quota" in row[3]
        await until(
            pilot,
            lambda: "t sends it again" in static_text(app, "#review-raw-text"),
            "the dead letter's story",
        )
        heard = Recorder(app)
        await pilot.press("t")
        await until(pilot, lambda: table.row_count == 0, "the row to leave the queue")
        assert (
            heard.toasts[-1] == f"Outbox row {item.id} is due now: the capturing leadtui sends it"
        )
    with Store.open(sqlite_url) as store:
        assert store.outbox_items()[0].state == "pending"


def test_doctor_names_the_newest_dead_letters_error_without_secrets(sqlite_url: str) -> None:
    from leadtui import outbox

    configs = (
        NotifyTarget("sheet", "webhook", url="http://127.0.0.1:9/h", secret=Secret(WEBHOOK_SECRET)),
    )
    with open_store(sqlite_url, configs) as store:
        capture(store, 31)
        (item,) = store.outbox_items()
        store.outbox_failed(item.id, f"410 gone (the key {WEBHOOK_SECRET} is revoked)", None)
        (line,) = outbox.check(Settings(notify=configs), store)
    assert line.ok is False
    assert "1 dead letter(s)" in line.detail
    assert f"newest, {item.id}: 410 gone" in line.fix
    assert WEBHOOK_SECRET not in line.fix + line.detail


def test_no_secret_reaches_the_outbox_listing_or_doctor(
    sqlite_url: str, smtp: tuple[Controller, Inbox], tmp_path: Path, run_sender: Any
) -> None:
    """Every kind of secret, with every target failing so that errors are written."""
    from click.testing import CliRunner

    from leadtui import cli

    controller, _inbox = smtp
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(
        f'db = "{sqlite_url}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {controller.port}\nsecurity = "plain"\n'
        f'user = "sales@shreesteel.in"\npassword = "{SMTP_PASSWORD}"\n'
        '[[notify]]\nname = "mail"\ntype = "email"\nto = ["owner@shreesteel.in"]\n'
        '[[notify]]\nname = "tg"\ntype = "telegram"\nurl = "http://127.0.0.1:9"\n'
        f'token = "{SECRETS[0]}"\nchat_id = "1"\n'
        f'[[webhook]]\nname = "sheet"\nurl = "http://127.0.0.1:9/h?key={SECRETS[2]}"\n'
        f'secret = "{SECRETS[2]}"\n'
    )
    settings = config.load(cfg, environ={})
    with open_store(sqlite_url, settings.notify) as store:
        capture(store, 32)
        run_sender(store, settings.notify, settings)
        wait_for(lambda: all(i.attempts for i in store.outbox_items()), timeout=15)
        errors = [i.last_error or "" for i in store.outbox_items()]
        checks = outbox_check(settings, store)
    runner = CliRunner()
    listing = runner.invoke(cli.main, ["outbox", "list", "--config", str(cfg)]).output
    as_json = runner.invoke(cli.main, ["outbox", "list", "--json", "--config", str(cfg)]).output
    assert "refused the login" in " ".join(errors)  # the wrong SMTP password was tried
    shown = "\n".join([*errors, listing, as_json, *(f"{c.detail} {c.fix}" for c in checks)])
    for secret in (SMTP_PASSWORD, *SECRETS):
        assert secret not in shown


def outbox_check(settings: Settings, store: Store) -> list[Any]:
    from leadtui import outbox

    return outbox.check(settings, store)


def test_a_phone_notification_says_what_changed() -> None:
    from leadtui.outbox import text_of, title_of

    lead = {"id": 7, "name": "Kiran Rao", "product": "Fly Ash Bricks", "source": "indiamart"}
    moved = {"type": "lead.status_changed", "previous_status": "new", "status": "won",
             "actor": "asha", "lead": lead}  # fmt: skip
    assert title_of(moved) == "Kiran Rao (Fly Ash Bricks): new -> won by asha"
    noted = {"type": "lead.updated", "action": "note", "actor": "ravi", "lead": lead}
    assert title_of(noted) == "Kiran Rao (Fly Ash Bricks): note by ravi"
    digest = {"type": "digest", "title": "leadtui digest for 2026-03-02", "text": "New: 3"}
    assert (title_of(digest), text_of(digest)) == ("leadtui digest for 2026-03-02", "New: 3")
