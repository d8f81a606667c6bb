"""Requirement rows: ``label : value`` pairs to contract fields (FORMATS 2.7, 7 and 10.3)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from leadtui.formats.text import clean_text

# 2.7: labels (case-insensitive, whitespace collapsed, trailing colon removed) → field.
_FIELD_OF_LABEL = {
    "quantity": "quantity",
    "qty": "quantity",
    "quantity unit": "unit",
    "unit": "unit",
    "probable order value": "order_value",
    "order value": "order_value",
    "approximate order value": "order_value",
    "probable requirement type": "requirement_type",
    "requirement type": "requirement_type",
    "type of requirement": "requirement_type",
    "why do you need this": "requirement_type",
}

# 10.3: labels a one-line BuyLead spec can be split at (beside those of 2.7).
KNOWN_SPEC_LABELS = (
    "Size",
    "Material",
    "Finish",
    "Surface Finish",
    "Capacity",
    "Type",
    "Grade",
    "Brand",
    "Color",
    "Colour",
    "Shape",
    "Thickness",
    "Form",
    "Purity",
    "Packaging Size",
    "Packaging Type",
    "Usage/Application",
    "Application",
    "Model",
    "Width",
    "Length",
    "Height",
    "Weight",
    "Wattage",
    "Power",
    "Voltage",
    "Phase",
    "Pattern",
    "Design",
    "Panel Type",
    "Buyer Filled Details",
    "Preferred Location",
    "Model Name/Number",
    "Shelf Life",
    "Diameter",
    "Dimension",
    "Dimensions",
    "Usage",
    "Features",
    "Material Grade",
    "GSM",
)

# Longest label first, so ``Probable Requirement Type`` wins over ``Type``.
_ONE_LINE_LABEL = re.compile(
    r"(?<![^\s])("
    + "|".join(
        re.escape(label).replace(r"\ ", r"\s+")
        for label in sorted({*_FIELD_OF_LABEL, *KNOWN_SPEC_LABELS}, key=len, reverse=True)
    )
    + r")\s*:\s*",
    re.IGNORECASE,
)
_QUANTITY = re.compile(r"(\d[\d,]*(?:\.\d+)?)(?:\s*([^\d\s.,\-–/].*))?")


def apply_pairs(lead: dict[str, Any], pairs: Iterable[tuple[str, str]]) -> None:
    """Map requirement pairs onto a lead per FORMATS 2.7 (quantity, unit, order value…)."""
    unit_from_label = False
    for raw_label, raw_value in pairs:
        value = clean_text(raw_value)
        label = clean_text(raw_label)
        if value is None or label is None:
            continue
        label = label.rstrip(":").rstrip()
        field = _FIELD_OF_LABEL.get(label.casefold())
        if field == "quantity":
            match = _QUANTITY.fullmatch(value)
            if match is None:
                lead["specs"]["Quantity"] = value
                continue
            lead["quantity"] = match[1].replace(",", "")
            if match[2] and not unit_from_label:
                lead["unit"] = match[2].strip()
        elif field == "unit":
            lead["unit"] = value
            unit_from_label = True
        elif field is not None:
            lead[field] = value
        elif label:
            lead["specs"][label] = value


def split_pair(piece: str) -> tuple[str, str] | None:
    """``Label : value`` when a colon has 1-60 characters before it (FORMATS 7.2)."""
    colon = piece.find(":")
    if not 1 <= colon <= 60:
        return None
    label = piece[:colon].strip()
    return (label, piece[colon + 1 :].strip()) if label else None


_QUERY_MESSAGE_BREAK = re.compile(r"<\s*br\s*/?\s*>|[\r\n]", re.IGNORECASE)


def split_query_message(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """``QUERY_MESSAGE`` → (free-text pieces, label/value pairs), FORMATS 7.2."""
    free: list[str] = []
    pairs: list[tuple[str, str]] = []
    for raw in _QUERY_MESSAGE_BREAK.split(text):
        piece = clean_text(html.unescape(raw)) if "&" in raw else clean_text(raw)
        if piece is None:
            continue
        pair = split_pair(piece)
        if pair is None:
            free.append(piece)
        else:
            pairs.append(pair)
    return free, pairs


def split_one_line_specs(line: str) -> list[tuple[str, str]]:
    """``Quantity : 8000 Piece Size : 9 Inch …`` → pairs, split at known labels.

    The first label is whatever precedes the first colon; an unknown label later in the
    line cannot be told from its value, so it stays in the preceding value (FORMATS 3.7).
    """
    first = split_pair(line)
    if first is None:
        return []
    label, rest = first
    pairs: list[tuple[str, str]] = []
    position = 0
    for match in _ONE_LINE_LABEL.finditer(rest):
        pairs.append((label, rest[position : match.start()].strip()))
        label, position = match[1], match.end()
    pairs.append((label, rest[position:].strip()))
    return pairs
