"""Calls to Meta's Graph API for lead ads, and what its answers mean.

Three reads, all with the Page access token in the ``access_token`` query parameter (Meta's
"Retrieving Leads" guide):

- ``GET /v{N}/{leadgen_id}?fields=…`` — one lead, after a webhook notification;
- ``GET /v{N}/{form_id}/leads?filtering=[{"field":"time_created","operator":"GREATER_THAN",
  "value":UNIX}]&fields=…`` — a form's leads since a time, in pages (``paging.next``);
- ``GET /v{N}/me?fields=id,name`` — which Page the token belongs to (``leadtui doctor``).

An error is ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` (Meta's
"Handling Errors" guide). :class:`Problem` sorts the codes by what fixes them: 190 (and 102)
the token expired or was revoked; 10 and 200-299 a permission is missing; 4, 17, 32, 341, 613
and 80000-80099 rate limits; 1, 2, HTTP 5xx and no answer Meta being down. Anything else
(100: no such lead) concerns the one object asked for.

The token is in every URL, and ``paging.next`` carries it too: every text that leaves this
module passes through :meth:`GraphConfig.redact`, and a ``next`` URL is followed only to the
configured Graph host.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from leadtui import __version__
from leadtui.config import Secret, Settings
from leadtui.formats.meta_leads import graph_id
from leadtui.formats.text import one_line
from leadtui.pull import is_loopback_url, make_redactor

LEAD_FIELDS = "id,created_time,field_data,ad_id,ad_name,form_id,campaign_name,platform"
PAGE_SIZE = 100
MAX_BACKFILL_DAYS = 90  # Meta keeps a lead retrievable for 90 days
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=15)
_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]{1,2}")
_TOKEN_PARAM = re.compile(r"(access_token=)[^&\s'\"<>]*", re.IGNORECASE)

EXPIRED_FIX = (
    "make a new long-lived Page access token (a system user in Meta Business Suite, or the "
    "Graph API Explorer) and set LEADTUI_META_PAGE_TOKEN or [meta] page_token"
)
PERMISSION_FIX = (
    "give the app leads_retrieval, pages_show_list, pages_read_engagement, pages_manage_metadata "
    "and ads_management, check Leads Access Manager, then make a new Page token"
)


class MetaError(Exception):
    """Lead ads cannot run with these settings. The message says what to set."""


class Problem(enum.Enum):
    TOKEN = "token"  # noqa: S105 - expired or revoked: a person must make a new one
    PERMISSION = "permission"  # the token lacks a permission: a person must grant it
    RATE = "rate"  # throttled: wait
    DOWN = "down"  # Meta or the network: wait
    OBJECT = "object"  # this one lead (no such id, deleted): try a few times, then review


@dataclass(frozen=True)
class GraphConfig:
    base: str  # e.g. https://graph.facebook.com/v26.0 (no trailing slash)
    token: Secret = field(repr=False)
    form_ids: tuple[str, ...] = ()
    backfill_days: int = 7
    loopback: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GraphConfig:
        if not settings.meta_page_token:
            raise MetaError(
                "no Page access token: set LEADTUI_META_PAGE_TOKEN or [meta] page_token"
            )
        url = settings.meta_graph_url.strip().rstrip("/")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            shown = _TOKEN_PARAM.sub(r"\1********", url)[:80]
            raise MetaError(f"LEADTUI_META_GRAPH_URL must be an http(s) URL, not {shown!r}")
        version = settings.meta_graph_version.strip()
        if not _VERSION.fullmatch(version):
            raise MetaError(
                f"LEADTUI_META_GRAPH_VERSION must look like v26.0, not {version[:20]!r}"
            )
        forms = []
        for text in settings.meta_form_ids:
            form = graph_id(text)
            if form is None:
                raise MetaError(f"[meta] form_ids: {text[:40]!r} is not a form id (digits only)")
            forms.append(form)
        days = max(0, min(int(settings.meta_backfill_days), MAX_BACKFILL_DAYS))
        return cls(
            f"{url}/{version}",
            settings.meta_page_token,
            tuple(dict.fromkeys(forms)),
            days,
            is_loopback_url(url),
        )

    @property
    def host(self) -> str:
        return urlsplit(self.base).hostname or self.base

    def redact(self, text: str) -> str:
        """``text`` without the token (plain, URL-encoded, or as the URL's parameter)."""
        return _TOKEN_PARAM.sub(r"\1********", self._redactor(text))

    @property
    def _redactor(self) -> Callable[[str], str]:
        return make_redactor(self.token.reveal())

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` (a ``paging.next``) goes to the configured Graph host: the token
        rides in it, so it is never sent anywhere else."""
        mine, theirs = urlsplit(self.base), urlsplit(url)
        return (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc)


@dataclass(frozen=True)
class Answer:
    """One Graph API answer. ``status`` 0: no answer at all."""

    status: int
    body: bytes = b""
    data: Any = None
    code: int | None = None
    subcode: int | None = None
    message: str = ""
    trace: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.code is None and isinstance(self.data, dict)

    @property
    def problem(self) -> Problem | None:
        if self.ok:
            return None
        code = self.code
        if code in (190, 102):
            return Problem.TOKEN
        if code == 10 or (code is not None and 200 <= code <= 299):
            return Problem.PERMISSION
        if code in (4, 17, 32, 341, 613) or (code is not None and 80000 <= code <= 80099):
            return Problem.RATE
        if code in (1, 2) or code is None or self.status == 0 or self.status >= 500:
            return Problem.DOWN
        return Problem.OBJECT

    def describe(self) -> str:
        """One line: the Graph error code and Meta's message (never the token)."""
        if self.status == 0:
            return f"no answer: {self.message}"
        if self.code is None:
            return f"HTTP {self.status}" + (f": {self.message}" if self.message else "")
        sub = f", subcode {self.subcode}" if self.subcode is not None else ""
        trace = f" (fbtrace_id {self.trace})" if self.trace else ""
        return f"Graph code {self.code}{sub}: {self.message}{trace}"

    def fix(self) -> str:
        """What a person does about it, in one line; "" when waiting is the fix."""
        problem = self.problem
        if problem is Problem.TOKEN:
            return EXPIRED_FIX
        if problem is Problem.PERMISSION:
            return PERMISSION_FIX
        return ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def classify(status: int, body: bytes) -> Answer:
    """An HTTP answer as the Graph API means it: its ``error`` object, or the data."""
    try:
        data: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return Answer(
            status,
            body,
            None,
            _int(err.get("code")) or -1,
            _int(err.get("error_subcode")),
            one_line(str(err.get("message") or err.get("type") or "error"), 300),
            one_line(str(err.get("fbtrace_id") or ""), 60),
        )
    if status == 200 and isinstance(data, dict):
        return Answer(200, body, data)
    note = "the answer is not a Graph API JSON object" if status == 200 else ""
    return Answer(status if status != 200 else 502, body, None, None, None, note)


def session(cfg: GraphConfig) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=HTTP_TIMEOUT,
        trust_env=not cfg.loopback,  # HTTPS_PROXY for Meta, never for a local stand-in
        headers={"User-Agent": f"leadtui/{__version__}"},
    )


async def get(
    http: aiohttp.ClientSession, cfg: GraphConfig, url: str, params: dict[str, str] | None
) -> Answer:
    """One GET; ``params`` None for a ``paging.next`` URL (it has them). Never raises."""
    query = None if params is None else {**params, "access_token": cfg.token.reveal()}
    try:
        async with http.get(url, params=query, allow_redirects=False) as resp:
            return classify(resp.status, await resp.read())
    except TimeoutError:
        return Answer(0, message=f"{cfg.host} did not answer within {HTTP_TIMEOUT.total:g} s")
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror or str(exc)
        return Answer(0, message=cfg.redact(f"cannot connect to {cfg.host}: {reason}"))
    except (aiohttp.ClientError, OSError) as exc:
        return Answer(0, message=cfg.redact(one_line(f"{type(exc).__name__}: {exc}", 300)))


async def get_lead(http: aiohttp.ClientSession, cfg: GraphConfig, leadgen_id: str) -> Answer:
    return await get(http, cfg, f"{cfg.base}/{leadgen_id}", {"fields": LEAD_FIELDS})


def leads_query(since: int) -> dict[str, str]:
    """The first page's query of ``/{form_id}/leads``: leads created after ``since``."""
    filtering = [{"field": "time_created", "operator": "GREATER_THAN", "value": int(since)}]
    return {
        "fields": LEAD_FIELDS,
        "filtering": json.dumps(filtering, separators=(",", ":")),
        "limit": str(PAGE_SIZE),
    }


def next_page(cfg: GraphConfig, answer: Answer) -> str | None:
    """The ``paging.next`` URL of a page, if there is one on the configured host."""
    paging = answer.data.get("paging") if isinstance(answer.data, dict) else None
    url = paging.get("next") if isinstance(paging, dict) else None
    return url if isinstance(url, str) and cfg.same_origin(url) else None


async def whoami(http: aiohttp.ClientSession, cfg: GraphConfig) -> Answer:
    return await get(http, cfg, f"{cfg.base}/me", {"fields": "id,name"})
