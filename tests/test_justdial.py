"""JustDial's lead push, end to end: as JustDial sends it, over real HTTP on loopback, into a
real store (SQLite and PostgreSQL), then in the real app under Pilot and in ``leadtui doctor``.

JustDial publishes no documentation; the requests here follow what the public receivers read
(honeytech123/webhook-justdial: a GET with the lead in the query string, answered 200;
Dineshkr23/justdial-lead-processing-service: GET or POST with the same names, answered 200
``RECEIVED``): leadid, leadtype (company | category), prefix (Mr | Ms | Dr), name, mobile,
phone, email, date (YYYY-MM-DD), time (HH:MM:SS), category, city, area, brancharea,
dncmobile / dncphone (0 | 1), company, pincode, branchpin, parentid.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from helpers import FIXTURES, static_text, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_server import PUBLIC_URL, Server, running
from test_app import NOW, Recorder, accept, cell, make_app, select, started, until

from leadtui import config, sources
from leadtui.capture import CaptureService, RawItem
from leadtui.cli import main
from leadtui.config import ConfigError
from leadtui.formats import justdial as payload
from leadtui.ingest import auth
from leadtui.screens.detail import DetailScreen
from leadtui.screens.prompts import ChoicePrompt
from leadtui.store import Health, Lead, LeadQuery, Store

TOKEN = "jd-5c1f0e9a7b3d4e28a6c4b2d0f8e6a4c2"
URL = f"/api/justdial/{TOKEN}"
SIZE = (120, 30)

LEAD: dict[str, str] = {
    "leadid": "JD0312345678",
    "leadtype": "category",
    "prefix": "Mr",
    "name": "RAJESH KUMAR",
    "mobile": "9845600066",
    "phone": "022-26123456",
    "email": "Rajesh.Kumar@Example.in",
    "date": "2026-03-02",
    "time": "18:05:09",
    "category": "Fly Ash Bricks",
    "city": "Mysuru",
    "area": "Hebbal",
    "brancharea": "Vijayanagar",
    "dncmobile": "0",
    "dncphone": "0",
    "company": "Kumar Builders",
    "pincode": "570016",
    "branchpin": "570017",
    "parentid": "PXX80.XX80.180301120512.Q4R2",
}


@pytest.fixture
def server(db_url: str) -> Iterator[Server]:
    with running(db_url, LEADTUI_JUSTDIAL_TOKEN=TOKEN) as s:
        yield s


def get(server: Server, fields: dict[str, str], path: str = URL) -> Any:
    return server.request("GET", f"{path}?{urlencode(fields)}")


def leads(store: Store) -> list[Lead]:
    return store.list_leads(LeadQuery(limit=100))


def review_reasons(store: Store) -> list[str]:
    return [r.error or "" for r in store.review_items()]


# --------------------------------------------------------------------------- as JustDial sends it


def test_a_get_as_justdial_sends_it_is_a_lead_with_every_field(server: Server) -> None:
    reply = get(server, {**LEAD, "utm_source": "jd-app"})
    assert (reply.status, reply.content_type, reply.body) == (200, "text/plain", b"RECEIVED")
    (lead,) = leads(server.store)  # committed before the answer
    assert (lead.source, lead.channel, lead.external_id) == ("justdial", "push", "JD0312345678")
    assert (lead.name, lead.company) == ("Rajesh Kumar", "Kumar Builders")
    assert (lead.phone, lead.phone_alt, lead.email) == (
        "+919845600066",
        "+912226123456",
        "rajesh.kumar@example.in",
    )
    assert lead.received_at == "2026-03-02T18:05:09+05:30"  # JustDial's date and time are IST
    assert (lead.city, lead.address, lead.pincode) == ("Mysuru", "Hebbal", "570016")
    assert (lead.product, lead.category) == ("Fly Ash Bricks", "Fly Ash Bricks")
    assert lead.specs == {
        "Lead type": "category",
        "Title": "Mr",
        "Branch area": "Vijayanagar",
        "Branch PIN": "570017",
        "Parent ID": "PXX80.XX80.180301120512.Q4R2",
        "Utm source": "jd-app",  # a field leadtui does not know is kept, never dropped
    }
    raw = json.loads(server.store.raw_body(lead.raw_id or 0) or b"{}")
    assert raw["request"] == {"method": "GET", "query": urlencode({**LEAD, "utm_source": "jd-app"})}
    wait_for(lambda: server.health and server.health[-1].state == "receiving", what="health")
    assert server.health[-1].source == "justdial"


@pytest.mark.parametrize("media", ["application/x-www-form-urlencoded", "application/json"])
def test_a_post_of_the_same_names_as_a_form_or_json_is_the_same_lead(
    server: Server, media: str
) -> None:
    fields: dict[str, Any] = {**LEAD, "dncmobile": 1, "dncphone": 0}
    body = json.dumps(fields) if media == "application/json" else urlencode(fields)
    reply = server.request("POST", URL, body.encode(), {"content-type": media})
    assert (reply.status, reply.body) == (200, b"RECEIVED")
    (lead,) = leads(server.store)
    assert (lead.external_id, lead.name, lead.phone) == (
        "JD0312345678",
        "Rajesh Kumar",
        "+919845600066",
    )
    assert lead.received_at == "2026-03-02T18:05:09+05:30"
    assert lead.specs["Do not call"] == "+919845600066"  # dncmobile=1: the mobile only


def test_a_replay_adds_no_lead_and_no_raw_item(server: Server) -> None:
    for _ in range(3):
        assert get(server, LEAD).status == 200
    form = urlencode(LEAD).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    assert server.request("POST", URL, form, headers).status == 200  # the same lead, POSTed
    (lead,) = leads(server.store)
    assert server.store.lead_raw_ids(lead.id) == [lead.raw_id]  # one raw item: justdial:<leadid>
    assert lead.enquiry_no == 1


# --------------------------------------------------------------------------- the token


def test_a_wrong_token_is_404_stores_nothing_and_is_never_logged(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    guess = "jd-guessed-0000000000000000000000"
    with caplog.at_level(logging.DEBUG, logger="leadtui"):
        for path in (f"/api/justdial/{guess}", URL + "x", URL[:-1], "/api/justdial/"):
            reply = get(server, LEAD, path)
            assert reply.status == 404
            assert reply.json()["detail"] == "no such resource"
        assert get(server, LEAD).status == 200
    assert "GET /api/justdial/… -> 404" in caplog.text
    assert "GET /api/justdial/… -> 200" in caplog.text
    assert TOKEN not in caplog.text
    assert guess not in caplog.text
    assert len(leads(server.store)) == 1


def test_guessing_tokens_is_throttled_like_the_indiamart_push(sqlite_url: str) -> None:
    with running(sqlite_url, LEADTUI_JUSTDIAL_TOKEN=TOKEN) as server:
        for i in range(auth.FAILURES_PER_MINUTE):
            assert get(server, LEAD, f"/api/justdial/guess-{i:02d}").status == 404
        refused = get(server, LEAD)  # the right token too, from an address that guessed
        assert refused.status == 429
        assert int(refused.headers["retry-after"]) > 0
        assert leads(server.store) == []


def test_justdial_without_a_token_is_off(sqlite_url: str) -> None:
    with running(sqlite_url) as server:
        assert get(server, LEAD, "/api/justdial/anything").status == 404
        assert get(server, LEAD, URL).status == 404
        assert leads(server.store) == []


# --------------------------------------------------------------------------- bad input


def test_malformed_and_hostile_requests_go_to_review_and_the_server_keeps_answering(
    sqlite_url: str,
) -> None:
    hostile = "\x1b[2J\x1b]8;;http://evil\x07[bold]<script>Mallory"
    with running(sqlite_url, LEADTUI_JUSTDIAL_TOKEN=TOKEN) as server:
        no_id = {k: v for k, v in LEAD.items() if k != "leadid"} | {"name": hostile}
        huge = {**LEAD, "leadid": "JD-HUGE", "name": "A" * 200_000}
        form = {"content-type": "application/x-www-form-urlencoded"}
        sent = [
            get(server, no_id),
            server.request("POST", URL, urlencode(huge).encode(), form),
            server.request(
                "POST", URL, b'{"leadid": "JD-1", "name"', {"content-type": "application/json"}
            ),
            server.request("POST", URL, b"[1, 2, 3]", {"content-type": "application/json"}),
            server.request("POST", URL, b"leadid=JD-2&name=\xff\xfe", form),
            get(server, {**LEAD, "leadid": "JD-NOBODY", "mobile": "12", "phone": "", "email": ""}),
        ]
        assert [r.status for r in sent] == [200] * 6
        assert [r.body for r in sent] == [b"RECEIVED"] * 6
        reasons = review_reasons(server.store)
        assert len(reasons) == 6
        expected = (
            "without a leadid",
            "has 200,000 characters",
            "not valid JSON",
            "a list, not one object",
            "not UTF-8",
            "no mobile, phone or email",
        )
        for words in expected:
            assert any(words in reason for reason in reasons), words
        assert leads(server.store) == []
        # The raw is kept as it came, control characters and all, for the review queue.
        kept = [json.loads(server.store.raw_body(r.id) or b"") for r in server.store.review_items()]
        assert any(k["justdial"] and k["justdial"].get("name") == hostile for k in kept)
        assert any("body_base64" in k["request"] for k in kept)
        wait_for(lambda: server.health[-1].state == "review", what="the review health")
        # … and the next lead is taken as usual.
        assert get(server, LEAD).status == 200
        (lead,) = leads(server.store)
        assert lead.name == "Rajesh Kumar"
        over = server.request("POST", URL, b"x" * (1024 * 1024 + 1), form)
        assert over.status == 413
        assert server.request("GET", "/healthz").status == 200


def test_markup_and_control_characters_in_a_lead_are_plain_text(server: Server) -> None:
    assert (
        get(server, {**LEAD, "name": "[bold]Ravi\x1b[31m\u202e Kumar", "city": "<b>Pune"}).status
        == 200
    )
    (lead,) = leads(server.store)
    assert lead.name == "[bold]Ravi[31m Kumar"  # markup kept as typed, controls gone
    assert lead.city == "<b>Pune"


def test_a_bare_call_stores_nothing_and_answers_received(server: Server) -> None:
    reply = server.request("GET", URL)  # JustDial or a person checking the URL
    assert (reply.status, reply.body) == (200, b"RECEIVED")
    assert server.store.review_items() == []
    assert leads(server.store) == []


# --------------------------------------------------------------------------- one buyer, two channels


def test_the_same_buyer_by_indiamart_email_and_justdial_is_two_leads_linked(server: Server) -> None:
    email = FIXTURES / "samples" / "email" / "01-direct-enquiry-qp.eml"
    accept(server.store.url, [RawItem(email.read_bytes(), source="test", kind="email")])
    # The same phone and product, within hours: a second enquiry, not a copy of the first.
    assert get(server, LEAD).status == 200
    justdial, indiamart = leads(server.store)
    assert (indiamart.source, justdial.source) == ("indiamart", "justdial")
    assert indiamart.phone == justdial.phone == "+919845600066"
    assert indiamart.product == justdial.product == "Fly Ash Bricks"
    assert (indiamart.enquiry_no, justdial.enquiry_no) == (1, 2)
    assert [x.id for x in server.store.buyer_history(justdial)] == [indiamart.id]


# --------------------------------------------------------------------------- health


def test_health_says_justdial_is_on_then_when_its_last_lead_came(sqlite_url: str) -> None:
    env = {"LEADTUI_HTTP_LISTEN": "127.0.0.1:0", "LEADTUI_JUSTDIAL_TOKEN": TOKEN}
    settings = config.load(environ=env)
    service = CaptureService(sqlite_url, sources.factories(settings), renew_every=0.1)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        with Store.open(sqlite_url) as store:

            def justdial() -> Health | None:
                return next((h for h in store.health() if h.source == "justdial"), None)

            assert wait_for(justdial, what="JustDial's health").state == "ready"
            listening = wait_for(
                lambda: next((h for h in store.health() if h.state == "listening"), None),
                what="the ingest",
            )
            assert "JustDial" in listening.detail
            host, port = listening.detail.split(" ")[0].removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=10)

            def fetch(path: str) -> tuple[int, bytes]:
                connection.request("GET", path)
                answer = connection.getresponse()
                return answer.status, answer.read()

            try:
                assert fetch(f"{URL}?{urlencode(LEAD)}") == (200, b"RECEIVED")
                seen = wait_for(
                    lambda: (h := justdial()) is not None and h.state == "receiving" and h,
                    what="the lead in JustDial's health",
                )
                assert seen.last_success_ts is not None
                healthz = json.loads(fetch("/healthz")[1])
            finally:
                connection.close()
        assert {"source": "justdial", "state": "receiving"}.items() <= next(
            s for s in healthz["sources"] if s["source"] == "justdial"
        ).items()
        assert healthz["status"] == "ok"
        assert TOKEN not in json.dumps(healthz)
    finally:
        stop.set()
        thread.join(timeout=10)


async def test_the_header_shows_when_the_last_justdial_lead_came(tmp_path: Any) -> None:
    url = str(tmp_path / "leads.db")
    with Store.open(url) as store:
        store.set_health(Health("justdial", "receiving", "last lead", last_success_ts=NOW - 180))
    app = make_app(url)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert "JustDial: last lead 3 min ago" in str(app.top.render())


# --------------------------------------------------------------------------- do not call


def justdial_item(**fields: str) -> RawItem:
    pairs = list({**LEAD, **fields}.items())
    return RawItem(
        payload.kept(pairs, {"method": "GET"}),
        source="justdial",
        kind="json",
        channel="push",
        dedupe_key=payload.dedupe_key(pairs),
    )


def call_events(url: str, lead_id: int) -> list[str]:
    with Store.open(url) as store:
        return [e.detail or "" for e in store.events(lead_id) if e.action == "call"]


async def test_a_dnc_number_is_marked_and_d_asks_before_dialling(tmp_path: Any) -> None:
    url = str(tmp_path / "leads.db")
    accept(url, [justdial_item(dncmobile="1"), justdial_item(leadid="JD2", mobile="9811122233")])
    with Store.open(url) as store:
        dnc, fine = sorted(leads(store), key=lambda x: x.external_id or "")
    assert (dnc.external_id, fine.external_id) == ("JD0312345678", "JD2")
    app = make_app(url)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        heard = Recorder(app)
        assert cell(app, dnc.id, "phone") == "DNC 9845600066"
        assert cell(app, fine.id, "phone") == "+919811122233"
        await select(pilot, app, dnc.id)
        await pilot.press("d")
        prompt = await until(
            pilot, lambda: isinstance(app.screen, ChoicePrompt) and app.screen, "DNC"
        )
        assert "do-not-call" in prompt.title_text
        assert app.clipboard != "+919845600066"  # nothing dialled yet
        await pilot.press("n")
        await until(
            pilot, lambda: "Not called: +919845600066 is do-not-call" in heard.toasts, "toast"
        )
        assert app.clipboard != "+919845600066"
        await pilot.press("d", "c")  # call anyway: then the usual call, outcome and all
        await until(pilot, lambda: app.clipboard == "+919845600066", "the number copied")
        await pilot.press("n")
        await until(pilot, lambda: call_events(url, dnc.id), "the call logged")
        await select(pilot, app, fine.id)
        await pilot.press("d")  # no DNC: straight to dialling, no question
        await until(pilot, lambda: app.clipboard == "+919811122233", "the other number")
        await pilot.press("escape")
        await select(pilot, app, dnc.id)
        await pilot.press("enter")
        screen = await until(
            pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen, "detail"
        )
        await until(pilot, lambda: screen.details is not None, "the details")
        fields = static_text(app, "#detail-fields")
        assert "+919845600066  DNC: on India's do-not-call registry" in fields
        assert "+912226123456  DNC" not in fields  # dncphone=0: the landline may be called


async def test_escape_at_the_dnc_question_dials_nothing(tmp_path: Any) -> None:
    url = str(tmp_path / "leads.db")
    accept(url, [justdial_item(dncmobile="1")])
    app = make_app(url)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        (lead,) = app.table.leads.values()
        await select(pilot, app, lead.id)
        await pilot.press("d", "escape")
        await until(pilot, lambda: not isinstance(app.screen, ChoicePrompt), "the prompt gone")
        assert app.clipboard != "+919845600066"
        assert call_events(url, lead.id) == []


# --------------------------------------------------------------------------- settings and doctor


def doctor(tmp_path: Any, **env: str) -> str:
    environment = {"LEADTUI_HTTP_LISTEN": "127.0.0.1:0", "COLUMNS": "200", **env}
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "l.db"), "doctor"], env=environment)
    return result.output


def line_of(output: str, name: str) -> str:
    return next(x for x in output.splitlines() if x[2:].startswith(name))


def test_doctor_says_how_to_turn_justdial_on_and_which_url_to_give_it(tmp_path: Any) -> None:
    off = line_of(doctor(tmp_path), "justdial")
    assert off.startswith("· justdial")
    assert "off: set LEADTUI_JUSTDIAL_TOKEN (or token under [justdial])" in off
    on = doctor(tmp_path, LEADTUI_JUSTDIAL_TOKEN=TOKEN, LEADTUI_HTTP_PUBLIC_URL=PUBLIC_URL)
    line = line_of(on, "justdial")
    assert line.startswith("✓ justdial")
    assert f"give JustDial {PUBLIC_URL}/api/justdial/<LEADTUI_JUSTDIAL_TOKEN>" in line
    assert TOKEN not in on
    short = doctor(tmp_path, LEADTUI_JUSTDIAL_TOKEN="jd-short")
    assert line_of(short, "justdial").startswith("✗ justdial")
    assert "shorter than 16 characters" in short
    assert "jd-short" not in short
    http_off = doctor(tmp_path, LEADTUI_JUSTDIAL_TOKEN=TOKEN, LEADTUI_HTTP_LISTEN="off")
    assert "JustDial cannot reach leadtui" in line_of(http_off, "justdial")


def test_a_short_token_stops_serve_with_one_line_and_the_file_setting_works(tmp_path: Any) -> None:
    settings = config.load(environ={"LEADTUI_JUSTDIAL_TOKEN": "jd-short"})
    with pytest.raises(ConfigError) as refused:
        sources.factories(settings)
    assert "LEADTUI_JUSTDIAL_TOKEN" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert "jd-short" not in str(refused.value)
    cfg = tmp_path / "leadtui.toml"
    cfg.write_text(f'[justdial]\ntoken = "{TOKEN}"\n')
    from_file = config.load(cfg, environ={})
    assert from_file.justdial_token.reveal() == TOKEN
    assert from_file.names_a_source  # a seller with only JustDial captures
    assert len(sources.factories(from_file)) == 2  # the HTTP ingest and JustDial's source


def test_the_raw_item_is_the_same_bytes_for_the_same_request() -> None:
    pairs = list(LEAD.items())
    meta = {"method": "GET", "query": urlencode(LEAD)}
    assert payload.kept(pairs, meta) == payload.kept(list(pairs), dict(meta))
    assert payload.dedupe_key(pairs) == "justdial:JD0312345678"
    assert payload.dedupe_key([("leadid", "")]) is None


@pytest.mark.parametrize(
    ("date", "clock", "expected"),
    [
        ("2026-03-02", "18:05:09", "2026-03-02T18:05:09+05:30"),
        ("02-03-2026", "6:05 PM", "2026-03-02T18:05:00+05:30"),
        ("2026/03/02", "", "2026-03-02T00:00:00+05:30"),
        ("02-Mar-2026", "18:05:09", "2026-03-02T18:05:09+05:30"),
        ("2026-02-30", "10:00:00", None),
        ("yesterday", "10:00:00", None),
    ],
)
def test_justdial_dates_and_times_are_india_time(
    date: str, clock: str, expected: str | None
) -> None:
    assert payload.justdial_time(date, clock) == expected


def test_an_unreadable_date_is_kept_in_specs_and_the_lead_still_made() -> None:
    from leadtui import parser

    item = justdial_item(date="yesterday", pincode="57001")
    (lead,) = parser.parse_json_bytes(item.body, channel="push")
    assert lead["kind"] == "lead"
    assert lead["received_at"] is None  # the store uses the arrival time
    assert (lead["specs"]["Date"], lead["specs"]["Time"]) == ("yesterday", "18:05:09")
    assert lead["specs"]["PIN code"] == "57001"


_NAMES = st.sampled_from([*payload.FIELDS, "LeadID", "Name", "x", "utm_source", ""])
_VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
)


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=25))
@settings(max_examples=300, deadline=None)
def test_no_request_makes_the_parser_raise(fields: list[tuple[str, Any]]) -> None:
    from leadtui import parser

    results = parser.parse_json_bytes(payload.kept(fields, {"method": "GET"}), channel="push")
    assert len(results) == 1
    assert results[0]["kind"] in {"lead", "error"}
    if results[0]["kind"] == "lead":
        assert results[0]["external_id"]
        assert results[0]["phone"] or results[0]["phone_alt"] or results[0]["email"]
