"""IndiaMART notification emails (FORMATS 3): enquiries, BuyLeads and buyer replies.

Each family reads the *rendered text lines* of the mail (``Mail.lines``), so a change of
markup, a text-only copy or a legacy ``<font>`` layout read the same. Layout families,
not templates: a row may be ``Label : value`` or three lines ``Label`` / ``:`` / ``value``,
the product sentence may be ``I am looking for X.`` or ``I need X.``, and so on. Adding a
wording IndiaMART starts to use is one alternative in the pattern that reads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from leadtui.formats.mime import Mail
from leadtui.formats.places import (
    Place,
    country_code,
    ends_with_state,
    parse_location,
    split_city_pin,
    state_name,
)
from leadtui.formats.requirement import apply_pairs, split_one_line_specs, split_pair
from leadtui.formats.results import NotUnderstood, Result, finish_lead, new_lead, reply
from leadtui.formats.text import (
    emails_in,
    first_two,
    normalize_name,
    normalize_phone,
    phones_in,
    subject_time,
)

# ---------------------------------------------------------------- who sent it (3.1)

DOMAIN = "indiamart.com"

_PHONE_SUBJECT = re.compile(r"\benquiry\s+by\s+phone\b", re.IGNORECASE)
_EXPORT_SUBJECT = re.compile(r"export\s+enquiry\s+for\s", re.IGNORECASE)
_ENQUIRY_SUBJECT = re.compile(r"enquiry\s+for\s", re.IGNORECASE)
_BUYLEAD_SUBJECT = re.compile(r"buyer\s+details\s+for\s", re.IGNORECASE)
_REPLY_SUBJECT = re.compile(r"\b(?:\d+|a|one)\s+new\s+messages?\s+for\s|^re\s*:", re.IGNORECASE)


def from_indiamart(mail: Mail) -> bool:
    """The From domain is exactly ``indiamart.com`` (no subdomain, no look-alike)."""
    return mail.sender_domain == DOMAIN


def _enquiry_sender(mail: Mail) -> bool:
    local = mail.sender_local
    return from_indiamart(mail) and (
        (local.startswith("buyershelp") and "reply" not in local) or local == "call-support"
    )


def is_reply(mail: Mail) -> bool:
    if not from_indiamart(mail):
        return False
    if mail.sender_local.startswith("buyershelp+reply"):
        return True
    return _enquiry_sender(mail) and _REPLY_SUBJECT.search(mail.subject) is not None


def is_phone_enquiry(mail: Mail) -> bool:
    return _enquiry_sender(mail) and _PHONE_SUBJECT.search(mail.subject) is not None


def is_export_enquiry(mail: Mail) -> bool:
    return _enquiry_sender(mail) and _EXPORT_SUBJECT.match(mail.subject) is not None


def is_enquiry(mail: Mail) -> bool:
    """A direct or legacy enquiry; with an unknown subject, a body that reads as one."""
    if not _enquiry_sender(mail):
        return False
    return _ENQUIRY_SUBJECT.match(mail.subject) is not None or _looks_like_enquiry(mail.lines)


def is_buylead(mail: Mail) -> bool:
    if not from_indiamart(mail) or mail.sender_local != "buyleads":
        return False
    if _BUYLEAD_SUBJECT.match(mail.subject):
        return True
    return _find(mail.lines, _CONTACT_HEADING.fullmatch) is not None


def not_a_lead_reason(mail: Mail) -> str:
    """Why an IndiaMART mail that no family claimed is not a lead, for the review screen."""
    subject = mail.subject.lower()
    local = mail.sender_local
    if "receipt" in subject:
        what = "payment receipt"
    elif "invoice" in subject:
        what = "invoice"
    elif (
        "otp" in subject.split() or "one time password" in subject or "verification code" in subject
    ):
        what = "one-time password"
    elif local == "newsletter" or "newsletter" in subject or "digest" in subject:
        what = "newsletter"
    elif local == "buyleads":
        what = f"BuyLead suggestions, not a purchased BuyLead ('{mail.subject}')"
    else:
        what = f"IndiaMART notification from {mail.sender} ('{mail.subject}')"
    return "not a lead: " + what


# ---------------------------------------------------------------- shared line patterns

_GREETING = re.compile(r"(?:dear|hello|hi)\s[^,]{1,60},?", re.IGNORECASE)
_PRODUCT_SENTENCE = re.compile(
    r"(?:i\s*am|i'm|i’m)\s+(?:looking|searching)\s+for\s+|(?:i\s*am|i'm|i’m)\s+interested\s+in\s+"
    r"|i\s+(?:need|require|want\s+to\s+buy|want|would\s+like\s+to\s+buy)\s+",
    re.IGNORECASE,
)
_HEADING = re.compile(
    r"(?:below|following)\s+(?:are|is)\b.{0,60}\brequirements?\b.{0,30}", re.IGNORECASE
)
_REGARDS = re.compile(
    r"(?:(?:thanks|thank\s+you|best|warm|kind)\s*(?:&|and|,)?\s*)?regards\s*[,.]?", re.IGNORECASE
)
_PHONE_LINE = re.compile(
    r"(?:click\s*to\s*call|call|mobile(?:\s*no\.?)?|phone(?:\s*no\.?)?|contact\s*(?:no\.?|number))\s*:\s*(.*)",
    re.IGNORECASE,
)
_EMAIL_LINE = re.compile(r"e-?mail(?:\s*id)?\s*:\s*(.*)", re.IGNORECASE)
_MEMBER_SINCE = re.compile(
    r"\bmember\s+since\s*:\s*(.+?)\s*(?=\b(?:i\s+deal\s+in|interested\s+products|requirements\s+till\s+date|sells)\s*:|$)",
    re.IGNORECASE,
)
_GST_NOTE = re.compile(r"\s*\(\s*gst\s+verified[^)]{0,40}\)\s*$", re.IGNORECASE)
_VERIFIED = re.compile(r"\(\s*verified\s*\)", re.IGNORECASE)
_NOTE = re.compile(r"\(.*\)")
_PHONE_ISH = re.compile(r"\+?[\dXx*][\dXx*\s().\-/]{5,}(?:\s*\(\s*verified\s*\))?", re.IGNORECASE)
_EMAIL_ISH = re.compile(r"\S+@\S+(?:\s*\(\s*verified\s*\))?|not\s+provided", re.IGNORECASE)
# A line of buttons, as cells ("Call Now" / "Reply") or inline ("Call +91-98… Chat Reply").
# Lines are whitespace-collapsed, so the single-space separators cannot backtrack.
_BUTTON = (
    r"(?:call(?: now| buyer)?(?: ?:? ?\+?\d[\d ()\-]{6,}\d)?|chat(?: now)?"
    r"|reply(?: now| to this (?:enquiry|message))?|send (?:quotation|quote|reply)"
    r"|view (?:details|enquiry|conversation|messages?|buylead)|contact buyer(?: now)?)"
)
_BUTTONS = rf"{_BUTTON}(?:(?: ?[|·•] ?| ){_BUTTON})*"
_CALL_BUTTON_NUMBER = re.compile(r"\bcall ?:? ?(\+?\d[\d ()\-]{6,}\d)", re.IGNORECASE)
_BLOCK_END = re.compile(
    rf"{_BUTTONS}|additional details about me ?:?|-{{2,}}|you are receiving\b.*|download the indiamart\b.*",
    re.IGNORECASE,
)
_CALL_LINK = re.compile(r"call(\+\d[\d\-]{7,}\d)", re.IGNORECASE)


def _find(
    lines: Sequence[str], test: Callable[[str], object], start: int = 0, end: int | None = None
) -> int | None:
    for index in range(start, len(lines) if end is None else min(end, len(lines))):
        if test(lines[index]):
            return index
    return None


def _drop_stop(text: str) -> str:
    """The product without the sentence's final full stop (``Fly Ash Bricks .`` too)."""
    text = text.strip()
    return text[:-1].rstrip() if text.endswith(".") else text


