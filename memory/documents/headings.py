"""Finding lines that look like chapter headings, one line at a time.

This is the first of two filters (the second, sequence evidence, is in
`chapters.py`): a heading is a short standalone line. A Chinese heading is 第 + a
number + a unit (回/章/节/卷/集/部/篇) with, at most, junk before it (spaces,
full-width spaces, 【】, ☆, "正文", a volume heading on the same line) and a short
title after it; an English heading is Chapter/Part/Book/Volume + an Arabic, Roman or
spelled-out number with an optional short title. A heading quoted inside prose fails
here: it does not start the line, or the rest of its line is a sentence (too long,
sentence punctuation, no separator before a lower-case continuation).

Files from download sites put the site's mark on every heading line ("《》目录 第一回
…", "001. Chapter 1", "第一回 … - 笔趣阁"). Such marks are learnt from the text: a
prefix (or a suffix after the title) of the same shape (digits aside) on at least
three heading-like lines is the site's, and is accepted before, or cut from after, a
heading as junk is; a prefix seen once or twice is prose ("他说第三回…"). A bare
"卷一" line is a volume heading too.

Speed matters (2 million characters in well under a second): the scan is a regex
search for the anchor (第 for Chinese, a newline or the keyword for English) done in
C, and only the few hits are checked in Python.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .numerals import CHINESE_NUMERAL_CHARS, ENGLISH_NUMBER_PATTERN, parse_heading_number

CHAPTER, SECTION, VOLUME = 0, 1, 2  # heading levels, finest first

_NUMBER = "[" + re.escape(CHINESE_NUMERAL_CHARS) + "]{1,12}"
_CN_HEADING = re.compile(rf"第[ \t\u3000]*({_NUMBER})[ \t\u3000]*([回章节節卷集部篇])")
_CN_UNITS = {"回": CHAPTER, "章": CHAPTER, "节": SECTION, "節": SECTION, "卷": VOLUME, "部": VOLUME, "集": VOLUME, "篇": VOLUME}
_EN_HEADING = re.compile(  # the lookahead lets the scan skip most positions at C speed
    r"(?=[CcPpBbVv])\b((?i:chapter|chap\.|part|book|volume|vol\.))[ \t]+"
    rf"(\d{{1,4}}|(?i:[ivxlcdm]{{1,9}}|{ENGLISH_NUMBER_PATTERN}))(?![\w-])([^\n]{{0,120}})"
)
_EN_JUNK_PREFIX = re.compile(r"[ \t]*(?:[#*=~_\[(<-]+[ \t]*)?")
_CN_VOLUME_LINE = re.compile(rf"^[ \t\u3000]*卷[ \t\u3000]*({_NUMBER})(?:[ \t\u3000:：、.．·-]+[^\n]{{0,20}})?$", re.M)
_DIGIT_RUN = re.compile(r"[0-9０-９]+")
_MIN_REPEATS = 3  # a prefix or suffix on this many heading lines is a site's mark
_MAX_AFFIX = 40
_MAX_LINE = 200
# A site's suffix is set off from the title by a mark ("第一回 … - 笔趣阁", "（求收藏）"),
# not by a space alone: "第一节 小标题" on every line is a title that repeats.
_SEPARATED = re.compile(r"[ \t\u3000]*[^\w\s]")
_SENTENCE_IN_SUFFIX = re.compile(r"[。，,；;！？!?…]")  # prose repeated, not a site's mark
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
    line_title: str = ""  # the title as on the heading line alone (no subtitle from the next line)


def find_headings(text: str) -> list[Heading]:
    """Every standalone numbered heading line in `text`, in order."""
    headings = _chinese_headings(text) + _chinese_volume_lines(text) + _english_headings(text)
    headings.sort(key=lambda heading: heading.line_start)
    return headings


def _shape(affix: str) -> str:
    """An affix with its digits generalised: "001. " and "002. " have one shape."""
    return _DIGIT_RUN.sub("0", affix.strip())


def _repeated_prefixes(prefixes: list[str]) -> set[str]:
    counts = Counter(_shape(prefix) for prefix in prefixes if prefix.strip() and len(prefix) <= _MAX_AFFIX)
    return {shape for shape, count in counts.items() if count >= _MIN_REPEATS}


def _repeated_suffix(rests: list[str]) -> re.Pattern | None:
    """The longest suffix shape that at least half the heading lines (and three) end with."""
    shaped = [_shape(rest) for rest in rests]
    needed = max(_MIN_REPEATS, (len(shaped) + 1) // 2)
    best = None
    for length in range(2, _MAX_AFFIX + 1):
        counts = Counter(rest[-length:] for rest in shaped if len(rest) >= length)
        if not counts:
            break
        suffix, count = counts.most_common(1)[0]
        if count < needed:
            break
        if _SEPARATED.match(suffix) and not _SENTENCE_IN_SUFFIX.search(suffix):
            best = suffix
    if best is None:
        return None
    pattern = "".join(r"[0-9０-９]+" if char == "0" else re.escape(char) for char in best)
    return re.compile(rf"[ \t\u3000]*{pattern}[ \t\u3000]*$")


def _cut_suffix(line: str, suffix: re.Pattern | None) -> str:
    if suffix is None:
        return line
    cut = suffix.sub("", line)
    return cut if cut.strip() else line


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
    # A run of mixed spaces is one space: full-width if it holds one (as Chinese titles use).
    return _SPACE_RUN.sub(lambda run: "\u3000" if "\u3000" in run.group() else " ", line)


_SPACE_RUN = re.compile(r"[ \t\u3000]{2,}|\t")


def _line_bounds(text: str, position: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return start, len(text) if end == -1 else end


def _chinese_headings(text: str) -> list[Heading]:
    found = []  # (match, line_start, line_end, prefix)
    for match in _CN_HEADING.finditer(text):
        line_start, line_end = _line_bounds(text, match.start())
        if line_end - line_start <= _MAX_LINE:
            found.append((match, line_start, line_end, text[line_start : match.start()]))
    site_prefixes = _repeated_prefixes([prefix for _, _, _, prefix in found])
    candidates = []
    for match, line_start, line_end, prefix in found:
        if not prefix or not _JUNK_PREFIX.sub("", prefix) or _VOLUME_PREFIX.match(prefix):
            candidates.append((match, line_start, line_end, line_start))
        elif _shape(prefix) in site_prefixes:
            candidates.append((match, line_start, line_end, match.start()))
    suffix = _repeated_suffix([text[match.end() : line_end] for match, _, line_end, _ in candidates])
    headings = []
    for match, line_start, line_end, title_start in candidates:
        rest = _cut_suffix(text[match.end() : line_end], suffix)
        if not _acceptable_chinese_title(rest):
            continue
        number = parse_heading_number(match.group(1))
        if number is None:
            continue
        unit = match.group(2).replace("節", "节")
        title = clean_title(_cut_suffix(text[title_start:line_end], suffix))
        headings.append(Heading(line_start, line_end, number, "cn:" + unit, _CN_UNITS[unit], title, title))
    return headings


def _chinese_volume_lines(text: str) -> list[Heading]:
    """Bare volume lines: "卷一", "卷二 风起"."""
    if "卷" not in text:
        return []
    headings = []
    for match in _CN_VOLUME_LINE.finditer(text):
        number = parse_heading_number(match.group(1))
        if number is not None:
            headings.append(Heading(match.start(), match.end(), number, "cn:卷", VOLUME, clean_title(match.group(0))))
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
    found = []  # (match, line_start, line_end, prefix)
    for match in _EN_HEADING.finditer(text):
        line_start, line_end = _line_bounds(text, match.start())
        if match.end() < len(text) and text[match.end()] != "\n":
            continue  # the line goes on past 120 characters: prose
        found.append((match, line_start, line_end, text[line_start : match.start()]))
    site_prefixes = _repeated_prefixes([prefix for _, _, _, prefix in found])
    candidates = []
    for match, line_start, line_end, prefix in found:
        if _EN_JUNK_PREFIX.fullmatch(prefix):
            candidates.append((match, line_start, line_end, line_start))
        elif _shape(prefix) in site_prefixes:
            candidates.append((match, line_start, line_end, match.start()))
    suffix = _repeated_suffix([match.group(3) for match, _, _, _ in candidates])
    headings = []
    for match, line_start, line_end, title_start in candidates:
        keyword, numeral = match.group(1), match.group(2)
        rest = _cut_suffix(match.group(3), suffix)
        if not _acceptable_english_title(rest, keyword_is_lower=keyword.islower()):
            continue
        number = parse_heading_number(numeral)
        if number is None:
            continue
        level = _EN_LEVELS[keyword.lower()]
        group = "en:chapter" if level == CHAPTER else "en:" + keyword.lower().rstrip(".")
        title = line_title = clean_title(_cut_suffix(text[title_start:line_end], suffix))
        if not rest.strip(" \t.:-—–"):
            subtitle = _subtitle_after(text, line_end)
            if subtitle:
                title = f"{title} {subtitle}"
        headings.append(Heading(line_start, line_end, number, group, level, title, line_title))
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
    if not (line[0].isupper() or line[0] in "\"'“‘") or _EN_HEADING.search(line) or _CN_HEADING.search(line):
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
