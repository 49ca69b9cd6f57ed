"""memory/transfer.py: a whole installation copied from a real SQLite file to a real
PostgreSQL database and back, row for row, with search working on each end; refusals
that change nothing; a copy that does not check out rolls back."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from memory.compaction import Segment, SummaryStore
from memory.embeddings import EmbeddingIndex
from memory.facts import FactStore
from memory.moderation import ModerationEvents
from memory.persona_catalog import PersonaCatalog
from memory.reading import DocumentStore, Ingestor
from memory.recall_index import recall_index
from memory.records import Owner
from memory.schema import open_postgres_store, open_store
from memory.transfer import TransferFailed, TransferRefused, describe, migrate
from memory.user_choices import UserChoices
from personas import Persona, PersonaLibrary
from tests.fakes.novels import chinese_novel, english_novel


class Undo(Exception):
    pass


def fill(path: Path) -> dict:
    """A SQLite installation with something in nearly every table; what the tests look for."""
    store = open_store(path)
    alice = store.directory.ensure_user("local", "alice")
    bob = store.directory.ensure_user("tg", "42", display_name="Bob Zürich")
    store.directory.ensure_group("tg:-100", "Book club")
    store.directory.update_user(alice.id, me_name="Ali", allowed=1)
    owner = Owner.user(alice.id)
    conversation = store.conversations.start_conversation(owner, "default", "first")
    first = store.conversations.add_message(conversation.id, "user", "My cat is called Mochi, 小明说", user_id=alice.id)
    reply = store.conversations.add_message(conversation.id, "assistant", "Mochi is a lovely name.",
                                            reply_to=first.id)
    hidden = store.conversations.add_message(conversation.id, "assistant", "An older alternative.",
                                             reply_to=first.id, status="hidden")
    store.conversations.set_boundary(conversation.id, reply.id)
    later = store.conversations.start_conversation(Owner.user(bob.id), "default")
    store.conversations.add_message(later.id, "user", "Grüße aus Zürich", user_id=bob.id)
    store.inbox.enqueue_input(later.id, "still waiting", user_id=bob.id)
    store.inbox.journal_update("tg", 7, '{"update_id": 7}', chat_key="42", user_external_id="42")
    store.usage.record_usage(conversation_id=conversation.id, user_id=alice.id, model="m", outcome="ok",
                             prompt_tokens=120, completion_tokens=7, first_token_ms=300, message_id=reply.id)
    store.usage.save_calibration("m", 1.0625)
    facts = FactStore(store)
    old = facts.add(owner, "default", "Alice has a cat", origin="model", source_ids=[first.id])
    facts.add(owner, "default", "Alice has a cat named Mochi", origin="model", replaces=old.id)
    summaries = SummaryStore(store)
    summaries.save(conversation.id, Segment(None, 2, first.id, hidden.id, first.created_at, hidden.created_at,
                                            "Alice talked about Mochi.", 6,
                                            children=(Segment(None, 1, first.id, reply.id, first.created_at,
                                                              reply.created_at, "About the cat.", 4),)))
    EmbeddingIndex(store, "embed").save([(first.id, np.array([0.25, -1.5, 3.0]))])
    UserChoices(store).set_voice_replies(alice.id, True)
    ModerationEvents(store).record("in", "warn", "words", ["x"], "excerpt", alice.id, conversation.id, first.id)
    catalog = PersonaCatalog(store, PersonaLibrary())
    catalog.add(Persona(id="mochi", name="Mochi"), source="card", owner=alice, avatar=b"\x89PNG\x00\xff")
    documents = DocumentStore(store)
    novel = Ingestor(documents).ingest_bytes(english_novel().encode(), "novel.txt", alice).document
    book = Ingestor(documents).ingest_bytes(chinese_novel().encode(), "book.txt", alice).document
    documents.attach(conversation.id, novel.id, upto_chapter=2)
    documents.cache(novel.id, "characters", "", 2, '["Ann"]')
    store.close()
    return {"alice": alice, "bob": bob, "conversation": conversation, "documents": (novel.id, book.id),
            "messages": 4}


def sqlite_tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    virtual = [name for name, sql in rows if sql.startswith("CREATE VIRTUAL")]
    return sorted(name for name, _ in rows if name not in virtual and not name.startswith(("sqlite_", "_"))
                  and not any(name.startswith(v + "_") for v in virtual))


def sqlite_rows(path: Path) -> dict[str, list[tuple]]:
    """Every row of every ordinary table, in a fixed order."""
    with sqlite3.connect(path) as db:
        return {table: sorted(db.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
                for table in sqlite_tables(path)}


def postgres_rows(url: str, columns_of: Path) -> dict[str, list[tuple]]:
    """The same from PostgreSQL, in the SQLite file's column order."""
    store = open_postgres_store(url)
    try:
        with sqlite3.connect(columns_of) as db:
            found = {}
            for table in sqlite_tables(columns_of):
                columns = ", ".join(f'"{row[1]}"' for row in db.execute(f'PRAGMA table_info("{table}")'))
                found[table] = sorted((tuple(row) for row in store.db.execute(f'SELECT {columns} FROM "{table}"')
                                       .fetchall()), key=repr)
        return found
    finally:
        store.close()


def searches(store, alice_id: int, document_ids) -> tuple[set[int], set[int]]:
    """What search finds of messages and passages (the ranking is each engine's own)."""
    owner = Owner.user(alice_id)
    messages = {m.id for query in ("Mochi", "小明") for m in store.conversations.search_messages(owner, query)}
    passages = {p.id for p in DocumentStore(store).search_passages([(d, None) for d in document_ids],
                                                                   "Darcy 孙悟空", limit=50)}
    return messages, passages


