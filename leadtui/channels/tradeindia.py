"""TradeIndia's inquiry API as a pull source (facts from public integrations, not TradeIndia).

``GET https://www.tradeindia.com/utils/my_inquiry.html?userid=…&profile_id=…&key=…&from_date=
YYYY-MM-DD&to_date=YYYY-MM-DD`` with ``Accept: application/json``, as nilpatel42/tradeindia_connect
(``tradeindia_connect/api.py``) calls it: day by day (``from_date`` = ``to_date``), every 2 hours
from its scheduler; an empty body means no inquiries; the answer is a JSON list, which that
client also accepts wrapped in ``inquiries``, ``data``, ``results``, ``items`` or ``response``.
The rules (cursor, pace, backoff) are :mod:`leadtui.channels.vendor_pull`'s; the inquiry →
lead mapping is :mod:`leadtui.formats.tradeindia_api`'s.
"""

from __future__ import annotations

from leadtui.capture import SourceFactory
from leadtui.channels import vendor_source
from leadtui.channels.vendor_pull import DayWindow, Vendor, VendorConfig
from leadtui.config import Check, Settings
from leadtui.formats import tradeindia_api
from leadtui.pull import Clock
from leadtui.store import Store

SETTINGS_HINT = (
    "set LEADTUI_TRADEINDIA_USERID, LEADTUI_TRADEINDIA_PROFILE_ID and LEADTUI_TRADEINDIA_KEY "
    "(or userid, profile_id and key under [tradeindia])"
)


def _params(cfg: VendorConfig, window: DayWindow) -> dict[str, str]:
    return {
        **dict(cfg.account),
        "key": cfg.reveal_key(),
        "from_date": window.first.isoformat(),
        "to_date": window.last.isoformat(),
    }


VENDOR = Vendor(
    name="tradeindia",
    label="TradeIndia",
    lead_source="tradeindia",
    min_interval=1800.0,
    one_day=True,
    wrappers=tradeindia_api.WRAPPERS,
    is_item=tradeindia_api.is_inquiry,
    params=_params,
    settings_hint=SETTINGS_HINT,
    key_fix=(
        "copy userid, profile_id and key again from TradeIndia's My Inquiry API page "
        "(seller panel) into LEADTUI_TRADEINDIA_* or [tradeindia]"
    ),
    url_env="LEADTUI_TRADEINDIA_URL",
    emails_read=True,  # leadtui parses TradeIndia's inquiry emails (FORMATS 4)
)


def enabled(settings: Settings) -> bool:
    return bool(settings.tradeindia_key)


def config(settings: Settings) -> VendorConfig:
    return VendorConfig.build(
        VENDOR,
        url=settings.tradeindia_url,
        key=settings.tradeindia_key,
        account={
            "userid": settings.tradeindia_userid,
            "profile_id": settings.tradeindia_profile_id,
        },
        interval=float(settings.tradeindia_interval_seconds),
        backfill_days=settings.tradeindia_backfill_days,
    )


def factory(settings: Settings, *, clock: Clock | None = None) -> SourceFactory:
    return vendor_source.factory(lambda: config(settings), VENDOR, clock=clock)


def check(settings: Settings, store: Store | None, timeout: float) -> list[Check]:
    return vendor_source.doctor_lines(
        VENDOR, enabled(settings), lambda: config(settings), store, timeout
    )