def _find_regards(lines: Sequence[str]) -> int | None:
    """The ``Regards,`` that opens the buyer block: followed by a phone or email line.

    A buyer may end their own message with "Regards,"; the template's comes after it.
    """
    candidates = [i for i, line in enumerate(lines) if _REGARDS.fullmatch(line)]
    for index in reversed(candidates):
        block = lines[index + 1 : index + 6]
        if any(_PHONE_LINE.fullmatch(line) or _EMAIL_LINE.fullmatch(line) for line in block):
            return index
    return candidates[0] if candidates else None


def _looks_like_enquiry(lines: Sequence[str]) -> bool:
    regards = _find_regards(lines)
    return regards is not None and _find(lines, _PRODUCT_SENTENCE.match, 0, regards) is not None


def _member_since(lines: Sequence[str]) -> str | None:
    for line in lines:
        if "ember" in line and (match := _MEMBER_SINCE.search(line)):
            return match[1]
    return None


# ---------------------------------------------------------------- enquiries (3.3-3.6, 3.9)


@dataclass
class _Requirement:
    product: str | None = None
    message: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)


def _read_requirement(lines: Sequence[str]) -> _Requirement:
    """Product sentence, heading, rows and free text between the greeting and ``Regards,``."""
    found = _Requirement()
    rows_allowed = False
    index = 0
    while index < len(lines):
        line = lines[index]
        following = lines[index + 1] if index + 1 < len(lines) else None
        if found.product is None and (match := _PRODUCT_SENTENCE.match(line)):
            found.product = _drop_stop(line[match.end() :]) or None
            found.message.append(line[:-2] + "." if line.endswith(" .") else line)
            rows_allowed = True
        elif _HEADING.fullmatch(line):
            rows_allowed = True
        elif following == ":":  # a row as three lines: Label / : / value
            value = lines[index + 2] if index + 2 < len(lines) else ""
            if index + 3 < len(lines) and lines[index + 3] == ":":
                value = ""  # the value cell was empty; the next line is the next label
            found.pairs.append((line, value))
            rows_allowed = True
            index += 3 if value else 2
            continue
        elif rows_allowed and (pair := split_pair(line)):
            found.pairs.append(pair)
        else:
            found.message.append(line)
            rows_allowed = False
        index += 1
    return found


