"""Where an outbox message goes: ntfy, Telegram, a signed webhook, email and a local command.

Each target turns one event (the JSON an outbox row holds) into one delivery and says what
came back as an :class:`Answer`; the sender (``leadtui/outbox.py``) decides about retries.
A target never raises for a receiver's failure, and every text it returns has been through
:meth:`Target.scrub`: secrets (bot tokens, ntfy tokens, webhook secrets, the SMTP password)
never reach a log line, an error, the outbox or ``doctor``. A target is described by its type,
scheme and host only (a webhook URL may carry a token too).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.header import Header
from typing import Any

from leadtui import __version__, mailer
from leadtui.config import NotifyTarget, Settings, is_loopback_host

PERMANENT = frozenset({400, 413, 422})  # the receiver refuses this message itself
USER_AGENT = f"leadtui/{__version__}"


@dataclass(frozen=True, slots=True)
class Answer:
    """What one delivery got back. ``detail`` is safe to log and store (scrubbed)."""

    ok: bool
    status: int | None  # the HTTP status, None when nothing answered
    detail: str
    retry_after: float | None = None
    permanent: bool = False
    sent: str = ""  # what reached the buyer (an acknowledgement), for the lead's history


# --------------------------------------------------------------------------- the message


def _phone_links(lead: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The lead's ``tel:`` and ``wa.me`` links (None without a phone)."""
    phone = str(lead.get("phone") or "")
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) < 6:
        return None, None
    return f"tel:+{digits}" if phone.startswith("+") else f"tel:{digits}", f"https://wa.me/{digits}"


def title_of(event: Mapping[str, Any]) -> str:
    if event.get("title") and not event.get("lead"):  # an alert: it says its own title
        return str(event["title"])
    lead = event.get("lead") or {}
    who = lead.get("name") or lead.get("company") or lead.get("phone") or "a buyer"
    product = lead.get("product") or "no product named"
    kind = event.get("type")
    if kind == "lead.replied":
        return f"{who} wrote again: {product}"
    if kind == "reminder.due":
        return f"Follow up now: {who} - {product}"
    if kind == "sla.breached":
        return f"Not contacted in time: {who} - {product}"
    if kind == "lead.status_changed":
        moved = f"{event.get('previous_status')} -> {event.get('status')}"
        return f"{who} ({product}): {moved} by {event.get('actor') or 'someone'}"
    if kind == "lead.updated":
        return f"{who} ({product}): {event.get('action') or 'updated'} by {event.get('actor') or 'someone'}"
    return f"New lead: {who} - {product}"


def text_of(event: Mapping[str, Any]) -> str:
    """The notification's text: plain text (lead text is data, never markup)."""
    if event.get("text") and not event.get("lead"):  # an alert: it says its own text
        return str(event["text"])
    lead = event.get("lead") or {}
    lines = []
    who = ", ".join(str(v) for v in (lead.get("name"), lead.get("company")) if v)
    where = ", ".join(str(v) for v in (lead.get("city"), lead.get("state")) if v)
    if who:
        lines.append(who + (f" ({where})" if where else ""))
    elif where:
        lines.append(where)
    qty = " ".join(str(v) for v in (lead.get("quantity"), lead.get("unit")) if v)
    if lead.get("product"):
        lines.append(str(lead["product"]) + (f", {qty}" if qty else ""))
    if lead.get("order_value"):
        lines.append(f"Order value: {lead['order_value']}")
    if lead.get("phone"):
        lines.append(f"Phone: {lead['phone']}")
    if lead.get("email"):
        lines.append(f"Email: {lead['email']}")
    said = [str(m) for m in event.get("messages") or []] or (
        [str(lead["message"])] if lead.get("message") else []
    )
    for message in said[:2]:
        lines.append(f'"{message[:300]}"')
    via = "/".join(str(v) for v in (lead.get("source"), lead.get("channel")) if v)
    lines.append(f"via {via}, lead #{lead.get('id')}")
    return "\n".join(lines)


