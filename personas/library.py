"""The set of personas the bot can play.

A `PersonaLibrary` reads the personas shipped in `personas/builtin/` and then the
operator's own directories (`COMPANION_PERSONAS_DIR`), each `*.toml` file in them, in
name order. A later directory overrides an earlier one for the same id, so operators can
replace a shipped persona; two files with the same id in one directory are an error for
the second. `reload()` re-reads everything and swaps the result in at once, so admins
can change personas without a restart; a broken file is reported in `errors` and
skipped, and the rest (including the shipped persona it tried to override) keep working.
"""

from __future__ import annotations

from pathlib import Path

from personas.errors import PersonaError
from personas.files import load_persona_file
from personas.schema import Persona

DEFAULT_PERSONA_ID = "assistant"
BUILTIN_DIR = Path(__file__).parent / "builtin"


class PersonaLibrary:
    def __init__(self, directories: list[Path] | None = None):
        self.directories = [BUILTIN_DIR, *(directories or [])]
        self._personas: dict[str, Persona] = {}
        self._sources: dict[str, Path] = {}
        self.errors: list[str] = []
        self.reload()

    def reload(self) -> list[str]:
        """Re-read every persona file; returns the errors of files that were skipped."""
        personas: dict[str, Persona] = {}
        sources: dict[str, Path] = {}
        errors: list[str] = []
        for directory in self.directories:
            if not directory.is_dir():
                if directory != BUILTIN_DIR:
                    errors.append(f"{directory}: personas directory not found")
                continue
            seen_here: dict[str, Path] = {}
            for path in sorted(directory.glob("*.toml")):
                try:
                    persona = load_persona_file(path, directory)
                except PersonaError as exc:
                    errors.append(str(exc))
                    continue
                if persona.id in seen_here:
                    errors.append(f"{path}: id '{persona.id}' is already used by {seen_here[persona.id].name}; skipped")
                    continue
                seen_here[persona.id] = path
                personas[persona.id] = persona
                sources[persona.id] = path
        if DEFAULT_PERSONA_ID not in personas:
            errors.append(f"the default persona '{DEFAULT_PERSONA_ID}' is missing")
        self._personas, self._sources, self.errors = personas, sources, errors
        return errors

    def get(self, persona_id: str) -> Persona | None:
        return self._personas.get(persona_id.lower())

    def require(self, persona_id: str | None) -> Persona:
        """The persona with this id (the default one for None); PersonaError if unknown."""
        persona_id = persona_id or DEFAULT_PERSONA_ID
        persona = self.get(persona_id)
        if persona is None:
            known = ", ".join(sorted(self._personas)) or "none"
            raise PersonaError(f"no persona '{persona_id}' (known: {known})")
        return persona

    def all(self) -> list[Persona]:
        """Every persona, the default first, then by id."""
        return sorted(self._personas.values(), key=lambda p: (p.id != DEFAULT_PERSONA_ID, p.id))

    def ids(self) -> list[str]:
        return [persona.id for persona in self.all()]

    def __contains__(self, persona_id: object) -> bool:
        return isinstance(persona_id, str) and persona_id.lower() in self._personas

    def __len__(self) -> int:
        return len(self._personas)

    @property
    def default(self) -> Persona:
        return self.require(DEFAULT_PERSONA_ID)

    def source_path(self, persona_id: str) -> Path | None:
        """The file the persona was read from."""
        return self._sources.get(persona_id.lower())

    def is_builtin(self, persona_id: str) -> bool:
        source = self.source_path(persona_id)
        return source is not None and source.parent == BUILTIN_DIR

    def avatar_path(self, persona_id: str) -> Path | None:
        """The persona's avatar image file, if it has one (checked when it was loaded)."""
        persona, source = self.get(persona_id), self.source_path(persona_id)
        if persona is None or source is None or persona.avatar is None:
            return None
        return (source.parent / persona.avatar).resolve()
