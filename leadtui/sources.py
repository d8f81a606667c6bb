"""The one list of capture sources: which the settings enable, how each starts, how doctor checks it.

``leadtui serve``, the TUI and ``leadtui doctor`` all read :data:`SOURCES`; nothing else decides
which sources run. A new channel is a module of its own (it imports :mod:`leadtui.capture`'s
types, never the reverse) plus one :class:`SourceSpec` here.

A spec's ``factory`` validates the settings when it is called and raises
:class:`~leadtui.config.ConfigError` for settings it cannot use; the source it makes is started
later, in the process that holds the capture lease. A spec's ``check`` gives ``leadtui doctor``'s
lines for that source whether or not it is enabled: a source that is off says how to turn it on.

The mailbox adapter lives here too: :mod:`leadtui.imap` watches a folder and knows nothing of
capture, so the glue between its sink protocol and the pipeline belongs to the registry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from leadtui import config
from leadtui.capture import HealthCallback, Pipeline, RawItem, Source, SourceFactory
from leadtui.config import Check, ConfigError, Settings
from leadtui.store import Health, OutboxRoute, Outcome, Store

if TYPE_CHECKING:
    from leadtui import imap

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Run:
    """What the command asks for beyond the settings: the demo inbox and its seed."""

    demo: bool = False
    demo_seed: int | None = None


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One capture source as the registry knows it."""

    name: str  # the name its health and doctor lines carry
    enabled: Callable[[Settings, Run], bool]
    factory: Callable[[Settings, Run], SourceFactory]
    check: Callable[[Settings, Store | None, float], list[Check]] | None = None


# --------------------------------------------------------------------------- the mailbox adapter


class StoreMailSink:
    """The mailbox watcher's sink: each mail through the pipeline, watermarks in sync state."""

    def __init__(self, store: Store, pipeline: Pipeline) -> None:
        self.store = store
        self.pipeline = pipeline
        self.last_outcome: Outcome | None = None

    def load_watermark(self, key: str) -> imap.Watermark | None:
        from leadtui.imap import Watermark  # noqa: PLC0415 - imapclient only when IMAP is used

        state = self.store.get_state(key)
        if not state:
            return None
        return Watermark(int(state["uidvalidity"]), int(state["last_uid"]))

    def store_mail(self, key: str, uid: int, raw: bytes) -> None:
        self.last_outcome = self.pipeline.accept(RawItem(raw, source=key, kind="email"))
        log.info(
            "%s: uid %d -> %s %s", key, uid, self.last_outcome.status, self.last_outcome.detail
        )

    def save_watermark(self, key: str, mark: imap.Watermark) -> None:
        self.store.set_state(key, {"uidvalidity": mark.uidvalidity, "last_uid": mark.last_uid})


@dataclass
class MailboxSource:
    """Runs :class:`leadtui.imap.MailboxWatcher` as a capture source."""

    settings: Settings
    store: Store
    pipeline: Pipeline
    report: HealthCallback
    name: str = "mailbox"

    def run(self, stop: threading.Event) -> None:
        from leadtui import imap  # noqa: PLC0415 - imapclient only when IMAP is used

        account = imap.ImapAccount.from_settings(self.settings)

        def on_state(state: imap.WatcherState) -> None:
            self.report(
                Health(
                    source="mailbox",
                    state=state.state,
                    detail=state.detail,
                    last_success_ts=state.last_success_at,
                    last_error=state.last_error,
                    next_retry_ts=state.next_retry_at,
                )
            )

        sink = StoreMailSink(self.store, self.pipeline)
        imap.MailboxWatcher(account, sink, on_state, stop).run()


def mailbox_factory(settings: Settings) -> SourceFactory:
    def make(store: Store, pipeline: Pipeline, report: HealthCallback) -> Source:
        return MailboxSource(settings, store, pipeline, report)

    return make


def no_password(settings: Settings) -> tuple[str, str]:
    """What is wrong with a mailbox that has no password, and what to set."""
    return (
        f"no password is set for the mailbox {settings.imap_user} on {settings.imap_host}, "
        "so leadtui cannot log in",
        "set LEADTUI_IMAP_PASSWORD (or password under [imap] in the config file, "
        "or the LEADTUI_IMAP_OAUTH_* settings for XOAUTH2)",
    )


