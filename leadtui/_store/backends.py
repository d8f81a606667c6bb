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
import json
import os
import random
import re
import sqlite3
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

import peewee

from leadtui._store.records import SEARCH_FIELDS, LeadQuery, StoreError
from leadtui._store.search import (
    FTS_NEWEST,
    FTS_SOME,
    PG_SEARCH,
    fts_query,
    pg_tsquery,
    search_body,
)
from leadtui._store.waiters import ChangeWaiter, PgWaiter, SqliteWaiter
from leadtui.config import unsupported_db_scheme

pw: Any = peewee  # untyped, as in models.py

READONLY_HINT = "; check that this user may write it and its folder (leadtui doctor shows how)"
CORRUPT_HINT = (
    "; the file is damaged or not a leadtui database: restore it from a backup, "
    "or salvage it with `sqlite3 {path} .recover | sqlite3 recovered.db`"
)
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
    if is_postgres_url(url):
        _check_pg_url(url)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL and for ``:memory:``."""
    if is_postgres_url(url):
        return None
    path = sqlite_path(url)
    return None if path == ":memory:" else Path(path).expanduser()


def describe_url(url: str) -> str:
    """The URL without a password (nor its query), for messages. Never raises."""
    if is_postgres_url(url):
        user, _password, hosts, path = split_pg_url(url)
        who = f"{user}@" if user else ""
        return f"postgresql://{who}{hosts}{path.split('?', 1)[0]}"
    return sqlite_path(url)


def split_pg_url(url: str) -> tuple[str, str | None, str, str]:
    """``(user, password, hosts, rest)`` of a PostgreSQL URL, read as a person means it.

    The user part ends at the *last* ``@`` before the path (a password may hold ``@``), and the
    password starts after the first ``:`` in it, as libpq reads it.
    """
    rest = url.split("://", 1)[1] if "://" in url else url
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return "", None, netloc, tail
    user, colon, password = userinfo.partition(":")
    return user, (password if colon else None), hosts, tail


def pg_conninfo(url: str) -> str:
    """The URL to hand libpq: a password with ``@`` or a lone ``%`` percent-encoded, so it
    reaches the server as typed instead of breaking the URL (and showing in its error)."""
    user, password, hosts, tail = split_pg_url(url)
    if password is None:
        return "postgresql://" + url.split("://", 1)[1]
    password = re.sub("%(?![0-9A-Fa-f]{2})", "%25", password).replace("@", "%40")
    return f"postgresql://{user}:{password}@{hosts}{tail}"


def redact(text: str, url: str) -> str:
    """``text`` without the password of ``url`` (as typed, encoded or decoded) in it."""
    if not is_postgres_url(url):
        return text
    password = split_pg_url(url)[1]
    if password:
        encoded = split_pg_url(pg_conninfo(url))[1] or ""
        for form in sorted({password, unquote(password), encoded}, key=len, reverse=True):
            if form:
                text = text.replace(form, "***")
    return text


def _check_pg_url(url: str) -> None:
    """Refuse a PostgreSQL URL whose port is not a port, in one line and without a password."""
    _user, _password, hosts, _tail = split_pg_url(url)
    for host in hosts.split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        port = port.rpartition(":")[2] if ":" in port else ""
        if port and not (port.isdigit() and 0 < int(port) <= 65535):
            raise StoreError(
                f"the port {port!r} in the database URL {describe_url(url)} is not a port "
                "number (1-65535); check --db / LEADTUI_DB"
            )


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

    def lock_key(self, key: str) -> None:
        """Serialise this transaction with every other that locks ``key``, until it ends.

        SQLite needs nothing: its write transactions begin IMMEDIATE, one at a time.
        """

    def lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` means this thread's connection is gone (reconnecting may help)."""
        return False

    def reset(self) -> None:
        """Drop this thread's connection; the next statement opens a new one."""
        try:
            self.db.close()
        except Exception:  # a dead connection may refuse even to close
            self.db.dispose()

    def error(self, exc: BaseException) -> str:
        """An exception's first line for a message, without the URL's password."""
        return redact(first_line(exc), self.url)

    def now(self) -> float:
        """The clock of the lease, so that processes on several machines agree."""
        return time.time()

    def unusable(self, exc: Exception) -> StoreError:
        """The error for a database that opened but cannot be used."""
        raise NotImplementedError

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

    def first_page(
        self, q: Any, lead: Any, query: LeadQuery, unsearched: Any
    ) -> list[tuple[Any, ...]]:
        """A page of leads newest first. ``q`` is filtered already; ``unsearched`` is the same
        query without its search words, for a backend that reads its search index itself."""
        del unsearched
        return list(q.order_by(lead.id.desc()).limit(query.limit).tuples())

    def waiter(self) -> ChangeWaiter:
        raise NotImplementedError


