"""A persona from a novel's character: profile, lorebook, quoted lines, timeline, card."""

import json

import pytest

from memory.engine import TurnContext
from memory.model_client import ModelError
from memory.persona_catalog import PersonaCatalog
from memory.reading import (
    Character,
    Ingestor,
    NovelPersonas,
    ReadingProvider,
    Summarizer,
)
from memory.reading.novel_persona import (
    lines_from_text,
    profile_from_reply,
    verified_lines,
)
from memory.records import Owner
from personas import PersonaLibrary, card_to_json, card_to_png, read_card
from tests.conftest import make_engine
from tests.fakes.novels import (
    ZH_PROFILE_REPLY,
    NovelModel,
    chinese_novel,
    english_novel,
    kind_of,
    long_chinese_novel,
    user_text,
)
from tests.fakes.openai_server import Reply


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


MONKEY = Character("孙悟空", aliases=["美猴王"])


@pytest.fixture
def catalog(store):
    return PersonaCatalog(store, PersonaLibrary())


@pytest.fixture
def novel(documents, alice):
    return Ingestor(documents).ingest_bytes(chinese_novel().encode(), "西游.txt", alice).document


@pytest.fixture
def personas(documents, model_client, catalog):
    return NovelPersonas(documents, model_client, catalog, model="fake-model", excerpt_tokens=4000)


def profile_requests(fake_openai):
    return [r for r in fake_openai.chat_requests if kind_of(r.body) == "profile"]


def test_profiles_from_replies_good_and_bad():
    profile = profile_from_reply(json.loads(ZH_PROFILE_REPLY), MONKEY)
    assert profile.relationships == [("唐僧", "师父"), ("猪八戒", "师弟")]
    assert [c[0] for c in profile.characters] == ["唐僧", "猪八戒"] and profile.places == [("花果山", "孙悟空的老家，水帘洞所在。")]
    empty = profile_from_reply(None, MONKEY)
    assert (empty.name, empty.aliases, empty.description) == ("孙悟空", ["美猴王"], "")
    odd = profile_from_reply({"relationships": "friends", "characters": [1, {"name": "孙悟空"}], "lines": "a, b"}, MONKEY)
    assert odd.relationships == [] and odd.characters == [] and odd.example_lines == ["a", "b"]


def test_only_lines_from_the_book_are_kept_and_speech_is_found_otherwise():
    text = chinese_novel()
    assert verified_lines(["“我乃天生石猴，今日方知姓也！”", "我是编的", "我乃天生石猴，今日方知姓也！"], text) == [
        "我乃天生石猴，今日方知姓也！"]
    assert lines_from_text(["猪八戒"], text) == ["师父，我老猪饿了！"]
    assert lines_from_text(["Mr. Darcy"], english_novel()) == ["She is tolerable, but not handsome enough to tempt me,"]
    assert lines_from_text(["Elizabeth"], english_novel()) == ["I shall never dance with Mr. Darcy,"]


async def test_a_character_becomes_a_private_persona_with_lore_and_quoted_lines(personas, catalog, documents, novel,
                                                                               alice, store, fake_openai):
    fake_openai.default_reply = NovelModel(profile=ZH_PROFILE_REPLY)
    persona = await personas.create(alice, novel.id, MONKEY)
    entry = catalog.entry(persona.id)
    assert entry.source == "novel" and entry.owner_user_id == alice.id and entry.private
    assert not catalog.may_use(persona.id, store.directory.ensure_user("local", "bob"))
    assert persona.name == "孙悟空" and persona.language == "zh" and "师父" in persona.description
    assert "俺老孙" in persona.personality and "《西游小记》" in persona.scenario
    assert persona.example_dialogue == "<START>\n{{char}}: 我乃天生石猴，今日方知姓也！"  # the invented line is gone
    assert persona.greeting == "俺老孙在此，你是何人？"
    assert {entry.name for entry in persona.lorebook.entries} == {"唐僧", "猪八戒", "花果山"}
    assert documents.persona_link(persona.id).document_id == novel.id
    request = profile_requests(fake_openai)[0]
    assert "<<<EXCERPTS>>>" in user_text(request.body) and "the whole book" in user_text(request.body)
    card = json.loads(card_to_json(persona))
    assert card["data"]["name"] == "孙悟空" and len(card["data"]["character_book"]["entries"]) == 3
    assert read_card(card_to_png(persona), "card.png").persona.name == "孙悟空"
    again = await personas.create(alice, novel.id, MONKEY)  # the profile is cached: no new request
    assert again.id != persona.id and len(profile_requests(fake_openai)) == 1


