"""Reply templates: ``[templates.NAME]`` text with placeholders, rendered for one lead.

Pure: strings and mappings in, a string out; no I/O and nothing from the rest of leadtui, so
the config can check a template when it loads and the UI can preview one on every keystroke.

A placeholder is a name in braces, ``{first_name}``. A value that is missing disappears with
what only makes sense around it:

- text in square brackets around a placeholder is *optional*: ``[ from {city}]`` is
  `` from Pune`` when the city is known and nothing at all when it is not (brackets nest);
- whatever is left is tidied: no doubled spaces, no space before a comma or full stop, no
  dangling or doubled commas, no empty parentheses.

Lead text is untrusted: values lose control characters and line breaks, and are substituted
once (a buyer named ``{seller_phone}`` stays that text). Showing the result as plain text is
the caller's part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

LEAD_PLACEHOLDERS = (
    "name",
    "first_name",
    "company",
    "product",
    "quantity",
    "unit",
    "city",
    "state",
    "phone",
    "email",
)
SELLER_PLACEHOLDERS = ("seller", "seller_company", "seller_phone")
PLACEHOLDERS = LEAD_PLACEHOLDERS + SELLER_PLACEHOLDERS

DEFAULT_NAME = "default"
DEFAULT_TEXT = (
    "Namaste[ {first_name}], thank you for your enquiry[ for {product}]"
    "[ ({quantity} {unit})] on IndiaMART.[ This is {seller}[ from {seller_company}].]"
    " May I call you to understand your requirement and share our best price?"
    "[ You can also reach me on {seller_phone}.]"
)
DEFAULT_SUBJECT = "Your enquiry[ for {product}]"

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_HONORIFICS = frozenset(
    {"mr", "mrs", "ms", "miss", "dr", "shri", "sri", "smt", "kumari", "prof", "m/s", "er"}
)


@dataclass(frozen=True, slots=True)
class Template:
    """One ``[templates.NAME]`` table: the message text and, for email, its subject."""

    name: str
    text: str
    subject: str = DEFAULT_SUBJECT


DEFAULT = Template(DEFAULT_NAME, DEFAULT_TEXT, DEFAULT_SUBJECT)


def check(text: str) -> None:
    """Raise ValueError, in one line, for an unknown placeholder or an unbalanced bracket."""
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            raise ValueError(
                f"{{{match.group(1)}}} is not a placeholder; use "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            )
    if _PLACEHOLDER.sub("", text).count("{") or _PLACEHOLDER.sub("", text).count("}"):
        raise ValueError("a { or } without its pair; placeholders look like {first_name}")
    depth = 0
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            break
    if depth != 0:
        raise ValueError("a [ or ] without its pair; optional text looks like [ from {city}]")


def from_config(name: str, table: object) -> Template:
    """A ``[templates.NAME]`` table as read from TOML; ValueError says what is wrong."""
    if isinstance(table, str):
        table = {"text": table}
    if not isinstance(table, Mapping):
        raise ValueError('expected a table with text = "…" (and subject = "…" for email)')
    unknown = sorted(set(table) - {"text", "subject"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; a template has text and subject")
    text, subject = table.get("text"), table.get("subject", DEFAULT_SUBJECT)
    if not isinstance(text, str) or not text.strip():
        raise ValueError('text = "…" is missing')
    if not isinstance(subject, str):
        raise ValueError("subject must be text")
    check(text)
    check(subject)
    return Template(name, text.strip(), subject.strip())


def first_name(name: str) -> str:
    """The first word of a name that is not an honorific: ``Dr. Ravi Kumar`` → ``Ravi``."""
    words = clean(name).split()
    for word in words:
        if word.rstrip(".").casefold() not in _HONORIFICS:
            return word.strip(",")
    return ""


def clean(value: object) -> str:
    """A value as one line of plain text: no control characters, single spaces."""
    if value is None:
        return ""
    text = _CONTROL.sub(" ", str(value))
    return " ".join(text.split())


def values(lead: Mapping[str, object], seller: Mapping[str, object]) -> dict[str, str]:
    """Every placeholder's value for ``lead`` (its fields by contract name) and the seller."""
    out = {p: clean(lead.get(p)) for p in LEAD_PLACEHOLDERS if p != "first_name"}
    out["first_name"] = first_name(out["name"])
    out["seller"] = clean(seller.get("name"))
    out["seller_company"] = clean(seller.get("company"))
    out["seller_phone"] = clean(seller.get("phone"))
    return out


def render(text: str, fields: Mapping[str, str]) -> str:
    """``text`` with its placeholders filled from ``fields`` (see :func:`values`)."""
    return _tidy(_fill(text, fields))


def _fill(text: str, fields: Mapping[str, str]) -> str:
    """Substitute once, dropping each bracketed segment whose placeholders are not all known."""
    out: list[list[str]] = [[]]  # one buffer per open bracket
    complete: list[bool] = [True]
    pos = 0
    while pos < len(text):
        char = text[pos]
        match = _PLACEHOLDER.match(text, pos)
        if match:
            value = fields.get(match.group(1), "")
            if not value:
                complete[-1] = False
            out[-1].append(value)
            pos = match.end()
            continue
        if char == "[":
            out.append([])
            complete.append(True)
        elif char == "]" and len(out) > 1:
            segment, whole = "".join(out.pop()), complete.pop()
            if whole:
                out[-1].append(segment)
        else:
            out[-1].append(char)
        pos += 1
    while len(out) > 1:  # an unclosed bracket (check() refuses them): keep its text
        segment = "".join(out.pop())
        complete.pop()
        out[-1].append(segment)
    return "".join(out[0])


_TIDY = (
    (re.compile(r"\(\s*\)"), ""),  # empty parentheses
    (re.compile(r"[ \t]+"), " "),
    (re.compile(r" +([,.;:!?)])"), r"\1"),  # no space before punctuation
    (re.compile(r"\( +"), "("),
    (re.compile(r",(\s*,)+"), ","),  # doubled commas
    (re.compile(r",\s*([.;:!?])"), r"\1"),  # a comma dangling before a full stop
    (re.compile(r"^[ ,]+|[ ,]+$", re.MULTILINE), ""),  # dangling at a line's ends
)


def _tidy(text: str) -> str:
    for pattern, replacement in _TIDY:
        text = pattern.sub(replacement, text)
    return text.strip()
