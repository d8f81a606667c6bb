"""After the lead: reply with a template (``R``) and call with an outcome (``d``).

Templates are pure and tested as such; the keys drive the real app under Pilot against a real
store; email replies go to a real SMTP server (aiosmtpd) on loopback, which the test reads back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from aiosmtpd.controller import Controller
from smtp_server import Inbox
from test_app import NOW, Recorder, accept, lead_named, make_app, sample, select, started, until
from textual.pilot import Pilot

from leadtui import config, templates
from leadtui.screens.prompts import parse_when
from leadtui.screens.reply import ReplyPrompt
from leadtui.store import Lead, Store, StoreError
from leadtui.triage import whatsapp_message_url

SIZE = (120, 30)
SELLER = {"name": "Asha", "company": "Shree Steel Traders", "phone": "+91 98765 43210"}


@pytest.fixture(autouse=True)
def _india_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def filled(tmp_path: Path) -> str:
    """The sample IndiaMART and TradeIndia emails, through the real pipeline."""
    url = str(tmp_path / "leads.db")
    accept(url, [sample(f"{i:02d}") for i in range(1, 17)])
    return url


def history(url: str, lead_id: int, *actions: str) -> list[tuple[str, str, str]]:
    with Store.open(url) as store:
        return [
            (e.actor, e.action, e.detail or "")
            for e in store.events(lead_id)
            if e.action in actions
        ]


def fields(**lead: Any) -> dict[str, str]:
    return templates.values(lead, SELLER)


# --------------------------------------------------------------------------- templates


def test_every_placeholder_is_filled() -> None:
    text = " | ".join(f"{{{p}}}" for p in templates.PLACEHOLDERS)
    values = fields(
        name="Dr. Ravi Kumar", company="RK Infra", product="MS Pipe", quantity="500",
        unit="kg", city="Pune", state="Maharashtra", phone="+919800000001",
        email="ravi@example.in",
    )  # fmt: skip
    assert templates.render(text, values) == (
        "Dr. Ravi Kumar | Ravi | RK Infra | MS Pipe | 500 | kg | Pune | Maharashtra | "
        "+919800000001 | ravi@example.in | Asha | Shree Steel Traders | +91 98765 43210"
    )


def test_the_default_template_reads_well_with_everything_and_with_nothing() -> None:
    full = fields(name="Priya Nair", product="Floor Tiles", quantity="1200", unit="Square Feet")
    assert templates.render(templates.DEFAULT_TEXT, full) == (
        "Namaste Priya, thank you for your enquiry for Floor Tiles (1200 Square Feet) on "
        "IndiaMART. This is Asha from Shree Steel Traders. May I call you to understand your "
        "requirement and share our best price? You can also reach me on +91 98765 43210."
    )
    empty = templates.values({"name": None}, {})
    assert templates.render(templates.DEFAULT_TEXT, empty) == (
        "Namaste, thank you for your enquiry on IndiaMART. May I call you to understand your "
        "requirement and share our best price?"
    )
    assert templates.render(templates.DEFAULT_SUBJECT, empty) == "Your enquiry"


def test_a_missing_value_leaves_no_none_doubled_space_or_dangling_comma() -> None:
    text = "Hi {first_name}, {company}, {city}. Need {quantity} {unit} ({unit}) of {product}"
    out = templates.render(text, fields(name="Meena", product="Tiles"))
    assert out == "Hi Meena. Need of Tiles"
    assert "None" not in out
    assert "  " not in out
    assert ",," not in out
    assert ", ." not in out
    assert templates.render("{company}, {city}, thanks", fields()) == "thanks"


def test_non_latin_names_and_honorifics() -> None:
    assert fields(name="राजेश वर्मा")["first_name"] == "राजेश"
    assert fields(name="Smt. ಲಕ್ಷ್ಮಿ ರಾವ್")["first_name"] == "ಲಕ್ಷ್ಮಿ"
    assert fields(name="Mr.")["first_name"] == ""
    rendered = templates.render(templates.DEFAULT_TEXT, fields(name="श्री", product="ईंट"))
    assert rendered.startswith("Namaste श्री, thank you for your enquiry for ईंट on IndiaMART.")


def test_a_hostile_name_is_text_once_and_url_encoded_in_the_link() -> None:
    hostile = "[bold red]X[/] \x1b]8;;http://evil\x07{seller_phone}\x1b[2J"
    out = templates.render("Hi {name}!", fields(name=hostile))
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "{seller_phone}" in out  # substituted once: a buyer's braces stay braces
    assert "+91 98765" not in out
    url = whatsapp_message_url("+91 94471 00234", out)
    assert url is not None
    assert url.startswith("https://wa.me/919447100234?text=Hi%20%5Bbold%20red%5DX")
    assert all(c.isalnum() or c in "%._~-" for c in url.partition("?text=")[2])
    assert unquote(url.partition("?text=")[2]) == out


def test_an_unknown_placeholder_is_a_config_error_at_start_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "leadtui.toml"
    path.write_text('[templates.price]\ntext = "Namaste {frist_name}, rates attached"\n')
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, environ={})
    message = str(caught.value)
    assert "\n" not in message
    assert "templates.price: {frist_name} is not a placeholder; use {name}, {first_name}" in message
    path.write_text('[templates.price]\ntext = "Rates[ for {product}"\n')
    with pytest.raises(config.ConfigError, match=r"templates.price: a \[ or \] without its pair"):
        config.load(path, environ={})


def test_templates_come_from_the_config_beside_the_default(tmp_path: Path) -> None:
    path = tmp_path / "leadtui.toml"
    path.write_text(
        '[seller]\nname = "Asha"\n\n[templates.price]\n'
        'text = "Rates[ for {product}] attached. {seller}"\nsubject = "Rates"\n'
    )
    settings = config.load(path, environ={})
    assert list(settings.templates) == ["default", "price"]
    assert settings.templates["price"].subject == "Rates"
    assert settings.seller["name"] == "Asha"
    assert config.Settings().templates["default"] is templates.DEFAULT


def test_times_for_a_call_back() -> None:
    now = datetime(2026, 3, 12, 20, 0)  # a Thursday evening
    assert parse_when("tomorrow 11:00", now) == datetime(2026, 3, 13, 11, 0)
    assert parse_when("+2h", now) == datetime(2026, 3, 12, 22, 0)
    assert parse_when("+30m", now) == datetime(2026, 3, 12, 20, 30)
    assert parse_when("fri 4pm", now) == datetime(2026, 3, 13, 16, 0)
    assert parse_when("15/12 10:30", now) == datetime(2026, 12, 15, 10, 30)
    assert parse_when("9am", now) == datetime(2026, 3, 13, 9, 0)  # 9 today has passed
    assert parse_when("22:15", now) == datetime(2026, 3, 12, 22, 15)
    assert parse_when("mon", now) == datetime(2026, 3, 16, 10, 0)
    for wrong in ("soon", "25:00", "13pm", ""):
        with pytest.raises(ValueError, match="tomorrow 11:00"):
            parse_when(wrong, now)


# --------------------------------------------------------------------------- R: WhatsApp


async def presses(pilot: Pilot[Any], *keys: str) -> int:
    await pilot.press(*keys)
    return len(keys)


async def test_R_enter_opens_whatsapp_with_the_default_template_in_two_keys(filled: str) -> None:
    app = make_app(filled, seller_name="Asha", seller_company="Shree Steel Traders")
    priya = lead_named(filled, "Priya Nair")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        heard = Recorder(app)
        await select(pilot, app, priya.id)
        keys = await presses(pilot, "R")
        prompt = await until(
            pilot, lambda: isinstance(app.screen, ReplyPrompt) and app.screen, "the reply picker"
        )
        assert prompt.preview.startswith(
            "Namaste Priya, thank you for your enquiry for Terracotta Floor Tiles "
            "(1200 Square Feet) on IndiaMART. This is Asha from Shree Steel Traders."
        )
        keys += await presses(pilot, "enter")
        assert keys <= 3
        await until(pilot, lambda: app.table.leads[priya.id].status == "contacted", "contacted")
        assert app.clipboard.startswith("https://wa.me/919447100234?text=Namaste%20Priya%2C")
        assert unquote(app.clipboard.partition("?text=")[2]) == prompt.preview
        assert heard.toasts[0].startswith("Copied [link='https://wa.me/919447100234?text=")
        [(actor, action, detail)] = history(filled, priya.id, "sent")
        assert (actor, action) == ("asha", "sent")
        assert detail.startswith("whatsapp · default: Namaste Priya, thank you")
        lead = lead_named(filled, "Priya Nair")
        assert (lead.contacted_by, lead.status) == ("asha", "contacted")


async def test_R_previews_each_template_and_a_lead_further_on_keeps_its_status(
    filled: str,
) -> None:
    price = templates.Template("price", "Rates[ for {product}] attached, {first_name}.")
    app = make_app(filled, templates={"default": templates.DEFAULT, "price": price})
    kiran = lead_named(filled, "Kiran Patel")
    with Store.open(filled) as store:
        store.set_status(kiran.id, "quoted", "ravi")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await select(pilot, app, kiran.id)
        await pilot.press("R", "down")
        prompt = await until(
            pilot, lambda: isinstance(app.screen, ReplyPrompt) and app.screen, "the reply picker"
        )
        await until(pilot, lambda: prompt.preview.startswith("Rates"), "the second preview")
        assert prompt.preview == "Rates for MS Window Grill attached, Kiran."
        await pilot.press("enter")
        await until(pilot, lambda: history(filled, kiran.id, "sent"), "the sent event")
        assert history(filled, kiran.id, "sent") == [
            ("asha", "sent", "whatsapp · price: Rates for MS Window Grill attached, Kiran.")
        ]
        lead = lead_named(filled, "Kiran Patel")
        assert lead.status == "quoted"
        assert lead.contacted_by == "ravi"  # the first contact stays


# --------------------------------------------------------------------------- d: calls


async def test_d_copies_the_number_and_no_answer_sets_a_follow_up_in_2_hours(
    filled: str,
) -> None:
    app = make_app(filled)
    sunil = lead_named(filled, "Sunil Rao")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        heard = Recorder(app)
        await select(pilot, app, sunil.id)
        keys = await presses(pilot, "d")
        assert app.clipboard == "+919845600066"
        assert heard.toasts[0] == "Copied [link='tel:+919845600066']tel:+919845600066[/link]"
        keys += await presses(pilot, "n")
        assert keys <= 4
        await until(pilot, lambda: history(filled, sunil.id, "call"), "the call event")
        assert history(filled, sunil.id, "call") == [
            ("asha", "call", "no answer · next call 2026-03-12 22:00")
        ]
        lead = lead_named(filled, "Sunil Rao")
        assert (lead.follow_up, lead.status, lead.contacted_ts) == ("2026-03-12", "new", None)
        assert lead.follow_up_ts == NOW + 2 * 3600  # a reminder rings at 22:00


async def test_d_connected_is_a_contact_and_busy_follows_the_configured_hours(
    filled: str,
) -> None:
    app = make_app(filled, call_retry_hours=5.0)
    sunil, meena = lead_named(filled, "Sunil Rao"), lead_named(filled, "Meena Iyer")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await select(pilot, app, sunil.id)
        await pilot.press("d", "c")
        await until(pilot, lambda: app.table.leads[sunil.id].status == "contacted", "contacted")
        assert history(filled, sunil.id, "call") == [("asha", "call", "connected")]
        assert lead_named(filled, "Sunil Rao").contacted_by == "asha"
        await select(pilot, app, meena.id)
        await pilot.press("d", "b")
        await until(pilot, lambda: history(filled, meena.id, "call"), "the busy call")
        assert history(filled, meena.id, "call") == [
            ("asha", "call", "busy · next call 2026-03-13 01:00")
        ]
        assert lead_named(filled, "Meena Iyer").follow_up == "2026-03-13"


async def test_d_wrong_number_offers_spam_and_call_back_takes_a_time(filled: str) -> None:
    app = make_app(filled)
    ahmed, kavita = lead_named(filled, "Ahmed Khan"), lead_named(filled, "Kiran Patel")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await select(pilot, app, ahmed.id)
        await pilot.press("d", "w", "s")  # three keys: call, wrong number, spam
        await until(pilot, lambda: app.table.leads[ahmed.id].status == "spam", "spam")
        assert history(filled, ahmed.id, "call") == [("asha", "call", "wrong number")]
        await select(pilot, app, kavita.id)
        await pilot.press("d", "l", *"tomorrow 11:00", "enter")
        await until(pilot, lambda: history(filled, kavita.id, "call"), "the call back")
        assert history(filled, kavita.id, "call") == [
            ("asha", "call", "call back · next call 2026-03-13 11:00")
        ]
        assert lead_named(filled, "Kiran Patel").follow_up == "2026-03-13"
        assert lead_named(filled, "Kiran Patel").follow_up_ts == NOW + 15 * 3600  # 11:00 IST


# --------------------------------------------------------------------------- R: email


def smtp_settings(controller: Controller, password: str = "s3cret") -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": controller.port,
        "smtp_security": "plain",
        "smtp_user": "sales@shreesteel.in",
        "smtp_password": config.Secret(password),
        "seller_name": "Asha",
    }


async def send_email_reply(pilot: Pilot[Any], lead: Lead) -> None:
    app = pilot.app
    await select(pilot, app, lead.id)  # type: ignore[arg-type]
    await pilot.press("R")
    prompt = await until(
        pilot, lambda: isinstance(app.screen, ReplyPrompt) and app.screen, "the reply picker"
    )
    email_line = next(i for i, c in enumerate(prompt.choices) if c.id.startswith("email:"))
    await pilot.press(*["down"] * email_line, "enter")


async def test_an_email_reply_is_threaded_delivered_and_recorded(
    filled: str, smtp: tuple[Controller, Inbox]
) -> None:
    controller, inbox = smtp
    app = make_app(filled, **smtp_settings(controller))
    priya = lead_named(filled, "Priya Nair")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await send_email_reply(pilot, priya)
        await until(pilot, lambda: history(filled, priya.id, "sent"), "the sent event", 10)
    [(envelope, message)] = inbox.messages
    assert envelope.rcpt_tos == ["priya.nair@example.in"]
    assert message["From"] == "sales@shreesteel.in"
    assert message["Subject"] == "Your enquiry for Terracotta Floor Tiles"
    assert message["In-Reply-To"] == f"<{priya.message_id}>"
    assert message["References"] == f"<{priya.message_id}>"
    body = message.get_content()
    assert body.startswith("Namaste Priya, thank you for your enquiry for Terracotta Floor Tiles")
    [(actor, _, detail)] = history(filled, priya.id, "sent")
    assert actor == "asha"
    assert detail.startswith(
        "email to priya.nair@example.in · default: Your enquiry for Terracotta Floor Tiles — "
        "Namaste Priya"
    )
    assert lead_named(filled, "Priya Nair").status == "contacted"


async def test_a_hidden_buyer_address_is_answered_through_the_original_reply_to(
    filled: str, smtp: tuple[Controller, Inbox]
) -> None:
    controller, inbox = smtp
    app = make_app(filled, **smtp_settings(controller))
    farhan, meena = lead_named(filled, "Farhan Ali"), lead_named(filled, "Meena Iyer")
    assert farhan.email is None
    assert farhan.phone is None
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        heard = Recorder(app)
        await send_email_reply(pilot, farhan)
        await until(pilot, lambda: inbox.messages, "the delivered mail", 10)
        await send_email_reply(pilot, meena)  # no address, and no Reply-To to answer
        await until(pilot, lambda: [t for t in heard.toasts if "not sent" in t], "refused", 10)
    [(envelope, message)] = inbox.messages
    assert envelope.rcpt_tos == ["farhan.ali.4cf63a@reply.indiamart.com"]
    assert message["In-Reply-To"] == f"<{farhan.message_id}>"
    assert history(filled, farhan.id, "sent")[0][2].startswith(
        "email to farhan.ali.4cf63a@reply.indiamart.com · default: Your enquiry for AAC Blocks"
    )
    assert [t for t in heard.toasts if "not sent" in t] == [
        "Email to Meena Iyer not sent: the buyer's address is hidden and the original mail has "
        "no Reply-To. R offers it again."
    ]
    assert history(filled, meena.id, "sent") == []


async def test_a_refused_login_keeps_the_draft_records_nothing_and_says_why(
    filled: str, smtp: tuple[Controller, Inbox]
) -> None:
    controller, inbox = smtp
    app = make_app(filled, **smtp_settings(controller, password="wrong"))
    priya = lead_named(filled, "Priya Nair")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        heard = Recorder(app)
        await send_email_reply(pilot, priya)
        failed = await until(
            pilot, lambda: [t for t in heard.toasts if "not sent" in t], "the failure", 10
        )
        assert failed == [
            f"Email to Priya Nair not sent: the mail server 127.0.0.1:{smtp_settings(controller)['smtp_port']} "
            "refused the login for sales@shreesteel.in: check [smtp] user and password "
            "(Gmail wants an app password). R offers it again."
        ]
        assert "\n" not in failed[0]
        assert "wrong" not in failed[0]
        assert inbox.messages == []
        assert history(filled, priya.id, "sent") == []
        assert lead_named(filled, "Priya Nair").status == "new"
        await pilot.press("R")
        prompt = await until(
            pilot, lambda: isinstance(app.screen, ReplyPrompt) and app.screen, "the reply picker"
        )
        assert prompt.choices[0].label == "Email · default (not sent yet: again)"
        assert "Namaste Priya" in prompt.preview


# --------------------------------------------------------------------------- the store


def test_sent_and_calls_are_events_with_one_change_each(db_url: str) -> None:
    """On SQLite and PostgreSQL: a reply is a contact; a call sets the next day or contacts."""
    accept(db_url, [sample("01"), sample("05")])
    with Store.open(db_url) as store:
        sunil, meena = sorted(store.list_leads(), key=lambda x: x.id)
        before = store.cursor()
        lead = store.record_sent(sunil.id, "whatsapp · default", "Namaste  Sunil\n", "asha")
        assert (lead.status, lead.contacted_by, lead.last_action) == ("contacted", "asha", "sent")
        assert store.record_sent(sunil.id, "whatsapp · default", "again", "ravi").contacted_by == (
            "asha"
        )
        lead = store.log_call(meena.id, "no answer", "ravi", follow_up=datetime(2026, 3, 13).date())
        assert (lead.follow_up, lead.status, lead.contacted_ts) == ("2026-03-13", "new", None)
        assert store.log_call(meena.id, "connected", "ravi").status == "contacted"
        assert len(store.changes_since(before).leads) == 2
        with pytest.raises(StoreError, match="unknown call outcome"):
            store.log_call(meena.id, "maybe", "ravi")
        assert [(e.action, e.detail) for e in store.events(sunil.id)][-2:] == [
            ("sent", "whatsapp · default: Namaste Sunil"),
            ("sent", "whatsapp · default: again"),
        ]
        assert [(e.actor, e.detail) for e in store.events(meena.id) if e.action == "call"] == [
            ("ravi", "no answer"),
            ("ravi", "connected"),
        ]
