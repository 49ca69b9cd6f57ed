"""Which model answers a conversation, and with which context window.

The operator offers a menu of models (`COMPANION_MODELS`, each with its window); the
default model (`COMPANION_MODEL`) is always on it. The model of a turn is, in order:

1. the persona's own (`[model] model = "…"` in a persona file): a character written for
   one model keeps it;
2. the model the user chose with /model, in their own (private) conversations, while the
   operator still offers it; a group talks to the default model, so that who happens to
   speak does not switch the model (and the provider's prompt cache) on every message;
3. the operator's default.

The window travels with the model: the engine sizes the request budget from it, so a
smaller model's request is cut to fit that model, not the default one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from memory.records import Conversation
from memory.user_choices import UserChoices
from personas import Persona


@dataclass(frozen=True)
class ModelOption:
    name: str
    window: int


@dataclass(frozen=True)
class ModelRoute:
    model: str
    window: int | None  # None: the engine's own window
    source: str  # persona | user | default


class ModelMenu:
    """The models users may pick: the default first, then the operator's list."""

    def __init__(self, default: ModelOption, options: Sequence[ModelOption] = ()) -> None:
        self.default = default
        self.options = [default] + [o for o in options if o.name != default.name]

    def find(self, name: str | None) -> ModelOption | None:
        if not name:
            return None
        wanted = name.strip().lower()
        return next((o for o in self.options if o.name.lower() == wanted), None)

    def window_of(self, name: str) -> int | None:
        option = self.find(name)
        return option.window if option else None

    @property
    def has_choice(self) -> bool:
        return len(self.options) > 1


class ModelRouter:
    def __init__(self, menu: ModelMenu, choices: UserChoices) -> None:
        self.menu = menu
        self.choices = choices

    def route(self, conversation: Conversation, persona: Persona) -> ModelRoute:
        if persona.model.model:
            return ModelRoute(persona.model.model, self.menu.window_of(persona.model.model), "persona")
        if conversation.user_id is not None:
            chosen = self.menu.find(self.choices.of(conversation.user_id).model)
            if chosen is not None and chosen.name != self.menu.default.name:
                return ModelRoute(chosen.name, chosen.window, "user")
        return ModelRoute(self.menu.default.name, self.menu.default.window, "default")
