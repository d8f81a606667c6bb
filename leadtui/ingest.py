"""The HTTP ingest (placeholder: being built)."""

from __future__ import annotations

from typing import Any

from leadtui.capture import SourceFactory


def ingest_factory(settings: Any) -> SourceFactory:
    raise NotImplementedError("the HTTP ingest is not built yet")