def test_a_sqlite_installation_goes_to_postgresql_and_back_row_for_row(tmp_path, postgres_url):
    source, back = tmp_path / "source.db", tmp_path / "back.db"
    made = fill(source)
    before = sqlite_rows(source)
    assert all(before[table] for table in ("users", "messages", "facts", "summary_segments", "document_passages",
                                           "stored_personas", "message_embeddings", "conversation_documents"))
    store = open_store(source)
    expected_search = searches(store, made["alice"].id, made["documents"])
    store.close()
    assert expected_search[0] and expected_search[1]

    there = migrate(str(source), postgres_url)
    assert {t.table: t.copied for t in there.tables} == {t: len(rows) for t, rows in before.items()}
    assert all(t.copied == t.checked for t in there.tables)
    assert there.indexes["messages"] == made["messages"]
    assert there.indexes["document passages"] == len(before["document_passages"])
    assert postgres_rows(postgres_url, source) == before
    pg = open_postgres_store(postgres_url)
    try:
        assert searches(pg, made["alice"].id, made["documents"]) == expected_search
        # ids go on after the copied ones (tried in a transaction that is rolled back)
        with pytest.raises(Undo), pg.transaction():
            added = pg.conversations.add_message(made["conversation"].id, "user", "after the move")
            assert added.id == max(row[0] for row in before["messages"]) + 1
            raise Undo
    finally:
        pg.close()

    home = migrate(postgres_url, str(back))
    assert [t.copied for t in home.tables] == [t.copied for t in there.tables]
    assert sqlite_rows(back) == before
    store = open_store(back)
    try:
        assert searches(store, made["alice"].id, made["documents"]) == expected_search
        assert store.integrity() == "ok"
    finally:
        store.close()
    report = describe(home)
    assert report[0].startswith("copied postgresql://") and report[0].endswith(str(back))
    assert any(line.split()[:3] == ["messages", "4", "4"] for line in report)


def test_a_destination_that_holds_data_is_refused_and_left_as_it_was(tmp_path, postgres_url):
    source, taken = tmp_path / "source.db", tmp_path / "taken.db"
    fill(source)
    store = open_store(taken)
    store.directory.ensure_user("local", "someone")
    store.close()
    sha = hashlib.sha256(taken.read_bytes()).hexdigest()
    with pytest.raises(TransferRefused, match=r"already holds data: users \(1\)"):
        migrate(str(source), str(taken))
    assert hashlib.sha256(taken.read_bytes()).hexdigest() == sha

    migrate(str(source), postgres_url)
    before = postgres_rows(postgres_url, source)
    with pytest.raises(TransferRefused, match="already holds data"):
        migrate(str(source), postgres_url)
    assert postgres_rows(postgres_url, source) == before


def test_a_missing_source_is_refused_and_nothing_is_created(tmp_path):
    missing, destination = tmp_path / "nowhere.db", tmp_path / "new.db"
    with pytest.raises(TransferRefused) as refused:
        migrate(str(missing), str(destination))
    assert str(refused.value) == f"no SQLite database at {missing}"
    assert not missing.exists() and not destination.exists()
    with pytest.raises(TransferRefused, match="the same database"):
        migrate(str(destination), str(destination))


def test_rows_that_do_not_arrive_as_they_were_roll_everything_back(tmp_path, postgres_url):
    source = tmp_path / "source.db"
    fill(source)
    # SQLite keeps bytes in a TEXT column; PostgreSQL's text column would hold their escaped form
    with sqlite3.connect(source) as db:
        db.execute("UPDATE users SET display_name = X'00ff' WHERE external_id = 'alice'")
    with pytest.raises(TransferFailed, match=r"users did not check out \(2 rows read, 2 found, different contents\)"):
        migrate(str(source), postgres_url)
    store = open_postgres_store(postgres_url)
    try:
        assert store.counts() == {"users": 0, "conversations": 0, "messages": 0}
    finally:
        store.close()
    # …and a SQLite destination this run created is removed again
    back = tmp_path / "back.db"
    with sqlite3.connect(source) as db:
        db.execute("UPDATE messages SET conversation_id = 999 WHERE id = 1")  # a row whose parent is gone
    with pytest.raises(TransferFailed, match="copying messages failed"):
        migrate(str(source), str(back))
    assert not back.exists()


def test_an_empty_installation_copies_to_an_empty_one(tmp_path, postgres_url):
    empty = tmp_path / "empty.db"
    open_store(empty).close()
    result = migrate(str(empty), postgres_url)
    assert result.rows == 0 and result.indexes == {"messages": 0, "document passages": 0}
    assert "users" in {t.table for t in result.tables}


def test_recalls_word_list_is_rebuilt_on_postgresql_and_never_copied(tmp_path, postgres_url):
    """`messages_search_words` (the fts5vocab table's counterpart) is derived: the
    destination's storage builds its own from the messages, as FTS5 does its shadow tables."""
    source = tmp_path / "source.db"
    fill(source)
    result = migrate(str(source), postgres_url)
    assert "messages_search_words" not in {t.table for t in result.tables}
    store = open_postgres_store(postgres_url)
    words = store.db.execute("SELECT count(*) FROM messages_search_words").fetchone()[0]
    assert words > 0 and recall_index(store).documents_with("mochi") > 0
    store.close()
    result = migrate(postgres_url, str(tmp_path / "back.db"))
    assert "messages_search_words" not in {t.table for t in result.tables}
    assert sqlite_rows(tmp_path / "back.db") == sqlite_rows(source)