@dataclass
class _Buyer:
    name: str | None = None
    company: str | None = None
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    location: str | None = None
    verified: set[str] = field(default_factory=set)
    phone_line_seen: bool = False


def _read_buyer(lines: Sequence[str]) -> _Buyer:
    """The block after ``Regards,``: name, company, phone, email, location (FORMATS 3.3)."""
    end = _find(lines, _BLOCK_END.fullmatch)
    block = list(lines[: min(end if end is not None else len(lines), 12)])
    buyer = _Buyer()
    if block and not (_PHONE_LINE.fullmatch(block[0]) or _EMAIL_LINE.fullmatch(block[0])):
        buyer.name = block.pop(0)
    contact_seen = False
    index = 0
    while index < len(block):
        line = block[index]
        following = block[index + 1] if index + 1 < len(block) else ""
        if match := _PHONE_LINE.fullmatch(line):
            value = match[1]
            if not value and _PHONE_ISH.fullmatch(following):
                value, index = following, index + 1
            buyer.phones += phones_in(_VERIFIED.sub(" ", value))
            buyer.phone_line_seen = contact_seen = True
            if _VERIFIED.search(value) and buyer.phones:
                buyer.verified.add("phone")
        elif match := _EMAIL_LINE.fullmatch(line):
            value = match[1]
            if not value and _EMAIL_ISH.fullmatch(following):
                value, index = following, index + 1
            buyer.emails += emails_in(_VERIFIED.sub(" ", value))
            contact_seen = True
            if _VERIFIED.search(value) and buyer.emails:
                buyer.verified.add("email")
        elif _GST_NOTE.fullmatch(line):
            buyer.verified.add("gst")
        elif _NOTE.fullmatch(line):
            pass  # "(Please call buyer between 10 AM and 7 PM)": not data
        elif not contact_seen and buyer.company is None:
            buyer.company = line
        elif contact_seen and buyer.location is None:
            buyer.location = line
        index += 1
    if buyer.company and (gst := _GST_NOTE.search(buyer.company)):
        buyer.company = buyer.company[: gst.start()].strip() or None
        buyer.verified.add("gst")
    return buyer


