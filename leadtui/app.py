"""The Textual app (placeholder: being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leadtui.config import Settings
    from leadtui.demo import DemoInfo


def run_tui(settings: Settings, *, demo: DemoInfo | None = None) -> int:
    raise SystemExit("leadtui: the lead table is not built yet")