def _mailbox_check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    del store
    if settings.imap_credentials_missing:
        return [Check("mailbox", False, *no_password(settings))]
    if not settings.imap_configured:
        where = settings.config_path or config.default_config_path()
        return [
            Check(
                "mailbox",
                False,
                "no mailbox configured, so no email leads are captured",
                f"set LEADTUI_IMAP_HOST, LEADTUI_IMAP_USER and LEADTUI_IMAP_PASSWORD, "
                f"or [imap] in {where} (leadtui init writes one)",
            )
        ]
    from leadtui import imap  # noqa: PLC0415 - imapclient only when a mailbox is set

    try:
        account = imap.ImapAccount.from_settings(settings)
    except ValueError as exc:
        return [Check("mailbox", False, str(exc), "fix LEADTUI_IMAP_SECURITY")]
    return [
        Check("mailbox", step.ok, f"{step.name}: {step.detail}", step.fix)
        for step in imap.check(account, timeout=timeout)
    ]


# --------------------------------------------------------------------------- the other sources


def _demo_factory(settings: Settings, run: Run) -> SourceFactory:
    del settings
    from leadtui.demo import demo_factory  # noqa: PLC0415

    return demo_factory(run.demo_seed)


def _ingest_factory(settings: Settings, run: Run) -> SourceFactory:
    del run
    from leadtui.ingest import ingest_factory  # noqa: PLC0415 - aiohttp only when serving

    return ingest_factory(settings)


def _ingest_check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    del timeout
    from leadtui.ingest import check  # noqa: PLC0415 - aiohttp only when checking HTTP

    return check(settings, store)


def _pull_factory(settings: Settings, run: Run) -> SourceFactory:
    del run
    from leadtui.pull import pull_factory  # noqa: PLC0415 - only with a CRM key

    return pull_factory(settings)


def _pull_check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    if not settings.indiamart_key:
        return [
            Check("crm pull", None, "off: set LEADTUI_INDIAMART_KEY to catch leads email misses")
        ]
    from leadtui import pull  # noqa: PLC0415

    return [
        Check("crm pull", item.ok, f"{item.name}: {item.detail}", item.fix)
        for item in pull.check(settings, store, timeout=timeout)
    ]


def _meta_factory(settings: Settings, run: Run) -> SourceFactory:
    del run
    from leadtui.channels.meta_leads import meta_factory  # noqa: PLC0415 - only with a token

    return meta_factory(settings)


def _meta_check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    from leadtui.channels.meta_leads import check  # noqa: PLC0415

    return check(settings, store, timeout)


def _gmail_factory(settings: Settings, run: Run) -> SourceFactory:
    del run
    from leadtui.channels.gmail import gmail_factory  # noqa: PLC0415 - only when enabled

    return gmail_factory(settings)


def _gmail_check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    from leadtui.channels.gmail_check import check  # noqa: PLC0415

    return check(settings, store, timeout)


def _justdial_factory(settings: Settings, run: Run) -> SourceFactory:
    del run
    from leadtui.channels.justdial import justdial_factory  # noqa: PLC0415 - aiohttp

    return justdial_factory(settings)


def _justdial_check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    del timeout
    from leadtui.channels.justdial import check  # noqa: PLC0415 - aiohttp

    return check(settings, store)


def _justdial_enabled(settings: Settings, run: Run) -> bool:
    del run
    return settings.http_enabled and bool(settings.justdial_token)


def _tradeindia_factory(settings: Settings, run: Run) -> SourceFactory:
    del run
    from leadtui.channels import tradeindia  # noqa: PLC0415 - aiohttp only with a key

    return tradeindia.factory(settings)


def _tradeindia_check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    from leadtui.channels import tradeindia  # noqa: PLC0415

    return tradeindia.check(settings, store, timeout)


def _exportersindia_factory(settings: Settings, run: Run) -> SourceFactory:
    del run
    from leadtui.channels import exportersindia  # noqa: PLC0415 - aiohttp only with a key

    return exportersindia.factory(settings)


