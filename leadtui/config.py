"""Settings: a TOML file, overridden by ``LEADTUI_*`` environment names, overridden by flags.

Every setting is declared once in ``FIELDS`` with its TOML key, its environment name, its
type and its default. Secrets are wrapped in :class:`Secret`, whose ``repr`` and ``str`` never
show the value, so a settings object can be logged or shown in an error safely.

The file lives in the user config directory (``leadtui paths`` and ``leadtui doctor`` show
where), or wherever ``--config`` / ``LEADTUI_CONFIG`` points.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import ipaddress
import os
import re
import secrets as _secrets
import shlex
import ssl
import stat
import time
import tomllib
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from leadtui.templates import DEFAULT, Template, from_config
from leadtui.templates import check as check_template

APP_NAME = "leadtui"


class ConfigError(Exception):
    """A setting is missing or malformed. The message says which and how to fix it."""


@dataclass(frozen=True)
class Check:
    """One line of ``leadtui doctor``: what was checked, whether it passed, how to fix it.

    ``ok`` is None for information, neither pass nor fail. Every source's check returns
    these; ``detail`` and ``fix`` never hold a secret.
    """

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or tracebacks."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __bool__(self) -> bool:
        return bool(self._value)


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


# --------------------------------------------------------------------------- paths


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def default_config_path() -> Path:
    return config_dir() / "config.toml"


def default_db_url() -> str:
    return str(data_dir() / "leads.db")


def log_path() -> Path:
    return state_dir() / "leadtui.log"


# --------------------------------------------------------------------------- API keys


SCOPES = ("ingest", "read")  # what an API key may do: add leads, read the lead feed
LEGACY_SCOPES = frozenset(SCOPES)  # a key written before scopes existed keeps what it could do
NEW_KEY_SCOPES = frozenset({"ingest"})  # ``leadtui keys add NAME`` without --read


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A named HTTP API key. ``digest`` is the SHA-256 of the key; the key itself is not kept.

    ``scopes`` says what it may do: ``ingest`` (``POST /api/leads``) and ``read`` (``GET
    /api/leads``, every buyer's details). A key from before scopes has both.
    """

    name: str
    digest: str
    scopes: frozenset[str] = LEGACY_SCOPES

    def matches(self, presented: str) -> bool:
        candidate = hash_api_key(presented)
        return hmac.compare_digest(candidate, self.digest)


