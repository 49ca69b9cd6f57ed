"""Hybrid recall with embeddings from the fake `/v1/embeddings` endpoint, and the index."""

import numpy as np
import pytest

from memory.embeddings import Embedder, EmbeddingIndex, unit
from memory.recall import RecallProvider
from memory.records import Owner
from memory.sql_table import dialect
from tests.conftest import make_memory_engine
from tests.test_recall import fill, recall_part, settle


@pytest.fixture
def store(backend_store):
    return backend_store


STRAWBERRIES = ("I adore strawberries with cream.", "Noted, cream it is.")
QUESTION = "Do you remember the strawbery thing?"  # a typo: no word or stem of the message


async def test_embeddings_find_what_the_words_miss(store, fake_openai):
    engine = make_memory_engine(store, fake_openai, window=4096, facts_every=0, embedding_model="fake-embed",
                                embedding_dimensions=128)
    user = store.directory.ensure_user("local", "mia", display_name="Mia")
    conversation = engine.conversation_for(Owner.user(user.id), user=user)
    ids = fill(store, conversation.id, 60, {2: STRAWBERRIES})
    conversation = await settle(engine, conversation, user)  # the turn's background work embeds the messages
    requests = fake_openai.embedding_requests
    assert requests[0].body["input"] == ["嗯"] and requests[0].body["model"] == "fake-embed"
    assert requests[0].body["dimensions"] == 128 and requests[0].body["encoding_format"] == "float"
    stored = store.db.execute("SELECT count(*) FROM message_embeddings WHERE model = 'fake-embed'").fetchone()[0]
    assert stored == store.conversations.count_messages(conversation.id)

    await engine.submit(conversation.id, QUESTION, user=user)
    sent = fake_openai.chat_requests[-1].messages[-1]["content"]
    assert "I adore strawberries with cream." in sent  # "strawberry" is not a word of that message
    assert fake_openai.embedding_requests[-1].body["input"] == [QUESTION]

    words_only = make_memory_engine(store, fake_openai, window=4096, facts_every=0)
    request = words_only.build_request(store.conversations.conversation(conversation.id), user=user, query=QUESTION,
                                       final_user_text=QUESTION)
    assert recall_part(request) is None
    assert ids[STRAWBERRIES[0]] < store.conversations.conversation(conversation.id).boundary_message_id
    await words_only.close()
    await engine.close()


async def test_a_failing_embeddings_endpoint_leaves_full_text_recall_working(store, fake_openai):
    fake_openai.embedding_error = 500
    engine = make_memory_engine(store, fake_openai, window=4096, facts_every=0, embedding_model="fake-embed")
    user = store.directory.ensure_user("local", "mia", display_name="Mia")
    conversation = engine.conversation_for(Owner.user(user.id), user=user)
    fill(store, conversation.id, 60, {2: ("My dentist is Dr Okonkwo.", "Good to know.")})
    conversation = await settle(engine, conversation, user)
    result = await engine.submit(conversation.id, "When do I see Okonkwo?", user=user)
    assert result.status == "complete"
    assert "My dentist is Dr Okonkwo." in fake_openai.chat_requests[-1].messages[-1]["content"]
    await engine.close()


def test_index_search_is_exact_and_leaves_out_the_window(store):
    user = store.directory.ensure_user("local", "a")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    messages = [store.conversations.add_message(conversation.id, "user", f"m{i}") for i in range(600)]
    rng = np.random.default_rng(1)
    vectors = [unit(rng.normal(size=32).astype(np.float32)) for _ in messages]
    index = EmbeddingIndex(store, "m")
    index.save(list(zip([m.id for m in messages[:300]], vectors[:300])))
    assert index.search([conversation.id], vectors[123], limit=3)[0][0] == messages[123].id
    index.save(list(zip([m.id for m in messages[300:]], vectors[300:])))  # grows in place
    found = index.search([conversation.id], vectors[450], limit=5, exclude=(conversation.id, messages[400].id))
    assert messages[450].id not in [message_id for message_id, _ in found]
    best = index.search([conversation.id], vectors[10], limit=1)
    assert best[0][0] == messages[10].id and abs(best[0][1] - 1.0) < 1e-5
    assert index.missing([conversation.id]) == []


async def test_after_a_forget_no_stale_vector_points_at_someone_elses_message(store, fake_openai):
    """Forget frees ids that SQLite hands out again: a search index held in memory must not
    map the forgotten user's old vectors onto whoever's message or conversation gets them."""
    recall = RecallProvider(store, embedder=Embedder(model="m", base_url=fake_openai.url, api_key="k"))
    store.set_forget_cascade([recall.forget_user])  # as the composition root does
    carol = store.directory.ensure_user("local", "carol")
    carols = store.conversations.start_conversation(Owner.user(carol.id), "assistant")  # conversation 1
    store.conversations.add_message(carols.id, "user", "carol one")  # messages 1, 2
    store.conversations.add_message(carols.id, "assistant", "ok")
    alice = store.directory.ensure_user("local", "alice")
    alices = store.conversations.start_conversation(Owner.user(alice.id), "assistant")  # conversation 2
    said = [store.conversations.add_message(alices.id, "user", f"alice {n}") for n in range(2)]  # messages 3, 4
    vector = unit(np.ones(8, dtype=np.float32))
    recall.index.save([(m.id, vector) for m in said])
    assert {i for i, _ in recall.index.search([alices.id], vector)} == {m.id for m in said}  # now held in memory

    store.forget_user(alice.id)
    later = [store.conversations.add_message(carols.id, "user", f"carol {n}") for n in range(2)]  # messages 3, 4 again
    bob = store.directory.ensure_user("local", "bob")
    bobs = store.conversations.start_conversation(Owner.user(bob.id), "assistant")  # conversation 2 again
    if dialect(store.db) == "sqlite":  # PostgreSQL's identities never hand an id out twice
        assert bobs.id == alices.id and {m.id for m in later} == {m.id for m in said}
    store.conversations.set_boundary(bobs.id, 100)
    assert not set(recall.rank(store.conversations.conversation(bobs.id), "anything", query_vector=vector)) & {m.id for m in later}
    await recall.close()
