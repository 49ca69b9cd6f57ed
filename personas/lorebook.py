"""Lorebooks: facts about a character's world that enter the prompt only when relevant.

A lorebook (the Character Card spec's `character_book`, SillyTavern's "World Info") is a
list of entries. Each entry has keys; when a key appears in the recent conversation, the
entry's content is added to the prompt. This module holds the model of a lorebook and
the pure function that picks the entries for one turn.

Matching rules (SillyTavern's, adapted to Chinese):
- An entry is considered when it is enabled and its content (decorators stripped) is not
  empty. `constant` entries and entries carrying the V3 decorator `@@activate` always
  trigger; `@@dont_activate` entries never do (unless `@@activate` is also present).
- Otherwise one primary key must match. When the entry is selective (`selective` true, or
  left out while `secondary_keys` is non-empty) the secondary keys must then satisfy the
  entry's logic: AND ANY (one of them matches), AND ALL (all match), NOT ANY (none
  matches), NOT ALL (at least one does not match). SillyTavern stores the logic as
  `extensions.selectiveLogic` (0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL); persona
  files may write `selective_logic = "and_all"` instead.
- Plain keys are case-insensitive unless the entry says `case_sensitive`. A key whose end
  is a letter or digit of a space-separated script (Latin, Cyrillic, Greek...) must stand
  as a whole word there, so "cat" does not fire on "category"; keys in scripts written
  without spaces (Chinese, Japanese, Korean, Thai...) match anywhere, so "长安" fires inside
  "我想去长安看看". An entry can turn whole-word matching off with `match_whole_words =
  false` (SillyTavern: `extensions.match_whole_words`).
- A key written `/pattern/flags` is a regular expression (SillyTavern); with the V3 field
  `use_regex` every key is one (flags: entry case sensitivity). JavaScript's named groups
  are translated. A pattern that does not compile is rejected when the lorebook is
  loaded, never while a user is chatting.
- The scan window is the last `scan_depth` messages: the caller's value, else the book's
  `scan_depth`, else `DEFAULT_SCAN_DEPTH` (2: the user's newest message and the reply
  before it, SillyTavern's default). An entry may set its own depth (`scan_depth`,
  `extensions.scan_depth`, or the V3 decorator `@@scan_depth N`).
- With `recursive_scanning`, the content of chosen entries is scanned too (at most
  `MAX_RECURSION_PASSES` more rounds), except content of entries with
  `extensions.prevent_recursion`; entries with `extensions.exclude_recursion` are never
  triggered that way.

Budget and order: triggered entries are admitted constant ones first, then by priority
(the entry's `priority`, else its `insertion_order`; higher is kept first, as the V2 spec
and SillyTavern do), then by position in the book. An entry whose content does not fit in
what is left of the budget is skipped and smaller ones after it may still fit. The chosen
entries come out constant ones first, then by `insertion_order` ascending (lower is
inserted higher), then by position in the book, so the same conversation always gives the
same lore text byte for byte.

Key matching does not substitute `{{char}}`/`{{user}}` inside keys; contents are rendered
by the persona (`Persona.lore_text`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from personas.fields import JsonObject

DEFAULT_SCAN_DEPTH = 2
MAX_RECURSION_PASSES = 3


class SelectiveLogic(StrEnum):
    AND_ANY = "and_any"
    AND_ALL = "and_all"
    NOT_ANY = "not_any"
    NOT_ALL = "not_all"


# SillyTavern's `world_info_logic` numbers, as stored in `extensions.selectiveLogic`.
SILLYTAVERN_LOGIC_CODES = {
    0: SelectiveLogic.AND_ANY,
    1: SelectiveLogic.NOT_ALL,
    2: SelectiveLogic.NOT_ANY,
    3: SelectiveLogic.AND_ALL,
}
SILLYTAVERN_LOGIC_NUMBERS = {logic: code for code, logic in SILLYTAVERN_LOGIC_CODES.items()}

# Scripts written without spaces between words: keys in them are matched as substrings.
# Hangul is spaced, but particles attach to nouns ("서울에서"), so it is matched the same way.
_SPACELESS_RANGES = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff"  # Hangul Jamo
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3005-\u3007\u3021-\u3029"  # ideographic marks and numerals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u312f\u3130-\u318f\u31a0-\u31ff"  # Bopomofo, Hangul compatibility
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff\uff66-\uff9f"  # compatibility ideographs, half-width Katakana
    "\U00020000-\U0003134f"  # CJK extensions B..H
)
# A word character of a script that separates words with spaces.
_SPACED_WORD_CHAR = f"[^\\W{_SPACELESS_RANGES}]"
_SPACED_WORD_CHAR_RE = re.compile(_SPACED_WORD_CHAR)
_SLASHED_REGEX = re.compile(r"^/(.+)/([a-z]*)$", re.DOTALL)
_JS_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "g": 0, "u": 0, "y": 0, "d": 0, "v": 0}
_JS_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")
_JS_BACKREFERENCE = re.compile(r"\\k<([A-Za-z_][A-Za-z0-9_]*)>")

KNOWN_DECORATORS = frozenset({"activate", "dont_activate", "scan_depth"})


def compile_key(key: str, *, use_regex: bool, case_sensitive: bool, whole_words: bool) -> re.Pattern[str] | None:
    """The pattern a lorebook key matches with; None for a blank key. Raises ValueError."""
    stripped = key.strip()
    if not stripped:
        return None
    slashed = _SLASHED_REGEX.match(stripped)
    if slashed:
        pattern, flag_letters = slashed.groups()
        flags = 0
        for letter in flag_letters:
            if letter not in _JS_FLAGS:
                raise ValueError(f"key '{key}' has an unknown regex flag '{letter}' (use i, m or s)")
            flags |= _JS_FLAGS[letter]
        return _compile_regex(key, pattern, flags)
    if use_regex:
        return _compile_regex(key, stripped, 0 if case_sensitive else re.IGNORECASE)
    pattern = re.escape(stripped)
    if whole_words:
        if _SPACED_WORD_CHAR_RE.fullmatch(stripped[0]):
            pattern = f"(?<!{_SPACED_WORD_CHAR}){pattern}"
        if _SPACED_WORD_CHAR_RE.fullmatch(stripped[-1]):
            pattern = f"{pattern}(?!{_SPACED_WORD_CHAR})"
    return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)


def _compile_regex(key: str, pattern: str, flags: int) -> re.Pattern[str]:
    # Cards are written for JavaScript; translate the syntax Python spells differently.
    pattern = _JS_NAMED_GROUP.sub("(?P<", pattern)
    pattern = _JS_BACKREFERENCE.sub(r"(?P=\1)", pattern)
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError(f"key '{key}' is not a valid regular expression: {exc}") from None


def parse_decorators(content: str) -> tuple[dict[str, str], str]:
    """Split V3 decorators (`@@name value` lines at the top) from the content.

    Returns the recognised decorators (first of each name wins; a `@@@` fallback line is
    used only when the decorator before it was not recognised) and the remaining text.
    """
    lines = content.split("\n")
    decorators: dict[str, str] = {}
    previous_recognised = True
    index = 0
    while index < len(lines) and lines[index].lstrip().startswith("@@"):
        line = lines[index].strip()
        index += 1
        is_fallback = line.startswith("@@@")
        if is_fallback and previous_recognised:
            continue
        name, _, value = line.lstrip("@").partition(" ")
        recognised = name in KNOWN_DECORATORS
        if recognised and name not in decorators:
            decorators[name] = value.strip()
        previous_recognised = recognised
    return decorators, "\n".join(lines[index:]).strip("\n")


class LoreEntry(BaseModel):
    """One lorebook entry; field names follow the V2/V3 `character_book` spec.

    Optional spec fields are None when absent so that a card is exported with exactly the
    fields it came with. `selective_logic`, `match_whole_words` and `scan_depth` are this
    project's spellings of what SillyTavern keeps in `extensions`; exported cards carry
    them there. `unknown_fields` keeps fields of imported cards that we do not interpret.
    """

    model_config = ConfigDict(extra="forbid")

    keys: list[str] = Field(default_factory=list)
    content: str = ""
    extensions: JsonObject = Field(default_factory=dict)
    enabled: bool = True
    insertion_order: int | float = 100
    case_sensitive: bool | None = None
    use_regex: bool | None = None
    constant: bool | None = None
    name: str | None = None
    priority: int | float | None = None
    id: int | str | None = None
    comment: str | None = None
    selective: bool | None = None
    secondary_keys: list[str] | None = None
    position: str | None = None
    selective_logic: SelectiveLogic | None = None
    match_whole_words: bool | None = None
    scan_depth: int | None = Field(default=None, ge=0)
    unknown_fields: JsonObject = Field(default_factory=dict)

    _primary: tuple[re.Pattern[str], ...] = PrivateAttr(default=())
    _secondary: tuple[re.Pattern[str], ...] = PrivateAttr(default=())
    _decorators: dict[str, str] = PrivateAttr(default_factory=dict)
    _text: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _compile(self) -> LoreEntry:
        self._decorators, self._text = parse_decorators(self.content)
        options = {
            "use_regex": bool(self.use_regex),
            "case_sensitive": self.effective_case_sensitive,
            "whole_words": self.effective_match_whole_words,
        }
        self._primary = _compile_keys(self.keys, "keys", options)
        self._secondary = _compile_keys(self.secondary_keys or [], "secondary_keys", options)
        return self

    @property
    def text(self) -> str:
        """The content as it goes into the prompt: decorators removed, macros not rendered."""
        return self._text

    @property
    def effective_case_sensitive(self) -> bool:
        if self.case_sensitive is not None:
            return self.case_sensitive
        value = self.extensions.get("case_sensitive")
        return value if isinstance(value, bool) else False

    @property
    def effective_match_whole_words(self) -> bool:
        if self.match_whole_words is not None:
            return self.match_whole_words
        value = self.extensions.get("match_whole_words")
        return value if isinstance(value, bool) else True

    @property
    def effective_selective_logic(self) -> SelectiveLogic:
        if self.selective_logic is not None:
            return self.selective_logic
        code = self.extensions.get("selectiveLogic")
        if isinstance(code, int) and not isinstance(code, bool):
            return SILLYTAVERN_LOGIC_CODES.get(code, SelectiveLogic.AND_ANY)
        return SelectiveLogic.AND_ANY

    @property
    def effective_scan_depth(self) -> int | None:
        """The entry's own scan depth, or None to use the book's."""
        decorated = self._decorators.get("scan_depth", "")
        if decorated.isdigit():
            return int(decorated)
        if self.scan_depth is not None:
            return self.scan_depth
        value = self.extensions.get("scan_depth")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        return None

    @property
    def effective_priority(self) -> float:
        return float(self.priority if self.priority is not None else self.insertion_order)

    @property
    def always_active(self) -> bool:
        return bool(self.constant) or "activate" in self._decorators

    @property
    def never_active(self) -> bool:
        return "dont_activate" in self._decorators and "activate" not in self._decorators

    @property
    def uses_secondary_keys(self) -> bool:
        wanted = self.selective if self.selective is not None else bool(self.secondary_keys)
        return wanted and bool(self._secondary)

    def matches(self, text: str) -> bool:
        """Whether the keys (and secondary keys, by the entry's logic) match `text`."""
        if not any(pattern.search(text) for pattern in self._primary):
            return False
        if not self.uses_secondary_keys:
            return True
        found = [pattern.search(text) is not None for pattern in self._secondary]
        logic = self.effective_selective_logic
        if logic is SelectiveLogic.AND_ANY:
            return any(found)
        if logic is SelectiveLogic.AND_ALL:
            return all(found)
        if logic is SelectiveLogic.NOT_ANY:
            return not any(found)
        return not all(found)


def _compile_keys(keys: list[str], field: str, options: dict[str, bool]) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for index, key in enumerate(keys):
        try:
            pattern = compile_key(key, **options)
        except ValueError as exc:
            raise ValueError(f"{field}[{index}]: {exc}") from None
        if pattern is not None:
            patterns.append(pattern)
    return tuple(patterns)


class Lorebook(BaseModel):
    """A character's lorebook (the card spec's `character_book`)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    scan_depth: int | None = Field(default=None, ge=0)
    token_budget: int | None = Field(default=None, ge=0)
    recursive_scanning: bool | None = None
    extensions: JsonObject = Field(default_factory=dict)
    entries: list[LoreEntry] = Field(default_factory=list)
    unknown_fields: JsonObject = Field(default_factory=dict)

    @property
    def deepest_scan(self) -> int:
        """How many recent messages any entry of this book looks at: what a caller must pass."""
        depths = [self.scan_depth if self.scan_depth is not None else DEFAULT_SCAN_DEPTH]
        depths += [d for entry in self.entries if (d := entry.effective_scan_depth) is not None]
        return max(depths)


def select_lore(
    book: Lorebook,
    recent_messages: Sequence[str],
    count_tokens: Callable[[str], int],
    budget_tokens: int,
    *,
    scan_depth: int | None = None,
) -> list[LoreEntry]:
    """The entries to put into the prompt for this turn, in prompt order.

    `recent_messages` runs oldest to newest (only the tail is scanned). The budget is the
    smaller of `budget_tokens` and the book's own `token_budget`, and is spent on each
    entry's `text` as measured by `count_tokens`.
    """
    default_depth = scan_depth if scan_depth is not None else book.scan_depth
    if default_depth is None:
        default_depth = DEFAULT_SCAN_DEPTH
    budget = budget_tokens
    if book.token_budget:
        budget = min(budget, book.token_budget)
    messages = list(recent_messages)
    windows: dict[int, str] = {}

    def window(depth: int) -> str:
        if depth not in windows:
            windows[depth] = "\n".join(messages[-depth:]) if depth > 0 else ""
        return windows[depth]

    candidates = [
        (index, entry)
        for index, entry in enumerate(book.entries)
        if entry.enabled and entry.text.strip() and not entry.never_active
    ]
    chosen: dict[int, LoreEntry] = {}
    spent = 0

    def admit(triggered: list[tuple[int, LoreEntry]]) -> list[LoreEntry]:
        nonlocal spent
        admitted = []
        for index, entry in sorted(
            triggered, key=lambda item: (not item[1].constant, -item[1].effective_priority, item[0])
        ):
            cost = count_tokens(entry.text)
            if spent + cost > budget:
                continue
            spent += cost
            chosen[index] = entry
            admitted.append(entry)
        return admitted

    def scan_text(entry: LoreEntry, recursion_text: str) -> str:
        depth = entry.effective_scan_depth
        text = window(default_depth if depth is None else depth)
        return f"{text}\n{recursion_text}" if recursion_text else text

    admitted = admit(
        [(index, entry) for index, entry in candidates if entry.always_active or entry.matches(scan_text(entry, ""))]
    )
    if book.recursive_scanning:
        recursion_parts: list[str] = []
        for _ in range(MAX_RECURSION_PASSES):
            recursion_parts += [entry.text for entry in admitted if not entry.extensions.get("prevent_recursion")]
            recursion_text = "\n".join(recursion_parts)
            if not recursion_text:
                break
            admitted = admit(
                [
                    (index, entry)
                    for index, entry in candidates
                    if index not in chosen
                    and not entry.extensions.get("exclude_recursion")
                    and entry.matches(scan_text(entry, recursion_text))
                ]
            )
            if not admitted:
                break
    order = sorted(chosen, key=lambda index: (not chosen[index].constant, chosen[index].insertion_order, index))
    return [chosen[index] for index in order]


def format_lore(entries: Sequence[LoreEntry]) -> str:
    """The chosen entries as one block of text, separated by blank lines."""
    return "\n\n".join(entry.text.strip() for entry in entries if entry.text.strip())
