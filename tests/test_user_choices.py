"""A user's choices: nothing until chosen, each kept apart from the others. On both backends."""

import pytest

from memory.user_choices import Choices, UserChoices


@pytest.fixture
def store(backend_store):
    return backend_store


def test_choices_start_empty_and_keep_each_other(store):
    choices = UserChoices(store)
    alice = store.directory.ensure_user("tg", 1)
    assert choices.of(alice.id) == Choices()
    choices.set_model(alice.id, "small-model")
    choices.set_voice_replies(alice.id, True)
    choices.confirm_age(alice.id)
    chosen = choices.of(alice.id)
    assert (chosen.model, chosen.voice_replies) == ("small-model", True) and chosen.age_confirmed_at
    choices.set_model(alice.id, None)
    assert choices.of(alice.id).model is None and choices.of(alice.id).voice_replies
