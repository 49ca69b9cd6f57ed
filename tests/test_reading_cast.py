"""The cast of the shared novels from their text, scored against hand-written lists
(tests/fakes/novel_casts.py), and a model that hands back the names it is given."""

import json
import re

import pytest

from memory.reading import CharacterFinder, Ingestor
from memory.reading.cast import find_cast
from memory.reading.characters import MAX_CHARACTERS
from tests.fakes.documents import shared_data_file
from tests.fakes.novel_casts import score
from tests.fakes.novels import NovelModel, user_text


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


PRIDE, JOURNEY = "pride_and_prejudice.txt", "xiyouji.utf8.txt"


def text_of(novel: str) -> str:
    return shared_data_file(novel).read_text(encoding="utf-8-sig")


@pytest.fixture(scope="module")
def casts():
    return {novel: find_cast(text_of(novel)) for novel in (PRIDE, JOURNEY)}


def test_pride_and_prejudice_people_once_each_and_no_place(casts):
    cast = casts[PRIDE]
    result = score([(p.name, p.aliases) for p in cast.people[:MAX_CHARACTERS]], PRIDE)
    assert result.places == [] and result.doubles == [] and result.unknown == []
    assert result.precision == 1.0 and result.recall >= 0.9
    elizabeth = cast.member("Lizzy")
    assert elizabeth is cast.member("Elizabeth") is cast.member("Miss Eliza")
    assert cast.member("Bingley") is cast.member("Mr. Bingley") is not cast.member("Miss Bingley")
    assert cast.member("Mr. Bennet") is not cast.member("Mrs. Bennet")
    assert {"Longbourn", "Netherfield", "Pemberley", "Rosings", "Hertfordshire"} <= set(cast.places)
    assert cast.is_place("Netherfield Park") and not cast.is_place("Mr. Darcy")


def test_journey_to_the_west_people_and_their_many_names(casts):
    cast = casts[JOURNEY]
    result = score([(p.name, p.aliases) for p in cast.people[:MAX_CHARACTERS]], JOURNEY)
    assert result.places == [] and result.unknown == [] and result.doubles == []
    assert result.precision == 1.0 and result.recall == 1.0 and result.aliases_wrong == 0
    monkey = cast.member("孙悟空")
    assert monkey is cast.member("行者") is cast.member("大圣") is cast.member("齐天大圣")
    # 猴王道：“…我原有个法名，叫做孙悟空。”: the early name and the later one are one person.
    assert monkey is cast.member("猴王") is cast.member("美猴王")
    # 唐僧合掌道：“贫僧俗家姓陈，法名玄奘…”
    assert cast.member("唐僧") is cast.member("三藏") is cast.member("玄奘") is not monkey
    assert cast.member("八戒") is cast.member("猪八戒") is not monkey
    assert cast.member("唐僧") is not cast.member("唐王")  # the emperor shares the surname, not the person
    # 菩萨道：“…” is 观音菩萨, the one who wears the title most, also 观音 and 观世音.
    assert cast.member("菩萨") is cast.member("观音菩萨") is cast.member("观音") is cast.member("观世音")
    assert cast.member("牛王") is cast.member("牛魔王")  # the two ends of the longer name
    assert cast.member("太子") is None and cast.member("长老") is None  # titles of many
    assert {"花果山", "五行山", "天竺国"} <= set(cast.places) and cast.is_place("流沙河")


@pytest.mark.parametrize("chapters", [20, 50])
def test_journey_read_up_to_a_chapter_still_has_each_person_once(chapters):
    """The cast as of chapter N (the spoiler-free reading) has the merges the text has
    made by then: 猴王 is named 孙悟空 in chapter 1, 玄奘 is called 三藏 in chapter 12."""
    text = text_of(JOURNEY)
    headings = [m.start() for m in re.finditer(r"^\s*第[一二三四五六七八九十百]+回", text, re.M)]
    cast = find_cast(text[: headings[chapters]])
    result = score([(p.name, p.aliases) for p in cast.people[:MAX_CHARACTERS]], JOURNEY)
    assert result.doubles == [] and result.places == [] and result.aliases_wrong == 0
    assert cast.member("猴王") is cast.member("悟空") is cast.member("行者") is not None
    assert cast.member("玄奘") is cast.member("三藏")


