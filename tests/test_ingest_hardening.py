"""The ingest against hostile or broken clients, over real sockets on loopback.

Idle and half-sent connections, thousands of them; requests aiohttp cannot parse that carry a
key or a token; bytes that are not UTF-8 in credentials; broken gzip; clients that leave
mid-body; one bad request in a group commit; lone surrogates; API key scopes.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import wait_for
from ingest_server import (
    API_KEYS,
    GMAIL_PUSH_TOKEN,
    JUSTDIAL_TOKEN,
    META_SECRET,
    PUBLIC_URL,
    PUSH_TOKEN,
    SECRETS,
    TWILIO_TOKEN,
    Server,
    meta_signature,
    running,
    twilio_signature,
)

from leadtui import config
from leadtui.capture import Pipeline, RawItem
from leadtui.cli import main
from leadtui.ingest import auth, connections
from leadtui.ingest.writer import Writer
from leadtui.store import LeadQuery, Store, StoreError

PUSH = f"/api/indiamart/push/{PUSH_TOKEN}"
KEY = API_KEYS["website"]


@pytest.fixture
def server(sqlite_url: str) -> Iterator[Server]:
    with running(sqlite_url) as s:
        yield s


def raw_exchange(server: Server, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` as is on a new connection; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if _complete(b"".join(chunks)):
                break
        return b"".join(chunks)


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    return match is not None and len(body) >= int(match.group(1))


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed the connection (recv sees the end), within the timeout."""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def no_secret_anywhere(*texts: str | bytes) -> None:
    for text in texts:
        shown = text.decode("latin-1") if isinstance(text, bytes) else text
        for secret in SECRETS:
            assert secret not in shown, "a secret reached a log, stderr or an answer"


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything every logger said, tracebacks included."""
    return caplog.text + "".join(
        (r.exc_text or "") + str(r.exc_info[1] if r.exc_info else "") for r in caplog.records
    )


# --------------------------------------------------------------------------- 2: connections


def test_a_half_sent_request_is_closed_after_the_header_timeout(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "HEADER_TIMEOUT", 0.5)
    with (
        running(sqlite_url) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock,
    ):
        sock.sendall(b"POST /api/leads HTTP/1.1\r\nHost: x\r\nx-api-key: ")  # and nothing more
        assert closed_by_server(sock), "the half-sent request was left open"
        assert server.request("GET", "/healthz").status == 200


def test_a_connection_idle_between_requests_is_closed_after_the_keepalive_timeout(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "KEEPALIVE_TIMEOUT", 0.5)
    with (
        running(sqlite_url) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock,
    ):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not _complete(answer):
            answer += sock.recv(65536)
        assert status_of(answer) == 200
        assert closed_by_server(sock), "the idle keep-alive connection was left open"


def _raise_file_limit(wanted: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if top < wanted:
            pytest.skip(f"this test needs {wanted} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


SERVE_WITH_256_FILES = (
    "import resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit("
    "resource.RLIMIT_NOFILE)[1]))\n"
    "from leadtui.cli import main\n"
    "sys.argv = ['leadtui', 'serve']\n"
    "main()\n"
)


def test_1100_idle_connections_do_not_stop_a_server_limited_to_256_files(
    sqlite_url: str, tmp_path: Path
) -> None:
    """systemd's default limit made /healthz time out and filled the log with EMFILE lines."""
    held = 1100
    _raise_file_limit(held + 200)
    env = {
        **os.environ,
        "LEADTUI_DB": sqlite_url,
        "LEADTUI_HTTP_LISTEN": "127.0.0.1:0",
        "LEADTUI_API_KEYS": f"website:{KEY}",
        "LEADTUI_PUSH_TOKEN": PUSH_TOKEN,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    env.pop("LEADTUI_CONFIG", None)
    stderr_path = tmp_path / "serve.stderr"
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE_WITH_256_FILES],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    sockets: list[socket.socket] = []
    try:
        found = wait_for(
            lambda: re.search(r"listening on http://127\.0\.0\.1:(\d+)", stderr_path.read_text()),
            timeout=20,
            what="leadtui serve to listen",
        )
        port = int(found.group(1))
        for i in range(held):
            sock = socket.socket()
            sock.settimeout(10)
            try:
                sock.connect(("127.0.0.1", port))
                if i % 2:  # half of them start a request and never finish its headers
                    sock.sendall(b"POST /api/leads HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                sock.close()  # refused or reset: the server shed it, which is allowed
                continue
            sockets.append(sock)
        assert len(sockets) > 256  # more than the server's whole file limit
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                assert response.status == 200
                assert json.loads(response.read())["database"] == "ok"
            finally:
                conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        body = json.dumps({"name": "Asha Rao", "phone": "9845600066"}).encode()
        conn.request(
            "POST", "/api/leads", body, {"content-type": "application/json", "x-api-key": KEY}
        )
        assert conn.getresponse().status == 201
        conn.close()
    finally:
        for sock in sockets:
            sock.close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = stderr_path.read_text(errors="replace")
    assert text.count("Too many open files") <= 1, "the log is flooded with accept errors"
    assert len(text) < 20_000
    assert "Traceback" not in text
    no_secret_anywhere(text)


def test_event_loop_errors_are_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    handle = connections.loop_exception_handler(connections.Throttle())
    emfile = OSError(24, "Too many open files")
    with caplog.at_level(logging.DEBUG):
        for _ in range(10_000):
            handle(None, {"message": "socket.accept() out of system resource", "exception": emfile})
    lines = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert len(lines) == 1
    assert "Too many open files" in lines[0].getMessage()
    assert lines[0].exc_info is None  # no traceback per failed accept


def test_the_cap_follows_the_file_limit() -> None:
    assert connections.connection_cap(256) < 256 - 32
    assert connections.connection_cap(1024) < 1024
    assert connections.connection_cap(1_000_000) == connections.MAX_CONNECTIONS


# --------------------------------------------------------------------------- 3: secrets


MALFORMED = {
    "control byte after the key": (
        f"POST /api/leads HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\x01\r\n"
        "Content-Length: 2\r\n\r\n{}"
    ).encode(),
    "DEL in the key header": (
        f"POST /api/leads HTTP/1.1\r\nHost: x\r\nx-api-key: \x7f{KEY}\r\n"
        "Content-Length: 2\r\n\r\n{}"
    ).encode(),
    "bare LF line endings": (
        f"POST /api/leads HTTP/1.1\nHost: x\nx-api-key: {KEY}\n"
        "Content-Type: application/json\nContent-Length: 2\n\n{}"
    ).encode(),
    "push URL over 8,190 bytes": (
        f"POST {PUSH}?pad={'p' * 8300} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}"
    ).encode(),
    "JustDial URL over 8,190 bytes": (
        f"GET /api/justdial/{JUSTDIAL_TOKEN}?leadid=1&name={'n' * 8300} HTTP/1.1\r\nHost: x\r\n\r\n"
    ).encode(),
    "Gmail push URL with a control byte": (
        f"POST /api/webhooks/gmail/{GMAIL_PUSH_TOKEN}\x01 HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 2\r\n\r\n{}"
    ).encode(),
}


@pytest.mark.parametrize("shape", list(MALFORMED))
def test_a_malformed_request_never_logs_or_echoes_its_bytes(
    server: Server,
    shape: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    with caplog.at_level(logging.DEBUG):
        answer = raw_exchange(server, MALFORMED[shape])
        # The server still answers, and has logged what it will log about the request.
        assert server.request("GET", "/healthz").status == 200
    head, _, body = answer.partition(b"\r\n\r\n")
    assert 400 <= status_of(answer) < 500
    assert b"application/problem+json" in head
    assert b"aiohttp" not in head.lower()
    assert b"python" not in head.lower()
    problem = json.loads(body)
    assert problem["status"] == status_of(answer)
    assert len(body) < 400  # a fixed short answer, not the request echoed
    out, err = capfd.readouterr()
    no_secret_anywhere(answer, logged(caplog), out, err)
    lines = [r for r in caplog.records if r.levelno >= logging.INFO and "refused" in r.msg]
    assert len(lines) <= 1


# --------------------------------------------------------------------------- 4: bad input


def _post_raw(server: Server, path: str, headers: bytes, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n".encode()
    return raw_exchange(server, head + headers + b"\r\n" + body)


@pytest.mark.parametrize(
    ("path", "header", "content_type", "expected"),
    [
        ("/api/leads", b"x-api-key", b"application/json", 401),
        ("/api/whatsapp/twilio", b"X-Twilio-Signature", b"application/x-www-form-urlencoded", 403),
        ("/api/whatsapp/meta", b"X-Hub-Signature-256", b"application/json", 403),
    ],
)
def test_a_credential_that_is_not_utf8_is_refused_without_a_traceback(
    server: Server,
    caplog: pytest.LogCaptureFixture,
    path: str,
    header: bytes,
    content_type: bytes,
    expected: int,
) -> None:
    with caplog.at_level(logging.DEBUG):
        answer = _post_raw(
            server,
            path,
            header + b": sha256=ab\xff\xfe" + b"\r\nContent-Type: " + content_type + b"\r\n",
            b"{}" if b"json" in content_type else b"Body=hi&From=whatsapp%3A%2B919800000000",
        )
    assert status_of(answer) == expected
    assert "Traceback" not in logged(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_broken_gzip_body_is_a_4xx_and_on_push_still_stored_with_200(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    broken = gzip.compress(json.dumps({"name": "Asha", "phone": "9845600066"}).encode())[:-12]
    with caplog.at_level(logging.DEBUG):
        lead = _post_raw(
            server,
            "/api/leads",
            f"x-api-key: {KEY}\r\nContent-Type: application/json\r\n"
            "Content-Encoding: gzip\r\n".encode(),
            broken,
        )
        push = _post_raw(
            server,
            PUSH,
            b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n",
            broken,
        )
        meta = _post_raw(
            server,
            "/api/whatsapp/meta",
            f"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
            f"X-Hub-Signature-256: {meta_signature(META_SECRET, broken)}\r\n".encode(),
            broken,
        )
    assert status_of(lead) == 400
    assert status_of(push) == 200  # IndiaMART is promised 200 once stored
    assert status_of(meta) == 400
    assert any(server.store.raw_body(i.id) == broken for i in server.store.review_items())
    assert "Traceback" not in logged(caplog)
    # gzip that is whole is read as the JSON it holds
    whole = gzip.compress(json.dumps({"name": "Ravi", "phone": "9845600077"}).encode())
    good = _post_raw(
        server,
        "/api/leads",
        f"x-api-key: {KEY}\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n".encode(),
        whole,
    )
    assert status_of(good) == 201


def test_a_client_leaving_mid_body_is_one_short_line_not_a_500(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="leadtui"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                f"POST /api/leads HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
                + b'{"name": "As'
            )
            wait_for(lambda: server.source.url, what="the server")  # still up
        wait_for(
            lambda: any("left before its body" in r.getMessage() for r in caplog.records),
            what="the server to notice the client left",
        )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "Traceback" not in logged(caplog)


def test_wrong_keys_from_one_address_are_throttled_with_retry_after(server: Server) -> None:
    answers = [
        server.post_json("/api/leads", {"name": "x"}, key=None, **{"x-api-key": f"guess-{i}"})
        for i in range(auth.FAILURES_PER_MINUTE + 1)
    ]
    assert {a.status for a in answers[:-1]} == {401}
    assert answers[-1].status == 429
    assert int(answers[-1].headers["retry-after"]) >= 1
    # While throttled, every credential from that address waits: guessing cannot go on.
    assert server.post_json("/api/leads", {"name": "Asha"}).status == 429
    assert server.request("POST", "/api/indiamart/push/wrong-token", b"{}").status == 429


# --------------------------------------------------------------------------- 5: group commit


def test_one_bad_idempotency_key_does_not_fail_the_leads_committed_with_it(
    any_db_url: str,
) -> None:
    with running(any_db_url) as server:
        results: dict[str, int] = {}

        def good(i: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            body = json.dumps({"name": f"Buyer {i}", "phone": f"98456{i:05d}"}).encode()
            conn.request(
                "POST",
                "/api/leads",
                body,
                {"content-type": "application/json", "x-api-key": KEY},
            )
            results[f"good-{i}"] = conn.getresponse().status
            conn.close()

        def bad() -> None:
            answer = _post_raw(
                server,
                "/api/leads",
                f"x-api-key: {KEY}\r\nContent-Type: application/json\r\n".encode()
                + b"Idempotency-Key: caf\xe9-17\r\n",
                json.dumps({"name": "Latin One", "phone": "9845699999"}).encode(),
            )
            results["bad"] = status_of(answer)

        threads = [threading.Thread(target=good, args=(i,)) for i in range(40)]
        threads.insert(20, threading.Thread(target=bad))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert results.pop("bad") == 400
        assert set(results.values()) == {201}, results
        assert server.store.count_leads() == 40


async def test_a_batch_that_fails_is_committed_item_by_item(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        writer = Writer(Pipeline(store), asyncio.get_running_loop())
        good = [
            RawItem(
                json.dumps({"name": f"Buyer {i}", "phone": f"98457{i:05d}"}).encode(),
                source="http:website",
                kind="json",
                channel="api",
            )
            for i in range(10)
        ]
        bad = RawItem(
            b'{"name": "Bad"}',
            source="http:website",
            kind="json",
            channel="api",
            dedupe_key="idem:website:caf\udce9",  # what a Latin-1 header byte becomes
        )
        futures = [writer.submit(item, early=False) for item in [*good[:5], bad, *good[5:]]]
        writer.start()  # all queued first: they make one batch
        outcomes = await asyncio.wait_for(
            asyncio.gather(*futures, return_exceptions=True), timeout=30
        )
        writer.stop(5)
        assert isinstance(outcomes[5], Exception)
        assert all(not isinstance(o, BaseException) for i, o in enumerate(outcomes) if i != 5)
        assert store.count_leads() == 10
    finally:
        store.close()


@pytest.fixture
def any_db_url(db_url: str) -> str:
    return db_url


# --------------------------------------------------------------------------- 8: surrogates


def test_a_signed_meta_message_with_a_lone_surrogate_is_kept(server: Server) -> None:
    text = (
        '{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{'
        '"contacts":[{"wa_id":"919800000001","profile":{"name":"Asha \\ud83d"}}],'
        '"messages":[{"from":"919800000001","id":"wamid.S1","timestamp":"999999999999",'
        '"type":"text","text":{"body":"Need bricks \\ud83d"}}]}}]}]}'
    )
    body = text.encode()
    reply = server.request(
        "POST",
        "/api/whatsapp/meta",
        body,
        {
            "content-type": "application/json",
            "X-Hub-Signature-256": meta_signature(META_SECRET, body),
        },
    )
    assert reply.status == 200  # answered once the raw item is committed; the lead follows
    (lead,) = wait_for(lambda: server.store.list_leads(LeadQuery()), what="the WhatsApp lead")
    assert lead.message is not None
    assert "Need bricks \ufffd" in lead.message


def test_a_json_lead_with_a_lone_surrogate_becomes_a_lead(server: Server) -> None:
    body = b'{"name": "Asha \\ud83d Rao", "phone": "9845600066", "message": "hi \\udc00"}'
    reply = server.request(
        "POST", "/api/leads", body, {"content-type": "application/json", "x-api-key": KEY}
    )
    assert reply.status == 201, reply.body
    lead = server.store.get_lead(reply.json()["id"])
    assert lead is not None
    assert lead.phone == "+919845600066"
    assert server.store.raw_body(reply.json()["item"]) == body  # kept as sent
    assert server.store.review_count() == 0


# --------------------------------------------------------------------------- 9: scopes


def _keys_add(config_file: Path, *args: str) -> tuple[str, str]:
    result = CliRunner().invoke(main, ["--config", str(config_file), "keys", "add", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.strip(), result.stderr


def test_a_new_key_may_add_leads_but_not_read_them(sqlite_url: str, tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    web_key, said = _keys_add(config_file, "web")
    assert "cannot read leads" in said
    assert "--read" in said
    crm_key, said = _keys_add(config_file, "crm", "--read")
    assert "read every lead" in said
    # an entry written before scopes existed keeps both
    config_file.write_text(
        config_file.read_text().replace(
            "[http.api_keys]\n",
            f'[http.api_keys]\nold = "{config.hash_api_key("old-key-123")}"\n',
        )
    )
    with running(sqlite_url, LEADTUI_CONFIG=str(config_file)) as server:
        posted = server.post_json(
            "/api/leads", {"name": "Asha"}, key=None, **{"x-api-key": web_key}
        )
        assert posted.status == 201
        read = server.request("GET", "/api/leads", headers={"x-api-key": web_key})
        assert (read.status, read.content_type) == (403, "application/problem+json")
        assert "--scope read" in read.json()["detail"]
        for key in (crm_key, "old-key-123", API_KEYS["website"]):  # name:key in env: both
            assert server.request("GET", "/api/leads", headers={"x-api-key": key}).status == 200


def test_environment_keys_may_carry_scopes(sqlite_url: str) -> None:
    keys = "forms[ingest]:form-key-0123456789,bi[read]:bi-key-0123456789"
    with running(sqlite_url, LEADTUI_API_KEYS=keys) as server:
        assert (
            server.request("GET", "/api/leads", headers={"x-api-key": "form-key-0123456789"}).status
            == 403
        )
        assert (
            server.request("GET", "/api/leads", headers={"x-api-key": "bi-key-0123456789"}).status
            == 200
        )
        refused = server.post_json(
            "/api/leads", {"name": "Asha"}, key=None, **{"x-api-key": "bi-key-0123456789"}
        )
        assert refused.status == 403
    with pytest.raises(config.ConfigError, match="scope"):
        config.load(environ={"LEADTUI_API_KEYS": "x[write]:abc"})


# --------------------------------------------------------------------------- the low ones


def test_no_answer_names_aiohttp_or_its_version(server: Server) -> None:
    for reply in (
        server.request("GET", "/healthz"),
        server.request("GET", "/nowhere"),
        server.post_json("/api/leads", {"name": "Asha"}),
    ):
        assert reply.headers.get("server") == "leadtui"


def test_a_reused_idempotency_key_with_another_body_is_kept_for_review(server: Server) -> None:
    first = server.post_json("/api/leads", {"name": "Asha"}, **{"Idempotency-Key": "k-1"})
    other = server.post_json("/api/leads", {"name": "Ravi"}, **{"Idempotency-Key": "k-1"})
    assert (first.status, other.status) == (201, 422)
    kept = [server.store.raw_body(i.id) for i in server.store.review_items()]
    assert json.dumps({"name": "Ravi"}).encode() in kept


def test_push_413_names_its_own_limit(server: Server) -> None:
    reply = server.request("POST", PUSH, b"x" * (1024 * 1024 + 1))
    assert reply.status == 413
    assert "1 MiB" in reply.json()["detail"]


def test_webhooks_without_a_signature_are_refused_before_their_body(server: Server) -> None:
    for path, ctype in (
        ("/api/whatsapp/meta", "application/json"),
        ("/api/whatsapp/twilio", "application/x-www-form-urlencoded"),
    ):
        # A body announced but never sent: refused at once, not after the body timeout.
        answer = raw_exchange(
            server,
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
            "Content-Length: 60000\r\n\r\n".encode(),
        )
        assert status_of(answer) == 403


def test_when_leads_cannot_be_made_after_the_commit_the_503_says_the_item_is_stored(
    server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def full(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the database refused a write: database or disk is full")

    monkeypatch.setattr(Store, "apply_many", full)
    with caplog.at_level(logging.WARNING, logger="leadtui.ingest"):
        reply = server.post_json("/api/leads", {"name": "Asha", "phone": "9845600066"})
    assert reply.status == 503
    assert "retry-after" in reply.headers
    detail = reply.json()["detail"]
    assert "was stored (item" in detail
    assert "not accepted" not in detail
    item = int(re.search(r"item (\d+)", detail).group(1))  # type: ignore[union-attr]
    assert server.store.raw_body(item) is not None
    assert "disk is full" in caplog.text
    assert "were stored" in caplog.text
    monkeypatch.undo()
    again = server.post_json("/api/leads", {"name": "Asha", "phone": "9845600066"})
    assert again.status in (200, 201)  # the retry finishes it
    assert server.store.count_leads() == 1


def test_a_correctly_signed_twilio_message_still_passes_the_early_check(server: Server) -> None:
    params = {"From": "whatsapp:+919800000000", "Body": "hi"}
    signature = twilio_signature(TWILIO_TOKEN, PUBLIC_URL + "/api/whatsapp/twilio", params)
    from urllib.parse import urlencode

    ok = server.request(
        "POST",
        "/api/whatsapp/twilio",
        urlencode(params).encode(),
        {"content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert ok.status == 200
