"""Loading persona files.

A `PersonaLibrary` reads the personas shipped in `personas/builtin/` and the operator's
own directory (`COMPANION_PERSONAS_DIR`). Operator files override shipped ones with the
same id. `reload()` re-reads everything, so admins can change personas without a restart;
a broken file is reported and skipped, and the rest keep working.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from personas.schema import Persona, PersonaError

DEFAULT_PERSONA_ID = "assistant"
BUILTIN_DIR = Path(__file__).parent / "builtin"


def load_persona_file(path: Path) -> Persona:
    """Read one TOML persona file; errors name the file, the field and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PersonaError(f"{path}: cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise PersonaError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise PersonaError(f"{path}: invalid TOML: {exc}") from None
    data.setdefault("id", path.stem)
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        raise PersonaError(f"{path}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"field '{field}': {error['msg']}")
    return "; ".join(problems)


class PersonaLibrary:
    def __init__(self, directories: list[Path] | None = None):
        self.directories = [BUILTIN_DIR, *(directories or [])]
        self._personas: dict[str, Persona] = {}
        self.errors: list[str] = []
        self.reload()

    def reload(self) -> list[str]:
        """Re-read every persona file; returns the errors of files that were skipped."""
        personas: dict[str, Persona] = {}
        errors: list[str] = []
        for directory in self.directories:
            if not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.toml")):
                try:
                    persona = load_persona_file(path)
                except PersonaError as exc:
                    errors.append(str(exc))
                    continue
                personas[persona.id] = persona
        if DEFAULT_PERSONA_ID not in personas:
            errors.append(f"the default persona '{DEFAULT_PERSONA_ID}' is missing")
        self._personas, self.errors = personas, errors
        return errors

    def get(self, persona_id: str) -> Persona | None:
        return self._personas.get(persona_id.lower())

    def require(self, persona_id: str | None) -> Persona:
        persona_id = persona_id or DEFAULT_PERSONA_ID
        persona = self.get(persona_id)
        if persona is None:
            known = ", ".join(sorted(self._personas)) or "none"
            raise PersonaError(f"no persona '{persona_id}' (known: {known})")
        return persona

    def all(self) -> list[Persona]:
        return sorted(self._personas.values(), key=lambda p: (p.id != DEFAULT_PERSONA_ID, p.id))

    @property
    def default(self) -> Persona:
        return self.require(DEFAULT_PERSONA_ID)
