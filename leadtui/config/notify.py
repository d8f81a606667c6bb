"""``[[notify]]``, ``[[webhook]]`` and ``[autoreply]``: what leaves leadtui, as the config says.

Each table becomes a frozen :class:`NotifyTarget` (or the one :class:`Autoreply`); a table
that cannot be used is a :class:`~leadtui.config.values.ConfigError` naming the table and key.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadtui.config.values import (
    ConfigError,
    Secret,
    _to_bool,
    _to_float,
    _to_int,
    _to_list,
    _to_str,
)
from leadtui.templates import check as check_template

# --------------------------------------------------------------------------- [[notify]]

NOTIFY_TYPES = ("ntfy", "telegram", "webhook", "email", "command")
LEAD_EVENTS = ("lead.created", "lead.replied", "lead.updated", "lead.status_changed")
# About the service, not one lead: sent by the outbox's watcher ([alerts] sets when).
ALERT_EVENTS = ("source.failing", "review.growing", "push.watchdog", "digest")
# About one lead, when its time comes: a follow-up due, a first-contact limit passed.
DUE_EVENTS = ("reminder.due", "sla.breached")
NOTIFY_EVENTS = LEAD_EVENTS + ALERT_EVENTS + DUE_EVENTS
WEBHOOK_EVENTS = LEAD_EVENTS  # [[webhook]]: every lead event unless it names fewer
NTFY_PRIORITIES = ("min", "low", "default", "high", "max", "urgent", "1", "2", "3", "4", "5")
QUIET_CHOICES = ("queue", "drop")  # in quiet hours: send when they end, or never
_NOTIFY_KEYS = frozenset(
    {
        "name",
        "type",
        "url",
        "server",
        "topic",
        "token",
        "token_env",
        "chat_id",
        "secret",
        "secret_env",
        "events",
        "lead_types",
        "sources",
        "priority",
        "tags",
        "timeout",
        "to",
        "command",
        "min_order_value",
        "words",
        "owners",
        "quiet_hours",
        "quiet",
    }
)


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    """One ``[[notify]]`` (or ``[[webhook]]``) table: where a message goes, and which events
    and leads it wants.

    ``url`` is the ntfy topic URL (or ``server`` + ``topic``), the Telegram Bot API base
    (``https://api.telegram.org`` unless a test points it elsewhere) or the webhook's URL.
    ``token`` is ntfy's access token or the Telegram bot token; ``secret`` signs webhook
    bodies. Both are :class:`Secret`; ``token_env``/``secret_env`` read them from the
    environment instead of the file. An ``email`` target sends to ``to`` through ``[smtp]``;
    a ``command`` target runs ``command`` with the event as JSON on stdin.

    The filters (``lead_types``, ``sources``, ``min_order_value``, ``words``, ``owners``) are
    all required when set; ``quiet_hours`` (minutes after local midnight, start and end, in
    ``ui.timezone``) holds messages until they end (``quiet = "queue"``) or drops them.
    """

    name: str
    type: str
    url: str = ""
    token: Secret = Secret("")
    chat_id: str = ""
    secret: Secret = Secret("")
    events: frozenset[str] = frozenset({"lead.created"})
    lead_types: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    priority: str = "high"
    tags: tuple[str, ...] = ("incoming_envelope",)
    timeout: float = 10.0
    to: tuple[str, ...] = ()  # email: the addresses
    command: tuple[str, ...] = ()  # command: the program and its arguments (no shell)
    min_order_value: float = 0.0  # 0: any; else the order value's upper bound must reach it
    words: tuple[str, ...] = ()  # any of these in the product or city (lower case)
    owners: frozenset[str] = frozenset()
    quiet_hours: tuple[int, int] | None = None
    quiet: str = "queue"
    section: str = "notify"  # the table it came from: notify or webhook

    def secrets(self) -> tuple[str, ...]:
        """The secret values, for scrubbing error text (never for showing)."""
        return tuple(v for v in (self.token.reveal(), self.secret.reveal()) if v)


def _notify_secret(
    table: Mapping[str, Any], key: str, env: Mapping[str, str], where: str
) -> Secret:
    name = table.get(f"{key}_env")
    if name is not None:
        value = env.get(_to_str(name), "")
        if not value:
            raise ConfigError(f"{where}: {key}_env names {name}, which is not set")
        return Secret(value)
    return Secret(_to_str(table.get(key, "")))


def _quiet_hours(value: Any, where: str, key: str = "quiet_hours") -> tuple[int, int] | None:
    """``"22:00-07:30"`` → minutes after midnight (1320, 450); empty: none."""
    text = _to_str(value or "").strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text)
    if not match:
        raise ConfigError(f'{where}: {key} must look like "22:00-07:30"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
        raise ConfigError(f'{where}: {key} must be two different times like "22:00-07:30"')
    return h1 * 60 + m1, h2 * 60 + m2


def _to_clock(v: Any) -> str:
    """A local time of day, ``"09:00"`` (``[alerts] digest_at``)."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", _to_str(v).strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError('expected a time of day like "09:00"')
    return f"{int(match[1]):02d}:{match[2]}"


def _target_specifics(kind: str, table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """What an email or command target needs besides the shared keys."""
    if kind == "email":
        to = tuple(a.strip() for a in _to_str_list(table.get("to", []), where, "to") if a.strip())
        if not to or any("@" not in a for a in to):
            raise ConfigError(f'{where}: set to = ["you@example.com"] (the addresses to write to)')
        return {"to": to}
    if kind == "command":
        raw = table.get("command", [])
        argv = tuple(
            shlex.split(raw) if isinstance(raw, str) else _to_str_list(raw, where, "command")
        )
        if not argv:
            raise ConfigError(f'{where}: set command = ["/path/to/program", "arg"]')
        return {"command": argv}
    return {}


def _to_str_list(value: Any, where: str, key: str) -> list[str]:
    """A list of strings as written (not lower-cased: addresses and arguments)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return list(value)


def _parse_notify(
    value: Any,
    env: Mapping[str, str],
    path: Path,
    section: str = "notify",
    taken: Iterable[str] = (),
) -> tuple[NotifyTarget, ...]:
    """``[[notify]]`` tables, or ``[[webhook]]`` ones (``section``): type webhook, and every
    lead event by default. Names are unique across both (``taken``)."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{path}: {section} must be [[{section}]] tables")
    targets: list[NotifyTarget] = []
    names = set(taken)
    for index, table in enumerate(value, 1):
        where = f"{path}: [[{section}]] number {index}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        if unknown := sorted(set(table) - _NOTIFY_KEYS):
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
        default_kind = "webhook" if section == "webhook" else ""
        kind = _to_str(table.get("type", default_kind)).lower()
        if section == "webhook" and kind != "webhook":
            raise ConfigError(f"{where}: a [[webhook]] is a webhook; use [[notify]] for {kind}")
        if kind not in NOTIFY_TYPES:
            raise ConfigError(f"{where}: type must be one of {', '.join(NOTIFY_TYPES)}")
        name = _to_str(table.get("name") or kind)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise ConfigError(f"{where}: name must be letters, digits, '.', '_' or '-'")
        if name in names:
            raise ConfigError(f"{where}: another target is called {name!r}; give each a name")
        names.add(name)
        where = f"{path}: [[{section}]] {name!r}"

        def lst(
            key: str, default: list[str], where: str = where, table: Mapping[str, Any] = table
        ) -> tuple[str, ...]:
            try:
                return _to_list(table.get(key, default))
            except ValueError:
                raise ConfigError(f"{where}: {key} must be a list of names") from None

        url = _to_str(table.get("url", "")).strip()
        if kind == "ntfy" and not url:
            topic = _to_str(table.get("topic", "")).strip().strip("/")
            if not topic:
                raise ConfigError(f"{where}: set url (the topic URL) or topic")
            url = _to_str(table.get("server", "https://ntfy.sh")).rstrip("/") + "/" + topic
        if kind == "telegram":
            url = url or "https://api.telegram.org"
            if not _to_str(table.get("chat_id", "")):
                raise ConfigError(f"{where}: set chat_id (the chat the bot writes to)")
        if kind in ("ntfy", "telegram", "webhook") and not re.match(r"https?://[^/\s]+", url):
            raise ConfigError(f"{where}: url must be an http:// or https:// URL")
        token = _notify_secret(table, "token", env, where)
        if kind == "telegram" and not token:
            raise ConfigError(f"{where}: set token (the bot token from @BotFather) or token_env")
        allowed = WEBHOOK_EVENTS if section == "webhook" else NOTIFY_EVENTS
        default_events = list(allowed) if section == "webhook" else ["lead.created"]
        events = frozenset(lst("events", default_events))
        if bad := sorted(events - set(allowed)):
            raise ConfigError(f"{where}: unknown event {bad[0]!r}; events are {', '.join(allowed)}")
        priority = _to_str(table.get("priority", "high")).lower()
        if priority not in NTFY_PRIORITIES:
            raise ConfigError(f"{where}: priority must be one of {', '.join(NTFY_PRIORITIES)}")
        try:
            timeout = _to_float(table.get("timeout", 10.0))
            min_value = _to_float(table.get("min_order_value", 0))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: timeout and min_order_value must be numbers") from None
        quiet = _to_str(table.get("quiet", "queue")).lower()
        if quiet not in QUIET_CHOICES:
            raise ConfigError(f"{where}: quiet must be queue (send when quiet hours end) or drop")
        targets.append(
            NotifyTarget(
                name=name,
                type=kind,
                url=url,
                token=token,
                chat_id=_to_str(table.get("chat_id", "")),
                secret=_notify_secret(table, "secret", env, where),
                events=events,
                lead_types=frozenset(t.upper() for t in lst("lead_types", [])),
                sources=frozenset(lst("sources", [])),
                priority=priority,
                tags=lst("tags", ["incoming_envelope"]),
                timeout=max(1.0, min(timeout, 60.0 if kind != "command" else 600.0)),
                min_order_value=max(0.0, min_value),
                words=lst("words", []),
                owners=frozenset(lst("owners", [])),
                quiet_hours=_quiet_hours(table.get("quiet_hours"), where),
                quiet=quiet,
                section=section,
                **_target_specifics(kind, table, where),
            )
        )
    return tuple(targets)


# --------------------------------------------------------------------------- [autoreply]

WHATSAPP_GRAPH_URL = "https://graph.facebook.com/v21.0"
_AUTOREPLY_KEYS = frozenset(
    {
        "enabled",
        "email",
        "email_template",
        "whatsapp_phone_id",
        "whatsapp_token",
        "whatsapp_token_env",
        "whatsapp_template",
        "whatsapp_language",
        "whatsapp_params",
        "whatsapp_url",
        "working_hours",
        "daily_cap",
        "once_per_buyer_hours",
        "max_age_hours",
    }
)


@dataclass(frozen=True, slots=True)
class Autoreply:
    """``[autoreply]``: an automatic acknowledgement to each new buyer (off by default).

    By email (a ``[templates.NAME]`` through ``[smtp]``) and/or a WhatsApp Cloud API template
    message (business-initiated WhatsApp needs a template Meta approved: ``whatsapp_template``
    names it, ``whatsapp_params`` fills its body's ``{{1}}``, ``{{2}}``… from reply-template
    placeholders such as ``"{first_name}"``). Only in ``working_hours`` (queued otherwise),
    at most once per buyer per ``once_per_buyer_hours``, never to a buyer who wrote STOP, at
    most ``daily_cap`` a day, and not to a lead received more than ``max_age_hours`` ago (a
    first run reading a week of mail must not greet last week's buyers).
    """

    enabled: bool = False
    email: bool = False
    email_template: str = "default"
    whatsapp_phone_id: str = ""
    whatsapp_token: Secret = Secret("")
    whatsapp_template: str = ""
    whatsapp_language: str = "en"
    whatsapp_params: tuple[str, ...] = ()
    whatsapp_url: str = WHATSAPP_GRAPH_URL
    working_hours: tuple[int, int] | None = (9 * 60 + 30, 19 * 60)
    daily_cap: int = 100
    once_per_buyer_hours: float = 48.0
    max_age_hours: float = 24.0

    @property
    def whatsapp(self) -> bool:
        return bool(self.whatsapp_phone_id)


def _parse_autoreply(
    table: Any, env: Mapping[str, str], path: Path, known_templates: Iterable[str]
) -> Autoreply:
    if table is None:
        return Autoreply()
    where = f"{path}: [autoreply]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    if unknown := sorted(set(table) - _AUTOREPLY_KEYS):
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    try:
        enabled = _to_bool(table.get("enabled", False))
        email = _to_bool(table.get("email", False))
        cap = _to_int(table.get("daily_cap", 100))
        once = _to_float(table.get("once_per_buyer_hours", 48))
        max_age = _to_float(table.get("max_age_hours", 24))
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: enabled and email are true or false; daily_cap, once_per_buyer_hours "
            "and max_age_hours are numbers"
        ) from None
    template = _to_str(table.get("email_template", "default"))
    if email and template not in set(known_templates):
        raise ConfigError(f"{where}: email_template {template!r} is not a [templates.NAME]")
    phone_id = _to_str(table.get("whatsapp_phone_id", "")).strip()
    token = _notify_secret(table, "whatsapp_token", env, where)
    wa_template = _to_str(table.get("whatsapp_template", "")).strip()
    if phone_id and not (token and wa_template):
        raise ConfigError(
            f"{where}: WhatsApp needs whatsapp_token (or whatsapp_token_env) and "
            "whatsapp_template (the name of a template Meta approved)"
        )
    params = tuple(_to_str_list(table.get("whatsapp_params", []), where, "whatsapp_params"))
    for param in params:
        try:
            check_template(param)
        except ValueError as exc:
            raise ConfigError(f"{where}: whatsapp_params: {exc}") from None
    url = _to_str(table.get("whatsapp_url", WHATSAPP_GRAPH_URL)).rstrip("/")
    if not re.match(r"https?://[^/\s]+", url):
        raise ConfigError(f"{where}: whatsapp_url must be an http:// or https:// URL")
    if enabled and not (email or phone_id):
        raise ConfigError(
            f"{where}: set email = true and/or whatsapp_phone_id to acknowledge buyers"
        )
    return Autoreply(
        enabled=enabled,
        email=email,
        email_template=template,
        whatsapp_phone_id=phone_id,
        whatsapp_token=token,
        whatsapp_template=wa_template,
        whatsapp_language=_to_str(table.get("whatsapp_language", "en")).strip() or "en",
        whatsapp_params=params,
        whatsapp_url=url,
        working_hours=_quiet_hours(
            table.get("working_hours", "09:30-19:00"), where, "working_hours"
        ),
        daily_cap=max(0, cap),
        once_per_buyer_hours=max(0.0, once),
        max_age_hours=max(0.0, max_age),
    )
