"""Directory: users and groups, on both backends: a real SQLite file and a real PostgreSQL database."""

import pytest

from memory.records import Owner


@pytest.fixture
def store(backend_store):
    return backend_store




def test_user_is_created_once_and_refreshed(store):
    alice = store.directory.ensure_user("tg", 42, display_name="Alice", language="en")
    again = store.directory.ensure_user("tg", "42", display_name="Alice B.")
    assert again.id == alice.id
    assert again.display_name == "Alice B."
    assert again.language == "en"
    assert store.directory.find_user("tg", 43) is None
    assert store.directory.ensure_user("local", "42").id != alice.id  # platforms do not mix


def test_each_owner_talks_to_its_own_persona(store):
    user = store.directory.ensure_user("tg", 1)
    assert store.directory.persona_of(Owner.user(user.id)) is None
    store.directory.set_persona_of(Owner.user(user.id), "wukong")
    store.directory.set_persona_of(Owner.group("tg:-100"), "tangseng")  # the group is created on first naming
    assert store.directory.persona_of(Owner.user(user.id)) == "wukong"
    assert store.directory.persona_of(Owner.group("tg:-100")) == "tangseng"
    assert store.directory.ensure_group("tg:-100", "Pilgrims").persona_id == "tangseng"
    assert store.db.execute("SELECT title, persona_id FROM groups").fetchall() == [("Pilgrims", "tangseng")]


def test_only_known_fields_can_change(store):
    user = store.directory.ensure_user("tg", 1, display_name="Alice")
    store.directory.update_user(user.id, timezone="Asia/Shanghai", me_name="Ali")
    assert (store.directory.user(user.id).timezone, store.directory.user(user.id).name) == ("Asia/Shanghai", "Ali")
    with pytest.raises(ValueError, match="external_id"):
        store.directory.update_user(user.id, external_id="2")
    assert store.directory.find_user("tg", 1).external_id == "1"
    assert store.directory.count_users() == 1
