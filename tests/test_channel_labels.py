"""Every channel's health line in the header starts with a name a seller knows.

The health rows carry each source's internal name (``meta leads``, ``exportersindia``); the
header shows a label (``Facebook leads``, ``ExportersIndia pull``). A new channel that forgets
its label shows its internal name to the seller: this test names the channel that did.
"""

from __future__ import annotations

import pytest

from leadtui import pull
from leadtui.channels import exportersindia, gmail, meta_sync, tradeindia
from leadtui.ingest import justdial
from leadtui.store import Health
from leadtui.widgets import display

NOW = 1_790_000_000.0

LABELS = {
    pull.SOURCE: "IndiaMART pull",
    meta_sync.SOURCE: "Facebook leads",
    justdial.HEALTH_SOURCE: "JustDial",
    tradeindia.VENDOR.name: "TradeIndia pull",
    exportersindia.VENDOR.name: "ExportersIndia pull",
    gmail.SOURCE: "Gmail",
    "notify": "notifications",
}


@pytest.mark.parametrize("source", list(LABELS))
def test_each_channel_has_a_friendly_label_in_the_header(source: str) -> None:
    line = display.health_line(Health(source, "key rejected", "set a new key"), NOW)
    assert line == f"{LABELS[source]}: key rejected"


def test_a_failing_channel_shows_what_happened_and_a_push_channel_its_last_lead() -> None:
    failed = Health(meta_sync.SOURCE, "error", "Graph code 10: permission missing")
    assert display.health_line(failed, NOW) == "Facebook leads: Graph code 10: permission missing"
    quiet = Health(justdial.HEALTH_SOURCE, "receiving", "last lead", last_success_ts=NOW - 180)
    assert display.health_line(quiet, NOW) == "JustDial: last lead 3 min ago"
