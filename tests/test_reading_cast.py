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
    assert result.places == [] and result.unknown == [] and result.precision == 1.0 and result.recall >= 0.75
    # Known limit: two early names the text never ties to the later ones (猴王 is 孙悟空
    # before he is named, 玄奘 is 唐僧 before 太宗 calls him 三藏).
    assert sorted(result.doubles) == ["三藏 = 玄奘", "行者 = 猴王"]
    monkey = cast.member("孙悟空")
    assert monkey is cast.member("行者") is cast.member("大圣") is cast.member("齐天大圣")
    assert cast.member("唐僧") is cast.member("三藏") and cast.member("八戒") is cast.member("猪八戒")
    assert cast.member("唐僧") is not cast.member("唐王")  # the emperor shares the surname, not the person
    assert {"花果山", "五行山", "天竺国"} <= set(cast.places) and cast.is_place("流沙河")


def echo_with_places(body: dict) -> str:
    """A model that answers with the names it was given, and adds places and a pet name."""
    hint = re.search(r"^Frequent names \(a hint, may be noisy\): (.*)$", user_text(body), re.M).group(1)
    names = [name for name in hint.split(", ") if name and name != "-"]
    names += ["Longbourn", "Netherfield", "Meryton", "Lizzy", "Bingley"]
    return json.dumps({"characters": [{"name": name, "line": f"{name} of the novel"} for name in names]})


async def test_a_model_that_echoes_names_still_gives_a_cast_without_places_or_doubles(documents, store, model_client,
                                                                                       fake_openai):
    owner = store.ensure_user("local", "reader")
    novel = Ingestor(documents).ingest_path(shared_data_file(PRIDE), owner).document
    fake_openai.default_reply = NovelModel(characters=echo_with_places)
    finder = CharacterFinder(documents, model_client, model="fake-model", chunk_tokens=3000, chunks=2)
    found = await finder.find(novel.id)
    result = score([(c.name, c.aliases) for c in found], PRIDE)
    assert result.places == [] and result.doubles == [] and result.precision == 1.0
    elizabeth = next(c for c in found if c.name == "Elizabeth")
    assert "Lizzy" in elizabeth.aliases and elizabeth.line == "Elizabeth of the novel"
    assert {"Longbourn", "Netherfield", "Meryton"} <= set(finder.places(novel.id))
