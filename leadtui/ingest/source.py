"""The HTTP ingest as a capture source: it listens only while this process holds the capture.

:class:`IngestSource` runs the aiohttp app of :mod:`leadtui.ingest.routes` in its own event
loop, with the group-commit writer and the reader threads, reports its health (listening, or
why not) and stops within a second of being told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web

from leadtui.capture import HealthCallback, Pipeline, Source, SourceFactory
from leadtui.config import ConfigError, Settings
from leadtui.ingest.checks import PUSH_TOKEN_MIN
from leadtui.ingest.connections import (
    Connections,
    Site,
    Throttle,
    connection_cap,
    loop_exception_handler,
)
from leadtui.ingest.routes import Ingest
from leadtui.ingest.writer import Writer
from leadtui.store import Health, Store

log = logging.getLogger("leadtui.ingest")  # one logger for the HTTP source, as before the split

LISTEN_RETRY = 5.0  # seconds between attempts to bind a busy port


@dataclass
class IngestSource:
    """The HTTP endpoint as a capture source: it listens only while this process captures."""

    settings: Settings
    store: Store
    pipeline: Pipeline
    report: HealthCallback
    name: str = "http"
    url: str | None = None  # http://host:port once listening (the real port when 0 was asked)

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set; return within a second of it. Never raises."""
        try:
            asyncio.run(self._serve(stop))
        except Exception as exc:
            log.exception("ingest: the HTTP endpoint failed")
            self.report(
                Health(
                    "http",
                    "error",
                    "the HTTP endpoint failed; see the log",
                    last_error=str(exc)[:200],
                )
            )
            stop.wait()
        finally:
            self.url = None

    async def _serve(self, stop: threading.Event) -> None:
        stopping = bridge(stop)
        try:
            host, port = self.settings.http_host_port
        except ConfigError as exc:
            self.report(Health("http", "error", str(exc), last_error=str(exc)))
            await stopping.wait()
            return
        loop = asyncio.get_running_loop()
        # The loop's own errors (accept out of descriptors) once a minute, not per attempt.
        loop.set_exception_handler(loop_exception_handler(Throttle()))
        connections = Connections(connection_cap())
        writer = Writer(self.pipeline, loop)
        readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest-read")
        ingest = Ingest(self.settings, self.store, writer, readers, report=self.report)
        runner = web.AppRunner(
            ingest.app(), access_log=None, handle_signals=False, shutdown_timeout=0.3
        )
        writer.start()
        await runner.setup()
        try:
            while not stopping.is_set() and not await self._listen(runner, host, port, connections):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), LISTEN_RETRY)
            await stopping.wait()
        finally:
            self.url = None
            await runner.cleanup()  # stops listening, gives requests in flight 0.3 s
            await loop.run_in_executor(None, writer.stop, 0.4)
            readers.shutdown(wait=False, cancel_futures=True)

    async def _listen(
        self, runner: web.AppRunner, host: str, port: int, connections: Connections
    ) -> bool:
        site = Site(runner, host, port, connections)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno in {98, 48, 10048}:  # EADDRINUSE on Linux, macOS, Windows
                detail = f"port {port} in use: set LEADTUI_HTTP_LISTEN"
            else:
                detail = f"cannot listen on {host}:{port}: {exc.strerror}; set LEADTUI_HTTP_LISTEN"
            log.warning("ingest: %s", detail)
            self.report(
                Health(
                    "http",
                    "error",
                    detail,
                    last_error=detail,
                    next_retry_ts=time.time() + LISTEN_RETRY,
                )
            )
            return False
        bound = runner.addresses[0] if runner.addresses else (host, port)
        shown = f"[{bound[0]}]" if ":" in str(bound[0]) else str(bound[0])
        self.url = f"http://{shown}:{bound[1]}"
        channels = ["leads"]
        if self.settings.push_token:
            channels.append("IndiaMART push")
        if self.settings.twilio_auth_token or self.settings.meta_app_secret:
            channels.append("WhatsApp")
        if self.settings.justdial_token:
            channels.append("JustDial")
        log.info("ingest: listening on %s (at most %d connections)", self.url, connections.cap)
        self.report(
            Health(
                "http",
                "listening",
                f"{self.url} ({', '.join(channels)})",
                last_success_ts=time.time(),
            )
        )
        return True


def bridge(stop: threading.Event) -> asyncio.Event:
    """An asyncio event set as soon as the capture service sets ``stop`` (from its thread)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def watch() -> None:
        stop.wait()
        with contextlib.suppress(RuntimeError):  # the loop has ended already
            loop.call_soon_threadsafe(stopping.set)

    threading.Thread(target=watch, name="ingest-stop", daemon=True).start()
    return stopping


def ingest_factory(settings: Settings) -> SourceFactory:
    """The capture source factory for the HTTP ingest (the source registry calls it).

    Raises ConfigError for a push token short enough to guess: its URL is the only
    credential IndiaMART's push has, so ``leadtui serve`` refuses to start with one.
    """
    token = settings.push_token.reveal()
    if token and len(token) < PUSH_TOKEN_MIN:
        raise ConfigError(
            f"LEADTUI_PUSH_TOKEN is shorter than {PUSH_TOKEN_MIN} characters, and the push URL "
            "is its only credential: use a long random one (leadtui doctor shows how)"
        )

    def make(store: Store, pipeline: Pipeline, report: HealthCallback) -> Source:
        return IngestSource(settings, store, pipeline, report)

    return make
