"""Small helpers the structured formats share: picking the chapter heading level and
cutting text into titled sections at given offsets.

Which heading level marks chapters: the shallowest level used at least twice (a
lone Heading 1 is usually the book's title, with chapters as Heading 2), or else
the shallowest level used at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .model import Section


def choose_heading_level(levels: Iterable[int]) -> int | None:
    counts = Counter(levels)
    if not counts:
        return None
    repeated = [level for level, count in counts.items() if count >= 2]
    return min(repeated) if repeated else min(counts)


def cut_sections(text: str, cuts: list[tuple[int, str]]) -> list[Section]:
    """Split `text` at the (offset, title) cuts; text before the first cut is untitled.

    Cuts at the same offset keep the last title (an EPUB table of contents lists a
    part and then its first chapter at the same place; the chapter is more specific).
    """
    by_offset: dict[int, str] = {}
    for offset, title in cuts:
        by_offset[max(0, min(offset, len(text)))] = title
    offsets = sorted(by_offset)
    sections = []
    if not offsets or offsets[0] > 0:
        sections.append(Section(None, text[: offsets[0] if offsets else len(text)]))
    for index, offset in enumerate(offsets):
        end = offsets[index + 1] if index + 1 < len(offsets) else len(text)
        sections.append(Section(by_offset[offset], text[offset:end]))
    return sections
