"""The HTTP ingest's lines of ``leadtui doctor``: listen address and port, API keys, push token."""

from __future__ import annotations

import socket

from leadtui.config import Check, ConfigError, Settings
from leadtui.store import Store

PUSH_TOKEN_MIN = 16  # characters: the push URL is its only credential


def check(settings: Settings, store: Store | None = None) -> list[Check]:
    """What ``leadtui doctor`` says of the HTTP ingest, one :class:`Check` per line.

    ``store`` is the opened database, if doctor could open it: a port in use is then fine when
    a process holds the capture lease (it is that process's ingest). Never shows a secret.
    """
    if not settings.http_enabled:
        return [Check("http", None, "off (LEADTUI_HTTP_LISTEN=off)")]
    try:
        host, port = settings.http_host_port
    except ConfigError as exc:
        return [Check("http", False, str(exc), "set LEADTUI_HTTP_LISTEN to host:port or off")]
    captured_here = store is not None and store.lease_info() is not None
    if _port_free(host, port):
        checks = [Check("http", True, f"{host}:{port} is free for the ingest")]
    elif captured_here:
        checks = [Check("http", True, f"{host}:{port} in use (by the capturing process)")]
    else:
        checks = [
            Check(
                "http",
                False,
                f"{host}:{port} is in use by another program",
                "set LEADTUI_HTTP_LISTEN to a free host:port, or off",
            )
        ]
    if settings.api_keys:
        checks.append(Check("api keys", True, ", ".join(k.name for k in settings.api_keys)))
    else:
        checks.append(
            Check("api keys", None, "none: POST /api/leads needs one (leadtui keys add NAME)")
        )
    checks.append(_push(settings))
    return checks


def _push(settings: Settings) -> Check:
    if not settings.push_token:
        return Check("push", None, "off: set LEADTUI_PUSH_TOKEN to receive IndiaMART push")
    if len(settings.push_token.reveal()) < PUSH_TOKEN_MIN:
        return Check(
            "push",
            False,
            f"LEADTUI_PUSH_TOKEN is shorter than {PUSH_TOKEN_MIN} characters: the URL "
            "is the only credential, and a short one can be guessed",
            'use a long random one, e.g. python3 -c "import secrets; '
            'print(secrets.token_urlsafe(24))", and update it in IndiaMART',
        )
    return Check("push", True, "on: /api/indiamart/push/<LEADTUI_PUSH_TOKEN>")


def _port_free(host: str, port: int) -> bool:
    """Whether this process could listen on ``host:port`` now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
