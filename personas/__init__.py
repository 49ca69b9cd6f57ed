"""Characters the bot can play: the persona schema, the persona files shipped with the
product, persona libraries, and (later) character-card import/export and lorebooks.

This package imports nothing else of ours: the engine in `memory/` reads personas,
never the other way round.
"""

from personas.schema import ModelOverrides, Persona, PersonaError
from personas.library import DEFAULT_PERSONA_ID, PersonaLibrary

__all__ = [
    "DEFAULT_PERSONA_ID",
    "ModelOverrides",
    "Persona",
    "PersonaError",
    "PersonaLibrary",
]
