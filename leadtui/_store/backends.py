"""SQLite or PostgreSQL: every difference between the two, decided once when a store opens.

:meth:`Backend.open` reads the URL and returns a :class:`SqliteBackend` or a
:class:`PostgresBackend` (as Peewee has ``SqliteDatabase`` and ``PostgresqlDatabase``); the
rest of the store calls its methods and never asks which one it has. Here: URLs, opening the
database (WAL, pragmas, a shared folder's permissions), SQL placeholders, the change
notification, the search index (its DDL, its rows, its queries), the lease's clock and the
change waiter.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

import peewee

from leadtui._store.records import SEARCH_FIELDS, LeadQuery, StoreError
from leadtui._store.search import PG_SEARCH, fts_query, pg_tsquery, search_body
from leadtui._store.waiters import ChangeWaiter, PgWaiter, SqliteWaiter
from leadtui.config import unsupported_db_scheme

pw: Any = peewee  # untyped, as in models.py

READONLY_HINT = "; check that this user may write it and its folder (leadtui doctor shows how)"
# A capture batch's search rows, held back to be inserted together (apply.Batch.search).
Held = dict[int, str] | None
CHANNEL = "leadtui_changes"  # PostgreSQL: what writers NOTIFY and waiters LISTEN to
INSERT_FTS_SQL = "INSERT INTO lead_fts(rowid, body) VALUES (?, ?)"


# --------------------------------------------------------------------------- URLs


def first_line(exc: BaseException) -> str:
    """An exception's message without the SQL and caret lines a driver appends."""
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> str:
    if url.startswith("sqlite:///"):
        return unquote(url[len("sqlite:///") :]) or ":memory:"
    if url.startswith("sqlite://"):
        return unquote(url[len("sqlite://") :]) or ":memory:"
    return url


def check_url(url: str) -> None:
    """Refuse a URL of another database (``mysql://…``) instead of making a file of that name."""
    if scheme := unsupported_db_scheme(url):
        raise StoreError(
            f"leadtui cannot use a {scheme}:// database; set --db / LEADTUI_DB to "
            "a file path, sqlite:///path or postgresql://user@host/dbname"
        )


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL and for ``:memory:``."""
    if is_postgres_url(url):
        return None
    path = sqlite_path(url)
    return None if path == ":memory:" else Path(path).expanduser()


def describe_url(url: str) -> str:
    """The URL without a password, for messages."""
    if is_postgres_url(url):
        parsed = urlparse(url)
        netloc = parsed.hostname or ""
        if parsed.username:
            netloc = f"{parsed.username}@{netloc}"
        if parsed.port:
            netloc += f":{parsed.port}"
        return f"postgresql://{netloc}{parsed.path}"
    return sqlite_path(url)


# --------------------------------------------------------------------------- backends


class Backend:
    """One open database's dialect: what the store does differently on SQLite and PostgreSQL."""

    name: ClassVar[str]

    def __init__(self, db: Any, url: str) -> None:
        self.db = db
        self.url = url

    @staticmethod
    def open(url: str, *, create: bool, create_folder: bool) -> Backend:
        """The backend for ``url``, its database opened (connections come on first use)."""
        check_url(url)
        if is_postgres_url(url):
            return PostgresBackend.connect(url)
        return SqliteBackend.connect(url, create=create, create_folder=create_folder)

    # ------------------------------------------------------------------ SQL

    def sql(self, text: str, params: Sequence[Any] = ()) -> Any:
        """Run hand-written SQL (``?`` placeholders) on this thread's connection."""
        return self.db.execute_sql(text, tuple(params))

    def sql_many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """:meth:`sql` once per row of parameters, in one call to the driver."""
        cursor = self.db.cursor()
        try:
            with pw.__exception_wrapper__:  # driver errors as Peewee's, as execute_sql does
                cursor.executemany(text, [tuple(r) for r in rows])
        finally:
            cursor.close()

    def notify(self, value: int) -> None:
        """Tell waiting viewers that change ``value`` commits with this transaction."""

    def lock_schema(self) -> None:
        """Serialise schema creation between processes (inside the schema transaction)."""

    def lost_connection(self, error: str) -> bool:
        """Whether a failed write (its lowercased error) means the connection is gone."""
        return False

    def now(self) -> float:
        """The clock of the lease, so that processes on several machines agree."""
        return time.time()

    def unusable(self, exc: Exception) -> StoreError:
        """The error for a database that opened but cannot be used."""
        return StoreError(
            f"the file {describe_url(self.url)} is not a leadtui database ({first_line(exc)}); "
            "check --db"
        )

    # ------------------------------------------------------------------ search

    def create_search(self) -> None:
        raise NotImplementedError

    def drop_search(self) -> None:
        """Drop a search index computed from the lead's columns (before they change)."""

    def rebuild_search(self) -> None:
        """Compute a search index from the lead's columns again (after they changed)."""

    def index_search(
        self, lead_id: int, values: dict[str, Any], pending: Held = None, *, new: bool = False
    ) -> None:
        """(Re)index a lead's search text. ``pending``: a capture batch's held-back rows."""

    def reindex(self, lead: Any, lead_id: int, pending: dict[int, str] | None) -> None:
        """Index a lead's search text again from its row (after a merge changed it)."""

    def reindex_all(self, lead: Any) -> None:
        """Index every lead's search text again from its row (a migration)."""

    def search_filter(self, q: Any, lead: Any, text: str) -> Any:
        raise NotImplementedError

    def first_page(self, q: Any, lead: Any, query: LeadQuery) -> list[tuple[Any, ...]]:
        """A page of leads newest first (``q`` filtered already)."""
        return list(q.order_by(lead.id.desc()).limit(query.limit).tuples())

    def waiter(self) -> ChangeWaiter:
        raise NotImplementedError


