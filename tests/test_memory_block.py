"""The static memory section: rendered deterministically, within its caps, stored as sent. On both backends."""

import pytest

from memory.assembly import Budget
from memory.compaction import Segment, SummaryStore
from memory.engine import TurnContext
from memory.facts import FactStore
from memory.memory_block import MemoryBlock
from memory.records import Owner
from personas import PersonaLibrary


@pytest.fixture
def store(backend_store):
    return backend_store


def setup(store, segments=3, facts=3, words=40):
    user = store.directory.ensure_user("local", "mia")
    owner = Owner.user(user.id)
    conversation = store.conversations.start_conversation(owner, "assistant")
    ids = [store.conversations.add_message(conversation.id, "user", f"m{i}").id for i in range(segments * 2)]
    summaries, fact_store = SummaryStore(store), FactStore(store)
    for index in range(segments):
        first, last = ids[2 * index], ids[2 * index + 1]
        content = f"Summary {index}: " + "they talked about the moon. " * words
        summaries.save(conversation.id, Segment(None, 1, first, last, "2024-03-01T09:00:00.000+00:00",
                                                "2024-03-01T10:00:00.000+00:00", content, words * 6))
    for index in range(facts):
        fact_store.add(owner, "assistant", f"Fact {index}: Mia likes tea number {index}.", origin="model")
    return user, conversation, MemoryBlock(store, summaries, fact_store)


def context(store, user, conversation, window):
    persona = PersonaLibrary().default
    return TurnContext(store.conversations.conversation(conversation.id), persona, user, "", Budget.for_window(window))


def test_section_is_rendered_once_and_reused_byte_for_byte(store):
    user, conversation, block = setup(store)
    first = block.static_block(context(store, user, conversation, 32_768))
    assert first.section == "memory" and first.content.startswith("[Long-term memory")
    assert first.content.index("Summary 0") < first.content.index("Summary 2") < first.content.index("Fact 0")
    assert "[Fri 2024-03-01 09:00 – Fri 2024-03-01 10:00]" in first.content
    assert first.source_ids[:1] == ("summary:1",) and first.source_ids[-1] == "fact:3"
    FactStore(store).add(conversation.owner, "assistant", "A new fact.", origin="model")
    again = block.static_block(context(store, user, conversation, 32_768))
    assert again == first  # a model-learned fact does not change the section by itself
    block.mark_stale(conversation.owner, "assistant")
    assert "A new fact." in block.static_block(context(store, user, conversation, 32_768)).content


def test_caps_keep_the_newest_summaries_and_facts(store):
    user, conversation, block = setup(store, segments=6, facts=40, words=60)
    big = block.static_block(context(store, user, conversation, 32_768))
    small = block.static_block(context(store, user, conversation, 4096))
    assert small.tokens < big.tokens and small.tokens <= 4096 * (0.15 + 0.05) + 100
    assert "Summary 5" in small.content and "Summary 0" not in small.content
    assert "Fact 39" in small.content and "Fact 0:" not in small.content
    assert block.state(conversation.id).block == big.content  # the shrunk form is not stored
