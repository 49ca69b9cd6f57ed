"""HTML files and fetched web pages.

The character set comes from, in order: a BOM, valid UTF-8, the HTTP header's
charset, the document's own <meta charset>/XML declaration, then the usual
GB18030/Big5/detector chain (`encoding.decode_text`). Text comes from
`htmltext.html_to_text` with page chrome (nav, aside, footer, forms) dropped.
Headings h1-h3 give the chapters, at the level `structure.choose_heading_level` picks.
"""

from __future__ import annotations

from ..encoding import decode_text, sniff_declared_charset
from ..htmltext import html_to_text
from ..model import SectionedDocument
from ..structure import choose_heading_level, cut_sections


def read_html(data: bytes, declared_charset: str | None = None) -> SectionedDocument:
    decoded = decode_text(data, declared_charset or sniff_declared_charset(data))
    converted = html_to_text(decoded.text, drop_page_chrome=True)
    headings = [heading for heading in converted.headings if heading.level <= 3]
    level = choose_heading_level(heading.level for heading in headings)
    cuts = [(heading.offset, heading.text) for heading in headings if heading.level == level]
    first_h1 = next((heading.text for heading in converted.headings if heading.level == 1), None)
    title = converted.title or first_h1
    return SectionedDocument(
        "html", cut_sections(converted.text, cuts), title, None, decoded.encoding, "styles" if cuts else "none"
    )
