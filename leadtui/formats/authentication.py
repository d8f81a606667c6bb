"""The receiving server's verdict on who sent a mail (RFC 8601 ``Authentication-Results``).

The From domain is the only thing that makes a mail an IndiaMART or TradeIndia mail, and
anyone can write it. The seller's own mail server (Gmail and Workspace always do) checks
DKIM and DMARC on arrival and records the result in an ``Authentication-Results`` header
at the top of the mail. Only the topmost one is read: a sender can write such headers too,
but only below the ones the receiving servers add.

When that verdict says both DKIM and DMARC failed for the marketplace's domain, the mail
did not come from the marketplace, and it is not an ordinary lead. Without the header
(a server that does not check, a hand-made file) nothing is concluded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADER_CHARS = 16_000

_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=\s*([A-Za-z]+)")
_PROPERTY = re.compile(r"([A-Za-z]+)\.([A-Za-z0-9_-]+)\s*=\s*\"?([^\s\";]+)")


@dataclass(frozen=True)
class Check:
    """One method's result in the header: ``dkim=fail header.d=indiamart.com``."""

    method: str
    result: str
    properties: dict[str, str]

    def domain(self, *names: str) -> str | None:
        """The first of the named properties, as a bare lower-case domain."""
        for name in names:
            if value := self.properties.get(name):
                return value.rpartition("@")[2].strip(".").lower()
        return None


def checks(header: str) -> list[Check]:
    """The method results of one ``Authentication-Results`` value (the authserv-id skipped)."""
    text = header[:MAX_HEADER_CHARS]
    for _ in range(3):  # comments nest rarely, and never deeply
        text = _COMMENT.sub(" ", text)
    found: list[Check] = []
    for piece in text.split(";")[1:]:
        if match := _RESULT.match(piece):
            properties = {
                f"{ptype.lower()}.{name.lower()}": value
                for ptype, name, value in _PROPERTY.findall(piece, match.end())
            }
            found.append(Check(match[1].lower(), match[2].lower(), properties))
    return found


def _within(domain: str | None, organisation: str) -> bool:
    return domain is not None and (domain == organisation or domain.endswith("." + organisation))


def forged(header: str | None, organisation: str) -> str | None:
    """Why the receiving server's verdict says the mail is not from ``organisation``.

    ``None`` unless DMARC failed for that domain (``dmarc=fail``, with ``header.from`` in
    it or not given) and no DKIM signature of that domain passed. The reason is one line
    for the review screen.
    """
    if not header:
        return None
    found = checks(header)
    dmarc = [
        check
        for check in found
        if check.method == "dmarc"
        and check.result == "fail"
        and (
            check.domain("header.from") is None
            or _within(check.domain("header.from"), organisation)
        )
    ]
    if not dmarc:
        return None
    if any(
        check.method == "dkim"
        and check.result == "pass"
        and _within(check.domain("header.d", "header.i"), organisation)
        for check in found
    ):
        return None
    dkim = sorted({check.result for check in found if check.method == "dkim"}) or ["none"]
    server = header.split(";", 1)[0].strip()[:80] or "the receiving server"
    return (
        f"the mail says it is from {organisation}, but {server} reports "
        f"dkim={'/'.join(dkim)} and dmarc=fail for it: not added as a lead, kept for review"
    )
