"""The data every extractor produces.

`ExtractedDocument.text` is the normalized text (``\\n`` newlines only, no BOM, runs of
blank lines collapsed to one, scrape banners and Project Gutenberg boilerplate
dropped). `chapters` are character ranges into that text, in reading order and
non-overlapping: chapter *i* starts at its heading and ends where chapter *i + 1*
starts, minus the blank lines between them. Text before the first chapter (a title
page, a preface, a table of contents) belongs to no chapter. An empty `chapters`
list means no structure was found, not that the text is empty.

`Section` is the intermediate form of the structured formats (EPUB, DOCX, PDF,
HTML): their parsers cut the document into titled pieces, and `assemble.py`
normalizes each piece on its own and joins them, so that chapter offsets are exact
by construction rather than remapped after normalization.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chapter:
    index: int  # 0-based position in ExtractedDocument.chapters
    title: str
    start: int  # offset of the first character (the heading) in ExtractedDocument.text
    end: int  # offset just past the last non-blank character of the chapter
    number: int | None = None  # the number in the heading ("第十二回" -> 12), if any


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    title: str
    format: str  # "txt", "md", "epub", "pdf", "docx", "html"
    encoding: str | None  # the detected text encoding for txt/md/html, else None
    text: str
    chapters: list[Chapter]
    author: str | None = None
    # Where the chapters came from: "headings" (detected in the text), "toc" (EPUB
    # NCX/nav or PDF bookmarks), "styles" (DOCX heading styles, HTML h1-h3),
    # "pages" (one chapter per PDF page) or "none".
    chapter_source: str = "none"
    # What cleaning found: lines dropped as scrape junk (site banners, advertisements,
    # running headers), volume headings above chapters, table-of-contents entries.
    stripped_lines: tuple[str, ...] = ()
    volumes: int = 0
    toc_entries: int = 0

    def chapter_text(self, chapter: Chapter) -> str:
        return self.text[chapter.start : chapter.end]


@dataclass(slots=True)
class Section:
    """A piece of a structured document; `title` None means "continues what precedes"."""

    title: str | None
    text: str
    number: int | None = None


@dataclass(slots=True)
class SectionedDocument:
    """What a structured-format parser returns before assembly."""

    format: str
    sections: list[Section]
    title: str | None = None
    author: str | None = None
    encoding: str | None = None
    # "toc" or "styles" for real structure; "pages" for PDF pages, which only count
    # when the text itself shows no chapter headings; "none" when sections carry no
    # titles at all.
    chapter_source: str = "none"
