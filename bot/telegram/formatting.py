"""The model's Markdown as Telegram messages: plain text plus MessageEntity spans, split to fit.

Rendering is telegramify-markdown's `convert()` (a CommonMark parser, pyromark, walked into
text + entities). Entities were chosen over HTML (chatgpt-md-converter's output) because
with entities nothing needs escaping, so no reply can fail Telegram's HTML parser on a
stray "<" or "&", and because entities are offsets: a long reply is cut into messages and
each piece keeps exactly the formatting that falls inside it, instead of closing and
reopening tags by hand.

Splitting works on the rendered text, in UTF-16 code units as Telegram counts them. A cut
goes at the latest boundary of the best kind that still leaves a reasonably full message:
paragraph, then line, then sentence (. ! ? … and the CJK 。！？), then clause, then word,
and only then anywhere (never between a character and the combining mark, variation
selector or zero-width joiner that belongs to it). Code blocks (`pre` entities) and inline
code are kept whole; a code block that alone exceeds the limit is cut at its own line
breaks, and each piece is still a `pre` entity with the same language, because clipping an
entity to a piece re-entities that piece. Entities are re-based to each piece.

Angle brackets the model writes as text (`List<String>`, `<sigh>`) would be raw HTML to a
CommonMark parser, which the converter drops; they are kept as text (see
`_angle_brackets_as_text`), because a reply must never lose words on the way to the user.

`FormattedText.plain()` is the same text without entities: what to send when Telegram
rejects the formatting.
"""

from __future__ import annotations

import bisect
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import pyromark
from aiogram.types import MessageEntity
from telegramify_markdown import RenderConfig, convert
from telegramify_markdown.converter import STANDARD_OPTIONS

logger = logging.getLogger(__name__)

TELEGRAM_TEXT_LIMIT = 4096  # UTF-16 code units per message, after entity parsing

# A cut this early in a message is only taken when nothing later is possible: it avoids
# a stub message when the only paragraph break sits near the start.
_MIN_FILL = 0.25
_ATOMIC_ENTITIES = {"pre", "code"}


def _render_config() -> RenderConfig:
    """Our own config (the library's global one is shared, mutable state): headings are
    bold and underlined without the default 📌/✏️/📚/🔖 prefixes, which would put words
    in a character's mouth that the model never wrote."""
    config = RenderConfig.isolated()
    for level in range(1, 7):
        setattr(config.markdown_symbol, f"heading_level_{level}", "")
    return config


_RENDER_CONFIG = _render_config()
_SENTENCE_END = re.compile(r"(?:[.!?…]+[\"'”’»)\]]*(?=\s)|[。！？]+[”’」』）》】\"']*)")
_CLAUSE_END = re.compile(r"(?:[,;:]+(?=\s)|[，、；：]+)")
_WORD_GAP = re.compile(r"(?<=\S)\s+")
_PARAGRAPH_GAP = re.compile(r"\n[ \t]*\n\s*")
_LINE_GAP = re.compile(r"\n")
_LEVELS = (_PARAGRAPH_GAP, _LINE_GAP, _SENTENCE_END, _CLAUSE_END, _WORD_GAP)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True)
class FormattedText:
    """One message's worth (or more, before splitting) of text and its entities."""

    text: str
    entities: tuple[MessageEntity, ...] = ()

    def plain(self) -> "FormattedText":
        return FormattedText(self.text)

    @property
    def length(self) -> int:
        """Length as Telegram counts it (UTF-16 code units)."""
        return utf16_len(self.text)

    def as_kwargs(self) -> dict[str, Any]:
        """text/entities/parse_mode for sendMessage, editMessageText and sendMessageDraft.

        parse_mode is always None: entities and a bot-wide default parse_mode must not mix.
        """
        return {"text": self.text, "entities": list(self.entities) or None, "parse_mode": None}


def render_markdown(markdown: str) -> FormattedText:
    """Markdown -> text + entities, unsplit. Never raises: unreadable input stays as typed."""
    try:
        text, entities = convert(_angle_brackets_as_text(markdown), config=_RENDER_CONFIG)
    except Exception:  # a parser bug must not cost the user their reply
        logger.exception("markdown conversion failed; sending the reply unformatted")
        return FormattedText(markdown.strip())
    return FormattedText(text, tuple(MessageEntity(**entity.to_dict()) for entity in entities))


def _angle_brackets_as_text(markdown: str) -> str:
    """Keep `List<String>`, `<sigh>`, `<div>` visible.

    CommonMark reads those as raw HTML, which telegramify-markdown drops, so a reply would
    silently lose words. The parser itself says where raw HTML starts (its events carry
    source ranges), and a backslash before that "<" makes it text; code spans, code blocks
    and <https://autolinks> produce no HTML events and stay untouched. Escaping one tag can
    turn the rest of an HTML block into a paragraph with inline tags, so parse again until
    none remain (each round escapes at least one "<", so this ends).
    """
    for _ in range(markdown.count("<") + 1):
        source = markdown.encode("utf-8")
        offsets = []
        for payload, span in pyromark.events_with_range(markdown, options=STANDARD_OPTIONS):
            if isinstance(payload, dict) and ("InlineHtml" in payload or "Html" in payload):
                opening = source.find(b"<", span["start"], span["end"])
                if opening != -1:
                    offsets.append(opening)
        if not offsets:
            break
        bounds = [0, *sorted(set(offsets)), len(source)]
        markdown = b"\\".join(source[a:b] for a, b in zip(bounds, bounds[1:])).decode("utf-8")
    return markdown