_EXPORT_COUNTRY = re.compile(
    r"\bfrom\s+[^,]{1,80},\s*(.{2,60}?)\s+via\s+indiamart\b", re.IGNORECASE
)
_SUBJECT_PRODUCT = re.compile(
    r"(?:export\s+)?enquiry\s+for\s+(.+?)(?:\s+from\s.*)?$|(.+?)\s+enquiry\s+by\s+phone\b",
    re.IGNORECASE,
)


def _subject_product(subject: str) -> str | None:
    match = _SUBJECT_PRODUCT.match(subject)
    return (match[1] or match[2]) if match else None


def parse_enquiry(mail: Mail, lines: Sequence[str], *, query_type: str = "W") -> Result:
    """A direct, export, phone or legacy enquiry (FORMATS 3.3-3.6 and 3.9)."""
    regards = _find_regards(lines)
    if regards is None:
        raise NotUnderstood("IndiaMART enquiry without a buyer block (no 'Regards,' line)")
    greeting = _find(lines, _GREETING.fullmatch, 0, regards)
    if greeting is not None:
        start = greeting + 1
    else:  # no "Dear …," line: the requirement starts at the product sentence
        start = _find(lines, _PRODUCT_SENTENCE.match, 0, regards) or 0
    requirement = _read_requirement(lines[start:regards])
    buyer = _read_buyer(lines[regards + 1 :])
    if buyer.name is None and not buyer.phone_line_seen:
        raise NotUnderstood(
            "IndiaMART enquiry whose buyer block after 'Regards,' has no name or phone"
        )

    lead = new_lead("indiamart", "email")
    lead["query_type"] = query_type
    lead["name"] = normalize_name(buyer.name) or normalize_name(mail.reply_to_name)
    lead["company"] = buyer.company
    if not buyer.phone_line_seen:
        buyer.phones = [
            p for p in map(normalize_phone, _CALL_LINK.findall(mail.raw_body_text)) if p
        ]
    lead["phone"], lead["phone_alt"] = first_two(buyer.phones)
    lead["email"], lead["email_alt"] = first_two(buyer.emails)
    lead["verified"] = list(buyer.verified)

    export = _EXPORT_SUBJECT.match(mail.subject) is not None
    place = parse_location(buyer.location, abroad=export) if buyer.location else Place()
    lead["city"], lead["state"], lead["pincode"] = place.city, place.state, place.pincode
    if place.country:
        lead["country"] = place.country
    elif not export:
        lead["country"] = "IN"  # a domestic IndiaMART enquiry
    elif subject_country := _EXPORT_COUNTRY.search(mail.subject):
        lead["country"] = country_code(subject_country[1])

    lead["product"] = requirement.product or _subject_product(mail.subject)
    apply_pairs(lead, requirement.pairs)
    lead["message"] = "\n".join(requirement.message) or None
    lead["member_since"] = _member_since(lines[regards + 1 :])
    lead["message_id"] = mail.message_id
    lead["received_at"] = (
        subject_time(mail.subject) if query_type == "P" else None
    ) or mail.received_at
    return finish_lead(lead)


def parse_phone_enquiry(mail: Mail, lines: Sequence[str]) -> Result:
    return parse_enquiry(mail, lines, query_type="P")


# ---------------------------------------------------------------- BuyLeads (3.7)

