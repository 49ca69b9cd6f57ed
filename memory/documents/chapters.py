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

Scrape junk that only the structure reveals is reported for stripping
(`Structure.junk`): running headers (a heading line that repeats the number and
title of the chapter it stands in: page headers of a converted book, a site's title
bar) and advertisements between chapters (a line with a web address or a site's
call to action, "本章完", "求收藏", "Read the latest chapters at …", repeated at
three or more chapter boundaries; every other copy of it goes too). `assemble`
removes those lines and detects again, so chapter offsets are into the clean text.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .headings import CHAPTER, VOLUME, Heading, find_headings, find_special_headings
from .model import Chapter

_SMALL_GAP = 3


_AD_MARK = re.compile(
    r"(?:https?://|www\.|\b[a-z0-9-]{2,}\.(?:com|net|org|cc|cn|la|info|me|co|io|xyz|top|tw)\b)"
    r"|本章完|求收藏|求推荐|求月票|月票|订阅|打赏|最新章节|手机阅读|免费阅读|记住本站|本站地址"
    r"|(?i:\bread (?:the latest|more|it) |\bdownload\b|\bpatreon\b|\bvisit\b|\bsupport us\b)"
)
_MIN_AD_REPEATS = 3
_MAX_AD_LINE = 160
_BOUNDARY_LINES = 2  # non-blank lines each side of a chapter boundary where ads sit


@dataclass
class Structure:
    chapters: list[Chapter]
    volumes: int = 0  # volume headings (卷/Part/Book/Volume) above the chapters
    toc_entries: int = 0  # headings of a table of contents, left in the front matter
    junk: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of lines to strip, sorted


def detect_chapters(text: str) -> list[Chapter]:
    """Chapters found from heading lines in normalized text; [] if there are none."""
    return detect_structure(text).chapters


def detect_structure(text: str) -> Structure:
    """Chapters, volumes, the table of contents and the junk lines of normalized text."""
    groups: dict[str, list[Heading]] = defaultdict(list)
    for heading in find_headings(text):
        groups[heading.group].append(heading)
    repeats: list[Heading] = []
    tocs: dict[str, list[Heading]] = {}
    kept = {}
    followed = {name: _follow_numbering(text, members, repeats if members[0].level != VOLUME else [])
                for name, members in groups.items()}
    next_start = _next_heading_starts(followed)
    for name, members in followed.items():
        kept[name], tocs[name] = _drop_table_of_contents(text, members, next_start)
    primary = _primary_group(kept)
    if primary is None:
        return Structure([])
    chosen = kept[primary]
    starts = [(heading.line_start, heading.title, heading.number) for heading in chosen]
    starts, volumes = _include_volume_headings(text, chosen, starts, kept, primary)
    if chosen[0].level == CHAPTER:
        starts = _add_special_headings(text, chosen, starts)
    chapters = chapters_from_starts(text, starts)
    running = [(h.line_start, h.line_end) for h in repeats if h.group == primary]
    junk = sorted(set(running) | set(_boundary_ads(text, chapters)))
    return Structure(chapters, volumes, len(tocs[primary]), junk)


def _boundary_ads(text: str, chapters: list[Chapter]) -> list[tuple[int, int]]:
    """Lines of advertisement repeated around chapter boundaries (see the module doc)."""
    if len(chapters) < _MIN_AD_REPEATS:
        return []
    seen: Counter[str] = Counter()
    for chapter in chapters:
        around = _lines_before(text, chapter.start) + _lines_after(text, chapter.start)
        for line in {text[start:end].strip() for start, end in around}:
            if line and len(line) <= _MAX_AD_LINE and _AD_MARK.search(line):
                seen[line] += 1
    ads = {line for line, count in seen.items() if count >= _MIN_AD_REPEATS}
    if not ads:
        return []
    spans = []
    for line in ads:
        position = text.find(line)
        while position != -1:
            start = text.rfind("\n", 0, position) + 1
            end = text.find("\n", position)
            end = len(text) if end == -1 else end
            if text[start:end].strip() == line:
                spans.append((start, end))
            position = text.find(line, end)
    return spans


