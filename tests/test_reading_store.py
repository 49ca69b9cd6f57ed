"""DocumentStore on a real SQLite file and a real PostgreSQL database: exact text, token sums, CJK search, attachments,
atomic writes, forget and crash leftovers."""

from datetime import timedelta

import pytest

from memory.documents import extract_bytes
from memory.reading import Cancelled, CancelToken, DocumentStore, Ingestor
from memory.reading.store import DocumentHeader, PreparedPassage, search_terms
from memory.schema import open_postgres_store, open_store
from memory.sql_table import dialect
from memory.records import Owner
from memory.tokens import count_tokens
from tests.fakes.novels import chinese_novel, english_novel


@pytest.fixture
def store(backend_store):
    return backend_store


def ingest(documents, owner, text, name="novel.txt"):
    return Ingestor(documents).ingest_bytes(text.encode("utf-8"), name, owner).document


def test_passages_join_back_into_the_exact_text_and_counts_add_up(documents, alice):
    text = chinese_novel()
    document = ingest(documents, alice, text)
    extracted = extract_bytes(text.encode(), "novel.txt")
    assert documents.text(document.id) == extracted.text
    passages = documents.passages(document.id)
    assert all(p.tokens == count_tokens(p.text) for p in passages)
    assert document.tokens == sum(p.tokens for p in passages) == documents.tokens_upto(document.id)
    chapters = documents.chapters(document.id)
    assert [c.title for c in chapters] == [c.title for c in extracted.chapters]
    assert sum(c.tokens for c in chapters) + sum(p.tokens for p in passages if p.chapter_index is None) \
        == document.tokens


def test_awkward_characters_come_back_exactly_and_are_found(documents, alice):
    # A batch of passages goes to SQLite as one JSON array: quotes, backslashes, tabs,
    # control-looking text, astral characters and CJK extension B must survive it.
    text = ('He said "don\'t" \\ C:\\path\\n \t tab\u00a0nbsp \\u0041 {"json": [1, 2]}\n\n'
            "𠀋𡈽 表外字，😀 emoji；孙悟空大闹天宫。\n\n" + "第二段 Zürich café naïve " * 40)
    document = ingest(documents, alice, text)
    extracted = extract_bytes(text.encode(), "novel.txt")
    assert documents.text(document.id) == extracted.text
    assert [p.tokens for p in documents.passages(document.id)] \
        == [count_tokens(p.text) for p in documents.passages(document.id)]
    scope = [(document.id, None)]
    assert documents.search_passages(scope, "悟空")
    assert documents.search_passages(scope, "zurich")
    assert documents.search_passages(scope, "𠀋𡈽")


def test_text_up_to_a_chapter_stops_before_the_next_heading(documents, alice):
    document = ingest(documents, alice, chinese_novel())
    upto_two = documents.text(document.id, 2)
    assert upto_two.endswith("倒也伶俐。”") and "大闹天宫" not in upto_two
    assert documents.tokens_upto(document.id, 2) < documents.tokens_upto(document.id)


def test_search_finds_a_two_character_name_inside_chinese_sentences(documents, alice):
    document = ingest(documents, alice, chinese_novel())
    found = documents.search_passages([(document.id, None)], "八戒在哪里？")
    assert found and "猪八戒" in found[0].text
    assert documents.search_passages([(document.id, 4)], "八戒") == []  # chapter 5 is beyond the timeline


def test_search_is_case_insensitive_in_english_and_ignores_stopwords(documents, alice):
    document = ingest(documents, alice, english_novel(), "pride.txt")
    found = documents.search_passages([(document.id, None)], "what did DARCY say at the ball?")
    assert found and "Darcy" in found[0].text
    assert search_terms("the and is it DARCY 孙悟空") == ["darcy", "孙悟", "悟空"]


def test_search_stays_within_the_documents_asked_for(documents, store, alice):
    bob = store.directory.ensure_user("local", "bob")
    mine = ingest(documents, alice, chinese_novel())
    theirs = ingest(documents, bob, english_novel(), "pride.txt")
    assert {p.document_id for p in documents.search_passages([(mine.id, None)], "Darcy 悟空")} == {mine.id}
    assert documents.search_passages([(theirs.id, None)], "悟空") == []


def test_passages_mentioning_a_name_in_reading_order(documents, alice):
    document = ingest(documents, alice, chinese_novel())
    ids = documents.passages_mentioning(document.id, ["八戒", "天蓬元帅"], None)
    assert ids and ids == sorted(ids)
    assert documents.passages_mentioning(document.id, ["八戒"], 4) == []


def test_same_text_again_is_found_by_hash_per_user(documents, store, alice):
    first = Ingestor(documents).ingest_bytes(chinese_novel().encode("utf-8"), "a.txt", alice)
    again = Ingestor(documents).ingest_bytes(chinese_novel().encode("gb18030"), "b.txt", alice)
    assert again.duplicate and again.document.id == first.document.id
    bob = store.directory.ensure_user("local", "bob")
    assert not Ingestor(documents).ingest_bytes(chinese_novel().encode(), "a.txt", bob).duplicate
    assert [d.id for d in documents.documents_of(alice.id)] == [first.document.id]