_CONTACT_HEADING = re.compile(r"buyer[’'`]?s?\s+contact\s+details\s*:?", re.IGNORECASE)
_TICK_WORD = re.compile(r"(phone|mobile|e-?mail|gst)\s*([✓✔])?", re.IGNORECASE)
_TICKS_LINE = re.compile(r"(?:(?:phone|mobile|e-?mail|gst)\s*[✓✔✗✘×]?\s*)+", re.IGNORECASE)
_DETAILS_HEADING = re.compile(r"buy\s*lead\s+details\s*:?\s*(.*)", re.IGNORECASE)
_BUYLEAD_END = re.compile(
    rf"{_BUTTONS}|indiamart recommends\b.*|regards ?,?|team indiamart|-{{2,}}", re.IGNORECASE
)
_MEMBER_LINE = re.compile(r"member\s+since\s*:\s*(.*)", re.IGNORECASE)
_SELLS_LINE = re.compile(r"sells\s*:.*", re.IGNORECASE)
_TICK_NAMES = {
    "phone": "phone",
    "mobile": "phone",
    "email": "email",
    "e-mail": "email",
    "gst": "gst",
}


def _identity(parts: list[str]) -> tuple[str | None, Place]:
    """``[Company…,] City[ - PIN], ST`` → (company, place)."""
    if len(parts) < 2:
        city, pincode = split_city_pin(parts[0]) if parts else (None, None)
        return None, Place(city, None, pincode, "IN")
    city, pincode = split_city_pin(parts[-2])
    state = state_name(parts[-1]) or parts[-1]
    return ", ".join(parts[:-2]) or None, Place(city, state, pincode, "IN")


def parse_buylead(mail: Mail, lines: Sequence[str]) -> Result:
    """Contact details of a purchased BuyLead (FORMATS 3.7)."""
    heading = _find(lines, _CONTACT_HEADING.fullmatch)
    if heading is None:
        raise NotUnderstood('IndiaMART BuyLead mail without a "Buyer\'s Contact Details" section')
    lead = new_lead("indiamart", "email")
    lead["query_type"] = "B"
    index = heading + 1
    if index < len(lines) and _TICKS_LINE.fullmatch(lines[index]):
        lead["verified"] = [
            _TICK_NAMES[w.lower()] for w, tick in _TICK_WORD.findall(lines[index]) if tick
        ]
        index += 1
    if index >= len(lines):
        raise NotUnderstood("IndiaMART BuyLead mail whose contact details are empty")

    first = lines[index]
    place = Place(country="IN")
    if "," in first and ends_with_state(first):  # merged: NAME, Company, City - PIN, ST
        parts = [p.strip() for p in first.split(",")]
        lead["name"] = parts[0]
        lead["company"], place = _identity(parts[1:])
        index += 1
    elif not _contact_line(first):
        lead["name"] = first
        index += 1
        if index < len(lines) and not _contact_line(lines[index]):
            lead["company"], place = _identity([p.strip() for p in lines[index].split(",")])
            index += 1
    lead["name"] = normalize_name(lead["name"])
    lead["city"], lead["state"], lead["pincode"], lead["country"] = place

    details = _find(lines, _DETAILS_HEADING.fullmatch, index)
    phones: list[str] = []
    emails: list[str] = []
    for position in range(index, details if details is not None else min(len(lines), index + 12)):
        line = lines[position]
        following = lines[position + 1] if position + 1 < len(lines) else ""
        if match := _PHONE_LINE.fullmatch(line):
            phones += phones_in(match[1] or (following if _PHONE_ISH.fullmatch(following) else ""))
        elif match := _EMAIL_LINE.fullmatch(line):
            emails += emails_in(match[1] or (following if _EMAIL_ISH.fullmatch(following) else ""))
        elif match := _MEMBER_LINE.fullmatch(line):
            lead["member_since"] = match[1]
    lead["phone"], lead["phone_alt"] = first_two(phones)
    lead["email"], lead["email_alt"] = first_two(emails)

    if details is not None and (heading_line := _DETAILS_HEADING.fullmatch(lines[details])):
        specs_start = details + 1
        lead["product"] = heading_line[1] or None  # "Buylead Details: Perforated Bricks"
        if (
            lead["product"] is None
            and specs_start < len(lines)
            and not _BUYLEAD_END.fullmatch(lines[specs_start])
        ):
            lead["product"] = lines[specs_start]
            specs_start += 1
        end = _find(lines, _BUYLEAD_END.fullmatch, specs_start)
        apply_pairs(lead, _spec_pairs(lines[specs_start : end if end is not None else len(lines)]))
    if lead["product"] is None:
        product = (
            _BUYLEAD_SUBJECT.sub("", mail.subject, count=1)
            if _BUYLEAD_SUBJECT.match(mail.subject)
            else ""
        )
        lead["product"] = product.strip().strip("\"'“”") or None
    lead["message_id"] = mail.message_id
    lead["received_at"] = mail.received_at
    return finish_lead(lead)


