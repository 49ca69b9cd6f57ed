"""Which model answers: the persona's own, else the user's choice from the operator's
menu (private conversations only), else the default; and the window travels with it into
the request budget."""

import pytest

from memory.routing import ModelMenu, ModelOption, ModelRouter
from memory.records import Owner
from memory.user_choices import UserChoices
from personas import ModelOverrides, Persona, PersonaLibrary
from tests.conftest import make_engine
from tests.conftest import said


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


MENU = ModelMenu(ModelOption("fake-model", 32_768),
                 [ModelOption("small-model", 4096), ModelOption("fake-model", 1), ModelOption("Big/Model", 200_000)])


def test_the_default_model_comes_first_once_and_names_match_without_case():
    assert [o.name for o in MENU.options] == ["fake-model", "small-model", "Big/Model"]
    assert MENU.find("big/model").window == 200_000 and MENU.find("nope") is None and MENU.find(None) is None
    assert MENU.has_choice and not ModelMenu(ModelOption("only", 8192)).has_choice


def test_persona_choice_and_default_in_that_order(store):
    choices = UserChoices(store)
    router = ModelRouter(MENU, choices)
    alice = store.directory.ensure_user("tg", 1)
    mine = store.conversations.start_conversation(Owner.user(alice.id), "assistant")
    group = store.conversations.start_conversation(Owner.group("tg:-5"), "assistant")
    plain = Persona(id="plain", name="Plain")
    pinned = Persona(id="pinned", name="Pinned", model=ModelOverrides(model="Big/Model"))
    assert router.route(mine, plain).source == "default"
    choices.set_model(alice.id, "small-model")
    assert (router.route(mine, plain).model, router.route(mine, plain).window) == ("small-model", 4096)
    assert router.route(group, plain).model == "fake-model"  # groups keep the default
    assert router.route(mine, pinned).model == "Big/Model" and router.route(mine, pinned).source == "persona"
    choices.set_model(alice.id, "retired-model")  # the operator took it off the menu
    assert router.route(mine, plain).model == "fake-model"


async def test_a_chosen_model_gets_its_own_window_in_the_request(store, fake_openai):
    choices = UserChoices(store)
    engine = make_engine(store, fake_openai, PersonaLibrary(), window=32_768, reply_tokens=1024,
                         models=ModelRouter(MENU, choices))
    try:
        alice = store.directory.ensure_user("tg", 1)
        conversation = engine.conversation_for(Owner.user(alice.id), user=alice)
        for index in range(24):  # about 5,000 tokens of history
            store.conversations.add_message(conversation.id, "user", f"message {index} " + "word " * 200)
            store.conversations.add_message(conversation.id, "assistant", "ok")
        await engine.submit(conversation.id, "first", user=alice)
        assert fake_openai.chat_requests[-1].body["model"] == "fake-model"
        assert len(fake_openai.chat_requests[-1].messages) == 1 + 48 + 1
        choices.set_model(alice.id, "small-model")
        request = engine.build_request(store.conversations.conversation(conversation.id), user=alice, query="")
        assert request.budget.window == 4096 and request.budget.reply_tokens == 1024
        assert request.total_tokens <= 4096 - 1024
        await engine.submit(conversation.id, "second", user=alice)
        sent = fake_openai.chat_requests[-1]
        assert sent.body["model"] == "small-model" and sent.body["max_tokens"] == 1024
        assert len(sent.messages) < 30 and said(sent.messages[-1]["content"]) == "second"
        assert store.db.execute("SELECT model FROM usage ORDER BY id").fetchall() == [("fake-model",), ("small-model",)]
    finally:
        await engine.close()


async def test_a_personas_reply_length_is_reserved_in_the_budget(tmp_path, store, fake_openai):
    (tmp_path / "verbose.toml").write_text('name = "Verbose"\n[model]\nreply_tokens = 6000\n', encoding="utf-8")
    engine = make_engine(store, fake_openai, PersonaLibrary([tmp_path]), window=16_384, reply_tokens=1024)
    try:
        alice = store.directory.ensure_user("tg", 1)
        conversation = store.conversations.start_conversation(Owner.user(alice.id), "verbose")
        for index in range(60):  # about 12,000 tokens of history: more than the window leaves
            store.conversations.add_message(conversation.id, "user", f"message {index} " + "word " * 200)
            store.conversations.add_message(conversation.id, "assistant", "ok")
        request = engine.build_request(store.conversations.conversation(conversation.id), user=alice, query="")
        assert request.budget.reply_tokens == 6000
        assert request.total_tokens <= 16_384 - 6000
        await engine.submit(conversation.id, "go on", user=alice)
        assert fake_openai.chat_requests[-1].body["max_tokens"] == 6000
    finally:
        await engine.close()
