"""Chapter detection in plain text: heading lines, then sequence evidence.

`headings.find_headings` proposes standalone heading lines. A heading quoted in the
prose rarely gets that far, and the numbering catches the rest: real chapters count
up. Per group of headings that number together (all 第…章, all "Chapter N"), a
heading is kept when the numbering around it agrees:

* it continues the last kept heading (n = last + 1), or repeats its number (a
  chapter split into 上/下, a heading repeated above its text);
* it is confirmed by the next candidate (next = n + 1) and moves forward (chapters
  missing from a messy upload), or restarts at 1 (numbering per volume; the body
  after a table of contents);
* it is a small step forward (at most 3): a missing chapter or two near the end;
* it is the first heading and numbered 0 or 1.

So "第三回" quoted inside chapter 5, or "第八十回" mentioned in a preface, is
dropped. Then a table of contents is recognised: a kept heading with nothing but
blank lines before the next kept heading, whose number comes again later, is a TOC
entry and is dropped (the TOC becomes front matter). The group with the most kept
headings wins, chapters (章/回/Chapter) over sections (节) over volumes
(卷/部/Part/Book), when it has at least two. A volume heading right above a chapter
heading moves that chapter's start up to include it, and its title in front of the
chapter's (numbering often restarts with each volume). Prologue and epilogue headings
(楔子, 序章, 尾声, 番外, Prologue, Epilogue) count only before the first or after the
last numbered chapter.
"""

from __future__ import annotations

from collections import defaultdict

from .headings import CHAPTER, Heading, find_headings, find_special_headings
from .model import Chapter

_SMALL_GAP = 3


def detect_chapters(text: str) -> list[Chapter]:
    """Chapters found from heading lines in normalized text; [] if there are none."""
    groups: dict[str, list[Heading]] = defaultdict(list)
    for heading in find_headings(text):
        groups[heading.group].append(heading)
    kept = {name: _drop_table_of_contents(text, _follow_numbering(members)) for name, members in groups.items()}
    primary = _primary_group(kept)
    if primary is None:
        return []
    chosen = kept[primary]
    starts = [(heading.line_start, heading.title, heading.number) for heading in chosen]
    starts = _include_volume_headings(text, chosen, starts, kept, primary)
    if chosen[0].level == CHAPTER:
        starts = _add_special_headings(text, chosen, starts)
    return chapters_from_starts(text, starts)


def chapters_from_starts(text: str, starts: list[tuple[int, str, int | None]]) -> list[Chapter]:
    """Chapters beginning at the given offsets, each ending where the next begins.

    The end is pulled back over trailing whitespace, so the blank lines between two
    chapters belong to neither.
    """
    starts = sorted(starts, key=lambda item: item[0])
    chapters = []
    for index, (start, title, number) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        while end > start and text[end - 1].isspace():
            end -= 1
        chapters.append(Chapter(index, title, start, end, number))
    return chapters


def _follow_numbering(candidates: list[Heading]) -> list[Heading]:
    kept: list[Heading] = []
    last: int | None = None
    for position, heading in enumerate(candidates):
        number = heading.number
        assert number is not None
        following = candidates[position + 1].number if position + 1 < len(candidates) else None
        if last is None:
            accept = number <= 1 or following == number + 1
        else:
            accept = (
                number in (last, last + 1)
                or (following == number + 1 and (number > last or number <= 1))
                or last < number <= last + _SMALL_GAP
            )
        if accept:
            kept.append(heading)
            last = number
    return kept


def _drop_table_of_contents(text: str, kept: list[Heading]) -> list[Heading]:
    last_position = {heading.number: position for position, heading in enumerate(kept)}
    result = []
    for position, heading in enumerate(kept):
        following = kept[position + 1] if position + 1 < len(kept) else None
        body_is_blank = following is not None and not text[heading.line_end : following.line_start].strip()
        if body_is_blank and last_position[heading.number] > position:
            continue
        result.append(heading)
    return result


def _primary_group(kept: dict[str, list[Heading]]) -> str | None:
    ranked = sorted(
        (name for name, members in kept.items() if members),
        key=lambda name: (len(kept[name]) >= 2, -kept[name][0].level, len(kept[name])),
        reverse=True,
    )
    return ranked[0] if ranked else None


def _include_volume_headings(
    text: str,
    chosen: list[Heading],
    starts: list[tuple[int, str, int | None]],
    kept: dict[str, list[Heading]],
    primary: str,
) -> list[tuple[int, str, int | None]]:
    level = chosen[0].level
    family = primary.split(":")[0]
    volumes = sorted(
        (heading for name, members in kept.items() if name.startswith(family + ":") for heading in members if heading.level > level),
        key=lambda heading: heading.line_start,
    )
    if not volumes:
        return starts
    adjusted = []
    previous_end = 0
    volume_index = 0
    for heading, (start, title, number) in zip(chosen, starts, strict=True):
        while volume_index < len(volumes) and volumes[volume_index].line_start < previous_end:
            volume_index += 1
        best, best_title = start, title
        index = volume_index
        while index < len(volumes) and volumes[index].line_start < start:
            volume = volumes[index]
            if not text[volume.line_end : start].strip():
                best, best_title = volume.line_start, f"{volume.title} {title}"
            index += 1
        adjusted.append((best, best_title, number))
        previous_end = heading.line_end
    return adjusted


def _add_special_headings(
    text: str, chosen: list[Heading], starts: list[tuple[int, str, int | None]]
) -> list[tuple[int, str, int | None]]:
    first_start = min(start for start, _, _ in starts)
    front = find_special_headings(text, 0, first_start, front=True)
    back = find_special_headings(text, chosen[-1].line_end, len(text), front=False)
    extra = [(heading.line_start, heading.title, None) for heading in front + back]
    return starts + extra
