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
import codecs
import functools
import re
from dataclasses import dataclass
from email.utils import parseaddr
from functools import cached_property
from urllib.parse import unquote_to_bytes

from leadtui.formats.html import html_to_lines, text_to_lines
from leadtui.formats.text import clean_text, header_time

MAX_DEPTH = 32
MAX_PARTS = 256
MAX_TEXT_BYTES = 2_000_000

_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')
_QUOTED_PAIR = re.compile(r"\\(.)")
# An empty charset (``=??Q?…?=``) is a word too: it is read like an undeclared part.
_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?([^?\s]*)\?=")
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_SIMPLE_ADDRESS = re.compile(
    r'\s*(?:"([^"\\]*)"|([^"<>,;:()\\@]*?))\s*<([^<>\s"(),;:\\]+@[^<>\s"(),;:\\]+)>\s*'
    r'|\s*()()([^<>\s"(),;:\\]+@[^<>\s"(),;:\\]+)\s*'
)
# The header block: an optional mbox "From " line, then field lines ("Name: value") and
# their continuations (a line led by a space or tab with something on it). It ends at the
# first other line: the empty line, a line of only whitespace (which some mailers write in
# its place), or, when the empty line is missing, the first body line. Possessive, so a
# header folded over 100,000 lines is one linear scan.
_HEADER_BLOCK = re.compile(
    rb"(?:From [^\n]*+\n)?(?:[!-9;-~]++[ \t]*+:[^\n]*+(?:\n|\Z)|[ \t]++[^\s][^\n]*+(?:\n|\Z))*+"
)
_BLANK_LINE = re.compile(rb"[ \t\r\f\v]*(?:\n|\Z)")
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_BOM = b"\xef\xbb\xbf"

# Charset names that Python lacks or reads too strictly, mapped to the nearest codec: GB2312
# and GBK mail is really GB18030 (their superset), Korean mailers' KS C 5601 is CP949,
# "-i"/"-e" Hebrew and Arabic are the plain ISO tables (the suffix is about text direction).
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "cn-gb": "gb18030",
    "csgb2312": "gb18030",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-mac-ukrainian": "mac-cyrillic",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "x-mac-greek": "mac-greek",
    "x-mac-turkish": "mac-turkish",
    "x-mac-ce": "mac-latin2",
    "x-mac-icelandic": "mac-iceland",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "windows-874": "cp874",
    "x-windows-874": "cp874",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "x-sjis": "shift_jis",
    "x-euc-jp": "euc_jp",
    "unicode-1-1-utf-7": "utf-7",
    "utf8mb4": "utf-8",
    "x-user-defined": "cp1252",
}
# Codecs that decode bytes to text but are not character sets: a mail naming one must not
# get its escape sequences or punycode interpreted (``unicode_escape`` makes lone
# surrogates out of ``\\ud800``). Bytes-to-bytes and text-to-text codecs (base64, zlib,
# hex, uu, rot13) are refused by their ``_is_text_encoding`` flag.
_NOT_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "charmap"}
)


# ---------------------------------------------------------------- decoding


@functools.lru_cache(maxsize=128)
def charset_codec(charset: str | None) -> str:
    """The Python codec for a declared charset: "" when undeclared, unknown or not a charset.

    ``iso-8859-1`` and ``us-ascii`` come back as ``cp1252`` and ``ascii`` (the callers
    read those leniently); every other result is a codec that turns bytes into text.
    """
    name = (charset or "").strip().strip("\"'").strip().lower()
    if not name or len(name) > 40:
        return ""
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return ""
    codec = info.name
    if not getattr(info, "_is_text_encoding", True) or codec in _NOT_CHARSETS:
        return ""
    if codec in ("iso8859-1", "latin-1", "cp1252"):
        return "cp1252"
    return codec


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset; undeclared, ASCII or unknown: UTF-8, then Windows-1252.

    A bad byte costs one U+FFFD, as in the stdlib, not the whole part: a declared charset
    is decoded with replacement per bad sequence. Two exceptions, for what mailers really
    send: ``iso-8859-1`` is read as Windows-1252 (its 0x80-0x9F are the curly quotes and
    dashes Windows mailers put there), and a part labelled UTF-8 that holds not one UTF-8
    sequence but does hold 8-bit bytes is Windows-1252 mislabelled. Names that are not
    character sets (``unicode_escape``, ``base64``, ``rot13``) count as undeclared.
    """
    codec = charset_codec(charset)
    if codec == "cp1252":
        return data.decode("cp1252", "replace")
    if codec in ("", "ascii", "utf-8"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            if codec == "utf-8" and _UTF8_SEQUENCE.search(data):
                return data.decode("utf-8", "replace")
            return data.decode("cp1252", "replace")
    try:
        return data.decode(codec, "replace")
    except Exception:  # a codec's surprise (a stateful decoder, a bug): read it leniently
        return decode_bytes(data, None)


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
    decoded together (encoders split multi-byte characters across words). Raw 8-bit text
    inside a word (a mailer that skipped the encoding) is kept as the characters it is.
    One pass over the value, however many words it holds.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        charset = match[1].split("*", 1)[0]
        joined = position > 0 and not between.strip()
        if pending and (not joined or charset.lower() != pending_charset.lower()):
            out.append(decode_bytes(b"".join(pending), pending_charset))
            pending = []
        if not joined:
            out.append(between)
        payload = _word_bytes(match[3], charset)
        if match[2] in "bB":
            pending.append(decode_base64(payload))
        else:
            pending.append(binascii.a2b_qp(payload.replace(b"_", b" ")))
        pending_charset = charset
        position = match.end()
    if pending:
        out.append(decode_bytes(b"".join(pending), pending_charset))
    out.append(value[position:])
    return "".join(out)


def _word_bytes(payload: str, charset: str) -> bytes:
    """An encoded word's payload as bytes; 8-bit characters in it back in the word's charset."""
    if payload.isascii():
        return payload.encode("ascii")
    try:
        return payload.encode(charset_codec(charset) or "utf-8")
    except (UnicodeError, LookupError):
        return payload.encode("utf-8", "replace")


def split_address(value: str) -> tuple[str, str]:
    """(display name, address) of an address header; the common shapes without ``parseaddr``."""
    value = value[:2000]
    if match := _SIMPLE_ADDRESS.fullmatch(value):
        return (match[1] or match[2] or match[4] or "").strip(), match[3] or match[6]
    return parseaddr(value)


# ---------------------------------------------------------------- structure


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Header block and body (a leading UTF-8 byte-order mark is not part of the first header).

    The body starts after the empty line, or a line of only whitespace in its place; when
    the empty line is missing, at the first line that is not a header, as in the stdlib.
    """
    if data[:3] == _BOM:
        data = data[3:]
    block = _HEADER_BLOCK.match(data)
    end = block.end() if block else 0
    if blank := _BLANK_LINE.match(data, end):
        return data[:end], data[blank.end() :]
    return data[:end], data[end:]


