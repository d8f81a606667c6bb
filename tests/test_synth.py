"""The synthetic inbox: every mail it makes reads back, through the real parser, as meant.

The demo shows these mails as leads; if the parser misread one, a salesperson trying the
demo would see garbage. So every kind, over hundreds of seeds, must come back with the
intended kind, name, phone, product and the rest of what the generator meant.
"""

from __future__ import annotations

import mailbox
import random
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_parser_contract import assert_contract

from leadtui import synth
from leadtui.formats.text import IST
from leadtui.parser import normalize_name, normalize_phone, parse

SEEDS = range(300)


@pytest.mark.parametrize("kind", synth.KINDS)
def test_every_kind_reads_back_as_intended(kind: str) -> None:
    for seed in SEEDS:
        made = synth.generate(random.Random(seed), kind)
        results = parse(made.raw)
        assert len(results) == 1
        result = results[0]
        assert_contract(result)
        read = {key: result.get(key) for key in made.expected}
        assert read == made.expected, f"seed {seed}: {kind} mail read back differently"


def test_names_and_phones_are_what_a_salesperson_would_dial() -> None:
    for seed in SEEDS:
        made = synth.generate(random.Random(seed), "enquiry")
        if made.expected["phone"] is not None:
            assert re.fullmatch(r"\+91[6-9]\d{9}", made.expected["phone"])
        assert made.expected["name"] == normalize_name(made.expected["name"])


def test_same_seed_same_bytes_and_message_ids_are_unique() -> None:
    assert synth.email(random.Random(7)) == synth.email(random.Random(7))
    assert synth.email(random.Random(7)) != synth.email(random.Random(8))
    rng = random.Random(1)
    ids = [parse(synth.email(rng))[0]["message_id"] for _ in range(2000)]
    assert None not in ids
    assert len(set(ids)) == len(ids)


def test_an_unchosen_kind_is_mostly_enquiries_and_buyleads() -> None:
    rng = random.Random(3)
    kinds = Counter(synth.generate(rng).kind for _ in range(2000))
    assert set(kinds) == set(synth.KINDS)
    assert kinds["enquiry"] + kinds["buylead"] > 1000


def test_layouts_vary_like_real_mail() -> None:
    raws = [synth.email(random.Random(seed)) for seed in range(400)]
    shapes = Counter()
    for raw in raws:
        shapes["crlf"] += b"\r\n" in raw
        shapes["base64"] += b"Content-Transfer-Encoding: base64" in raw
        shapes["qp"] += b"Content-Transfer-Encoding: quoted-printable" in raw
        shapes["related"] += b"multipart/related" in raw
        shapes["text only"] += b"multipart/" not in raw
        shapes["unfilled template"] += b"%7B%7B.toname" in raw
        shapes["encoded header"] += b"=?utf-8?" in raw
        shapes["masked number"] += b"XXXXXX" in raw
    assert all(shapes[shape] > 0 for shape in shapes), shapes
    assert len(shapes) == 8


def test_when_sets_the_date_and_a_phone_enquiry_is_called_before() -> None:
    when = datetime(2026, 5, 1, 16, 45, 30, 123456, tzinfo=IST)
    made = synth.generate(random.Random(2), "enquiry", when)
    assert parse(made.raw)[0]["received_at"] == "2026-05-01T16:45:30+05:30"
    naive = synth.generate(random.Random(2), "buylead", datetime(2026, 5, 1, 9, 0))
    assert parse(naive.raw)[0]["received_at"] == "2026-05-01T09:00:00+05:30"
    for seed in range(50):
        phone = parse(synth.email(random.Random(seed), "phone", when))[0]
        called = datetime.fromisoformat(phone["received_at"])
        assert when - timedelta(minutes=15) <= called <= when


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        synth.email(random.Random(1), "fax")


def test_push_payloads_read_back_as_push_leads() -> None:
    for seed in SEEDS:
        payload = synth.push_payload(random.Random(seed))
        row = (
            payload["RESPONSE"][0] if isinstance(payload["RESPONSE"], list) else payload["RESPONSE"]
        )
        results = parse(payload)
        assert len(results) == 1
        lead = results[0]
        assert_contract(lead)
        assert (lead["kind"], lead["channel"], lead["source"]) == ("lead", "push", "indiamart")
        assert lead["external_id"] == str(row["UNIQUE_QUERY_ID"])
        assert lead["query_type"] == row["QUERY_TYPE"]
        assert lead["name"] == normalize_name(row["SENDER_NAME"])
        assert lead["phone"] == normalize_phone(row["SENDER_MOBILE"]) is not None
        assert lead["product"] == (row["QUERY_PRODUCT_NAME"] or None)
        if row["QUERY_TYPE"] == "P":
            assert lead["call_duration"] == int(row["CALL_DURATION"])
        else:
            assert lead["quantity"] is not None or row["QUERY_TYPE"] in ("WA", "BIZ")


def test_mbox_holds_n_mails_with_from_lines_escaped(tmp_path: Path) -> None:
    data = synth.mbox(random.Random(11), 150)
    separators = re.findall(rb"^From ", data, re.M)
    assert len(separators) == 150, "only separator lines may start with 'From '"
    assert re.search(rb"^>From ", data, re.M), "a body line starting with 'From ' was escaped"
    path = tmp_path / "inbox.mbox"
    path.write_bytes(data)
    rng = random.Random(11)  # the same seed makes the same mails in the same order
    made = [synth.generate(rng) for _ in range(150)]
    box = mailbox.mbox(path)
    read = [parse(box.get_bytes(key))[0] for key in box.iterkeys()]
    assert [(r["kind"], r.get("name")) for r in read] == [
        (m.expected["kind"], m.expected.get("name")) for m in made
    ]


def test_the_demo_dates_a_live_reply_now_not_in_a_seeded_past(tmp_path: Path) -> None:
    from leadtui.capture import Pipeline
    from leadtui.demo import SimulatedInbox
    from leadtui.store import Store

    with Store.open(str(tmp_path / "demo.db")) as store:
        inbox = SimulatedInbox(Pipeline(store), lambda _health: None, rng=random.Random(4))
        start = datetime.now().timestamp()
        statuses = [inbox.deliver() for _ in range(80)]  # live mail: no time given
        assert "reply" in statuses
        times = [
            m.ts for lead_id in range(1, store.count_leads() + 1) for m in store.messages(lead_id)
        ]
        assert times
        assert all(t >= start - 1 for t in times)  # whole seconds: the Date header's
