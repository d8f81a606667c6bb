"""RFC 822 bytes to a :class:`Mail`: decoded headers, the text parts, rendered lines.

A small MIME walker on ``bytes.find`` instead of the stdlib ``email`` package: with
``policy.compat32`` the stdlib alone reads about 4,000 sample mails/s here, which leaves no
room in the 3,000 mails/s budget for the rest of the parser. This walker does the part the
parser needs (headers, multipart boundaries, transfer encodings, charsets, RFC 2047) in a
few tens of microseconds, and ``tests/test_parser_mime.py`` checks it against the stdlib.

Limits keep hostile mail cheap: nesting and part counts are bounded, and a text part
bigger than :data:`MAX_TEXT_BYTES` is reported, never silently truncated.
"""

from __future__ import annotations

import binascii
import contextlib
import re
from dataclasses import dataclass
from email.utils import parseaddr
from functools import cached_property

from leadtui.formats.html import html_to_lines, text_to_lines
from leadtui.formats.text import clean_text, header_time

MAX_DEPTH = 32
MAX_PARTS = 256
MAX_TEXT_BYTES = 2_000_000

_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_SIMPLE_ADDRESS = re.compile(
    r'\s*(?:"([^"\\]*)"|([^"<>,;:()\\@]*?))\s*<([^<>\s"(),;:\\]+@[^<>\s"(),;:\\]+)>\s*'
    r'|\s*()()([^<>\s"(),;:\\]+@[^<>\s"(),;:\\]+)\s*'
)
_LATIN = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "windows-1252", "cp1252"})
_ASCII = frozenset({"", "us-ascii", "ascii", "utf-8", "utf8"})


# ---------------------------------------------------------------- decoding


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset; undeclared or wrong: UTF-8, then Windows-1252.

    ``iso-8859-1`` is read as Windows-1252, as mail clients do (its 0x80-0x9F are the
    curly quotes and dashes that Windows mailers put there). Unknown charset names fall
    back instead of failing.
    """
    name = (charset or "").strip().strip("\"'").lower()
    if name in _LATIN:
        return data.decode("cp1252", "replace")
    if name not in _ASCII:
        with contextlib.suppress(Exception):  # LookupError, UnicodeError, a codec's surprise
            return data.decode(name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def decode_base64(data: bytes) -> bytes:
    """Lenient base64: junk characters skipped, missing padding tolerated."""
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        clean = _BASE64_JUNK.sub(b"", data)
        clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
        try:
            return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))
        except binascii.Error:
            return b""


def decode_transfer(body: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding (base64, quoted-printable; others as they are)."""
    encoding = encoding.strip().lower()
    if encoding == "base64":
        return decode_base64(body)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(body)
    return body


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words in a header value.

    Whitespace between two encoded words is dropped, and adjacent words in one charset are
    decoded together (encoders split multi-byte characters across words).
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = b""
    pending_charset = ""
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        charset = match[1].split("*", 1)[0]
        joined = position > 0 and not between.strip()
        if pending and (not joined or charset.lower() != pending_charset.lower()):
            out.append(decode_bytes(pending, pending_charset))
            pending = b""
        if not joined:
            out.append(between)
        payload = match[3].encode("ascii", "replace")
        if match[2] in "bB":
            pending += decode_base64(payload)
        else:
            pending += binascii.a2b_qp(payload.replace(b"_", b" "))
        pending_charset = charset
        position = match.end()
    if pending:
        out.append(decode_bytes(pending, pending_charset))
    out.append(value[position:])
    return "".join(out)


def split_address(value: str) -> tuple[str, str]:
    """(display name, address) of an address header; the common shapes without ``parseaddr``."""
    value = value[:2000]
    if match := _SIMPLE_ADDRESS.fullmatch(value):
        return (match[1] or match[2] or match[4] or "").strip(), match[3] or match[6]
    return parseaddr(value)


# ---------------------------------------------------------------- structure


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Header block and body, split at the first empty line (LF or CRLF)."""
    if data[:1] == b"\n" or data[:2] == b"\r\n":
        return b"", data.split(b"\n", 1)[1] if b"\n" in data else b""
    blank = [i for i in (data.find(b"\n\n"), data.find(b"\n\r\n")) if i != -1]
    if not blank:
        return data, b""
    end = min(blank)
    return data[:end], data[end + (2 if data[end + 1] == 10 else 3) :]


def _parse_headers(head: bytes) -> dict[str, str]:
    """Unfolded header values by lower-case name; the first occurrence of each wins."""
    text = decode_bytes(head, None)
    headers: dict[str, str] = {}
    name: str | None = None
    for raw_line in text.split("\n"):
        line = raw_line.rstrip("\r")
        if line[:1] in (" ", "\t"):
            if name is not None:
                headers[name] += line
            continue
        colon = line.find(":")
        key = line[:colon].strip().lower() if colon > 0 else ""
        if not key or " " in key or key in headers:
            name = None  # an mbox "From " line, garbage, or a repeated header
            continue
        name = key
        headers[name] = line[colon + 1 :].lstrip()
    return headers


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    main, _, rest = value.partition(";")
    ctype = main.strip().lower()
    params = {
        match[1].lower(): match[2] if match[2] is not None else match[3]
        for match in _PARAM.finditer(";" + rest)
    }
    return (ctype if "/" in ctype else "text/plain"), params


def _split_multipart(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts between ``--boundary`` delimiter lines (preamble and epilogue dropped)."""
    delimiter = b"--" + boundary
    parts: list[bytes] = []
    start: int | None = None
    at = 0 if body.startswith(delimiter) else _next_delimiter(body, delimiter, 0)
    while at != -1:
        line_end = body.find(b"\n", at)
        rest = body[at + len(delimiter) : line_end if line_end != -1 else len(body)]
        closing = rest.startswith(b"--")
        if closing or not rest.strip():  # otherwise a longer boundary: not ours
            if start is not None:
                end = at - 1 if at and body[at - 1] == 10 else at
                end = end - 1 if end and body[end - 1] == 13 else end
                parts.append(body[start:end])
                start = None
            if closing or line_end == -1 or len(parts) >= MAX_PARTS:
                return parts
            start = line_end + 1
        at = _next_delimiter(body, delimiter, at + 1)
    if start is not None:
        parts.append(body[start:])  # no closing delimiter: the part runs to the end
    return parts


