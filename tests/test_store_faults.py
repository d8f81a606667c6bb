"""A dropped PostgreSQL connection (a restart, a failover, a pooler's idle timeout): every path
reconnects, retries what is safe to retry, and answers the truth.

The connections are dropped for real: ``pg_terminate_backend`` on every session of the store
under test, which is what the server does to them when it restarts. Each test names its
sessions (``application_name``) so that only its own are terminated.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from helpers import wait_for
from ingest_server import API_KEYS, running
from test_store import ingest, make_lead

from leadtui.capture import holder_id
from leadtui.store import Health, LeadQuery, Store, StoreError, current_actor


class Sessions:
    """The PostgreSQL sessions of one test, and a way to drop them all."""

    def __init__(self, url: str) -> None:
        self.name = "lt_fault_" + uuid.uuid4().hex[:10]
        self.url = f"{url}&application_name={self.name}"
        self._admin = psycopg.connect(url, autocommit=True, connect_timeout=5)

    def count(self) -> int:
        row = self._admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (self.name,)
        ).fetchone()
        return int(row[0]) if row else 0

    def terminate(self) -> int:
        """Drop every session of the store under test; how many there were."""
        pids = [
            pid
            for pid, ended in self._admin.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND pid <> pg_backend_pid()",
                (self.name,),
            ).fetchall()
            if ended
        ]

        def gone() -> bool:
            row = self._admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            ).fetchone()
            return row is not None and row[0] == 0

        wait_for(gone, timeout=10, what="the sessions to end")
        return len(pids)

    def close(self) -> None:
        self._admin.close()


@pytest.fixture
def pg(pg_url: str) -> Iterator[Sessions]:
    sessions = Sessions(pg_url)
    try:
        yield sessions
    finally:
        sessions.close()


@pytest.fixture
def store(pg: Sessions) -> Iterator[Store]:
    with Store.open(pg.url) as s:
        yield s


# --------------------------------------------------------------------------- one path at a time


def test_a_read_after_the_connection_dropped_reconnects(pg: Sessions, store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    assert store.count_leads() == 1
    assert pg.terminate() == 1
    assert [x.id for x in store.list_leads(LeadQuery())] == [lead_id]
    assert store.count_leads() == 1
    assert pg.count() == 1  # one new session, not a leak


def test_reads_in_other_threads_reconnect_too(pg: Sessions, store: Store) -> None:
    """The HTTP ingest reads in a thread pool: each thread's connection is dropped."""
    ingest(store, make_lead())
    barrier = threading.Barrier(3)
    seen: list[int] = []

    def reader() -> None:
        store.count_leads()  # this thread's connection
        barrier.wait(timeout=10)  # all three open
        barrier.wait(timeout=10)  # all three terminated
        seen.append(store.count_leads())

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    barrier.wait(timeout=10)
    assert pg.terminate() == 3  # two readers and this thread's
    barrier.wait(timeout=10)
    for t in threads:
        t.join(timeout=10)
    assert seen == [1, 1]


def test_a_write_after_the_connection_dropped_is_made_once(pg: Sessions, store: Store) -> None:
    lead_id = ingest(store, make_lead()).lead_ids[0]
    pg.terminate()
    raw_id, new = store.add_raw(b"a body", source="test", kind="json")
    assert new
    pg.terminate()
    store.add_note(lead_id, "called, sent the rate list", actor="asha")
    notes = [e for e in store.events(lead_id) if e.action == "note"]
    assert len(notes) == 1
    assert store.add_raw(b"a body", source="test", kind="json") == (raw_id, False)