def sample_event() -> dict[str, Any]:
    """The event ``leadtui notify test`` sends: a made-up lead, marked as a test."""
    lead = {
        "id": 0,
        "source": "indiamart",
        "channel": "email",
        "query_type": "W",
        "name": "Test Buyer (leadtui notify test)",
        "company": "Sample Traders",
        "phone": "+919800000000",
        "email": "buyer@example.com",
        "city": "Pune",
        "state": "Maharashtra",
        "product": "Sample product",
        "quantity": "10",
        "unit": "pieces",
        "message": "This is a test notification from leadtui.",
    }
    return {
        "id": f"test-{int(time.time())}",
        "type": "lead.created",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "test": True,
        "lead": lead,
    }


def _header(text: str) -> str:
    """A header value: ASCII as is, anything else RFC 2047 encoded (ntfy decodes it)."""
    text = " ".join(text.split())[:250]
    if text.isascii():
        return text
    return Header(text, "utf-8").encode(maxlinelen=10_000)


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    """One configured destination (a ``[[notify]]`` or ``[[webhook]]`` table)."""

    config: NotifyTarget

    @property
    def name(self) -> str:
        return self.config.name

    def describe(self) -> str:
        """Where it goes, without anything secret: the type, scheme and host."""
        parts = urllib.parse.urlsplit(self.config.url)
        return f"{self.config.type} at {parts.scheme}://{parts.hostname or '?'}"

    def secrets(self) -> tuple[str, ...]:
        return self.config.secrets()

    def scrub(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "********")
            text = text.replace(urllib.parse.quote(secret, safe=""), "********")
        return text

    def deliver(self, event: Mapping[str, Any]) -> Answer:
        raise NotImplementedError


@dataclass
class HttpTarget(Target):
    """A target reached by one HTTP POST per event."""

    opener: Callable[..., Any] = field(default=urllib.request.urlopen, repr=False)

    def _post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int | None, Mapping[str, str], bytes, str]:
        """POST and read the answer: (status, headers, body, error). Never raises."""
        request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - http(s) only (config)
        request.add_header("User-Agent", USER_AGENT)
        for key, value in headers.items():
            request.add_header(key, value)
        host = urllib.parse.urlsplit(url).hostname or ""
        try:
            if is_loopback_host(host):  # a local receiver is never reached through a proxy
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                response = opener.open(request, timeout=self.config.timeout)
            else:
                response = self.opener(request, timeout=self.config.timeout)
            with response:
                return int(response.status), dict(response.headers), response.read(65536), ""
        except urllib.error.HTTPError as exc:
            with exc:
                data = exc.read(65536) if exc.fp is not None else b""
            return int(exc.code), dict(exc.headers or {}), data, ""
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return None, {}, b"", self.scrub(f"no answer: {reason}")

    def _answer(
        self,
        status: int | None,
        headers: Mapping[str, str],
        body: bytes,
        error: str,
        what: str,
    ) -> Answer:
        """The usual reading of an HTTP answer."""
        if status is None:
            return Answer(False, None, error)
        text = self.scrub(body.decode("utf-8", "replace").strip().replace("\n", " ")[:300])
        if 200 <= status < 300:
            return Answer(True, status, f"{status} {text}".strip())
        retry_after = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
        hint = ""
        if status in (401, 403):
            hint = f": {what} refused the credentials; check the token"
        detail = f"{status}{hint} {text}".strip()
        return Answer(False, status, detail, retry_after, permanent=status in PERMANENT)

    def _post_json(
        self, url: str, message: Mapping[str, Any], headers: Mapping[str, str], what: str
    ) -> tuple[int, dict[str, Any]] | Answer:
        """POST ``message`` as JSON to an API that answers a JSON object (Telegram, WhatsApp
        Cloud): the status and that object, or the :class:`Answer` when there was no answer or
        the body is not a JSON object (read as any HTTP answer)."""
        status, answer_headers, body, error = self._post(url, json.dumps(message).encode(), headers)
        if status is None:
            return Answer(False, None, error)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self._answer(status, answer_headers, body, error, what=what)
        return status, data

    @staticmethod
    def _id_headers(event: Mapping[str, Any]) -> dict[str, str]:
        event_id = str(event.get("id") or "")
        return {
            "Idempotency-Key": event_id,
            "X-Leadtui-Event-Id": event_id,
            "X-Leadtui-Event": str(event.get("type") or ""),
        }


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


