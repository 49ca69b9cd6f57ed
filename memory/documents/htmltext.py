"""HTML and XHTML to plain text, with headings and anchor offsets, without a tree.

Why not lxml, readability or trafilatura: libxml2 (under all three) stops parsing at
nesting depth 256 (2048 with huge_tree) and silently drops the rest of the document,
which sloppy pages full of unclosed tags reach; lexbor (selectolax) is quadratic on
deep nesting. The standard library's `html.parser` is a tokenizer: no tree, so no
depth to overflow and no recursion, and on novel-sized HTML it runs at a few MB/s,
enough here. Article-extraction heuristics (readability's "the best-scoring block")
would also throw away most of a whole-book HTML file; instead this keeps all text and
drops only what is never content: scripts, styles, templates, ruby glosses, and, for
pages fetched from the web, navigation chrome (nav, aside, footer, form, and ARIA
roles navigation/complementary/contentinfo/search).

A dropped region is cut out when its end tag arrives. If the end tag never comes (a
stray ``<nav>`` never closed), the region is kept: losing the rest of a document to
one broken tag is worse than keeping a menu.

Block elements become line breaks (paragraph-like ones a blank line), whitespace in
running text collapses, ``<pre>`` keeps its own. Headings h1-h6 and every element
id (and ``<a name>``) are reported with their offsets into the text, which the EPUB
reader uses to cut a file at the places its table of contents points to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_PARAGRAPH_BLOCKS = frozenset(
    "p h1 h2 h3 h4 h5 h6 blockquote pre section article table ul ol dl figure hr header footer "
    "main aside nav address details summary form fieldset center body".split()
)
_LINE_BLOCKS = frozenset("div li tr dd dt caption figcaption option legend".split())
_CELLS = frozenset(("td", "th"))
_ALWAYS_DROPPED = frozenset("script style noscript template svg math iframe object canvas rt rp select button head".split())
_CHROME = frozenset("nav aside footer form".split())
_CHROME_ROLES = frozenset(("navigation", "complementary", "contentinfo", "search"))
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_WHITESPACE = re.compile(r"[ \t\n\r\f\xa0]+")


@dataclass(slots=True)
class HtmlHeading:
    level: int
    offset: int
    text: str


@dataclass(slots=True)
class HtmlText:
    text: str
    title: str | None
    headings: list[HtmlHeading] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)


def html_to_text(html: str, drop_page_chrome: bool = False) -> HtmlText:
    """Convert an HTML document (as text) to plain text with structure."""
    converter = _Converter(drop_page_chrome)
    converter.feed(html)
    converter.close()
    return converter.result()


@dataclass(slots=True)
class _DroppedRegion:
    tag: str
    depth: int
    piece_index: int
    length: int
    heading_count: int
    anchor_count: int


class _Converter(HTMLParser):
    def __init__(self, drop_page_chrome: bool) -> None:
        super().__init__(convert_charrefs=True)
        self._drop_page_chrome = drop_page_chrome
        self._pieces: list[str] = []
        self._length = 0
        self._trailing_newlines = 2  # the start counts as after a paragraph break
        self._pending_break = 0
        self._dropped: _DroppedRegion | None = None
        self._pre_depth = 0
        self._title_parts: list[str] | None = None
        self._title: str | None = None
        self._heading: tuple[int, int, list[str]] | None = None
        self._headings: list[HtmlHeading] = []
        self._anchors: list[tuple[str, int]] = []

    # -- parser callbacks -----------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self._title is None and self._title_parts is None:
            self._title_parts = []
            return
        if self._title_parts is not None:
            self._end_title()  # a <title> left open must not swallow the document
        if tag == "body" and self._dropped is not None and self._dropped.tag == "head":
            self._cut_dropped_region()  # <head> left open ends where <body> begins
        if tag not in _VOID:
            if self._dropped is not None:
                if tag == self._dropped.tag:
                    self._dropped.depth += 1
            elif tag in _ALWAYS_DROPPED or (self._drop_page_chrome and _is_chrome(tag, attrs)):
                self._dropped = _DroppedRegion(
                    tag, 1, len(self._pieces), self._length, len(self._headings), len(self._anchors)
                )
        if tag == "br":
            self._flush_break()
            self._emit("\n")  # each <br> is a line break of its own: <br><br> leaves a blank line
        self._block_break(tag)
        if tag in _CELLS:
            self._flush_break()
            if self._length and not self._trailing_newlines:
                self._emit("\t")  # between cells of a row, not before the first
        for name, value in attrs:
            if value and (name == "id" or (name == "name" and tag == "a")):
                self._flush_break()
                self._anchors.append((value, self._length))
        if tag == "pre":
            self._pre_depth += 1
        if tag in _HEADINGS and self._heading is None:
            self._flush_break()
            self._heading = (_HEADINGS[tag], self._length, [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._title_parts is not None:
            self._end_title()
            return
        if tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
        if tag in _HEADINGS and self._heading is not None:
            level, offset, parts = self._heading
            text = _WHITESPACE.sub(" ", "".join(parts)).strip()
            if text:
                self._headings.append(HtmlHeading(level, offset, text))
            self._heading = None
        if tag != "br":
            self._block_break(tag)
        if self._dropped is not None and tag == self._dropped.tag:
            self._dropped.depth -= 1
            if self._dropped.depth == 0:
                self._cut_dropped_region()

    def handle_data(self, data: str) -> None:
        if self._title_parts is not None:
            self._title_parts.append(data)
            return
        if not self._pre_depth:
            data = _WHITESPACE.sub(" ", data)
            if self._pending_break or self._trailing_newlines:
                data = data.lstrip(" ")
            if not data:
                return
        self._flush_break()
        self._emit(data)
        if self._heading is not None and self._dropped is None:
            self._heading[2].append(data)

    def close(self) -> None:
        super().close()
        if self._title_parts is not None:
            self._end_title()

    # -- output -------------------------------------------------------------------
    def _end_title(self) -> None:
        assert self._title_parts is not None
        self._title = _WHITESPACE.sub(" ", "".join(self._title_parts)).strip() or None
        self._title_parts = None

    def _block_break(self, tag: str) -> None:
        if tag in _PARAGRAPH_BLOCKS:
            self._pending_break = max(self._pending_break, 2)
        elif tag in _LINE_BLOCKS:
            self._pending_break = max(self._pending_break, 1)

    def _flush_break(self) -> None:
        wanted, self._pending_break = self._pending_break, 0
        if wanted > self._trailing_newlines and self._length:
            self._emit("\n" * (wanted - self._trailing_newlines))

    def _emit(self, text: str) -> None:
        self._pieces.append(text)
        self._length += len(text)
        stripped = text.rstrip("\n")
        if stripped:
            self._trailing_newlines = len(text) - len(stripped)
        else:
            self._trailing_newlines += len(text)

    def _cut_dropped_region(self) -> None:
        region = self._dropped
        assert region is not None
        del self._pieces[region.piece_index :]
        self._length = region.length
        del self._headings[region.heading_count :]
        del self._anchors[region.anchor_count :]
        self._dropped = None
        self._trailing_newlines = 0
        for piece in reversed(self._pieces):
            stripped = piece.rstrip("\n")
            self._trailing_newlines += len(piece) - len(stripped)
            if stripped:
                break
        else:
            self._trailing_newlines = 2

    def result(self) -> HtmlText:
        anchors: dict[str, int] = {}
        for name, offset in self._anchors:
            anchors.setdefault(name, offset)
        return HtmlText("".join(self._pieces), self._title, self._headings, anchors)


def _is_chrome(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    if tag in _CHROME:
        return True
    role = next((value for name, value in attrs if name == "role"), None)
    return role is not None and role.strip().lower() in _CHROME_ROLES
