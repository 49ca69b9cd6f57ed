"""PDF files, read with pypdfium2 (PDFium's text layer; Apache-2.0/BSD, not AGPL).

Page text comes from PDFium's text page API. A PDF that parses but yields no text on
any page has no text layer: it is a scan, and the user is told to OCR it. A password
yields an `encrypted` refusal, anything PDFium cannot load a `corrupt` one.

Chapters: the document outline (bookmarks) when it exists, at the level chosen like
heading levels; otherwise each page is a section titled "Page N", which assembly
uses only if the text itself shows no numbered chapter headings.

PDFium is not thread-safe, and the bot runs extractions in worker threads, so every
use of it holds one process-wide lock.
"""

from __future__ import annotations

import threading

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from ..errors import DocumentError, ErrorCode
from ..model import Section, SectionedDocument
from ..structure import choose_heading_level

PDFIUM_LOCK = threading.Lock()


def read_pdf(data: bytes) -> SectionedDocument:
    with PDFIUM_LOCK:
        document = _open(data)
        try:
            pages = [_page_text(document, index) for index in range(len(document))]
            metadata = document.get_metadata_dict(skip_empty=True)
            bookmarks = _bookmarks(document)
        except pdfium.PdfiumError as error:
            raise DocumentError(ErrorCode.CORRUPT, "This PDF is damaged and its text cannot be read.") from error
        finally:
            document.close()
    if not any(page.strip() for page in pages):
        raise DocumentError(
            ErrorCode.NO_TEXT,
            "This PDF has no text layer (it looks scanned). Run OCR on it, or send a text version.",
        )
    title, author = metadata.get("Title"), metadata.get("Author")
    if bookmarks:
        sections = [Section(bookmarks.get(index), text) for index, text in enumerate(pages)]
        return SectionedDocument("pdf", sections, title, author, None, "toc")
    sections = [Section(f"Page {index + 1}", text, index + 1) for index, text in enumerate(pages)]
    return SectionedDocument("pdf", sections, title, author, None, "pages")


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        if getattr(error, "err_code", None) in (pdfium_raw.FPDF_ERR_PASSWORD, pdfium_raw.FPDF_ERR_SECURITY):
            raise DocumentError(
                ErrorCode.ENCRYPTED, "This PDF is password-protected. Remove the password and send it again."
            ) from error
        raise DocumentError(ErrorCode.CORRUPT, "This PDF is damaged and cannot be opened. Export it again.") from error


def _page_text(document: pdfium.PdfDocument, index: int) -> str:
    page = document[index]
    try:
        text_page = page.get_textpage()
        try:
            return text_page.get_text_range()
        finally:
            text_page.close()
    finally:
        page.close()


def _bookmarks(document: pdfium.PdfDocument) -> dict[int, str]:
    """Page index -> title of the first chapter-level bookmark on that page."""
    entries = []
    for bookmark in document.get_toc(max_depth=6):
        destination = bookmark.get_dest()
        page_index = destination.get_index() if destination is not None else None
        title = " ".join((bookmark.get_title() or "").split())
        if page_index is not None and 0 <= page_index < len(document) and title:
            entries.append((bookmark.level, page_index, title))
    level = choose_heading_level(entry[0] for entry in entries)
    chosen: dict[int, str] = {}
    for entry_level, page_index, title in entries:
        if entry_level == level:
            chosen.setdefault(page_index, title)
    return chosen
