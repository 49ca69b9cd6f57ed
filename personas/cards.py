"""Character cards: importing SillyTavern-style cards as personas and exporting personas as cards.

Formats read (`read_card`): V1 cards (top-level `name`, `description`, `personality`,
`scenario`, `first_mes`, `mes_example`; the older `char_name`/`char_persona`/
`world_scenario`/`char_greeting`/`example_dialogue` spelling too), V2 (`spec:
"chara_card_v2"`, fields under `data`, possibly with V1 mirrors at the top level) and V3
(`"chara_card_v3"`), as JSON, as PNG with base64 JSON in a text chunk (`ccv3` is
preferred over `chara`, as the V3 spec says; `tEXt`, `zTXt` and `iTXt` are read) and as
`.charx` zips. The format is recognised from the bytes, not from the file name.

Field mapping: `first_mes` -> `greeting`, `mes_example` -> `example_dialogue`,
`character_book` -> `lorebook`, every other V2 field to the field of the same name, V3's
`nickname` to `nickname`. Nothing is lost on the way back:
- `extensions` are kept as they are, at card, lorebook and entry level;
- fields under `data` we do not model (V3's `assets`, `source`, `group_only_greetings`,
  `creator_notes_multilingual`, `creation_date`, `modification_date`, anything newer)
  go to `Persona.card_origin.data_fields`; top-level fields besides spec/spec_version/
  data and the V1 mirrors go to `card_origin.root_fields`; unknown lorebook and entry fields go to their
  `unknown_fields` (so does an optional entry field that is null);
- this project's own fields (`starter_prompts`, `language`, `model`) travel in
  `data.extensions["companion_bot"]`.
Exporting (`card_to_dict`, `card_to_json`, `card_to_png`) writes V2 by default. A V3
card exported as V2 keeps all of V2 as V2 fields and moves the V3-only fields (the ones in
`V3_ONLY_FIELDS`, nickname included) into `data.extensions["companion_bot"]["v3_fields"]`:
V2 editors must keep unknown extensions, and importing that V2 card here restores them,
so V3 -> V2 -> V3 gives the original card back. The V1 mirror fields at the top level
(`name`, `first_mes`...) are written for personas that did not come from a card or came
from a V1 card, and for cards that had them (`card_origin.v1_mirrors`); they are
regenerated from the persona, not copied, so they never go stale. Exports do not
touch V3's `modification_date`, so exporting an unchanged persona gives the same bytes.
A `null` where the spec wants text is read as empty text.

A PNG export carries both chunks, `chara` (V2) and `ccv3` (V3), on the persona's avatar
or a generated placeholder.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

from personas.charx import (
    MAX_ASSET_BYTES,
    MAX_CARD_JSON_BYTES,
    is_zip,
    open_charx,
    read_member,
)
from personas.errors import PersonaError
from personas.fields import nesting_depth
from personas.images import (
    is_png,
    open_avatar,
    placeholder_avatar,
    png_with_text,
    read_png_text,
)
from personas.lorebook import SILLYTAVERN_LOGIC_NUMBERS, Lorebook
from personas.schema import Persona, validate_persona

SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
SPEC_V1 = "chara_card_v1"  # our name for cards without a spec field
NAMESPACE = "companion_bot"
MAX_CARD_FILE_BYTES = 32 * 1024 * 1024
# Real cards nest a handful of levels; this stops hostile input long before Python's own limits.
MAX_JSON_NESTING = 64
V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
# Older TavernAI/Pygmalion spelling of the V1 fields.
V1_ALIASES = {
    "name": "char_name",
    "description": "char_persona",
    "scenario": "world_scenario",
    "first_mes": "char_greeting",
    "mes_example": "example_dialogue",
}
V3_ONLY_FIELDS = (
    "nickname",
    "creator_notes_multilingual",
    "source",
    "group_only_greetings",
    "assets",
    "creation_date",
    "modification_date",
)
# Card text field -> Persona field.
_TEXT_FIELDS = {
    "name": "name",
    "description": "description",
    "personality": "personality",
    "scenario": "scenario",
    "first_mes": "greeting",
    "mes_example": "example_dialogue",
    "creator_notes": "creator_notes",
    "system_prompt": "system_prompt",
    "post_history_instructions": "post_history_instructions",
    "creator": "creator",
    "character_version": "character_version",
}
_LIST_FIELDS = {"alternate_greetings": "alternate_greetings", "tags": "tags"}
_MAPPED_DATA_FIELDS = {*_TEXT_FIELDS, *_LIST_FIELDS, "character_book", "extensions"}
_CARD_FIELD_NAMES = {
    **{persona: f"data.{card}" for card, persona in (_TEXT_FIELDS | _LIST_FIELDS).items()},
    "lorebook": "data.character_book",
    "extensions": "data.extensions",
    "nickname": "data.nickname",
}
_BOOK_FIELDS = ("name", "description", "scan_depth", "token_budget", "recursive_scanning", "extensions", "entries")
_ENTRY_REQUIRED = ("keys", "content", "extensions", "enabled", "insertion_order")
# Optional entry fields that matter for matching: a wrong type is an error, not kept aside.
_ENTRY_OPTIONAL_STRICT = ("case_sensitive", "use_regex", "constant", "priority", "selective", "secondary_keys")
# Optional entry fields only shown to people: a value of another type is kept aside as is.
_ENTRY_OPTIONAL_LENIENT = {"name": (str,), "id": (int, str), "comment": (str,), "position": (str,)}
_ENTRY_OPTIONAL = (*_ENTRY_OPTIONAL_STRICT, *_ENTRY_OPTIONAL_LENIENT)


@dataclass(frozen=True)
class ImportedCard:
    """A card read from a file: the persona, the image it came with, and notes for the user."""

    persona: Persona
    spec: str
    # The card's picture as found (the PNG file itself, a .charx main icon); None for JSON.
    avatar: bytes | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


def read_card(
    data: bytes,
    filename: str = "card",
    *,
    persona_id: str | None = None,
    taken_ids: Collection[str] = (),
) -> ImportedCard:
    """Read a character card (JSON, PNG or .charx bytes) as a persona.

    The id is `persona_id` if given, else made from the card's name with
    `persona_id_from_name(name, taken_ids)`. Raises PersonaError starting with `filename`.
    """
    warnings: list[str] = []
    try:
        if len(data) > MAX_CARD_FILE_BYTES:
            raise PersonaError(
                f"the file is over {MAX_CARD_FILE_BYTES // (1024 * 1024)} MB; that is too big for a card"
            )
        avatar: bytes | None = None
        if is_png(data):
            card = _card_from_png(data, warnings)
            avatar = data
        elif is_zip(data):
            card, avatar = _card_from_charx(data, warnings)
        elif filename.lower().endswith((".png", ".charx")):
            kind = "PNG" if filename.lower().endswith(".png") else ".charx (zip)"
            raise PersonaError(f"the file is not a {kind} file; it may be damaged or renamed")
        else:
            card = _parse_card_json(data)
        persona = card_from_dict(card, persona_id=persona_id, taken_ids=taken_ids, warnings=warnings)
    except PersonaError as exc:
        raise PersonaError(f"{filename}: {exc}") from None
    assert persona.card_origin is not None
    return ImportedCard(persona=persona, spec=persona.card_origin.spec, avatar=avatar, warnings=tuple(warnings))


# A V1 card (no `spec`) is a JSON object with a name and one of these; a name and a
# description alone is too common (package.json) to count.
_V1_MARKERS = {"first_mes", "mes_example", "personality", "scenario", *V1_ALIASES.values()} - {"char_name"}


def looks_like_card(data: bytes, filename: str = "card") -> bool:
    """Whether a file means to be a character card, so that a problem with it is a card error.

    A bot that receives all kinds of files asks this before `read_card`: a PNG with a
    `chara`/`ccv3` chunk, any zip or `.charx` file, a `.json` file that is not valid JSON,
    and a JSON object with a card's keys are cards; a plain picture, a zip that is not
    named `.charx` and holds no `card.json`, or JSON of another kind are not.
    """
    name = filename.lower()
    if is_png(data):
        try:
            return bool(read_png_text(data, {"ccv3", "chara"}))
        except PersonaError:
            # A card chunk that is too big or damaged still makes a card (whose error is
            # the answer), not a picture; a damaged picture without one does not.
            return _CARD_CHUNK.search(data) is not None
    if is_zip(data):
        if name.endswith(".charx"):
            return True
        try:
            return "card.json" in open_charx(data).namelist()
        except PersonaError:
            return False
    if name.endswith(".charx"):
        return True
    try:
        parsed = json.loads(data[:MAX_CARD_JSON_BYTES + 1].decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return name.endswith(".json")
    if not isinstance(parsed, dict):
        return False
    named = "name" in parsed or "char_name" in parsed
    return "spec" in parsed or (named and bool(_V1_MARKERS & parsed.keys()))


_CARD_CHUNK = re.compile(rb"(?:tEXt|zTXt|iTXt)(?i:chara|ccv3)\0")


def _card_from_png(data: bytes, warnings: list[str]) -> dict[str, Any]:
    chunks = read_png_text(data, {"ccv3", "chara"})
    if not chunks:
        raise PersonaError(
            "this PNG holds no character card (no 'chara' or 'ccv3' text chunk); it may be a plain "
            "picture, or an app stripped the card when sending it; send the card as a file"
        )
    if "ccv3" in chunks:
        try:
            return _parse_card_json(_decode_chunk_text(chunks["ccv3"]))
        except PersonaError as exc:
            if "chara" not in chunks:
                raise
            warnings.append(f"the V3 card in the PNG is unreadable ({exc}); the V2 card in it was used")
    return _parse_card_json(_decode_chunk_text(chunks["chara"]))


def _decode_chunk_text(text: str) -> bytes:
    text = text.strip()
    if text.startswith("{"):
        return text.encode("utf-8")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise PersonaError("the card chunk in the PNG is not valid base64") from None


def _card_from_charx(data: bytes, warnings: list[str]) -> tuple[dict[str, Any], bytes | None]:
    archive = open_charx(data)
    raw = read_member(archive, "card.json", MAX_CARD_JSON_BYTES)
    if raw is None:
        raise PersonaError("the .charx file has no card.json at its root")
    card = _parse_card_json(raw)
    avatar = None
    path = _main_icon_path(card)
    if path is not None:
        avatar = read_member(archive, path, MAX_ASSET_BYTES)
        if avatar is None:
            warnings.append(f"the card's icon '{path}' is missing from the .charx file")
    return card, avatar


def _main_icon_path(card: dict[str, Any]) -> str | None:
    data = card.get("data")
    assets = data.get("assets") if isinstance(data, dict) else None
    if not isinstance(assets, list):
        return None
    icons = [a for a in assets if isinstance(a, dict) and a.get("type") == "icon" and isinstance(a.get("uri"), str)]
    icons.sort(key=lambda asset: asset.get("name") != "main")
    for icon in icons:
        match = re.match(r"^embedd?ed://(.+)$", icon["uri"])
        if match:
            return match.group(1)
    return None


def _parse_card_json(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_CARD_JSON_BYTES:
        raise PersonaError(f"the card is over {MAX_CARD_JSON_BYTES // (1024 * 1024)} MB of JSON")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PersonaError("the card is not UTF-8 JSON (nor a PNG or .charx card)") from None
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PersonaError(f"the card is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise PersonaError("the card's JSON is nested too deeply") from None
    if not isinstance(card, dict):
        raise PersonaError("the card must be a JSON object ({...}), not a list or a single value")
    if nesting_depth(card) > MAX_JSON_NESTING:
        raise PersonaError("the card's JSON is nested too deeply")
    return card


def card_from_dict(
    card: dict[str, Any],
    *,
    persona_id: str | None = None,
    taken_ids: Collection[str] = (),
    warnings: list[str] | None = None,
) -> Persona:
    """A parsed card (V1, V2 or V3 JSON object) as a persona. Raises PersonaError."""
    warnings = warnings if warnings is not None else []
    spec = card.get("spec")
    if spec is None:
        spec = SPEC_V1
        data = {key: value for key, value in card.items()}
        for canonical, alias in V1_ALIASES.items():
            if data.get(canonical) in (None, "") and isinstance(data.get(alias), str):
                data[canonical] = data[alias]
        root_fields = {key: value for key, value in card.items() if key not in _MAPPED_DATA_FIELDS}
        data = {key: value for key, value in data.items() if key in _MAPPED_DATA_FIELDS}
        spec_version = None
        v1_mirrors = []
    elif spec in (SPEC_V2, SPEC_V3):
        data = card.get("data")
        if not isinstance(data, dict):
            raise PersonaError(f"the card says spec '{spec}' but has no 'data' object")
        v1_mirrors = [key for key in V1_FIELDS if key in card]
        root_fields = {
            key: value for key, value in card.items() if key not in ("spec", "spec_version", "data", *V1_FIELDS)
        }
        spec_version = card.get("spec_version")
        spec_version = str(spec_version) if spec_version is not None else None
        if spec == SPEC_V3 and spec_version and _version_number(spec_version) > 3.0:
            warnings.append(
                f"the card uses V3 spec version {spec_version}, newer than 3.0; fields we do not know are kept"
            )
    elif spec == "lorebook_v3":
        raise PersonaError("this is a lorebook file, not a character card")
    else:
        raise PersonaError(f"unknown card spec '{spec}' (known: {SPEC_V2}, {SPEC_V3}, or none for V1 cards)")

    persona_data: dict[str, Any] = {}
    for card_field, persona_field in _TEXT_FIELDS.items():
        persona_data[persona_field] = _text(data, card_field)
    for card_field, persona_field in _LIST_FIELDS.items():
        persona_data[persona_field] = _text_list(data, card_field)
    name = persona_data["name"].strip()
    if not name:
        raise PersonaError("the card has no name (data.name is empty)")
    extensions = data.get("extensions")
    if extensions is None:
        extensions = {}
    if not isinstance(extensions, dict):
        raise PersonaError("data.extensions must be a JSON object")
    extensions = dict(extensions)
    data_fields = {key: value for key, value in data.items() if key not in _MAPPED_DATA_FIELDS}
    if spec != SPEC_V1:
        data_fields.pop("nickname", None)
    own = extensions.pop(NAMESPACE, None)
    if isinstance(own, dict):
        own = dict(own)
        stashed_v3 = own.pop("v3_fields", None)
        if isinstance(stashed_v3, dict):
            data_fields.update(stashed_v3)
        for key in ("starter_prompts", "language", "model"):
            if key in own:
                persona_data[key] = own.pop(key)
        if own:
            extensions[NAMESPACE] = own
    elif own is not None:
        extensions[NAMESPACE] = own
    nickname = data.get("nickname") if spec != SPEC_V1 else None
    if nickname is None:
        nickname = data_fields.pop("nickname", None)
    if nickname is not None and not isinstance(nickname, str):
        raise PersonaError("data.nickname must be text")
    book = data.get("character_book")
    if book is not None and not isinstance(book, dict):
        raise PersonaError("data.character_book must be a JSON object")

    persona_data.update(
        id=persona_id or persona_id_from_name(name, taken_ids),
        nickname=nickname,
        lorebook=_book_from_card(book) if book is not None else None,
        extensions=extensions,
        card_origin={
            "spec": spec,
            "spec_version": spec_version,
            "data_fields": data_fields,
            "root_fields": root_fields,
            "v1_mirrors": v1_mirrors,
        },
    )
    rename = dict(_CARD_FIELD_NAMES)
    for key in ("starter_prompts", "language", "model"):
        rename[key] = f"data.extensions.{NAMESPACE}.{key}"
    return validate_persona(persona_data, "", rename=rename)


def _version_number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return 0.0


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PersonaError(f"data.{key} must be text, not {_json_type(value)}")
    return value if isinstance(value, str) else str(value)


def _text_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PersonaError(f"data.{key} must be a list of texts")
    return list(value)


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    return "a number"


def _book_from_card(book: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {key: book[key] for key in _BOOK_FIELDS if book.get(key) is not None}
    result["unknown_fields"] = {key: value for key, value in book.items() if key not in result}
    entries = book.get("entries", [])
    if not isinstance(entries, list):
        raise PersonaError("data.character_book.entries must be a list")
    result["entries"] = [_entry_from_card(entry, index) for index, entry in enumerate(entries)]
    return result


def _entry_from_card(entry: Any, index: int) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise PersonaError(f"data.character_book.entries.{index} must be a JSON object")
    result: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in entry.items():
        if key in _ENTRY_REQUIRED and value is not None:
            result[key] = value
        elif (
            key in _ENTRY_OPTIONAL_LENIENT
            and isinstance(value, _ENTRY_OPTIONAL_LENIENT[key])
            and not isinstance(value, bool)
        ):
            result[key] = value
        elif key in _ENTRY_OPTIONAL_STRICT and value is not None:
            result[key] = value
        else:
            unknown[key] = value
    for key in ("keys", "secondary_keys"):
        # Some editors write keys as one comma-separated text.
        if isinstance(result.get(key), str):
            result[key] = [part.strip() for part in result[key].split(",") if part.strip()]
    result["unknown_fields"] = unknown
    return result


def card_to_dict(persona: Persona, spec: Literal["v2", "v3"] = "v2") -> dict[str, Any]:
    """The persona as a card object (V2 by default); see the module docstring for what goes where."""
    origin = persona.card_origin
    extensions = dict(persona.extensions)
    existing = extensions.get(NAMESPACE)
    # Our fields go under our namespace unless a foreign value already sits there.
    own: dict[str, Any] | None = dict(existing) if isinstance(existing, dict) else {} if existing is None else None
    if own is not None:
        if persona.starter_prompts:
            own["starter_prompts"] = list(persona.starter_prompts)
        if persona.language:
            own["language"] = persona.language
        overrides = persona.model.model_dump(exclude_none=True)
        if overrides:
            own["model"] = overrides
    data_fields = dict(origin.data_fields) if origin else {}
    data: dict[str, Any] = {}
    if spec == "v3":
        data.update(data_fields)
        if persona.nickname is not None:
            data["nickname"] = persona.nickname
        data.setdefault("group_only_greetings", [])
    else:
        v3_fields = {key: data_fields.pop(key) for key in V3_ONLY_FIELDS if key in data_fields}
        if persona.nickname is not None:
            v3_fields["nickname"] = persona.nickname
        data.update(data_fields)
        if v3_fields and own is not None:
            own["v3_fields"] = v3_fields
    if own:
        extensions[NAMESPACE] = own
    for card_field, persona_field in (_TEXT_FIELDS | _LIST_FIELDS).items():
        value = getattr(persona, persona_field)
        data[card_field] = list(value) if isinstance(value, list) else value
    data["extensions"] = extensions
    if persona.lorebook is not None:
        data["character_book"] = book_to_card(persona.lorebook, spec)

    card: dict[str, Any] = dict(origin.root_fields) if origin else {}
    mirrored = V1_FIELDS if origin is None or origin.spec == SPEC_V1 else origin.v1_mirrors
    for key in mirrored:
        card[key] = data[key]
    spec_name = SPEC_V3 if spec == "v3" else SPEC_V2
    version = origin.spec_version if origin and origin.spec == spec_name and origin.spec_version else None
    card["spec"] = spec_name
    card["spec_version"] = version or ("3.0" if spec == "v3" else "2.0")
    card["data"] = data
    return card


def book_to_card(book: Lorebook, spec: Literal["v2", "v3"] = "v2") -> dict[str, Any]:
    """A lorebook as a card `character_book` object."""
    result: dict[str, Any] = dict(book.unknown_fields)
    for key in ("name", "description", "scan_depth", "token_budget", "recursive_scanning"):
        value = getattr(book, key)
        if value is not None:
            result[key] = value
    result["extensions"] = dict(book.extensions)
    entries = []
    for entry in book.entries:
        item: dict[str, Any] = dict(entry.unknown_fields)
        extensions = dict(entry.extensions)
        if entry.selective_logic is not None:
            extensions["selectiveLogic"] = SILLYTAVERN_LOGIC_NUMBERS[entry.selective_logic]
        if entry.match_whole_words is not None:
            extensions["match_whole_words"] = entry.match_whole_words
        if entry.scan_depth is not None:
            extensions["scan_depth"] = entry.scan_depth
        item.update(
            keys=list(entry.keys),
            content=entry.content,
            extensions=extensions,
            enabled=entry.enabled,
            insertion_order=entry.insertion_order,
        )
        for key in _ENTRY_OPTIONAL:
            value = getattr(entry, key)
            if value is not None:
                item[key] = list(value) if isinstance(value, list) else value
        if spec == "v3" and entry.use_regex is None:
            item["use_regex"] = False
        entries.append(item)
    result["entries"] = entries
    return result


def card_to_json(persona: Persona, spec: Literal["v2", "v3"] = "v2") -> bytes:
    """The persona as a card JSON file (UTF-8, indented)."""
    return json.dumps(card_to_dict(persona, spec), ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def card_to_png(persona: Persona, avatar: bytes | None = None) -> bytes:
    """The persona as a PNG card carrying a V2 `chara` and a V3 `ccv3` chunk.

    The picture is `avatar` (image bytes in any format Pillow reads), else a placeholder
    with the persona's initials. Raises PersonaError for an avatar that is not an image.
    """
    image = open_avatar(avatar) if avatar is not None else placeholder_avatar(persona.id, persona.name)
    chunks = {
        "chara": _base64_json(card_to_dict(persona, "v2")),
        "ccv3": _base64_json(card_to_dict(persona, "v3")),
    }
    return png_with_text(image, chunks)


def _base64_json(card: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8")).decode("ascii")


def persona_id_from_name(name: str, taken_ids: Collection[str] = ()) -> str:
    """A valid persona id for a card name; the same name always gives the same id.

    Latin names become slugs ("Captain Mara Vale" -> "captain-mara-vale", accents
    folded). When letters would be lost (Chinese, Cyrillic... names) an 8-digit hash of
    the name is appended ("林夕" -> "persona-1a2b3c4d", "Ana 林" -> "ana-..."). If the id
    is in `taken_ids`, "-2", "-3"... is appended until it is free.
    """
    folded = unicodedata.normalize("NFKD", name.strip())
    lost_letters = any(not char.isascii() and unicodedata.category(char)[0] in "LN" for char in folded)
    slug = re.sub(r"[^a-z0-9]+", "-", folded.encode("ascii", "ignore").decode("ascii").lower())
    slug = slug.strip("-")[:40].strip("-")
    if lost_letters or not slug:
        digest = hashlib.sha256(name.strip().encode("utf-8")).hexdigest()[:8]
        slug = f"{slug or 'persona'}-{digest}"
    taken = {taken_id.lower() for taken_id in taken_ids}
    candidate, number = slug, 2
    while candidate in taken:
        candidate = f"{slug}-{number}"
        number += 1
    return candidate


__all__ = [
    "ImportedCard",
    "looks_like_card",
    "NAMESPACE",
    "V3_ONLY_FIELDS",
    "book_to_card",
    "card_from_dict",
    "card_to_dict",
    "card_to_json",
    "card_to_png",
    "persona_id_from_name",
    "read_card",
]
