"""Finding lines that look like chapter headings, one line at a time.

This is the first of two filters (the second, sequence evidence, is in
`chapters.py`): a heading is a short standalone line. A Chinese heading is 第 + a
number + a unit (回/章/节/卷/集/部/篇) with, at most, junk before it (spaces,
full-width spaces, 【】, ☆, "正文", a volume heading on the same line) and a short
title after it; an English heading is Chapter/Part/Book/Volume + an Arabic, Roman or
spelled-out number with an optional short title. A heading quoted inside prose fails
here: it does not start the line, or the rest of its line is a sentence (too long,
sentence punctuation, no separator before a lower-case continuation).

Speed matters (2 million characters in well under a second): the scan is a regex
search for the anchor (第 for Chinese, a newline for English) done in C, and only
the few hits are checked in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .numerals import CHINESE_NUMERAL_CHARS, ENGLISH_NUMBER_PATTERN, parse_heading_number

CHAPTER, SECTION, VOLUME = 0, 1, 2  # heading levels, finest first

_NUMBER = "[" + re.escape(CHINESE_NUMERAL_CHARS) + "]{1,12}"
_CN_HEADING = re.compile(rf"第[ \t\u3000]*({_NUMBER})[ \t\u3000]*([回章节節卷集部篇])")
_CN_UNITS = {"回": CHAPTER, "章": CHAPTER, "节": SECTION, "節": SECTION, "卷": VOLUME, "部": VOLUME, "集": VOLUME, "篇": VOLUME}
_EN_HEADING = re.compile(
    r"\n[ \t]*(?:[#*=~_\[(<-]+[ \t]*)?"
    r"((?i:chapter|chap\.|part|book|volume|vol\.))[ \t]+"
    rf"(\d{{1,4}}|(?i:[ivxlcdm]{{1,9}}|{ENGLISH_NUMBER_PATTERN}))(?![\w-])([^\n]{{0,120}})"
)
_EN_LEVELS = {"chapter": CHAPTER, "chap.": CHAPTER, "part": VOLUME, "book": VOLUME, "volume": VOLUME, "vol.": VOLUME}

_BANNER = r"【[^】\n]{1,12}】|〖[^〗\n]{1,12}〗"  # a short bracketed banner before a heading: "【更多精彩】"
_JUNK_PREFIX = re.compile(  # the banner first, then marks and words
    _BANNER + r"|[\s【】\[\]〔〕〖〗（）()「」『』<>《》☆★◆◇●○■□※#＊*=~～\-—_·•.:：|]+|正文|VIP章节|VIP|章节目录|最新章节"
)
_VOLUME_PREFIX = re.compile(rf"^\s*(?:第[ \t\u3000]*{_NUMBER}[ \t\u3000]*[卷部集篇]|卷[ \t\u3000]*{_NUMBER})[^\n]{{0,20}}$")
_TITLE_SEPARATORS = " \t\u3000:：、.．·•-—－–_|】]〕〗）)>》」』"
_SENTENCE_MARKS = "。！!？?…，,、；;：:“”\"‘’'「」『』"
_BAD_TITLE_ENDINGS = tuple("，,、；;：:“「『")
_MAX_CN_TITLE = 40
_MAX_EN_TITLE = 80

_CN_FRONT_MATTER = re.compile(r"^[ \t\u3000【\[☆★]*(序章|序言|序|楔子|引子|引言|前言|自序)(?:[ \t\u3000:：·、.—-]+[^\n]{0,30})?$", re.M)
_CN_BACK_MATTER = re.compile(r"^[ \t\u3000【\[☆★]*(尾声|尾聲|后记|後記|终章|終章|番外[0-9一二三四五六七八九十]{0,3}|完本感言)(?:[ \t\u3000:：·、.—-]+[^\n]{0,30})?$", re.M)
_EN_FRONT_MATTER = re.compile(r"^[ \t]*(Prologue|PROLOGUE|Preface|PREFACE|Foreword|FOREWORD)(?:[ \t]*[:.\-—][^\n]{0,60})?$", re.M)
_EN_BACK_MATTER = re.compile(r"^[ \t]*(Epilogue|EPILOGUE|Afterword|AFTERWORD)(?:[ \t]*[:.\-—][^\n]{0,60})?$", re.M)


@dataclass(slots=True)
class Heading:
    line_start: int
    line_end: int
    number: int | None
    group: str  # headings that number together: "cn:章", "en:chapter", "en:part", …
    level: int  # CHAPTER, SECTION or VOLUME
    title: str


def find_headings(text: str) -> list[Heading]:
    """Every standalone numbered heading line in `text`, in order."""
    headings = _chinese_headings(text) + _english_headings(text)
    headings.sort(key=lambda heading: heading.line_start)
    return headings


def find_special_headings(text: str, start: int, end: int, front: bool) -> list[Heading]:
    """Prologue-like headings in text[start:end] (front) or epilogue-like ones (back)."""
    patterns = (_CN_FRONT_MATTER, _EN_FRONT_MATTER) if front else (_CN_BACK_MATTER, _EN_BACK_MATTER)
    found = []
    region = text[start:end]
    for pattern in patterns:
        for match in pattern.finditer(region):
            found.append(
                Heading(start + match.start(), start + match.end(), None, "special", CHAPTER, clean_title(match.group(0)))
            )
    found.sort(key=lambda heading: heading.line_start)
    return found


def heading_number(title: str) -> int | None:
    """The chapter number in a heading such as "第十二回 …" or "Chapter XII: …", if any."""
    for heading in find_headings(title.strip()):
        return heading.number
    return None


def clean_title(line: str) -> str:
    """A heading line without junk around it and with whitespace runs collapsed."""
    line = line.strip()
    line = re.sub(rf"^(?:{_BANNER})\s*(?=第|卷)", "", line)
    line = re.sub(r"^(?:[【\[〔〖☆★◆◇●■□※#＊*=~～_·•|]+|正文|VIP章节|VIP)\s*", "", line)
    line = re.sub(r"^(?:[【\[〔〖☆★◆◇●■□※#＊*=~～_·•|]+|正文)\s*", "", line)
    line = re.sub(r"[】\]〕〗☆★#＊*=~～_]+$", "", line).strip()
    line = re.sub(r"(第[^\n】\]〕〗]{1,16}?[回章节節卷集部篇])[】\]〕〗]\s*", r"\1 ", line).strip()
    return re.sub(r"(\s)\s+", r"\1", line)


def _line_bounds(text: str, position: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return start, len(text) if end == -1 else end


def _chinese_headings(text: str) -> list[Heading]:
    headings = []
    for match in _CN_HEADING.finditer(text):
        line_start, line_end = _line_bounds(text, match.start())
        prefix = text[line_start : match.start()]
        if prefix and _JUNK_PREFIX.sub("", prefix) and not _VOLUME_PREFIX.match(prefix):
            continue
        rest = text[match.end() : line_end]
        if not _acceptable_chinese_title(rest):
            continue
        number = parse_heading_number(match.group(1))
        if number is None:
            continue
        unit = match.group(2).replace("節", "节")
        title = clean_title(text[line_start:line_end])
        headings.append(Heading(line_start, line_end, number, "cn:" + unit, _CN_UNITS[unit], title))
    return headings


def _acceptable_chinese_title(rest: str) -> bool:
    stripped = rest.strip()
    if not stripped:
        return True
    separated = stripped[0] in _TITLE_SEPARATORS or rest[0] in " \t\u3000"
    title = stripped.lstrip(_TITLE_SEPARATORS).strip()
    if len(title) > _MAX_CN_TITLE or "。" in title or title.endswith(_BAD_TITLE_ENDINGS):
        return False
    if not separated:
        # "第一章风起云涌" is a heading; "第三回里写的……" is the start of a sentence.
        return len(title) <= 15 and not any(mark in title for mark in _SENTENCE_MARKS)
    return title.count("，") + title.count(",") <= 1


def _english_headings(text: str) -> list[Heading]:
    headings = []
    for match in _EN_HEADING.finditer("\n" + text):
        line_start = match.start()  # the "\n" we prepended shifts everything by one
        line_end = match.end() - 1
        keyword, numeral, rest = match.group(1), match.group(2), match.group(3)
        if line_end < len(text) and text[line_end] != "\n":
            continue  # the line goes on past 120 characters: prose
        if not _acceptable_english_title(rest, keyword_is_lower=keyword.islower()):
            continue
        number = parse_heading_number(numeral)
        if number is None:
            continue
        level = _EN_LEVELS[keyword.lower()]
        group = "en:chapter" if level == CHAPTER else "en:" + keyword.lower().rstrip(".")
        title = clean_title(text[line_start:line_end])
        if not rest.strip(" \t.:-—–"):
            subtitle = _subtitle_after(text, line_end)
            if subtitle:
                title = f"{title} {subtitle}"
        headings.append(Heading(line_start, line_end, number, group, level, title))
    return headings


def _subtitle_after(text: str, line_end: int) -> str | None:
    """The chapter's name on the line after a bare "CHAPTER I." heading, if that is what it is.

    It must be short, stand alone (a blank line after it: a hard-wrapped first line of
    prose is followed by more prose), start like a title and end like one: not
    mid-sentence, and not with a full stop unless it is in capitals.
    """
    window = text[line_end : line_end + 200].lstrip("\n")
    line, _, after = window.partition("\n")
    line = line.strip()
    standalone = after.startswith("\n") or (not after and line_end + 200 >= len(text))
    if not line or len(line) > 60 or not standalone or line.endswith((",", ";", ":")):
        return None
    if not (line[0].isupper() or line[0] in "\"'“‘") or find_headings(line):
        return None
    if line.endswith((".", "!", "?", "\"", "”", "'", "’")) and not line.isupper():
        return None  # a sentence ("She left."), unless in capitals ("THE BEGINNING.")
    return line


def _acceptable_english_title(rest: str, keyword_is_lower: bool) -> bool:
    stripped = rest.strip()
    if not stripped:
        return True
    if stripped[0] in ".:-—–)]>":
        title = stripped.lstrip(".:-—–)]> \t")
        return len(title) <= _MAX_EN_TITLE and not title.endswith((",", ";"))
    if keyword_is_lower or not rest[0].isspace():
        return False  # "chapter 3 of the book …" is prose
    return (
        len(stripped) <= _MAX_EN_TITLE
        and (stripped[0].isupper() or stripped[0].isdigit() or stripped[0] in "\"'“‘([")
        and not stripped.endswith((",", ";"))
    )
