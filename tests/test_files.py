"""Persona files written by `persona_to_toml` / `write_persona_file` load back as the same
persona, imported cards included, and export as the same card."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personas import (
    Persona,
    PersonaError,
    PersonaLibrary,
    card_to_dict,
    load_persona_file,
    persona_to_toml,
    read_card,
    write_persona_file,
)
from personas.images import placeholder_avatar
from tests.card_samples import as_json, png_with_pillow_text, rich_v2_card, rich_v3_card, to_base64_json, v1_card


@pytest.mark.parametrize("persona_id", ["assistant", "linxi", "mara"])
def test_shipped_personas_survive_toml(tmp_path, persona_id):
    persona = PersonaLibrary().require(persona_id)
    path = tmp_path / f"{persona_id}.toml"
    path.write_text(persona_to_toml(persona), encoding="utf-8")
    assert load_persona_file(path) == persona


@pytest.mark.parametrize(("make_card", "spec"), [(rich_v2_card, "v2"), (rich_v3_card, "v3"), (v1_card, "v2")])
def test_imported_cards_saved_as_toml_export_the_same_card(tmp_path, make_card, spec):
    original = make_card()
    persona = read_card(as_json(original), "card.json").persona
    text = persona_to_toml(persona)
    tomllib.loads(text)
    path = tmp_path / f"{persona.id}.toml"
    path.write_text(text, encoding="utf-8")
    loaded = load_persona_file(path)
    assert loaded == persona
    if make_card is not v1_card:
        assert card_to_dict(loaded, spec) == original


def test_json_objects_with_nulls_are_written_as_json_text():
    persona = read_card(as_json(rich_v2_card()), "s.json").persona
    parsed = tomllib.loads(persona_to_toml(persona))
    assert isinstance(parsed["extensions"], str) and json.loads(parsed["extensions"])["some_tool/nullable"] is None
    first_entry = parsed["lorebook"]["entries"][0]
    assert isinstance(first_entry["extensions"], str)
    assert isinstance(parsed["lorebook"]["unknown_fields"], dict)


def test_bad_json_text_in_a_persona_file_is_reported(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('name = "A"\nextensions = "{not json"\n', encoding="utf-8")
    with pytest.raises(PersonaError, match=r"field 'extensions': a JSON object written as text must be valid JSON"):
        load_persona_file(path)


def test_write_persona_file_with_avatar(tmp_path):
    imported = read_card(png_with_pillow_text({"chara": to_base64_json(rich_v3_card())}), "sera.png")
    path = write_persona_file(imported.persona, tmp_path / "personas", avatar=imported.avatar)
    assert path == tmp_path / "personas" / "seraphina.toml"
    avatar_file = tmp_path / "personas" / "seraphina.png"
    assert avatar_file.read_bytes().startswith(b"\x89PNG")
    assert b"chara" not in avatar_file.read_bytes()  # the card chunk is not copied into the avatar
    library = PersonaLibrary([tmp_path / "personas"])
    assert library.errors == []
    loaded = library.require("seraphina")
    assert loaded.avatar == "seraphina.png"
    assert library.avatar_path("seraphina") == avatar_file.resolve()
    assert loaded.model_dump(exclude={"avatar"}) == imported.persona.model_dump(exclude={"avatar"})


def test_write_persona_file_refuses_to_overwrite(tmp_path):
    persona = Persona(id="a", name="A")
    write_persona_file(persona, tmp_path)
    with pytest.raises(PersonaError, match="already exists"):
        write_persona_file(persona, tmp_path)
    write_persona_file(persona.model_copy(update={"name": "B"}), tmp_path, overwrite=True)
    assert load_persona_file(tmp_path / "a.toml").name == "B"


def test_write_persona_file_with_a_bad_avatar_writes_nothing(tmp_path):
    with pytest.raises(PersonaError, match="not an image"):
        write_persona_file(Persona(id="a", name="A"), tmp_path, avatar=b"not an image")
    assert list(tmp_path.iterdir()) == []


awkward_pieces = st.one_of(
    st.text(max_size=5),
    st.sampled_from(["\n", "\r\n", "\r", '"""', '"', "'''", "\\", "\t", "\x7f", "\x00", "{{char}}"]),
)
awkward_text = st.lists(awkward_pieces, max_size=8).map("".join)


@settings(max_examples=60, deadline=None)
@given(
    description=awkward_text,
    greeting=awkward_text,
    extension_value=st.one_of(st.none(), awkward_text),
    entry_content=awkward_text,
)
def test_any_text_survives_toml(tmp_path_factory, description, greeting, extension_value, entry_content):
    persona = Persona(
        id="fuzz",
        name="Fuzz",
        description=description,
        greeting=greeting,
        extensions={"x": extension_value, "nested": {"y": [extension_value]}},
        lorebook={"entries": [{"keys": ["k"], "content": entry_content, "extensions": {"z": extension_value}}]},
    )
    path = tmp_path_factory.mktemp("toml") / "fuzz.toml"
    path.write_text(persona_to_toml(persona), encoding="utf-8")
    assert load_persona_file(path) == persona


def test_the_readme_example_persona_file_loads(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "nova.toml").write_text(example, encoding="utf-8")
    placeholder_avatar("nova", "Nova").save(tmp_path / "nova.png")
    persona = load_persona_file(tmp_path / "nova.toml")
    assert (persona.id, persona.name, persona.lorebook.scan_depth) == ("nova", "Nova", 4)
    assert persona.lore_text(["Tell me about the moons of Kell"], "Ann", len, 1000).startswith("Kell is a gas")
    assert persona.lore_text(["长安的灯笼真好看"], "Ann", len, 1000) == "长安的夜市灯火通明。"