def hash_api_key(key: str) -> str:
    """The stored form of a key. Any header value hashes (a byte that is not UTF-8 too)."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def new_api_key() -> str:
    return "ltk_" + _secrets.token_urlsafe(24)


def parse_scopes(text: str | Iterable[str], where: str) -> frozenset[str]:
    """Scopes from ``ingest+read`` or a list; a ConfigError naming ``where`` if unknown."""
    words = text.replace(",", "+").split("+") if isinstance(text, str) else list(text)
    scopes = frozenset(str(w).strip().lower() for w in words if str(w).strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise ConfigError(
            f"{where}: unknown API key scope {', '.join(unknown) or '(none)'}; "
            f"use {' and/or '.join(SCOPES)}"
        )
    return scopes


_ENV_KEY_NAME = re.compile(r"^\s*([^\[\]:]+?)\s*(?:\[([^\]]*)\])?\s*$")


def _parse_api_keys_env(text: str) -> tuple[ApiKey, ...]:
    """``name:key`` (ingest and read, as before scopes) or ``name[ingest]:key``,
    ``name[read]:key``, ``name[ingest+read]:key``, comma-separated."""
    keys: list[ApiKey] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        label, sep, key = item.partition(":")
        match = _ENV_KEY_NAME.match(label)
        if not sep or match is None or not key.strip():
            raise ConfigError(
                "LEADTUI_API_KEYS must be comma-separated name:key pairs, e.g. 'website:abc123' "
                "(or 'website[ingest]:abc123' to limit what the key may do)"
            )
        name, scoped = match.group(1), match.group(2)
        scopes = (
            LEGACY_SCOPES
            if scoped is None
            else parse_scopes(scoped, f"LEADTUI_API_KEYS entry {name!r}")
        )
        keys.append(ApiKey(name, hash_api_key(key.strip()), scopes))
    return tuple(keys)


def _parse_api_keys_file(value: Any) -> tuple[ApiKey, ...]:
    if not isinstance(value, Mapping):
        raise ConfigError('[http.api_keys] must be a table of name = "sha256:<hex>" entries')
    keys = []
    for name, entry in value.items():
        scopes = LEGACY_SCOPES
        digest = entry
        if isinstance(entry, Mapping):  # name = { hash = "sha256:…", scopes = ["ingest"] }
            digest = entry.get("hash")
            raw_scopes = entry.get("scopes", list(SCOPES))
            if not isinstance(raw_scopes, list):
                raise ConfigError(
                    f"api key {name!r} in the config file: scopes must be a list such as "
                    '["ingest"] or ["ingest", "read"]'
                )
            scopes = parse_scopes(raw_scopes, f"api key {name!r} in the config file")
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            raise ConfigError(
                f"api key {name!r} in the config file must be a hash 'sha256:<hex>'; "
                "create keys with 'leadtui keys add NAME'"
            )
        keys.append(ApiKey(str(name), digest, scopes))
    return tuple(keys)


# --------------------------------------------------------------------------- declarations


def _to_str(v: Any) -> str:
    if not isinstance(v, str | int | float):
        raise ValueError("expected text")
    return str(v).strip()


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("expected a whole number")
    return int(str(v).strip())


def _to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError("expected a number")
    return float(str(v).strip())


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _to_secret(v: Any) -> Secret:
    return Secret(_to_str(v))


def _to_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        items = v.split(",")
    elif isinstance(v, list | tuple):
        items = [str(x) for x in v]
    else:
        raise ValueError("expected a list or comma-separated text")
    return tuple(x.strip().lower() for x in items if x.strip())


def _to_limit(v: Any) -> float:
    """``15m``, ``1h``, ``90s``, a number of minutes, or ``off`` (0): seconds."""
    text = _to_str(v).lower().replace(" ", "")
    if text in {"off", "0", "false", "no", "none"}:
        return 0.0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|min|h|hr)?", text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError("expected a time like 15m, 1h or 90s, or off")
    unit = {"s": 1, "h": 3600, "hr": 3600}.get(match.group(2) or "m", 60)
    return float(match.group(1)) * unit


def _choice(*choices: str) -> Callable[[Any], str]:
    def convert(v: Any) -> str:
        text = _to_str(v).lower()
        if text not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return text

    return convert


_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


DEFAULT_TIMEZONE = "Asia/Kolkata"
# India keeps one offset all year, so IST needs no time zone database (a slim container may lack one).
_IST_POSIX = "IST-05:30"


def posix_timezone(name: str) -> str | None:
    """The TZ value that makes C's local time ``name``; None if this machine cannot show it.

    ``local`` is the system's own zone. A name must be in the system's zone database
    (the C library reads only that); India's zones work without one.
    """
    if name == "local":
        return ""
    if any(Path(base, name).is_file() for base in zoneinfo.TZPATH):
        return name
    if name in {"Asia/Kolkata", "Asia/Calcutta", "IST"}:
        return _IST_POSIX
    return None


def _to_timezone(v: Any) -> str:
    name = _to_str(v).strip() or DEFAULT_TIMEZONE
    if name.lower() == "local":
        return "local"
    if ".." in name or name.startswith("/") or posix_timezone(name) is None:
        raise ValueError("no such time zone on this machine")
    return name


def use_timezone(name: str) -> None:
    """Show every time this process prints in ``name`` (a setting checked by ``_to_timezone``).

    Times are stored in UTC; what a person reads (the table, detail, toasts, "today", the
    stats' days, follow-up dates, ``list`` and ``export``) is local time, so setting the
    process's zone once makes all of it agree with the seller's clock, even on a UTC server.
    """
    value = posix_timezone(name)
    if value:  # "" (local) leaves the system's zone; None cannot happen after validation
        os.environ["TZ"] = value
        time.tzset()


def timezone_label() -> str:
    """The zone in use now, for ``leadtui doctor``: ``Asia/Kolkata (IST, UTC+05:30)``."""
    now = time.localtime()
    offset = now.tm_gmtoff
    sign = "+" if offset >= 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    name = os.environ.get("TZ", "") or "system"
    if name == _IST_POSIX:
        name = DEFAULT_TIMEZONE
    return f"{name} ({now.tm_zone}, UTC{sign}{hours:02d}:{minutes:02d})"


def unsupported_db_scheme(url: str) -> str | None:
    """The scheme of a URL of another database (``mysql`` for ``mysql://…``), else None.

    Such a URL is an error, not a SQLite file of that name.
    """
    scheme = _URL_SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in {"sqlite", "postgres", "postgresql"}:
        return scheme.group(1)
    return None


def _to_db(v: Any) -> str:
    """A database URL: a path, ``sqlite://…`` or ``postgres(ql)://…``."""
    text = _to_str(v)
    if scheme := unsupported_db_scheme(text):
        raise ValueError(f"leadtui cannot use a {scheme}:// database")
    return text


def redact_url(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@host`` in it hidden."""
    return _URL_PASSWORD.sub(r"\1********@", text)


def _to_keymap(v: Any) -> dict[str, str]:
    if not isinstance(v, Mapping):
        raise ValueError("expected a table of action = key")
    return {str(k): str(val) for k, val in v.items()}


@dataclass(frozen=True, slots=True)
class Field:
    attr: str  # attribute on Settings
    key: str  # dotted TOML key: "imap.host"
    env: str | None  # LEADTUI_* name, or None when only the file sets it
    convert: Callable[[Any], Any]
    help: str


FIELDS: tuple[Field, ...] = (
    Field("db", "db", "LEADTUI_DB", _to_db, "database: a file path, sqlite:///path or postgresql://user@host/dbname"),
    Field("imap_host", "imap.host", "LEADTUI_IMAP_HOST", _to_str, "IMAP server, e.g. imap.gmail.com"),
    Field("imap_port", "imap.port", "LEADTUI_IMAP_PORT", _to_int, "IMAP port (993 for ssl, 143 otherwise)"),
    Field("imap_user", "imap.user", "LEADTUI_IMAP_USER", _to_str, "mailbox login"),
    Field("imap_password", "imap.password", "LEADTUI_IMAP_PASSWORD", _to_secret, "password or Gmail app password"),
    Field("imap_security", "imap.security", "LEADTUI_IMAP_SECURITY", _choice("ssl", "starttls", "plain"), "ssl | starttls | plain"),
    Field("imap_folder", "imap.folder", "LEADTUI_IMAP_FOLDER", _to_str, "folder to watch"),
    Field("imap_ca_file", "imap.ca_file", "LEADTUI_IMAP_CA_FILE", _to_str, "CA bundle for a self-signed server"),
    Field("imap_senders", "imap.senders", "LEADTUI_IMAP_SENDERS", _to_list, "sender domains that carry leads"),
    Field("imap_backfill_days", "imap.backfill_days", "LEADTUI_IMAP_BACKFILL_DAYS", _to_int, "days of mail read on the first run"),
    Field("imap_poll_seconds", "imap.poll_seconds", "LEADTUI_IMAP_POLL_SECONDS", _to_float, "poll interval when the server has no IDLE"),
    Field("imap_oauth_client_id", "imap.oauth_client_id", "LEADTUI_IMAP_OAUTH_CLIENT_ID", _to_str, "XOAUTH2 client id"),
    Field("imap_oauth_client_secret", "imap.oauth_client_secret", "LEADTUI_IMAP_OAUTH_CLIENT_SECRET", _to_secret, "XOAUTH2 client secret"),
    Field("imap_oauth_refresh_token", "imap.oauth_refresh_token", "LEADTUI_IMAP_OAUTH_REFRESH_TOKEN", _to_secret, "XOAUTH2 refresh token"),
    Field("imap_oauth_token_url", "imap.oauth_token_url", "LEADTUI_IMAP_OAUTH_TOKEN_URL", _to_str, "XOAUTH2 token endpoint"),
    Field("http_listen", "http.listen", "LEADTUI_HTTP_LISTEN", _to_str, "host:port of the HTTP ingest, or off"),
    Field("push_token", "http.push_token", "LEADTUI_PUSH_TOKEN", _to_secret, "the secret path token for IndiaMART push"),
    Field("twilio_auth_token", "http.twilio_auth_token", "LEADTUI_TWILIO_AUTH_TOKEN", _to_secret, "Twilio auth token (WhatsApp)"),
    Field("meta_app_secret", "http.meta_app_secret", "LEADTUI_META_APP_SECRET", _to_secret, "Meta app secret (WhatsApp Cloud API)"),
    Field("meta_verify_token", "http.meta_verify_token", "LEADTUI_META_VERIFY_TOKEN", _to_secret, "Meta webhook verify token"),
    Field("http_rate_per_minute", "http.rate_per_minute", "LEADTUI_HTTP_RATE_PER_MINUTE", _to_int, "requests a key may make per minute"),
    Field("http_public_url", "http.public_url", "LEADTUI_HTTP_PUBLIC_URL", _to_str, "the public URL of the ingest (for Twilio signatures)"),
    Field("indiamart_key", "indiamart.key", "LEADTUI_INDIAMART_KEY", _to_secret, "IndiaMART CRM API key"),
    Field("indiamart_url", "indiamart.url", "LEADTUI_INDIAMART_URL", _to_str, "IndiaMART CRM API base URL"),
    Field("pull_backfill_days", "indiamart.backfill_days", "LEADTUI_INDIAMART_BACKFILL_DAYS", _to_int, "days fetched on the first pull (max 365)"),
    Field("pull_interval_seconds", "indiamart.interval_seconds", "LEADTUI_INDIAMART_INTERVAL", _to_float, "seconds between pulls (min 300 against IndiaMART)"),
    Field("meta_leads_app_secret", "meta.app_secret", "LEADTUI_META_LEADS_APP_SECRET", _to_secret, "Meta app secret for lead ads webhooks (default: the WhatsApp one, LEADTUI_META_APP_SECRET)"),
    Field("meta_leads_verify_token", "meta.verify_token", "LEADTUI_META_LEADS_VERIFY_TOKEN", _to_secret, "lead ads webhook verify token (default: LEADTUI_META_VERIFY_TOKEN)"),
    Field("meta_page_token", "meta.page_token", "LEADTUI_META_PAGE_TOKEN", _to_secret, "Facebook Page access token that reads lead ads (leads_retrieval)"),
    Field("meta_form_ids", "meta.form_ids", "LEADTUI_META_FORM_IDS", _to_list, "lead form ids to backfill (forms seen in notifications are added)"),
    Field("meta_graph_url", "meta.graph_url", "LEADTUI_META_GRAPH_URL", _to_str, "Graph API base URL"),
    Field("meta_graph_version", "meta.graph_version", "LEADTUI_META_GRAPH_VERSION", _to_str, "Graph API version, e.g. v26.0"),
    Field("meta_backfill_days", "meta.backfill_days", "LEADTUI_META_BACKFILL_DAYS", _to_int, "days of lead ads fetched on the first backfill (max 90)"),
    Field("gmail_enabled", "gmail.enable", "LEADTUI_GMAIL_ENABLE", _to_bool, "read a Gmail mailbox through the Gmail API (for domains where IMAP is off)"),
    Field("gmail_label", "gmail.label", "LEADTUI_GMAIL_LABEL", _to_str, "the Gmail label id to read (INBOX, or a label's id)"),
    Field("gmail_topic", "gmail.topic", "LEADTUI_GMAIL_TOPIC", _to_str, "Pub/Sub topic for push: projects/PROJECT/topics/TOPIC (empty: poll)"),
    Field("gmail_push_token", "gmail.push_token", "LEADTUI_GMAIL_PUSH_TOKEN", _to_secret, "the secret path token of the push URL /api/webhooks/gmail/<token>"),
    Field("gmail_poll_seconds", "gmail.poll_seconds", "LEADTUI_GMAIL_POLL_SECONDS", _to_float, "seconds between history checks without push"),
    Field("gmail_client_id", "gmail.client_id", "LEADTUI_GMAIL_CLIENT_ID", _to_str, "OAuth client id (default: LEADTUI_IMAP_OAUTH_CLIENT_ID)"),
    Field("gmail_client_secret", "gmail.client_secret", "LEADTUI_GMAIL_CLIENT_SECRET", _to_secret, "OAuth client secret (default: LEADTUI_IMAP_OAUTH_CLIENT_SECRET)"),
    Field("gmail_refresh_token", "gmail.refresh_token", "LEADTUI_GMAIL_REFRESH_TOKEN", _to_secret, "OAuth refresh token with the gmail.readonly scope (default: LEADTUI_IMAP_OAUTH_REFRESH_TOKEN)"),
    Field("gmail_token_url", "gmail.token_url", "LEADTUI_GMAIL_TOKEN_URL", _to_str, "OAuth token endpoint (default: Google's)"),
    Field("gmail_api_url", "gmail.api_url", "LEADTUI_GMAIL_API_URL", _to_str, "Gmail API base URL (tests point it at a local server)"),
    Field("justdial_token", "justdial.token", "LEADTUI_JUSTDIAL_TOKEN", _to_secret, "the secret path token for JustDial's lead push: /api/justdial/<token>"),
    Field("tradeindia_userid", "tradeindia.userid", "LEADTUI_TRADEINDIA_USERID", _to_str, "TradeIndia API userid (My Inquiry API page)"),
    Field("tradeindia_profile_id", "tradeindia.profile_id", "LEADTUI_TRADEINDIA_PROFILE_ID", _to_str, "TradeIndia API profile_id"),
    Field("tradeindia_key", "tradeindia.key", "LEADTUI_TRADEINDIA_KEY", _to_secret, "TradeIndia inquiry API key"),
    Field("tradeindia_url", "tradeindia.url", "LEADTUI_TRADEINDIA_URL", _to_str, "TradeIndia inquiry API URL"),
    Field("tradeindia_backfill_days", "tradeindia.backfill_days", "LEADTUI_TRADEINDIA_BACKFILL_DAYS", _to_int, "days fetched on the first TradeIndia pull (max 90)"),
    Field("tradeindia_interval_seconds", "tradeindia.interval_seconds", "LEADTUI_TRADEINDIA_INTERVAL", _to_float, "seconds between TradeIndia pulls (min 1800)"),
    Field("exportersindia_key", "exportersindia.key", "LEADTUI_EXPORTERSINDIA_KEY", _to_secret, "ExportersIndia inquiry API key"),
    Field("exportersindia_email", "exportersindia.email", "LEADTUI_EXPORTERSINDIA_EMAIL", _to_str, "the ExportersIndia account's email"),
    Field("exportersindia_url", "exportersindia.url", "LEADTUI_EXPORTERSINDIA_URL", _to_str, "ExportersIndia inquiry API URL"),
    Field("exportersindia_backfill_days", "exportersindia.backfill_days", "LEADTUI_EXPORTERSINDIA_BACKFILL_DAYS", _to_int, "days fetched on the first ExportersIndia pull (max 90)"),
    Field("exportersindia_interval_seconds", "exportersindia.interval_seconds", "LEADTUI_EXPORTERSINDIA_INTERVAL", _to_float, "seconds between ExportersIndia pulls (min 900)"),
    Field("bell", "ui.bell", "LEADTUI_BELL", _to_bool, "ring the terminal bell on new leads"),
    Field("desktop_notify", "ui.desktop_notify", "LEADTUI_DESKTOP_NOTIFY", _to_bool, "OSC 777/9 desktop notifications"),
    Field("highlight_seconds", "ui.highlight_seconds", None, _to_float, "how long new rows stay highlighted"),
    Field("keys", "ui.keys", None, _to_keymap, "key remapping: action = key"),
    Field("team_members", "team.members", "LEADTUI_TEAM", _to_list, "the people who work these leads (login names), for the owner prompt"),
    Field("timezone", "ui.timezone", "LEADTUI_TIMEZONE", _to_timezone, "time zone of the times shown: Asia/Kolkata (default), another zone name, or local"),
    Field("seller_name", "seller.name", "LEADTUI_SELLER_NAME", _to_str, "your name as replies sign it ({seller} in a template)"),
    Field("seller_company", "seller.company", "LEADTUI_SELLER_COMPANY", _to_str, "your company ({seller_company} in a template)"),
    Field("seller_phone", "seller.phone", "LEADTUI_SELLER_PHONE", _to_str, "the phone buyers reach you on ({seller_phone} in a template)"),
    Field("smtp_host", "smtp.host", "LEADTUI_SMTP_HOST", _to_str, "SMTP server for email replies, e.g. smtp.gmail.com"),
    Field("smtp_port", "smtp.port", "LEADTUI_SMTP_PORT", _to_int, "SMTP port (465 for ssl, 587 for starttls, 25 for plain)"),
    Field("smtp_security", "smtp.security", "LEADTUI_SMTP_SECURITY", _choice("ssl", "starttls", "plain"), "ssl | starttls | plain"),
    Field("smtp_user", "smtp.user", "LEADTUI_SMTP_USER", _to_str, "SMTP login (default: the mailbox login)"),
    Field("smtp_password", "smtp.password", "LEADTUI_SMTP_PASSWORD", _to_secret, "SMTP password (default: the mailbox password)"),
    Field("smtp_from", "smtp.from", "LEADTUI_SMTP_FROM", _to_str, "the From address of replies (default: the SMTP login)"),
    Field("smtp_ca_file", "smtp.ca_file", "LEADTUI_SMTP_CA_FILE", _to_str, "a CA bundle for a self-signed SMTP server (default: imap.ca_file)"),
    Field("call_retry_hours", "calls.retry_hours", "LEADTUI_CALL_RETRY_HOURS", _to_float, "hours until a follow-up after no answer, busy or switched off"),
    Field("sla_first_contact", "sla.first_contact", "LEADTUI_SLA_FIRST_CONTACT", _to_limit, "first contact limit for a new lead: 15m (default), 1h, 90s, or off"),
    Field("buylead_valid_hours", "sla.buylead_valid_hours", "LEADTUI_BUYLEAD_VALID_HOURS", _to_float, "hours a BuyLead stays fresh, from when the buyer posted it (72)"),
    Field("seller_emails", "seller.emails", "LEADTUI_SELLER_EMAILS", _to_list, "your own addresses: mail from them is never a lead or a buyer's reply"),
    Field("alert_source_failing_minutes", "alerts.source_failing_minutes", "", _to_float, "source.failing: after a source has failed this many minutes"),
    Field("alert_review_growth", "alerts.review_growth", "", _to_int, "review.growing: when the review queue grew by this many items"),
    Field("alert_push_silence_hours", "alerts.push_silence_hours", "", _to_float, "push.watchdog: no IndiaMART push for this many hours while email or pull find leads"),
    Field("alert_digest_at", "alerts.digest_at", "", _to_clock, "digest: the local time of the daily digest, HH:MM"),
    Field("alert_stale_buylead_hours", "alerts.stale_buylead_hours", "", _to_float, "digest: a new BuyLead older than this is going stale"),
    Field("log_level", "log_level", "LEADTUI_LOG_LEVEL", _choice("debug", "info", "warning", "error"), "log level"),
)  # fmt: skip

_BY_ATTR = {f.attr: f for f in FIELDS}


@dataclass(frozen=True)
class Settings:
    db: str = ""
    imap_host: str = ""
    imap_port: int = 0  # 0: 993 for ssl, 143 otherwise
    imap_user: str = ""
    imap_password: Secret = Secret("")
    imap_security: str = "ssl"
    imap_folder: str = "INBOX"
    imap_ca_file: str = ""
    imap_senders: tuple[str, ...] = ("indiamart.com", "tradeindia.com")
    imap_backfill_days: int = 7
    imap_poll_seconds: float = 30.0
    imap_oauth_client_id: str = ""
    imap_oauth_client_secret: Secret = Secret("")
    imap_oauth_refresh_token: Secret = Secret("")
    imap_oauth_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    http_listen: str = "127.0.0.1:8765"
    api_keys: tuple[ApiKey, ...] = ()
    push_token: Secret = Secret("")
    twilio_auth_token: Secret = Secret("")
    meta_app_secret: Secret = Secret("")
    meta_verify_token: Secret = Secret("")
    http_rate_per_minute: int = 600
    http_public_url: str = ""
    indiamart_key: Secret = Secret("")
    indiamart_url: str = "https://mapi.indiamart.com/wservce/crm/crmListing/v2/"
    pull_backfill_days: int = 7
    pull_interval_seconds: float = 300.0
    meta_leads_app_secret: Secret = Secret("")
    meta_leads_verify_token: Secret = Secret("")
    meta_page_token: Secret = Secret("")
    meta_form_ids: tuple[str, ...] = ()
    meta_graph_url: str = "https://graph.facebook.com"
    meta_graph_version: str = "v26.0"
    meta_backfill_days: int = 7
    gmail_enabled: bool = False
    gmail_label: str = "INBOX"
    gmail_topic: str = ""
    gmail_push_token: Secret = Secret("")
    gmail_poll_seconds: float = 60.0
    gmail_client_id: str = ""
    gmail_client_secret: Secret = Secret("")
    gmail_refresh_token: Secret = Secret("")
    gmail_token_url: str = ""  # empty: imap_oauth_token_url (Google's)
    gmail_api_url: str = "https://gmail.googleapis.com"
    justdial_token: Secret = Secret("")
    tradeindia_userid: str = ""
    tradeindia_profile_id: str = ""
    tradeindia_key: Secret = Secret("")
    tradeindia_url: str = "https://www.tradeindia.com/utils/my_inquiry.html"
    tradeindia_backfill_days: int = 7
    tradeindia_interval_seconds: float = 7200.0  # what public TradeIndia integrations poll at
    exportersindia_key: Secret = Secret("")
    exportersindia_email: str = ""
    exportersindia_url: str = "https://members.exportersindia.com/api-inquiry-detail.php"
    exportersindia_backfill_days: int = 7
    exportersindia_interval_seconds: float = 3600.0
    bell: bool = True
    desktop_notify: bool = False
    highlight_seconds: float = 4.0
    keys: dict[str, str] = dataclasses.field(default_factory=dict)
    team_members: tuple[str, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    seller_name: str = ""
    seller_company: str = ""
    seller_phone: str = ""
    smtp_host: str = ""
    smtp_port: int = 0  # 0: 465 for ssl, 587 for starttls, 25 for plain
    smtp_security: str = "starttls"
    smtp_user: str = ""
    smtp_password: Secret = Secret("")
    smtp_from: str = ""
    smtp_ca_file: str = ""
    call_retry_hours: float = 2.0
    sla_first_contact: float = 900.0  # seconds; 0: off
    buylead_valid_hours: float = 72.0
    seller_emails: tuple[str, ...] = ()
    # [templates.NAME]: the reply templates by name; "default" ships and can be replaced.
    templates: Mapping[str, Template] = dataclasses.field(
        default_factory=lambda: {DEFAULT.name: DEFAULT}
    )
    log_level: str = "info"
    notify: tuple[NotifyTarget, ...] = ()  # [[notify]] and [[webhook]] tables
    autoreply: Autoreply = Autoreply()  # [autoreply]
    alert_source_failing_minutes: float = 30.0
    alert_review_growth: int = 10
    alert_push_silence_hours: float = 12.0  # IndiaMART switches a push URL off after 48 h
    alert_digest_at: str = "09:00"
    alert_stale_buylead_hours: float = 24.0
    config_path: Path | None = None  # the file these settings came from, if any
    # The HTTP ingest re-reads API keys when the config file changes; not the demo's own key.
    api_keys_fixed: bool = False

    # ------------------------------------------------------------------ derived

    @property
    def db_url(self) -> str:
        return self.db or default_db_url()

    @property
    def imap_configured(self) -> bool:
        return bool(self.imap_host and self.imap_user)

    @property
    def imap_effective_port(self) -> int:
        if self.imap_port:
            return self.imap_port
        return 993 if self.imap_security == "ssl" else 143

    @property
    def imap_uses_oauth(self) -> bool:
        return bool(self.imap_oauth_refresh_token)

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def smtp_effective_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return {"ssl": 465, "starttls": 587}.get(self.smtp_security, 25)

    @property
    def smtp_login(self) -> tuple[str, Secret]:
        """Who SMTP logs in as: its own user, or the mailbox's (Gmail takes the same)."""
        if self.smtp_user:
            return self.smtp_user, self.smtp_password
        return self.imap_user, self.smtp_password or self.imap_password

    @property
    def smtp_uses_oauth(self) -> bool:
        """XOAUTH2 with the mailbox's refresh token, when SMTP has no password of its own."""
        return not self.smtp_password and bool(self.imap_oauth_refresh_token)

    @property
    def own_addresses(self) -> tuple[str, ...]:
        """The seller's own addresses (seller.emails, the SMTP From and login, the mailbox
        login): mail from them that reaches the watched folder is never a lead."""
        found = (*self.seller_emails, self.smtp_from, self.smtp_user, self.imap_user)
        return tuple(dict.fromkeys(a.strip().lower() for a in found if "@" in a))

    @property
    def seller(self) -> dict[str, str]:
        return {
            "name": self.seller_name,
            "company": self.seller_company,
            "phone": self.seller_phone,
        }

    @property
    def http_enabled(self) -> bool:
        return self.http_listen.strip().lower() not in {"", "off", "no", "false", "0"}

    @property
    def http_accepts(self) -> bool:
        """The HTTP ingest is on and can accept something: an API key or a webhook secret."""
        secrets = (
            self.push_token,
            self.twilio_auth_token,
            self.meta_app_secret,
            self.meta_leads_app_secret,
            self.gmail_push_token,
            self.justdial_token,
        )
        return self.http_enabled and bool(self.api_keys or any(secrets))

    @property
    def meta_leads_secret(self) -> Secret:
        """The app secret lead ads notifications are signed with: ``[meta] app_secret``, else
        the WhatsApp Cloud one (one Meta app often serves both)."""
        return self.meta_leads_app_secret or self.meta_app_secret

    @property
    def meta_leads_verify(self) -> Secret:
        """The lead ads webhook's verify token: ``[meta] verify_token``, else WhatsApp's."""
        return self.meta_leads_verify_token or self.meta_verify_token

    @property
    def meta_leads_enabled(self) -> bool:
        """Facebook / Instagram lead ads are captured: a Page token reads them."""
        return bool(self.meta_page_token)

    @property
    def names_a_source(self) -> bool:
        """Whether these settings can capture anything: a mailbox, an API key or webhook
        secret for the HTTP ingest, or a CRM key. A salesperson's TUI with none of them only
        views: it must never take the capture lease from the team's ``leadtui serve``, whose
        restart would then wait for every such TUI to close, capturing nothing meanwhile."""
        return (
            self.imap_configured
            or self.http_accepts
            or bool(self.indiamart_key)
            or self.meta_leads_enabled
            or self.gmail_enabled
            or bool(self.tradeindia_key or self.exportersindia_key)
        )

    @property
    def gmail_oauth(self) -> tuple[str, Secret, Secret, str]:
        """The Gmail source's OAuth client id, secret, refresh token and token URL: its own
        ``[gmail]`` settings, else the mailbox's XOAUTH2 ones (one Google grant serves both)."""
        return (
            self.gmail_client_id or self.imap_oauth_client_id,
            self.gmail_client_secret or self.imap_oauth_client_secret,
            self.gmail_refresh_token or self.imap_oauth_refresh_token,
            self.gmail_token_url or self.imap_oauth_token_url,
        )

    @property
    def gmail_push(self) -> bool:
        """Push is set up: a Pub/Sub topic to watch and a token for the URL it pushes to."""
        return bool(self.gmail_topic and self.gmail_push_token and self.http_enabled)

    @property
    def imap_credentials_missing(self) -> bool:
        """A mailbox is named but nothing to log in with: no password and no XOAUTH2 token."""
        return self.imap_configured and not (self.imap_password or self.imap_uses_oauth)

    @property
    def http_host_port(self) -> tuple[str, int]:
        host, sep, port = self.http_listen.strip().rpartition(":")
        wrong = ConfigError(
            "LEADTUI_HTTP_LISTEN (http.listen) must be host:port with a port up to 65535, "
            f"or off, not {self.http_listen!r}"
        )
        if not sep or not port.strip().isdigit():
            raise wrong
        number = int(port)
        if number > 65535:
            raise wrong
        return host.strip("[]") or "127.0.0.1", number

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _convert(f: Field, value: Any, origin: str) -> Any:
    try:
        return f.convert(value)
    except (ValueError, TypeError) as exc:
        shown = "********" if f.convert is _to_secret else redact_url(repr(value))[:60]
        raise ConfigError(f"{origin}: {shown} is not valid ({exc}); {f.help}") from None


def _read_text(path: Path, origin: str = "--config") -> str:
    """The config file's text; every way reading it can fail is a :class:`ConfigError`."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} (from {origin}) does not exist; "
            f"create it with 'leadtui init' or fix {origin}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start} cannot be read); "
            "save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}; fix that line") from None


def read_file(path: Path, origin: str = "--config") -> dict[str, Any]:
    return _parse_toml(_read_text(path, origin), path)


def _check_ca_file(path: str) -> None:
    """Fail now, naming the setting, rather than at every connection to the mailbox."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        problem = f"{path} holds no certificate leadtui can read ({reason})"
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror or exc}"
    else:
        return
    raise ConfigError(
        f"LEADTUI_IMAP_CA_FILE (imap.ca_file): {problem}; "
        "point it at the PEM file of your mail server's CA, or unset it"
    )


def config_file_path(
    config_file: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Path, bool]:
    """The config file to read, and whether it was named explicitly (flag or environment)."""
    env = os.environ if environ is None else environ
    explicit = config_file or env.get("LEADTUI_CONFIG")
    if explicit:
        return Path(explicit).expanduser(), True
    return default_config_path(), False


def load(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from file < environment < ``overrides`` (flags, by attribute name)."""
    env = os.environ if environ is None else environ
    path, explicit = config_file_path(config_file, env)
    data: dict[str, Any] = {}
    if explicit or path.exists():
        data = read_file(path, "--config" if config_file else "LEADTUI_CONFIG")

    values: dict[str, Any] = {}
    for f in FIELDS:
        raw = _lookup(data, f.key)
        if raw is not None:
            values[f.attr] = _convert(f, raw, f"{path}: {f.key}")
        if f.env and env.get(f.env, "") != "":
            values[f.attr] = _convert(f, env[f.env], f.env)

    api_keys: list[ApiKey] = []
    file_keys = _lookup(data, "http.api_keys")
    if file_keys is not None:
        api_keys.extend(_parse_api_keys_file(file_keys))
    if env.get("LEADTUI_API_KEYS"):
        api_keys.extend(_parse_api_keys_env(env["LEADTUI_API_KEYS"]))
    values["api_keys"] = tuple(api_keys)
    values["templates"] = _templates(_lookup(data, "templates"), path)
    values["notify"] = _parse_notify(_lookup(data, "notify"), env, path)
    # [[webhook]] tables are webhook targets with every lead event; one sender serves both.
    values["notify"] += _parse_notify(
        _lookup(data, "webhook"), env, path, "webhook", (t.name for t in values["notify"])
    )
    values["autoreply"] = _parse_autoreply(
        _lookup(data, "autoreply"), env, path, values["templates"]
    )

    for attr, value in (overrides or {}).items():
        if value is None:
            continue
        declared = _BY_ATTR.get(attr)
        flag = f"--{attr.replace('_', '-')}"
        values[attr] = _convert(declared, value, flag) if declared else value

    values["config_path"] = path if (explicit or path.exists()) else None
    settings = Settings(**values)
    if settings.http_enabled:
        settings.http_host_port  # noqa: B018 - validates LEADTUI_HTTP_LISTEN early
    if settings.imap_ca_file and settings.imap_configured:  # only where a mailbox is read
        _check_ca_file(settings.imap_ca_file)
    return settings


def _templates(table: Any, path: Path) -> dict[str, Template]:
    """``[templates.NAME]`` tables over the shipped default; a wrong one is one line."""
    found: dict[str, Template] = {DEFAULT.name: DEFAULT}
    if table is None:
        return found
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: templates must be tables like [templates.price]")
    for name, value in table.items():
        try:
            found[str(name)] = from_config(str(name), value)
        except ValueError as exc:
            raise ConfigError(f"{path}: templates.{name}: {exc}") from None
    return found


def environment_help() -> list[tuple[str, str]]:
    """(environment name, what it sets) for every setting that has one; for help screens."""
    rows = [(f.env, f.help) for f in FIELDS if f.env]
    rows.append(("LEADTUI_API_KEYS", "HTTP API keys as name:key,name2[ingest]:key2"))
    rows.append(("LEADTUI_CONFIG", "the config file to read"))
    return rows


SAMPLE_CONFIG = """\
# leadtui configuration. Environment variables (LEADTUI_*) override these values,
# and command-line flags override both. Run `leadtui doctor` to check them.

# db = "postgresql://leads@dbhost/leads"   # default: a SQLite file in the user data dir

[imap]
# The mailbox IndiaMART writes to: uncomment these three and fill them in.
# host = "imap.gmail.com"
# user = "sales@yourcompany.in"
# password = "abcd efgh ijkl mnop"       # a Gmail app password, or use oauth_* below
# security = "ssl"                       # ssl | starttls | plain
# folder = "INBOX"                       # the folder your IndiaMART mail lands in
# senders = ["indiamart.com", "tradeindia.com"]

[http]
# listen = "127.0.0.1:8765"              # or "off"
# push_token = "long-random-string"      # IndiaMART push URL: /api/indiamart/push/<token>

[http.api_keys]
# created by `leadtui keys add NAME`; only hashes are stored here

[indiamart]
# key = "your CRM key from Lead Manager"

[meta]
# Facebook and Instagram lead ads (README: Other lead channels).
# page_token = "EAAB…"                   # a Page access token with leads_retrieval
# app_secret = "…"                       # signs the webhook (default: [http] meta_app_secret)
# verify_token = "long-random-string"    # typed into the app's Webhooks settings
# form_ids = ["1234567890"]              # forms to backfill (notified forms are added)

[gmail]
# For Google Workspace domains where IMAP is off: the Gmail API, read-only (README: Other lead channels).
# enable = true
# refresh_token = "1//0g…"               # scope https://www.googleapis.com/auth/gmail.readonly
# client_id = "…apps.googleusercontent.com"
# client_secret = "…"
# label = "INBOX"
# topic = "projects/my-project/topics/leadtui-gmail"   # push; without it leadtui polls
# push_token = "long-random-string"      # push URL: /api/webhooks/gmail/<token>

[justdial]
# JustDial's lead push (README: Other lead channels).
# token = "long-random-string"           # at least 16 characters; JustDial's URL: /api/justdial/<token>

[tradeindia]
# userid = "1234567"                     # TradeIndia → My Inquiry API: userid, profile_id, key
# profile_id = "7654321"
# key = "…"

[exportersindia]
# key = "…"                              # ExportersIndia → inquiry API key
# email = "sales@yourcompany.in"         # the account's email

[team]
# members = ["asha", "ravi"]             # login names; the owner prompt completes them

[seller]
# name = "Asha"                          # {seller} in a reply template
# company = "Shree Steel Traders"        # {seller_company}
# phone = "+91 98765 43210"              # {seller_phone}
# emails = ["asha@shreesteel.in"]        # your own addresses: their mail is never a lead

[smtp]
# Email replies (R, then an Email line). Login and password default to the mailbox's.
# host = "smtp.gmail.com"
# security = "starttls"                  # ssl | starttls | plain
# port = 587

# [templates.price]                      # R offers "default" and each of these
# text = "Namaste[ {first_name}], our rate for {product} is attached. {seller}"
# subject = "Rates[ for {product}]"      # for email; [optional text] drops when empty

[calls]
# retry_hours = 2                        # d: no answer, busy, switched off → follow-up then

[sla]
# first_contact = "15m"                  # a new lead turns amber at half, red at the limit; "off"
# buylead_valid_hours = 72               # a BuyLead goes stale this long after the buyer posted it

[ui]
# bell = true
# desktop_notify = false
# timezone = "Asia/Kolkata"              # the zone of every time shown; "local": this machine's
"""


def is_loopback_host(host: str) -> bool:
    """True for this machine (``localhost``, 127/8, ::1): where test servers run, so plain
    HTTP and short intervals are allowed there and nowhere else."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- editing keys

_KEYS_HEADER = re.compile(r"^\s*\[\s*http\s*\.\s*api_keys\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")


def _key_line(name: str) -> re.Pattern[str]:
    return re.compile(rf"""^\s*(?:"{re.escape(name)}"|'{re.escape(name)}'|{re.escape(name)})\s*=""")


def add_api_key(path: Path, name: str, digest: str, scopes: Iterable[str] = NEW_KEY_SCOPES) -> None:
    """Record an API key's hash and scopes under ``[http.api_keys]``, keeping the rest."""
    text = _read_text(path) if path.exists() else ""
    existing = _parse_api_keys_file(_lookup(_parse_toml(text, path), "http.api_keys") or {})
    if any(k.name == name for k in existing):
        raise ConfigError(
            f"a key called {name!r} exists; remove it first: leadtui keys remove {name}"
        )
    listed = ", ".join(f'"{scope}"' for scope in SCOPES if scope in set(scopes))
    entry = f'"{name}" = {{ hash = "{digest}", scopes = [{listed}] }}'
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _KEYS_HEADER.match(line):
            lines.insert(i + 1, entry)
            break
    else:
        lines += ([""] if lines else []) + ["[http.api_keys]", entry]
    write_config(path, "\n".join(lines) + "\n")


def remove_api_key(path: Path, name: str) -> bool:
    """Delete a key from ``[http.api_keys]``; False when there was none of that name."""
    if not path.exists():
        return False
    text = _read_text(path)
    _parse_toml(text, path)  # a file we cannot read must not look like "no such key"
    lines = text.splitlines()
    in_keys = False
    pattern = _key_line(name)
    for i, line in enumerate(lines):
        if _ANY_HEADER.match(line):
            in_keys = bool(_KEYS_HEADER.match(line))
        elif in_keys and pattern.match(line):
            del lines[i]
            write_config(path, "\n".join(lines) + "\n")
            return True
    return False


def write_config(path: Path, text: str) -> None:
    """Replace the config file with ``text`` at once.

    A new file is readable only by this user. An existing one keeps its owner, group and
    group permissions, never any for others: ``sudo leadtui keys add`` on the service's
    ``/etc/leadtui/config.toml`` must leave it readable by the service, or the new key would
    never work.
    """
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - we only add valid lines
        raise ConfigError(f"refusing to write an invalid config file {path}: {exc}") from None
    try:
        try:
            old: os.stat_result | None = path.stat()
        except FileNotFoundError:
            old = None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # secrets: never 0644
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if old is not None:
            if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):  # only root may give a file away
                    os.chown(tmp, old.st_uid, old.st_gid)
            # Its group may read it (the service's); nobody else: it holds secrets.
            os.chmod(tmp, (stat.S_IMODE(old.st_mode) | 0o600) & 0o770)
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the config file {path}: {exc.strerror}") from None
