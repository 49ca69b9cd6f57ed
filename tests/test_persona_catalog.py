"""Personas kept in the database next to the persona files. On both backends."""

import base64
import json

import pytest

from memory.persona_catalog import PersonaCatalog
from memory.records import Owner
from personas import Persona, PersonaError, PersonaLibrary, card_to_dict, read_card
from personas.images import read_png_text
from tests.card_samples import (
    as_json,
    png_with_chunk_before_iend,
    png_with_pillow_text,
    rich_v2_card,
    rich_v3_card,
    to_base64_json,
    v1_card,
)


@pytest.fixture
def store(backend_store):
    return backend_store


@pytest.fixture
def catalog(store):
    catalog = PersonaCatalog(store, PersonaLibrary())
    store.set_forget_cascade([catalog.forget_user])  # as the composition root does
    return catalog


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
    alice = store.directory.ensure_user("tg", 1)
    bob = store.directory.ensure_user("tg", 2)
    private = catalog.add(Persona(id="secret", name="Secret"), source="card", owner=alice)
    assert private.id in [e.persona.id for e in catalog.available_to(alice)]
    assert private.id not in [e.persona.id for e in catalog.available_to(bob)]
    assert catalog.may_use(private.id, alice) and not catalog.may_use(private.id, bob)
    catalog.publish(private.id)
    assert catalog.may_use(private.id, bob)
    assert private.id in [p.id for p in catalog.all()]


def test_updates_are_seen_and_forget_removes_private_personas(catalog, store):
    alice = store.directory.ensure_user("tg", 1)
    persona = catalog.add(Persona(id="mine", name="Mine"), source="novel", owner=alice, avatar=b"PNG")
    assert catalog.avatar(persona.id) == b"PNG"
    catalog.update(persona.model_copy(update={"description": "changed"}))
    assert catalog.get(persona.id).description == "changed"
    store.conversations.start_conversation(Owner.user(alice.id), persona.id)
    store.forget_user(alice.id)
    assert catalog.get(persona.id) is None


def test_import_card_stores_a_private_persona_with_a_clean_avatar(catalog, store):
    alice = store.directory.ensure_user("tg", 1)
    png = png_with_pillow_text({"chara": to_base64_json(rich_v2_card()), "Comment": "secret"})
    imported = catalog.import_card(png, "sera.png", owner=alice)
    assert imported.persona.id == "seraphina" and imported.warnings == ()
    entry = catalog.entry("seraphina")
    assert entry.private and entry.owner_user_id == alice.id and entry.source == "card"
    avatar = catalog.avatar("seraphina")
    assert avatar == imported.avatar and read_png_text(avatar, {"chara", "comment"}) == {}
    assert catalog.import_card(png, "sera.png").persona.id == "seraphina-2"  # never over a used id
    assert not catalog.entry("seraphina-2").private


def test_a_card_whose_picture_cannot_be_decoded_keeps_the_card_without_it(catalog):
    card = png_with_chunk_before_iend("chara", to_base64_json(v1_card()))
    broken_pixels = card.replace(b"IDAT", b"IDAX")  # the chunk walk still works, the pixels are gone
    imported = catalog.import_card(broken_pixels, "tom.png")
    assert imported.avatar is None and "picture is not used" in imported.warnings[0]
    assert catalog.get("old-tom").name == "Old Tom" and catalog.avatar("old-tom") is None


def test_bad_cards_store_nothing(catalog, store):
    for data, name in ((b'{"name": ', "a.json"), (b"\x89PNG\r\n\x1a\n", "b.png"), (as_json({"spec": "x"}), "c.json")):
        with pytest.raises(PersonaError, match=f"^{name}: "):
            catalog.import_card(data, name)
    assert store.db.execute("SELECT count(*) FROM stored_personas").fetchone()[0] == 0


def test_export_card_as_json_and_png(catalog):
    catalog.import_card(as_json(rich_v3_card()), "sera.json")
    persona = catalog.require("seraphina")
    assert json.loads(catalog.export_card("seraphina", "json", spec="v3")) == card_to_dict(persona, "v3")
    chunks = read_png_text(catalog.export_card("seraphina", "png"), {"chara", "ccv3"})
    assert json.loads(base64.b64decode(chunks["ccv3"])) == card_to_dict(persona, "v3")
    assert read_card(catalog.export_card("linxi", "png"), "linxi.png").persona.name == "林夕"
    with pytest.raises(PersonaError, match="no persona 'ghost'"):
        catalog.export_card("ghost", "png")


def test_unpublished_lists_private_personas_until_published(catalog, store):
    alice = store.directory.ensure_user("tg", 1)
    catalog.add(Persona(id="shared", name="Shared"), source="card")
    catalog.add(Persona(id="mine", name="Mine"), source="card", owner=alice)
    assert [entry.persona.id for entry in catalog.unpublished()] == ["mine"]
    catalog.publish("mine")
    assert catalog.unpublished() == []
