"""The user persona: who the user says they are (`/me`), read from one line of text.

    /me                                   show it
    /me Alice — a night-shift nurse who loves cats
    /me 小雨，一个爱猫的夜班护士
    /me Alice                             the name only (the description is kept)
    /me — loves cats and rainy days       the description only (the name is kept)
    /me I work nights and love cats       no separator, long: a description
    /me clear                             forget both

The name replaces `{{user}}` in persona texts and is how the character calls the user;
the description goes into the leading system message (both in `memory/engine.py`), so
they are capped: every request carries them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 1000
CLEAR_WORDS = {"clear", "reset", "forget", "清除", "清空", "重置"}
# The first of these splits "name — description": dashes, a bar, colons, commas, semicolons
# (Chinese forms too), or a hyphen with spaces around it (names may contain hyphens).
_SEPARATOR = re.compile(r"\s*(?:[—–|:：,，;；、]|--)\s*|\s+-\s+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True)
class MeRequest:
    action: Literal["show", "clear", "set"]
    name: str | None = None  # None: keep the current one
    description: str | None = None  # None: keep the current one

    @property
    def too_long(self) -> bool:
        return len(self.name or "") > MAX_NAME_CHARS or len(self.description or "") > MAX_DESCRIPTION_CHARS


def parse_me(args: str | None) -> MeRequest:
    value = (args or "").strip()
    if not value:
        return MeRequest("show")
    if value.lower() in CLEAR_WORDS:
        return MeRequest("clear")
    separator = _SEPARATOR.search(value)
    if separator is None:
        if _looks_like_a_name(value):
            return MeRequest("set", name=" ".join(value.split()))
        return MeRequest("set", description=value)
    name = " ".join(value[: separator.start()].split())
    description = value[separator.end():].strip()
    return MeRequest("set", name=name or None, description=description or None)


def _looks_like_a_name(value: str) -> bool:
    """Short, few words: "Alice", "Mary Ann Lee", "小雨"; not "I work nights and love cats"."""
    if _CJK.search(value):
        return len(value) <= 8
    return len(value) <= 32 and len(value.split()) <= 3
