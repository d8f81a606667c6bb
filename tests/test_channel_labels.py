"""Every channel has a name a seller knows in the header, and its settings where a seller looks.

The health rows carry each source's internal name (``meta leads``, ``exportersindia``); the
header shows a label (``Facebook leads``, ``ExportersIndia pull``). A new channel that forgets
its label shows its internal name to the seller: this test names the channel that did.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leadtui import config, pull
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


# The setting that turns each channel on: in the sample config ``leadtui init`` writes (its
# section and key) and in the README's settings table (its environment variable).
TURNED_ON_BY = {
    "meta": ("page_token", "LEADTUI_META_PAGE_TOKEN"),
    "justdial": ("token", "LEADTUI_JUSTDIAL_TOKEN"),
    "tradeindia": ("key", "LEADTUI_TRADEINDIA_USERID"),
    "exportersindia": ("key", "LEADTUI_EXPORTERSINDIA_KEY"),
    "gmail": ("enable", "LEADTUI_GMAIL_ENABLE"),
}


@pytest.mark.parametrize("section", list(TURNED_ON_BY))
def test_each_channel_is_in_the_sample_config_and_the_readme_settings(section: str) -> None:
    key, env = TURNED_ON_BY[section]
    sample = config.SAMPLE_CONFIG
    assert f"\n[{section}]\n" in sample
    body = sample.split(f"\n[{section}]\n", 1)[1].split("\n[", 1)[0]
    assert f"# {key} = " in body, f"[{section}] {key} is not in the sample config"
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Settings", 1)[1].split("\n## ", 1)[0]
    assert f"`{env}`" in table, f"{env} is not in README's settings table"