class NtfyTarget(HttpTarget):
    """ntfy: POST the text to the topic URL; title, priority, tags and the click action (the
    lead's ``tel:`` link, WhatsApp as a button) as headers, per ntfy's publishing docs."""

    def deliver(self, event: Mapping[str, Any]) -> Answer:
        lead = event.get("lead") or {}
        tel, whatsapp = _phone_links(lead)
        headers = {
            **self._id_headers(event),
            "Content-Type": "text/plain; charset=utf-8",
            "Title": _header(title_of(event)),
            "Priority": self.config.priority,
        }
        if self.config.tags:
            headers["Tags"] = ",".join(self.config.tags)
        if tel:
            headers["Click"] = tel
        if whatsapp:
            headers["Actions"] = f"view, WhatsApp, {whatsapp}; view, Call, {tel}"
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token.reveal()}"
        answer = self._post(self.config.url, text_of(event).encode(), headers)
        return self._answer(*answer, what="ntfy")


class TelegramTarget(HttpTarget):
    """Telegram Bot API: ``sendMessage`` to a chat, as plain text (no parse_mode: lead text
    is data), with a WhatsApp button. Honours ``parameters.retry_after`` on 429."""

    def describe(self) -> str:
        parts = urllib.parse.urlsplit(self.config.url)
        return f"telegram chat {self.config.chat_id} via {parts.scheme}://{parts.hostname or '?'}"

    def deliver(self, event: Mapping[str, Any]) -> Answer:
        lead = event.get("lead") or {}
        _tel, whatsapp = _phone_links(lead)
        message: dict[str, Any] = {
            "chat_id": self.config.chat_id,
            "text": f"{title_of(event)}\n\n{text_of(event)}"[:4096],
            "link_preview_options": {"is_disabled": True},
        }
        if whatsapp:
            message["reply_markup"] = {"inline_keyboard": [[{"text": "WhatsApp", "url": whatsapp}]]}
        url = f"{self.config.url.rstrip('/')}/bot{self.config.token.reveal()}/sendMessage"
        headers = {**self._id_headers(event), "Content-Type": "application/json"}
        posted = self._post_json(url, message, headers, what="Telegram")
        if isinstance(posted, Answer):
            return posted
        status, data = posted
        description = self.scrub(str(data.get("description") or ""))[:300]
        if status == 200 and data.get("ok") is True:
            result = data.get("result") or {}
            return Answer(True, status, f"200 message {result.get('message_id', '?')} sent")
        params = data.get("parameters") or {}
        retry_after = _seconds(params.get("retry_after")) if isinstance(params, dict) else None
        code = int(data.get("error_code") or status)
        if code == 401:
            description = "Unauthorized: Telegram refused the bot token; check token"
        return Answer(
            False,
            status,
            f"{code} {description}".strip(),
            retry_after,
            permanent=code in PERMANENT,
        )


class WebhookTarget(HttpTarget):
    """A generic webhook: the event as JSON, signed like Stripe's when a secret is set:
    ``X-Leadtui-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``."""

    def deliver(self, event: Mapping[str, Any]) -> Answer:
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {**self._id_headers(event), "Content-Type": "application/json"}
        if self.config.secret:
            headers["X-Leadtui-Signature"] = sign(self.config.secret.reveal(), body)
        return self._answer(*self._post(self.config.url, body, headers), what="the webhook")


