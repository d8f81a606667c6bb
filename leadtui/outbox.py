"""The outbox sender and its targets: ntfy, Telegram and a signed webhook.

The capture path writes an outbox row per event and target in the transaction that commits the
lead (``_store/outbox.py``). This module delivers them: :class:`Sender` is a capture source (the
registry starts it under the capture lease when a ``[[notify]]`` target is configured), so a
team gets each message once, not once per TUI.

Delivery is at least once. A row is marked sent only after the receiver answered 2xx, so a
sender killed mid-delivery leaves it pending and the next holder of the lease sends it again;
every request carries the event's stable id (``Idempotency-Key`` and ``X-Leadtui-Event-Id``
headers, and ``id`` in a webhook's body) for the receiver to dedupe on. A failure is retried
with exponential backoff and jitter (or after the receiver's ``Retry-After``/``retry_after``)
for 24 hours; then the row is a dead letter with its last error (``leadtui outbox list``,
``doctor``). A receiver that refuses the message itself (400, 413, 422) makes it a dead
letter at once: sending it again cannot help.

Secrets (bot tokens, ntfy tokens, webhook secrets) never reach a log line, an error, the
outbox or ``doctor``: every text that leaves a target goes through :meth:`HttpTarget.scrub`,
and a target is described by its scheme and host only (a webhook URL may carry a token too).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.header import Header
from typing import Any

from leadtui import __version__
from leadtui.capture import HealthCallback, Pipeline, Source, SourceFactory
from leadtui.config import Check, NotifyTarget, Settings, is_loopback_host
from leadtui.store import Health, OutboxItem, OutboxRoute, Store, StoreError

log = logging.getLogger(__name__)

GIVE_UP_AFTER = 24 * 3600.0  # then a dead letter
BASE_DELAY = 5.0  # the first retry, before jitter
MAX_DELAY = 3600.0  # backoff stops growing here
POLL_SECONDS = 0.2  # how often the sender looks for due rows (the 1 s budget)
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


def route_of(target: NotifyTarget) -> OutboxRoute:
    return OutboxRoute(target.name, target.events, target.lead_types, target.sources)


def routes(settings: Settings) -> list[OutboxRoute]:
    """The outbox routes of these settings: which target wants which events."""
    return [route_of(t) for t in settings.notify]


# --------------------------------------------------------------------------- the message


def _phone_links(lead: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The lead's ``tel:`` and ``wa.me`` links (None without a phone)."""
    phone = str(lead.get("phone") or "")
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) < 6:
        return None, None
    return f"tel:+{digits}" if phone.startswith("+") else f"tel:{digits}", f"https://wa.me/{digits}"


def title_of(event: Mapping[str, Any]) -> str:
    lead = event.get("lead") or {}
    who = lead.get("name") or lead.get("company") or lead.get("phone") or "a buyer"
    product = lead.get("product") or "no product named"
    if event.get("type") == "lead.replied":
        return f"{who} wrote again: {product}"
    return f"New lead: {who} - {product}"


def text_of(event: Mapping[str, Any]) -> str:
    """The notification's text: plain text (lead text is data, never markup)."""
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
class HttpTarget:
    """A target reached by one HTTP POST per event."""

    config: NotifyTarget
    opener: Callable[..., Any] = field(default=urllib.request.urlopen, repr=False)

    @property
    def name(self) -> str:
        return self.config.name

    def describe(self) -> str:
        """Where it goes, without anything secret: the type, scheme and host."""
        parts = urllib.parse.urlsplit(self.config.url)
        return f"{self.config.type} at {parts.scheme}://{parts.hostname or '?'}"

    def scrub(self, text: str) -> str:
        for secret in self.config.secrets():
            text = text.replace(secret, "********")
            text = text.replace(urllib.parse.quote(secret, safe=""), "********")
        return text

    def deliver(self, event: Mapping[str, Any]) -> Answer:
        raise NotImplementedError

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
        status, answer_headers, body, error = self._post(url, json.dumps(message).encode(), headers)
        if status is None:
            return Answer(False, None, error)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self._answer(status, answer_headers, body, error, what="Telegram")
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


TARGET_TYPES: dict[str, type[HttpTarget]] = {
    "ntfy": NtfyTarget,
    "telegram": TelegramTarget,
    "webhook": WebhookTarget,
}


def make_target(config: NotifyTarget) -> HttpTarget:
    return TARGET_TYPES[config.type](config)


# --------------------------------------------------------------------------- the sender


def next_attempt(
    item: OutboxItem,
    answer: Answer,
    now: float,
    *,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    give_up_after: float = GIVE_UP_AFTER,
    rng: random.Random | None = None,
) -> float | None:
    """When to try a failed row again (None: never, it is a dead letter).

    Exponential backoff with jitter (half to all of ``base * 2**attempts``, at most ``cap``),
    never sooner than the receiver's ``Retry-After``, and nothing after ``give_up_after``
    seconds from the row's creation.
    """
    if answer.permanent:
        return None
    delay = min(cap, base * 2 ** min(item.attempts, 30)) * (rng or random).uniform(0.5, 1.0)
    if answer.retry_after is not None:
        delay = max(delay, min(answer.retry_after, cap))
    at = now + delay
    return None if at > item.created_ts + give_up_after else at


