"""The ``leadtui`` command line, as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import FIXTURES, need
from rich.cells import cell_len
from serve_process import LEADTUI

from leadtui import __version__, synth
from leadtui.cli import main, parse_since
from leadtui.store import LeadQuery, Store

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


def test_parse_reads_every_message_of_an_mbox(tmp_path: Path) -> None:
    box = tmp_path / "leads.mbox"
    box.write_bytes(synth.mbox(random.Random(7), 12))
    result = run("parse", "--json", str(box))
    lines = [json.loads(line) for line in result.output.splitlines()]
    labels = sorted({r["file"] for r in lines}, key=lambda label: int(label.rpartition("#")[2]))
    assert labels == [f"{box} #{n}" for n in range(1, 13)]
    assert sum(r["kind"] == "lead" for r in lines) > 1
    one = tmp_path / "saved.eml"  # saved from a mail client, with its "From " line
    one.write_bytes(
        b"From sender@example.in Mon Mar  2 10:41:07 2026\n"
        + (SAMPLES / "email/07-buylead-one-line-specs.eml").read_bytes()
    )
    assert [
        json.loads(x)["file"] for x in run("parse", "--json", str(one)).output.splitlines()
    ] == [str(one)]


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


def test_export_carries_notes_owner_and_follow_up(tmp_path: Path) -> None:
    from datetime import date

    db = tmp_path / "leads.db"
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"name": "Kavita", "phone": "9845600066"}))
    run("import", str(lead), db=db)
    with Store.open(str(db)) as store:
        lead_id = store.list_leads(LeadQuery())[0].id
        store.add_note(lead_id, "called, wants rates", actor="asha")
        store.add_note(lead_id, "sent the rate list", actor="asha")
        store.assign(lead_id, "ravi", actor="asha")
        store.set_follow_up(lead_id, date(2026, 12, 20), actor="asha")
    out = tmp_path / "leads.csv"
    run("export", "-o", str(out), db=db)
    row = next(csv.DictReader(io.StringIO(out.read_text())))
    assert row["notes"] == "called, wants rates | sent the rate list"
    assert (row["owner"], row["follow_up"]) == ("ravi", "2026-12-20")
    exported = json.loads(run("export", "--format", "jsonl", db=db).output)
    assert exported["note_texts"] == ["called, wants rates", "sent the rate list"]


def test_keys_add_prints_once_and_stores_a_hash(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    result = CliRunner().invoke(main, ["--config", str(cfg), "keys", "add", "website"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert key.startswith("ltk_")
    assert key not in cfg.read_text()
    listed = CliRunner().invoke(main, ["--config", str(cfg), "keys", "list"])
    assert listed.output.strip() == "website (ingest)"
    removed = CliRunner().invoke(main, ["--config", str(cfg), "keys", "remove", "website"])
    assert removed.exit_code == 0
    bad = CliRunner().invoke(main, ["--config", str(cfg), "keys", "add", "no spaces"])
    assert bad.exit_code == 2


def test_keys_add_keeps_the_service_config_readable_by_the_service(tmp_path: Path) -> None:
    # /etc/leadtui/config.toml: 0640, group leadtui; the admin runs 'sudo leadtui keys add'.
    cfg = tmp_path / "config.toml"
    cfg.write_text('[imap]\nhost = "imap.example.in"\n')
    cfg.chmod(0o640)
    owner = (4321, 4321) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(cfg, *owner)  # as root (CI), a file of another user, as the service's would be
    added = CliRunner().invoke(main, ["--config", str(cfg), "keys", "add", "web"])
    assert added.exit_code == 0
    after = cfg.stat()
    assert (after.st_mode & 0o777, after.st_uid, after.st_gid) == (0o640, *owner)
    assert "[http.api_keys]" in cfg.read_text()


def test_init_writes_a_private_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    assert CliRunner().invoke(main, ["--config", str(cfg), "init"]).exit_code == 0
    assert "[imap]" in cfg.read_text()
    assert cfg.stat().st_mode & 0o077 == 0
    again = CliRunner().invoke(main, ["--config", str(cfg), "init"])
    assert again.exit_code == 2
    assert "exists already" in again.output


def test_init_then_doctor_says_what_to_fill_in_and_creates_nothing(tmp_path: Path) -> None:
    cfg, db = tmp_path / "config.toml", tmp_path / "data" / "leads.db"
    assert CliRunner().invoke(main, ["--config", str(cfg), "init"]).exit_code == 0
    doctor = CliRunner().invoke(main, ["--config", str(cfg), "--db", str(db), "doctor"])
    assert "no mailbox configured" in doctor.output  # not a login with a placeholder
    assert "does not exist yet" in doctor.output
    assert not db.exists()
    assert not db.parent.exists()


def test_doctor_names_each_problem_with_its_fix(tmp_path: Path) -> None:
    run("list", db=tmp_path / "leads.db")  # the database exists
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
    from leadtui import importing

    box = tmp_path / "big.mbox"
    box.write_bytes(synth.mbox(random.Random(3), 1050))

    def leads(db: Path) -> list[tuple[str | None, str | None, str | None]]:
        rows = [json.loads(x) for x in run("list", "--json", db=db).output.splitlines()]
        return sorted((r["message_id"], r["name"], r["phone"]) for r in rows)

    parallel = run("import", str(box), db=tmp_path / "parallel.db")
    monkeypatch.setattr(importing, "PARALLEL_PARSE_FROM", 10**9)
    inline = run("import", str(box), db=tmp_path / "inline.db")
    assert parallel.output.splitlines()[0] == inline.output.splitlines()[0]
    assert "imported 1050 items" in parallel.output
    assert leads(tmp_path / "parallel.db") == leads(tmp_path / "inline.db")
    assert len(leads(tmp_path / "inline.db")) > 800


# --------------------------------------------------------------------------- what users hit


def one_line_error(result: Result, code: int) -> str:
    """The single line a failed command printed (no traceback), after checking its exit code."""
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("leadtui: "), result.output
    return lines[0]


def test_db_and_config_also_work_after_the_subcommand(tmp_path: Path) -> None:
    db, other = tmp_path / "leads.db", tmp_path / "other.db"
    run("import", str(SAMPLES / "email/07-buylead-one-line-specs.eml"), "--db", str(db))
    assert "Deepak Sharma" in run("list", "--json", "--db", str(db)).output
    # After the subcommand wins over before it.
    assert "Deepak Sharma" in run("--db", str(other), "list", "--db", str(db)).output
    assert run("--db", str(db), "list", "--db", str(other)).output.strip() == "no leads yet"

    cfg = tmp_path / "config.toml"
    assert run("keys", "add", "website", "--config", str(cfg)).exit_code == 0
    assert run("keys", "--config", str(cfg), "list").output.strip() == "website (ingest)"
    assert run("keys", "list", "--config", str(cfg)).output.strip() == "website (ingest)"
    assert "website" in cfg.read_text()
    helptext = run("export", "--help").output
    assert "--db URL" in helptext
    assert "--config FILE" in helptext


def test_an_unknown_database_url_is_refused_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_line_error(run("--db", "mysql://sales:hunter2@dbhost/leads", "list"), 2)
    assert "mysql://" in line
    assert "postgresql://" in line
    assert "sqlite:///" in line
    assert "hunter2" not in line
    assert list(tmp_path.iterdir()) == []


def test_a_database_in_a_missing_folder_is_an_error_but_the_default_folder_is_made(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    line = one_line_error(run("list", db=missing / "leads.db"), 3)
    assert str(missing) in line
    assert "does not exist" in line
    assert not (tmp_path / "no").exists()
    assert run("list").output.strip() == "no leads yet"  # the user data dir is created


def test_doctor_says_when_this_user_cannot_write_the_database(tmp_path: Path) -> None:
    folder = tmp_path / "team"
    folder.mkdir()
    db = folder / "leads.db"
    Store.open(str(db)).close()
    # Root may write anything; in a user namespace of its own it is an ordinary owner.
    prefix = ["unshare", "--user"] if os.geteuid() == 0 else []
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        done = subprocess.run(
            [*prefix, LEADTUI, "--db", str(db), "doctor"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "LEADTUI_HTTP_LISTEN": "off", "COLUMNS": "200"},
            check=False,
        )
    finally:
        folder.chmod(0o755)
    if prefix and "unshare" in done.stderr:
        need(f"cannot run as an ordinary user here: {done.stderr.strip()}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "✓ database" not in done.stdout
    said = " ".join(done.stdout.split())
    assert f"✗ database {db}: " in said
    assert "cannot write the file and its folder → " in said
    assert f"chmod g+w {db} {folder}" in said


def test_export_to_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "leads.csv"
    result = run("export", "--format", "csv", "-o", str(target), db=tmp_path / "leads.db")
    assert str(target) in one_line_error(result, 2)


def test_a_config_file_that_is_not_utf8_or_not_toml_is_one_line(tmp_path: Path) -> None:
    utf16 = tmp_path / "utf16.toml"
    utf16.write_text('[imap]\nhost = "imap.example.in"\n', encoding="utf-16")
    for args in (["list"], ["keys", "list"], ["keys", "add", "foo"], ["keys", "remove", "foo"]):
        line = one_line_error(run("--config", str(utf16), *args, db=tmp_path / "l.db"), 2)
        assert "UTF-8" in line

    bad = tmp_path / "bad.toml"
    bad.write_text('[imap\nhost = "x"\n[http.api_keys]\nfoo = "sha256:00"\n')
    for args in (["keys", "add", "foo"], ["keys", "remove", "foo"], ["keys", "list"]):
        line = one_line_error(run("--config", str(bad), *args), 2)
        assert "not valid TOML" in line
    assert "foo" in bad.read_text()


def test_a_listen_port_out_of_range_is_a_configuration_error(tmp_path: Path) -> None:
    env = {"LEADTUI_HTTP_LISTEN": "127.0.0.1:99999"}
    line = one_line_error(run("doctor", db=tmp_path / "l.db", env=env), 2)
    assert "LEADTUI_HTTP_LISTEN" in line
    assert "99999" in line


def test_init_where_the_config_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line_error(run("init", "--config", str(blocker / "config.toml")), 2)
    assert str(blocker) in line


def test_import_of_an_unreadable_input_is_one_line(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    (inputs / "looks-like.eml").mkdir(parents=True)  # a folder where a file was expected
    line = one_line_error(run("import", str(inputs), db=tmp_path / "l.db"), 1)
    assert "looks-like.eml" in line


def test_import_writes_nothing_to_stderr_but_problems(tmp_path: Path) -> None:
    result = run("import", str(SAMPLES / "email"), db=tmp_path / "leads.db")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout.startswith("imported 16 items")


MAILBOX_WITHOUT_PASSWORD = {
    "LEADTUI_IMAP_HOST": "imap.example.in",
    "LEADTUI_IMAP_USER": "sales@example.in",
    "LEADTUI_HTTP_LISTEN": "off",
}


def test_doctor_says_the_mailbox_password_is_not_set(tmp_path: Path) -> None:
    result = run("doctor", db=tmp_path / "l.db", env={**MAILBOX_WITHOUT_PASSWORD, "COLUMNS": "200"})
    assert result.exit_code == 1
    mailbox = next(x for x in result.output.splitlines() if x.startswith("✗ mailbox"))
    assert "no password is set" in mailbox
    assert "set LEADTUI_IMAP_PASSWORD" in result.output
    assert "refused" not in result.output


def test_doctor_fails_a_push_token_short_enough_to_guess(tmp_path: Path) -> None:
    port = {"LEADTUI_HTTP_LISTEN": "127.0.0.1:0", "COLUMNS": "200"}
    short = run("doctor", db=tmp_path / "l.db", env={**port, "LEADTUI_PUSH_TOKEN": "abc"})
    line = next(x for x in short.output.splitlines() if x.startswith("✗ push"))
    assert "shorter than 16 characters" in line
    assert "abc" not in short.output  # a secret, even a weak one, is never shown
    long = run("doctor", db=tmp_path / "l.db", env={**port, "LEADTUI_PUSH_TOKEN": "x" * 24})
    assert "✓ push" in long.output


def test_paths_shows_the_files_in_use(tmp_path: Path) -> None:
    cfg, db = tmp_path / "team.toml", tmp_path / "team.db"
    cfg.write_text("")
    by_env = run("paths", env={"LEADTUI_CONFIG": str(cfg), "LEADTUI_DB": str(db)}).output
    assert f"config file  {cfg}" in by_env
    assert f"database     {db}" in by_env
    by_flags = run("--config", str(cfg), "paths", "--db", "postgresql://u:hunter2@h/leads")
    assert f"config file  {cfg}" in by_flags.output
    assert "database     postgresql://u@h/leads" in by_flags.output
    assert "hunter2" not in by_flags.output


@pytest.mark.parametrize("columns", [None, "40", "60", "80", "200"])
def test_list_always_shows_id_and_status_in_full(tmp_path: Path, columns: str | None) -> None:
    db = tmp_path / "leads.db"
    run("import", str(SAMPLES / "email"), str(SAMPLES / "payload"), db=db)
    rows = [json.loads(x) for x in run("list", "--json", db=db).output.splitlines()]
    with Store.open(str(db)) as store:
        store.set_status(rows[0]["id"], "contacted")
    env = {"COLUMNS": columns} if columns else {}
    lines = run("list", db=db, env=env).output.rstrip("\n").splitlines()
    assert lines[0].split()[0] == "id"
    assert lines[0].split()[-1] == "status"
    table = lines[1:]
    assert [x.split()[0] for x in table] == [str(r["id"]) for r in rows]
    assert [x.split()[-1] for x in table] == ["contacted"] + [r["status"] for r in rows[1:]]
    assert all(cell_len(x) <= int(columns or 80) for x in lines)


def test_doctor_wraps_long_lines_at_words_under_the_detail(tmp_path: Path) -> None:
    output = run("doctor", db=tmp_path / "l.db", env={"COLUMNS": "80"}).output
    assert all(x[:1] in "✓✗·" or x.startswith(" " * 13) for x in output.splitlines()), output
    words = " ".join(output.split())
    assert "→ set LEADTUI_IMAP_HOST, LEADTUI_IMAP_USER and LEADTUI_IMAP_PASSWORD, or" in words


def test_a_missing_ca_file_is_a_configuration_error_naming_the_setting(tmp_path: Path) -> None:
    env = {
        "LEADTUI_IMAP_HOST": "imap.example.in",
        "LEADTUI_IMAP_USER": "sales@example.in",
        "LEADTUI_IMAP_CA_FILE": str(tmp_path / "nope.pem"),
    }
    line = one_line_error(run("doctor", db=tmp_path / "l.db", env=env), 2)
    assert "LEADTUI_IMAP_CA_FILE" in line
    assert "nope.pem" in line


def test_doctor_names_the_ca_file_when_it_goes_away_after_start(tmp_path: Path) -> None:
    from leadtui import imap

    account = imap.ImapAccount("127.0.0.1", 1, "sales", ca_file=str(tmp_path / "gone.pem"))
    [connect] = imap.check(account, timeout=2)
    assert (connect.name, connect.ok) == ("connect", False)
    assert "gone.pem" in connect.detail
    assert "LEADTUI_IMAP_CA_FILE" in connect.fix


def test_parse_refuses_a_device_or_a_pipe_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "leads.eml"
    os.mkfifo(fifo)  # nobody writes: reading it would wait for ever
    for name in ("/dev/zero", str(fifo)):
        result = CliRunner().invoke(main, ["parse", "--json", name])
        assert result.exit_code == 1
        assert "not a regular file" in json.loads(result.output)["error"]


def test_parse_shows_a_hostile_file_name_as_text(tmp_path: Path) -> None:
    hostile = tmp_path / "x\x1b]52;c;cm0gLXJmIH4=\x07.eml"
    hostile.write_bytes(
        (FIXTURES / "samples" / "email" / "07-buylead-one-line-specs.eml").read_bytes()
    )
    result = CliRunner().invoke(main, ["parse", str(hostile)])
    assert "\x1b" not in result.output
    assert "]52;c" in result.output  # shown as text, not sent to the terminal


def test_importing_a_still_failing_item_again_says_failed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"CODE": 401, "STATUS": "FAILURE", "MESSAGE": "Key is expired"}')
    db = tmp_path / "leads.db"
    first = CliRunner().invoke(main, ["--db", str(db), "import", str(bad)])
    again = CliRunner().invoke(main, ["--db", str(db), "import", str(bad)])
    for result in (first, again):
        assert result.exit_code == 1
        assert "1 failed" in result.output
    assert "still in the review queue" in again.output


def test_the_log_is_for_its_owner_alone(tmp_path: Path) -> None:
    from leadtui import config

    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"name": "Kavita", "phone": "9845600066"}))
    run("import", str(lead), db=tmp_path / "leads.db")  # logs to the state folder
    log = config.log_path()
    assert log.stat().st_mode & 0o777 == 0o600
    assert log.parent.stat().st_mode & 0o777 == 0o700


def test_serve_refuses_a_push_token_short_enough_to_guess(tmp_path: Path) -> None:
    env = {"LEADTUI_PUSH_TOKEN": "abc", "LEADTUI_HTTP_LISTEN": "127.0.0.1:0"}
    result = run("serve", db=tmp_path / "leads.db", env=env)
    assert result.exit_code == 2
    assert "shorter than 16 characters" in result.output