def _lines_before(text: str, position: int) -> list[tuple[int, int]]:
    lines = []
    end = position
    while end > 0 and len(lines) < _BOUNDARY_LINES:
        end = _skip_blank_back(text, end)
        if end <= 0:
            break
        start = text.rfind("\n", 0, end) + 1
        lines.append((start, end))
        end = start
    return lines


def _skip_blank_back(text: str, end: int) -> int:
    while end > 0 and text[end - 1] in "\n \t\u3000":
        end -= 1
    return end


def _lines_after(text: str, position: int) -> list[tuple[int, int]]:
    lines = []
    start = text.find("\n", position)  # past the heading line
    while start != -1 and len(lines) < _BOUNDARY_LINES:
        while start < len(text) and text[start] == "\n":
            start += 1
        if start >= len(text):
            break
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        lines.append((start, end))
        start = end
    return lines


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


def _follow_numbering(text: str, candidates: list[Heading], repeats: list[Heading]) -> list[Heading]:
    """The candidates whose numbering agrees (see the module doc); a repeat of the last
    kept heading (same number, same title) goes to `repeats`: a running header."""
    kept: list[Heading] = []
    last: int | None = None
    # The next candidate with another number: running headers repeat this one's.
    following_numbers: list[int | None] = []
    after: int | None = None  # the next candidate's number
    after_other: int | None = None  # the first number after that differs from it
    for heading in reversed(candidates):
        following_numbers.append(after if after != heading.number else after_other)
        if heading.number != after:
            after, after_other = heading.number, after
    following_numbers.reverse()
    for position, heading in enumerate(candidates):
        number = heading.number
        assert number is not None
        if kept and number == last and heading.line_title == kept[-1].line_title:
            repeats.append(heading)
            continue
        following = following_numbers[position]
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


def _next_heading_starts(groups: dict[str, list[Heading]]) -> dict[int, int]:
    """For each heading's line start, where the next heading of any group starts."""
    starts = sorted({heading.line_start for members in groups.values() for heading in members})
    return {start: following for start, following in zip(starts, starts[1:])}


def _drop_table_of_contents(text: str, kept: list[Heading],
                            next_start: dict[int, int]) -> tuple[list[Heading], list[Heading]]:
    """(headings, table-of-contents entries) of the kept headings: an entry has nothing
    but blank lines before the next heading (of any group: a volume line may follow the
    last entry) and its number comes again later."""
    last_position = {heading.number: position for position, heading in enumerate(kept)}
    result, toc = [], []
    for position, heading in enumerate(kept):
        following = next_start.get(heading.line_start)
        body_is_blank = following is not None and not text[heading.line_end : following].strip()
        if body_is_blank and last_position[heading.number] > position:
            toc.append(heading)
            continue
        result.append(heading)
    return result, toc


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
) -> tuple[list[tuple[int, str, int | None]], int]:
    """The starts, moved up over a volume heading right above them; and how many moved."""
    level = chosen[0].level
    family = primary.split(":")[0]
    volumes = sorted(
        (heading for name, members in kept.items() if name.startswith(family + ":") for heading in members if heading.level > level),
        key=lambda heading: heading.line_start,
    )
    if not volumes:
        return starts, 0
    adjusted = []
    moved = 0
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
        moved += best != start
        previous_end = heading.line_end
    return adjusted, moved


def _add_special_headings(
    text: str, chosen: list[Heading], starts: list[tuple[int, str, int | None]]
) -> list[tuple[int, str, int | None]]:
    first_start = min(start for start, _, _ in starts)
    front = find_special_headings(text, 0, first_start, front=True)
    back = find_special_headings(text, chosen[-1].line_end, len(text), front=False)
    extra = [(heading.line_start, heading.title, None) for heading in front + back]
    return starts + extra