@dataclass
class Sender:
    """Delivers due outbox rows, one at a time, until stopped. A capture source."""

    store: Store
    targets: Sequence[HttpTarget]
    report: HealthCallback
    base_delay: float = BASE_DELAY
    max_delay: float = MAX_DELAY
    give_up_after: float = GIVE_UP_AFTER
    poll: float = POLL_SECONDS
    name: str = "notify"
    _by_name: dict[str, HttpTarget] = field(default_factory=dict)
    _last_error: str | None = None
    _last_success: float | None = None

    def __post_init__(self) -> None:
        self._by_name = {t.name: t for t in self.targets}

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set (returns within ``poll`` + one delivery's timeout)."""
        try:
            woken = self.store.outbox_due_now()  # a restart or new settings: retry at once
            if woken:
                log.info("notify: %d waiting notification(s) are due now", woken)
        except StoreError as exc:
            log.warning("notify: %s", exc)
        self._health()
        while not stop.is_set():
            try:
                sent = self.deliver_due(stop)
            except StoreError as exc:
                log.warning("notify: %s", exc)
                sent = 0
                stop.wait(1.0)
            if not sent:
                stop.wait(self.poll)

    def deliver_due(self, stop: threading.Event | None = None, limit: int = 20) -> int:
        """One pass: deliver the rows due now. Returns how many were attempted."""
        items = self.store.outbox_due(time.time(), limit)
        for item in items:
            if stop is not None and stop.is_set():
                break
            self.deliver(item)
        if items:
            self._health()
        return len(items)

    def deliver(self, item: OutboxItem) -> Answer:
        target = self._by_name.get(item.target)
        if target is None:
            answer = Answer(False, None, f"no [[notify]] target is called {item.target!r} now")
        else:
            try:
                answer = target.deliver(item.payload)
            except Exception as exc:  # a bug must not stop the others; the row waits
                log.exception("notify: delivering outbox row %d to %s raised", item.id, item.target)
                detail = f"internal error: {type(exc).__name__}"
                answer = Answer(False, None, target.scrub(detail))
        now = time.time()
        if answer.ok:
            self.store.outbox_sent(item.id)
            self._last_success = now
            self._last_error = None
            log.info(
                "notify: %s %s for lead %s to %s: %s",
                item.kind,
                item.event_id,
                item.lead_id,
                item.target,
                answer.detail,
            )
            return answer
        at = next_attempt(
            item, answer, now, base=self.base_delay, cap=self.max_delay,
            give_up_after=self.give_up_after,
        )  # fmt: skip
        self.store.outbox_failed(item.id, answer.detail, at)
        self._last_error = f"{item.target}: {answer.detail}"
        if at is None:
            log.warning(
                "notify: gave up on %s %s to %s (a dead letter): %s",
                item.kind,
                item.event_id,
                item.target,
                answer.detail,
            )
        else:
            log.warning(
                "notify: %s %s to %s failed (%s); retrying in %.0f s",
                item.kind,
                item.event_id,
                item.target,
                answer.detail,
                at - now,
            )
        return answer

    def _health(self) -> None:
        try:
            counts = {c.target: c for c in self.store.outbox_counts()}
        except StoreError:
            return
        waiting = sum(counts[t].pending for t in self._by_name if t in counts)
        dead = sum(c.dead for c in counts.values())
        detail = f"{len(self._by_name)} target(s), {waiting} waiting, {dead} dead letter(s)"
        self.report(
            Health(
                source="notify",
                state="error" if self._last_error else "ok",
                detail=detail,
                last_success_ts=self._last_success,
                last_error=self._last_error,
            )
        )


def sender_factory(settings: Settings) -> SourceFactory:
    """The capture service's factory for the sender (the registry calls it)."""
    targets = [make_target(t) for t in settings.notify]

    def make(store: Store, pipeline: Pipeline, report: HealthCallback) -> Source:
        del pipeline
        return Sender(store, targets, report)

    return make


def send_test(config: NotifyTarget) -> Answer:
    """Send :func:`sample_event` to one target now (``leadtui notify test``), not through the
    outbox: the answer is printed, nothing is kept."""
    return make_target(config).deliver(sample_event())


def check(settings: Settings, store: Store | None) -> list[Check]:
    """``doctor``'s lines: each target (no secret), and its waiting and dead rows."""
    if not settings.notify:
        return [Check("notify", None, "off: add a [[notify]] table to reach you away from here")]
    counts = {}
    if store is not None:
        try:
            counts = {c.target: c for c in store.outbox_counts()}
        except StoreError as exc:
            return [Check("notify", False, str(exc))]
    lines = []
    for config in settings.notify:
        target = make_target(config)
        c = counts.get(config.name)
        events = ", ".join(sorted(config.events))
        line = f"{config.name}: {target.describe()}, for {events}"
        if c is None:
            lines.append(Check("notify", True, f"{line}; nothing sent yet"))
            continue
        state = f"{c.sent} sent, {c.pending} waiting, {c.dead} dead letter(s)"
        fix = "see leadtui outbox list --state dead; then retry ID or drop ID" if c.dead else ""
        lines.append(Check("notify", not c.dead, f"{line}; {state}", fix))
    return lines
