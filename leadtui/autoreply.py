"""The automatic acknowledgement to a new buyer (``[autoreply]``, off by default).

Two outbox targets the ``[autoreply]`` table makes (they are not ``[[notify]]`` tables): an
email from a ``[templates.NAME]`` through ``[smtp]``, and a WhatsApp Cloud API template
message. Their routes carry the rules the store applies in the capture transaction (a lead
with the address to send to, received lately, a buyer not greeted within 48 hours and not
opted out); the sender applies the rest when it sends (working hours as the complement of
quiet hours, the opt-out again, the daily cap) and writes each send into the lead's history.

The WhatsApp Cloud API (``POST https://graph.facebook.com/v{N}/{phone-number-id}/messages``
with a bearer token) answers ``{"messages": [{"id": "wamid…"}]}``, or an ``error`` object
whose ``code`` says whether trying again can help: Meta answers HTTP 400 for rate limits too
(130429, 131056, 4, 80007), so the code decides, not the status.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leadtui import mailer, templates
from leadtui.config import NotifyTarget, Settings
from leadtui.targets import Answer, HttpTarget, Target

EMAIL = "autoreply-email"
WHATSAPP = "autoreply-whatsapp"
TYPES = (EMAIL, WHATSAPP)
# Meta's error codes that are worth another try (rate limits, Meta's own trouble, a token
# that can be fixed within the day); any other error is about this message: a dead letter.
RETRY_CODES = frozenset({1, 2, 4, 17, 190, 80007, 130429, 131000, 131016, 131056, 133004})


def targets(settings: Settings) -> list[NotifyTarget]:
    """The acknowledgement targets ``[autoreply]`` asks for (none unless enabled). Outside
    working hours they hold their messages (quiet hours are the rest of the day)."""
    config = settings.autoreply
    if not config.enabled:
        return []
    hours = config.working_hours
    quiet = (hours[1], hours[0]) if hours else None
    made = []
    if config.email:
        made.append(NotifyTarget(EMAIL, EMAIL, quiet_hours=quiet, timeout=15.0))
    if config.whatsapp:
        url = f"{config.whatsapp_url}/{config.whatsapp_phone_id}/messages"
        made.append(
            NotifyTarget(
                WHATSAPP, WHATSAPP, url=url, token=config.whatsapp_token, quiet_hours=quiet
            )
        )
    return made


def needs(config: NotifyTarget) -> str:
    """The lead field an acknowledgement is sent to."""
    return "email" if config.type == EMAIL else "phone"


@dataclass
class Acknowledgement(Target):
    """What both acknowledgements share: the settings (templates, seller, cap)."""

    settings: Settings = field(default_factory=Settings, repr=False)

    @property
    def channel(self) -> str:
        return "email" if self.config.type == EMAIL else "whatsapp"

    @property
    def daily_cap(self) -> int:
        return self.settings.autoreply.daily_cap

    def fields(self, lead: Mapping[str, Any]) -> dict[str, str]:
        return templates.values(lead, self.settings.seller)


@dataclass
class EmailAcknowledgement(Acknowledgement):
    """The ``email_template`` rendered for the lead, sent to the buyer's address."""

    def describe(self) -> str:
        where = self.settings.smtp_host or "no [smtp] host"
        return f"automatic email to each new buyer via {where}"

    def secrets(self) -> tuple[str, ...]:
        password = self.settings.smtp_login[1].reveal()
        return (password,) if password else ()

    def deliver(self, event: Mapping[str, Any]) -> Answer:
        lead = event.get("lead") or {}
        template = self.settings.templates[self.settings.autoreply.email_template]
        fields = self.fields(lead)
        subject = templates.render(template.subject, fields)
        text = templates.render(template.text, fields)
        headers = (
            ("X-Leadtui-Event-Id", str(event.get("id") or "")),
            ("Auto-Submitted", "auto-replied"),
        )
        reply = mailer.Reply(str(lead.get("email") or ""), subject, text, headers=headers)
        try:
            mailer.send(self.settings, reply, timeout=self.config.timeout)
        except mailer.MailError as exc:
            detail = self.scrub(str(exc))
            refused = "refused the address" in detail or "not an email address" in detail
            return Answer(False, None, detail, permanent=refused)
        return Answer(True, 250, "250 acknowledgement mailed", sent=f"{subject}: {text}")


def whatsapp_number(phone: str) -> str:
    """The Cloud API's ``to``: digits with the country code (an Indian 10-digit number gets
    91)."""
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]
    return "91" + digits if len(digits) == 10 else digits


@dataclass
class WhatsAppAcknowledgement(Acknowledgement, HttpTarget):
    """A template message through the WhatsApp Cloud API."""

    def describe(self) -> str:
        parts = urllib.parse.urlsplit(self.config.url)
        name = self.settings.autoreply.whatsapp_template
        return f"automatic WhatsApp template {name!r} via {parts.scheme}://{parts.hostname}"

    def body(self, lead: Mapping[str, Any]) -> dict[str, Any]:
        config = self.settings.autoreply
        fields = self.fields(lead)
        # Meta refuses an empty parameter: a value we do not know is sent as "-".
        params = [templates.render(p, fields) or "-" for p in config.whatsapp_params]
        template: dict[str, Any] = {
            "name": config.whatsapp_template,
            "language": {"code": config.whatsapp_language},
        }
        if params:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
            ]
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": whatsapp_number(str(lead.get("phone") or "")),
            "type": "template",
            "template": template,
        }

    def deliver(self, event: Mapping[str, Any]) -> Answer:
        lead = event.get("lead") or {}
        message = self.body(lead)
        headers = {
            "Authorization": f"Bearer {self.config.token.reveal()}",
            "Content-Type": "application/json",
        }
        posted = self._post_json(self.config.url, message, headers, what="WhatsApp")
        if isinstance(posted, Answer):
            return posted
        status, data = posted
        if 200 <= status < 300 and data.get("messages"):
            wamid = self.scrub(str((data["messages"][0] or {}).get("id", "?")))
            params = ", ".join(
                p["text"]
                for c in message["template"].get("components", [])
                for p in c["parameters"]
            )
            sent = f"template {message['template']['name']}" + (f" ({params})" if params else "")
            return Answer(True, status, f"{status} message {wamid} accepted", sent=sent)
        return self._error(status, data)

    def _error(self, status: int, data: dict[str, Any]) -> Answer:
        found = data.get("error")
        problem: dict[str, Any] = found if isinstance(found, dict) else {}
        try:
            code = int(problem.get("code") or 0)
        except (TypeError, ValueError):
            code = 0
        text = self.scrub(" ".join(str(problem.get("message") or "").split()))[:300]
        if code == 190 or status == 401:
            text = "WhatsApp refused the access token; check whatsapp_token (it may have expired)"
        retry = code in RETRY_CODES or status == 429 or status >= 500
        return Answer(False, status, f"{status} (#{code}) {text}".strip(), permanent=not retry)


def make(config: NotifyTarget, settings: Settings) -> Acknowledgement:
    if config.type == EMAIL:
        return EmailAcknowledgement(config, settings)
    return WhatsAppAcknowledgement(config, settings=settings)
