"""Shared fixtures: real SQLite files in temporary folders, the fake model server, and an
engine wired to them exactly as the composition root wires the real one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.services import build_memory
from bot.settings import Settings
from memory.engine import Engine, ModelSettings
from memory.model_client import ModelClient
from memory.store import Store, utc_now
from personas import PersonaLibrary
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
def store(db_path: Path):
    store = Store(db_path)
    yield store
    store.close()


@pytest.fixture
def personas() -> PersonaLibrary:
    return PersonaLibrary()


def make_engine(store: Store, fake: FakeOpenAI, personas: PersonaLibrary | None = None, *,
                window: int = 32_768, reply_tokens: int = 1024, tail_tokens: int | None = None,
                deadline: float = 10.0, stall: float = 2.0, slots: int | None = 0, **engine_options) -> Engine:
    """`slots`: the endpoint's gate (0: no limit, as a cloud provider; the fake serves
    requests at once unless it runs in single-slot mode)."""
    client = ModelClient(base_url=fake.url, api_key="test-key", deadline_seconds=deadline,
                         stall_seconds=stall, max_backoff=0.2, slots=slots)
    settings = ModelSettings(model="fake-model", window=window, reply_tokens=reply_tokens,
                             tail_tokens=window // 10 if tail_tokens is None else tail_tokens)
    return Engine(store, client, personas or PersonaLibrary(), settings, **engine_options)


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
async def companion(tmp_path, telegram, fake_openai):
    """The whole bot polling the fake Telegram server, answering with the fake model."""
    from tests.harness import BotHarness

    harness = await BotHarness(tmp_path, telegram, fake_openai).start()
    yield harness
    await harness.stop()


def make_memory_engine(store: Store, fake: FakeOpenAI, *, window: int = 8192, reply_tokens: int = 1024,
                       tail_tokens: int | None = None, clock=utc_now, personas: PersonaLibrary | None = None,
                       slots: int | None = 0, **settings) -> Engine:
    """An engine with the long-term memory providers, wired by the composition root's
    `build_memory` from Settings (`settings` are Settings field names, e.g. facts_every=1);
    `slots` as for `make_engine`."""
    client = ModelClient(base_url=fake.url, api_key="test-key", deadline_seconds=10, stall_seconds=2,
                         max_backoff=0.2, slots=slots)
    options = {"openai_base_url": fake.url, "openai_api_key": "test-key", "model": "fake-model", **settings}
    providers = build_memory(Settings(**options), store, client, clock=clock)
    model = ModelSettings(model="fake-model", window=window, reply_tokens=reply_tokens,
                          tail_tokens=window // 10 if tail_tokens is None else tail_tokens)
    return Engine(store, client, personas or PersonaLibrary(), model, providers=providers, clock=clock)


# -- documents and novels (memory/reading) --------------------------------------------------
@pytest.fixture
def documents(store):
    from memory.reading import DocumentStore

    return DocumentStore(store)


@pytest.fixture
def alice(store):
    """A local user, as the terminal chat and the CLI create them."""
    return store.ensure_user("local", "alice")


@pytest.fixture
async def model_client(fake_openai):
    """The real model client against the fake server, with short deadlines."""
    client = ModelClient(base_url=fake_openai.url, api_key="k", deadline_seconds=5, stall_seconds=2, max_backoff=0.1,
                         slots=0)
    yield client
    await client.close()