def _decode_head(head: bytes) -> str:
    """Header bytes as text: UTF-8 (RFC 6532); a line that is not UTF-8 is Windows-1252."""
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError:
        return "\n".join(decode_bytes(line, None) for line in head.split(b"\n"))


def _parse_headers(head: bytes) -> dict[str, str]:
    """Unfolded header values by lower-case name; the first occurrence of each wins.

    The first is the topmost: for trace headers (``Received``, ``Authentication-Results``)
    the one the receiving server added last, never one the sender wrote below it.
    Continuations are gathered in lists and joined once, so folding costs linear time.
    """
    folded: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw_line in _decode_head(head).split("\n"):
        line = raw_line.rstrip("\r")
        if line[:1] in (" ", "\t"):
            if current is not None:
                current.append(line)
            continue
        colon = line.find(":")
        key = line[:colon].strip().lower() if colon > 0 else ""
        if not key or " " in key or key in folded:
            current = None  # an mbox "From " line, garbage, or a repeated header
            continue
        current = folded[key] = [line[colon + 1 :].lstrip()]
    return {name: "".join(lines) for name, lines in folded.items()}


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    main, _, rest = value.partition(";")
    ctype = main.strip().lower()
    return (ctype if "/" in ctype else "text/plain"), header_params(rest)


def header_params(rest: str) -> dict[str, str]:
    """The ``; name=value`` parameters of a header, RFC 2231 forms decoded.

    ``name*=charset'lang'%XX…`` is percent-encoded in its charset, and ``name*0=``,
    ``name*1*=``, … are pieces of one value; a decoded RFC 2231 value wins over a plain
    one of the same name, and a first occurrence over a repeated one.
    """
    params: dict[str, str] = {}
    pieces: dict[str, dict[int, tuple[bool, str]]] = {}
    for match in _PARAM.finditer(";" + rest):
        key = match[1].lower()
        if match[2] is not None:
            value = _QUOTED_PAIR.sub(r"\1", match[2]) if "\\" in match[2] else match[2]
        else:
            value = match[3]
        if "*" not in key:
            params.setdefault(key, value)
            continue
        name, _, section = key.partition("*")
        number = section.rstrip("*")
        if number and not (number.isdigit() and len(number) <= 3):
            continue
        extended = section.endswith("*") or not section
        pieces.setdefault(name, {}).setdefault(int(number or 0), (extended, value))
    for name, sections in pieces.items():
        if value := _rfc2231_value(sections):
            params[name] = value
    return params


def _rfc2231_value(sections: dict[int, tuple[bool, str]]) -> str:
    """Join the numbered pieces of one RFC 2231 parameter (from 0, up to the first gap)."""
    charset = ""
    data: list[bytes] = []
    number = 0
    while number in sections:
        extended, value = sections[number]
        if extended:
            if number == 0 and value.count("'") >= 2:
                charset, _, value = value.partition("'")
                value = value.partition("'")[2]
            data.append(unquote_to_bytes(value))
        else:
            data.append(value.encode("utf-8", "replace"))
        number += 1
    return decode_bytes(b"".join(data), charset)


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
    def reply_address(self) -> str | None:
        """The Reply-To address if it reaches someone: not the sender, not a no-reply box.

        For IndiaMART enquiries it is the relay to the buyer
        (``…@reply.indiamart.com``): not the buyer's email, but a way to answer them.
        """
        address = split_address(self.headers.get("reply-to", ""))[1].strip().lower()
        local, at, domain = address.rpartition("@")
        if not (at and local and "." in domain) or address == self.sender:
            return None
        if local.replace("-", "").replace("_", "").startswith(("noreply", "donotreply")):
            return None
        return address

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
