"""Fuzzing the live ingest: no request makes it answer 5xx, leak, or die.

- schemathesis reads the server's own ``/api/openapi.json`` and sends what it describes (and
  what it does not) to the live loopback server, checking every answer against the document:
  status codes, content types, response schemas, auth enforcement, no server errors.
- hypothesis sends arbitrary bodies under arbitrary content types to every route, including
  correctly signed WhatsApp webhooks whose payloads are arbitrary JSON, so the code behind
  the signature checks is fuzzed too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from unittest import mock
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_server import (
    API_KEYS,
    GMAIL_PUSH_TOKEN,
    JUSTDIAL_TOKEN,
    META_SECRET,
    PUBLIC_URL,
    PUSH_TOKEN,
    SECRETS,
    TWILIO_TOKEN,
    Server,
    meta_signature,
    running,
    twilio_signature,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from leadtui.ingest import INPUT_FIELDS, auth
from leadtui.store import LeadQuery

PUSH = f"/api/indiamart/push/{PUSH_TOKEN}"
JUSTDIAL = f"/api/justdial/{JUSTDIAL_TOKEN}"
GMAIL_PUSH = f"/api/webhooks/gmail/{GMAIL_PUSH_TOKEN}"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Fuzzing sends wrong keys and signatures by the thousand from one address: without this
    # it would mostly meet the guessing throttle (429), which test_ingest_hardening covers.
    with (
        mock.patch.object(auth, "FAILURES_PER_MINUTE", 0),
        running(str(tmp_path_factory.mktemp("fuzz") / "leads.db")) as server,
    ):
        yield server


@pytest.fixture
def api_schema(live: Server) -> schemathesis.BaseSchema:
    config = SchemathesisConfig.from_dict(
        {
            # The key goes where the document's security scheme says, and only there, so
            # schemathesis can also check that requests without it are refused.
            "auth": {"openapi": {"apiKey": {"api_key": API_KEYS["website"]}}},
            # Webhook senders may add query parameters of their own; those are ignored (and
            # GET /api/leads refuses unknown ones, as test_ingest checks).
            "generation": {"allow-extra-parameters": False},
        }
    )
    return schemathesis.openapi.from_url(f"{live.url}/api/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_route_keeps_to_its_openapi_document(case: schemathesis.Case, live: Server) -> None:
    # Valid per the schema is not always a valid lead: "BUYER" is a placeholder name, and a
    # phone must be one leadtui can read. JSON Schema cannot say that, so such a lead is a
    # documented 422 rather than a broken promise; every other check runs.
    response = case.call_and_validate(
        base_url=live.url,
        excluded_checks=[positive_data_acceptance],
    )
    assert not any(secret in response.text for secret in SECRETS)
    assert "Traceback" not in response.text


# --------------------------------------------------------------------------- hypothesis

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "text/plain",
        "application/xml",
        "",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=60),
    st.sampled_from(["9876543210", "+91-98XXXXXX01", "a@b.in", "BUYER", "\x1b[31m", "[bold]"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
lead_objects = st.dictionaries(st.sampled_from(INPUT_FIELDS), json_values, max_size=8)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    lead_objects.map(lambda v: json.dumps(v).encode()),
    st.lists(st.tuples(st.text(max_size=15), st.text(max_size=30)), max_size=6).map(
        lambda pairs: urlencode(pairs).encode()
    ),
)


def check_answer(server: Server, status: int, text: str) -> None:
    assert status < 500, text
    assert "Traceback" not in text
    assert not any(secret in text for secret in SECRETS)


@pytest.mark.slow
@given(
    path=st.sampled_from(
        ["/api/leads", PUSH, JUSTDIAL, GMAIL_PUSH, "/api/whatsapp/twilio", "/api/whatsapp/meta"]
    ),
    content_type=CONTENT_TYPES,
    body=bodies,
    keyed=st.booleans(),
)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_body_makes_a_server_error(
    live: Server, path: str, content_type: str, body: bytes, keyed: bool
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    if keyed:
        headers["x-api-key"] = API_KEYS["website"]
    reply = live.request("POST", path, body, headers)
    check_answer(live, reply.status, reply.body.decode("utf-8", "replace"))
    if path == "/api/leads" and reply.status in (200, 201):
        # A 2xx means durable: the lead it names is in the table already.
        assert live.store.get_lead(reply.json()["id"]) is not None


@pytest.mark.slow
@given(lead=lead_objects)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_lead_json_is_stored_or_refused_with_its_fields_named(
    live: Server, lead: dict[str, object]
) -> None:
    reply = live.post_json("/api/leads", lead)
    check_answer(live, reply.status, reply.body.decode())
    assert reply.status in (200, 201, 400, 422), reply.body
    if reply.status == 422:
        named = {e["field"] for e in reply.json()["errors"]}
        assert named, reply.body
        assert named <= {*INPUT_FIELDS, ""}
    else:
        stored = live.store.get_lead(reply.json()["id"])
        assert stored is not None
        for value in (stored.name, stored.company, stored.product, stored.city):
            assert value is None or value.isprintable()


@pytest.mark.slow
@given(payload=json_values, extra=st.booleans())
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_signed_webhooks_with_any_payload_never_fail(
    live: Server, payload: object, extra: bool
) -> None:
    if extra:  # something shaped like Meta's envelope, with arbitrary insides
        payload = {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"value": payload}]}],
        }
    body = json.dumps(payload).encode()
    reply = live.request(
        "POST",
        "/api/whatsapp/meta",
        body,
        {
            "content-type": "application/json",
            "X-Hub-Signature-256": meta_signature(META_SECRET, body),
        },
    )
    check_answer(live, reply.status, reply.body.decode())
    assert reply.status == 200
    params = {
        str(k)[:20]: str(v)[:40] for k, v in (payload.items() if isinstance(payload, dict) else [])
    }
    path = "/api/whatsapp/twilio"
    reply = live.request(
        "POST",
        path,
        urlencode(params).encode(),
        {
            "content-type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, PUBLIC_URL + path, params),
        },
    )
    check_answer(live, reply.status, reply.body.decode())
    assert reply.status == 200


@pytest.mark.slow
def test_the_server_is_alive_and_consistent_after_the_fuzzing(live: Server) -> None:
    assert live.thread.is_alive()
    assert live.request("GET", "/healthz").status == 200
    for lead in live.store.list_leads(LeadQuery(limit=1000)):
        assert lead.source in {
            "indiamart",
            "tradeindia",
            "justdial",
            "website",
            "whatsapp",
            "other",
        }