def scenes(*scenes: str, filler: str = "众人说了一回闲话，天色已晚，各自散去。", pad: int = 0) -> str:
    """A made-up novel: each scene, padded with narration to `pad` characters."""
    return "\n\n".join(scene + filler * max(0, (pad - len(scene)) // len(filler) + 1) for scene in scenes)


NAMING_NOVEL = scenes(
    *["石儿道：“今日天色甚好，我们往山前走走。”老僧道：“且慢，先把经念了。”石儿笑道：“也罢。”"] * 4,
    # the speaker names himself: 石儿 is 林青云
    "老僧道：“你从何处来？”石儿道：“我原有个名字，叫做林青云。”老僧道：“好名字。”",
    # the speaker names the one who answers: 小石 is 慧能
    "小石道：“弟子无名。”老僧道：“我与你起个法名，叫做慧能，好么？”小石道：“好！好！”",
    # someone else named (贫僧将小石…): the speaker is neither
    "老僧道：“贫僧将小石叫做慧能。”红娘道：“原来如此。”",
    *["青云道：“山下有人家。”慧能道：“且去化些斋饭。”林青云道：“我也同去。”老僧道：“早去早回。”"] * 4,
    *["小石道：“我去挑水。”慧能道：“我去砍柴。”"] * 2,
    # a disguise: 红娘 says she is 青云 while the narration names both together
    *["红娘扮作青云的模样，青云只看着红娘笑。红娘道：“我是青云。”"] * 4,
    "红娘道：“天晚了。”红娘笑道：“回去罢。”",
)


def test_names_a_speaker_gives_himself_or_the_one_who_answers_join_into_one_person():
    cast = find_cast(NAMING_NOVEL)
    stone = cast.member("石儿")
    assert stone is not None and stone is cast.member("青云") is cast.member("林青云")
    assert cast.member("小石") is cast.member("慧能") is not None
    monk, maid = cast.member("老僧"), cast.member("红娘")
    assert monk is not None and monk not in (stone, cast.member("慧能"))
    assert maid is not None and maid is not stone  # the disguise is no naming
    assert len({id(p) for p in cast.people}) == len(cast.people) == 4


def epithet_novel(title: str, wearers: dict[str, int]) -> str:
    """Four scenes of 10,000 characters in which a bare title speaks as a name."""
    worn = [f"只见{wearer}{title}来了。" for wearer, count in wearers.items() for _ in range(count)]
    made = []
    for number in range(4):
        lines = worn[number::4]
        made.append("".join(lines) + f"{title}道：“今日风大。”黛玉道：“关了窗罢。”{title}笑道：“也好。”" * 3
                    + "林黛玉看了一回书。")
    return scenes(*made, pad=10_000)


def test_a_title_said_alone_goes_to_the_one_who_wears_it_most():
    cast = find_cast(epithet_novel("姑娘", {"林": 12, "史": 3}))
    assert cast.member("姑娘") is not None and cast.member("姑娘") is cast.member("林姑娘")
    assert cast.member("史姑娘") is None
    # worn by two alike, the title alone names nobody
    assert find_cast(epithet_novel("公主", {"金": 6, "玉": 6})).member("公主") is None


def echo_adding(extra: list[str], line: str):
    """A model that answers with the names it was given (the hint) and adds `extra`:
    places, pet names, the other names of the same people."""
    def reply(body: dict) -> str:
        hint = re.search(r"^Frequent names \(a hint, may be noisy\): (.*)$", user_text(body), re.M).group(1)
        names = [name for name in hint.split(", ") if name and name != "-"] + extra
        return json.dumps({"characters": [{"name": name, "line": line.format(name)} for name in names]},
                          ensure_ascii=False)
    return reply


async def characters_of(novel_file: str, model, documents, store, model_client, fake_openai):
    """(characters, places set apart, score) of a shared novel, read by the scripted model."""
    owner = store.directory.ensure_user("local", "reader")
    novel = Ingestor(documents).ingest_path(shared_data_file(novel_file), owner).document
    fake_openai.default_reply = NovelModel(characters=model)
    finder = CharacterFinder(documents, model_client, model="fake-model", chunk_tokens=3000, chunks=2)
    found = await finder.find(novel.id)
    return found, finder.places(novel.id), score([(c.name, c.aliases) for c in found], novel_file)


async def test_a_model_that_echoes_chinese_names_still_gives_each_person_once(documents, store, model_client,
                                                                                fake_openai):
    model = echo_adding(["孙悟空", "美猴王", "玄奘", "唐三藏", "观世音菩萨", "牛魔王", "太宗皇帝", "花果山", "水帘洞"],
                        "{}，书中人物")
    found, places, result = await characters_of(JOURNEY, model, documents, store, model_client, fake_openai)
    assert result.places == [] and result.doubles == [] and result.precision == 1.0 and result.recall == 1.0
    monkey = next(c for c in found if "孙悟空" in c.names)
    assert {"美猴王", "猴王"} <= set(monkey.names)
    assert {"花果山", "水帘洞"} <= set(places)


async def test_a_model_that_echoes_names_still_gives_a_cast_without_places_or_doubles(documents, store, model_client,
                                                                                       fake_openai):
    model = echo_adding(["Longbourn", "Netherfield", "Meryton", "Lizzy", "Bingley"], "{} of the novel")
    found, places, result = await characters_of(PRIDE, model, documents, store, model_client, fake_openai)
    assert result.places == [] and result.doubles == [] and result.precision == 1.0
    elizabeth = next(c for c in found if c.name == "Elizabeth")
    assert "Lizzy" in elizabeth.aliases and elizabeth.line == "Elizabeth of the novel"
    assert {"Longbourn", "Netherfield", "Meryton"} <= set(places)
