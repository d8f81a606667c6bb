"""The config file itself: read as TOML with errors that name the file and line, and replaced
at once (never half-written, never readable by others) when ``leadtui keys`` edits it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leadtui.config.values import ConfigError


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


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
