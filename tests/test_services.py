"""The composition root: the parts a test hands in are the ones used, everything else is
built as in production, and forgetting a user runs every feature's part of the cascade."""

import pytest

from bot.services import Parts, build_services
from bot.settings import Settings
from memory.model_client import ModelClient
from memory.service import Place
from memory.schema import open_store
from memory.store import Store
from personas import PersonaLibrary
from tests.conftest import compose


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


async def test_parts_replace_what_the_settings_would_build(tmp_path, fake_openai):
    store = open_store(tmp_path / "given.db")
    client = ModelClient(base_url=fake_openai.url, api_key="k", deadline_seconds=5, stall_seconds=2)
    settings = Settings(openai_base_url="http://127.0.0.1:9/v1", openai_api_key="sk-unused", model="fake-model",
                        context_tokens=8192, db=tmp_path / "never.db")
    services = build_services(settings, Parts(store=store, client=client, library=PersonaLibrary(), providers=[]))
    try:
        assert services.store is store and services.engine.store is store and services.client is client
        assert services.engine.providers == [] and services.service.engine is services.engine
        assert not (tmp_path / "never.db").exists()
        fake_openai.enqueue("Hi!")
        user = services.service.arrive("local", "ann")
        outcome = await services.service.say(Place.direct(user), "hello")
        assert outcome.shown == "Hi!" and len(fake_openai.chat_requests) == 1
    finally:
        await services.close()


def rows_of(store: Store, user_id: int) -> dict[str, int]:
    counts = {}
    for table, where in (("facts", "user_id = ?"), ("user_choices", "user_id = ?"),
                         ("documents", "owner_user_id = ?"), ("messages", "user_id = ?"), ("users", "id = ?")):
        counts[table] = store.db.execute(f"SELECT count(*) FROM {table} WHERE {where}", [user_id]).fetchone()[0]
    return counts


async def test_tests_forget_with_the_production_cascade(store, fake_openai, tmp_path):
    services = compose(store, fake_openai)
    try:
        service = services.service
        user = service.arrive("local", "ann")
        place = Place.direct(user)
        fake_openai.enqueue("Noted.")
        await service.say(place, "I like tea")
        service.add_fact(place, "likes jasmine tea")
        services.life.choices.set_voice_replies(user.id, True)
        book = tmp_path / "book.txt"
        book.write_text("Chapter 1\n\n" + "A long story. " * 200)
        await service.read_path(place, str(book))
        assert all(rows_of(store, user.id).values()), rows_of(store, user.id)
        service.forget(place)
        assert not any(rows_of(store, user.id).values()), rows_of(store, user.id)
    finally:
        await services.engine.close()
