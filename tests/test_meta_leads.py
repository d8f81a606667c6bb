"""Facebook and Instagram lead ads, natively: the webhook, the Graph API fetch, the backfill.

Everything real but Meta: the HTTP ingest on loopback (``ingest_server.running``), the store
(SQLite, and PostgreSQL for the main path), the lead ads source, and a loopback Graph API
(``fake_meta_graph``) that answers Meta's documented success and error shapes. Where a test
needs time to pass (a backoff), it drives the source's step with its own clock instead of
waiting; where a thread does the work, it waits on the store's state with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner
from fake_meta_graph import EXPIRED, PAGE_ID, PAGE_NAME, RATE_LIMITED, VERSION, FakeGraph, meta_time
from helpers import wait_for
from ingest_server import Server, meta_signature, running

from leadtui import config, sources
from leadtui.capture import Pipeline, RawItem
from leadtui.channels import meta_graph
from leadtui.channels.meta_leads import MetaLeadsSource, meta_factory, run_backfill
from leadtui.channels.meta_sync import FORM_KEY, MAX_TRIES, OVERLAP, MetaLeads, Queue
from leadtui.cli import main
from leadtui.formats.meta_leads import NOTIFICATION_SOURCE
from leadtui.store import Health, Lead, LeadQuery, Store

PATH = "/api/meta/leadgen"
APP_SECRET = "lead-ads-app-secret-7c1e42"
VERIFY = "lead-ads-verify-3b9a0f"
FORM = "778899001122"
NOW = time.time()

ASHA = {
    "full_name": "Asha Verma",
    "email": "Asha.Verma@Example.in",
    "phone_number": "+91 98765 43210",
    "city": "Pune",
    "state": "Maharashtra",
    "zip_code": "411001",
    "country": "IN",
    "company_name": "Verma Steels",
    "job_title": "Purchase head",
    "how_many_tonnes_do_you_need_per_month?": "20 tonnes",
    "preferred_delivery_site": "Chakan MIDC",
}


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as server:
        yield server


def meta_env(graph: FakeGraph, **more: str) -> dict[str, str]:
    return {
        "LEADTUI_META_PAGE_TOKEN": graph.token,
        "LEADTUI_META_LEADS_APP_SECRET": APP_SECRET,
        "LEADTUI_META_LEADS_VERIFY_TOKEN": VERIFY,
        "LEADTUI_META_GRAPH_URL": graph.url,
        "LEADTUI_META_GRAPH_VERSION": VERSION,
        "LEADTUI_META_FORM_IDS": FORM,
        **more,
    }


def notification(*leadgen_ids: str, form: str = FORM) -> bytes:
    changes = [
        {
            "field": "leadgen",
            "value": {
                "leadgen_id": lead_id,
                "page_id": PAGE_ID,
                "form_id": form,
                "ad_id": "238500000000001",
                "adgroup_id": "238500000000002",
                "created_time": int(NOW),
            },
        }
        for lead_id in leadgen_ids
    ]
    entry = {"id": PAGE_ID, "time": int(NOW), "changes": changes}
    return json.dumps({"object": "page", "entry": [entry]}).encode()


def post_signed(server: Server, body: bytes, secret: str = APP_SECRET) -> Any:
    headers = {
        "content-type": "application/json",
        "X-Hub-Signature-256": meta_signature(secret, body),
    }
    return server.request("POST", PATH, body, headers)


def leads(store: Store) -> list[Lead]:
    return store.list_leads(LeadQuery(limit=100))


@contextmanager
def source_running(db: str) -> Iterator[list[Health]]:
    """The lead ads source in its thread, as the capture service runs it (settings from env)."""
    store = Store.open(db)
    health: list[Health] = []
    source = meta_factory(config.load())(store, Pipeline(store), health.append)
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,), name="test-meta", daemon=True)
    thread.start()
    try:
        yield health
    finally:
        stop.set()
        thread.join(5)
        store.close()
    assert not thread.is_alive(), "the lead ads source did not stop within a second or so"


class Stepped:
    """The source driven one step at a time with a clock the test moves (no waiting)."""

    def __init__(self, db: str, now: float) -> None:
        self.now = now
        self.store = Store.open(db)
        self.health: list[Health] = []
        self.cfg = meta_graph.GraphConfig.from_settings(config.load())
        leads = MetaLeads(self.cfg, self.store, Pipeline(self.store), random.Random(7))
        self.source = MetaLeadsSource(leads, self._report, clock=lambda: self.now)

    def _report(self, health: Health) -> None:
        self.health.append(health)
        self.store.set_health(health)  # as the capture service does: /healthz reads it

    def step(self) -> Health:
        async def one() -> None:
            async with meta_graph.session(self.cfg) as http:
                await self.source.step(http)

        asyncio.run(one())
        return self.health[-1]

    def close(self) -> None:
        self.store.close()


# --------------------------------------------------------------------------- the webhook


def test_meta_verification_handshake(sqlite_url: str, graph: FakeGraph) -> None:
    with running(sqlite_url, **meta_env(graph)) as server:
        good = f"{PATH}?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444"
        reply = server.request("GET", good)
        assert (reply.status, reply.content_type, reply.body) == (200, "text/plain", b"1158201444")
        wrong = f"{PATH}?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444"
        assert server.request("GET", wrong).status == 403
    # Without a Page token lead ads are off: the URL does not exist.
    with running(sqlite_url, **meta_env(graph, LEADTUI_META_PAGE_TOKEN="")) as server:
        assert server.request("GET", good).status == 404


def test_a_bad_or_missing_signature_is_403_and_nothing_is_stored(
    sqlite_url: str, graph: FakeGraph
) -> None:
    body = notification("900000000000001")
    with running(sqlite_url, **meta_env(graph)) as server:
        assert post_signed(server, body, secret="not-the-app-secret").status == 403
        bare = server.request("POST", PATH, body, {"content-type": "application/json"})
        assert bare.status == 403
        assert "X-Hub-Signature-256" in bare.json()["detail"]
        assert server.store.raw_ids_after(NOTIFICATION_SOURCE, 0) == []
        assert server.store.review_count() == 0


def test_a_notification_becomes_a_lead_with_every_answer_kept(
    db_url: str, graph: FakeGraph
) -> None:
    graph.add_lead(
        "900000000000001",
        FORM,
        NOW - 60,
        ASHA,
        ad_id="238500000000001",
        ad_name="TMT bars - Pune",
        campaign_name="Winter 2026",
        platform="ig",
    )
    with running(db_url, **meta_env(graph, LEADTUI_META_BACKFILL_DAYS="0")) as server:
        reply = post_signed(server, notification("900000000000001"))
        assert reply.status == 200
        # The notification is committed before the 200: it is already there.
        assert len(server.store.raw_ids_after(NOTIFICATION_SOURCE, 0)) == 1
        with source_running(db_url):
            (lead,) = wait_for(lambda: leads(server.store), timeout=10, what="the lead")
    assert (lead.source, lead.channel, lead.external_id) == ("facebook", "push", "900000000000001")
    assert (lead.name, lead.email, lead.phone) == (
        "Asha Verma",
        "asha.verma@example.in",
        "+919876543210",
    )
    assert (lead.city, lead.state, lead.pincode, lead.country) == (
        "Pune",
        "Maharashtra",
        "411001",
        "IN",
    )
    assert lead.company == "Verma Steels"
    assert lead.specs["Job title"] == "Purchase head"
    assert lead.specs["How many tonnes do you need per month?"] == "20 tonnes"
    assert lead.specs["Preferred delivery site"] == "Chakan MIDC"
    assert (lead.specs["Ad name"], lead.specs["Platform"]) == ("TMT bars - Pune", "Instagram")
    call = graph.calls_to("/900000000000001")[0]
    assert call.path == f"/{VERSION}/900000000000001"
    assert call.query["fields"] == meta_graph.LEAD_FIELDS
    assert call.query["access_token"] == graph.token


def test_a_replayed_notification_adds_no_lead(sqlite_url: str, graph: FakeGraph) -> None:
    graph.add_lead("900000000000002", FORM, NOW - 60, ASHA)
    body = notification("900000000000002")
    with running(sqlite_url, **meta_env(graph, LEADTUI_META_BACKFILL_DAYS="0")) as server:
        with source_running(sqlite_url):
            assert post_signed(server, body).status == 200
            wait_for(lambda: leads(server.store), timeout=10, what="the lead")
            assert post_signed(server, body).status == 200  # Meta retries the same body
            # Another notification naming the same lead is fetched again, and merges.
            assert (
                post_signed(server, notification("900000000000002", "900000000000002")).status
                == 200
            )
            wait_for(lambda: len(graph.calls_to("/900000000000002")) == 2, what="a second fetch")
            wait_for(lambda: not Queue.load(server.store).pending, what="the queue to empty")
        assert len(leads(server.store)) == 1
        assert len(server.store.raw_ids_after(NOTIFICATION_SOURCE, 0)) == 2


def test_a_malformed_notification_goes_to_review_and_the_server_keeps_going(
    sqlite_url: str, graph: FakeGraph
) -> None:
    graph.add_lead("900000000000003", FORM, NOW - 60, ASHA)
    path_trick = json.dumps(
        {
            "object": "page",
            "entry": [{"changes": [{"field": "leadgen", "value": {"leadgen_id": "../me"}}]}],
        }
    ).encode()
    with running(sqlite_url, **meta_env(graph, LEADTUI_META_BACKFILL_DAYS="0")) as server:
        with source_running(sqlite_url):
            assert post_signed(server, b"not json {").status == 200
            assert post_signed(server, path_trick).status == 200
            assert post_signed(server, notification("900000000000003")).status == 200
            wait_for(
                lambda: leads(server.store), timeout=10, what="the good lead after the bad ones"
            )
        reasons = sorted(item.error or "" for item in server.store.review_items())
        assert len(reasons) == 2
        assert "numeric leadgen_id" in reasons[0]
        assert reasons[1].startswith("not JSON")
        assert graph.calls_to("/me") == []  # the id never reached a URL


# --------------------------------------------------------------------------- Graph errors


def test_graph_down_then_an_expired_token_is_a_health_state_and_the_lead_comes_later(
    sqlite_url: str, graph: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    graph.add_lead("900000000000004", FORM, NOW - 60, ASHA)
    with running(sqlite_url, **meta_env(graph, LEADTUI_META_BACKFILL_DAYS="0")) as server:
        assert post_signed(server, notification("900000000000004")).status == 200
        graph.down = True
        stepped = Stepped(sqlite_url, NOW)
        try:
            health = stepped.step()
            assert health.state == "retrying"
            assert "Graph code 2" in health.detail
            assert list(Queue.load(stepped.store).pending) == ["900000000000004"]
            assert leads(stepped.store) == []
            # Meta is back but the token expired: a failing state with the fix in one line.
            graph.down, graph.expired = False, True
            stepped.now += 3600
            health = stepped.step()
            assert health.state == "key rejected"
            assert "Graph code 190, subcode 463" in health.detail
            assert "LEADTUI_META_PAGE_TOKEN" in health.detail
            assert server.request("GET", "/healthz").json()["failing"] == ["meta leads"]
            # Within the backoff nothing is called again.
            calls = len(graph.calls)
            stepped.now += 1
            stepped.step()
            assert len(graph.calls) == calls
        finally:
            stepped.close()
        # A new token is made; after a restart the waiting notification is fetched.
        graph.expired = False
        stepped = Stepped(sqlite_url, NOW + 7200)
        try:
            health = stepped.step()
            assert health.state == "waiting"
            (lead,) = leads(stepped.store)
            assert (lead.external_id, lead.channel) == ("900000000000004", "push")
            assert Queue.load(stepped.store).pending == {}
        finally:
            stepped.close()
    shown = caplog.text + "".join(f"{h.detail} {h.last_error}" for h in stepped.health)
    assert graph.token not in shown


def test_a_lead_meta_does_not_know_goes_to_review_after_a_few_tries(
    sqlite_url: str, graph: FakeGraph
) -> None:
    with running(sqlite_url, **meta_env(graph, LEADTUI_META_BACKFILL_DAYS="0")) as server:
        assert post_signed(server, notification("900000000000099")).status == 200
        stepped = Stepped(sqlite_url, NOW)
        try:
            for _ in range(MAX_TRIES):
                stepped.step()
                stepped.now += 24 * 3600
            assert Queue.load(stepped.store).pending == {}
            (item,) = stepped.store.review_items()
            assert "Meta lead 900000000000099 could not be fetched: Graph code 100" in (
                item.error or ""
            )
            assert stepped.health[-1].state == "waiting"  # one lead, not the source, failed
        finally:
            stepped.close()


# --------------------------------------------------------------------------- backfill


def test_backfill_follows_pages_and_a_lead_also_notified_is_one_lead(
    sqlite_url: str, graph: FakeGraph
) -> None:
    for n in range(5):
        graph.add_lead(
            f"90000000000010{n}", FORM, NOW - 5000 + n * 1000, {**ASHA, "full_name": f"Buyer {n}"}
        )
    with running(sqlite_url, **meta_env(graph)) as server:
        before = time.time()
        with source_running(sqlite_url):  # backfills at start: 3 pages of at most 2
            wait_for(lambda: len(leads(server.store)) == 5, timeout=10, what="the backfill")
            after = time.time()
            first = graph.calls_to("/leads")[0]
            (rule,) = json.loads(first.query["filtering"])
            assert (rule["field"], rule["operator"]) == ("time_created", "GREATER_THAN")
            assert before - 7 * 86400 - 1 <= rule["value"] <= after - 7 * 86400
            assert len(graph.calls_to("/leads")) == 3
            assert post_signed(server, notification("900000000000102")).status == 200
            wait_for(lambda: graph.calls_to("/900000000000102"), what="the notified lead's fetch")
            wait_for(lambda: not Queue.load(server.store).pending, what="the queue to empty")
        assert len(leads(server.store)) == 5
        cursor = server.store.get_state(FORM_KEY + FORM)
        assert cursor is not None
        # On demand: a lead the webhook missed since.
        graph.add_lead(
            "900000000000200", FORM, time.time() - 10, {**ASHA, "full_name": "Ravi Late"}
        )
        with mock.patch.dict(os.environ, {"LEADTUI_DB": sqlite_url}):
            result = CliRunner().invoke(main, ["meta", "backfill"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "1 new" in result.output
        assert len(leads(server.store)) == 6
        again = json.loads(graph.calls_to("/leads")[-1].query["filtering"])[0]["value"]
        assert again == int(cursor["since"] - OVERLAP)


def test_the_form_cursor_moves_only_after_every_page_is_committed(
    sqlite_url: str, graph: FakeGraph
) -> None:
    for n in range(5):
        graph.add_lead(f"90000000000030{n}", FORM, NOW - 5000 + n * 1000, ASHA)
    graph.script = [None, (400, RATE_LIMITED)]  # the second page is refused
    with mock.patch.dict(os.environ, meta_env(graph)):
        store = Store.open(sqlite_url)
        try:
            report = run_backfill(config.load(), store, None, say=lambda _t: None)
            assert report.error is not None
            assert "Graph code 4" in report.error
            assert len(leads(store)) == 2  # page one is committed and kept
            assert store.get_state(FORM_KEY + FORM) is None
            report = run_backfill(config.load(), store, None, say=lambda _t: None)
            assert report.error is None
            assert (len(leads(store)), report.new) == (5, 3)
            assert store.get_state(FORM_KEY + FORM) is not None
        finally:
            store.close()


def test_a_form_meta_does_not_know_is_named_and_the_other_forms_are_backfilled(
    sqlite_url: str, graph: FakeGraph
) -> None:
    graph.add_lead("900000000000400", FORM, NOW - 600, ASHA)
    graph.unknown_forms.add("123123123")
    with mock.patch.dict(os.environ, meta_env(graph, LEADTUI_META_FORM_IDS=f"123123123,{FORM}")):
        stepped = Stepped(sqlite_url, NOW)
        try:
            health = stepped.step()
            assert health.state == "error"
            assert "form 123123123: Graph code 100" in health.detail
            assert "[meta] form_ids" in health.detail
            assert [lead.external_id for lead in leads(stepped.store)] == ["900000000000400"]
            listed = len(graph.calls_to("/leads"))
            stepped.now += 60  # the next backfill waits its turn: no call in a loop
            stepped.step()
            assert len(graph.calls_to("/leads")) == listed
        finally:
            stepped.close()


def test_the_backfill_command_says_how_to_fix_an_expired_token(
    sqlite_url: str, graph: FakeGraph
) -> None:
    graph.script = [(400, EXPIRED)]
    env = {**meta_env(graph), "LEADTUI_DB": sqlite_url}
    with mock.patch.dict(os.environ, env):
        result = CliRunner().invoke(main, ["meta", "backfill"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "Graph code 190" in result.output
    assert "LEADTUI_META_PAGE_TOKEN" in result.output
    assert graph.token not in result.output


# --------------------------------------------------------------------------- doctor and mapping


def test_doctor_shows_the_webhook_the_forms_and_whether_the_token_works(
    sqlite_url: str, graph: FakeGraph
) -> None:
    with mock.patch.dict(
        os.environ, meta_env(graph, LEADTUI_HTTP_PUBLIC_URL="https://leads.example.in")
    ):
        settings = config.load()
        store = Store.open(sqlite_url)
        try:
            lines = [c for c in sources.checks(settings, store, 5.0) if c.name == "meta leads"]
            assert [c.ok for c in lines] == [True, True, True]
            assert "https://leads.example.in/api/meta/leadgen" in lines[0].detail
            assert FORM in lines[1].detail
            assert lines[2].detail == f"Page token works: {PAGE_NAME}"
            graph.expired = True
            (*_, live) = [c for c in sources.checks(settings, store, 5.0) if c.name == "meta leads"]
            assert live.ok is False
            assert "Graph code 190" in live.detail
            assert "LEADTUI_META_PAGE_TOKEN" in live.fix
        finally:
            store.close()
    off = [c for c in sources.checks(config.Settings(), None, 1.0) if c.name == "meta leads"]
    assert [(c.ok, c.detail) for c in off] == [
        (
            None,
            "off: set LEADTUI_META_PAGE_TOKEN (or page_token under [meta]) to capture "
            "Facebook and Instagram lead ads",
        )
    ]


def test_answers_a_lead_field_cannot_hold_stay_on_the_lead() -> None:
    from leadtui import parser

    lead = {
        "id": "900000000000500",
        "created_time": "2026-12-05T04:30:00+0000",
        "field_data": [
            {"name": "first_name", "values": ["John"]},
            {"name": "last_name", "values": ["Smith"]},
            {"name": "zip_code", "values": ["94107"]},
            {"name": "country", "values": ["Atlantis"]},
            {"name": "phone_number", "values": ["call me"]},
            {"name": "token_amount_ready?", "values": ["yes"]},
        ],
    }
    (result,) = parser.parse(lead)
    assert (result["kind"], result["name"], result["received_at"]) == (
        "lead",
        "John Smith",
        "2026-12-05T04:30:00+00:00",
    )
    assert result["pincode"] is None
    assert result["phone"] is None
    assert result["specs"] == {
        "Zip code": "94107",
        "Country": "Atlantis",
        "Phone number": "call me",
        "Token amount ready?": "yes",
    }


def test_a_buyer_who_also_came_by_indiamart_is_a_second_enquiry_not_a_stranger(
    sqlite_url: str,
) -> None:
    store = Store.open(sqlite_url)
    try:
        pipeline = Pipeline(store)
        earlier = {
            "source": "indiamart",
            "name": "Asha Verma",
            "phone": "+919876543210",
            "product": "TMT bars",
        }
        pipeline.accept(RawItem(json.dumps(earlier).encode(), "import", "json", "api"))
        graph_lead = {
            "id": "900000000000600",
            "created_time": meta_time(NOW),
            "form_id": FORM,
            "field_data": [{"name": k, "values": [v]} for k, v in ASHA.items()],
        }
        pipeline.accept(RawItem(json.dumps(graph_lead).encode(), "meta:leads", "json", "push"))
        by_source = {lead.source: lead for lead in leads(store)}
        assert sorted(by_source) == ["facebook", "indiamart"]
        assert (by_source["indiamart"].enquiry_no, by_source["facebook"].enquiry_no) == (1, 2)
    finally:
        store.close()