def test_a_commit_cut_off_is_retried_only_when_running_it_again_is_safe(
    pg: Sessions, store: Store
) -> None:
    """The connection drops after the work and before COMMIT answered: the server rolled it
    back, but the store cannot know that. A triage action says so instead of guessing; a raw
    item (deduplicated by body) is simply stored again."""
    lead_id = ingest(store, make_lead()).lead_ids[0]
    d = store._d
    m = store.m

    def note_then_drop() -> None:
        d.event(lead_id, "asha", "note", "called")
        pg.terminate()  # before this transaction's COMMIT

    with pytest.raises(StoreError, match="may or may not be saved") as err:
        d.retrying(note_then_drop)
    assert len(str(err.value).splitlines()) == 1
    notes = m.Event.select().where((m.Event.lead_id == lead_id) & (m.Event.action == "note"))
    assert notes.count() == 0  # rolled back, and not run twice either

    dropped: list[int] = []

    def raw_then_drop() -> tuple[int, bool]:
        added = store._raw.add_txn(
            b"raw body", source="t", kind="json", channel=None, dedupe_key="k1", received_ts=None,
            now=time.time(),
        )  # fmt: skip
        if not dropped:
            dropped.append(pg.terminate())
        return added

    raw_id, _new = d.retrying(raw_then_drop, idempotent=True)
    assert dropped == [1]
    assert store.raw_body(raw_id) == b"raw body"
    assert m.RawItem.select().where(m.RawItem.dedupe_key == "k1").count() == 1


def test_the_lease_survives_a_dropped_connection(pg: Sessions, store: Store) -> None:
    assert store.try_lease("me@host:1:abc", ttl=30)
    pg.terminate()
    assert store.try_lease("me@host:1:abc", ttl=30)  # renewed, not lost
    pg.terminate()
    info = store.lease_info()
    assert info is not None
    assert info.holder == "me@host:1:abc"
    pg.terminate()
    store.release_lease("me@host:1:abc")
    assert store.lease_info() is None


def test_health_survives_a_dropped_connection(pg: Sessions, store: Store) -> None:
    store.set_health(Health(source="http", state="listening", detail="127.0.0.1:8765"))
    pg.terminate()
    store.set_health(Health(source="mailbox", state="idle"))
    pg.terminate()
    assert [(h.source, h.state) for h in store.health()] == [
        ("http", "listening"),
        ("mailbox", "idle"),
    ]


def test_a_waiter_listens_again_after_its_connection_dropped(pg: Sessions, store: Store) -> None:
    waiter = store.waiter()
    try:
        waiter.wait(0.01)  # connects and LISTENs: "changed", so the caller catches up
        assert pg.count() == 2  # the store's and the waiter's
        pg.terminate()
        # The drop is a change as far as the waiter knows (the caller runs its catch-up
        # query), and after it a commit elsewhere is heard again.
        wait_for(lambda: waiter.wait(0.2), timeout=10, what="the waiter to notice the drop")
        while waiter.wait(0.05):  # reconnects and LISTENs again; nothing is committed now
            pass
        assert pg.count() == 1  # the waiter's new session (the store's opens on its next use)
        cursor = store.cursor()
        ingest(store, make_lead())
        wait_for(lambda: waiter.wait(0.2), timeout=10, what="the commit's notification")
        assert store.changes_since(cursor).leads
    finally:
        waiter.close()


def test_an_unreachable_database_is_a_store_error_not_a_driver_error() -> None:
    """What the HTTP ingest answers 503 for, and the TUI shows in one line."""
    with pytest.raises(StoreError) as err:
        Store.open("postgresql://nobody:s3cr%t@pw@127.0.0.1:1/leads")
    assert "s3cr" not in str(err.value)
    assert "pw@" not in str(err.value)
    assert len(str(err.value).splitlines()) == 1


# --------------------------------------------------------------------------- through HTTP


POSTS = 300
CLIENTS = 8
DROPS_AT = (40, 120, 200)  # acknowledged leads after which every session is dropped


def lead(n: int) -> dict[str, Any]:
    return {"name": f"Buyer {n}", "phone": f"+9197{n:08d}", "product": "Cement"}