def _next_delimiter(body: bytes, delimiter: bytes, start: int) -> int:
    found = body.find(b"\n" + delimiter, start)
    return found + 1 if found != -1 else -1


@dataclass(frozen=True)
class Leaf:
    """One text part, still transfer-encoded."""

    ctype: str
    charset: str | None
    encoding: str
    body: bytes

    def decoded(self) -> bytes:
        return decode_transfer(self.body, self.encoding)


def _leaves(headers: dict[str, str], body: bytes) -> list[Leaf]:
    """The text/html and text/plain parts of a message tree, in document order."""
    found: list[Leaf] = []
    stack = [(headers, body, 0)]
    visited = 0
    while stack and visited < MAX_PARTS:
        part_headers, part_body, depth = stack.pop()
        visited += 1
        ctype, params = _content_type(part_headers.get("content-type", ""))
        if ctype.startswith("multipart/"):
            boundary = params.get("boundary")
            if boundary and depth < MAX_DEPTH:
                children = _split_multipart(part_body, boundary.encode("utf-8", "replace"))
                for child in reversed(children):
                    head, child_body = _split_head(child)
                    stack.append((_parse_headers(head), child_body, depth + 1))
        elif ctype in ("text/html", "text/plain") and (
            "attachment" not in part_headers.get("content-disposition", "").lower()
        ):
            encoding = part_headers.get("content-transfer-encoding", "")
            found.append(Leaf(ctype, params.get("charset"), encoding, part_body))
    return found


# ---------------------------------------------------------------- the mail


def _is_unfilled_template(text: str) -> bool:
    """IndiaMART's broken text part: URL-encoded ``{{.placeholders}}``, never data."""
    return "%7B%7B" in text or "%7b%7b" in text or "{{." in text


class BodyTooLarge(Exception):
    """A text part beyond :data:`MAX_TEXT_BYTES`: reported, not truncated."""


class Mail:
    """One parsed email: what the families read. Bodies are decoded only when asked for."""

    def __init__(self, raw: bytes) -> None:
        head, body = _split_head(raw)
        self.headers = _parse_headers(head)
        self._body = body

    def header(self, name: str) -> str:
        """A header, RFC 2047-decoded, unfolded and cleaned ("" when absent)."""
        value = self.headers.get(name)
        return (clean_text(decode_words(value)) or "") if value else ""

    @cached_property
    def sender(self) -> str:
        """The From address, lower-cased ("" when there is none)."""
        return split_address(self.headers.get("from", ""))[1].strip().lower()

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2].rstrip(".")

    @property
    def sender_local(self) -> str:
        return self.sender.rpartition("@")[0]

    @cached_property
    def subject(self) -> str:
        return self.header("subject")

    @cached_property
    def message_id(self) -> str | None:
        value = self.headers.get("message-id", "").strip()
        if value.startswith("<"):
            value = value[1:].partition(">")[0]
        return clean_text(value)

    @cached_property
    def received_at(self) -> str | None:
        """The Date header with its offset; failing that, the newest Received stamp."""
        stamp = header_time(self.headers.get("date"))
        if stamp is None and "received" in self.headers:
            stamp = header_time(self.headers["received"].rpartition(";")[2])
        return stamp

    @cached_property
    def reply_to_name(self) -> str | None:
        return clean_text(decode_words(split_address(self.headers.get("reply-to", ""))[0]))

    @cached_property
    def _parts(self) -> tuple[Leaf | None, Leaf | None]:
        html: Leaf | None = None
        plain: Leaf | None = None
        for leaf in _leaves(self.headers, self._body):
            if leaf.ctype == "text/html":
                html = html or leaf
            else:
                plain = plain or leaf
        return html, plain

    def _text_of(self, leaf: Leaf | None) -> str | None:
        if leaf is None:
            return None
        data = leaf.decoded()
        if len(data) > MAX_TEXT_BYTES:
            raise BodyTooLarge(
                f"the {leaf.ctype} part is {len(data):,} bytes, more than the "
                f"{MAX_TEXT_BYTES:,} a lead email can have; it was not read"
            )
        return decode_bytes(data, leaf.charset).lstrip("\ufeff")

    @cached_property
    def html(self) -> str | None:
        """The decoded HTML part (the authoritative one), if any."""
        return self._text_of(self._parts[0])

    @cached_property
    def text(self) -> str | None:
        """The decoded text/plain part, if any."""
        return self._text_of(self._parts[1])

    @cached_property
    def html_lines(self) -> list[str]:
        return html_to_lines(self.html) if self.html else []

    @cached_property
    def text_lines(self) -> list[str]:
        """The text part's lines; none when it is IndiaMART's unfilled template."""
        text = self.text
        return text_to_lines(text) if text and not _is_unfilled_template(text) else []

    @property
    def lines(self) -> list[str]:
        """The body as text lines: the HTML part if there is one, else the text part."""
        return self.html_lines if self.html else self.text_lines

    @property
    def raw_body_text(self) -> str:
        """HTML and text parts as decoded source, for links (``call+91…``, ``?ext=``)."""
        return (self.html or "") + "\n" + (self.text or "")
