"""Chapter summaries: deterministic units, made once by the model, in the background."""

import asyncio

import pytest

from memory.reading import Ingestor, Summarizer
from memory.reading.summaries import SummaryUnit, summary_units
from tests.fakes.novels import NovelModel, kind_of, long_chinese_novel, user_text
from tests.fakes.openai_server import Reply


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


def test_units_never_cross_chapters_and_stay_within_the_size():
    sizes = [(1, None, 50), (2, 0, 400), (3, 0, 700), (4, 0, 300), (5, 1, 2000), (6, 1, 10), (7, None, 5)]
    assert summary_units(sizes, 1000) == [
        SummaryUnit(None, 1, 1, 50), SummaryUnit(0, 2, 2, 400), SummaryUnit(0, 3, 4, 1000),
        SummaryUnit(1, 5, 5, 2000), SummaryUnit(1, 6, 6, 10), SummaryUnit(None, 7, 7, 5)]
    assert summary_units([], 1000) == []


async def test_summaries_are_made_once_and_name_long_chapters_by_part(documents, store, model_client, fake_openai):
    fake_openai.default_reply = NovelModel()
    owner = store.directory.ensure_user("local", "a")
    ingestor = Ingestor(documents, passage_chars=150)
    document = ingestor.ingest_bytes(long_chinese_novel().encode(), "n.txt", owner).document
    summarizer = Summarizer(documents, model_client, model="fake-model", unit_tokens=200)
    assert summarizer.lines(document.id, None) is None and not summarizer.is_complete(document.id)
    progress = []
    made = await summarizer.summarize(document.id, progress=lambda stage, pct: progress.append(pct))
    assert made == len(summarizer.units(document.id)) > 12 and progress[-1] == 100
    requests = [r for r in fake_openai.chat_requests if kind_of(r.body) == "summary"]
    assert len(requests) == made and any("(part 2 of" in user_text(r.body) for r in requests)
    assert all("<<<TEXT>>>" in user_text(r.body) for r in requests)
    assert await summarizer.summarize(document.id) == 0  # nothing left to make
    lines = summarizer.lines(document.id, 2)
    assert lines and {line.chapter_index for line in lines} <= {None, 0, 1}
    assert summarizer.tokens(document.id, None) > summarizer.tokens(document.id, 2)


async def test_a_model_failure_stops_the_background_work_and_keeps_what_was_made(documents, store, model_client,
                                                                                fake_openai):
    owner = store.directory.ensure_user("local", "a")
    document = Ingestor(documents).ingest_bytes(long_chinese_novel().encode(), "n.txt", owner).document
    summarizer = Summarizer(documents, model_client, model="fake-model", unit_tokens=300)
    fake_openai.enqueue("第一段摘要。", Reply.error(401, "bad key"))
    summarizer.schedule(document.id)
    summarizer.schedule(document.id)  # asked twice: one worker, one pass
    await summarizer.wait_idle()
    assert len(documents.summaries(document.id)) == 1 and not summarizer.is_complete(document.id)
    fake_openai.default_reply = NovelModel()
    summarizer.schedule(document.id)
    await summarizer.wait_idle()
    assert summarizer.is_complete(document.id)
    assert len([r for r in fake_openai.chat_requests if kind_of(r.body) == "summary"]) == \
        len(summarizer.units(document.id)) + 1


async def test_close_cancels_the_background_work(documents, store, model_client, fake_openai):
    fake_openai.default_reply = lambda body: Reply("慢。", delay=5)
    owner = store.directory.ensure_user("local", "a")
    document = Ingestor(documents).ingest_bytes(long_chinese_novel().encode(), "n.txt", owner).document
    summarizer = Summarizer(documents, model_client, model="fake-model", unit_tokens=300)
    summarizer.schedule(document.id)
    await asyncio.sleep(0.2)
    await asyncio.wait_for(summarizer.close(), 2)
    assert documents.summaries(document.id) == {}
