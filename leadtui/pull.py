"""The IndiaMART CRM pull source (placeholder: being built)."""

from __future__ import annotations

from typing import Any

from leadtui.capture import SourceFactory


def pull_factory(settings: Any) -> SourceFactory:
    raise NotImplementedError("the IndiaMART CRM pull is not built yet")


def check(settings: Any, store: Any) -> list[Any]:
    raise NotImplementedError("the IndiaMART CRM pull is not built yet")