class SqliteBackend(Backend):
    """A SQLite file in WAL mode; search through an FTS5 table the store writes row by row."""

    name = "sqlite"

    FIRST_WINDOW = 400  # matches in the first window of a search page; each next one 4×

    def first_page(
        self, q: Any, lead: Any, query: LeadQuery, unsearched: Any
    ) -> list[tuple[Any, ...]]:
        """A search's page (newest first, before ``query.before_id``), in time that follows
        the page, not the number of matches.

        ``lead.id IN (every match)`` makes SQLite collect every match, look each up and sort
        them all to keep the newest 100: 99 ms for "bricks" + status won at a million leads.
        Here one FTS5 statement reads the matches newest first, a window at a time (400, then
        4× more each time), and each window is filtered by the other conditions until the page
        is full. The rows are the same as that query's.
        """
        match = fts_query(query.search) if query.search else ""
        if not match:
            return super().first_page(q, lead, query, unsearched)
        before = query.before_id if query.before_id is not None else 2**63 - 1
        matches = self.db.execute_sql(FTS_NEWEST, (match, before))
        try:
            step = self.FIRST_WINDOW
            rows: list[tuple[Any, ...]] = []
            while len(rows) < query.limit and (ids := [r[0] for r in matches.fetchmany(step)]):
                window = pw.SQL(FTS_SOME, (json.dumps(ids),))
                page = unsearched.where(
                    (lead.id >= ids[-1]) & (lead.id <= ids[0]) & lead.id.in_(window)
                )
                rows.extend(page.order_by(lead.id.desc()).limit(query.limit - len(rows)).tuples())
                step *= 4
        finally:
            matches.close()
        return rows

    @classmethod
    def connect(cls, url: str, *, create: bool, create_folder: bool) -> SqliteBackend:
        path = sqlite_path(url)
        if path != ":memory:":
            file = Path(path).expanduser()
            try:
                _prepare_sqlite_file(file, create=create, create_folder=create_folder)
            except PermissionError as exc:
                denied = Path(exc.filename or file)
                folder = denied if os.path.isdir(denied) else denied.parent  # never raises
                while not os.path.isdir(folder) and folder != folder.parent:
                    folder = folder.parent
                raise StoreError(
                    f"permission denied opening the database {file}: let this user read and "
                    f"write the folder {folder} (and the file, if it exists), "
                    "or choose another --db / LEADTUI_DB"
                ) from None
            except OSError as exc:
                raise StoreError(f"cannot open the database {file}: {exc.strerror}") from None
            path = str(file)
            _use_wal(path)
        db = pw.SqliteDatabase(
            path,
            pragmas={  # WAL is set by _use_wal: it stays with the file
                # FULL: a commit is on the disk (the WAL synced) before it returns, so the 2xx
                # or the IMAP watermark that follows it survives a power cut. NORMAL would
                # lose the last commits then. Group commit keeps the sync cost per lead low.
                "synchronous": "full",
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

    def unusable(self, exc: Exception) -> StoreError:
        path = describe_url(self.url)
        text = first_line(exc)
        if "malformed" in text or "not a database" in text:
            return StoreError(
                f"cannot use the database {path}: {text}{CORRUPT_HINT.format(path=path)}"
            )
        return StoreError(f"the file {path} is not a leadtui database ({text}); check --db")

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
        conninfo = pg_conninfo(url)
        named = "application_name=" in conninfo
        db = pw.PostgresqlDatabase(
            conninfo,
            autoconnect=True,
            connect_timeout=10,
            prefer_psycopg3=True,
            # Seen in pg_stat_activity, so an administrator can tell leadtui's sessions apart.
            **({} if named else {"application_name": "leadtui"}),
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

    def lock_key(self, key: str) -> None:
        # Two captures of one buyer on two connections would both read "not greeted yet".
        self.db.execute_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))

    def lost(self, exc: BaseException) -> bool:
        """The connection is gone: the server ended it (a restart, a failover, a pooler's idle
        timeout, ``pg_terminate_backend``) or cannot be reached to open a new one."""
        if not isinstance(exc, (pw.OperationalError, pw.InterfaceError)) and not type(
            exc
        ).__module__.startswith("psycopg"):
            return False
        conn = None if self.db.is_closed() else self.db._state.conn
        if conn is not None and (conn.closed or conn.broken):
            return True
        text = str(exc).lower()
        return any(w in text for w in ("terminat", "connection", "closed", "server"))

    def now(self) -> float:
        return float(
            self.db.execute_sql("SELECT extract(epoch from clock_timestamp())").fetchone()[0]
        )

    def unusable(self, exc: Exception) -> StoreError:
        return StoreError(
            f"the database {describe_url(self.url)} cannot be used: {self.error(exc)}; "
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

    def first_page(
        self, q: Any, lead: Any, query: LeadQuery, unsearched: Any
    ) -> list[tuple[Any, ...]]:
        """A search's page in bounded time whatever the words; other pages as SQLite's.

        PostgreSQL cannot estimate how many leads a prefix such as ``91312:*`` matches and
        guesses 0.5%; for a rare one it then walks the whole table backwards by id looking for
        a page (0.6 s at a million leads). So the newest ``SEARCH_WINDOW`` leads are searched
        that way, which is bounded; a search that does not fill its page there is rare in them,
        and the older leads are found through the search index, sorted afterwards (``id + 0``
        keeps the planner from walking by id again).
        """
        if not (query.search and query.search.strip()):
            return super().first_page(q, lead, query, unsearched)
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
        return PgWaiter(pg_conninfo(self.url), CHANNEL, lambda text: redact(text, self.url))


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
                hint = READONLY_HINT if "readonly" in text or "unable to open" in text else ""
                if "not a database" in text or "malformed" in text:
                    hint = CORRUPT_HINT.format(path=path)
                raise StoreError(f"cannot open the database {path}: {text}{hint}") from None
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.1)


def _prepare_sqlite_file(file: Path, *, create: bool, create_folder: bool) -> None:
    """Check (or make) the folder and the file of a SQLite database before SQLite opens it."""
    parent = file.parent
    if create and not create_folder and not parent.is_dir():
        raise StoreError(
            f"the folder {parent} for the database {file} does not exist; "
            "create it, or check --db / LEADTUI_DB"
        )
    if create:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            raise
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder {parent} for the database: {exc.strerror}"
            ) from None
        if not file.exists():
            _create_sqlite_file(file)
    elif not file.exists():
        raise StoreError(f"no database at {file}; run leadtui once to create it, or check --db")
    _tighten(file)