@pytest.mark.slow
async def test_dropped_connections_during_a_load_of_posts_and_reads_lose_and_double_nothing(
    pg: Sessions,
) -> None:
    """Terminate every session of a running ingest, three times, while clients post leads
    (retrying with the same Idempotency-Key until a 2xx, as the API asks) and read. Every
    acknowledged lead is in the table exactly once, no answer is a 500 (a 503 says "try
    again"; it is the truth while the database is away), and /healthz is 200 right after."""
    with running(pg.url) as server:
        base = server.url
        headers = {"x-api-key": API_KEYS["website"]}
        statuses: Counter[tuple[str, int]] = Counter()
        acknowledged: dict[int, int] = {}
        work = list(range(POSTS))
        done = asyncio.Event()
        progress = asyncio.Event()  # set on every acknowledged lead

        async def poster(session: aiohttp.ClientSession) -> None:
            while work:
                n = work.pop()
                deadline = time.monotonic() + 60
                while True:
                    async with session.post(
                        f"{base}/api/leads",
                        json=lead(n),
                        headers={**headers, "Idempotency-Key": f"fault-{n}"},
                    ) as r:
                        statuses[("post", r.status)] += 1
                        answer = await r.json(content_type=None)
                    if r.status < 300:
                        acknowledged[n] = int(answer["id"])
                        progress.set()
                        break
                    assert time.monotonic() < deadline, f"lead {n} never acknowledged"
                    await asyncio.sleep(0.05)  # a client's back-off before it retries

        async def reader(session: aiohttp.ClientSession) -> None:
            while not done.is_set():
                for path in ("/api/leads?limit=20", "/healthz"):
                    async with session.get(f"{base}{path}", headers=headers) as r:
                        await r.read()
                        statuses[(path.split("?")[0], r.status)] += 1

        async def dropper() -> list[int]:
            dropped = []
            for at in DROPS_AT:
                while len(acknowledged) < at:
                    progress.clear()
                    await asyncio.wait_for(progress.wait(), timeout=60)
                dropped.append(await asyncio.to_thread(pg.terminate))
            return dropped

        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            drops = asyncio.create_task(dropper())
            readers = [asyncio.create_task(reader(session)) for _ in range(2)]
            await asyncio.gather(*(poster(session) for _ in range(CLIENTS)))
            done.set()
            dropped = await drops
            await asyncio.gather(*readers)

            # Once more with the ingest idle, then it must be healthy at once.
            assert await asyncio.to_thread(pg.terminate) >= 1
            async with session.get(f"{base}/healthz") as r:
                assert r.status == 200, await r.text()
            async with session.get(f"{base}/api/leads?limit=5", headers=headers) as r:
                assert r.status == 200, await r.text()

        assert all(d >= 1 for d in dropped), dropped
        assert not [k for k in statuses if k[1] >= 500 and k[1] != 503], statuses
        assert len(acknowledged) == POSTS
        stored = [x.id for x in server.store.list_leads(LeadQuery(limit=1000))]
        assert len(stored) == len(set(stored)) == POSTS  # no lead doubled
        assert set(stored) == set(acknowledged.values())  # each acknowledged lead is there


# --------------------------------------------------------------------------- a dead holder


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_a_dead_holders_lease_is_taken_over_at_once_and_its_health_hidden(db_url: str) -> None:
    """``kill -9`` of the capturing process: its lease row says it holds for 15 s more, and its
    health says "HTTP listening". A process on the same host sees the pid is gone."""
    with Store.open(db_url) as store:
        dead = f"{current_actor()}@{socket.gethostname()}:{_dead_pid()}:dead00"
        assert store.try_lease(dead, ttl=600)
        store.m.Lease.update(pid=int(dead.split(":")[1])).execute()  # as that process wrote it
        store.set_health(
            Health(source="http", state="listening", detail="127.0.0.1:8765", holder=dead)
        )
        store.set_health(Health(source="imap", state="idle"))  # written by no holder
        assert [h.source for h in store.health()] == ["http", "imap"]  # alive so far

        # The lease expires (by the database's clock) without its holder clearing its health.
        store.m.Lease.update(expires_ts=0).execute()
        assert [h.source for h in store.health()] == ["imap"]
        store.m.Lease.update(expires_ts=store.dialect.now() + 600).execute()

        me = holder_id()
        assert store.try_lease(me, ttl=15)  # not 15 s later: now
        info = store.lease_info()
        assert info is not None
        assert info.holder == me
        assert [h.source for h in store.health()] == ["imap"]  # the dead one's is not shown


