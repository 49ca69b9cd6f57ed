"""Messy copies of the two shared novels, as text files are found on the web.

Made by script from `../shared/data` (never stored in the repository): the clean
text is cut into its chapters, and each variant puts back what download sites,
scrapers and old converters add: a BOM and a site banner at the top, the site's
prefix (or a suffix, or a running number) on every heading line, a table of
contents, running headers that repeat the chapter title inside the chapter,
advertisements between chapters, CRLF newlines and legacy encodings (GB18030 with
UTF-8 advertisements pasted in, Windows-1252), volume headings above the chapters,
Arabic numbers and upper-case headings, mixed full-width and ASCII spaces, and
in-text mentions of other chapters that must not become headings.

`messy_variants(novel)` returns, per variant name, the file's bytes and what the
extractor must find: the exact chapter titles, the number of volume headings and
the number of junk lines (banners, ads, running headers) it must strip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.fakes.documents import shared_data_file

XIYOUJI = "xiyouji.utf8.txt"
PRIDE = "pride_and_prejudice.txt"
NOVELS = (XIYOUJI, PRIDE)

_CN_NUMERALS = "〇一二三四五六七八九"


@dataclass
class Novel:
    name: str
    chinese: bool
    book: str  # the book's name as a site writes it
    front: str  # text before the first chapter
    chapters: list[tuple[str, list[str]]]  # (heading line, paragraphs)


@dataclass
class Variant:
    data: bytes
    titles: list[str]
    volumes: int = 0
    stripped: int = 0  # banner, advertisement and running-header lines the extractor must drop
    filename: str = "novel.txt"
    notes: list[str] = field(default_factory=list)


def load_novel(name: str) -> Novel:
    text = shared_data_file(name).read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    if name == PRIDE:
        start = text.index("\n", text.index("*** START OF")) + 1
        text = text[start : text.index("*** END OF")]
        pattern = re.compile(r"^Chapter \d+$", re.M)
        book = "Pride and Prejudice"
    else:
        pattern = re.compile(r"^第[一二三四五六七八九十百]+回[^\n]*$", re.M)
        book = "西游记"
    marks = list(pattern.finditer(text))
    chapters = []
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        body = text[mark.end() : end]
        paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", body) if p.strip()]
        chapters.append((mark.group(0).strip(), paragraphs))
    return Novel(name, name == XIYOUJI, book, text[: marks[0].start()].strip(), chapters)


def chinese_digits(number: int) -> str:
    """一, 二 … 十, 十一 … 一百: the way 西游记 numbers its chapters."""
    if number < 10:
        return _CN_NUMERALS[number]
    if number < 20:
        return "十" + (_CN_NUMERALS[number % 10] if number % 10 else "")
    if number < 100:
        return _CN_NUMERALS[number // 10] + "十" + (_CN_NUMERALS[number % 10] if number % 10 else "")
    return "一百"


def _render(novel: Novel, *, newline: str = "\n", encoding: str = "utf-8", bom: bool = False,
            banner: list[str] = (), heading=lambda n, h: h, title=lambda n, h: h, toc: bool = False,
            running=None, ads: list[str] = (), volumes=None, mentions: bool = False,
            ad_encoding: str | None = None, dashes: bool = False) -> Variant:
    """Write the novel with the given junk; work out the exact titles and junk lines."""
    blocks: list[str] = []  # paragraphs, joined by blank lines
    ad_blocks: set[int] = set()
    titles: list[str] = []
    stripped = 0
    volume_count = 0
    blocks.extend(banner)
    stripped += len(banner)
    ad_blocks.update(range(len(banner)))
    if novel.front:
        blocks.append(novel.front)
    if toc:
        blocks.append("目录" if novel.chinese else "Contents")
        blocks.extend(heading(n, h) for n, (h, _) in enumerate(novel.chapters, 1))
    for number, (line, paragraphs) in enumerate(novel.chapters, 1):
        volume = volumes(number) if volumes else None
        expected = title(number, line)
        if volume:
            blocks.append(volume)
            volume_count += 1
            expected = f"{volume} {expected}"
        titles.append(expected)
        blocks.append(heading(number, line))
        for index, paragraph in enumerate(paragraphs):
            blocks.append(paragraph.replace("--", "\u2014") if dashes else paragraph)
            if running and index % 6 == 5 and index + 1 < len(paragraphs):
                blocks.append(running(number, line))
                stripped += 1
            if mentions and index == 1:
                blocks.append(_mention(novel, number))
        if ads and number < len(novel.chapters):
            ad_blocks.add(len(blocks))
            blocks.append(ads[number % len(ads)])
            stripped += 1
    text = "\n\n".join(blocks) + "\n"
    if ad_encoding is None:
        data = text.replace("\n", newline).encode(encoding)
    else:  # the body in `encoding`, the advertisements pasted in as `ad_encoding`
        data = (newline * 2).encode().join(
            block.replace("\n", newline).encode(ad_encoding if index in ad_blocks else encoding)
            for index, block in enumerate(blocks)) + newline.encode()
    if bom:
        data = "\ufeff".encode(encoding) + data
    return Variant(data, titles, volume_count, stripped)


def _mention(novel: Novel, number: int) -> str:
    """A paragraph of its own that names another chapter, as prose does."""
    other = number + 2
    if novel.chinese:
        return f"第{chinese_digits(min(other, 99))}回里还要再说到这件事，此处不表。"
    return f"Chapter {other} of this story tells what happened next; we shall come to it."


def _spaces(line: str) -> str:
    """Mixed runs of ASCII and full-width spaces, as converters leave them."""
    return line.replace("\u3000", " \u3000 ", 1).replace("\u3000", "\t\u3000", 2) if "\u3000" in line else line


def _site_variants(novel: Novel, site: str, suffix: str, separator: str, banner: list[str],
                   ads: list[str]) -> dict[str, Variant]:
    """The variants both novels get, in the site's own words."""
    return {
        "site prefix on every heading, BOM and banner": _render(
            novel, bom=True, banner=banner[:1], heading=lambda n, h: site + h),
        "running number before every heading": _render(novel, heading=lambda n, h: f"{n:03d}. {h}"),
        "site suffix after every heading": _render(novel, heading=lambda n, h: h + suffix),
        "table of contents": _render(novel, toc=True),
        "running headers": _render(novel, running=lambda n, h: f"{novel.book}{separator}{h}"),
        "ads between chapters": _render(novel, banner=banner, ads=ads),
        "mentions of other chapters": _render(novel, mentions=True),
    }


def messy_variants(name: str) -> dict[str, Variant]:
    novel = load_novel(name)
    if novel.chinese:
        site = "《》目录 "
        banner = ["本书来自 www.xbiquge.la 笔趣阁 免费小说阅读网", "更多精彩小说请访问 http://www.xbiquge.la/ 最快更新"]
        ads = ["天才一秒记住本站地址：www.xbiquge.la。手机版阅读网址：m.xbiquge.la",
               "（本章完）求收藏、求推荐票！最新章节请到 www.xbiquge.la 阅读",
               "笔趣阁 www.xbiquge.la 提供西游记最新章节免费阅读"]
        arabic = lambda n, h: re.sub(r"^第[^回]+回", f"第{n}章", h)  # noqa: E731
        volumes = lambda n: f"卷{chinese_digits((n - 1) // 10 + 1)}" if n % 10 == 1 else None  # noqa: E731
        variants = _site_variants(novel, site, "　-　笔趣阁", "　", banner, ads)
        variants.update({
            "table of contents and site prefix": _render(novel, toc=True, heading=lambda n, h: site + h),
            "CRLF, GB18030 with UTF-8 ads": _render(novel, newline="\r\n", encoding="gb18030", banner=banner,
                                                    ads=ads, ad_encoding="utf-8"),
            "volumes above chapters": _render(novel, volumes=volumes),
            "Arabic 第N章": _render(novel, heading=arabic, title=arabic),
            "mixed spaces": _render(novel, heading=lambda n, h: _spaces(h)),
        })
        variants["everything at once"] = _render(
            novel, bom=True, newline="\r\n", banner=banner, heading=lambda n, h: site + _spaces(h), toc=True,
            running=lambda n, h: f"{novel.book}　{h}", ads=ads, volumes=volumes, mentions=True)
        return variants
    site = "NovelFull.com | "
    banner = ["Downloaded from www.novelfull.com - read free novels online",
              "Visit https://www.novelfull.com/ for more free books"]
    ads = ["Read the latest chapters at www.novelfull.com",
           "Like this book? Download more free novels at www.novelfull.com",
           "Support us: share www.novelfull.com with your friends!"]
    upper = lambda n, h: h.upper()  # noqa: E731
    roman_numbers = _restarting_roman()
    roman = lambda n, h: f"CHAPTER {roman_numbers[n]}."  # noqa: E731
    titled_roman = lambda n, h: f"Chapter {roman_numbers[n]}."  # noqa: E731
    variants = _site_variants(novel, site, " - NovelFull", " | ", banner, ads)
    variants.update({
        "CRLF, Windows-1252": _render(novel, newline="\r\n", encoding="cp1252", banner=banner, ads=ads,
                                      dashes=True),
        "volumes above Roman chapters": _render(novel, volumes={1: "VOLUME I", 24: "VOLUME II", 43: "VOLUME III"}.get,
                                                heading=roman, title=roman),
        "Book One above Chapter I.": _render(novel, volumes={1: "Book One", 24: "Book Two", 43: "Book Three"}.get,
                                             heading=titled_roman, title=titled_roman),
        "CHAPTER 1": _render(novel, heading=upper, title=upper),
    })
    variants["everything at once"] = _render(
        novel, bom=True, newline="\r\n", banner=banner, heading=lambda n, h: site + h, toc=True,
        running=lambda n, h: f"{novel.book} | {h}", ads=ads, mentions=True)
    return variants


def _restarting_roman() -> dict[int, str]:
    """Pride and Prejudice as first printed: three volumes, chapters numbered I… in each."""
    def roman(value: int) -> str:
        digits = [(10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
        out = ""
        for amount, letters in digits:
            while value >= amount:
                out += letters
                value -= amount
        return out

    numbers = {}
    for chapter in range(1, 62):
        first = 1 if chapter < 24 else 24 if chapter < 43 else 43
        numbers[chapter] = roman(chapter - first + 1)
    return numbers
