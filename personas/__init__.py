"""Characters the bot can play: the persona schema, persona files (the ones shipped with
the product and the operator's), persona libraries, character-card import/export and
lorebooks.

This package imports nothing else of ours: the engine in `memory/` reads personas,
never the other way round. Everything a caller needs is exported here:

- `PersonaLibrary(directories).require(id)` / `.all()` / `.reload()` / `.errors`
- `Persona.system_text(user, user_description)`, `.render(text, user)`, `.greetings`,
  `.lore_text(recent_messages, user, count_tokens, budget_tokens)`
- `read_card(bytes, filename, taken_ids=...) -> ImportedCard`, `looks_like_card(bytes, filename)`,
  `card_to_json(persona, spec)`, `card_to_png(persona, avatar)`
- `persona_to_toml(persona)`, `write_persona_file(persona, directory, avatar=...)`
- `select_lore(book, recent_messages, count_tokens, budget_tokens)`, `format_lore(entries)`

Every error is a `PersonaError` whose message is meant for the user.
"""

from personas.cards import (
    ImportedCard,
    card_from_dict,
    card_to_dict,
    card_to_json,
    card_to_png,
    looks_like_card,
    persona_id_from_name,
    read_card,
)
from personas.errors import PersonaError
from personas.files import load_persona_file, persona_to_toml, write_persona_file
from personas.library import DEFAULT_PERSONA_ID, PersonaLibrary
from personas.lorebook import (
    DEFAULT_SCAN_DEPTH,
    Lorebook,
    LoreEntry,
    SelectiveLogic,
    format_lore,
    select_lore,
)
from personas.schema import MAX_PERSONA_TEXT_BYTES, CardOrigin, ModelOverrides, Persona

__all__ = [
    "DEFAULT_PERSONA_ID",
    "DEFAULT_SCAN_DEPTH",
    "MAX_PERSONA_TEXT_BYTES",
    "CardOrigin",
    "ImportedCard",
    "LoreEntry",
    "Lorebook",
    "ModelOverrides",
    "Persona",
    "PersonaError",
    "PersonaLibrary",
    "SelectiveLogic",
    "card_from_dict",
    "card_to_dict",
    "card_to_json",
    "card_to_png",
    "format_lore",
    "load_persona_file",
    "looks_like_card",
    "persona_id_from_name",
    "persona_to_toml",
    "read_card",
    "select_lore",
    "write_persona_file",
]