class SqliteBackend(Backend):
    """A SQLite file in WAL mode; search through an FTS5 table the store writes row by row."""

    name = "sqlite"

    @classmethod
    def connect(cls, url: str, *, create: bool, create_folder: bool) -> SqliteBackend:
        path = sqlite_path(url)
        if path != ":memory:":
            file = Path(path).expanduser()
            parent = file.parent
            if create and not create_folder and not parent.is_dir():
                raise StoreError(
                    f"the folder {parent} for the database {path} does not exist; "
                    "create it, or check --db / LEADTUI_DB"
                )
            if create:
                try:
                    parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"cannot create the folder {parent} for the database: {exc.strerror}"
                    ) from None
                if not file.exists():
                    _create_sqlite_file(file)
            elif not file.exists():
                raise StoreError(
                    f"no database at {path}; run leadtui once to create it, or check --db"
                )
            path = str(file)
            _use_wal(path)
        db = pw.SqliteDatabase(
            path,
            pragmas={  # WAL is set by _use_wal: it stays with the file
                "synchronous": "normal",
                "foreign_keys": 1,
                "busy_timeout": 10_000,
                "cache_size": -16_000,
                "temp_store": "memory",
            },
            lock_type="IMMEDIATE",
            check_same_thread=False,
            timeout=10,
        )
        return cls(db, url)

    def create_search(self) -> None:
        self.db.execute_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS lead_fts USING fts5("
            "body, tokenize = 'unicode61 remove_diacritics 2')"
        )

    def index_search(
        self, lead_id: int, values: dict[str, Any], pending: Held = None, *, new: bool = False
    ) -> None:
        body = search_body(values)
        if pending is not None and (new or lead_id in pending):
            pending[lead_id] = body  # its row is inserted with the batch's others
            return
        if not new:
            self.db.execute_sql("DELETE FROM lead_fts WHERE rowid = ?", (lead_id,))
        self.db.execute_sql(INSERT_FTS_SQL, (lead_id, body))

    def reindex(self, lead: Any, lead_id: int, pending: dict[int, str] | None) -> None:
        if (values := search_values(lead, lead_id)) is not None:
            self.index_search(lead_id, values, pending)

    def reindex_all(self, lead: Any) -> None:
        fields = ("name", "company", "phone", "email", "product", "city", "message")
        last = 0
        while True:  # in batches, so a big database never sits in memory
            rows = list(
                lead.select(lead.id, *(getattr(lead, f) for f in fields))
                .where(lead.id > last)
                .order_by(lead.id)
                .limit(5000)
                .tuples()
            )
            if not rows:
                return
            for row in rows:
                self.index_search(row[0], dict(zip(fields, row[1:], strict=True)))
            last = rows[-1][0]

    def search_filter(self, q: Any, lead: Any, text: str) -> Any:
        match = fts_query(text)
        if not match:
            return q
        ids = pw.SQL("(SELECT rowid FROM lead_fts WHERE lead_fts MATCH ?)", (match,))
        return q.where(lead.id.in_(ids))

    def waiter(self) -> ChangeWaiter:
        return SqliteWaiter(str(self.db.database))


