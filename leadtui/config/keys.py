"""API keys: hashed and scoped, read from the environment or the config file, and added to
or removed from that file by ``leadtui keys`` without touching anything else in it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leadtui.config.files import _lookup, _parse_toml, _read_text, write_config
from leadtui.config.values import ConfigError

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