def sign(secret: str, body: bytes, now: float | None = None) -> str:
    """The ``X-Leadtui-Signature`` value of ``body``."""
    t = int(time.time() if now is None else now)
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, tolerance: float = 300.0) -> bool:
    """Check a ``X-Leadtui-Signature`` as a receiver would (the README shows this)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance:
        return False
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts.get("v1", ""))


@dataclass
class EmailTarget(Target):
    """An email to ``to`` through the ``[smtp]`` settings (the mailer the R key uses): the
    notification's title as the subject, its text as the body, the event id as a header."""

    settings: Settings = field(default_factory=Settings, repr=False)

    def describe(self) -> str:
        where = self.settings.smtp_host or "no [smtp] host"
        return f"email to {len(self.config.to)} address(es) via {where}"

    def secrets(self) -> tuple[str, ...]:
        password = self.settings.smtp_login[1].reveal()
        return (*self.config.secrets(), *((password,) if password else ()))

    def deliver(self, event: Mapping[str, Any]) -> Answer:
        lead = event.get("lead") or {}
        tel, whatsapp = _phone_links(lead)
        links = "\n".join(
            f"{label}: {link}" for label, link in (("Call", tel), ("WhatsApp", whatsapp)) if link
        )
        text = text_of(event) + (f"\n\n{links}" if links else "")
        headers = tuple(self._id_headers(event).items())
        sent = []
        for address in self.config.to:  # one message each: a refused address spoils no other
            reply = mailer.Reply(address, title_of(event), text, headers=headers)
            try:
                sent.append(mailer.send(self.settings, reply, timeout=self.config.timeout))
            except mailer.MailError as exc:
                detail = self.scrub(str(exc))
                refused = "refused the address" in detail or "not an email address" in detail
                return Answer(False, None, detail, permanent=refused)
        return Answer(True, 250, f"250 mailed to {len(sent)} address(es)")

    @staticmethod
    def _id_headers(event: Mapping[str, Any]) -> dict[str, str]:
        return HttpTarget._id_headers(event)


_CHILD_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR")


@dataclass
class CommandTarget(Target):
    """A local program: the event as JSON on its stdin; exit status 0 is delivered, anything
    else is retried like a 5xx. One that runs past ``timeout`` is killed with its whole
    process group (a shell script's children too). Its environment is a short list
    (``PATH``, ``HOME``, ``LANG``, …, plus ``LEADTUI_EVENT_ID`` and ``LEADTUI_EVENT``), never
    leadtui's own secrets."""

    def describe(self) -> str:
        return f"command {os.path.basename(self.config.command[0])}"

    def deliver(self, event: Mapping[str, Any]) -> Answer:
        program = os.path.basename(self.config.command[0])
        body = json.dumps(event, ensure_ascii=False).encode()
        env = {k: os.environ[k] for k in _CHILD_ENV if k in os.environ}
        env.update(
            LEADTUI_EVENT_ID=str(event.get("id") or ""), LEADTUI_EVENT=str(event.get("type") or "")
        )
        try:
            child = subprocess.Popen(  # noqa: S603 - the user's own configured program, no shell
                self.config.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group, killed whole on a timeout
            )
        except OSError as exc:
            return Answer(False, None, f"cannot run {program}: {exc.strerror or exc}")
        try:
            out, err = child.communicate(body, timeout=self.config.timeout)
        except subprocess.TimeoutExpired:
            _kill(child)
            return Answer(
                False, None, f"{program} ran past {self.config.timeout:.0f} s and was stopped"
            )
        said = self.scrub(_last_line(err) or _last_line(out))
        if child.returncode == 0:
            return Answer(True, 0, f"exit 0 {said}".strip())
        return Answer(
            False, None, f"{program} failed with exit status {child.returncode}: {said}".strip()
        )


def _kill(child: subprocess.Popen[bytes]) -> None:
    """Kill a command and everything it started, then reap it."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):  # one that survives SIGKILL
        child.communicate(timeout=5)


def _last_line(data: bytes | None) -> str:
    lines = [line.strip() for line in (data or b"").decode("utf-8", "replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")[:300]


TARGET_TYPES: dict[str, type[Target]] = {
    "ntfy": NtfyTarget,
    "telegram": TelegramTarget,
    "webhook": WebhookTarget,
    "command": CommandTarget,
}


def make_target(config: NotifyTarget, settings: Settings | None = None) -> Target:
    """The target for one table; an email target needs the ``[smtp]`` ``settings``."""
    if config.type == "email":
        return EmailTarget(config, settings or Settings())
    return TARGET_TYPES[config.type](config)
