"""The automatic acknowledgement (``[autoreply]``): a WhatsApp Cloud API template message and an
email to each new buyer, once per buyer per 48 hours whatever channel the enquiry came by,
only in working hours, never after STOP, within a daily cap, each send in the lead's history.

The WhatsApp Cloud API is a stand-in on loopback that checks the documented request shape of
``POST /v21.0/{phone-number-id}/messages`` and answers as Meta documents: ``messages[0].id``
on success; an ``error`` object with ``code`` 190 (HTTP 401) for a bad token, 130429 (HTTP 400)
for a rate limit, 132001 for a template that does not exist, and 500 for Meta's own trouble.
Email goes to a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from helpers import wait_for
from loopback import LoopbackServer
from smtp_server import Inbox
from test_outbox import Receivers, apply_json, lead_mail, targets

from leadtui import config
from leadtui.autoreply import WHATSAPP
from leadtui.capture import Pipeline, RawItem
from leadtui.config import Autoreply, Secret, Settings
from leadtui.outbox import Sender, all_targets, make_target, routes
from leadtui.store import Health, Store

TOKEN = "EAAG-whatsapp-token-never-shown-5d4c3b"
PHONE_ID = "106540352242922"
IST = timezone(timedelta(hours=5, minutes=30))


@dataclass
class Meta:
    """The WhatsApp Cloud API's messages endpoint on 127.0.0.1."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    tries: list[int] = field(default_factory=list)  # every answer's status
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    port: int = 0
    _server: LoopbackServer = field(default_factory=lambda: LoopbackServer("whatsapp cloud"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v21.0"

    def answer(self, status: int, body: dict[str, Any]) -> web.Response:
        self.tries.append(status)
        return web.json_response(body, status=status)

    async def messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer(
                401,
                _error(
                    190, "Invalid OAuth access token - Cannot parse access token", "OAuthException"
                ),
            )
        if request.match_info["phone_id"] != PHONE_ID:
            return self.answer(
                400, _error(100, "Unsupported post request. Object with ID does not exist")
            )
        data = await request.json()
        template = data.get("template") or {}
        shape_ok = (
            data.get("messaging_product") == "whatsapp"
            and data.get("type") == "template"
            and str(data.get("to", "")).isdigit()
            and template.get("name")
            and (template.get("language") or {}).get("code")
        )
        if not shape_ok:
            return self.answer(400, _error(100, "(#100) Invalid parameter"))
        for component in template.get("components", []):
            for parameter in component["parameters"]:
                if parameter["type"] != "text" or not parameter["text"]:
                    return self.answer(400, _error(131008, "Required parameter is missing"))
        if self.script:
            status, body = self.script.pop(0)
            return self.answer(status, body)
        self.sent.append(data)
        wamid = f"wamid.HBgM{len(self.sent):06d}"
        return self.answer(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": data["to"], "wa_id": data["to"]}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            },
        )

    def start(self) -> Meta:
        app = web.Application()
        app.router.add_post("/v21.0/{phone_id}/messages", self.messages)
        self.port = self._server.start(app)
        return self

    def stop(self) -> None:
        self._server.stop()


def _error(code: int, message: str, kind: str = "OAuthException") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEf123"}}


@pytest.fixture
def meta() -> Iterator[Meta]:
    m = Meta().start()
    yield m
    m.stop()


def all_day() -> tuple[int, int]:
    return (0, 23 * 60 + 59)  # quiet only from 23:59 to midnight


def settings_for(meta: Meta, smtp: Controller | None = None, **changes: Any) -> Settings:
    notify = changes.pop("notify", ())
    hours = changes.pop("working_hours", all_day())
    # Synthetic mail is dated days back; the age rule has its own test.
    changes.setdefault("max_age_hours", 0.0)
    reply = Autoreply(
        enabled=True,
        email=smtp is not None,
        whatsapp_phone_id=PHONE_ID,
        whatsapp_token=Secret(TOKEN),
        whatsapp_template="lead_ack",
        whatsapp_language="en",
        whatsapp_params=("[{first_name}]", "{product}"),
        whatsapp_url=meta.url,
        working_hours=hours,
        **changes,
    )
    extra: dict[str, Any] = {}
    if smtp is not None:
        extra = {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": "plain",
            "smtp_user": "sales@shreesteel.in",
            "smtp_password": Secret("s3cret"),
        }
    return Settings(autoreply=reply, seller_name="Asha", notify=notify, **extra)


class Running:
    def __init__(self, store: Store, settings: Settings, **kw: Any) -> None:
        self.health: list[Health] = []
        made = [make_target(t, settings) for t in all_targets(settings)]
        self.sender = Sender(store, made, self.health.append, poll=0.02, zone=IST, **kw)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sender.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def run_sender() -> Iterator[Any]:
    started: list[Running] = []

    def start(store: Store, settings: Settings, **kw: Any) -> Running:
        started.append(Running(store, settings, **kw))
        return started[-1]

    yield start
    for running in started:
        running.close()


def opened(url: str, settings: Settings) -> Store:
    store = Store.open(url)
    store.set_outbox_routes(routes(settings))
    return store


def distinct_leads(
    count: int, start: int = 1, need_email: bool = False
) -> list[tuple[bytes, dict[str, Any]]]:
    """Synthetic IndiaMART enquiries from ``count`` different buyers (phones and emails)."""
    found: list[tuple[bytes, dict[str, Any]]] = []
    phones: set[str] = set()
    emails: set[str] = set()
    seed = start
    while len(found) < count:
        raw, lead = lead_mail(seed)
        seed += 1
        email = lead.get("email") or ""
        if lead["phone"][-10:] in phones or (email and email in emails):
            continue
        if need_email and not email:
            continue
        phones.add(lead["phone"][-10:])
        emails.add(email)
        found.append((raw, lead))
    return found


def capture(store: Store, raw: bytes) -> int:
    outcome = Pipeline(store).accept(RawItem(raw, source="imap:test"))
    return outcome.lead_ids[0]


# --------------------------------------------------------------------------- sending


def test_a_new_buyer_gets_one_whatsapp_template_and_one_email_recorded_in_the_history(
    db_url: str,
    meta: Meta,
    smtp: tuple[Controller, Inbox],
    run_sender: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    controller, inbox = smtp
    settings = settings_for(meta, controller)
    ((raw, lead),) = distinct_leads(1, start=40, need_email=True)
    with opened(db_url, settings) as store:
        lead_id = capture(store, raw)
        run_sender(store, settings)
        wait_for(lambda: meta.sent and inbox.messages, timeout=10, what="both acknowledgements")
        wait_for(
            lambda: sum(e.action == "autoreply" for e in store.events(lead_id)) == 2,
            timeout=10,
            what="both sends in the history",
        )
        history = [e for e in store.events(lead_id) if e.action == "autoreply"]
        after = store.get_lead(lead_id)
    (message,) = meta.sent
    assert message["to"] == lead["phone"].lstrip("+")
    template = message["template"]
    assert (template["name"], template["language"]["code"]) == ("lead_ack", "en")
    params = [p["text"] for p in template["components"][0]["parameters"]]
    assert params[1] == lead["product"]
    (envelope, mail) = inbox.messages[0]
    assert envelope.rcpt_tos == [lead["email"]]
    assert mail["Auto-Submitted"] == "auto-replied"
    assert lead["product"] in mail.get_content()
    assert "Asha" in mail.get_content()
    assert sorted((e.detail or "").split(":", 1)[0] for e in history) == ["email", "whatsapp"]
    assert all(e.actor == "autoreply" for e in history)
    assert after is not None
    assert after.status == "new"  # an automatic message is not a person's contact
    assert TOKEN not in caplog.text


def test_a_hundred_buyers_each_by_email_push_and_pull_get_a_hundred_acknowledgements(
    sqlite_url: str, meta: Meta, run_sender: Any
) -> None:
    """The issue's count: 100 leads, each arriving three times, give exactly 100
    acknowledgements, 100 new-lead notifications per target and 100 lead.created deliveries."""
    receivers = Receivers().start()
    try:
        notify = targets(receivers)
        settings = settings_for(meta, notify=notify)
        with opened(sqlite_url, settings) as store:
            for seed, (raw, lead) in enumerate(distinct_leads(100, start=2000)):
                capture(store, raw)
                for channel in ("push", "pull"):
                    copy = {**lead, "channel": channel, "message_id": None,
                            "external_id": f"2791{seed:06d}"}  # fmt: skip
                    apply_json(store, copy)
            assert store.count_leads() == 100
            run_sender(store, settings)
            wait_for(
                lambda: {i.state for i in store.outbox_items(limit=2000)} == {"sent"},
                timeout=90,
                what="every message to be sent",
            )
        assert len(meta.sent) == 100
        assert len({m["to"] for m in meta.sent}) == 100
        for target in ("ntfy", "telegram", "webhook"):
            created = [
                d
                for d in receivers.ok(target)
                if d.headers.get("X-Leadtui-Event") == "lead.created"
            ]
            assert len(created) == 100, target
            assert len({d.event_id for d in created}) == 100, target
    finally:
        receivers.stop()


def test_a_buyer_is_acknowledged_once_in_48_hours_across_leads(
    sqlite_url: str, meta: Meta, run_sender: Any
) -> None:
    settings = settings_for(meta)
    ((raw, lead),) = distinct_leads(1, start=60)
    with opened(sqlite_url, settings) as store:
        capture(store, raw)
        # The same buyer asks about something else an hour later (a different lead).
        other = {**lead, "product": "Something Else Entirely", "message_id": None,
                 "external_id": "27999000001", "channel": "push"}  # fmt: skip
        second = apply_json(store, other)
        assert second.status == "new"
        acks = [i for i in store.outbox_items() if i.target == "autoreply-whatsapp"]
        assert len(acks) == 1
        run_sender(store, settings)
        wait_for(lambda: meta.sent, timeout=10)
        wait_for(lambda: store.outbox_items()[-1].state == "sent", timeout=5)
    assert len(meta.sent) == 1


def test_an_old_lead_from_a_first_run_backfill_is_not_acknowledged(
    sqlite_url: str, meta: Meta
) -> None:
    settings = settings_for(meta, max_age_hours=24.0)
    ((_raw, lead),) = distinct_leads(1, start=70)
    three_days_ago = datetime.now(IST) - timedelta(days=3)
    with opened(sqlite_url, settings) as store:
        old = {**lead, "received_at": three_days_ago.isoformat(timespec="seconds"),
               "message_id": None, "channel": "pull", "external_id": "27999000002"}  # fmt: skip
        assert apply_json(store, old).status == "new"
        assert [i for i in store.outbox_items() if i.target.startswith("autoreply")] == []
        ((_raw, fresh),) = distinct_leads(1, start=75)
        now = {**fresh, "received_at": datetime.now(IST).isoformat(timespec="seconds"),
               "message_id": None, "channel": "pull", "external_id": "27999000004"}  # fmt: skip
        assert apply_json(store, now).status == "new"
        assert [i.target for i in store.outbox_items()] == ["autoreply-whatsapp"]


# --------------------------------------------------------------------------- STOP


@pytest.mark.parametrize("via", ["whatsapp", "email"])
def test_a_buyer_who_writes_stop_is_never_acknowledged_again(
    db_url: str, meta: Meta, run_sender: Any, via: str
) -> None:
    settings = settings_for(meta, once_per_buyer_hours=0.0)
    (first, second) = distinct_leads(2, start=80)
    raw, lead = first
    with opened(db_url, settings) as store:
        capture(store, raw)
        if via == "whatsapp":
            stop = {"kind": "lead", "source": "whatsapp", "channel": "api", "name": lead["name"],
                    "phone": lead["phone"], "message": "Stop", "received_at": None}  # fmt: skip
        else:
            stop = {"kind": "reply", "source": "indiamart", "channel": "email",
                    "name": lead["name"], "company": lead["company"], "product": lead["product"],
                    "phone": lead["phone"], "email": None, "messages": ["STOP."],
                    "received_at": None, "message_id": None}  # fmt: skip
        assert apply_json(store, stop).status == "reply"
        assert store.autoreply_opted_out(lead)
        # The ack queued before the STOP is not sent; a new enquiry from them gets none.
        again = {**lead, "product": "Another Product", "message_id": None,
                 "external_id": "27999000003", "channel": "push"}  # fmt: skip
        assert apply_json(store, again).status == "new"
        capture(store, second[0])  # someone else: acknowledged
        run_sender(store, settings)
        wait_for(lambda: meta.sent, timeout=10)
        wait_for(
            lambda: all(i.state != "pending" for i in store.outbox_items()),
            timeout=10,
        )
        skipped = [i for i in store.outbox_items() if i.state == "skipped"]
    assert [m["to"] for m in meta.sent] == [second[1]["phone"].lstrip("+")]
    assert len(skipped) == 1
    assert "wrote STOP" in (skipped[0].last_error or "")


# --------------------------------------------------------------------------- hours and cap


def test_outside_working_hours_the_acknowledgement_waits_for_them(
    sqlite_url: str, meta: Meta, run_sender: Any
) -> None:
    now = datetime.now(IST)
    minute = now.hour * 60 + now.minute
    # Working hours start two hours from now and last one hour.
    start, end = (minute + 120) % 1440, (minute + 180) % 1440
    settings = settings_for(meta, working_hours=(start, end))
    ((raw, _lead),) = distinct_leads(1, start=90)
    with opened(sqlite_url, settings) as store:
        capture(store, raw)
        run_sender(store, settings)
        wait_for(
            lambda: store.outbox_items()[0].next_attempt_ts > time.time() + 3600,
            timeout=10,
            what="the acknowledgement to wait",
        )
        item = store.outbox_items()[0]
    at = datetime.fromtimestamp(item.next_attempt_ts, IST)
    assert at.hour * 60 + at.minute == start
    assert (item.state, item.attempts) == ("pending", 0)
    assert meta.sent == []


def test_the_daily_cap_stops_acknowledgements_for_the_day(
    sqlite_url: str, meta: Meta, run_sender: Any
) -> None:
    settings = settings_for(meta, daily_cap=2)
    with opened(sqlite_url, settings) as store:
        for raw, _lead in distinct_leads(3, start=100):
            capture(store, raw)
        run_sender(store, settings)
        wait_for(lambda: all(i.state != "pending" for i in store.outbox_items()), timeout=10)
        states = sorted(i.state for i in store.outbox_items())
        skipped = next(i for i in store.outbox_items() if i.state == "skipped")
    assert states == ["sent", "sent", "skipped"]
    assert "daily cap of 2" in (skipped.last_error or "")
    assert len(meta.sent) == 2


# --------------------------------------------------------------------------- errors


def test_meta_errors_retry_or_give_up_as_their_codes_say(
    sqlite_url: str, meta: Meta, run_sender: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    meta.script = [
        (400, _error(130429, "(#130429) Rate limit hit", "OAuthException")),
        (500, _error(131000, "Something went wrong")),
        (400, _error(132001, "(#132001) Template name does not exist in the translation")),
    ]
    settings = settings_for(meta)
    (first, second) = distinct_leads(2, start=110)
    with opened(sqlite_url, settings) as store:
        capture(store, first[0])
        running = run_sender(store, settings, base_delay=0.01)
        wait_for(lambda: store.outbox_items()[0].state == "dead", timeout=15, what="a dead letter")
        dead = store.outbox_items()[0]
        capture(store, second[0])
        wait_for(lambda: meta.sent, timeout=10, what="the next one to go through")
        wait_for(lambda: running.health and running.health[-1].state == "ok", timeout=5)
    assert meta.tries[:3] == [400, 500, 400]
    assert dead.attempts == 3
    assert "132001" in (dead.last_error or "")
    assert TOKEN not in caplog.text


def test_a_bad_token_waits_says_what_to_fix_and_is_never_shown(
    sqlite_url: str, meta: Meta, run_sender: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = settings_for(meta)
    wrong = Autoreply(
        **{**_fields(settings.autoreply), "whatsapp_token": Secret("EAAG-wrong-token-9z")}
    )
    settings = Settings(autoreply=wrong)
    ((raw, _lead),) = distinct_leads(1, start=120)
    with opened(sqlite_url, settings) as store:
        capture(store, raw)
        running = run_sender(store, settings)
        wait_for(lambda: store.outbox_items()[0].attempts >= 1, timeout=10)
        item = store.outbox_items()[0]
        wait_for(lambda: running.health and running.health[-1].state == "error", timeout=5)
    assert item.state == "pending"
    assert "check whatsapp_token" in (item.last_error or "")
    assert "whatsapp_token" in (running.health[-1].last_error or "")
    for text in (caplog.text, item.last_error or "", repr(running.health)):
        assert "EAAG-wrong-token-9z" not in text
        assert TOKEN not in text


def _fields(value: Autoreply) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__dataclass_fields__}


# --------------------------------------------------------------------------- settings


def test_autoreply_is_off_by_default_and_read_from_its_table(tmp_path: Path) -> None:
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text("")
    assert config.load(cfg, environ={}).autoreply.enabled is False
    assert all_targets(config.load(cfg, environ={})) == []
    cfg.write_text(
        "[autoreply]\nenabled = true\nemail = true\n"
        f'whatsapp_phone_id = "{PHONE_ID}"\nwhatsapp_token_env = "WA_TOKEN"\n'
        'whatsapp_template = "lead_ack"\nwhatsapp_params = ["{first_name}", "{product}"]\n'
        'working_hours = "10:00-18:30"\ndaily_cap = 40\n'
    )
    settings = config.load(cfg, environ={"WA_TOKEN": TOKEN})
    reply = settings.autoreply
    assert (reply.enabled, reply.email, reply.whatsapp) == (True, True, True)
    assert reply.working_hours == (600, 1110)
    assert reply.daily_cap == 40
    assert TOKEN not in repr(settings)
    names = [t.name for t in all_targets(settings)]
    assert names == ["autoreply-email", "autoreply-whatsapp"]
    # Working hours become the targets' quiet hours: 18:30 to 10:00.
    assert {t.quiet_hours for t in all_targets(settings)} == {(1110, 600)}


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ("enabled = true", "set email = true and/or whatsapp_phone_id"),
        ('whatsapp_phone_id = "1"', "needs whatsapp_token"),
        ('email = true\nemail_template = "nope"', "is not a \\[templates.NAME\\]"),
        ('whatsapp_params = ["{budget}"]', "not a placeholder"),
        ('working_hours = "9 to 5"', "working_hours must look like"),
        ('colour = "blue"', "unknown key 'colour'"),
    ],
)
def test_bad_autoreply_tables_say_what_to_fix(tmp_path: Path, table: str, says: str) -> None:
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(f"[autoreply]\n{table}\n")
    with pytest.raises(config.ConfigError, match=says):
        config.load(cfg, environ={})


def test_the_request_body_follows_the_cloud_api_shape() -> None:
    settings = Settings(
        autoreply=Autoreply(
            enabled=True,
            whatsapp_phone_id=PHONE_ID,
            whatsapp_token=Secret(TOKEN),
            whatsapp_template="lead_ack",
            whatsapp_params=("{first_name}", "{city}"),
        )
    )
    (target_config,) = all_targets(settings)
    target = make_target(target_config, settings)
    assert target_config.url == f"https://graph.facebook.com/v21.0/{PHONE_ID}/messages"
    body = target.body({"name": "Dr. Ravi Kumar", "phone": "098450 12345", "city": None})  # type: ignore[attr-defined]
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919845012345",
        "type": "template",
        "template": {
            "name": "lead_ack",
            "language": {"code": "en"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Ravi"}, {"type": "text", "text": "-"}],
                }
            ],
        },
    }
    assert TOKEN not in target.describe()


