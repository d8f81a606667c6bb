"""The outbox: a committed lead reaches the seller's phone (ntfy, Telegram) and a webhook,
at least once, with a stable id, through receivers that fail the way the real ones do.

The receivers are HTTP stand-ins on loopback that check the documented request shapes and
answer with the documented answers and errors: ntfy's publish JSON, Telegram's
``{"ok": false, "error_code": 429, "parameters": {"retry_after": N}}`` and 401, and a webhook
receiver that verifies the ``X-Leadtui-Signature`` as the README tells integrators to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner
from helpers import wait_for
from loopback import LoopbackServer
from serve_process import Launcher

from leadtui import cli, config, parser, synth
from leadtui.capture import Pipeline, RawItem
from leadtui.config import NotifyTarget, Secret
from leadtui.outbox import Answer, Sender, make_target, next_attempt, routes, verify
from leadtui.store import SCHEMA_VERSION, Health, OutboxItem, Store

BOT_TOKEN = "123456:AAH-bot-token-never-shown-9f8e7d"
NTFY_TOKEN = "tk_ntfy_token_never_shown_4c3b2a"
WEBHOOK_SECRET = "whsec_never_shown_0a1b2c3d4e5f"
SECRETS = (BOT_TOKEN, NTFY_TOKEN, WEBHOOK_SECRET)
CHAT_ID = "-1001234567890"


# --------------------------------------------------------------------------- the stand-ins


@dataclass
class Delivery:
    target: str
    event_id: str
    answered: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Receivers:
    """ntfy, the Telegram Bot API and a webhook receiver on 127.0.0.1, in their own thread.

    ``script[target]`` holds the next answers to force (status, JSON body, headers);
    ``hold`` makes the webhook keep a request open until it is cleared.
    """

    deliveries: list[Delivery] = field(default_factory=list)
    script: dict[str, list[tuple[int, Any, dict[str, str]]]] = field(default_factory=dict)
    hold: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    _server: LoopbackServer = field(default_factory=lambda: LoopbackServer("receivers"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ok(self, target: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.target == target and d.answered < 300]

    def _scripted(self, target: str) -> web.Response | None:
        queue = self.script.get(target)
        if not queue:
            return None
        status, body, headers = queue.pop(0)
        return web.json_response(body, status=status, headers=headers)

    def _record(self, target: str, request: web.Request, body: bytes, status: int) -> None:
        event_id = request.headers.get("X-Leadtui-Event-Id", "")
        self.deliveries.append(Delivery(target, event_id, status, dict(request.headers), body))

    async def ntfy(self, request: web.Request) -> web.Response:
        body = await request.read()
        topic = request.match_info["topic"]
        if request.headers.get("Authorization") != f"Bearer {NTFY_TOKEN}":
            self._record("ntfy", request, body, 403)
            return web.json_response({"code": 40301, "http": 403, "error": "forbidden"}, status=403)
        forced = self._scripted("ntfy")
        if forced is not None:
            self._record("ntfy", request, body, forced.status)
            return forced
        # What ntfy reads: the text body, Title (RFC 2047 allowed), Priority, Tags, Click.
        assert request.headers["Priority"] in ("high", "4", "urgent", "5", "default", "3")
        assert request.headers.get("Click", "").startswith("tel:")
        str(make_header(decode_header(request.headers["Title"])))  # decodes
        self._record("ntfy", request, body, 200)
        return web.json_response(
            {
                "id": f"n{len(self.deliveries)}",
                "time": int(time.time()),
                "event": "message",
                "topic": topic,
                "message": body.decode(),
            }
        )

    async def telegram(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.match_info["token"] != BOT_TOKEN:
            self._record("telegram", request, body, 401)
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        data = json.loads(body)
        if not data.get("chat_id") or not data.get("text"):
            self._record("telegram", request, body, 400)
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message text is empty",
                },
                status=400,
            )
        forced = self._scripted("telegram")
        if forced is not None:
            self._record("telegram", request, body, forced.status)
            return forced
        self._record("telegram", request, body, 200)
        chat = {"id": int(data["chat_id"]), "type": "supergroup"}
        result = {"message_id": len(self.deliveries), "chat": chat, "text": data["text"]}
        return web.json_response({"ok": True, "result": result})

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("X-Leadtui-Signature", "")
        if not verify(WEBHOOK_SECRET, body, signature):
            self._record("webhook", request, body, 400)
            return web.json_response({"error": "bad signature"}, status=400)
        event = json.loads(body)
        assert event["id"] == request.headers["Idempotency-Key"]
        if self.hold.is_set():  # a receiver that hangs: the sender dies meanwhile
            self._record("webhook-held", request, body, 0)
        if self.hold.is_set():  # wait in a thread: ``hold`` is cleared from the test's thread
            await asyncio.get_running_loop().run_in_executor(None, self._released)
        forced = self._scripted("webhook")
        if forced is not None:
            self._record("webhook", request, body, forced.status)
            return forced
        self._record("webhook", request, body, 200)
        return web.json_response({"received": event["id"]})

    def _released(self) -> None:
        deadline = time.monotonic() + 60
        while self.hold.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)

    def start(self) -> Receivers:
        app = web.Application()
        app.router.add_post("/ntfy/{topic}", self.ntfy)
        app.router.add_post("/tg/bot{token}/sendMessage", self.telegram)
        app.router.add_post("/hook", self.webhook)
        self.port = self._server.start(app)
        return self

    def stop(self) -> None:
        self.hold.clear()
        self._server.stop()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    r = Receivers().start()
    yield r
    r.stop()


def targets(r: Receivers, **changes: Any) -> tuple[NotifyTarget, ...]:
    return (
        NotifyTarget(
            "phone", "ntfy", url=f"{r.url}/ntfy/leads-abc", token=Secret(NTFY_TOKEN), timeout=5
        ),
        NotifyTarget(
            "telegram",
            "telegram",
            url=f"{r.url}/tg",
            token=Secret(changes.get("bot_token", BOT_TOKEN)),
            chat_id=CHAT_ID,
            timeout=5,
        ),
        NotifyTarget(
            "sheet",
            "webhook",
            url=f"{r.url}/hook",
            secret=Secret(WEBHOOK_SECRET),
            events=frozenset({"lead.created", "lead.replied"}),
            timeout=5,
        ),
    )


@dataclass
class Running:
    sender: Sender
    health: list[Health]
    stop: threading.Event
    thread: threading.Thread


@pytest.fixture
def run_sender() -> Iterator[Any]:
    started: list[Running] = []

    def start(store: Store, configs: tuple[NotifyTarget, ...], **kw: Any) -> Running:
        health: list[Health] = []
        sender = Sender(store, [make_target(c) for c in configs], health.append, poll=0.02, **kw)
        stop = threading.Event()
        thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
        thread.start()
        started.append(Running(sender, health, stop, thread))
        return started[-1]

    yield start
    for r in started:
        r.stop.set()
        r.thread.join(5)


def open_store(url: str, configs: tuple[NotifyTarget, ...]) -> Store:
    store = Store.open(url)
    store.set_outbox_routes(routes(config.Settings(notify=configs)))
    return store


def lead_mail(seed: int = 1) -> tuple[bytes, dict[str, Any]]:
    """A synthetic IndiaMART enquiry with a phone, and the lead the parser reads in it."""
    rng = random.Random(seed)
    while True:
        raw = synth.email(rng, "enquiry")
        (lead,) = parser.parse(raw)
        assert lead["kind"] == "lead"
        if lead["phone"] and lead["phone"].startswith("+91") and lead["company"]:
            return raw, lead


def apply_json(store: Store, result: dict[str, Any]) -> Any:
    raw_id, _new = store.add_raw(json.dumps(result).encode(), source="test", kind="json")
    return store.apply(raw_id, [result])


# --------------------------------------------------------------------------- the rows


def test_a_new_lead_writes_one_row_per_target_that_wants_it(db_url: str) -> None:
    configs = (
        NotifyTarget("phone", "ntfy", url="http://127.0.0.1:9/t"),
        NotifyTarget(
            "buylead-only", "ntfy", url="http://127.0.0.1:9/t", lead_types=frozenset({"B"})
        ),
        NotifyTarget(
            "sheet", "webhook", url="http://127.0.0.1:9/h", events=frozenset({"lead.replied"})
        ),
    )
    with open_store(db_url, configs) as store:
        raw, lead = lead_mail()
        outcome = Pipeline(store).accept(RawItem(raw, source="imap:test"))
        assert outcome.status == "new"
        items = store.outbox_items()
        assert [(i.target, i.kind, i.state) for i in items] == [
            ("phone", "lead.created", "pending")
        ]
        (item,) = items
        assert item.lead_id == outcome.lead_ids[0]
        assert item.payload["id"] == item.event_id
        assert item.payload["lead"]["phone"] == lead["phone"]
        # The buyer writes again: the webhook that wants replies gets a row, the phone not.
        reply = synth.reply_to(
            random.Random(2),
            name=lead["name"],
            company=lead["company"],
            product=lead["product"],
            phone=lead["phone"],
        )
        again = Pipeline(store).accept(RawItem(reply.raw, source="imap:test"))
        assert again.status == "reply"
        newest = store.outbox_items()[0]
        assert (newest.target, newest.kind, newest.lead_id) == (
            "sheet",
            "lead.replied",
            item.lead_id,
        )
        assert newest.payload["messages"]
        # Applying the same item again (a reparse) adds nothing.
        Pipeline(store).reparse(outcome.raw_id)
        assert len(store.outbox_items()) == 2


def test_outbox_rows_commit_with_their_lead_or_not_at_all(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = (NotifyTarget("phone", "ntfy", url="http://127.0.0.1:9/t"),)
    with open_store(db_url, configs) as store:
        raw, _lead = lead_mail(3)
        raw_id, _ = store.add_raw(raw, source="imap:test", kind="email")

        def broken(_ids: Any) -> int:
            raise RuntimeError("the disk went away mid-transaction")

        monkeypatch.setattr(store._d, "stamp_leads", broken)
        with pytest.raises(RuntimeError):
            store.apply(raw_id, parser.parse(raw))
        assert store.count_leads() == 0
        assert store.outbox_items() == []
        monkeypatch.undo()
        store.apply(raw_id, parser.parse(raw))
        assert store.count_leads() == 1
        assert len(store.outbox_items()) == 1


def test_no_targets_no_rows(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        raw, _lead = lead_mail()
        Pipeline(store).accept(RawItem(raw, source="imap:test"))
        assert store.outbox_items() == []


# --------------------------------------------------------------------------- delivery


def test_a_new_lead_reaches_each_target_once(
    db_url: str, receivers: Receivers, run_sender: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    configs = targets(receivers)
    with open_store(db_url, configs) as store:
        raw, lead = lead_mail(5)
        outcome = Pipeline(store).accept(RawItem(raw, source="imap:test"))
        running = run_sender(store, configs)
        wait_for(
            lambda: all(receivers.ok(t) for t in ("ntfy", "telegram", "webhook")),
            timeout=10,
            what="every target to receive the lead",
        )
        wait_for(lambda: {i.state for i in store.outbox_items()} == {"sent"}, timeout=5)
        time.sleep(0.3)  # a second delivery would come within the sender's next polls
        assert [len(receivers.ok(t)) for t in ("ntfy", "telegram", "webhook")] == [1, 1, 1]

        ntfy = receivers.ok("ntfy")[0]
        digits = lead["phone"].lstrip("+")
        assert ntfy.headers["Click"] == f"tel:+{digits}"
        assert f"https://wa.me/{digits}" in ntfy.headers["Actions"]
        assert ntfy.headers["Tags"] == "incoming_envelope"
        title = str(make_header(decode_header(ntfy.headers["Title"])))
        assert title.startswith("New lead: ")
        assert lead["product"] in title
        assert lead["phone"] in ntfy.body.decode()

        tg = json.loads(receivers.ok("telegram")[0].body)
        assert tg["chat_id"] == CHAT_ID
        assert "parse_mode" not in tg
        assert lead["product"] in tg["text"]
        assert tg["reply_markup"]["inline_keyboard"][0][0]["url"] == f"https://wa.me/{digits}"

        hook = receivers.ok("webhook")[0]
        event = json.loads(hook.body)
        assert event["type"] == "lead.created"
        assert event["lead"]["id"] == outcome.lead_ids[0]
        assert hook.headers["Idempotency-Key"] == event["id"] == hook.event_id
        # One event, one id: every target's row carries it.
        assert {i.event_id for i in store.outbox_items()} == {event["id"]}
        assert running.health[-1].state == "ok"
    for secret in SECRETS:
        assert secret not in caplog.text


def test_a_receiver_that_fails_then_answers_gets_the_event_again_with_the_same_id(
    sqlite_url: str, receivers: Receivers, run_sender: Any
) -> None:
    configs = targets(receivers)[2:]
    receivers.script["webhook"] = [(500, {"error": "db down"}, {}), (503, {}, {"Retry-After": "0"})]
    with open_store(sqlite_url, configs) as store:
        raw, _lead = lead_mail(6)
        Pipeline(store).accept(RawItem(raw, source="imap:test"))
        run_sender(store, configs, base_delay=0.05)
        wait_for(lambda: receivers.ok("webhook"), timeout=10, what="the third try to succeed")
        wait_for(lambda: store.outbox_items()[0].state == "sent", timeout=5)
        tries = [d for d in receivers.deliveries if d.target == "webhook"]
        assert [d.answered for d in tries] == [500, 503, 200]
        assert len({d.event_id for d in tries}) == 1
        (item,) = store.outbox_items()
        assert item.attempts == 3
        assert item.last_error is None


def test_telegram_429_waits_retry_after_and_a_bad_token_is_never_shown(
    sqlite_url: str, receivers: Receivers, run_sender: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receivers.script["telegram"] = [
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            },
            {"Retry-After": "1"},
        )
    ]
    good = targets(receivers)[1:2]
    with open_store(sqlite_url, good) as store:
        raw, _lead = lead_mail(7)
        Pipeline(store).accept(RawItem(raw, source="imap:test"))
        first_sender = run_sender(store, good, base_delay=0.01)
        wait_for(lambda: receivers.ok("telegram"), timeout=10, what="the retry after 429")
        first, second = [d for d in receivers.deliveries if d.target == "telegram"]
        assert first.answered == 429
        # The first failure made it due no sooner than Telegram's retry_after.
        assert second.answered == 200
        assert second.event_id == first.event_id
        # Marked sent after the 200 is read (the receiver records before it answers).
        wait_for(lambda: store.outbox_items()[0].state == "sent", timeout=5)
        first_sender.stop.set()
        first_sender.thread.join(5)

    bad = targets(receivers, bot_token="999:wrong-token-also-secret")[1:2]
    with open_store(sqlite_url, bad) as store:
        raw, _lead = lead_mail(8)
        Pipeline(store).accept(RawItem(raw, source="imap:test"))
        running = run_sender(store, bad, base_delay=60)
        wait_for(lambda: store.outbox_items()[0].attempts >= 1, timeout=10)
        item = store.outbox_items()[0]
        assert item.state == "pending"  # a token can be fixed within the day: keep it
        assert item.last_error is not None
        assert "401" in item.last_error
        assert "999:wrong-token-also-secret" not in item.last_error
        wait_for(lambda: running.health and running.health[-1].state == "error", timeout=5)
        assert "999:wrong-token-also-secret" not in repr(running.health)
    assert "999:wrong-token-also-secret" not in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text


def test_what_fails_for_a_day_is_a_dead_letter_to_retry_or_drop(
    sqlite_url: str, receivers: Receivers, run_sender: Any, tmp_path: Path
) -> None:
    configs = targets(receivers)[2:]
    receivers.script["webhook"] = [(500, {"error": "down"}, {})] * 50
    with open_store(sqlite_url, configs) as store:
        for seed in (9, 10):
            raw, _lead = lead_mail(seed)
            Pipeline(store).accept(RawItem(raw, source="imap:test"))
        running = run_sender(store, configs, base_delay=0.01, give_up_after=0.3)
        wait_for(lambda: {i.state for i in store.outbox_items()} == {"dead"}, timeout=10)
        running.stop.set()
        running.thread.join(5)
        dead = store.outbox_items()
        assert all(i.last_error and i.last_error.startswith("500") for i in dead)

        cfg = tmp_path / "leadtui.toml"
        cfg.write_text(
            f'db = "{sqlite_url}"\n[[notify]]\nname = "sheet"\ntype = "webhook"\n'
            f'url = "{receivers.url}/hook"\nsecret = "{WEBHOOK_SECRET}"\n'
        )
        runner = CliRunner()
        listing = runner.invoke(
            cli.main, ["outbox", "list", "--state", "dead", "--config", str(cfg)]
        )
        assert listing.exit_code == 0, listing.output
        assert f"{dead[0].id:>6}  dead" in listing.output
        assert "500" in listing.output
        assert WEBHOOK_SECRET not in listing.output
        doctor = runner.invoke(cli.main, ["doctor", "--timeout", "1", "--config", str(cfg)])
        assert "2 dead letter(s)" in doctor.output
        assert WEBHOOK_SECRET not in doctor.output

        receivers.script.clear()
        assert (
            runner.invoke(
                cli.main, ["outbox", "retry", str(dead[0].id), "--config", str(cfg)]
            ).exit_code
            == 0
        )
        assert (
            runner.invoke(
                cli.main, ["outbox", "drop", str(dead[1].id), "--config", str(cfg)]
            ).exit_code
            == 0
        )
        assert (
            runner.invoke(
                cli.main, ["outbox", "drop", str(dead[1].id), "--config", str(cfg)]
            ).exit_code
            == 1
        )
        run_sender(store, configs)
        wait_for(lambda: receivers.ok("webhook"), timeout=10, what="the retried row")
        # Marked sent once the 200 is read (the receiver records before it answers).
        wait_for(lambda: [i.state for i in store.outbox_items()] == ["sent"], timeout=5)
        assert receivers.ok("webhook")[0].event_id == dead[0].event_id


def test_the_same_enquiry_by_email_push_and_pull_notifies_once(
    db_url: str, receivers: Receivers, run_sender: Any
) -> None:
    configs = targets(receivers)
    with open_store(db_url, configs) as store:
        raw, lead = lead_mail(11)
        Pipeline(store).accept(RawItem(raw, source="imap:test"))
        for channel, external_id in (("push", "2790011111"), ("pull", "2790011111")):
            copy = {**lead, "channel": channel, "external_id": external_id, "message_id": None}
            outcome = apply_json(store, copy)
            assert outcome.status in ("updated", "duplicate")
        assert store.count_leads() == 1
        run_sender(store, configs)
        wait_for(lambda: {i.state for i in store.outbox_items()} == {"sent"}, timeout=10)
        time.sleep(0.3)
        assert [len(receivers.ok(t)) for t in ("ntfy", "telegram", "webhook")] == [1, 1, 1]


def test_backoff_doubles_with_jitter_honours_retry_after_and_gives_up_after_a_day() -> None:
    rng = random.Random(1)
    item = OutboxItem(1, "e", "lead.created", "t", 1, {}, 1000.0, 1000.0, 0, None, "pending", None)
    fail = Answer(False, 500, "500")
    delays = []
    for attempts in range(6):
        at = next_attempt(_with(item, attempts), fail, 1000.0, rng=rng)
        assert at is not None
        delays.append(at - 1000.0)
    for attempts, delay in enumerate(delays):
        assert 5 * 2**attempts * 0.5 <= delay <= 5 * 2**attempts
    later = next_attempt(item, Answer(False, 429, "429", retry_after=120), 1000.0, rng=rng)
    assert later is not None
    assert later >= 1120
    assert next_attempt(item, fail, 1000.0 + 86400, rng=rng) is None
    assert next_attempt(item, Answer(False, 400, "400", permanent=True), 1000.0) is None
    capped = next_attempt(_with(item, 40), fail, 1000.0, rng=rng)
    assert capped is not None
    assert capped <= 1000 + 3600


def _with(item: OutboxItem, attempts: int) -> OutboxItem:
    fields = {f: getattr(item, f) for f in item.__dataclass_fields__}
    return OutboxItem(**{**fields, "attempts": attempts})


# --------------------------------------------------------------------------- the commands


def test_notify_test_prints_each_answer_without_secrets(
    receivers: Receivers, tmp_path: Path
) -> None:
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(
        f'db = "{tmp_path / "db.sqlite"}"\n'
        f'[[notify]]\ntype = "ntfy"\nurl = "{receivers.url}/ntfy/leads"\ntoken = "{NTFY_TOKEN}"\n'
        f'[[notify]]\ntype = "telegram"\nurl = "{receivers.url}/tg"\ntoken_env = "TG_TOKEN"\n'
        f'chat_id = "{CHAT_ID}"\n'
        f'[[notify]]\nname = "broken"\ntype = "telegram"\nurl = "{receivers.url}/tg"\n'
        f'token = "1:not-the-token"\nchat_id = "{CHAT_ID}"\n'
    )
    runner = CliRunner()
    env = {"TG_TOKEN": BOT_TOKEN}
    done = runner.invoke(cli.main, ["notify", "test", "--config", str(cfg)], env=env)
    assert done.exit_code == 1, done.output  # the broken one failed
    lines = done.output.splitlines()
    assert lines[0].startswith("ntfy (ntfy at http://127.0.0.1): ok: 200")
    assert lines[1].startswith("telegram (telegram chat")
    assert ": ok: 200 message" in lines[1]
    assert lines[2].startswith("broken")
    assert "FAILED: 401" in lines[2]
    for secret in (*SECRETS, "1:not-the-token"):
        assert secret not in done.output
    one = runner.invoke(cli.main, ["notify", "test", "telegram", "--config", str(cfg)], env=env)
    assert one.exit_code == 0
    assert len(one.output.splitlines()) == 1
    sample = json.loads(next(d for d in receivers.deliveries if d.target == "telegram").body)
    assert "leadtui notify test" in sample["text"]


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('type = "pager"', "type must be one of"),
        ('type = "telegram"\nchat_id = "1"', "set token"),
        ('type = "telegram"\ntoken = "x"', "set chat_id"),
        ('type = "ntfy"', "set url"),
        ('type = "webhook"\nurl = "ftp://x"', "http:// or https://"),
        ('type = "webhook"\nurl = "http://x"\nevents = ["lead.deleted"]', "unknown event"),
        ('type = "webhook"\nurl = "http://x"\ntoken_env = "NOPE_NOT_SET"', "not set"),
    ],
)
def test_bad_notify_tables_say_what_to_fix(tmp_path: Path, table: str, says: str) -> None:
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(f"[[notify]]\n{table}\n")
    with pytest.raises(config.ConfigError, match=says):
        config.load(cfg, environ={})


def test_notify_table_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(
        '[[notify]]\ntype = "ntfy"\ntopic = "my-leads"\n'
        '[[notify]]\ntype = "webhook"\nurl = "https://example.com/h?key=abc"\n'
        'secret = "s3cr3t"\nlead_types = ["b", "W"]\nsources = ["IndiaMART"]\n'
    )
    settings = config.load(cfg, environ={})
    ntfy, hook = settings.notify
    assert (ntfy.name, ntfy.url, ntfy.events) == (
        "ntfy",
        "https://ntfy.sh/my-leads",
        frozenset({"lead.created"}),
    )
    assert hook.lead_types == frozenset({"B", "W"})
    assert hook.sources == frozenset({"indiamart"})
    assert "s3cr3t" not in repr(settings)
    assert make_target(hook).describe() == "webhook at https://example.com"


# --------------------------------------------------------------------------- a real serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kill_9_of_serve_mid_delivery_loses_nothing(
    sqlite_url: str, receivers: Receivers, tmp_path: Path
) -> None:
    """The webhook holds the first delivery open; serve is killed with SIGKILL meanwhile;
    the next serve delivers the same event (same id) once the lease passes to it."""
    port = _free_port()
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(
        f'[[notify]]\nname = "sheet"\ntype = "webhook"\nurl = "{receivers.url}/hook"\n'
        f'secret_env = "SHEET_SECRET"\n'
    )
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADTUI_IMAP")} | {
        "LEADTUI_DB": sqlite_url,
        "LEADTUI_CONFIG": str(cfg),
        "LEADTUI_HTTP_LISTEN": f"127.0.0.1:{port}",
        "LEADTUI_API_KEYS": "website:ltk_website_0123456789abcdef",
        "SHEET_SECRET": WEBHOOK_SECRET,
    }
    launcher = Launcher(tmp_path)
    try:
        receivers.hold.set()
        first = launcher(env)
        first.wait_for_log("capturing into", timeout=20)
        lead = {"name": "Kiran Rao", "phone": "+919845600066", "product": "Fly Ash Bricks"}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/leads",
            data=json.dumps(lead).encode(),
            headers={
                "content-type": "application/json",
                "x-api-key": "ltk_website_0123456789abcdef",
            },
            method="POST",
        )
        wait_for(lambda: _post_ok(request), timeout=10, what="the HTTP ingest to take the lead")
        wait_for(
            lambda: any(d.target == "webhook-held" for d in receivers.deliveries),
            timeout=10,
            what="the delivery to be in flight",
        )
        first.send(signal.SIGKILL)
        first.wait(10)
        receivers.hold.clear()
        second = launcher(env)
        wait_for(lambda: receivers.ok("webhook"), timeout=40, what="the next serve to deliver it")
        held = [d.event_id for d in receivers.deliveries if d.target == "webhook-held"]
        done = [d.event_id for d in receivers.ok("webhook")]
        assert set(held) == set(done)
        assert len(set(done)) == 1
        with Store.open(sqlite_url) as store:
            wait_for(lambda: store.outbox_items()[0].state == "sent", timeout=10)
            assert len(store.outbox_items()) == 1
        second.send(signal.SIGTERM)
        assert second.wait(15) == 0
        for process in (first, second):
            assert WEBHOOK_SECRET not in process.stderr()
    finally:
        launcher.close()


def _post_ok(request: urllib.request.Request) -> bool:
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return 200 <= answer.status < 300
    except OSError:
        return False


def test_a_schema_5_database_gets_the_outbox(db_url: str) -> None:
    """An existing database (schema 5) is migrated: the outbox appears, its leads stay."""
    with Store.open(db_url) as s:
        raw, _lead = lead_mail(12)
        Pipeline(s).accept(RawItem(raw, source="imap:test"))
        s.db.execute_sql("DROP TABLE outbox")
        s.m.Meta.update(value="5").where(s.m.Meta.key == "schema_version").execute()
    configs = (NotifyTarget("phone", "ntfy", url="http://127.0.0.1:9/t"),)
    with open_store(db_url, configs) as s:
        assert s.m.Meta.get(s.m.Meta.key == "schema_version").value == str(SCHEMA_VERSION)
        assert s.count_leads() == 1
        assert s.outbox_items() == []
        raw, _lead = lead_mail(13)
        Pipeline(s).accept(RawItem(raw, source="imap:test"))
        assert [i.target for i in s.outbox_items()] == ["phone"]


def test_the_outbox_listing_shows_a_hostile_name_and_error_as_plain_text() -> None:
    """A buyer's name and a receiver's answer are untrusted: ``leadtui outbox list`` must not
    let them move the cursor, retitle the terminal or clear the screen."""
    hostile = "Evil\x1b]0;pwned\x07 Buyer\x1b[2J"
    item = OutboxItem(
        7, "e1", "lead.created", "phone", 3, {"lead": {"name": hostile}}, time.time(),
        time.time(), 2, "500 \x1b[31mreceiver says no\x9b", "dead", None,
    )  # fmt: skip
    line = cli._outbox_line(item)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in line)
    assert "Evil" in line
    assert "Buyer" in line
    assert "receiver says no" in line


def test_a_bug_in_one_pass_does_not_stop_the_sender(
    sqlite_url: str, receivers: Receivers, run_sender: Any
) -> None:
    """An unexpected error (here the watcher's, once) is logged and said in the health line;
    the sender goes on, and the lead's notification still leaves."""

    class Flaky:
        ticks = 0

        def tick(self, now: float | None = None) -> int:
            Flaky.ticks += 1
            if Flaky.ticks == 1:
                raise ValueError("a bug in the watcher")
            return 0

    configs = targets(receivers)[2:]
    with open_store(sqlite_url, configs) as store:
        raw, _lead = lead_mail(21)
        Pipeline(store).accept(RawItem(raw, source="imap:test"))
        running = run_sender(store, configs, watcher=Flaky())
        wait_for(lambda: {i.state for i in store.outbox_items()} == {"sent"}, timeout=30)
        assert any(
            h.state == "error" and "ValueError" in (h.last_error or "") for h in running.health
        )
        running.stop.set()
        running.thread.join(5)
