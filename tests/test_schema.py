"""The persona schema: shipped personas, validation errors that name file and field,
macros, the system text, the size cap and the JSON round trip the engine relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from personas import MAX_PERSONA_TEXT_BYTES, Persona, PersonaError, PersonaLibrary, load_persona_file
from personas.library import BUILTIN_DIR
from personas.schema import format_example_dialogue, substitute_macros, validate_persona


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", sorted(BUILTIN_DIR.glob("*.toml")), ids=lambda path: path.stem)
def test_shipped_personas_load_and_round_trip_through_json(path):
    persona = load_persona_file(path)
    assert persona.id == path.stem
    assert Persona.model_validate(persona.model_dump(mode="json")) == persona
    assert Persona.model_validate_json(persona.model_dump_json()) == persona


def test_shipped_companions_are_complete():
    library = PersonaLibrary()
    assert {"assistant", "linxi", "mara"} <= set(library.ids())
    for persona_id, language in (("linxi", "zh"), ("mara", "en")):
        persona = library.require(persona_id)
        assert persona.language == language
        assert persona.greeting and len(persona.alternate_greetings) >= 2
        assert len(persona.starter_prompts) >= 3
        assert "<START>" in persona.example_dialogue
        assert persona.lorebook is not None and len(persona.lorebook.entries) >= 4
        assert any(entry.constant for entry in persona.lorebook.entries)
        assert any(entry.secondary_keys for entry in persona.lorebook.entries)


def test_chinese_persona_is_written_in_chinese():
    linxi = PersonaLibrary().require("linxi")
    chinese = sum(1 for char in linxi.description + linxi.greeting if "\u4e00" <= char <= "\u9fff")
    assert chinese > 100
    assert "## 林夕的简介" in linxi.system_text("小明")


def test_missing_id_comes_from_the_file_name(tmp_path):
    persona = load_persona_file(write(tmp_path, "nova.toml", 'name = "Nova"\n'))
    assert persona.id == "nova"


def test_file_name_that_is_not_an_id_needs_an_id_field(tmp_path):
    path = write(tmp_path, "My Character.toml", 'name = "Nova"\n')
    with pytest.raises(PersonaError) as caught:
        load_persona_file(path)
    assert str(path) in str(caught.value) and "add id =" in str(caught.value)


def test_malformed_toml_names_the_file_and_the_line(tmp_path):
    path = write(tmp_path, "broken.toml", 'name = "Nova"\ngreeting = "unterminated\n')
    with pytest.raises(PersonaError) as caught:
        load_persona_file(path)
    assert str(caught.value).startswith(f"{path}: invalid TOML")
    assert "line 2" in str(caught.value)


@pytest.mark.parametrize("value", ["{a = " * 5000 + "1" + "}" * 5000, "[" * 100_000 + "]" * 100_000])
def test_toml_nested_too_deeply_is_an_error_not_a_crash(tmp_path, value):
    path = write(tmp_path, "deep.toml", f'name = "Nova"\nextensions = {{ deep = {value} }}\n')
    with pytest.raises(PersonaError, match="nested too deeply"):
        load_persona_file(path)


def test_a_huge_persona_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.toml"
    with path.open("wb") as file:
        file.truncate(2 * 1024**3)  # sparse: 2 GB on paper; reading it would take 2 GB of memory
    with pytest.raises(PersonaError, match="over 1024 KB"):
        load_persona_file(path)


def test_wrong_type_names_the_file_and_the_field(tmp_path):
    path = write(tmp_path, "nova.toml", 'name = "Nova"\n[model]\ntemperature = "hot"\n')
    with pytest.raises(PersonaError) as caught:
        load_persona_file(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "field 'model.temperature'" in message


def test_unknown_field_suggests_the_right_name(tmp_path):
    path = write(tmp_path, "nova.toml", 'name = "Nova"\ngreting = "hi"\n')
    with pytest.raises(PersonaError, match=r"unknown field 'greting' \(did you mean 'greeting'\?\)"):
        load_persona_file(path)


def test_unknown_lorebook_entry_field_is_named_with_its_path(tmp_path):
    text = 'name = "Nova"\n[[lorebook.entries]]\nkeys = ["a"]\ncontent = "b"\nsecondery_keys = ["c"]\n'
    with pytest.raises(
        PersonaError, match=r"unknown field 'lorebook\.entries\.0\.secondery_keys' \(did you mean 'secondary_keys'\?\)"
    ):
        load_persona_file(write(tmp_path, "nova.toml", text))


def test_bad_id_and_language_explain_the_rule(tmp_path):
    with pytest.raises(PersonaError, match=r"field 'id': 'no spaces' is not a valid persona id"):
        load_persona_file(write(tmp_path, "a.toml", 'id = "no spaces"\nname = "A"\n'))
    with pytest.raises(PersonaError, match=r"field 'language': 'Chinese!' is not a language code"):
        load_persona_file(write(tmp_path, "b.toml", 'name = "B"\nlanguage = "Chinese!"\n'))


def test_non_utf8_file_is_reported(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes('name = "Zoë"\n'.encode("latin-1"))
    with pytest.raises(PersonaError, match="not UTF-8"):
        load_persona_file(path)


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes('\ufeffname = "Bom"\n'.encode("utf-8"))
    assert load_persona_file(path).name == "Bom"


@pytest.mark.parametrize("avatar", ["/etc/passwd", "../outside.png", "images/../../x.png", "C:\\x.png", ""])
def test_avatar_must_stay_inside_the_personas_directory(tmp_path, avatar):
    path = write(tmp_path, "a.toml", f'name = "A"\navatar = {avatar!r}\n'.replace("'", '"').replace("\\", "\\\\"))
    with pytest.raises(PersonaError, match="field 'avatar'"):
        load_persona_file(path)


def test_avatar_symlink_escaping_the_directory_is_refused(tmp_path):
    personas_dir = tmp_path / "personas"
    personas_dir.mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not really a png")
    (personas_dir / "link.png").symlink_to(outside)
    path = write(personas_dir, "a.toml", 'name = "A"\navatar = "link.png"\n')
    with pytest.raises(PersonaError, match="points outside the personas directory"):
        load_persona_file(path)


def test_missing_avatar_file_is_reported(tmp_path):
    with pytest.raises(PersonaError, match="no image file 'a.png'"):
        load_persona_file(write(tmp_path, "a.toml", 'name = "A"\navatar = "a.png"\n'))


def test_avatar_in_a_subdirectory_is_fine(tmp_path):
    (tmp_path / "avatars").mkdir()
    (tmp_path / "avatars" / "a.png").write_bytes(b"png")
    assert (
        load_persona_file(write(tmp_path, "a.toml", 'name = "A"\navatar = "avatars/a.png"\n')).avatar == "avatars/a.png"
    )


def test_text_over_the_cap_is_refused_with_the_largest_field():
    with pytest.raises(PersonaError) as caught:
        validate_persona({"id": "big", "name": "Big", "scenario": "x" * (MAX_PERSONA_TEXT_BYTES + 1)}, "big.toml")
    message = str(caught.value)
    assert message.startswith("big.toml: the persona holds") and "limit" in message and "'scenario'" in message


def test_cap_counts_utf8_bytes_and_lorebook_text():
    chinese_under_by_characters = "字" * (MAX_PERSONA_TEXT_BYTES // 2)
    with pytest.raises(PersonaError, match="'lorebook'"):
        validate_persona(
            {
                "id": "b",
                "name": "B",
                "lorebook": {"entries": [{"keys": ["a"], "content": chinese_under_by_characters}]},
            },
            "b",
        )


def test_macros():
    assert substitute_macros("{{char}} and {{ USER }}, <BOT> <USER> <char>", char="Mara", user="Sam") == (
        "Mara and Sam, Mara Sam Mara"
    )
    assert substitute_macros("{{original}}rest", char="a", user="b") == "rest"


def test_render_uses_the_nickname_when_set():
    persona = Persona(id="m", name="Captain Mara Vale", nickname="Mara")
    assert persona.render("I am {{char}}", "Sam") == "I am Mara"
    assert persona.display_name == "Mara"
    assert Persona(id="m", name="Mara Vale", nickname="").display_name == "Mara Vale"


def test_system_text_is_deterministic_and_complete():
    persona = Persona(
        id="a",
        name="Alice",
        description="{{char}} is a gardener.",
        personality="Kind.",
        scenario="{{user}} visits.",
        example_dialogue="<START>\n{{user}}: hi\n{{char}}: hello\n<START>\n{{user}}: bye",
    )
    text = persona.system_text("Bob", "Bob likes roses.")
    assert text == persona.system_text("Bob", "Bob likes roses.")
    assert text.startswith("You are Alice.")
    assert "## Description of Alice\nAlice is a gardener." in text
    assert "## Scenario\nBob visits." in text
    assert "## Examples of how Alice speaks\nBob: hi\nAlice: hello\n\nBob: bye" in text
    assert text.endswith("## About Bob\nBob likes roses.")
    assert "<START>" not in text


def test_system_prompt_original_macro_inserts_the_default_instruction():
    persona = Persona(id="a", name="Alice", system_prompt="{{original}} Be brief.")
    assert persona.system_text("Bob").startswith("You are Alice. Stay in character")
    assert "Be brief." in persona.system_text("Bob")


def test_greetings_skip_empty_ones():
    persona = Persona(id="a", name="A", greeting="", alternate_greetings=["hi", " ", "hello"])
    assert persona.greetings == ["hi", "hello"]


def test_format_example_dialogue_without_markers_is_unchanged():
    assert format_example_dialogue("A: hi\nB: hello") == "A: hi\nB: hello"


def test_summary_is_the_first_sentence_rendered_and_cut():
    persona = Persona(id="s", name="Sera", description="{{char}} guards the forest. She heals {{user}}.")
    assert persona.summary("Ann") == "Sera guards the forest."
    chinese = Persona(id="l", name="林夕", description="林夕，二十七岁，开旧书店。喜欢猫。")
    assert chinese.summary() == "林夕，二十七岁，开旧书店。"
    assert Persona(id="n", name="N", creator_notes="Notes only.\nMore").summary() == "Notes only."
    assert Persona(id="v", name="V", description="v1.2 is   out").summary() == "v1.2 is out"
    long = Persona(id="x", name="X", description="word " * 40).summary(limit=20)
    assert long == "word word word word…" and len(long) <= 20
    assert Persona(id="e", name="E").summary() == ""
