"""The HTTP ingest over real HTTP on loopback: every route, every answer, into a real store.

The core route runs against SQLite and the real PostgreSQL (``db_url``); the others against
SQLite. "Committed before the answer" is checked by reading the store right after a 2xx.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from helpers import FIXTURES, wait_for
from ingest_server import (
    API_KEYS,
    META_SECRET,
    META_VERIFY,
    PUBLIC_URL,
    PUSH_TOKEN,
    SECRETS,
    TWILIO_TOKEN,
    Server,
    meta_signature,
    running,
    twilio_signature,
)

from leadtui import config, ingest, sources
from leadtui.capture import CaptureService, Pipeline
from leadtui.ingest import ingest_factory, openapi_document
from leadtui.store import Health, Lead, LeadQuery, Store, StoreError

PAYLOADS = FIXTURES / "samples" / "payload"
EXPECTED = FIXTURES / "samples" / "expected"
PUSH = f"/api/indiamart/push/{PUSH_TOKEN}"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[Server]:
    with running(sqlite_url) as s:
        yield s


@pytest.fixture
def any_db_server(db_url: str) -> Iterator[Server]:
    with running(db_url) as s:
        yield s


def only_lead(server: Server) -> Lead:
    (lead,) = server.store.list_leads(LeadQuery())
    return lead


def form_post(server: Server, fields: list[tuple[str, str]], key: str = "website") -> Any:
    return server.request(
        "POST",
        "/api/leads",
        urlencode(fields).encode(),
        {"content-type": "application/x-www-form-urlencoded", "x-api-key": API_KEYS[key]},
    )


def multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    boundary = "leadtui-" + uuid.uuid4().hex
    out = b""
    for name, value in fields:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    for name, filename, data in files:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


# --------------------------------------------------------------------------- POST /api/leads


def test_json_lead_is_created_committed_and_normalised(any_db_server: Server) -> None:
    body = {
        "name": "DEEPAK SHARMA",
        "phone": "098290 41736",
        "email": "Deepak@Example.IN",
        "product": "Fly Ash Bricks",
        "city": "Jaipur",
        "source": "website",
        "message": "Need 10,000 pcs.\nDelivery to Sitapura.",
    }
    reply = any_db_server.post_json("/api/leads", body)
    assert reply.status == 201
    answer = reply.json()
    assert answer["status"] == "created"
    lead = any_db_server.store.get_lead(answer["id"])  # committed before the answer
    assert lead is not None
    assert (lead.name, lead.phone, lead.email) == (
        "Deepak Sharma",
        "+919829041736",
        "deepak@example.in",
    )
    assert (lead.source, lead.channel, lead.product) == ("website", "api", "Fly Ash Bricks")
    assert lead.message == "Need 10,000 pcs.\nDelivery to Sitapura."
    assert any_db_server.store.raw_body(answer["item"]) == json.dumps(body).encode()


def test_the_same_body_again_is_200_with_the_same_lead(any_db_server: Server) -> None:
    body = {"name": "Asha Rao", "phone": "9845600066"}
    first = any_db_server.post_json("/api/leads", body)
    again = any_db_server.post_json("/api/leads", body)
    assert (first.status, again.status) == (201, 200)
    assert again.json()["status"] == "duplicate"
    assert again.json()["id"] == first.json()["id"]
    assert any_db_server.store.count_leads() == 1


def test_an_idempotency_key_replay_answers_the_first_lead(any_db_server: Server) -> None:
    body = {"name": "Asha", "phone": "9845600066"}
    first = any_db_server.post_json("/api/leads", body, **{"Idempotency-Key": "order-17"})
    replay = any_db_server.post_json("/api/leads", body, **{"Idempotency-Key": "order-17"})
    assert (first.status, replay.status) == (201, 200)
    assert replay.json() == {**first.json(), "status": "duplicate"}
    # Keys are per API key: the same Idempotency-Key from another client is another request.
    other = any_db_server.post_json(
        "/api/leads",
        {"name": "Ravi", "phone": "9845600077"},
        key="zapier",
        **{"Idempotency-Key": "order-17"},
    )
    assert other.status == 201
    assert any_db_server.store.count_leads() == 2


def test_an_idempotency_key_reused_for_another_body_is_422(any_db_server: Server) -> None:
    first = any_db_server.post_json(
        "/api/leads", {"name": "Asha", "phone": "9845600066"}, **{"Idempotency-Key": "order-17"}
    )
    assert first.status == 201
    # The client's bug (a key reused for a new lead) is told, not answered with the old lead.
    reused = any_db_server.post_json(
        "/api/leads", {"name": "Ravi", "phone": "9845600077"}, **{"Idempotency-Key": "order-17"}
    )
    assert (reused.status, reused.content_type) == (422, "application/problem+json")
    assert "already used for a different request" in reused.json()["detail"]
    assert [(e["field"], e["in"]) for e in reused.json()["errors"]] == [
        ("Idempotency-Key", "header")
    ]
    assert [x.name for x in any_db_server.store.list_leads(LeadQuery())] == ["Asha"]
    # The same body again is still a replay of the first request.
    replay = any_db_server.post_json(
        "/api/leads", {"name": "Asha", "phone": "9845600066"}, **{"Idempotency-Key": "order-17"}
    )
    assert (replay.status, replay.json()["id"]) == (200, first.json()["id"])


def test_an_idempotency_key_over_200_characters_is_refused(server: Server) -> None:
    longest = server.post_json("/api/leads", {"name": "Asha"}, **{"Idempotency-Key": "k" * 200})
    assert longest.status == 201
    too_long = server.post_json("/api/leads", {"name": "Ravi"}, **{"Idempotency-Key": "k" * 201})
    assert (too_long.status, too_long.content_type) == (400, "application/problem+json")
    assert [(e["field"], e["in"]) for e in too_long.json()["errors"]] == [
        ("Idempotency-Key", "header")
    ]
    assert "200 characters" in too_long.json()["detail"]
    assert server.store.count_leads() == 1


def test_the_same_enquiry_by_the_dedupe_keys_is_200(server: Server) -> None:
    first = server.post_json("/api/leads", {"phone": "9845600066", "product": "Cement"})
    again = server.post_json(
        "/api/leads", {"phone": "+91 98456 00066", "product": "Cement", "name": "Asha"}
    )
    assert (first.status, again.status) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert only_lead(server).name == "Asha"  # the later copy filled in the name


def test_every_named_key_works_and_nothing_else_does(server: Server) -> None:
    for name in API_KEYS:
        reply = server.post_json("/api/leads", {"name": f"Buyer of {name}"}, key=name)
        assert reply.status == 201
        item = server.store.raw_info(reply.json()["item"])
        assert item is not None
        assert item.source == f"http:{name}"
    body = json.dumps({"name": "Mallory"}).encode()
    for headers in (
        {},
        {"x-api-key": ""},
        {"x-api-key": "ltk_guess"},
        {"x-api-key": API_KEYS["website"] + "x"},
        {"x-api-key": API_KEYS["website"].upper()},
    ):
        reply = server.request(
            "POST", "/api/leads", body, {"content-type": "application/json", **headers}
        )
        assert reply.status == 401
        assert reply.content_type == "application/problem+json"
    assert server.store.count_leads() == 2
    assert server.request("GET", "/api/leads").status == 401


def test_a_body_above_64_kib_is_413_and_64_kib_is_fine(server: Server) -> None:
    def body_of(size: int, n: int) -> bytes:
        head = json.dumps({"name": f"Big {n}", "message": ""}).encode()
        return head[:-2] + b"x" * (size - len(head)) + b'"}'

    headers = {"content-type": "application/json", "x-api-key": API_KEYS["website"]}
    assert len(body_of(65536, 1)) == 65536
    assert server.request("POST", "/api/leads", body_of(65536, 1), headers).status == 201
    reply = server.request("POST", "/api/leads", body_of(65537, 2), headers)
    assert reply.status == 413
    assert reply.content_type == "application/problem+json"
    # Without a Content-Length (chunked) the limit holds while reading.
    reply = server.request("POST", "/api/leads", body_of(200_000, 3), headers, chunked=True)
    assert reply.status == 413
    form = urlencode([("name", "Big form"), ("message", "y" * 70_000)]).encode()
    reply = server.request(
        "POST",
        "/api/leads",
        form,
        {"content-type": "application/x-www-form-urlencoded", "x-api-key": API_KEYS["website"]},
    )
    assert reply.status == 413
    assert [x.name for x in server.store.list_leads(LeadQuery())] == ["Big 1"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/octet-stream", ""]
)
def test_other_content_types_are_415(server: Server, content_type: str) -> None:
    headers = {"x-api-key": API_KEYS["website"]}
    if content_type:
        headers["content-type"] = content_type
    reply = server.request("POST", "/api/leads", b'{"name": "Asha"}', headers)
    assert reply.status == 415
    assert reply.content_type == "application/problem+json"
    assert server.store.count_leads() == 0


def test_the_same_buyer_posting_again_with_more_to_say_adds_a_message(
    any_db_server: Server,
) -> None:
    server = any_db_server
    first = {
        "name": "Double Submit of Shree Balaji Infrastructure and Construction Pvt Ltd Nashik",
        "phone": "9811100012",
        "product": "Tiles",
        "message": "Need 2000 tiles",
    }
    lead_id = server.post_json("/api/leads", first).json()["id"]
    again = server.post_json(
        "/api/leads", {**first, "message": "Also need 50 kerb stones", "city": "Nashik"}
    )
    assert again.status == 200
    # The same enquiry, within the dedupe window, with its new message added.
    assert again.json() == {"id": lead_id, "status": "appended", "item": again.json()["item"]}
    assert [m.text for m in server.store.messages(lead_id)] == ["Also need 50 kerb stones"]
    same = server.post_json("/api/leads", first)  # the same text: nothing added
    assert (same.status, same.json()["status"]) == (200, "duplicate")
    assert len(server.store.messages(lead_id)) == 1
    # A double submit of the new text (with another field changed) does not add it twice.
    twice = {**first, "message": "Also need 50 kerb stones", "city": "Nashik Road"}
    assert server.post_json("/api/leads", twice).status == 200
    assert len(server.store.messages(lead_id)) == 1
    assert server.store.get_lead(lead_id).message == "Need 2000 tiles"


INVALID_LEAD = {
    "name": {"first": "Asha"},
    "phone": "12345",
    "email": "not-an-email",
    "source": "myspace",
    "received_at": "yesterday",
    "pincode": "1100",
    "specs": ["a"],
    "city": "Pune",
}


def test_invalid_fields_are_422_each_named(server: Server) -> None:
    reply = server.post_json("/api/leads", INVALID_LEAD)
    assert reply.status == 422
    assert reply.content_type == "application/problem+json"
    problem = reply.json()
    assert (problem["status"], problem["title"]) == (422, "Unprocessable Entity")
    named = {e["field"]: e for e in problem["errors"]}
    assert set(named) == {"name", "phone", "email", "source", "received_at", "pincode", "specs"}
    assert named["phone"]["pointer"] == "#/phone"
    assert server.store.count_leads() == 0
    # Refused, but not lost: the lead waits in the review queue with the reason.
    [kept] = server.store.review_items()
    assert kept.error is not None
    assert kept.error.startswith("refused with HTTP 422: ")
    assert "name: " in kept.error
    assert "pincode: " in kept.error
    assert b"Asha" in (server.store.raw_body(kept.id) or b"")
    assert server.post_json("/api/leads", INVALID_LEAD).status == 422
    assert len(server.store.review_items()) == 1  # sent again: kept once


def test_a_lead_needs_a_name_phone_or_email(server: Server) -> None:
    reply = server.post_json("/api/leads", {"product": "Cement", "city": "Pune"})
    assert reply.status == 422
    assert {e["field"] for e in reply.json()["errors"]} == {"name", "phone", "email"}
    # A placeholder name is no name (FORMATS 2.2).
    assert server.post_json("/api/leads", {"name": "IndiaMART Buyer"}).status == 422


def test_bodies_that_are_not_a_json_object(server: Server) -> None:
    headers = {"content-type": "application/json", "x-api-key": API_KEYS["website"]}
    for body in (b"{not json", b"\xff\xfe{}", b""):
        reply = server.request("POST", "/api/leads", body, headers)
        assert reply.status == 400
        assert reply.content_type == "application/problem+json"
    for body in (b"[]", b'"Asha"', b"null", b'[{"name": "Asha"}]'):
        assert server.request("POST", "/api/leads", body, headers).status == 422
    assert server.store.count_leads() == 0
    assert len(server.store.review_items()) == 6  # every one but the empty body, for review


def test_a_key_over_its_rate_gets_429_with_retry_after(sqlite_url: str) -> None:
    with running(sqlite_url, LEADTUI_HTTP_RATE_PER_MINUTE="3") as server:
        answers = [server.post_json("/api/leads", {"name": f"Buyer {n}"}).status for n in range(4)]
        assert answers == [201, 201, 201, 429]
        limited = server.post_json("/api/leads", {"name": "Buyer 5"})
        assert limited.status == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.content_type == "application/problem+json"
        # Another key has its own allowance.
        assert server.post_json("/api/leads", {"name": "Other"}, key="zapier").status == 201
        assert server.store.count_leads() == 4


# --------------------------------------------------------------------------- forms


def test_a_website_form_with_common_aliases(server: Server) -> None:
    reply = form_post(
        server,
        [
            ("full_name", "PRIYA NAIR"),
            ("mobile", "98470 12345"),
            ("your-email", "Priya@Example.in"),
            ("interest", "Roof Tiles"),
            ("comments", "Need a quote for 1200 sq ft"),
            ("Company Name", "Nair Homes"),
            ("utm_source", "google"),
            ("g-recaptcha-response", "03AGdBq2x"),
            ("_wpcf7", "42"),
        ],
    )
    assert reply.status == 201
    lead = only_lead(server)
    assert (lead.name, lead.phone, lead.email) == (
        "Priya Nair",
        "+919847012345",
        "priya@example.in",
    )
    assert (lead.product, lead.message, lead.company) == (
        "Roof Tiles",
        "Need a quote for 1200 sq ft",
        "Nair Homes",
    )
    assert (lead.source, lead.channel) == ("website", "api")
    assert lead.specs == {"utm_source": "google"}  # captcha and plumbing fields are dropped
    # The raw item keeps the form as posted beside the lead it became.
    kept = json.loads(server.store.raw_body(reply.json()["item"]) or b"")
    assert kept["request"]["fields"][1] == ["mobile", "98470 12345"]
    assert ["g-recaptcha-response", "03AGdBq2x"] in kept["request"]["fields"]


def test_a_multipart_form_with_first_and_last_name_and_a_file(server: Server) -> None:
    body, content_type = multipart(
        [
            ("first_name", "Ravi"),
            ("last_name", "Kumar"),
            ("tel", "+91-80-41234567"),
            ("requirement", "AAC blocks"),
        ],
        [("attachment", "plan.pdf", b"%PDF-1.4 not stored")],
    )
    reply = server.request(
        "POST", "/api/leads", body, {"content-type": content_type, "x-api-key": API_KEYS["website"]}
    )
    assert reply.status == 201
    lead = only_lead(server)
    assert (lead.name, lead.phone, lead.message) == ("Ravi Kumar", "+918041234567", "AAC blocks")
    assert lead.specs == {}


def test_form_errors_name_the_form_fields(server: Server) -> None:
    reply = form_post(server, [("full_name", "Asha"), ("mobile", "12"), ("mail", "asha@")])
    assert reply.status == 422
    assert {e["field"] for e in reply.json()["errors"]} == {"mobile", "mail"}
    assert form_post(server, [("comments", "hello")]).status == 422


def test_a_form_twice_is_one_lead(server: Server) -> None:
    fields = [("name", "Asha"), ("phone", "9845600066"), ("message", "Call me")]
    first, again = form_post(server, fields), form_post(server, fields)
    assert (first.status, again.status) == (201, 200)
    assert server.store.count_leads() == 1


# --------------------------------------------------------------------------- hostile text


def test_hostile_lead_text_is_stored_as_literal_text_without_controls(server: Server) -> None:
    body = {
        "name": "\x1b[31mRajat\x1b[0m [bold]Boss[/bold]",
        "phone": "9876543210",
        "company": "\x1b]52;c;cm0gLXJmIH4=\x07Evil Corp",
        "product": "[@click=app.quit]Cement[/]",
        "message": "Hi\x1b[2J\x9b31m\u202eevil\nline two <script>x</script>",
    }
    reply = server.post_json("/api/leads", body)
    assert reply.status == 201
    lead = server.store.get_lead(reply.json()["id"])
    assert lead is not None
    assert lead.name == "[31mRajat[0m [bold]Boss[/bold]"
    assert lead.company == "]52;c;cm0gLXJmIH4=Evil Corp"
    assert lead.product == "[@click=app.quit]Cement[/]"
    assert lead.message == "Hi[2J31mevil\nline two <script>x</script>"
    stored = " ".join(
        str(getattr(lead, f) or "") for f in ("name", "company", "product", "message")
    )
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in stored)
    # The raw item keeps the original bytes, escapes and all.
    assert server.store.raw_body(reply.json()["item"]) == json.dumps(body).encode()


# --------------------------------------------------------------------------- IndiaMART push


def expected_lead(name: str) -> dict[str, Any]:
    (lead,) = json.loads((EXPECTED / name).read_text())
    return lead


@pytest.mark.parametrize(
    "sample", ["01-push-direct-W-object.json", "02-push-buylead-B-list-numeric-id.json"]
)
def test_push_payloads_in_both_shapes_become_leads(server: Server, sample: str) -> None:
    body = (PAYLOADS / sample).read_bytes()
    reply = server.request("POST", PUSH, body, {"content-type": "application/json"})
    assert reply.status == 200
    assert reply.json()["status"] == "received"
    want = expected_lead(sample)
    lead = wait_for(
        lambda: server.store.list_leads(LeadQuery()), what="the pushed lead to be applied"
    )[0]
    assert lead.contract() == want


def test_push_answers_200_for_duplicates_and_garbage_and_keeps_everything(server: Server) -> None:
    body = (PAYLOADS / "01-push-direct-W-object.json").read_bytes()
    for _ in range(3):
        reply = server.request("POST", PUSH, body, {"content-type": "application/json"})
        assert reply.status == 200
    for garbage, content_type in (
        (b"{truncated", "application/json"),
        (b"\x00\x01", "text/plain"),
        (b"", ""),
    ):
        headers = {"content-type": content_type} if content_type else {}
        assert server.request("POST", PUSH, garbage, headers).status == 200
    wait_for(lambda: len(server.store.review_items()) == 3, what="the garbage in review")
    wait_for(lambda: server.store.count_leads() == 1, what="one lead from three pushes")
    assert server.store.pending_raw_ids() == []


def test_push_is_committed_before_its_200(server: Server) -> None:
    before = {r.id for r in server.store.review_items()}
    reply = server.request("POST", PUSH, b"not json at all", {"content-type": "text/plain"})
    assert reply.status == 200
    raw_ids = server.store.pending_raw_ids() + [r.id for r in server.store.review_items()]
    assert set(raw_ids) - before, "the body was not in the database when 200 was sent"


def test_push_with_a_wrong_token_is_404_like_any_unknown_url(server: Server) -> None:
    body = (PAYLOADS / "01-push-direct-W-object.json").read_bytes()
    for path in (
        "/api/indiamart/push/wrong",
        PUSH + "x",
        PUSH[:-1],
        "/api/indiamart/push/",
        "/api/nothing-here",
    ):
        reply = server.request("POST", path, body, {"content-type": "application/json"})
        assert reply.status == 404
        assert reply.json()["detail"] == "no such resource"
    assert server.store.count_leads() == 0
    assert server.store.pending_raw_ids() == []


def test_push_without_a_configured_token_is_off(sqlite_url: str) -> None:
    with running(sqlite_url, LEADTUI_PUSH_TOKEN="") as server:
        assert server.request("POST", "/api/indiamart/push/anything", b"{}").status == 404
        assert server.request("POST", "/api/indiamart/push/", b"{}").status == 404


# --------------------------------------------------------------------------- WhatsApp: Twilio


def twilio_post(server: Server, params: dict[str, str], signature: str | None = None) -> Any:
    path = "/api/whatsapp/twilio"
    sig = (
        signature
        if signature is not None
        else twilio_signature(TWILIO_TOKEN, PUBLIC_URL + path, params)
    )
    return server.request(
        "POST",
        path,
        urlencode(params).encode(),
        {"content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig},
    )


def twilio_message(body: str, sid: str, phone: str = "919812300001") -> dict[str, str]:
    return {
        "SmsMessageSid": sid,
        "MessageSid": sid,
        "AccountSid": "AC0000",
        "From": f"whatsapp:+{phone}",
        "To": "whatsapp:+14155238886",
        "Body": body,
        "ProfileName": "Meena Iyer",
        "WaId": phone,
        "NumMedia": "0",
    }


def test_twilio_message_from_a_new_phone_is_a_lead_and_the_next_is_appended(server: Server) -> None:
    first = twilio_post(server, twilio_message("Do you have red bricks?", "SM1"))
    assert first.status == 200
    assert first.content_type == "text/xml"
    assert b"<Response>" in first.body
    lead = wait_for(lambda: server.store.list_leads(LeadQuery()), what="the WhatsApp lead")[0]
    assert (lead.source, lead.phone, lead.name, lead.message) == (
        "whatsapp",
        "+919812300001",
        "Meena Iyer",
        "Do you have red bricks?",
    )
    assert twilio_post(server, twilio_message("Need 5000 pieces", "SM2")).status == 200
    assert twilio_post(server, twilio_message("Need 5000 pieces", "SM2")).status == 200  # retried
    wait_for(lambda: server.store.messages(lead.id), what="the second message on the lead")
    assert [m.text for m in server.store.messages(lead.id)] == ["Need 5000 pieces"]
    assert server.store.count_leads() == 1
    # Other tools see what the buyer said next, not only that the lead changed.
    [listed] = get(server, "/api/leads?since=0").json()["leads"]
    assert [m["text"] for m in listed["messages"]] == ["Need 5000 pieces"]
    assert listed["message"] == "Do you have red bricks?"


def test_a_twilio_status_callback_on_the_same_url_is_not_a_lead(server: Server) -> None:
    # Twilio reports delivery of *our* messages (From: our own number, no Body) to the
    # status callback URL, which people often point at the same webhook.
    status = {
        "MessageSid": "SMstatus1",
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "AccountSid": "AC0000",
        "From": "whatsapp:+14155238886",
        "To": "whatsapp:+919812300001",
        "ChannelPrefix": "whatsapp",
    }
    assert twilio_post(server, status).status == 200
    assert twilio_post(server, twilio_message("Price of red bricks?", "SM10")).status == 200
    leads = wait_for(lambda: server.store.list_leads(LeadQuery()), what="the message's lead")
    assert [x.phone for x in leads] == ["+919812300001"]  # not one for our own number


def test_twilio_signatures_match_twilios_published_examples() -> None:
    # The request validator examples Twilio publishes (auth token 12345).
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
        "Caller": "+14158675309",
    }
    assert ingest.twilio_signature("12345", url, params.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert ingest.twilio_signature("12345", url, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    pairs = list(params.items())
    assert ingest.twilio_valid("12345", url, pairs, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    # Twilio may sign with or without the default port.
    assert ingest.twilio_valid("12345", url, pairs, "kvajT1Ptam85bY51eRf/AJRuM3w=")
    with_port = url.replace(".com", ".com:443")
    assert ingest.twilio_valid("12345", with_port, pairs, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not ingest.twilio_valid("12345", url, pairs, "RSOYDt4T1cUTdK1PDd93/VVr8B8")
    assert not ingest.twilio_valid("1234", url, pairs, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not ingest.twilio_valid("12345", url, pairs[1:], "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_twilio_rejects_tampered_and_unsigned_requests(server: Server) -> None:
    params = twilio_message("Hello", "SM9")
    good = twilio_signature(TWILIO_TOKEN, PUBLIC_URL + "/api/whatsapp/twilio", params)
    tampered = {**params, "Body": "Hello, send me your bank details"}
    assert twilio_post(server, tampered, signature=good).status == 403
    assert twilio_post(server, params, signature="").status == 403
    wrong_key = twilio_signature("not-the-token", PUBLIC_URL + "/api/whatsapp/twilio", params)
    assert twilio_post(server, params, signature=wrong_key).status == 403
    wrong_url = twilio_signature(TWILIO_TOKEN, "https://evil.example/api/whatsapp/twilio", params)
    reply = twilio_post(server, params, signature=wrong_url)
    assert reply.status == 403
    assert reply.content_type == "application/problem+json"
    assert server.store.count_leads() == 0
    assert server.store.pending_raw_ids() == []


def test_twilio_signs_the_url_it_called_when_no_public_url_is_set(sqlite_url: str) -> None:
    with running(sqlite_url, LEADTUI_HTTP_PUBLIC_URL="") as server:
        params = twilio_message("Hi", "SM5")
        url = f"http://127.0.0.1:{server.port}/api/whatsapp/twilio"
        assert (
            twilio_post(server, params, twilio_signature(TWILIO_TOKEN, url, params)).status == 200
        )
        wait_for(lambda: server.store.count_leads() == 1, what="the lead")


def test_twilio_without_an_auth_token_is_off(sqlite_url: str) -> None:
    with running(sqlite_url, LEADTUI_TWILIO_AUTH_TOKEN="") as server:
        assert twilio_post(server, twilio_message("Hi", "SM1"), signature="x").status == 404


# --------------------------------------------------------------------------- WhatsApp: Meta


def meta_payload(*messages: dict[str, Any], wa_id: str = "919812300002") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1029384756",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "918040000044",
                                "phone_number_id": "55",
                            },
                            "contacts": [{"profile": {"name": "Kiran Patil"}, "wa_id": wa_id}],
                            "messages": list(messages),
                        },
                    }
                ],
            }
        ],
    }


def meta_text(mid: str, text: str, sender: str = "919812300002") -> dict[str, Any]:
    return {
        "from": sender,
        "id": mid,
        "timestamp": "1772430434",
        "type": "text",
        "text": {"body": text},
    }


def meta_post(server: Server, payload: Any, signature: str | None = None) -> Any:
    body = json.dumps(payload).encode()
    sig = signature if signature is not None else meta_signature(META_SECRET, body)
    return server.request(
        "POST",
        "/api/whatsapp/meta",
        body,
        {"content-type": "application/json", "X-Hub-Signature-256": sig},
    )


def test_meta_verification_handshake(server: Server) -> None:
    ok = server.request(
        "GET",
        "/api/whatsapp/meta?"
        + urlencode(
            {
                "hub.mode": "subscribe",
                "hub.verify_token": META_VERIFY,
                "hub.challenge": "1158201444",
            }
        ),
    )
    assert (ok.status, ok.body, ok.content_type) == (200, b"1158201444", "text/plain")
    for query in (
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": META_VERIFY},
        {},
    ):
        assert server.request("GET", "/api/whatsapp/meta?" + urlencode(query)).status == 403


def test_meta_messages_become_a_lead_and_follow_ups(server: Server) -> None:
    image = {
        "from": "919812300002",
        "id": "wamid.B",
        "timestamp": "1772430500",
        "type": "image",
        "image": {"caption": "This size", "mime_type": "image/jpeg", "id": "media-1"},
    }
    payload = meta_payload(meta_text("wamid.A", "Rate for 8 inch blocks?"), image)
    assert meta_post(server, payload).status == 200
    lead = wait_for(lambda: server.store.list_leads(LeadQuery()), what="the WhatsApp lead")[0]
    assert (lead.source, lead.phone, lead.name) == ("whatsapp", "+919812300002", "Kiran Patil")
    assert lead.message == "Rate for 8 inch blocks?"
    assert lead.received_at == "2026-03-02T11:17:14+05:30"
    wait_for(lambda: server.store.messages(lead.id), what="the image message")
    assert meta_post(server, payload).status == 200  # Meta redelivers: nothing is doubled
    wait_for(lambda: not server.store.pending_raw_ids(), what="the redelivery to settle")
    assert [m.text for m in server.store.messages(lead.id)] == ["This size\n[image]"]
    assert server.store.count_leads() == 1


def test_meta_rejects_tampered_bodies_and_ignores_status_updates(server: Server) -> None:
    payload = meta_payload(meta_text("wamid.C", "Hello"))
    body = json.dumps(payload).encode()
    good = meta_signature(META_SECRET, body)
    tampered = json.loads(body)
    tampered["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "Bye"
    assert meta_post(server, tampered, signature=good).status == 403
    assert meta_post(server, payload, signature="").status == 403
    assert meta_post(server, payload, signature=meta_signature("other-secret", body)).status == 403
    statuses = meta_payload()
    statuses["entry"][0]["changes"][0]["value"]["statuses"] = [{"id": "wamid.C", "status": "read"}]
    reply = meta_post(server, statuses)
    assert reply.status == 200
    assert reply.json()["messages"] == 0
    assert server.store.count_leads() == 0
    assert server.store.pending_raw_ids() == []
    assert server.store.review_items() == []


def test_meta_without_secrets_is_off(sqlite_url: str) -> None:
    with running(sqlite_url, LEADTUI_META_APP_SECRET="", LEADTUI_META_VERIFY_TOKEN="") as server:
        assert meta_post(server, meta_payload(), signature="sha256=00").status == 404
        assert server.request("GET", "/api/whatsapp/meta?hub.mode=subscribe").status == 404


# --------------------------------------------------------------------------- reading back


def get(server: Server, path: str, key: str = "website") -> Any:
    return server.request("GET", path, headers={"x-api-key": API_KEYS[key]})


def test_list_leads_is_a_change_feed(server: Server) -> None:
    ids = [server.post_json("/api/leads", {"name": f"Buyer {n}"}).json()["id"] for n in range(3)]
    page = get(server, "/api/leads?since=0&limit=2").json()
    assert ([x["id"] for x in page["leads"]], page["more"]) == (ids[:2], True)
    rest = get(server, f"/api/leads?since={page['cursor']}").json()
    assert ([x["id"] for x in rest["leads"]], rest["more"]) == (ids[2:], False)
    assert get(server, f"/api/leads?since={rest['cursor']}").json()["leads"] == []
    server.store.set_status(ids[0], "contacted", actor="asha")
    newer = server.post_json("/api/leads", {"name": "Buyer 3"}).json()["id"]
    changed = get(server, f"/api/leads?since={rest['cursor']}").json()["leads"]
    assert [(x["id"], x["status"]) for x in changed] == [(ids[0], "contacted"), (newer, "new")]
    assert set(changed[0]) >= {"id", "name", "phone", "received_at", "status", "first_seen_at"}
    # A cursor from a database that was replaced or restored: said, not silently empty.
    ahead = get(server, f"/api/leads?since={rest['cursor'] + 1000}")
    assert ahead.status == 422
    assert "start again from 0" in ahead.json()["errors"][0]["detail"]
    unencoded = get(server, "/api/leads?since=2026-11-25T12:47:58+00:00")  # + is a space
    assert "%2B" in unencoded.json()["errors"][0]["detail"]


def test_list_leads_since_a_time_delivers_every_change_after_it_oldest_first(
    any_db_server: Server,
) -> None:
    server = any_db_server
    before = server.post_json("/api/leads", {"name": "Before"}).json()["id"]
    since = datetime.now(UTC).isoformat()
    after = [
        server.post_json("/api/leads", {"name": "After 0"}).json()["id"],
        # Arrived after `since`, although the buyer enquired long before: a syncing client
        # has not seen it yet, so it is delivered.
        server.post_json(
            "/api/leads", {"name": "Backfilled", "received_at": "2026-01-05T10:00:00+05:30"}
        ).json()["id"],
        server.post_json("/api/leads", {"name": "After 2"}).json()["id"],
    ]
    page = get(server, "/api/leads?" + urlencode({"since": since, "limit": 1})).json()
    delivered = [x["id"] for x in page["leads"]]
    while page["more"]:
        page = get(server, f"/api/leads?since={page['cursor']}&limit=1").json()
        delivered += [x["id"] for x in page["leads"]]
    assert delivered == after  # oldest change first, each once, none skipped
    server.store.set_status(before, "contacted", actor="asha")  # changed after `since` too
    changed = get(server, f"/api/leads?since={page['cursor']}").json()
    assert [(x["id"], x["status"]) for x in changed["leads"]] == [(before, "contacted")]
    everything = get(server, "/api/leads?" + urlencode({"since": since})).json()
    assert [x["id"] for x in everything["leads"]] == [*after, before]
    assert everything["more"] is False
    assert everything["cursor"] == changed["cursor"]
    later = datetime.now(UTC) + timedelta(days=1)
    nothing = get(server, "/api/leads?" + urlencode({"since": later.isoformat()})).json()
    assert (nothing["leads"], nothing["cursor"]) == ([], changed["cursor"])


def test_list_leads_names_bad_parameters(server: Server) -> None:
    for query, field in (
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("since=-1", "since"),
        ("sinse=5", "sinse"),  # a typo must not quietly return everything
    ):
        reply = get(server, f"/api/leads?{query}")
        assert reply.status == 422
        assert [e["field"] for e in reply.json()["errors"]] == [field]


def test_healthz_shows_database_and_sources_without_a_key_or_secrets(server: Server) -> None:
    server.store.set_health(
        Health("mailbox", "watching", "sales@example.in on imap.example.in", last_error="x")
    )
    reply = server.request("GET", "/healthz")
    assert reply.status == 200
    health = reply.json()
    assert (health["status"], health["database"]) == ("ok", "ok")
    assert [(s["source"], s["state"]) for s in health["sources"]] == [("mailbox", "watching")]
    assert health["failing"] == []
    assert not any(secret in reply.body.decode() for secret in SECRETS)


@pytest.mark.parametrize("state", ["login failed", "reconnecting"])
def test_healthz_is_degraded_and_names_a_failing_source(server: Server, state: str) -> None:
    server.store.set_health(Health("mailbox", state, "sales@example.in on imap.example.in"))
    server.store.set_health(Health("pull", "waiting", "next call 11:20"))
    reply = server.request("GET", "/healthz")
    # Still 200: the ingest itself works, so a load balancer keeps sending leads here.
    assert reply.status == 200
    health = reply.json()
    assert (health["status"], health["database"], health["failing"]) == (
        "degraded",
        "ok",
        ["mailbox"],
    )
    assert [(s["source"], s["state"]) for s in health["sources"]] == [
        ("mailbox", state),
        ("pull", "waiting"),
    ]
    server.store.set_health(Health("mailbox", "idle", "waiting for new mail in INBOX"))
    assert server.request("GET", "/healthz").json()["status"] == "ok"
    described = openapi_document()["components"]["schemas"]["Health"]["properties"]
    assert "degraded" in described["status"]["enum"]


def test_the_openapi_document_describes_every_route(server: Server) -> None:
    reply = server.request("GET", "/api/openapi.json")
    assert reply.status == 200
    document = reply.json()
    assert document == json.loads(json.dumps(openapi_document()))
    served = {(method.lower(), path) for path, item in document["paths"].items() for method in item}
    assert served == {
        ("post", "/api/leads"),
        ("get", "/api/leads"),
        ("post", "/api/indiamart/push/{token}"),
        ("post", "/api/webhooks/gmail/{token}"),
        ("post", "/api/whatsapp/twilio"),
        ("get", "/api/justdial/{token}"),
        ("post", "/api/justdial/{token}"),
        ("get", "/api/whatsapp/meta"),
        ("post", "/api/whatsapp/meta"),
        ("get", "/api/meta/leadgen"),
        ("post", "/api/meta/leadgen"),
        ("get", "/healthz"),
        ("get", "/api/openapi.json"),
    }


# --------------------------------------------------------------------------- never leaks


def test_without_a_database_nothing_is_acknowledged(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the database /x/leads.db refused a write: disk I/O error")

    monkeypatch.setattr(server.store, "add_raw_many", down)
    lead = server.post_json("/api/leads", {"name": "Asha"})
    push = server.request("POST", PUSH, b"{}", {"content-type": "application/json"})
    # Not 2xx: the client keeps the lead and retries (IndiaMART too: a 200 would lose it).
    for reply in (lead, push):
        assert reply.status == 503
        assert reply.headers["retry-after"] == "5"
        assert reply.content_type == "application/problem+json"
        assert "disk I/O" not in reply.body.decode()
    monkeypatch.undo()
    assert server.post_json("/api/leads", {"name": "Asha"}).status == 201


def test_unknown_urls_and_methods_answer_problem_json(server: Server) -> None:
    reply = server.request("GET", "/admin")
    assert (reply.status, reply.content_type) == (404, "application/problem+json")
    reply = server.request("DELETE", "/api/leads", headers={"x-api-key": API_KEYS["website"]})
    assert reply.status == 405
    assert "POST" in reply.headers["allow"]
    assert reply.content_type == "application/problem+json"


def test_a_failure_answers_500_without_a_traceback_or_a_secret(
    server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"boom with {API_KEYS['website']}")

    monkeypatch.setattr(server.store, "changes_since", broken)
    with caplog.at_level(logging.ERROR, logger="leadtui.ingest"):
        reply = get(server, "/api/leads")
    assert reply.status == 500
    assert reply.content_type == "application/problem+json"
    text = reply.body.decode()
    assert "Traceback" not in text
    assert "boom" not in text
    assert API_KEYS["website"] not in text
    assert "RuntimeError" in caplog.text  # the operator still finds it in the log
    assert server.request("GET", "/healthz").status == 200  # and the server lives on


def test_request_logs_carry_no_keys_or_tokens(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="leadtui"):
        server.post_json("/api/leads", {"name": "Asha"})
        server.post_json(
            "/api/leads", {"name": "Mallory"}, key=None, **{"x-api-key": "ltk_guessed_key"}
        )
        server.request("POST", PUSH, b"{}", {"content-type": "application/json"})
        server.request("POST", "/api/indiamart/push/wrong-token-guess", b"{}")
        server.request(
            "GET",
            "/api/whatsapp/meta?"
            + urlencode(
                {"hub.mode": "subscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "7"}
            ),
        )
        twilio_post(server, twilio_message("Hi", "SM7"))
        wait_for(lambda: server.store.count_leads() == 2, what="the leads")
    logged = caplog.text
    assert "POST /api/leads -> 201" in logged
    assert "POST /api/indiamart/push/… -> 200" in logged
    for secret in (*SECRETS, "ltk_guessed_key", "wrong-token-guess"):
        assert secret not in logged


# --------------------------------------------------------------------------- as a capture source


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_it_stops_within_a_second(sqlite_url: str) -> None:
    with running(sqlite_url) as server:
        server.post_json("/api/leads", {"name": "Asha"})
        server.stop.set()
        server.thread.join(timeout=1.0)
        assert not server.thread.is_alive()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_a_busy_port_is_reported_and_taken_when_free(sqlite_url: str) -> None:
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    settings = config.load(environ={"LEADTUI_HTTP_LISTEN": f"127.0.0.1:{port}"})
    store = Store.open(sqlite_url)
    health: list[Health] = []
    source = ingest_factory(settings)(store, Pipeline(store), health.append)
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: health, what="a health report")
        assert (health[0].source, health[0].state) == ("http", "error")
        assert health[0].detail == f"port {port} in use: set LEADTUI_HTTP_LISTEN"
        assert health[0].next_retry_ts is not None
        blocker.close()
        wait_for(lambda: health[-1].state == "listening", timeout=15, what="the port to be taken")
        assert health[-1].detail.startswith(f"http://127.0.0.1:{port} ")
    finally:
        blocker.close()
        stop.set()
        thread.join(timeout=2)
        store.close()
    assert not thread.is_alive()


def test_it_serves_only_in_the_process_holding_the_capture_lease(sqlite_url: str) -> None:
    port = free_port()
    settings = config.load(
        environ={
            "LEADTUI_HTTP_LISTEN": f"127.0.0.1:{port}",
            "LEADTUI_API_KEYS": f"website:{API_KEYS['website']}",
        }
    )
    factories = sources.factories(settings)
    assert len(factories) == 1  # the ingest, because http.listen is set
    first = CaptureService(sqlite_url, factories, holder="first", lease_ttl=1.0, renew_every=0.1)
    second = CaptureService(sqlite_url, factories, holder="second", lease_ttl=1.0, renew_every=0.1)
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=svc.run, args=(stop,), daemon=True)
        for svc, stop in zip((first, second), stops, strict=True)
    ]

    def answers() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return False
        return True

    try:
        threads[0].start()
        wait_for(answers, what="the lease holder to serve HTTP")
        threads[1].start()

        def reported() -> bool:
            with Store.open(sqlite_url) as store:
                return any(h.state == "listening" for h in store.health())

        wait_for(reported, what="the holder's HTTP health")
        assert first.holding
        assert not second.holding
        stops[0].set()  # the holder quits: the other process takes over, port and all
        threads[0].join(timeout=10)
        wait_for(lambda: second.holding, timeout=10, what="the second process to take over")
        wait_for(answers, timeout=10, what="the new holder to serve HTTP")
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(timeout=10)


def test_listen_off_means_no_http_source() -> None:
    settings = config.load(environ={"LEADTUI_HTTP_LISTEN": "off"})
    assert sources.factories(settings) == []
    # On by default (serve keeps /healthz), but with no key or webhook secret it takes nothing:
    # a TUI with only that does not capture.
    assert not config.load(environ={}).names_a_source
    assert config.load(environ={"LEADTUI_PUSH_TOKEN": "p" * 24}).names_a_source
