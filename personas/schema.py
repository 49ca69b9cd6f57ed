"""The persona schema.

A persona is everything the model needs to play a character: who it is, how it speaks,
what it says first. Persona files are TOML validated by `Persona`; character cards
are converted into the same model, so the engine only ever sees `Persona`.

Rendering is deterministic: the same persona and user always give the same system
text byte for byte, which keeps the provider's prompt cache warm.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

PERSONA_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class PersonaError(ValueError):
    """A persona file or card that cannot be used; the message says where and why."""


class ModelOverrides(BaseModel):
    """Per-persona model settings; unset fields fall back to the operator's settings."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    reply_tokens: int | None = Field(default=None, gt=0)


class Persona(BaseModel):
    """One character. Field names follow the Character Card spec where one exists."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=PERSONA_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    personality: str = ""
    scenario: str = ""
    greeting: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    example_dialogue: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    starter_prompts: list[str] = Field(default_factory=list)
    language: str | None = None
    model: ModelOverrides = Field(default_factory=ModelOverrides)
    tags: list[str] = Field(default_factory=list)
    avatar: str | None = None
    creator: str = ""
    creator_notes: str = ""
    character_version: str = ""
    # Card fields we do not interpret, kept so that import then export loses nothing.
    extensions: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _lowercase_id(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    def render(self, text: str, user_name: str) -> str:
        """Replace the card macros `{{char}}` and `{{user}}` (and the V1 `<BOT>`/`<USER>`)."""
        return substitute_macros(text, char=self.name, user=user_name)

    def system_text(self, user_name: str = "User", user_description: str = "") -> str:
        """The persona's part of the leading system message."""
        sections: list[str] = []
        if self.system_prompt.strip():
            sections.append(self.system_prompt.strip())
        else:
            sections.append(
                f"You are {{{{char}}}}. Stay in character and reply as {{{{char}}}} would, "
                f"in the language {{{{user}}}} writes in."
            )
        for title, body in (
            ("Description of {{char}}", self.description),
            ("Personality of {{char}}", self.personality),
            ("Scenario", self.scenario),
            ("Examples of how {{char}} speaks", self.example_dialogue),
        ):
            if body.strip():
                sections.append(f"## {title}\n{body.strip()}")
        if user_description.strip():
            sections.append(f"## About {{{{user}}}}\n{user_description.strip()}")
        return self.render("\n\n".join(sections), user_name)


_MACRO = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(BOT|USER)>", re.IGNORECASE)


def substitute_macros(text: str, *, char: str, user: str) -> str:
    def replace(match: re.Match[str]) -> str:
        key = (match.group(1) or match.group(2)).lower()
        return char if key in ("char", "bot") else user

    return _MACRO.sub(replace, text)
