"""The persona schema.

A persona is everything the model needs to play a character: who it is, how it speaks,
what it says first, what it knows about its world (a lorebook). Persona files are TOML
validated by `Persona`; character cards are converted into the same model, so the engine
only ever sees `Persona`. A persona also round-trips through JSON (`model_dump(mode=
"json")` / `model_validate`), which is how user-private personas are stored.

Field names follow the Character Card spec where one exists (`first_mes` is `greeting`,
`mes_example` is `example_dialogue`, `character_book` is `lorebook`). `card_origin`
remembers the spec of an imported card and the card fields we keep without interpreting,
so exporting it again loses nothing.

Rendering is deterministic: the same persona and user always give the same system
text byte for byte, which keeps the provider's prompt cache warm.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from personas.errors import PersonaError, describe_validation_error
from personas.fields import JsonObject, text_bytes
from personas.lorebook import Lorebook, LoreEntry, format_lore, select_lore

__all__ = [
    "CardOrigin",
    "MAX_PERSONA_TEXT_BYTES",
    "ModelOverrides",
    "Persona",
    "PersonaError",
    "substitute_macros",
]

PERSONA_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_PERSONA_ID = re.compile(PERSONA_ID_PATTERN)
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

# All the text of one persona (card) together: descriptions, greetings, lorebook,
# extensions. Large enough for rich cards with big lorebooks, small enough that one
# persona cannot eat a model's context or the bot's memory.
MAX_PERSONA_TEXT_BYTES = 200 * 1024

DEFAULT_INSTRUCTION = (
    "You are {{char}}. Stay in character and reply as {{char}} would, in the language {{user}} writes in."
)


class ModelOverrides(BaseModel):
    """Per-persona model settings; unset fields fall back to the operator's settings."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    reply_tokens: int | None = Field(default=None, gt=0)


class CardOrigin(BaseModel):
    """Where an imported persona came from, and the card fields it has no place for."""

    model_config = ConfigDict(extra="forbid")

    spec: Literal["chara_card_v1", "chara_card_v2", "chara_card_v3"]
    spec_version: str | None = None
    # Fields under the card's `data` that Persona does not model (V3's assets, source,
    # creation_date, group_only_greetings... and anything newer), kept verbatim.
    data_fields: JsonObject = Field(default_factory=dict)
    # Fields at the card's top level besides spec/spec_version/data and the V1 mirrors
    # (SillyTavern's avatar/chat/create_date...), kept verbatim.
    root_fields: JsonObject = Field(default_factory=dict)
    # The V1 fields (name, first_mes...) a V2/V3 card repeated at its top level; they are
    # written again, from the persona, on export.
    v1_mirrors: list[str] = Field(default_factory=list)


