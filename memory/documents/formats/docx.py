"""Word .docx files, read with python-docx.

Body paragraphs and tables are read in document order (tables row by row, cells
separated by tabs). Chapters come from heading styles: a paragraph whose style is
"Heading N", or is based on one (custom chapter styles usually are), or that carries
an outline level. Style ids are resolved once into levels, since looking up
`paragraph.style` for every paragraph is what makes python-docx slow on books. The
"Title" style gives the document title when the core properties have none.

The package is a ZIP: its central directory passes the zip-bomb checks in
`safezip.py`, and python-docx gets a copy whose members were read with a hard cap
(`SafeZip.repacked`), never the uploaded archive itself.
"""

from __future__ import annotations

import io
import re

import docx
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from ..errors import DocumentError, ErrorCode
from ..limits import DocumentLimits
from ..model import Section, SectionedDocument
from ..safezip import SafeZip
from ..structure import choose_heading_level

_HEADING_NAME = re.compile(r"^(?:heading|标题|標題)\s*([1-9])$", re.IGNORECASE)  # WPS names them 标题 1
_TITLE_LEVEL = 0  # the Title style; never a chapter level


def read_docx(data: bytes, limits: DocumentLimits) -> SectionedDocument:
    with SafeZip(data, limits, "Word") as archive:
        if "word/document.xml" not in archive:
            raise DocumentError(ErrorCode.CORRUPT, "This is not a Word .docx file (word/document.xml is missing).")
        package = archive.repacked()  # python-docx would inflate a lying member whole
    try:
        document = docx.Document(io.BytesIO(package))
    except Exception as error:  # python-docx raises assorted errors (KeyError, lxml, zipfile) on bad parts
        raise DocumentError(ErrorCode.CORRUPT, "This Word file is damaged and cannot be read. Save it again.") from error
    levels = _style_levels(document)
    blocks: list[tuple[int | None, str]] = []  # (heading level or None, text)
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            blocks.append((_paragraph_level(block, levels), block.text))
        elif isinstance(block, Table):
            blocks.append((None, _table_text(block)))
    title = (document.core_properties.title or "").strip() or next(
        (text.strip() for level, text in blocks if level == _TITLE_LEVEL and text.strip()), None
    )
    author = (document.core_properties.author or "").strip() or None
    chapter_level = choose_heading_level(level for level, text in blocks if level and text.strip())
    return SectionedDocument("docx", _sections(blocks, chapter_level), title, author, None, "styles")


def _style_levels(document: docx.document.Document) -> dict[str, int]:
    """Paragraph style id -> heading level (0 for Title), following based-on chains."""
    levels: dict[str, int] = {}
    for style in document.styles:
        current, seen = style, 0
        while current is not None and seen < 20:
            name = (current.name or "").strip()
            match = _HEADING_NAME.match(name)
            if match:
                levels[style.style_id] = int(match.group(1))
                break
            if name.lower() == "title":
                levels[style.style_id] = _TITLE_LEVEL
                break
            current, seen = getattr(current, "base_style", None), seen + 1
    return levels


def _paragraph_level(paragraph: Paragraph, levels: dict[str, int]) -> int | None:
    properties = paragraph._p.pPr
    style_id = paragraph._p.style
    if style_id is not None and style_id in levels:
        return levels[style_id]
    if properties is not None:
        outline = properties.find(qn("w:outlineLvl"))
        if outline is not None:
            value = outline.get(qn("w:val"))
            if value is not None and value.isdigit() and int(value) < 9:
                return int(value) + 1
    return None


def _table_text(table: Table) -> str:
    rows = []
    for row in table.rows:
        cells = []
        previous = None
        for cell in row.cells:
            if cell._tc is not previous:  # a merged cell is listed once per grid column it spans
                cells.append(cell.text.strip())
            previous = cell._tc
        rows.append("\t".join(cells))
    return "\n".join(rows)


def _sections(blocks: list[tuple[int | None, str]], chapter_level: int | None) -> list[Section]:
    sections = [Section(None, "")]
    parts: list[str] = []
    for level, text in blocks:
        if chapter_level is not None and level == chapter_level and text.strip():
            sections[-1].text = "\n\n".join(parts)
            parts = []
            sections.append(Section(" ".join(text.split()), ""))
        parts.append(text)
    sections[-1].text = "\n\n".join(parts)
    return sections
