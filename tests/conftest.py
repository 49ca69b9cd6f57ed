"""Shared fixtures: real SQLite files in temporary folders, the fake model server, and an
engine built by the composition root itself (`bot.services.build_services`) with the
test's store, model client and persona files as its `Parts`: every feature is built as
in production, so forgetting a user runs the production forget cascade."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest

from bot.services import Parts, Services, build_services
from bot.settings import Settings
from memory.assembly import TAIL_HEADER
from memory.engine import Engine
from memory.model_client import ModelClient
from memory.schema import open_store
from memory.records import utc_now
from memory.store import Store
from personas import PersonaLibrary
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Read once at start-up: the autouse fixture below clears COMPANION_* for every test.
# `.ci/run` sets COMPANION_TEST_POSTGRES=require, so a missing server fails CI instead of
# skipping the PostgreSQL tests; elsewhere they skip with the reason.
POSTGRES_REQUIRED = os.environ.get("COMPANION_TEST_POSTGRES") == "require"
POSTGRES_URL = os.environ.get("COMPANION_TEST_DATABASE_URL")
# COMPANION_TEST_BACKEND=postgresql runs every test that takes the plain `store` (and the
# whole bot of the `companion` fixture) on a fresh PostgreSQL database instead of a SQLite
# file: the whole suite on the second backend, beside the files that run on both anyway.
ON_POSTGRES = os.environ.get("COMPANION_TEST_BACKEND") == "postgresql"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's own settings or .env, or reaches a real endpoint."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "COMPANION_", "TELEGRAM_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "companion.db"


@pytest.fixture
def store(request, db_path: Path):
    if ON_POSTGRES:
        from memory.schema import open_postgres_store

        store = open_postgres_store(request.getfixturevalue("postgres_url"))
    else:
        store = open_store(db_path)
    yield store
    store.close()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for this test session (tests/postgres_server.py): the one
    COMPANION_TEST_DATABASE_URL names, or a throwaway cluster started here."""
    from tests.postgres_server import NoPostgres, PostgresServer

    if POSTGRES_URL:
        yield PostgresServer.existing(POSTGRES_URL)
        return
    try:
        server = PostgresServer.start()
    except NoPostgres as error:
        (pytest.fail if POSTGRES_REQUIRED else pytest.skip)(f"PostgreSQL tests need a server: {error}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server, dropped after the test."""
    with postgres_server.fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_store(request, db_path: Path):
    """A Store on each backend in turn: a SQLite file, and a fresh PostgreSQL database.
    A test module whose storage runs on both overrides `store` with it."""
    if request.param == "sqlite":
        store = open_store(db_path)
    else:
        from memory.schema import open_postgres_store

        store = open_postgres_store(request.getfixturevalue("postgres_url"))
    yield store
    store.close()


@pytest.fixture
def personas() -> PersonaLibrary:
    return PersonaLibrary()


def second_connection(store: Store):
    """Another connection to the store's database (what another process would see: only
    what is committed), as a context manager with `execute(sql).fetchall()`."""
    url = getattr(store, "url", None)
    if url:
        import psycopg

        return psycopg.connect(url, autocommit=True)
    import sqlite3

    return contextlib.closing(sqlite3.connect(store.path))


def table_names(store: Store) -> list[str]:
    """The store's own tables on either backend (SQLite's internal ones left out)."""
    if getattr(store, "url", None):
        return [row[0] for row in store.db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").fetchall()]
    return [name for name in store.db.table_names() if not name.startswith("_sqlite")]


def backend_settings(store: Store) -> dict:
    """The settings that name the store's database: its SQLite file or its PostgreSQL URL."""
    url = getattr(store, "url", None)
    return {"database_url": url} if url else {"db": store.path}


def compose(store: Store, fake: FakeOpenAI, personas: PersonaLibrary | None = None, *, window: int = 32_768,
            reply_tokens: int = 1024, tail_tokens: int | None = None, deadline: float = 10.0, stall: float = 2.0,
            clock=utc_now, providers=None, models=None, slots: int | None = 0, **settings) -> Services:
    """The composition root on the test's store and the fake model (`settings` are
    Settings field names, e.g. facts_every=1); `providers=None` keeps all of ours. `slots`:
    the endpoint's gate (0: no limit, as a cloud provider; the fake serves requests at once
    unless it runs in single-slot mode)."""
    client = ModelClient(base_url=fake.url, api_key="test-key", deadline_seconds=deadline,
                         stall_seconds=stall, max_backoff=0.2, slots=slots)
    options = {"openai_base_url": fake.url, "openai_api_key": "test-key", "model": "fake-model",
               "context_tokens": window, "reply_tokens": reply_tokens,
               "tail_tokens": window // 10 if tail_tokens is None else tail_tokens, **backend_settings(store),
               **settings}
    return build_services(Settings(**options), Parts(clock=clock, store=store, client=client,
                                                      library=personas or PersonaLibrary(), providers=providers,
                                                      models=models))


def make_engine(store: Store, fake: FakeOpenAI, personas: PersonaLibrary | None = None, *,
                providers=(), **options) -> Engine:
    """An engine with only the given context providers (none: the bare request layout)."""
    return compose(store, fake, personas, providers=providers, **options).engine


@pytest.fixture
async def engine(store: Store, fake_openai: FakeOpenAI, personas: PersonaLibrary):
    engine = make_engine(store, fake_openai, personas)
    yield engine
    await engine.close()


@pytest.fixture
def telegram():
    """A fresh fake Bot API server with the default user's private chat and the default group open."""
    server = FakeTelegram().start()
    server.open_private_chat()
    server.open_group()
    yield server
    server.stop()


@pytest.fixture
async def telegram_bot(telegram):
    """An aiogram Bot whose real HTTP session talks to the fake server."""
    bot = telegram.make_bot()
    yield bot
    await bot.session.close()


@pytest.fixture
async def companion(request, tmp_path, telegram, fake_openai):
    """The whole bot polling the fake Telegram server, answering with the fake model."""
    from tests.harness import BotHarness

    database = {"database_url": request.getfixturevalue("postgres_url")} if ON_POSTGRES else {}
    harness = await BotHarness(tmp_path, telegram, fake_openai, **database).start()
    yield harness
    await harness.stop()


def make_memory_engine(store: Store, fake: FakeOpenAI, *, window: int = 8192, personas: PersonaLibrary | None = None,
                       **options) -> Engine:
    """An engine with every context provider of ours (memory, recall, timeline, documents)."""
    return compose(store, fake, personas, window=window, providers=None, **options).engine


def memory_of(engine: Engine):
    """The engine's long-term memory provider (pinned facts, summaries)."""
    from memory.longterm import LongTermMemory

    return next(p for p in engine.providers if isinstance(p, LongTermMemory))


# -- documents and novels (memory/reading) --------------------------------------------------
@pytest.fixture
def documents(store):
    from memory.reading import DocumentStore

    return DocumentStore(store)


@pytest.fixture
def alice(store):
    """A local user, as the terminal chat and the CLI create them."""
    return store.directory.ensure_user("local", "alice")


@pytest.fixture
async def model_client(fake_openai):
    """The real model client against the fake server, with short deadlines."""
    client = ModelClient(base_url=fake_openai.url, api_key="k", deadline_seconds=5, stall_seconds=2, max_backoff=0.1,
                         slots=0)
    yield client
    await client.close()


_STAMP = re.compile(r"^\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d \d\d:\d\d\]\n")


def said(content: str) -> str:
    """The stored words of a user message as sent to the model: without the time stamp in
    front (memory/timeline.py) and the per-turn tail after them (memory/assembly.py)."""
    return _STAMP.sub("", content, count=1).split(f"\n\n{TAIL_HEADER}", 1)[0]


def said_all(messages) -> list[str]:
    """`said` for each message (a request's messages, as dicts)."""
    return [said(m["content"]) for m in messages]


def assert_each_line_stored_once_and_each_turn_answered_once(store, conversation_id, lines):
    """Every line is one user message; after the greeting the history is runs of user
    messages (one turn each), each answered by exactly one reply, to its last message."""
    messages = store.conversations.messages(conversation_id, include_hidden=True)
    assert sorted(m.content for m in messages if m.role == "user") == sorted(lines)
    assert {m.status for m in messages} == {"complete"}
    while messages and messages[0].role == "assistant" and messages[0].reply_to is None:
        messages = messages[1:]  # the greeting
    turn, replies = [], 0
    for message in messages:
        if message.role == "user":
            turn.append(message)
        else:
            assert turn and message.reply_to == turn[-1].id, (turn, message)
            turn, replies = [], replies + 1
    assert turn == []
    return replies
