"""Pictures go to the model with one turn only; the history stays text."""

import pytest

from memory.records import Owner
from memory.vision import ImageInput, with_images
from tests.conftest import said


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


def test_images_join_the_last_user_message():
    payload = [{"role": "system", "content": "s"}, {"role": "user", "content": "doc"},
               {"role": "assistant", "content": "a"}, {"role": "user", "content": "[photo] my cat"}]
    sent = with_images(payload, [ImageInput(b"\x89PNG", "image/png")])
    assert sent[:3] == payload[:3] and payload[3]["content"] == "[photo] my cat"
    assert sent[3]["content"] == [{"type": "text", "text": "[photo] my cat"},
                                  {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}]
    assert with_images(payload, []) is payload


async def test_a_photo_turn_sends_the_image_once_and_stores_the_description(engine, store, fake_openai):
    user = store.directory.ensure_user("local", "alice")
    conversation = engine.conversation_for(Owner.user(user.id), user=user)
    fake_openai.enqueue("A tabby!", "Yes, the same cat.")
    result = await engine.submit(conversation.id, "[photo] my cat", user=user, images=[ImageInput(b"jpeg")])
    assert result.ok
    first = fake_openai.chat_requests[0].messages[-1]["content"]
    assert first[1] == {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,anBlZw=="}}
    assert said(first[0]["text"]) == "[photo] my cat"
    assert [m.content for m in store.conversations.messages(conversation.id)] == ["[photo] my cat", "A tabby!"]
    assert store.usage.calibration_ratios() == {}  # image tokens are not ours to count
    await engine.submit(conversation.id, "what colour was it?", user=user)
    later = fake_openai.chat_requests[1].messages
    assert all(isinstance(m["content"], str) for m in later)
    assert later[-3]["content"] == "[photo] my cat"
