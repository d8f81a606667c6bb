"""The values settings are made of: errors, checks, secrets, paths, converters, time zones.

A leaf: :mod:`~leadtui.config.settings`, :mod:`~leadtui.config.notify` and
:mod:`~leadtui.config.keys` build on it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

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


def is_loopback_host(host: str) -> bool:
    """True for this machine (``localhost``, 127/8, ::1): where test servers run, so plain
    HTTP and short intervals are allowed there and nowhere else."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
