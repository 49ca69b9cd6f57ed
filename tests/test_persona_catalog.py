"""Personas kept in the database next to the persona files."""

import pytest

from memory.persona_catalog import PersonaCatalog
from memory.store import Owner
from personas import Persona, PersonaError, PersonaLibrary


@pytest.fixture
def catalog(store):
    return PersonaCatalog(store, PersonaLibrary())


def test_files_and_stored_personas_are_found_by_id(catalog, store):
    assert catalog.require(None).id == "assistant"
    stored = catalog.add(Persona(id="nova", name="Nova", description="a star pilot"), source="card")
    assert catalog.get("nova") == stored
    assert catalog.entry("nova").source == "card"
    assert "nova" in catalog and "nova" in catalog.ids()
    with pytest.raises(PersonaError, match="no persona 'ghost'"):
        catalog.require("ghost")


def test_ids_never_collide(catalog):
    first = catalog.add(Persona(id="assistant", name="Assistant Clone"), source="card")
    second = catalog.add(Persona(id="assistant-clone", name="Assistant Clone"), source="card")
    assert first.id not in ("assistant",) and second.id != first.id


def test_private_personas_are_offered_only_to_their_owner_until_published(catalog, store):
    alice = store.ensure_user("tg", 1)
    bob = store.ensure_user("tg", 2)
    private = catalog.add(Persona(id="secret", name="Secret"), source="card", owner=alice)
    assert private.id in [e.persona.id for e in catalog.available_to(alice)]
    assert private.id not in [e.persona.id for e in catalog.available_to(bob)]
    assert catalog.may_use(private.id, alice) and not catalog.may_use(private.id, bob)
    catalog.publish(private.id)
    assert catalog.may_use(private.id, bob)
    assert private.id in [p.id for p in catalog.all()]


def test_updates_are_seen_and_forget_removes_private_personas(catalog, store):
    alice = store.ensure_user("tg", 1)
    persona = catalog.add(Persona(id="mine", name="Mine"), source="novel", owner=alice, avatar=b"PNG")
    assert catalog.avatar(persona.id) == b"PNG"
    catalog.update(persona.model_copy(update={"description": "changed"}))
    assert catalog.get(persona.id).description == "changed"
    store.start_conversation(Owner.user(alice.id), persona.id)
    store.forget_user(alice.id)
    assert catalog.get(persona.id) is None
