"""The ``leadtui`` command line, as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import FIXTURES

from leadtui import __version__, synth
from leadtui.cli import main, parse_since
from leadtui.store import Store

SAMPLES = FIXTURES / "samples"


def run(*args: str, db: Path | None = None, **kw: object) -> Result:
    argv = (["--db", str(db)] if db else []) + list(args)
    return CliRunner().invoke(main, argv, catch_exceptions=False, **kw)  # type: ignore[arg-type]


def test_help_and_version_from_the_installed_script() -> None:
    script = Path(sys.executable).with_name("leadtui")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"leadtui, version {__version__}"
    helptext = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for command in ("demo", "serve", "parse", "import", "list", "export", "doctor", "review"):
        assert command in helptext.stdout


def test_parse_shows_a_lead_in_plain_words() -> None:
    result = run("parse", str(SAMPLES / "email/07-buylead-one-line-specs.eml"))
    assert result.exit_code == 0
    assert "LEAD" in result.output
    assert "Deepak Sharma" in result.output
    assert "+919009800088" in result.output
    assert "Madhya Pradesh" in result.output


def test_parse_json_lines_carry_the_file_and_match_the_expected_output() -> None:
    files = sorted((SAMPLES / "email").glob("*.eml"))
    result = run("parse", "--json", *map(str, files))
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [r["file"] for r in lines] == [str(f) for f in files]
    for line, path in zip(lines, files, strict=True):
        expected = json.loads((SAMPLES / "expected" / f"{path.stem}.json").read_text())
        assert {k: v for k, v in line.items() if k != "file"} == expected[0]


def test_parse_json_payload_gives_one_line_per_lead() -> None:
    result = run("parse", "--json", str(SAMPLES / "payload/06-pull-success-2-leads.json"))
    assert [json.loads(x)["channel"] for x in result.output.splitlines()] == ["pull", "pull"]
    forced = run(
        "parse",
        "--json",
        "--channel",
        "push",
        str(SAMPLES / "payload/06-pull-success-2-leads.json"),
    )
    assert {json.loads(x)["channel"] for x in forced.output.splitlines()} == {"push"}


def test_parse_explains_a_failure_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"CODE": 401, "STATUS": "FAILURE", "MESSAGE": "Key is expired"}')
    result = run("parse", "--json", bad.as_posix())
    assert result.exit_code == 1
    line = json.loads(result.output)
    assert line["kind"] == "error"
    assert "Key is expired" in line["error"]
    assert line["file"] == bad.as_posix()


def test_parse_never_interprets_lead_text_as_markup(tmp_path: Path) -> None:
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"name": "[bold red]Evil[/] \x1b[31m", "phone": "9845600066"}))
    result = run("parse", lead.as_posix(), color=True)
    assert "[bold red]Evil[/]" in result.output
    assert "\x1b[31m" not in result.output


def test_import_everything_then_again_adds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "leads.db"
    first = run("import", str(SAMPLES / "email"), str(SAMPLES / "payload"), db=db)
    assert first.exit_code == 0, first.output
    assert "imported 25 items: 21 new leads" in first.output
    assert "2 replies, 3 ignored, 0 failed" in first.output
    again = run("import", str(SAMPLES / "email"), db=db)
    assert "imported 16 items: 0 new leads, 16 duplicate" in again.output
    with Store.open(str(db)) as store:
        assert store.count_leads() == 21


def test_import_mbox_and_maildir(tmp_path: Path) -> None:
    box = tmp_path / "leads.mbox"
    box.write_bytes(synth.mbox(random.Random(7), 30))
    db = tmp_path / "a.db"
    result = run("import", str(box), db=db)
    assert result.exit_code in (0, 1), result.output
    assert "imported 30 items" in result.output
    assert "imported 30 items: 0 new leads" in run("import", str(box), db=db).output

    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, path in enumerate(sorted((SAMPLES / "email").glob("0*.eml"))):
        shutil.copy(path, maildir / "new" / f"{i}.host:2,")
    result = run("import", str(maildir), db=tmp_path / "b.db")
    assert "imported 9 items: 9 new leads" in result.output


def test_import_reports_failures_and_review_and_reparse(tmp_path: Path) -> None:
    db = tmp_path / "leads.db"
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": "world"}')
    result = run("import", str(junk), db=db)
    assert result.exit_code == 1
    assert "1 failed" in result.output
    assert "leadtui review" in result.output
    review = run("review", db=db)
    assert "import" in review.output
    assert "leadtui reparse" in review.output
    again = run("reparse", "--all", db=db)
    assert again.exit_code == 1
    assert "failed" in again.output
    assert run("reparse", db=db).exit_code == 2  # neither an id nor --all


def test_list_filters_and_json_lines(tmp_path: Path) -> None:
    db = tmp_path / "leads.db"
    run("import", str(SAMPLES / "email"), str(SAMPLES / "payload"), db=db)
    rows = [json.loads(x) for x in run("list", "--json", db=db).output.splitlines()]
    assert len(rows) == 21
    assert {"id", "status", "owner", "first_seen_at", "name", "phone"} <= set(rows[0])
    found = run("list", "--json", "--search", "deepak", db=db).output.splitlines()
    assert [json.loads(x)["name"] for x in found] == ["Deepak Sharma"]
    assert len(run("list", "--json", "--limit", "3", db=db).output.splitlines()) == 3
    assert run("list", "--json", "--status", "won", db=db).output == ""
    table = run("list", "--search", "sunil", db=db, terminal_width=80)
    assert "Sunil Rao" in table.output
    assert run("list", "--search", "zzzz", db=db).output.strip() == "no leads match"
    bad = run("list", "--since", "last tuesday", db=db)
    assert bad.exit_code == 2
    assert "2d, 6h, today" in bad.output


def test_export_csv_defuses_formulas(tmp_path: Path) -> None:
    db = tmp_path / "leads.db"
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"name": '=HYPERLINK("http://x")', "phone": "9845600066"}))
    run("import", str(lead), db=db)
    out = tmp_path / "leads.csv"
    result = run("export", "--format", "csv", "-o", str(out), db=db)
    assert "exported 1 lead" in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["name"].startswith("'=")
    assert rows[0]["phone"] == "+919845600066"
    jsonl = run("export", "--format", "jsonl", db=db).output
    assert json.loads(jsonl)["name"] == '=HYPERLINK("http://x")'


def test_keys_add_prints_once_and_stores_a_hash(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    result = CliRunner().invoke(main, ["--config", str(cfg), "keys", "add", "website"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert key.startswith("ltk_")
    assert key not in cfg.read_text()
    listed = CliRunner().invoke(main, ["--config", str(cfg), "keys", "list"])
    assert listed.output.strip() == "website"
    removed = CliRunner().invoke(main, ["--config", str(cfg), "keys", "remove", "website"])
    assert removed.exit_code == 0
    bad = CliRunner().invoke(main, ["--config", str(cfg), "keys", "add", "no spaces"])
    assert bad.exit_code == 2


def test_init_writes_a_private_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    assert CliRunner().invoke(main, ["--config", str(cfg), "init"]).exit_code == 0
    assert "[imap]" in cfg.read_text()
    assert cfg.stat().st_mode & 0o077 == 0
    again = CliRunner().invoke(main, ["--config", str(cfg), "init"])
    assert again.exit_code == 2
    assert "exists already" in again.output


def test_doctor_names_each_problem_with_its_fix(tmp_path: Path) -> None:
    result = run("doctor", db=tmp_path / "leads.db")
    assert result.exit_code == 1  # no mailbox configured
    assert "✓ database" in result.output
    assert "✗ mailbox" in result.output
    assert "LEADTUI_IMAP_HOST" in result.output


def test_bad_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    notdb = tmp_path / "notes.txt"
    notdb.write_text("not a database\n" * 50)
    result = CliRunner().invoke(main, ["--db", str(notdb), "list"])
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("text", ["2d", "6h", "30m", "1w", "today", "yesterday", "2026-03-01"])
def test_since_accepts_what_people_type(text: str) -> None:
    assert parse_since(text) is not None


def test_pull_once_syncs_from_the_crm_api(tmp_path: Path) -> None:
    import time
    from datetime import date, timedelta

    from fake_indiamart import FakeIndiaMart

    since = (date.today() - timedelta(days=3)).isoformat()

    with FakeIndiaMart(interval=0) as api:
        api.add_lead(time.time() - 3600, SENDER_NAME="Asha Verma", QUERY_PRODUCT_NAME="Jute Bags")
        env = {"LEADTUI_INDIAMART_KEY": api.key, "LEADTUI_INDIAMART_URL": api.url}
        result = CliRunner().invoke(
            main, ["--db", str(tmp_path / "l.db"), "pull", "--once", "--since", since],
            env=env,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 new (email missed them)" in result.output
    assert api.key not in result.output
    listed = run("list", "--json", db=tmp_path / "l.db").output
    assert json.loads(listed)["name"] == "Asha Verma"


def test_pull_without_a_key_says_what_to_set(tmp_path: Path) -> None:
    result = run("pull", "--once", db=tmp_path / "l.db")
    assert result.exit_code == 2
    assert "LEADTUI_INDIAMART_KEY" in result.output


def test_a_big_import_parsed_in_a_second_process_equals_one_parsed_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadtui import cli

    box = tmp_path / "big.mbox"
    box.write_bytes(synth.mbox(random.Random(3), 1050))

    def leads(db: Path) -> list[tuple[str | None, str | None, str | None]]:
        rows = [json.loads(x) for x in run("list", "--json", db=db).output.splitlines()]
        return sorted((r["message_id"], r["name"], r["phone"]) for r in rows)

    parallel = run("import", str(box), db=tmp_path / "parallel.db")
    monkeypatch.setattr(cli, "PARALLEL_PARSE_FROM", 10**9)
    inline = run("import", str(box), db=tmp_path / "inline.db")
    assert parallel.output.splitlines()[0] == inline.output.splitlines()[0]
    assert "imported 1050 items" in parallel.output
    assert leads(tmp_path / "parallel.db") == leads(tmp_path / "inline.db")
    assert len(leads(tmp_path / "inline.db")) > 800
