"""ExportersIndia's inquiry API as a pull source (facts from public integrations only).

``GET https://members.exportersindia.com/api-inquiry-detail.php?k=KEY&email=ACCOUNT_EMAIL&
date_from=YYYY-MM-DD`` answers a JSON list of the inquiries since that day, each with ``inq_id``
(public PHP integrations call it so; some use the ``my.exportersindia.com`` host). The rules
are :mod:`leadtui.channels.vendor_pull`'s; the mapping :mod:`leadtui.formats.exportersindia_api`'s.
leadtui does not read ExportersIndia's emails, so its leads are never "missed by email".
"""

from __future__ import annotations

from leadtui.capture import SourceFactory
from leadtui.channels import vendor_source
from leadtui.channels.vendor_pull import DayWindow, Vendor, VendorConfig
from leadtui.config import Check, Settings
from leadtui.formats import exportersindia_api
from leadtui.pull import Clock
from leadtui.store import Store

SETTINGS_HINT = (
    "set LEADTUI_EXPORTERSINDIA_KEY and LEADTUI_EXPORTERSINDIA_EMAIL "
    "(or key and email under [exportersindia])"
)


def _params(cfg: VendorConfig, window: DayWindow) -> dict[str, str]:
    return {"k": cfg.reveal_key(), **dict(cfg.account), "date_from": window.first.isoformat()}


VENDOR = Vendor(
    name="exportersindia",
    label="ExportersIndia",
    lead_source=exportersindia_api.SOURCE,
    min_interval=900.0,
    one_day=False,
    wrappers=exportersindia_api.WRAPPERS,
    is_item=exportersindia_api.is_inquiry,
    params=_params,
    settings_hint=SETTINGS_HINT,
    key_fix=(
        "copy the API key again from ExportersIndia's seller panel and check that "
        "LEADTUI_EXPORTERSINDIA_EMAIL is the account's email"
    ),
    url_env="LEADTUI_EXPORTERSINDIA_URL",
    emails_read=False,
)


def enabled(settings: Settings) -> bool:
    return bool(settings.exportersindia_key)


def config(settings: Settings) -> VendorConfig:
    return VendorConfig.build(
        VENDOR,
        url=settings.exportersindia_url,
        key=settings.exportersindia_key,
        account={"email": settings.exportersindia_email},
        interval=float(settings.exportersindia_interval_seconds),
        backfill_days=settings.exportersindia_backfill_days,
    )


def factory(settings: Settings, *, clock: Clock | None = None) -> SourceFactory:
    return vendor_source.factory(lambda: config(settings), VENDOR, clock=clock)


def check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    return vendor_source.doctor_lines(
        VENDOR, enabled(settings), lambda: config(settings), store, timeout
    )