class PostgresBackend(Backend):
    """PostgreSQL: ``%s`` placeholders, NOTIFY for viewers, a generated tsvector for search."""

    name = "postgres"
    SEARCH_WINDOW: ClassVar[int] = 50_000  # newest leads a search walks by id

    def __init__(self, db: Any, url: str) -> None:
        super().__init__(db, url)
        self._translated: dict[str, str] = {}

    @classmethod
    def connect(cls, url: str) -> PostgresBackend:
        db = pw.PostgresqlDatabase(
            url.replace("postgres://", "postgresql://", 1),
            autoconnect=True,
            connect_timeout=10,
            prefer_psycopg3=True,
        )
        return cls(db, url)

    def sql(self, text: str, params: Sequence[Any] = ()) -> Any:
        translated = self._translated.get(text)
        if translated is None:
            translated = self._translated[text] = _placeholders(text)
        return self.db.execute_sql(translated, tuple(params))

    def sql_many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        super().sql_many(_placeholders(text), rows)

    def notify(self, value: int) -> None:
        self.db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, str(value)))

    def lock_schema(self) -> None:
        self.db.execute_sql("SELECT pg_advisory_xact_lock(74201)")

    def lost_connection(self, error: str) -> bool:
        return "closed" in error or "terminat" in error or "connection" in error

    def now(self) -> float:
        return float(
            self.db.execute_sql("SELECT extract(epoch from clock_timestamp())").fetchone()[0]
        )

    def unusable(self, exc: Exception) -> StoreError:
        return StoreError(
            f"the database {describe_url(self.url)} cannot be used: {first_line(exc)}; "
            "check the database, schema (search_path) and the user's rights in "
            "--db / LEADTUI_DB"
        )

    def create_search(self) -> None:
        self.db.execute_sql(
            "ALTER TABLE lead ADD COLUMN IF NOT EXISTS search tsvector"
            f" GENERATED ALWAYS AS ({PG_SEARCH}) STORED"
        )
        self.db.execute_sql("CREATE INDEX IF NOT EXISTS lead_search ON lead USING gin(search)")

    def drop_search(self) -> None:
        self.db.execute_sql("ALTER TABLE lead DROP COLUMN IF EXISTS search")  # and its index

    def rebuild_search(self) -> None:
        self.drop_search()
        self.create_search()

    def search_filter(self, q: Any, lead: Any, text: str) -> Any:
        tsq = pg_tsquery(text)
        if not tsq:
            return q
        return q.where(pw.SQL("search @@ to_tsquery('simple', %s)", (tsq,)))

    def first_page(self, q: Any, lead: Any, query: LeadQuery) -> list[tuple[Any, ...]]:
        """A search's page in bounded time whatever the words; other pages as SQLite's.

        PostgreSQL cannot estimate how many leads a prefix such as ``91312:*`` matches and
        guesses 0.5%; for a rare one it then walks the whole table backwards by id looking for
        a page (0.6 s at a million leads). So the newest ``SEARCH_WINDOW`` leads are searched
        that way, which is bounded; a search that does not fill its page there is rare in them,
        and the older leads are found through the search index, sorted afterwards (``id + 0``
        keeps the planner from walking by id again).
        """
        if not (query.search and query.search.strip()):
            return super().first_page(q, lead, query)
        top = query.before_id
        if top is None:
            top = int(lead.select(pw.fn.MAX(lead.id)).scalar() or 0) + 1
        floor = top - self.SEARCH_WINDOW
        newest = q.where(lead.id >= floor).order_by(lead.id.desc()).limit(query.limit)
        rows = list(newest.tuples())
        if len(rows) < query.limit and floor > 1:
            older = q.where(lead.id < floor).order_by((lead.id + 0).desc())
            rows.extend(older.limit(query.limit - len(rows)).tuples())  # not +=: that is UNION
        return rows

    def waiter(self) -> ChangeWaiter:
        return PgWaiter(self.url, CHANNEL)


def search_values(lead: Any, lead_id: int) -> dict[str, Any] | None:
    """The fields a lead (``lead``: its bound model) is found by, as its row holds them now."""
    row = (
        lead.select(*(getattr(lead, f) for f in SEARCH_FIELDS))
        .where(lead.id == lead_id)
        .tuples()
        .first()
    )
    return None if row is None else dict(zip(SEARCH_FIELDS, row, strict=True))


def _placeholders(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


# --------------------------------------------------------------------------- SQLite files


def _use_wal(path: str) -> None:
    """Put a SQLite file in WAL mode (a no-op when it is), retrying a busy moment.

    SQLite answers "database is locked" at once, without its busy timeout, when two
    connections switch a new file to WAL together (two processes starting on a new database).
    """
    deadline = time.monotonic() + 10
    delay = 0.005
    while True:
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
                conn.execute("PRAGMA journal_mode = wal").fetchall()
            return
        except sqlite3.DatabaseError as exc:  # also "file is not a database"
            text = first_line(exc)
            busy = "locked" in text or "busy" in text
            if not busy or time.monotonic() > deadline:
                hint = READONLY_HINT if "readonly" in text else ""
                raise StoreError(f"cannot open the database {path}: {text}{hint}") from None
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.1)


def _create_sqlite_file(path: Path) -> None:
    """Create an empty database file; in a group-writable folder, a group-writable one.

    A team shares a database in a folder its group may write (often setgid). With the usual
    umask 022 SQLite would create the file -rw-r--r--, and every teammate but its creator
    would get "attempt to write a readonly database". SQLite gives the -wal and -shm files
    the database file's permissions, so making the file group-writable is enough.
    """
    try:
        if not path.parent.stat().st_mode & stat.S_IWGRP:
            return  # a private folder: SQLite creates the file as the umask says
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError:
        return  # it exists (another process was first), or SQLite reports why it cannot
    try:
        os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | stat.S_IRGRP | stat.S_IWGRP)
    finally:
        os.close(fd)
