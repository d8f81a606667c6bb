"""JustDial as a capture source: its settings, its health, and its ``leadtui doctor`` line.

JustDial pushes leads to the HTTP ingest (:mod:`leadtui.ingest.justdial` serves
``/api/justdial/<token>``; :mod:`leadtui.formats.justdial` maps the fields), so there is no
connection to keep here. What this source does is what the one list of sources asks of every
channel: refuse settings that are not safe (a token short enough to guess is a config error in
one line), say in the header and ``/healthz`` that JustDial is on and waiting until its first
lead arrives (the handler then reports "last lead 3 min ago", or a request kept for review),
and give ``doctor`` the URL to register, with the token masked.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from leadtui.capture import HealthCallback, Pipeline, Source, SourceFactory
from leadtui.config import Check, ConfigError, Settings
from leadtui.ingest.checks import PUSH_TOKEN_MIN
from leadtui.ingest.justdial import HEALTH_SOURCE, PREFIX
from leadtui.store import Health, Store

NAME = "justdial"
TOKEN_SETTING = "LEADTUI_JUSTDIAL_TOKEN"  # noqa: S105 - the setting's name
MAKE_TOKEN = 'python3 -c "import secrets; print(secrets.token_urlsafe(24))"'  # noqa: S105 - how to make one


def too_short(settings: Settings) -> str | None:
    """Why the token cannot be used (one line), or None."""
    if len(settings.justdial_token.reveal()) >= PUSH_TOKEN_MIN:
        return None
    return (
        f"{TOKEN_SETTING} (or token under [justdial]) is shorter than {PUSH_TOKEN_MIN} "
        "characters: the URL is JustDial's only credential, and a short one can be guessed"
    )


@dataclass
class JustDialSource:
    """Says JustDial is on; the ingest's handler reports each lead after that."""

    report: HealthCallback
    name: str = NAME

    def run(self, stop: threading.Event) -> None:
        self.report(Health(HEALTH_SOURCE, "ready", "no lead since leadtui started capturing"))
        stop.wait()


def justdial_factory(settings: Settings) -> SourceFactory:
    """The capture source factory (the source registry calls it); ConfigError for a short
    token, so ``leadtui serve`` stops with that one line rather than serve a guessable URL."""
    if (problem := too_short(settings)) is not None:
        raise ConfigError(f"{problem}; use a long random one ({MAKE_TOKEN})")

    def make(store: Store, pipeline: Pipeline, report: HealthCallback) -> Source:
        del store, pipeline  # the HTTP ingest receives and stores JustDial's leads
        return JustDialSource(report)

    return make


def check(settings: Settings, store: Store | None = None) -> list[Check]:
    """``leadtui doctor``'s line for JustDial: off and how to turn it on, a token that is not
    safe, or the URL to give JustDial (the token itself never shown)."""
    del store
    if not settings.justdial_token:
        return [
            Check(
                NAME,
                None,
                f"off: set {TOKEN_SETTING} (or token under [justdial]) to receive JustDial leads",
            )
        ]
    if (problem := too_short(settings)) is not None:
        return [
            Check(
                NAME,
                False,
                problem,
                f"use a long random one, e.g. {MAKE_TOKEN}, and update the URL in JustDial",
            )
        ]
    if not settings.http_enabled:
        return [
            Check(
                NAME,
                False,
                "the HTTP ingest is off (LEADTUI_HTTP_LISTEN=off), so JustDial cannot reach "
                "leadtui",
                "set LEADTUI_HTTP_LISTEN to host:port",
            )
        ]
    base = settings.http_public_url.rstrip("/") or "https://<this server's public address>"
    length = len(settings.justdial_token.reveal())
    return [
        Check(
            NAME,
            True,
            f"on: give JustDial {base}{PREFIX}<{TOKEN_SETTING}> ({length} characters; GET or POST)",
        )
    ]
