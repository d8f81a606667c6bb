"""The schema: its version, the migrations from every older one, and the schema lock.

Migrations go from version N to N+1, each inside the schema transaction. Add one entry per
schema change; never edit a released one.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime
from datetime import time as dtime
from typing import Any

import peewee

from leadtui._store.backends import READONLY_HINT, Backend, describe_url, first_line
from leadtui._store.database import Database
from leadtui._store.records import StoreError

pw: Any = peewee  # untyped, as in models.py

log = logging.getLogger("leadtui.store")

SCHEMA_VERSION = 9

# Indexes for the capture path's lookups that the models cannot declare (an expression, a
# partial index on a column the models index otherwise), created with a new database and by
# the migration to schema 5. Same DDL on SQLite and PostgreSQL.
CAPTURE_INDEXES = (
    # a reply from the lead's other phone (apply.REPLY_LOOKUPS["phone_alt"])
    "CREATE INDEX IF NOT EXISTS lead_phone_alt ON lead (phone_alt) WHERE phone_alt IS NOT NULL",
    # a reply known only by the buyer's name and the product (REPLY_LOOKUPS["name"])
    "CREATE INDEX IF NOT EXISTS lead_lower_name_product_key ON lead (lower(name), product_key)",
)

# The "unread" view and the unread count (schema 7): a partial index holds only the leads with
# a message waiting, so both read a handful of index entries at a million leads. Queries must
# say ``unread > 0`` literally (a bound parameter cannot prove the index's condition).
UNREAD_INDEX = "CREATE INDEX IF NOT EXISTS lead_unread ON lead (id) WHERE unread > 0"


def open_database(url: str, *, create: bool, create_folder: bool) -> Database:
    """Open (and create or migrate) the database at ``url``."""
    database = Database(Backend.open(url, create=create, create_folder=create_folder))
    try:
        prepare(database)
    except pw.OperationalError as exc:
        database.db.close()
        hint = READONLY_HINT if "readonly" in str(exc) else ""
        raise StoreError(
            f"cannot open the database {describe_url(url)}: {first_line(exc)}{hint}"
        ) from None
    except pw.DatabaseError as exc:
        database.db.close()
        raise database.backend.unusable(exc) from None
    return database


def prepare(d: Database) -> None:
    """Create the schema of a new database, or migrate an older one to this version."""
    with schema_lock(d):
        tables = set(d.db.get_tables())
        if "meta" not in tables:
            d.db.create_tables(list(d.m.all), safe=True)
            d.backend.create_search()
            create_capture_indexes(d)
            d.db.execute_sql(UNREAD_INDEX)
            d.m.Meta.insert(key="schema_version", value=str(SCHEMA_VERSION)).execute()
            d.m.Counter.insert(name="change", value=0).execute()
            return
        row = d.m.Meta.get_or_none(d.m.Meta.key == "schema_version")
        version = int(row.value) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the database {describe_url(d.url)} was written by a newer leadtui "
                f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade leadtui"
            )
        for step in range(version, SCHEMA_VERSION):
            log.info("migrating database schema %d -> %d", step, step + 1)
            MIGRATIONS[step](d)
            d.m.Meta.update(value=str(step + 1)).where(d.m.Meta.key == "schema_version").execute()


@contextlib.contextmanager
def schema_lock(d: Database) -> Iterator[None]:
    """Serialise schema creation between processes that start at the same moment."""
    with d.db.atomic():
        d.backend.lock_schema()
        yield


def _migrate_1_dedupe_indexes(d: Database) -> None:
    """Schema 2: index the phone/email + product dedupe lookup, which scanned the 48-hour
    window of leads (milliseconds per lead once a seller has thousands a day)."""
    for column in ("phone", "email"):
        d.db.execute_sql(
            f"CREATE INDEX IF NOT EXISTS lead_{column}_product_key ON lead ({column}, product_key)"
        )


def _migrate_2_phone_suffix_search(d: Database) -> None:
    """Schema 3: index phone numbers backwards too, so their last digits find the lead.

    PostgreSQL's search column is only dropped: schema 4 adds a column it reads, then creates
    it again. SQLite's search rows are written again, a batch of leads at a time.
    """
    d.backend.drop_search()
    d.backend.reindex_all(d.m.Lead)


def _migrate_3_search_messages(d: Database) -> None:
    """Schema 4: a buyer's later messages (replies, WhatsApp, a form sent again) find the lead."""
    if "messages_text" not in {c.name for c in d.db.get_columns("lead")}:
        d.db.execute_sql("ALTER TABLE lead ADD COLUMN messages_text TEXT")
    msg = d.m.LeadMessage
    rows = msg.select(msg.lead_id, msg.text).order_by(msg.lead_id, msg.id).tuples().iterator()
    for lead_id, group in itertools.groupby(rows, key=lambda row: int(row[0])):
        d.add_said(lead_id, [str(text) for _lead_id, text in group])  # a lead at a time
    d.backend.rebuild_search()


