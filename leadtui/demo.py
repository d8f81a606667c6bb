"""``leadtui demo``: a throw-away database fed by a simulated inbox.

The simulated inbox writes synthetic IndiaMART and TradeIndia emails (``leadtui.synth``) and
hands their bytes to the real capture pipeline, exactly as the mailbox watcher does: raw item
first, then the parser, then the upsert. Nothing writes lead rows directly. A newcomer sees
a day of backlog at once and then a new lead every few seconds, replies from buyers of
earlier leads, the odd newsletter (ignored), and the HTTP ingest listening with a demo key.
"""

from __future__ import annotations

import logging
import random
import secrets
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from leadtui import config, synth
from leadtui.capture import HealthCallback, Pipeline, RawItem, Source, SourceFactory
from leadtui.store import Health, Store

log = logging.getLogger(__name__)

BACKLOG = 24
INTERVAL = (3.0, 7.0)


@dataclass
class DemoInfo:
    """What the demo prints before the TUI opens, and shows in its header."""

    directory: Path
    db_url: str
    http_url: str | None
    api_key: str | None
    push_token: str | None
    seed: int | None = None

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _free_port(host: str, preferred: int) -> int:
    """``preferred`` when it is free on ``host``, else any free port."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError(f"no free port on {host}")


def prepare(base: config.Settings) -> tuple[config.Settings, DemoInfo]:
    """Settings for a demo: a fresh database, no real mailbox, HTTP ingest with a demo key."""
    http_url: str | None = None
    listen = "off"
    if base.http_enabled:  # where LEADTUI_HTTP_LISTEN says, on another port if that one is taken
        host, preferred = base.http_host_port
        try:
            port = _free_port(host, preferred)
            shown = f"[{host}]" if ":" in host else host
            listen = f"{shown}:{port}"
            http_url = f"http://{listen}"
        except OSError:
            log.warning("demo: no free port for the HTTP ingest; it stays off")
    directory = Path(tempfile.mkdtemp(prefix="leadtui-demo-"))
    db_url = str(directory / "demo.db")
    api_key = config.new_api_key()
    push_token = secrets.token_urlsafe(16)
    settings = base.replace(
        db=db_url,
        imap_host="",
        imap_user="",
        http_listen=listen,
        api_keys=(config.ApiKey("demo", config.hash_api_key(api_key)),),
        api_keys_fixed=True,  # the user's config file has no say over the demo's key
        push_token=config.Secret(push_token),
        indiamart_key=config.Secret(""),
    )
    info = DemoInfo(directory, db_url, http_url, api_key if http_url else None, push_token)
    return settings, info


@dataclass
class SimulatedInbox:
    """A capture source that "receives" synthetic lead emails every few seconds."""

    pipeline: Pipeline
    report: HealthCallback
    rng: random.Random = field(default_factory=random.Random)
    backlog: int = BACKLOG
    interval: tuple[float, float] = INTERVAL
    name: str = "demo"
    _buyers: list[tuple[str, str | None, str, str]] = field(default_factory=list)

    def deliver(self, when: datetime | None = None) -> str:
        """Deliver one email through the pipeline; returns the outcome's status."""
        if self._buyers and self.rng.random() < 0.08:
            name, company, product, phone = self.rng.choice(self._buyers)
            mail = synth.reply_to(
                self.rng,
                name=name,
                company=company,
                product=product,
                phone=phone,
                when=when or _now(),
            )
        else:
            kind = self.rng.choices(
                ("enquiry", "export", "phone", "buylead", "tradeindia", "newsletter"),
                weights=(40, 5, 10, 25, 8, 3),
            )[0]
            mail = synth.generate(self.rng, kind, when or _now())
        outcome = self.pipeline.accept(RawItem(mail.raw, source="demo", kind="email"))
        expected = mail.expected
        if outcome.new_lead_ids and expected.get("phone") and expected.get("product"):
            self._buyers.append(
                (expected["name"], expected.get("company"), expected["product"], expected["phone"])
            )
        return outcome.status

    def run(self, stop: threading.Event) -> None:
        self.report(Health("demo", "delivering", "simulated inbox (synthetic emails)"))
        now = _now()
        # The backlog: the last day or so of mail, delivered oldest first as a mailbox would.
        ages = sorted((self.rng.uniform(5, 26 * 60) for _ in range(self.backlog)), reverse=True)
        for minutes in ages:
            if stop.is_set():
                return
            self.deliver(now - timedelta(minutes=minutes))
        while not stop.wait(self.rng.uniform(*self.interval)):
            try:
                self.deliver()
            except Exception:
                log.exception("demo: delivering a synthetic email failed")
        self.report(Health("demo", "stopped"))


def _now() -> datetime:
    return datetime.now().astimezone()


def demo_factory(seed: int | None = None) -> SourceFactory:
    """The simulated inbox as a capture source (``seed`` makes the emails repeatable)."""

    def make(store: Store, pipeline: Pipeline, report: HealthCallback) -> Source:
        del store
        return SimulatedInbox(pipeline, report, random.Random(seed))

    return make
