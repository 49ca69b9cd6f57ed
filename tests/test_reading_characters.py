"""Finding the main characters of a novel: frequency pass, model over chunks, caching."""

import json

import pytest

from memory.reading import Cancelled, CancelToken, CharacterFinder, Ingestor
from memory.reading.characters import candidate_names, characters_from_reply
from memory.reading.model_json import parse_model_json
from tests.fakes.documents import shared_data_file
from tests.fakes.novels import ZH_CHARACTERS_REPLY, NovelModel, chinese_novel, english_novel, kind_of, user_text
from tests.fakes.openai_server import Reply


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


@pytest.fixture
def novel(documents, store):
    owner = store.directory.ensure_user("local", "a")
    return Ingestor(documents).ingest_bytes(chinese_novel().encode(), "西游.txt", owner).document


def finder(documents, model_client, **options):
    return CharacterFinder(documents, model_client, model="fake-model", chunk_tokens=options.pop("chunk_tokens", 4000),
                           **options)


def character_requests(fake_openai):
    return [r for r in fake_openai.chat_requests if kind_of(r.body) == "characters"]


def test_frequency_pass_finds_speakers_in_chinese_and_names_in_english():
    chinese = dict(candidate_names(chinese_novel()))
    assert {"孙悟空", "唐僧", "猪八戒"} <= set(chinese)
    english = dict(candidate_names(english_novel() * 3))
    assert {"Elizabeth", "Mr. Darcy", "Jane"} <= set(english) and "It" not in english and "The" not in english


def test_frequency_pass_on_the_shared_novels():
    journey = [name for name, _ in candidate_names(shared_data_file("xiyouji.utf8.txt").read_text("utf-8-sig"))]
    assert {"行者", "八戒", "三藏"} <= set(journey[:15])
    pride = [name for name, _ in candidate_names(shared_data_file("pride_and_prejudice.txt").read_text("utf-8-sig"))]
    assert "Elizabeth" in pride[:15] and any("Darcy" in name for name in pride[:15])


@pytest.mark.parametrize("reply, names", [
    ({"characters": [{"name": "A", "aliases": "B, C", "description": "x"}]}, ["A"]),
    ([{"名字": "孙悟空", "简介": "石猴"}, {"name": ""}, 3], ["孙悟空"]),
    (["Elizabeth — the second daughter", "Mr. Darcy: a proud man", "Jane"], ["Elizabeth", "Mr. Darcy", "Jane"]),
    ({"人物": [{"name": "唐僧"}]}, ["唐僧"]),
    ("not a list", []),
])
def test_character_replies_in_many_shapes(reply, names):
    assert [c.name for c in characters_from_reply(reply)] == names
    if names == ["A"]:
        assert characters_from_reply(reply)[0].aliases == ["B", "C"]
    if names[:1] == ["Elizabeth"]:
        assert characters_from_reply(reply)[0].line == "the second daughter"


async def test_the_model_names_them_the_text_ranks_them_and_the_result_is_cached(documents, model_client, novel,
                                                                                   fake_openai):
    fake_openai.default_reply = NovelModel(characters=ZH_CHARACTERS_REPLY)
    progress = []
    found = await finder(documents, model_client).find(
        novel.id, progress=lambda stage, pct: progress.append((stage, pct)))
    assert found[0].name == "孙悟空" and {c.name for c in found} == {"孙悟空", "唐僧", "猪八戒"}  # not 哪吒
    # 行者 is not in this text; 悟空 is, a name the text's own cast gives 孙悟空
    assert found[0].line == "花果山的石猴，神通广大" and found[0].aliases == ["美猴王", "悟空"]
    assert found[0].mentions >= found[1].mentions >= found[2].mentions > 0
    assert progress[0] == ("scan", 0) and progress[-1] == ("read", 100)
    request = character_requests(fake_openai)[0]
    assert request.messages[0]["role"] == "system" and "<<<EXCERPT>>>" in user_text(request.body)
    assert "孙悟空" in user_text(request.body).split("<<<EXCERPT>>>")[0]  # the frequency hint
    again = await finder(documents, model_client).find(novel.id)
    assert [c.name for c in again] == [c.name for c in found] and len(character_requests(fake_openai)) == 1


async def test_the_timeline_limits_what_is_read_and_found(documents, model_client, novel, fake_openai):
    fake_openai.default_reply = NovelModel(characters=ZH_CHARACTERS_REPLY)
    found = await finder(documents, model_client).find(novel.id, 2)
    assert [c.name for c in found] == ["孙悟空"]  # 唐僧 and 八戒 come later
    assert "大闹天宫" not in user_text(character_requests(fake_openai)[0].body)


async def test_malformed_replies_are_skipped_and_partial_ones_used(documents, model_client, store, fake_openai):
    owner = store.directory.ensure_user("local", "b")
    long = Ingestor(documents).ingest_bytes((chinese_novel() * 6).encode(), "long.txt", owner).document
    partial = '```json\n{"characters": [{"name": "唐僧", "line": "师父"}, {"name": "猪八戒", "line": "贪'
    fake_openai.enqueue(Reply("Sorry, I can't do that."), Reply(partial, chunk_size=100),
                        Reply("[{\"name\": \"孙悟空\"},]", chunk_size=100), Reply.error(400, "bad"))
    found = await finder(documents, model_client, chunk_tokens=400).find(long.id)
    assert len(character_requests(fake_openai)) == 4
    assert {c.name for c in found} == {"唐僧", "孙悟空", "猪八戒"}


async def test_when_the_model_gives_nothing_the_frequent_names_stand_in(documents, model_client, novel, fake_openai):
    fake_openai.default_reply = NovelModel(characters="no idea")
    found = await finder(documents, model_client).find(novel.id)
    assert "孙悟空" in [c.name for c in found] and all(c.line == "" for c in found)


async def test_cancelling_between_chunks(documents, model_client, store, fake_openai):
    owner = store.directory.ensure_user("local", "b")
    long = Ingestor(documents).ingest_bytes((chinese_novel() * 6).encode(), "long.txt", owner).document
    fake_openai.default_reply = NovelModel(characters=ZH_CHARACTERS_REPLY)
    token = CancelToken()

    def progress(stage, percent):
        if stage == "read" and percent > 10:
            token.cancel()

    with pytest.raises(Cancelled):
        await finder(documents, model_client, chunk_tokens=400).find(long.id, progress=progress, cancel=token)
    assert len(character_requests(fake_openai)) == 1 and finder(documents, model_client).cached(long.id, None) is None


def test_the_scripted_reply_is_what_models_send():
    assert [c["name"] for c in parse_model_json(ZH_CHARACTERS_REPLY)["characters"]][:2] == ["孙悟空", "唐僧"]
    assert json.loads(json.dumps(parse_model_json(ZH_CHARACTERS_REPLY)))
