"""The CI switch: a missing integration server skips on a laptop and fails in CI."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


@pytest.mark.parametrize(("ci", "outcome"), [("", "skipped"), ("true", "error")])
def test_missing_server_skips_locally_and_fails_in_ci(
    tmp_path: Path, ci: str, outcome: str
) -> None:
    for name in ("conftest.py", "helpers.py", "dovecot_fixtures.py", "smtp_server.py"):
        (tmp_path / name).write_text(Path(__file__).with_name(name).read_text())
    (tmp_path / "test_x.py").write_text(
        textwrap.dedent(
            """
            def test_needs_pg(pg_url):
                pass
            """
        )
    )
    env = {"PATH": "/usr/bin:/bin", "CI": ci, "LEADTUI_TEST_PG_URL": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert f"1 {outcome}" in proc.stdout, proc.stdout
    assert "LEADTUI_TEST_PG_URL" in proc.stdout