def format_reply(markdown: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[FormattedText]:
    """The messages a reply becomes: rendered, then split to `limit`. [] for a blank reply."""
    return split_formatted(render_markdown(markdown), limit)


def split_formatted(formatted: FormattedText, limit: int = TELEGRAM_TEXT_LIMIT) -> list[FormattedText]:
    """Cut `formatted` into pieces of at most `limit` UTF-16 units, entities re-based."""
    if limit < 2:
        raise ValueError("limit must be at least 2 UTF-16 code units")
    text = formatted.text
    if text and text == text.strip() and len(text) * 2 <= limit:  # most replies: one piece, as it is
        return [formatted]
    return _Splitter(formatted, limit).pieces()


class _Splitter:
    def __init__(self, formatted: FormattedText, limit: int) -> None:
        self.text = formatted.text
        self.entities = formatted.entities
        self.limit = limit
        self.units = _utf16_prefix(self.text)  # units[i] = UTF-16 offset of text[i]
        self.atomic = sorted(
            (self._index(e.offset), self._index(e.offset + e.length))
            for e in self.entities if e.type in _ATOMIC_ENTITIES
        )
        self.pre_blocks = [(self._index(e.offset), self._index(e.offset + e.length))
                           for e in self.entities if e.type == "pre"]
        self.candidates = [sorted({m.end() if level is not _WORD_GAP else m.start()
                                   for m in level.finditer(self.text)})
                           for level in _LEVELS]
        # Code blocks begin and end on paragraph boundaries even when the text has no blank line.
        self.candidates[0] = sorted(set(self.candidates[0]).union(
            *((start, end) for start, end in self.pre_blocks)))

    def pieces(self) -> list[FormattedText]:
        pieces: list[FormattedText] = []
        start = 0
        size = len(self.text)
        while start < size:
            start = self._skip_leading_space(start)
            if start >= size:
                break
            if self.units[size] - self.units[start] <= self.limit:
                end = size
            else:
                end = self._cut(start)
            piece = self._piece(start, end)
            if piece is not None:
                pieces.append(piece)
            start = end
        return pieces

    # -- choosing a cut -----------------------------------------------------------------
    def _cut(self, start: int) -> int:
        furthest = bisect.bisect_right(self.units, self.units[start] + self.limit) - 1
        block = next(((s, e) for s, e in self.pre_blocks if s <= start < e and e > furthest), None)
        if block is not None:
            # An oversized code block: cut at its own line breaks, else anywhere.
            inside = [p for p in self.candidates[1] if start < p <= furthest]
            return inside[-1] if inside else self._hard_cut(start, furthest)
        fallback = None
        min_end = self.units[start] + int(self.limit * _MIN_FILL)
        for positions in self.candidates:
            best = self._latest_allowed(positions, start, furthest)
            if best is None:
                continue
            if self.units[best] >= min_end:
                return best
            fallback = fallback or best
        if fallback is not None:
            return fallback
        return self._hard_cut(start, furthest)

    def _latest_allowed(self, positions: list[int], start: int, furthest: int) -> int | None:
        index = bisect.bisect_right(positions, furthest) - 1
        while index >= 0 and positions[index] > start:
            position = positions[index]
            if not self._splits_atomic(position):
                return position
            index -= 1
        return None

    def _splits_atomic(self, position: int) -> bool:
        return any(s < position < e for s, e in self.atomic)

    def _hard_cut(self, start: int, furthest: int) -> int:
        cut = furthest
        while cut > start + 1 and _binds_to_previous(self.text, cut):
            cut -= 1
        return max(cut, start + 1)

    # -- building a piece ---------------------------------------------------------------
    def _skip_leading_space(self, start: int) -> int:
        in_code = any(s <= start < e for s, e in self.pre_blocks)
        while start < len(self.text) and self.text[start].isspace():
            if in_code and self.text[start] != "\n":
                break  # indentation inside a code block is content
            start += 1
        return start

    def _piece(self, start: int, end: int) -> FormattedText | None:
        stop = end
        while stop > start and self.text[stop - 1].isspace():
            stop -= 1
        if stop == start:
            return None
        low, high = self.units[start], self.units[stop]
        entities = []
        for entity in self.entities:
            clipped_start = max(entity.offset, low)
            clipped_end = min(entity.offset + entity.length, high)
            if clipped_end > clipped_start:
                entities.append(entity.model_copy(update={
                    "offset": clipped_start - low, "length": clipped_end - clipped_start}))
        return FormattedText(self.text[start:stop], tuple(entities))

    def _index(self, utf16_offset: int) -> int:
        """Python index of a UTF-16 offset (an offset inside a surrogate pair rounds up)."""
        return bisect.bisect_left(self.units, utf16_offset)


def _utf16_prefix(text: str) -> list[int]:
    units = [0] * (len(text) + 1)
    total = 0
    for index, char in enumerate(text):
        units[index] = total
        total += 2 if ord(char) > 0xFFFF else 1
    units[len(text)] = total
    return units


def _binds_to_previous(text: str, position: int) -> bool:
    """True when cutting before text[position] would tear a character from its modifiers."""
    if position >= len(text):
        return False
    char, previous = text[position], text[position - 1]
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char in "\u200d\ufe0e\ufe0f"
        or 0x1F3FB <= ord(char) <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= ord(char) <= 0xE007F  # tag sequences (subdivision flags)
        or previous == "\u200d"
        or (_is_regional_indicator(char) and _is_regional_indicator(previous)
            and _regional_run_length(text, position) % 2 == 1)
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _regional_run_length(text: str, position: int) -> int:
    """How many regional indicators precede `position` without a break (flags are pairs)."""
    count = 0
    while position - count - 1 >= 0 and _is_regional_indicator(text[position - count - 1]):
        count += 1
    return count
