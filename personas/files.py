"""Persona files on disk: reading one TOML file, writing a persona back as TOML.

A persona file is `<id>.toml` (the id defaults to the file name) with the fields of
`Persona`, a `[model]` table for model overrides and a `[lorebook]` table with
`[[lorebook.entries]]`. The avatar is a path relative to the file and must stay inside
the personas directory (symlinks are resolved before the check).

`persona_to_toml` writes any persona, including one imported from a card, so that
loading the text gives the same persona back. Default values are left out to keep the
file short, and text with line breaks is written as multi-line strings so that operators
can edit it. TOML has no null, so a free-form JSON object (extensions, kept card fields)
that holds one is written as indented JSON in a multi-line string, which the loader
reads back.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomlkit

from personas.errors import PersonaError
from personas.fields import contains_null
from personas.images import avatar_png
from personas.schema import Persona, is_valid_persona_id, validate_persona

MAX_PERSONA_FILE_BYTES = 1024 * 1024
_JSON_OBJECT_FIELDS = {"extensions", "unknown_fields", "data_fields", "root_fields"}


def load_persona_file(path: Path, personas_dir: Path | None = None) -> Persona:
    """Read one TOML persona file; errors name the file, the field and the problem.

    `personas_dir` is the directory the avatar must stay inside (default: the file's).
    """
    try:
        with path.open("rb") as file:  # never more than the cap in memory, however big the file
            raw = file.read(MAX_PERSONA_FILE_BYTES + 1)
    except OSError as exc:
        raise PersonaError(f"{path}: cannot read the file ({exc.strerror})") from None
    if len(raw) > MAX_PERSONA_FILE_BYTES:
        raise PersonaError(f"{path}: the file is over {MAX_PERSONA_FILE_BYTES // 1024} KB; shorten it")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PersonaError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PersonaError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise PersonaError(f"{path}: tables or arrays nested too deeply; flatten them") from None
    if "id" not in data:
        if not is_valid_persona_id(path.stem.lower()):
            raise PersonaError(
                f"{path}: no 'id' field, and the file name '{path.stem}' is not a valid id; add id = \"...\""
            )
        data["id"] = path.stem
    persona = validate_persona(data, str(path))
    if persona.avatar is not None:
        check_avatar_path(persona.avatar, path, personas_dir or path.parent)
    return persona


def check_avatar_path(avatar: str, persona_file: Path, personas_dir: Path) -> Path:
    """The avatar's absolute path; PersonaError if it escapes `personas_dir` or is missing."""
    root = personas_dir.resolve()
    resolved = (persona_file.parent / avatar).resolve()
    if not resolved.is_relative_to(root):
        raise PersonaError(f"{persona_file}: field 'avatar': '{avatar}' points outside the personas directory {root}")
    if not resolved.is_file():
        raise PersonaError(f"{persona_file}: field 'avatar': no image file '{avatar}' next to the persona file")
    return resolved


def persona_to_toml(persona: Persona) -> str:
    """The persona as the text of a persona file; loading it gives the same persona."""
    dumped = persona.model_dump(mode="json", exclude_defaults=True)
    dumped = {"id": persona.id, "name": persona.name, **dumped}
    header = f"# Persona '{persona.name}'"
    if persona.card_origin is not None:
        header += f", imported from a {persona.card_origin.spec} character card"
    return f"{header}.\n" + tomlkit.dumps(_tomlable(dumped))


def _tomlable(value: Any) -> Any:
    """Multi-line strings where they help; JSON objects holding nulls as JSON text."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key in _JSON_OBJECT_FIELDS and isinstance(item, dict) and contains_null(item):
                result[key] = _json_text(item)
            else:
                result[key] = _tomlable(item)
        return result
    if isinstance(value, list):
        return [_tomlable(item) for item in value]
    if isinstance(value, str) and "\n" in value and "\r" not in value:
        # TOML readers may turn "\r\n" inside multi-line strings into "\n"; such text stays escaped.
        return tomlkit.string(value, multiline=True)
    return value


def _json_text(value: dict[str, Any]) -> Any:
    text = json.dumps(value, ensure_ascii=False, indent=2)
    # Literal strings cannot hold three single quotes or DEL; JSON escapes other control characters.
    literal = "'''" not in text and "\x7f" not in text
    return tomlkit.string(text, literal=literal, multiline=True)


def write_persona_file(
    persona: Persona,
    directory: Path,
    *,
    avatar: bytes | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a persona as `<directory>/<id>.toml`, with `avatar` (any image) as `<id>.png`.

    Returns the path of the TOML file. Refuses to replace an existing file unless
    `overwrite`; writes each file whole (temporary file, then rename), and removes a
    new avatar again if the persona file cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    toml_path = directory / f"{persona.id}.toml"
    if toml_path.exists() and not overwrite:
        raise PersonaError(f"{toml_path} already exists; choose another id or allow overwriting")
    avatar_path = None
    if avatar is not None:
        png = avatar_png(avatar)
        avatar_path = directory / f"{persona.id}.png"
        if avatar_path.exists() and not overwrite:
            raise PersonaError(f"{avatar_path} already exists; choose another id or allow overwriting")
        persona = persona.model_copy(update={"avatar": avatar_path.name})
        write_atomically(avatar_path, png)
    try:
        write_atomically(toml_path, persona_to_toml(persona).encode("utf-8"))
    except OSError as exc:
        if avatar_path is not None:
            avatar_path.unlink(missing_ok=True)
        raise PersonaError(f"{toml_path}: cannot write the file ({exc.strerror})") from None
    return toml_path


def write_atomically(path: Path, content: bytes) -> None:
    """Write a file whole or not at all: a temporary file next to it, then a rename."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