def test_attach_detach_order_and_reading_decisions(documents, store, alice):
    conversation = store.conversations.start_conversation(Owner.user(alice.id), "assistant")
    one = ingest(documents, alice, chinese_novel())
    two = ingest(documents, alice, english_novel(), "pride.txt")
    documents.attach(conversation.id, one.id)
    documents.attach(conversation.id, two.id, upto_chapter=2)
    documents.set_modes(conversation.id, {one.id: "verbatim", two.id: "summaries"})
    attached = documents.attachments(conversation.id)
    assert [(a.document.id, a.upto_chapter, a.mode, a.limit) for a in attached] == [
        (one.id, None, "verbatim", None), (two.id, 2, "summaries", 2)]
    assert documents.detach(conversation.id, one.id) and not documents.detach(conversation.id, one.id)
    assert [a.mode for a in documents.attachments(conversation.id)] == [None]  # decided again
    documents.attach(conversation.id, one.id)  # re-attached: goes last
    assert [a.document.id for a in documents.attachments(conversation.id)] == [two.id, one.id]
    documents.set_upto(conversation.id, two.id, 4)
    assert documents.attachments(conversation.id)[0].limit is None  # chapter 4 of 4 is the whole book


def _header(owner_id: int, chapters=()) -> DocumentHeader:
    return DocumentHeader(owner_user_id=owner_id, title="T", author=None, format="txt", encoding="utf-8",
                          source="t.txt", sha256="0" * 64, chars=10, chapter_source="none", chapters=list(chapters))


def test_a_failed_or_cancelled_save_leaves_nothing(documents, alice):
    def failing():
        yield [PreparedPassage(None, 0, 5, 2, "hello")]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        documents.save(_header(alice.id), failing)
    token = CancelToken()

    def cancelled():
        yield [PreparedPassage(None, 0, 5, 2, "hello")]
        token.cancel()
        yield [PreparedPassage(None, 5, 10, 2, "world")]

    with pytest.raises(Cancelled):
        documents.save(_header(alice.id), cancelled, cancel=token)
    assert set(documents.counts().values()) == {0}


def test_forget_user_removes_documents_passages_index_and_caches(documents, store, alice):
    bob = store.directory.ensure_user("local", "bob")
    conversation = store.conversations.start_conversation(Owner.user(alice.id), "assistant")
    mine = ingest(documents, alice, chinese_novel())
    theirs = ingest(documents, bob, english_novel(), "pride.txt")
    store.set_forget_cascade([documents.forget_user])  # as the composition root does
    store.set_compact_steps([documents.optimize_index])
    documents.attach(conversation.id, mine.id)
    documents.cache(mine.id, "characters", "", None, "[]")
    store.forget_user(alice.id)
    assert documents.documents_of(alice.id) == []
    counts = documents.counts()
    assert counts["documents"] == 1 and counts["attachments"] == 0
    assert counts["passages"] == counts["index"] == len(documents.passages(theirs.id))
    assert documents.search_passages([(mine.id, None)], "悟空") == []
    store.compact()  # merges the passage index too


def test_an_ingestion_a_crash_interrupted_is_deleted_at_the_next_start(db_path, alice, documents, store):
    store.db.execute("INSERT INTO documents (owner_user_id, title, format, sha256, chars, tokens, chapter_count, "
                     "chapter_source, status, created_at) VALUES (?, 't', 'txt', 'x', 1, 1, 0, 'none', "
                     "'ingesting', ?)", [alice.id, store.now()])
    DocumentStore(store)  # a recent one may be another process at work: kept
    assert documents.counts()["documents"] == 1
    clock = lambda: store.clock() + timedelta(hours=2)  # noqa: E731
    later = (open_postgres_store(store.url, clock=clock) if dialect(store.db) == "postgresql"
             else open_store(db_path, clock=clock))
    DocumentStore(later)
    assert DocumentStore(later).counts()["documents"] == 0
    later.close()


def test_reindex_rebuilds_the_passage_index_from_the_passages(documents, store, alice):
    chinese = ingest(documents, alice, chinese_novel())
    english = ingest(documents, alice, english_novel(), "pride.txt")
    scopes = [(chinese.id, None), (english.id, None)]
    before = [p.id for p in documents.search_passages(scopes, "Darcy 八戒", limit=50)]
    assert before
    passages = len(documents.passages(chinese.id)) + len(documents.passages(english.id))
    assert documents.reindex(batch=3) == passages == documents.counts()["index"]
    assert [p.id for p in documents.search_passages(scopes, "Darcy 八戒", limit=50)] == before
    assert documents.passages_mentioning(chinese.id, ["猪八戒"], None)