async def test_timeline_limits_the_excerpts_and_moving_it_rebuilds_the_persona(personas, catalog, novel, alice,
                                                                               fake_openai):
    fake_openai.default_reply = NovelModel(profile=ZH_PROFILE_REPLY)
    persona = await personas.create(alice, novel.id, MONKEY, upto=2)
    excerpts = user_text(profile_requests(fake_openai)[0].body)
    assert "筋斗云" in excerpts and "大闹天宫" not in excerpts and "up to chapter 2" in excerpts
    assert "第二回" in persona.scenario and "第二回" in persona.creator_notes
    moved = await personas.retime(persona.id, 4)
    assert moved.id == persona.id and "第四回" in catalog.entry(persona.id).persona.scenario
    assert "五行山" in user_text(profile_requests(fake_openai)[1].body)


async def test_a_model_that_writes_nonsense_still_gives_a_playable_persona(personas, novel, alice, fake_openai):
    fake_openai.default_reply = NovelModel(profile="I'm not sure who that is.")
    persona = await personas.create(alice, novel.id, Character("猪八戒"))
    assert persona.name == "猪八戒" and "师父，我老猪饿了！" in persona.example_dialogue
    assert persona.greeting == "师父，我老猪饿了！" and persona.lorebook is None


async def test_playing_starts_a_conversation_with_the_novel_attached(personas, documents, novel, alice, store,
                                                                     fake_openai):
    fake_openai.default_reply = NovelModel(profile=ZH_PROFILE_REPLY)
    persona = await personas.create(alice, novel.id, MONKEY, upto=3)
    engine = make_engine(store, fake_openai, PersonaLibrary())
    engine.personas = personas.catalog
    conversation = personas.start(engine, alice, persona, novel.id, 3)
    assert store.directory.persona_of(Owner.user(alice.id)) == persona.id and conversation.persona_id == persona.id
    assert [m.content for m in store.conversations.messages(conversation.id)] == ["俺老孙在此，你是何人？"]
    assert [(a.document.id, a.upto_chapter) for a in documents.attachments(conversation.id)] == [(novel.id, 3)]
    await engine.close()


async def test_the_characters_own_scenes_come_with_each_message(personas, documents, alice, store, fake_openai):
    fake_openai.default_reply = NovelModel(profile=ZH_PROFILE_REPLY)
    long_novel = Ingestor(documents).ingest_bytes(long_chinese_novel().encode(), "长.txt", alice).document
    persona = await personas.create(alice, long_novel.id, MONKEY)
    provider = ReadingProvider(documents, Summarizer(documents, None, model="m", unit_tokens=2000))
    engine = make_engine(store, fake_openai, window=4096, providers=[provider])
    engine.personas = personas.catalog
    conversation = personas.start(engine, alice, persona, long_novel.id, None)
    context = TurnContext(conversation, persona, alice, "你好", engine.budget())
    provider.static_blocks(context)
    parts = provider.tail_parts(context)
    assert parts and "孙悟空" in parts[0].text
    await engine.close()


async def test_a_failing_model_makes_no_persona_and_caches_nothing(personas, catalog, documents, novel, alice,
                                                                    fake_openai):
    fake_openai.default_reply = lambda body: Reply.error(401, "bad key")
    with pytest.raises(ModelError):
        await personas.create(alice, novel.id, MONKEY)
    assert [e.persona.id for e in catalog.available_to(alice) if e.source == "novel"] == []
    assert documents.cached(novel.id, "profile", "孙悟空", None) is None
