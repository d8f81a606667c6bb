"""The Gmail source's lines of ``leadtui doctor``: sign-in and mailbox, then push.

One live call (``users.getProfile``) shows that the refresh token, the scope and the Gmail API
work; the rest comes from the settings and the sync state the source keeps. No token is shown.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from leadtui.channels.gmail import WATCH_STATE, Cursor
from leadtui.channels.gmail_api import ApiError, GmailApi, GmailConfig, as_int, day
from leadtui.config import Check, Settings
from leadtui.imap import redact
from leadtui.ingest.checks import PUSH_TOKEN_MIN
from leadtui.ingest.gmail import GMAIL_PREFIX
from leadtui.pull import ago
from leadtui.store import Store

NETWORK_FIX = "check the internet connection (and LEADTUI_GMAIL_API_URL if you set it)"


def check(settings: Settings, store: Store | None, timeout: float = 15.0) -> list[Check]:
    """The Gmail source's lines for ``leadtui doctor``: sign-in and mailbox, then push."""
    if not settings.gmail_enabled:
        return [
            Check(
                "gmail",
                None,
                "off: set LEADTUI_GMAIL_ENABLE=true (or enable = true under [gmail]) to read "
                "Gmail through the Gmail API where IMAP is off",
            )
        ]
    try:
        cfg = GmailConfig.from_settings(settings)
    except ValueError as exc:
        return [Check("gmail", False, str(exc), "README: Gmail without IMAP")]
    cursor = Cursor.load(store) if store is not None else None
    try:
        profile = asyncio.run(asyncio.wait_for(_profile(cfg), timeout))
    except ApiError as exc:
        what, fix = exc.explain()
        fix = fix or (NETWORK_FIX if exc.status == 0 else "")
        lines = [Check("gmail", False, redact(what, list(cfg.secrets)), fix)]
    except TimeoutError:
        lines = [
            Check(
                "gmail",
                False,
                f"Gmail did not answer within {timeout:g} s",
                NETWORK_FIX,
            )
        ]
    else:
        synced = (
            f"; history {cursor.history_id} read {ago(time.time() - cursor.synced_ts)} ago"
            if cursor and cursor.synced_ts
            else "; not synced yet"
        )
        email = str(profile.get("emailAddress") or "the mailbox")
        lines = [Check("gmail", True, f"reading {email} ({cfg.label}), read-only{synced}")]
    return [*lines, _push_check(settings, cfg, store)]


async def _profile(cfg: GmailConfig) -> dict[str, Any]:
    async with GmailApi.session_for(cfg) as session:
        return await GmailApi(cfg, session).profile()


def _push_check(settings: Settings, cfg: GmailConfig, store: Store | None) -> Check:
    token = settings.gmail_push_token.reveal()
    if not settings.gmail_topic:
        return Check(
            "gmail push",
            None,
            f"off: checking every {cfg.poll_seconds:g} s; for mail within seconds set "
            "LEADTUI_GMAIL_TOPIC and LEADTUI_GMAIL_PUSH_TOKEN",
        )
    if not token:
        return Check(
            "gmail push",
            False,
            "LEADTUI_GMAIL_TOPIC is set but LEADTUI_GMAIL_PUSH_TOKEN is not, so Pub/Sub has "
            "no URL to push to",
            "set LEADTUI_GMAIL_PUSH_TOKEN to a long random string; the push endpoint is "
            "https://<your host>/api/webhooks/gmail/<token>",
        )
    if len(token) < PUSH_TOKEN_MIN:
        return Check(
            "gmail push",
            False,
            f"LEADTUI_GMAIL_PUSH_TOKEN is shorter than {PUSH_TOKEN_MIN} characters: the URL "
            "is the only credential",
            'use a long random one, e.g. python3 -c "import secrets; '
            'print(secrets.token_urlsafe(24))", and update the subscription',
        )
    if not settings.http_enabled:
        return Check(
            "gmail push",
            False,
            "push needs the HTTP ingest, and LEADTUI_HTTP_LISTEN is off",
            "set LEADTUI_HTTP_LISTEN to host:port behind your HTTPS proxy",
        )
    watch = (store.get_state(WATCH_STATE) if store is not None else None) or {}
    expires = as_int(watch.get("expiration_ms"))
    if watch.get("topic") != cfg.topic or not expires:
        base = settings.http_public_url.rstrip("/") or "https://<this server's public address>"
        return Check(
            "gmail push",
            None,
            f"on via {cfg.topic}: push endpoint {base}{GMAIL_PREFIX}<LEADTUI_GMAIL_PUSH_TOKEN>; "
            "the watch starts with capture",
        )
    left = expires / 1000 - time.time()
    return Check(
        "gmail push",
        left > 0,
        f"on via {cfg.topic}: watch renewed {ago(time.time() - float(watch['renewed_ts']))} "
        f"ago, lasts until {day(expires)}",
        "" if left > 0 else "start leadtui serve: it renews the watch every day",
    )