def create_capture_indexes(d: Database) -> None:
    for ddl in CAPTURE_INDEXES:
        d.db.execute_sql(ddl)


def _migrate_4_reply_indexes(d: Database) -> None:
    """Schema 5: index the reply lookups by the other phone and by name + product, which
    scanned the whole lead table for every reply that matched no lead by phone (a quarter
    of a second per reply at a million leads)."""
    create_capture_indexes(d)


def _migrate_5_outbox(d: Database) -> None:
    """Schema 6: the outbox, where notifications wait for the sender (DESIGN.md's invariant:
    everything that leaves leadtui is a row written in the same transaction as its cause)."""
    d.db.create_tables([d.m.Outbox], safe=True)


def _migrate_6_unread(d: Database) -> None:
    """Schema 7: a buyer writing again is news until someone opens the lead (``lead.unread``).

    Messages from before the upgrade count as read: the seller has seen them in the detail
    view, and lighting up every old reply at once would bury the new ones. Adding a column
    with a constant default rewrites no rows on SQLite or PostgreSQL.
    """
    if "unread" not in {c.name for c in d.db.get_columns("lead")}:
        d.db.execute_sql("ALTER TABLE lead ADD COLUMN unread INTEGER NOT NULL DEFAULT 0")
    d.db.execute_sql(UNREAD_INDEX)


def _migrate_7_reminders(d: Database) -> None:
    """Schema 8: reminders that ring. ``follow_up_ts`` (indexed) is the follow-up's time, next
    to the readable ``follow_up`` day; a day set before has its reminder at 10:00 that day in
    the process's zone (``ui.timezone``). ``alert`` records who was alerted for which due time."""
    if "follow_up_ts" not in {c.name for c in d.db.get_columns("lead")}:
        d.db.execute_sql("ALTER TABLE lead ADD COLUMN follow_up_ts DOUBLE PRECISION")
    lead = d.m.Lead
    days = lead.select(lead.follow_up).where(lead.follow_up.is_null(False)).distinct().tuples()
    for (day,) in list(days):
        try:
            ts = follow_up_ts_of(date.fromisoformat(str(day)))
        except ValueError:
            continue
        lead.update(follow_up_ts=ts).where(lead.follow_up == day).execute()
    d.db.execute_sql(FOLLOW_UP_INDEX)
    d.db.create_tables([d.m.Alert], safe=True)


def _migrate_8_contacted_index(d: Database) -> None:
    """Schema 9: index ``contacted_ts``. The stats screen's "contacted today" read the whole
    lead table (0.4 s on SQLite, 0.6-0.7 s on PostgreSQL at a million leads); with the index it
    is a 1 ms range, and the stats fit their 1 s budget on both databases."""
    d.db.execute_sql(CONTACTED_INDEX)


CONTACTED_INDEX = (  # the models' index of schema 9, by the name Peewee gives it
    "CREATE INDEX IF NOT EXISTS lead_contacted_ts ON lead (contacted_ts)"
)

FOLLOW_UP_INDEX = (  # the models' index of schema 8, by the name Peewee gives it
    "CREATE INDEX IF NOT EXISTS lead_follow_up_ts_status_owner ON lead (follow_up_ts, status, owner)"
)


def follow_up_ts_of(day: date) -> float:
    """When a follow-up set as a day alone rings: 10:00 local time that day."""
    return datetime.combine(day, dtime(10, 0)).timestamp()


MIGRATIONS: dict[int, Callable[[Database], None]] = {
    1: _migrate_1_dedupe_indexes,
    2: _migrate_2_phone_suffix_search,
    3: _migrate_3_search_messages,
    4: _migrate_4_reply_indexes,
    5: _migrate_5_outbox,
    6: _migrate_6_unread,
    7: _migrate_7_reminders,
    8: _migrate_8_contacted_index,
}
