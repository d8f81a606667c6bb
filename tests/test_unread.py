"""A buyer writing again is news: a reply by email, a WhatsApp message from a known buyer or a
website form sent again with something new marks the lead unread until someone opens it.

The store on SQLite and the real PostgreSQL; the real app under Pilot, with messages arriving
through the real capture pipeline from another thread; the real ``leadtui list``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_app import (
    SIZE,
    Recorder,
    accept,
    cell,
    deliver,
    generic,
    lead_named,
    make_app,
    sample,
    select,
    started,
    until,
)
from test_cli import run
from test_store import _reply, ingest, make_lead
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import OptionList

from leadtui.app import LeadApp
from leadtui.capture import RawItem
from leadtui.screens.detail import DetailScreen
from leadtui.store import SCHEMA_VERSION, LeadQuery, Store

SAMPLES = Path(__file__).parent / "fixtures" / "samples"

# --------------------------------------------------------------------------- the store


@pytest.fixture
def store(db_url: str) -> Any:
    s = Store.open(db_url)
    yield s
    s.close()


def _unread(store: Store, lead_id: int) -> int:
    lead = store.get_lead(lead_id)
    assert lead is not None
    return lead.unread


def test_a_reply_makes_the_lead_unread_until_it_is_opened(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    other = ingest(store, make_lead(name="Other", phone="+919000000000", email=None,
                                    message_id="o@x")).lead_ids[0]  # fmt: skip
    assert _unread(store, lead_id) == 0
    raw_id, _ = store.add_raw(b"reply", source="test", kind="email")
    cursor = store.cursor()
    store.apply(raw_id, [_reply("Please share best rate.", messages=[
        "Please share best rate.", "Can you deliver by Friday?"])])  # fmt: skip
    # In the transaction that appended the messages: the change feed brings the lead unread.
    changed = store.changes_since(cursor).leads
    assert [(x.id, x.unread, x.messages_count) for x in changed] == [(lead_id, 2, 2)]
    assert [x.id for x in store.list_leads(LeadQuery(unread=True))] == [lead_id]
    assert store.count_leads(LeadQuery(unread=True)) == 1
    assert store.counts()["unread"] == 1
    assert store.matching_ids(LeadQuery(unread=True), [lead_id, other]) == {lead_id}
    found = store.get_lead(lead_id)
    assert found is not None
    assert found.to_json()["unread"] == 2
    assert store.latest_messages([lead_id, other])[lead_id].text == "Can you deliver by Friday?"

    cursor = store.cursor()
    assert store.mark_read(lead_id) is True
    # One change, so every viewer drops the marker; nothing else about the lead moved.
    after = store.changes_since(cursor).leads
    assert [(x.id, x.unread) for x in after] == [(lead_id, 0)]
    assert (after[0].last_action, after[0].updated_ts) == (changed[0].last_action,
                                                           changed[0].updated_ts)  # fmt: skip
    assert [e.action for e in store.events(lead_id)] == ["created", "reply"]
    assert store.list_leads(LeadQuery(unread=True)) == []
    assert store.counts()["unread"] == 0
    cursor = store.cursor()
    assert store.mark_read(lead_id) is False  # nothing unread: nothing written
    assert store.cursor() == cursor


def test_whatsapp_from_a_known_buyer_and_a_form_sent_again_are_unread(store: Store) -> None:
    known = ingest(store, make_lead()).lead_ids[0]
    chat = make_lead(source="whatsapp", channel="api", email=None, external_id=None,
                     message_id=None, product=None, message="Is it available?")  # fmt: skip
    assert ingest(store, chat).lead_ids == (known,)
    assert _unread(store, known) == 1
    form = make_lead(source="website", channel="api", phone="+919800000001", email=None,
                     message_id=None, message="Need 500 pavers")  # fmt: skip
    first = ingest(store, form)
    assert (first.status, _unread(store, first.lead_ids[0])) == ("new", 0)  # new, not a reply
    again = ingest(store, {**form, "message": "Can you deliver by Friday?"})
    assert (again.status, again.lead_ids) == ("reply", first.lead_ids)
    assert _unread(store, first.lead_ids[0]) == 1
    same_again = ingest(store, {**form, "message": "Can you deliver by Friday?"}, b"x")
    assert same_again.status == "duplicate"  # the same words again are not news
    assert _unread(store, first.lead_ids[0]) == 1
    assert {x.id for x in store.list_leads(LeadQuery(unread=True))} == {known, first.lead_ids[0]}


def test_the_sellers_own_messages_and_actions_never_make_a_lead_unread(store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    store.record_sent(lead_id, "whatsapp", "Namaste Sunil, our rate is attached.", "asha")
    store.record_sent(lead_id, "email to sunil.rao@example.com · default", "Rates — …", "asha")
    store.add_note(lead_id, "asked for 10,000 pcs rate", actor="asha")
    store.log_call(lead_id, "no answer", actor="asha")
    store.set_status(lead_id, "quoted", actor="asha")
    assert _unread(store, lead_id) == 0
    assert store.list_leads(LeadQuery(unread=True)) == []
    assert store.counts()["unread"] == 0


def test_a_schema_6_database_gets_unread_and_its_index(db_url: str) -> None:
    """An existing database (schema 6) is migrated: old replies count as read, new ones are
    unread, and the unread view has its index."""
    with Store.open(db_url) as s:
        lead_id = ingest(s, make_lead()).lead_ids[0]
        raw_id, _ = s.add_raw(b"old reply", source="test", kind="email")
        s.apply(raw_id, [_reply("An old reply")])
        s.db.execute_sql("DROP INDEX lead_unread")
        s.db.execute_sql("ALTER TABLE lead DROP COLUMN unread")
        s.m.Meta.update(value="6").where(s.m.Meta.key == "schema_version").execute()
    with Store.open(db_url) as s:
        assert s.m.Meta.get(s.m.Meta.key == "schema_version").value == str(SCHEMA_VERSION)
        assert "lead_unread" in {i.name for i in s.db.get_indexes("lead")}
        assert _unread(s, lead_id) == 0  # seen before the upgrade
        raw_id, _ = s.add_raw(b"new reply", source="test", kind="email")
        s.apply(raw_id, [_reply("Can you deliver by Friday?")])
        assert _unread(s, lead_id) == 1
        assert [x.id for x in s.list_leads(LeadQuery(unread=True))] == [lead_id]


# --------------------------------------------------------------------------- the TUI


@pytest.fixture
def early(tmp_path: Path) -> str:
    """The sample enquiries before any buyer wrote again (the replies arrive in the test)."""
    url = str(tmp_path / "leads.db")
    accept(url, [sample(f"{i:02d}") for i in (1, 5, 7, 8, 13)])
    accept(url, [generic(name="Asha Kulkarni", phone="9822012345", product="Garden Pavers",
                         message="Need 500 pavers")])  # fmt: skip
    return url


def _whatsapp(text: str) -> RawItem:
    body = {"source": "whatsapp", "name": "Sunil", "phone": "+919845600066", "message": text}
    return RawItem(json.dumps(body).encode(), source="test", kind="json", channel="api")


def _form_again(text: str) -> RawItem:
    return generic(name="Asha Kulkarni", phone="9822012345", product="Garden Pavers", message=text)


ARRIVALS = {
    "email reply": (lambda: sample("10"), "Sunil Rao", "Can you deliver by Friday?"),
    "whatsapp": (lambda: _whatsapp("Can you deliver by Friday?"), "Sunil Rao",
                 "Can you deliver by Friday?"),
    "form sent again": (lambda: _form_again("Can you deliver by Friday? We start on Monday, "
                                            "so the pavers must reach Pune before then"),
                        "Asha Kulkarni", "Can you deliver by Friday? We start on Monday, so the pavers…"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(ARRIVALS))
async def test_a_buyer_writing_again_rings_toasts_highlights_and_marks_the_row(
    early: str, kind: str
) -> None:
    make_item, buyer, words = ARRIVALS[kind]
    lead = lead_named(early, buyer)
    app = make_app(early, highlight_seconds=30)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert app.terminal_title == "leadtui"
        assert cell(app, lead.id, "name") == buyer
        heard = Recorder(app)
        outcome = (await deliver(early, [make_item()]))[0]
        assert (outcome.status, outcome.lead_ids) == ("reply", (lead.id,))
        await until(pilot, lambda: heard.toasts, "the toast")
        assert heard.toasts == [f"Reply from {buyer}: “{words}”"]
        assert heard.markup == [False]
        assert heard.bells == 1
        assert cell(app, lead.id, "name") == f"● {buyer}"
        assert app.table.is_highlighted(lead.id)
        assert "bold" in str(app.table.get_cell(str(lead.id), "name").style)
        await until(pilot, lambda: app.terminal_title == "(1) leadtui", "the title count")
        assert "unread 1" in str(app.top.render())
        await pilot.press("j")  # a key does not read the message: the count stays
        assert app.terminal_title == "(1) leadtui"


async def test_opening_the_lead_reads_it_and_the_unread_filter_gathers_replies(
    early: str,
) -> None:
    sunil = lead_named(early, "Sunil Rao")
    app = make_app(early)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("m")  # nothing unread yet
        await until(pilot, lambda: app.table.row_count == 0, "the empty unread view")
        assert "Unread messages" in str(app.lead_bar.render())
        await deliver(early, [sample("10")])
        # The reply brings its lead into the unread view; the other leads stay out.
        await until(pilot, lambda: app.table.ids == [sunil.id], "the replied lead in the view")
        await until(pilot, lambda: app.terminal_title == "(1) leadtui", "the title count")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail")
        with Store.open(early) as store:
            await until(pilot, lambda: _unread(store, sunil.id) == 0, "the lead read")
        await until(pilot, lambda: app.terminal_title == "leadtui", "the count gone")
        await pilot.press("escape")
        await until(pilot, lambda: app.table.row_count == 0, "the read lead leaving the view")
        await pilot.press("0")
        await until(pilot, lambda: sunil.id in app.table.ids, "all leads")
        assert cell(app, sunil.id, "name") == "Sunil Rao"
        assert "unread" not in str(app.top.render())


async def test_a_reply_and_a_new_lead_together_ring_once_with_one_toast(early: str) -> None:
    app = make_app(early)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        heard = Recorder(app)
        await deliver(early, [sample("06"), sample("10")])
        await until(pilot, lambda: heard.toasts, "the toast")
        await pilot.pause(0.4)  # a second toast or bell would come within the burst
        assert heard.bells == 1
        assert heard.toasts == [
            "1 new lead, 1 reply. Latest: Reply from Sunil Rao: “Can you deliver by Friday?”"
        ]


async def test_a_hostile_reply_stays_plain_text_in_the_toast(early: str) -> None:
    app = make_app(early)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        heard = Recorder(app)
        await deliver(early, [_whatsapp("\x1b]2;pwned\x07[bold red]Pay[/] now\x1b[2J")])
        await until(pilot, lambda: heard.toasts, "the toast")
        assert heard.toasts == ["Reply from Sunil Rao: “]2;pwned[bold red]Pay[/] now[2J”"]
        assert heard.markup == [False]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_reading_a_lead_in_one_viewer_clears_it_in_the_other(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = str(tmp_path / "team.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    accept(url, [sample("01"), sample("07")])
    sunil = lead_named(url, "Sunil Rao")
    one, two = make_app(url), make_app(url)
    two.actor = "ravi"
    async with one.run_test(size=SIZE) as p1, two.run_test(size=SIZE) as p2:
        await started(p1)
        await started(p2)
        heard = Recorder(two)
        await deliver(url, [sample("10")])
        for pilot, app in ((p1, one), (p2, two)):
            await until(pilot, lambda app=app: cell(app, sunil.id, "name") == "● Sunil Rao",
                        "the marker in both viewers")  # fmt: skip
            await until(pilot, lambda app=app: app.terminal_title == "(1) leadtui", "the count")
        await until(p2, lambda: heard.toasts, "the toast in the other viewer")
        assert heard.toasts == ["Reply from Sunil Rao: “Can you deliver by Friday?”"]
        await select(p1, one, sunil.id)
        await p1.press("enter")  # asha opens it
        await until(p2, lambda: cell(two, sunil.id, "name") == "Sunil Rao", "ravi's marker gone")
        await until(p2, lambda: two.terminal_title == "leadtui", "ravi's count gone")
        assert heard.bells == 1  # reading is not news


async def _detail_of_a_repeat_buyer(pilot: Pilot[Any], app: LeadApp, lead_id: int) -> DetailScreen:
    await started(pilot)
    await select(pilot, app, lead_id)
    await pilot.press("enter")
    screen = await until(
        pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen, "the detail"
    )
    await until(pilot, lambda: screen.details is not None, "the details")
    return screen


async def test_home_and_end_move_the_whole_detail_page_whatever_has_the_focus(
    early: str,
) -> None:
    email_lead = lead_named(early, "Sunil Rao").id  # the email, with its long original
    accept(early, [generic(name="Sunil Rao", phone="+919845600066", product="Solid Blocks")])
    app = make_app(early)
    async with app.run_test(size=(100, 24)) as pilot:
        screen = await _detail_of_a_repeat_buyer(pilot, app, email_lead)
        body = screen.query_one("#detail-body", VerticalScroll)
        await until(pilot, lambda: body.max_scroll_y > 20, "a page longer than the screen")
        await pilot.press("e")  # the buyer's other enquiries take the focus
        await until(pilot, lambda: isinstance(app.focused, OptionList), "the list focused")
        await pilot.press("end")
        await until(pilot, lambda: body.scroll_y == body.max_scroll_y, "the bottom")
        await pilot.press("home")
        await until(pilot, lambda: body.scroll_y == 0, "the top")
        await pilot.press("pagedown", "pagedown")  # the page keys scroll the page again
        await until(pilot, lambda: body.scroll_y > 0, "paging down")
        await pilot.press("home")
        await until(pilot, lambda: body.scroll_y == 0, "the top again")


# --------------------------------------------------------------------------- leadtui list


def test_list_json_shows_the_unread_state_and_list_marks_it(tmp_path: Path) -> None:
    db = tmp_path / "leads.db"
    run("import", str(SAMPLES / "email"), db=db)
    rows = {
        r["name"]: r for r in map(json.loads, run("list", "--json", db=db).output.split("\n")[:-1])
    }
    assert (rows["Sunil Rao"]["unread"], rows["Priya Nair"]["unread"]) == (2, 1)
    assert rows["Deepak Sharma"]["unread"] == 0
    only = [
        json.loads(x)["name"]
        for x in run("list", "--json", "--unread", db=db).output.split("\n")[:-1]
    ]
    assert sorted(only) == ["Priya Nair", "Sunil Rao"]
    table = run("list", db=db, env={"COLUMNS": "120"}).output
    assert "● Sunil Rao" in table
    assert "● Deepak Sharma" not in table
    assert "Deepak Sharma" in table
    with Store.open(str(db)) as store:
        store.mark_read(rows["Sunil Rao"]["id"])
    after = {
        r["name"]: r["unread"]
        for r in map(json.loads, run("list", "--json", db=db).output.split("\n")[:-1])
    }
    assert (after["Sunil Rao"], after["Priya Nair"]) == (0, 1)
    assert "● Sunil Rao" not in run("list", db=db, env={"COLUMNS": "120"}).output
    assert run("list", "--unread", "--search", "sunil", db=db).output.strip() == "no leads match"