def test_a_live_holders_lease_is_not_taken(db_url: str) -> None:
    with Store.open(db_url) as store:
        other = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
        )
        try:
            live = f"someone@{socket.gethostname()}:{other.pid}:live00"
            assert store.try_lease(live, ttl=600)
            store.m.Lease.update(pid=other.pid).execute()
            assert not store.try_lease(holder_id(), ttl=15)
            far = "someone@another-host:1:far000"  # another host: its pids are not ours to ask
            store.m.Lease.update(holder=far, host="another-host", pid=1).execute()
            assert not store.try_lease(holder_id(), ttl=15)
        finally:
            other.communicate(b"", timeout=30)


# --------------------------------------------------------------------------- who did it


def test_the_actor_is_the_real_user_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "the-boss")
    monkeypatch.setenv("USER", "the-boss")
    monkeypatch.setenv("LNAME", "the-boss")
    monkeypatch.setenv("USERNAME", "the-boss")
    assert current_actor() == pwd.getpwuid(os.getuid()).pw_name


# --------------------------------------------------------------------------- errors a user meets


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://asha:pa%ss@127.0.0.1:99999/leads",
        "postgresql://asha:pa@ss@127.0.0.1:54x2/leads",
        "postgresql://asha:pa%ss@127.0.0.1:-1/leads",
    ],
)
def test_a_bad_port_is_one_line_without_the_password(url: str) -> None:
    with pytest.raises(StoreError) as err:
        Store.open(url)
    message = str(err.value)
    assert "port" in message
    assert "pa%ss" not in message
    assert "pa@ss" not in message
    assert "ss@" not in message
    assert "\n" not in message


def test_a_password_with_percent_and_at_signs_reaches_the_server_as_typed(pg_url: str) -> None:
    """``@`` and a lone ``%`` in a password are what the user typed, not URL syntax."""
    import psycopg

    role = "lt_" + uuid.uuid4().hex[:8]
    password = "p%zz@w0rd:x"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
        try:
            rest = pg_url.split("@", 1)[1]
            url = f"postgresql://{role}:{password}@{rest}"
            with Store.open(url) as store:  # before: "failed to resolve host 'w0rd:x@…'"
                assert store.count_leads() == 0
        finally:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def test_a_corrupted_sqlite_file_says_how_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "leads.db"
    with Store.open(str(path)) as store:
        ingest(store, make_lead())
    with path.open("r+b") as f:
        f.write(os.urandom(4096))  # the header page and more: garbage
    with pytest.raises(StoreError) as err:
        Store.open(str(path))
    message = str(err.value)
    assert ".recover" in message
    assert "backup" in message
    assert "\n" not in message


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("where", ["locked/leads.db", "locked/sub/leads.db", "readonly/leads.db"])
def test_a_database_in_a_folder_without_permission_is_one_line(tmp_path: Path, where: str) -> None:
    """As a user who may not use the folder (root may use any, so the check runs as nobody)."""
    (tmp_path / "locked").mkdir(mode=0o700)
    (tmp_path / "readonly").mkdir(mode=0o555)
    tmp_path.chmod(0o755)
    path = tmp_path / where
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, try, report, exit without pytest's cleanup
        code = 0
        try:
            if os.getuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            try:
                Store.open(str(path)).close()
                said = "opened"
            except StoreError as exc:
                said = "StoreError: " + str(exc)
            except BaseException as exc:
                said = f"{type(exc).__name__}: {exc}"
            os.write(write, said.encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        said = f.read().decode()
    os.waitpid(pid, 0)
    assert said.startswith("StoreError: permission denied"), said
    assert "\n" not in said
    assert "or choose another --db" in said


def test_sqlite_commits_are_synced_before_they_return(tmp_path: Path) -> None:
    """A 2xx follows the commit; WAL with synchronous=NORMAL can lose it in a power cut."""
    with Store.open(str(tmp_path / "leads.db")) as store:
        assert store.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2  # FULL
