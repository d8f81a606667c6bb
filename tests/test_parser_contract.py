"""The sample set, result for result, and the output contract every result must keep.

``assert_contract`` is imported by the other parser test modules: whatever the input, a
result the store, the TUI and ``leadtui parse --json`` receive must have exactly the
contract's keys in order, no empty strings, and no control characters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from leadtui.parser import LEAD_FIELDS, REPLY_FIELDS, parse, parse_json_bytes

SAMPLES = Path(__file__).parent / "fixtures" / "samples"
FIELDS_OF_KIND = {
    "lead": LEAD_FIELDS,
    "reply": REPLY_FIELDS,
    "ignored": ("kind", "reason", "message_id"),
    "error": ("kind", "error"),
}
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
E164 = re.compile(r"\+[1-9]\d{7,14}")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")


def _clean_string(value: str, *, multiline: bool = False) -> None:
    assert value, "an absent value is null, never the empty string"
    assert value == value.strip(), f"untrimmed value {value!r}"
    for line in value.split("\n") if multiline else [value]:
        assert line, f"empty line kept in {value!r}"
        assert not CONTROL.search(line), f"control character left in {value!r}"
        assert "  " not in line, f"uncollapsed whitespace in {value!r}"


def assert_contract(result: dict[str, Any]) -> None:
    """One result has exactly its kind's keys, in order, with values of the right shape."""
    kind = result.get("kind")
    assert kind in FIELDS_OF_KIND, f"unknown kind in {result!r}"
    assert tuple(result) == FIELDS_OF_KIND[kind], f"keys out of contract order: {list(result)}"
    if kind == "error":
        _clean_string(result["error"])
        return
    if kind == "ignored":
        _clean_string(result["reason"])
        return
    for key, value in result.items():
        if isinstance(value, str):
            _clean_string(value, multiline=key == "message")
    for key in ("phone", "phone_alt", "receiver_phone"):
        if result.get(key) is not None:
            assert E164.fullmatch(result[key]), f"{key} {result[key]!r} is not E.164"
    for key in ("email", "email_alt"):
        if result.get(key) is not None:
            assert "@" in result[key]
            assert result[key] == result[key].lower()
    if result.get("received_at") is not None and result.get("channel") != "api":
        assert ISO_TIME.fullmatch(result["received_at"]), result["received_at"]
    if kind == "reply":
        assert isinstance(result["messages"], list)
        for message in result["messages"]:
            _clean_string(message, multiline=True)
        return
    assert result["source"] in {"indiamart", "tradeindia", "website", "whatsapp", "other"}
    assert result["channel"] in {"email", "push", "pull", "api"}
    assert result["phone_alt"] is None or result["phone_alt"] != result["phone"]
    assert result["email_alt"] is None or result["email_alt"] != result["email"]
    assert result["pincode"] is None or re.fullmatch(r"\d{6}", result["pincode"])
    assert result["country"] is None or re.fullmatch(r"[A-Z]{2}", result["country"])
    assert isinstance(result["specs"], dict)
    for label, value in result["specs"].items():
        _clean_string(label)
        _clean_string(value)
    assert result["verified"] == [v for v in ("phone", "email", "gst") if v in result["verified"]]
    duration = result["call_duration"]
    assert duration is None or (isinstance(duration, int) and not isinstance(duration, bool))


def sample_cases() -> list[Path]:
    return sorted((SAMPLES / "email").glob("*.eml")) + sorted((SAMPLES / "payload").glob("*.json"))


def parse_sample(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    return parse(data) if path.suffix == ".eml" else parse_json_bytes(data)


@pytest.mark.parametrize("path", sample_cases(), ids=lambda p: p.stem)
def test_sample_gives_exactly_its_expected_results(path: Path) -> None:
    expected = json.loads((SAMPLES / "expected" / f"{path.stem}.json").read_text("utf-8"))
    results = parse_sample(path)
    assert results == expected
    assert [list(r) for r in results] == [list(r) for r in expected], "key order differs"


@pytest.mark.parametrize("path", sample_cases(), ids=lambda p: p.stem)
def test_sample_results_keep_the_contract(path: Path) -> None:
    for result in parse_sample(path):
        assert_contract(result)


def test_every_sample_has_an_expected_file_and_the_set_is_complete() -> None:
    cases = {p.stem for p in sample_cases()}
    expected = {p.stem for p in (SAMPLES / "expected").glob("*.json")}
    assert cases == expected
    assert len(cases) == 25


def test_contract_checker_rejects_what_a_user_would_see_as_broken() -> None:
    good = parse_sample(SAMPLES / "email" / "01-direct-enquiry-qp.eml")[0]
    assert_contract(good)
    broken_cases = [
        {**good, "company": ""},
        {**good, "name": "Sunil\x1b[31m Rao"},
        {**good, "phone": "9845600066"},
        {key: good[key] for key in reversed(LEAD_FIELDS)},
    ]
    for broken in broken_cases:
        with pytest.raises(AssertionError):
            assert_contract(broken)


def _explode(*_: object) -> Any:
    raise ZeroDivisionError("boom")


def test_a_crashing_email_family_becomes_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    import leadtui.parser as parser

    families = tuple(
        replace(f, parse=_explode) if f.name == "IndiaMART BuyLead" else f
        for f in parser.EMAIL_FAMILIES
    )
    monkeypatch.setattr(parser, "EMAIL_FAMILIES", families)
    result = parse_sample(SAMPLES / "email" / "07-buylead-one-line-specs.eml")
    assert result == [
        {
            "kind": "error",
            "error": "IndiaMART BuyLead parser failed (ZeroDivisionError: boom); the item is kept for review",
        }
    ]
    assert parse_sample(SAMPLES / "email" / "01-direct-enquiry-qp.eml")[0]["kind"] == "lead"


def test_a_crashing_json_shape_becomes_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    import leadtui.parser as parser

    shapes = tuple(
        replace(s, parse=_explode) if s.name == "generic lead" else s for s in parser.JSON_SHAPES
    )
    monkeypatch.setattr(parser, "JSON_SHAPES", shapes)
    result = parse_sample(SAMPLES / "payload" / "09-api-generic-website-lead.json")
    assert result[0]["error"].startswith("generic lead parser failed (ZeroDivisionError: boom)")
    assert parse_sample(SAMPLES / "payload" / "01-push-direct-W-object.json")[0]["kind"] == "lead"