def test_one_buyer_captured_at_the_same_moment_on_two_connections_is_acknowledged_once(
    pg_url: str, meta: Meta
) -> None:
    """IndiaMART's push and the mail of one buyer's enquiries commit at the same moment from
    two connections (PostgreSQL): both read "not acknowledged yet" unless the buyer is
    locked first. Each buyer here sends two different enquiries at once: two leads, one
    acknowledgement."""
    settings = settings_for(meta)
    buyers = distinct_leads(12, start=3000)
    with opened(pg_url, settings) as by_mail, opened(pg_url, settings) as by_push:
        for seed, (raw, lead) in enumerate(buyers):
            together = threading.Barrier(2)
            other = {**lead, "channel": "push", "message_id": None,
                     "external_id": f"2793{seed:06d}", "product": f"Other product {seed}"}  # fmt: skip

            def mail(raw: bytes = raw, together: threading.Barrier = together) -> None:
                together.wait()
                capture(by_mail, raw)

            def push(other: dict[str, Any] = other, together: threading.Barrier = together) -> None:
                together.wait()
                apply_json(by_push, other)

            threads = [threading.Thread(target=mail), threading.Thread(target=push)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        assert by_mail.count_leads() == 24
        acks = [i for i in by_mail.outbox_items(limit=1000) if i.target == WHATSAPP]
        per_buyer = Counter(i.payload["lead"]["phone"] for i in acks)
        assert sorted(per_buyer.values()) == [1] * 12