def file_mode(folder: Path) -> int:
    """The mode of a new database file: the owner's, and the group's in a team's folder.

    A team shares a database in a folder its group may write (setgid, as the README's
    ``install -d -m 2775 -g sales``). Elsewhere buyers' phone numbers and emails are nobody
    else's business: never readable by other users, whatever the umask.
    """
    mode = folder.stat().st_mode
    shared = mode & stat.S_ISGID or mode & stat.S_IWGRP
    return 0o660 if shared else 0o600


def _create_sqlite_file(path: Path) -> None:
    """Create an empty database file with :func:`file_mode`, before SQLite creates it.

    SQLite gives the -wal and -shm files the database file's permissions (and, as root, its
    owner), so the mode set here is the mode of all three.
    """
    try:
        mode = file_mode(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return  # another process was first
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits off
    finally:
        os.close(fd)


def _tighten(file: Path) -> None:
    """Take other users' read access off a database file this user owns (made by an older
    leadtui, which left it as the umask said), and off its -wal and -shm."""
    for path in (file, file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")):
        with contextlib.suppress(OSError):  # missing, or not ours: leave it
            st = path.stat()
            if st.st_uid == os.getuid() and st.st_mode & 0o007:
                path.chmod(stat.S_IMODE(st.st_mode) & ~0o007)
