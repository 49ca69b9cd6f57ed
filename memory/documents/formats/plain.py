"""Plain text and Markdown files.

Decoding is `encoding.decode_text`; Project Gutenberg boilerplate is cut here (it
only ever appears in plain-text files) and gives the title and author. Chapter
detection happens later on the normalized text, like for every format. Markdown
additionally offers its ATX headings (``#``/``##`` outside code fences) as
structure, used when the text has no numbered chapter headings.
"""

from __future__ import annotations

import re

from ..encoding import decode_text, looks_binary
from ..errors import DocumentError, ErrorCode
from ..model import Section, SectionedDocument
from ..normalize import drop_banner_lines, strip_gutenberg
from ..structure import choose_heading_level, cut_sections

_BOOK_TITLE = re.compile(r"^[ \t\u3000]*(?:《([^《》\n]{1,40})》|(?:书名|書名)[:：][ \t\u3000]*([^\n]{1,40}?))[ \t\u3000\r]*$")
_ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")


def read_plain(data: bytes, markdown: bool = False, declared_charset: str | None = None) -> SectionedDocument:
    if not data.strip():
        raise DocumentError(ErrorCode.EMPTY, "The file is empty. Send a file that contains text.")
    decoded = decode_text(data, declared_charset)
    if looks_binary(decoded.text):
        raise DocumentError(
            ErrorCode.UNSUPPORTED,
            "This file is not plain text. Send a .txt, .md, .epub, .pdf, .docx or .html file.",
        )
    text, title, author = decoded.text, None, None
    gutenberg = strip_gutenberg(text)
    if gutenberg is not None:
        text, title, author = gutenberg.text, gutenberg.title, gutenberg.author
    title = title or _title_from_first_line(text)
    fmt = "md" if markdown else "txt"
    if markdown:
        sections = _markdown_sections(text)
        if sections is not None:
            return SectionedDocument(fmt, sections, title, author, decoded.encoding, "styles")
    return SectionedDocument(fmt, [Section(None, text)], title, author, decoded.encoding)


def _title_from_first_line(text: str) -> str | None:
    for line in drop_banner_lines(text[:4096].replace("\r", "\n")).splitlines():
        if line.strip():
            match = _BOOK_TITLE.match(line.lstrip("\ufeff"))
            return (match.group(1) or match.group(2)).strip() if match else None
    return None


def _markdown_sections(text: str) -> list[Section] | None:
    headings: list[tuple[int, int, str]] = []  # (level, offset, title)
    offset = 0
    in_fence = False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            match = _ATX_HEADING.match(line.rstrip("\r\n"))
            if match:
                headings.append((len(match.group(1)), offset, match.group(2).strip()))
        offset += len(line)
    level = choose_heading_level(level for level, _, _ in headings)
    if level is None:
        return None
    return cut_sections(text, [(offset, title) for heading_level, offset, title in headings if heading_level == level])
