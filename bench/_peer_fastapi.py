"""The peer of DESIGN.md's HTTP ingest budget: a FastAPI + SQLAlchemy lead endpoint on SQLite.

bench/ingest.py runs it in a process of its own (``--serve peer``) and drives it with the same
client, connections, seconds and body as leadtui's ``POST /api/leads``, in the same run.

It is written the way the FastAPI documentation ("SQL (Relational) Databases") writes such an
app, with nothing tuned for the benchmark:

- ``POST /api/leads`` takes the lead JSON leadtui's route takes, validated by a pydantic model
  of the main contract fields (at least one of name, phone, email; text lengths capped), and
  an ``x-api-key`` header checked by an ``APIKeyHeader`` security dependency (leadtui checks
  its key too);
- a plain ``def`` route, so FastAPI runs it in its worker thread pool (anyio's default, 40
  threads), with one SQLAlchemy ``Session`` per request from the generator dependency
  ``Depends(get_db)`` (its setup and close run in that pool too);
- it adds one ``Lead`` row (phone and email indexed, as a lead table that is looked up by
  them would be), commits, refreshes it and answers 201 ``{"id": …}``: every 201 is a
  committed row;
- the engine is SQLAlchemy's default for a SQLite file (a ``QueuePool`` of 5 + 10 overflow
  pysqlite connections, ``check_same_thread=False``, pysqlite's 5 s busy timeout), and a
  ``connect`` event listener sets ``PRAGMA journal_mode=WAL`` and ``synchronous=NORMAL``,
  leadtui's own settings;
- served by uvicorn with one worker process (leadtui's ingest is one process too) and
  uvicorn's defaults (``loop="auto"``, ``http="auto"``), logging at WARNING like leadtui's
  server in the benchmark, so neither writes an access log line per request.

Installed as ``pip install fastapi uvicorn sqlalchemy`` gives it (the ``bench`` extra in
pyproject.toml; no ``uvicorn[standard]``): neither uvloop nor httptools is installed, so
uvicorn's "auto" picks the stdlib asyncio event loop and the pure-Python h11 HTTP parser.
That is what the figures in BENCHMARKS.md were taken with (fastapi 0.165.0, starlette 1.10.0,
pydantic 2.14.4, uvicorn 0.55.0, h11 0.16.0, SQLAlchemy 2.1.9); the server reports the loop
class and HTTP protocol it actually ran with, and bench/ingest.py records them with the run.
"""

import asyncio
import datetime as dt
import hmac
import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import DateTime, Integer, String, Text, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

PACKAGES = ("fastapi", "starlette", "pydantic", "uvicorn", "h11", "sqlalchemy")


class Base(DeclarativeBase):
    pass


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: dt.datetime.now(dt.UTC)
    )
    source: Mapped[str] = mapped_column(String(20), default="website")
    name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    pincode: Mapped[str | None] = mapped_column(String(10))
    product: Mapped[str | None] = mapped_column(String(300))
    quantity: Mapped[str | None] = mapped_column(String(50))
    unit: Mapped[str | None] = mapped_column(String(50))
    message: Mapped[str | None] = mapped_column(Text)


class LeadIn(BaseModel):
    source: str = Field("website", max_length=20)
    name: str | None = Field(None, max_length=200)
    company: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    city: str | None = Field(None, max_length=100)
    state: str | None = Field(None, max_length=100)
    pincode: str | None = Field(None, max_length=10)
    product: str | None = Field(None, max_length=300)
    quantity: str | None = Field(None, max_length=50)
    unit: str | None = Field(None, max_length=50)
    message: str | None = Field(None, max_length=10_000)

    @model_validator(mode="after")
    def _one_contact(self) -> "LeadIn":
        if not (self.name or self.phone or self.email):
            raise ValueError("at least one of name, phone or email is required")
        return self


class LeadCreated(BaseModel):
    id: int


def make_app(db: str, api_key: str) -> tuple[FastAPI, dict[str, str]]:
    """The app on the SQLite file ``db``, and a dict it fills with the loop it ran on."""
    engine = create_engine(f"sqlite:///{db}", connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    Base.metadata.create_all(engine)
    session_local = sessionmaker(autoflush=False, bind=engine)
    ran: dict[str, str] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        loop = type(asyncio.get_running_loop())
        ran["loop"] = f"{loop.__module__}.{loop.__qualname__}"
        yield
        engine.dispose()

    app = FastAPI(title="peer", lifespan=lifespan)

    def get_db() -> Iterator[Session]:
        db_session = session_local()
        try:
            yield db_session
        finally:
            db_session.close()

    async def check_key(
        key: Annotated[str | None, Security(APIKeyHeader(name="x-api-key", auto_error=False))],
    ) -> None:
        if key is None or not hmac.compare_digest(key, api_key):
            raise HTTPException(status_code=401, detail="a valid x-api-key is required")

    @app.post("/api/leads", status_code=201, response_model=LeadCreated)
    def create_lead(
        lead: LeadIn,
        db_session: Annotated[Session, Depends(get_db)],
        _key: Annotated[None, Depends(check_key)],
    ) -> Any:
        row = Lead(**lead.model_dump())
        db_session.add(row)
        db_session.commit()
        db_session.refresh(row)
        return {"id": row.id}

    return app, ran


def serve(db: str, api_key: str) -> None:
    """Serve on a free loopback port; print the URL, then one JSON line of what it runs with.

    Stops when its standard input closes (bench/ingest.py's ``Server.close``) or on SIGTERM.
    """
    app, ran = make_app(db, api_key)
    # uvicorn binds the port itself, as ``uvicorn app:app --host … --port …`` does (a socket
    # made here with proto 0 would miss asyncio's TCP_NODELAY and add ~40 ms delayed ACKs).
    config = uvicorn.Config(app, host="127.0.0.1", port=0, workers=1, log_level="warning")
    config.load()
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started:
            time.sleep(0.01)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        http = config.http_protocol_class
        info = {
            "loop": ran.get("loop", "?"),
            "http": f"{http.__module__}.{http.__qualname__}",
            "python": sys.version.split()[0],
            **{name: version(name) for name in PACKAGES},
        }
        print(f"http://{host}:{port}", flush=True)
        print(json.dumps(info), flush=True)

    def stop_on_eof() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=announce, daemon=True).start()
    threading.Thread(target=stop_on_eof, daemon=True).start()
    server.run()
