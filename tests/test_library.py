"""The persona library: shipped personas, operator directories overriding them, reload,
broken files skipped with an error while the rest keep working."""

from __future__ import annotations

from pathlib import Path

import pytest

from personas import DEFAULT_PERSONA_ID, PersonaError, PersonaLibrary


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_library():
    library = PersonaLibrary()
    assert library.errors == []
    assert library.ids()[0] == DEFAULT_PERSONA_ID
    assert library.default.id == DEFAULT_PERSONA_ID
    assert library.require(None).id == DEFAULT_PERSONA_ID
    assert library.require("MARA").id == "mara"
    assert "linxi" in library and "nobody" not in library
    assert library.is_builtin("mara")
    assert library.source_path("mara").name == "mara.toml"
    assert library.avatar_path("mara") is None


def test_unknown_persona_lists_the_known_ones():
    with pytest.raises(PersonaError, match=r"no persona 'nobody' \(known: assistant, linxi, mara"):
        PersonaLibrary().require("nobody")


def test_operator_directory_overrides_builtin_and_adds_personas(tmp_path):
    write(tmp_path, "mara.toml", 'name = "Operator Mara"\n')
    write(tmp_path, "nova.toml", 'name = "Nova"\n')
    library = PersonaLibrary([tmp_path])
    assert library.errors == []
    assert library.require("mara").name == "Operator Mara"
    assert not library.is_builtin("mara")
    assert library.source_path("mara") == tmp_path / "mara.toml"
    assert library.require("nova").name == "Nova"
    assert library.require("linxi").name == "林夕"


def test_broken_file_is_skipped_with_an_error_and_the_rest_work(tmp_path):
    write(tmp_path, "a_good.toml", 'name = "Good"\n')
    broken = write(tmp_path, "broken.toml", 'name = "Broken\n')
    bad_field = write(tmp_path, "mara.toml", 'name = "Mara"\ntemperature = 3\n')
    library = PersonaLibrary([tmp_path])
    assert len(library.errors) == 2
    assert library.errors[0].startswith(f"{broken}: invalid TOML")
    assert library.errors[1].startswith(f"{bad_field}: unknown field 'temperature'")
    assert library.require("a_good").name == "Good"
    # The shipped persona the broken file tried to replace is still there.
    assert library.require("mara").name == "Captain Mara Vale"


def test_duplicate_id_in_one_directory(tmp_path):
    write(tmp_path, "a.toml", 'id = "same"\nname = "First"\n')
    second = write(tmp_path, "b.toml", 'id = "same"\nname = "Second"\n')
    library = PersonaLibrary([tmp_path])
    assert library.require("same").name == "First"
    assert library.errors == [f"{second}: id 'same' is already used by a.toml; skipped"]


def test_reload_picks_up_changes(tmp_path):
    path = write(tmp_path, "nova.toml", 'name = "Nova"\n')
    library = PersonaLibrary([tmp_path])
    path.write_text('name = "Nova Prime"\n', encoding="utf-8")
    write(tmp_path, "orion.toml", 'name = "Orion"\n')
    assert library.reload() == []
    assert library.require("nova").name == "Nova Prime"
    assert library.require("orion").name == "Orion"
    path.unlink()
    library.reload()
    assert "nova" not in library


def test_reload_with_a_newly_broken_file_keeps_others(tmp_path):
    path = write(tmp_path, "nova.toml", 'name = "Nova"\n')
    library = PersonaLibrary([tmp_path])
    path.write_text("name = \n", encoding="utf-8")
    errors = library.reload()
    assert len(errors) == 1 and errors[0].startswith(str(path))
    assert "nova" not in library and "mara" in library


def test_missing_operator_directory_is_reported(tmp_path):
    library = PersonaLibrary([tmp_path / "absent"])
    assert library.errors == [f"{tmp_path / 'absent'}: personas directory not found"]
    assert library.default.id == DEFAULT_PERSONA_ID


def test_operator_avatar(tmp_path):
    write(tmp_path, "nova.toml", 'name = "Nova"\navatar = "img/nova.png"\n')
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "nova.png").write_bytes(b"\x89PNG")
    library = PersonaLibrary([tmp_path])
    assert library.avatar_path("nova") == (tmp_path / "img" / "nova.png").resolve()


def test_avatar_outside_the_operator_directory_is_an_error(tmp_path):
    personas_dir = tmp_path / "personas"
    write(personas_dir, "nova.toml", 'name = "Nova"\navatar = "sub/../../x.png"\n')
    library = PersonaLibrary([personas_dir])
    assert "nova" not in library
    assert "field 'avatar'" in library.errors[0]