def _contact_line(line: str) -> bool:
    return bool(
        _PHONE_LINE.fullmatch(line)
        or _EMAIL_LINE.fullmatch(line)
        or _MEMBER_LINE.fullmatch(line)
        or _SELLS_LINE.fullmatch(line)
        or _DETAILS_HEADING.fullmatch(line)
    )


def _spec_pairs(lines: Sequence[str]) -> list[tuple[str, str]]:
    """BuyLead specs: one-line ``A : x B : y`` lines, or alternating label / value lines."""
    pairs: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if ":" in line and split_pair(line):
            pairs += split_one_line_specs(line)
            index += 1
        else:
            value = lines[index + 1] if index + 1 < len(lines) else ""
            pairs.append((line, value))
            index += 2
    return pairs


# ---------------------------------------------------------------- replies (3.8)

_INTRO = re.compile(
    r"you\s+have\s+(?:a|an|one|\d+|[a-z]+)\s+new\s+messages?\s+from\s+(.+?)\s+regarding\s+(.+)",
    re.IGNORECASE,
)
_REPLY_STOP = re.compile(
    rf"{_BUTTONS}|regards ?,?(?: team indiamart)?|team indiamart", re.IGNORECASE
)
_REPLY_SUBJECT_PRODUCT = re.compile(
    r".*?\bnew\s+messages?\s+for\s+(.+?)\s+enquiry\b|re\s*:\s*(?:export\s+)?enquiry\s+for\s+(.+?)(?:\s+from\s.*)?$",
    re.IGNORECASE,
)


def parse_reply(mail: Mail, lines: Sequence[str]) -> Result:
    """A buyer's message on an existing conversation: a ``reply``, never a lead."""
    intro_at = _find(lines, _INTRO.match)
    if intro_at is None:
        raise NotUnderstood("IndiaMART reply without the 'You have … new message(s) from …' line")
    intro = _INTRO.match(lines[intro_at])
    assert intro is not None
    name, _, company = intro[1].partition(", ")
    stop = _find(lines, _REPLY_STOP.fullmatch, intro_at + 1)
    messages = list(lines[intro_at + 1 : stop if stop is not None else len(lines)])
    if not messages:
        raise NotUnderstood(
            "IndiaMART reply with no message between the intro line and the buttons"
        )
    phone = None
    if stop is not None and (button := _CALL_BUTTON_NUMBER.search(lines[stop])):
        phone = normalize_phone(button[1])
    if phone is None:
        phone = next(filter(None, map(normalize_phone, _CALL_LINK.findall(mail.html or ""))), None)
    product = _drop_stop(intro[2])
    if not product and (match := _REPLY_SUBJECT_PRODUCT.match(mail.subject)):
        product = match[1] or match[2]
    return reply(
        name=normalize_name(name),
        company=company or None,
        product=product or None,
        phone=phone,
        messages=messages,
        received_at=mail.received_at,
        message_id=mail.message_id,
    )