def _exportersindia_check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    from leadtui.channels import exportersindia  # noqa: PLC0415

    return exportersindia.check(settings, store, timeout)


def _notify_factory(settings: Settings, run: Run) -> SourceFactory:
    del run
    from leadtui.outbox import sender_factory  # noqa: PLC0415

    return sender_factory(settings)


def _notify_check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    del timeout
    from leadtui.outbox import check  # noqa: PLC0415

    return check(settings, store)


def outbox_routes(settings: Settings) -> list[OutboxRoute]:
    """Which ``[[notify]]`` target wants which events: the capture service gives these to
    every store it opens, so a committed lead writes its outbox rows in its transaction."""
    from leadtui.outbox import routes  # noqa: PLC0415

    return routes(settings)


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("demo", lambda _s, run: run.demo, _demo_factory),
    SourceSpec(
        "mailbox",
        lambda s, _run: s.imap_configured,
        lambda s, _run: mailbox_factory(s),
        _mailbox_check,
    ),
    SourceSpec("http", lambda s, _run: s.http_enabled, _ingest_factory, _ingest_check),
    SourceSpec("crm pull", lambda s, _run: bool(s.indiamart_key), _pull_factory, _pull_check),
    SourceSpec("meta leads", lambda s, _run: s.meta_leads_enabled, _meta_factory, _meta_check),
    SourceSpec("gmail", lambda s, _run: s.gmail_enabled, _gmail_factory, _gmail_check),
    # JustDial's push arrives at the HTTP ingest; this source checks its token and health.
    SourceSpec("justdial", _justdial_enabled, _justdial_factory, _justdial_check),
    SourceSpec(
        "tradeindia",
        lambda s, _run: bool(s.tradeindia_key),
        _tradeindia_factory,
        _tradeindia_check,
    ),
    SourceSpec(
        "exportersindia",
        lambda s, _run: bool(s.exportersindia_key),
        _exportersindia_factory,
        _exportersindia_check,
    ),
    # The outbox sender: not a source of leads, but it runs under the capture lease as one.
    SourceSpec(
        "notify",
        lambda s, _run: bool(s.notify) or s.autoreply.enabled,
        _notify_factory,
        _notify_check,
    ),
)
"""Every source, in the order they start."""


def factories(
    settings: Settings,
    run: Run = Run(),
    *,
    on_error: Callable[[SourceSpec, Exception], None] | None = None,
) -> list[SourceFactory]:
    """The factories of the sources these settings enable, in start order.

    A source whose settings cannot be used raises (:class:`ConfigError`: ``leadtui serve`` stops
    with that line); with ``on_error`` the error is reported there and that source is left out,
    and the others start (the TUI shows the problem and keeps capturing what it can).
    """
    made: list[SourceFactory] = []
    for spec in SOURCES:
        if not spec.enabled(settings, run):
            continue
        try:
            made.append(spec.factory(settings, run))
        except Exception as exc:
            if on_error is None:
                raise
            on_error(spec, exc)
    return made


def checks(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    """``leadtui doctor``'s lines for every source, in registry order."""
    lines: list[Check] = []
    for spec in SOURCES:
        if spec.check is not None:
            lines.extend(spec.check(settings, store, timeout))
    return lines


class SettingsWatch:
    """Notices an edited config file, so a fixed password is used at once, without a restart.

    ``changed()`` is cheap (one ``stat``); it returns the settings read again when the file
    changed since the last look and they are valid, else None (a half-saved file is ignored
    until it parses, and the sources keep running with what they had).
    """

    def __init__(self, settings: Settings, reload: Callable[[], Settings]) -> None:
        self.reload = reload
        path = settings.config_path
        self.path = None if path is None else Path(path)
        self._seen = self._signature()

    def _signature(self) -> tuple[float, int] | None:
        if self.path is None:
            return None
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime, info.st_size)

    def changed(self) -> Settings | None:
        seen = self._signature()
        if seen == self._seen:
            return None
        self._seen = seen
        try:
            return self.reload()
        except ConfigError as exc:
            log.warning("the config file changed but cannot be used yet: %s", exc)
            return None