class Persona(BaseModel):
    """One character. Field names follow the Character Card spec where one exists."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(min_length=1, max_length=200)
    # V3: replaces the name in `{{char}}` when set.
    nickname: str | None = Field(default=None, max_length=200)
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
    # A path relative to the persona file, inside the personas directory.
    avatar: str | None = None
    creator: str = ""
    creator_notes: str = ""
    character_version: str = ""
    lorebook: Lorebook | None = None
    # Card fields we do not interpret, kept so that import then export loses nothing.
    extensions: JsonObject = Field(default_factory=dict)
    card_origin: CardOrigin | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _check_id(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.lower()
        if not is_valid_persona_id(value):
            raise ValueError(
                f"'{value}' is not a valid persona id: use 1-64 characters a-z, 0-9, '_', '.', '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str | None) -> str | None:
        if value is not None and not _LANGUAGE_TAG.match(value):
            raise ValueError(f"'{value}' is not a language code; write one like 'en', 'zh' or 'zh-Hans'")
        return value

    @field_validator("avatar")
    @classmethod
    def _check_avatar(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("the avatar path is empty; remove the field or name an image file")
        posix, windows = PurePosixPath(value), PureWindowsPath(value)
        if (
            posix.is_absolute()
            or windows.is_absolute()
            or windows.drive
            or ".." in posix.parts
            or ".." in windows.parts
        ):
            raise ValueError(
                f"avatar '{value}' must be a path relative to the persona file that stays inside "
                "the personas directory (no leading '/', no '..')"
            )
        return value

    @model_validator(mode="after")
    def _check_size(self) -> Persona:
        dumped = self.model_dump(mode="json")
        total = text_bytes(dumped)
        if total > MAX_PERSONA_TEXT_BYTES:
            largest = max(dumped, key=lambda field: text_bytes(dumped[field]))
            raise ValueError(
                f"the persona holds {total // 1024} KB of text, over the {MAX_PERSONA_TEXT_BYTES // 1024} KB "
                f"limit (largest field: '{largest}', {text_bytes(dumped[largest]) // 1024} KB); shorten it"
            )
        return self

    @property
    def display_name(self) -> str:
        """The name `{{char}}` stands for: the V3 nickname when set, else the name."""
        return self.nickname or self.name

    @property
    def greetings(self) -> list[str]:
        """The first message and its alternates, empty ones left out."""
        return [text for text in (self.greeting, *self.alternate_greetings) if text.strip()]

    def render(self, text: str, user_name: str) -> str:
        """Replace the card macros `{{char}}` and `{{user}}` (and the V1 `<BOT>`/`<USER>`)."""
        return substitute_macros(text, char=self.display_name, user=user_name)

    def summary(self, user_name: str = "User", limit: int = 80) -> str:
        """One line for menus: the description's first sentence (else the creator's notes), cut to `limit`."""
        source = self.description if self.description.strip() else self.creator_notes
        line = " ".join(self.render(source, user_name).split())
        end = _SENTENCE_END.search(line)
        if end is not None:
            line = line[: end.end()].rstrip()
        return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"

    def system_text(self, user_name: str = "User", user_description: str = "") -> str:
        """The persona's part of the leading system message."""
        sections: list[str] = []
        instruction = self.system_prompt.strip()
        if instruction:
            # V2 spec: `{{original}}` in a card's system prompt stands for the frontend's own.
            instruction = _ORIGINAL.sub(lambda _: DEFAULT_INSTRUCTION, instruction)
        else:
            instruction = DEFAULT_INSTRUCTION
            if self.language:
                instruction += f" Your usual language is '{self.language}'."
        sections.append(instruction)
        titles = _SECTION_TITLES["zh" if (self.language or "").lower().startswith("zh") else "en"]
        for title, body in zip(
            titles[:4],
            (self.description, self.personality, self.scenario, format_example_dialogue(self.example_dialogue)),
            strict=True,
        ):
            if body.strip():
                sections.append(f"## {title}\n{body.strip()}")
        if user_description.strip():
            sections.append(f"## {titles[-1]}\n{user_description.strip()}")
        return self.render("\n\n".join(sections), user_name)

    def lore_text(
        self,
        recent_messages: Sequence[str],
        user_name: str,
        count_tokens: Callable[[str], int],
        budget_tokens: int,
    ) -> str:
        """The lorebook entries triggered by the recent messages, rendered; "" if none."""
        if self.lorebook is None:
            return ""
        entries = select_lore(self.lorebook, recent_messages, count_tokens, budget_tokens)
        return self.render(format_lore(entries), user_name)


# Section titles of the system text, in the persona's language (Chinese or English).
_SECTION_TITLES = {
    "en": (
        "Description of {{char}}",
        "Personality of {{char}}",
        "Scenario",
        "Examples of how {{char}} speaks",
        "About {{user}}",
    ),
    "zh": ("{{char}}的简介", "{{char}}的性格", "场景", "{{char}}的说话示例", "关于{{user}}"),
}
_KNOWN_FIELD_NAMES = sorted(
    {*Persona.model_fields, *ModelOverrides.model_fields, *Lorebook.model_fields, *LoreEntry.model_fields}
)
_MACRO = re.compile(r"\{\{\s*(char|user|original)\s*\}\}|<(BOT|USER|CHAR)>", re.IGNORECASE)
_ORIGINAL = re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE)
# The end of a first sentence: CJK full stops anywhere, Latin ones before a space.
_SENTENCE_END = re.compile(r"[。！？]|[.!?](?=\s)")
_START_MARKER = re.compile(r"^[ \t]*<START>[ \t]*$", re.IGNORECASE | re.MULTILINE)


def is_valid_persona_id(text: str) -> bool:
    return _PERSONA_ID.match(text) is not None


def substitute_macros(text: str, *, char: str, user: str) -> str:
    """Replace `{{char}}`, `{{user}}`, `<BOT>`, `<CHAR>`, `<USER>`; drop `{{original}}`."""

    def replace(match: re.Match[str]) -> str:
        key = (match.group(1) or match.group(2)).lower()
        if key == "original":
            return ""
        return user if key == "user" else char

    return _MACRO.sub(replace, text)


def format_example_dialogue(text: str) -> str:
    """Card example dialogue with its `<START>` separators turned into blank lines."""
    blocks = [block.strip() for block in _START_MARKER.split(text)]
    return "\n\n".join(block for block in blocks if block)


def validate_persona(data: dict[str, Any], where: str, *, rename: dict[str, str] | None = None) -> Persona:
    """Validate persona data, or raise one PersonaError (starting with `where`, if given)."""
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_error(exc, known_fields=_KNOWN_FIELD_NAMES, rename=rename)
        raise PersonaError(f"{where}: {problems}" if where else problems) from None
