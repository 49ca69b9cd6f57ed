"""Merging facts the model proposes: duplicates dropped, contradictions replace, deleted stay deleted. On both backends."""

import pytest

from memory.facts import FactExtractor, FactStore, same_fact
from memory.model_client import ModelClient
from memory.records import Owner


@pytest.fixture
def store(backend_store):
    return backend_store


def setup(store):
    user = store.directory.ensure_user("local", "mia")
    owner = Owner.user(user.id)
    conversation = store.conversations.start_conversation(owner, "assistant")
    said = store.conversations.add_message(conversation.id, "user", "I moved to Berlin, and my sister Anna visits in May.")
    facts = FactStore(store)
    extractor = FactExtractor(facts, ModelClient(base_url="http://127.0.0.1:9/v1", api_key="unused"), model="m")
    return owner, said, facts, extractor


def test_same_fact_ignores_case_spacing_and_punctuation():
    assert same_fact("Mia's cat is Mochi.", "mia’s cat is mochi")
    assert same_fact("小芳喜欢榴莲。", "小芳喜欢榴莲")
    assert not same_fact("Mia lives in Paris.", "Mia lives in Berlin.")


def test_merge_adds_replaces_and_drops(store):
    owner, said, facts, extractor = setup(store)
    paris = facts.add(owner, "assistant", "Mia lives in Paris.", origin="user")
    deleted = facts.add(owner, "assistant", "Mia hates tea.", origin="model")
    facts.delete(owner, "assistant", deleted.id)
    result = extractor.merge(owner, "assistant", [
        {"text": "Mia lives in Berlin.", "topic": "home", "replaces": paris.id, "sources": [said.id]},
        {"text": "Mia's sister Anna visits in May.", "replaces": 9999, "sources": [12345]},
        {"text": "MIA LIVES IN BERLIN"},  # the same again
        {"text": "Mia hates tea!"},  # the user deleted it
        {"text": "   "},
        {"fact": "Anna is Mia's sister.", "sources": ["#%d" % said.id]},
    ], [store.conversations.message(said.id)], facts.active(owner, "assistant"))
    assert [f.text for f in result.added] == ["Mia lives in Berlin.", "Mia's sister Anna visits in May.",
                                             "Anna is Mia's sister."]
    assert result.replaced == [paris.id] and result.skipped == 3
    assert [f.text for f in facts.active(owner, "assistant")] == [f.text for f in result.added]
    berlin = result.added[0]
    assert berlin.replaces == paris.id and berlin.topic == "home" and berlin.source_ids == (said.id,)
    assert berlin.said_at == said.created_at
    assert result.added[1].source_ids == (said.id,)  # unknown sources fall back to the messages read
    assert facts.get(owner, "assistant", paris.id).status == "replaced"


def test_facts_are_scoped_to_owner_and_persona(store):
    owner, _, facts, _ = setup(store)
    other = Owner.user(store.directory.ensure_user("local", "bob").id)
    fact = facts.add(owner, "assistant", "Mia likes jazz.", origin="user")
    assert facts.active(other, "assistant") == [] and facts.active(owner, "luna") == []
    assert facts.get(other, "assistant", fact.id) is None
    assert facts.delete(other, "assistant", fact.id) is False


def test_forgetting_messages_removes_facts_stated_only_there(store):
    owner, said, facts, _ = setup(store)
    learned = facts.add(owner, "assistant", "Mia moved to Berlin.", origin="model", source_ids=[said.id])
    typed = facts.add(owner, "assistant", "Mia likes jazz.", origin="user")
    assert facts.forget_messages([said.id]) == 1
    assert [f.id for f in facts.active(owner, "assistant")] == [typed.id]
    assert learned.id not in [f.id for f in facts.active(owner, "assistant")]
