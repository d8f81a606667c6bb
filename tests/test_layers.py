"""Layering: the core never imports Textual, and importing leadtui has no side effects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CORE = (
    "cli",
    "doctor",
    "config",
    "parser",
    "store",
    "capture",
    "sources",
    "importing",
    "imap",
    "ingest",
    "pull",
    "demo",
    "synth",
)


def test_core_modules_never_import_textual() -> None:
    code = (
        "import sys\n"
        + "".join(f"import leadtui.{name}\n" for name in CORE)
        + "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_importing_creates_no_files_or_threads(tmp_path: Path) -> None:
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "c"))
    env.update(XDG_DATA_HOME=str(tmp_path / "d"), XDG_STATE_HOME=str(tmp_path / "s"))
    code = (
        "import threading\n"
        + "".join(f"import leadtui.{name}\n" for name in CORE)
        + "import leadtui.app\n"
        + "print(threading.active_count())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "1"
    assert list(tmp_path.iterdir()) == []


def test_every_module_is_in_the_import_contracts() -> None:
    """A new module left out of pyproject.toml's contracts would escape them unseen."""
    import tomllib

    root = Path(__file__).parent.parent
    contracts = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers, forbidden = contracts["contracts"]
    in_layers = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    modules = {
        f"leadtui.{p.stem}"
        for p in (root / "leadtui").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    assert modules - in_layers == set()
    assert modules - set(forbidden["source_modules"]) == {"leadtui.store", "leadtui._store"}
