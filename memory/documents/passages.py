"""Cutting a document into passages of about N characters for full-text indexing.

A passage never crosses a chapter boundary (front matter before the first chapter is
its own region, chapter_index None) and is cut at the largest natural boundary that
keeps it within `target_chars`: paragraphs (blank-line separated blocks) are packed
together while they fit; a paragraph longer than the target is cut at line breaks,
a line longer than that at sentence ends (。！？!?…; and ". "), and a sentence longer
than that, finally, every `target_chars` characters. So every passage is at most
`target_chars` long, passages do not overlap, and together they cover every
non-blank character of the text. Offsets are into `ExtractedDocument.text`;
passages start and end on non-whitespace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .model import Chapter

_PARAGRAPH = re.compile(r"[^\n]+(?:\n[^\n]+)*")
_LINE = re.compile(r"[^\n]+")
_SENTENCE_END = re.compile(r"(?:[。！？!?…；;]+|\.(?=\s))[”’\"』」）)]*")


@dataclass(frozen=True, slots=True)
class Passage:
    chapter_index: int | None
    start: int
    end: int


def split_passages(text: str, chapters: Sequence[Chapter], target_chars: int = 1000) -> list[Passage]:
    """Passages of at most `target_chars` characters, cut at paragraph boundaries."""
    if target_chars < 1:
        raise ValueError("target_chars must be at least 1")
    regions: list[tuple[int | None, int, int]] = []
    first_start = chapters[0].start if chapters else len(text)
    if first_start > 0:
        regions.append((None, 0, first_start))
    regions.extend((chapter.index, chapter.start, chapter.end) for chapter in chapters)
    passages: list[Passage] = []
    for chapter_index, start, end in regions:
        for piece_start, piece_end in _pack(_atoms(text, start, end, target_chars), target_chars):
            passages.append(Passage(chapter_index, piece_start, piece_end))
    return passages


def _atoms(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Non-blank spans of text[start:end], each at most `limit` long, in order."""
    atoms: list[tuple[int, int]] = []
    for paragraph in _PARAGRAPH.finditer(text, start, end):
        _add_span(text, paragraph.start(), paragraph.end(), limit, atoms, level=0)
    return atoms


def _add_span(text: str, start: int, end: int, limit: int, atoms: list[tuple[int, int]], level: int) -> None:
    start, end = _trim(text, start, end)
    if start >= end:
        return
    if end - start <= limit:
        atoms.append((start, end))
        return
    if level == 0:
        for line in _LINE.finditer(text, start, end):
            _add_span(text, line.start(), line.end(), limit, atoms, level=1)
    elif level == 1:
        cursor = start
        for mark in _SENTENCE_END.finditer(text, start, end):
            _add_span(text, cursor, mark.end(), limit, atoms, level=2)
            cursor = mark.end()
        _add_span(text, cursor, end, limit, atoms, level=2)
    else:
        for piece_start in range(start, end, limit):
            _add_span(text, piece_start, min(piece_start + limit, end), limit, atoms, level=3)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _pack(atoms: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    packed: list[tuple[int, int]] = []
    for start, end in atoms:
        if packed and end - packed[-1][0] <= limit:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed
