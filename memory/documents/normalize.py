"""Cleaning extracted text: newlines, invisible characters, blank lines, scrape junk.

Everything downstream (chapter offsets, passages, token counts, prompts) works on
the normalized text, so it must be stable and cheap: a 2-million-character novel is
normalized in a few tens of milliseconds, by whole-string operations (str.replace,
one-pass regexes, splitlines) rather than per-character Python loops.

What it does, in order: CRLF/CR and the other Unicode line separators become ``\\n``;
BOMs and C0 control characters (other than tab and newline) go; NFC; trailing
whitespace goes from every line and lines holding only whitespace become empty; runs
of blank lines collapse to one; lines that are obviously download-site banners go
("本书由…整理", "更多精彩请访问 www…", "手机阅读…", "Downloaded from www.… - free
novels"). Leading indentation (the
full-width spaces Chinese text uses) is kept.

Project Gutenberg plain-text files get their own step, `strip_gutenberg`, which keeps
only what lies between "*** START OF … ***" and "*** END OF … ***" and reads the title
and author from the header it drops.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_LINE_SEPARATORS = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")
_SEPARATOR_CHARS = "\r\x0b\x0c\x85\u2028\u2029"
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f\ufeff\u200b]")
_BLANK_RUNS = re.compile(r"\n{3,}")

# Cheap substrings that any banner line contains; only lines holding one of them are
# examined with the stricter patterns below.
_BANNER_KEYWORDS = (
    "本书", "本書", "更多", "手机", "手機", "请访问", "請訪問", "请记住", "請記住", "www", "WWW",
    "http", "首发", "首發", "下载", "下載", "电子书", "電子書", "本站", "txt", "TXT",
)
# One scan for all of them (a third of the time of a str.find per keyword).
_ANY_BANNER_KEYWORD = re.compile("|".join(map(re.escape, _BANNER_KEYWORDS)))
_ADDRESS = re.compile("www|http")
_BANNER_PATTERNS = re.compile(
    r"本[书書](?:由|来自|來自|下[载載]|首[发發]|整理|收集|制作|製作)"
    r"|更多(?:精彩|好[书書]|小[说說]|免[费費]|txt|TXT|章[节節])"
    r"|手[机機](?:阅读|閱讀|用[户戶]|访问|訪問|看[书書]|[版站])"
    r"|[请請](?:访问|訪問|记住|記住|收藏)"
    r"|(?:下[载載]|首[发發]|整理|阅读|閱讀|[访訪]问|尽在|盡在|分享|[电電]子[书書]|本站)"
    r"[^\n]{0,30}(?:www\.|WWW\.|https?://|[a-z0-9-]+\.(?:com|net|org|cc|cn|la|info|me|co)\b)"
    r"|(?:www\.|WWW\.|https?://)[^\n]{0,60}"
    r"(?:下[载載]|首[发發]|小[说說]|整理|阅读|閱讀|[电電]子[书書]|免[费費]|txt|TXT|本站|最新章[节節])"
)
# …and the English sites' ("Downloaded from www.… - read free novels online"), tried
# only on lines with an address (the case-insensitive words are slow to look for).
_ENGLISH_BANNER = re.compile(
    r"(?i:download(?:ed)?|read|visit|free|e-?books?|novels?)\b[^\n]{0,40}(?:www\.|https?://)"
    r"|(?:www\.|https?://)[^\n]{0,60}\b(?i:free|novels?|e-?books?|books|download)\b"
)
_MAX_BANNER_LINE = 160

_GUTENBERG_START = re.compile(
    r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^\n]*$", re.IGNORECASE | re.MULTILINE
)
_GUTENBERG_END = re.compile(
    r"^\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^\n]*$", re.IGNORECASE | re.MULTILINE
)
_GUTENBERG_END_NOTE = re.compile(
    r"\n[^\n]*End of (?:the )?Project Gutenberg'?s?[^\n]*\s*$", re.IGNORECASE
)
_MAX_GUTENBERG_HEADER = 50_000  # characters; real headers are a few hundred to ~15,000
_MAX_GUTENBERG_FOOTER = 100_000  # the licence after the END marker is about 19,000
_HEADER_FIELD = re.compile(r"^(Title|Author):[ \t]*(.+)$", re.MULTILINE)


def normalize_text(text: str, stripped: list[str] | None = None) -> str:
    """Normalize newlines, invisible characters, blank lines and banner lines.

    The banner lines dropped are appended to `stripped`, when given (for the report)."""
    # `in` per character (a memchr each) finds no separator ten times faster than a
    # regex search does; most texts have none, or only CRLF.
    if any(separator in text for separator in _SEPARATOR_CHARS):
        text = _LINE_SEPARATORS.sub("\n", text)
    if _INVISIBLE.search(text):
        text = _INVISIBLE.sub("", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = "\n".join([line.rstrip() for line in text.split("\n")])
    banners = banner_lines(text)
    if stripped is not None:
        stripped.extend(text[start:end] for start, end in banners)
    text = without_lines(text, banners, collapse=False)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n").rstrip()


def drop_banner_lines(text: str) -> str:
    """Remove short lines that advertise a download site; keep everything else."""
    return without_lines(text, banner_lines(text))


def banner_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of the short lines that advertise a download site, in order."""
    doomed: list[tuple[int, int]] = []
    hit = _ANY_BANNER_KEYWORD.search(text)
    while hit is not None:
        start = text.rfind("\n", 0, hit.start()) + 1
        end = text.find("\n", hit.start())
        if end == -1:
            end = len(text)
        if end - start <= _MAX_BANNER_LINE and (
                _BANNER_PATTERNS.search(text, start, end)
                or (_ADDRESS.search(text, start, end) and _ENGLISH_BANNER.search(text, start, end))):
            doomed.append((start, end))
        hit = _ANY_BANNER_KEYWORD.search(text, end)  # each line is looked at once
    return doomed


def without_lines(text: str, lines: list[tuple[int, int]], collapse: bool = True) -> str:
    """`text` without the given (start, end) lines (sorted) and their newlines; blank
    runs left behind collapse to one blank line (unless the caller does that next)."""
    if not lines:
        return text
    pieces: list[str] = []
    cursor = 0
    for start, end in lines:
        pieces.append(text[cursor:start])
        cursor = end + 1  # the line's newline goes with it
    pieces.append(text[cursor:])
    joined = "".join(pieces)
    return _BLANK_RUNS.sub("\n\n", joined).strip("\n") if collapse else joined


@dataclass(frozen=True, slots=True)
class GutenbergText:
    text: str
    title: str | None
    author: str | None


def strip_gutenberg(text: str) -> GutenbergText | None:
    """The body of a Project Gutenberg file with header and licence removed; None if not one.

    Only a START marker near the beginning and an END marker near the end count: a
    file that merely contains a Gutenberg book somewhere in the middle (several books
    pasted together) is left whole rather than cut down to one of them.
    """
    if "GUTENBERG" not in text and "Gutenberg" not in text:
        return None
    start = _GUTENBERG_START.search(text, 0, _MAX_GUTENBERG_HEADER)
    if start is None:
        return None
    header = text[: start.start()]
    fields = {name.lower(): value.strip() for name, value in _HEADER_FIELD.findall(header)}
    end = _GUTENBERG_END.search(text, max(start.end(), len(text) - _MAX_GUTENBERG_FOOTER))
    body = text[start.end() : end.start() if end else len(text)]
    body = _GUTENBERG_END_NOTE.sub("\n", body)
    return GutenbergText(body, fields.get("title"), fields.get("author"))
