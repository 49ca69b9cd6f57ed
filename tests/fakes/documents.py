"""Builders for the document files the tests (and benchmarks) feed to the extractor.

Real files, made the way real tools make them: EPUBs are zipped by hand exactly as
the OCF spec lays them out (mimetype first and stored, container.xml, OPF, NCX for
EPUB 2, a nav document for EPUB 3), DOCX files come from python-docx, PDFs from
fpdf2 (core Helvetica font, so Latin-1 text only: no CJK font ships with the
machine). The zip-bomb builders write a real archive and then, where needed, patch
the size fields in its headers, which is how hostile archives lie.
"""

from __future__ import annotations

import io
import struct
import zipfile
from html import escape
from pathlib import Path

Chapter = tuple[str, list[str]]  # (title, paragraphs)


def make_epub(
    chapters: list[Chapter],
    *,
    version: int = 3,
    title: str = "A Test Book",
    author: str = "Test Author",
    chapters_per_file: int = 1,
    front_matter: list[str] | None = None,
    nav_in_spine: bool = True,
    with_toc: bool = True,
    extra_files: dict[str, bytes] | None = None,
) -> bytes:
    """An EPUB 2 (NCX) or 3 (nav document) with the chapters in spine order.

    chapters_per_file > 1 puts several chapters into one XHTML file, the TOC
    pointing at anchors inside it. front_matter paragraphs go into a first file
    that the TOC does not list.
    """
    files: list[tuple[str, list[tuple[str, str, list[str]]]]] = []  # (name, [(anchor, title, paragraphs)])
    if front_matter:
        files.append(("front.xhtml", [("", "", front_matter)]))
    for index in range(0, len(chapters), chapters_per_file):
        group = chapters[index : index + chapters_per_file]
        name = f"text/part{index // chapters_per_file + 1:04d}.xhtml"
        files.append((name, [(f"ch{index + offset + 1}", t, p) for offset, (t, p) in enumerate(group)]))

    manifest = []
    spine = []
    toc_points = []
    for number, (name, entries) in enumerate(files, start=1):
        manifest.append(f'<item id="f{number}" href="{name}" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="f{number}"/>')
        for anchor, chapter_title, _ in entries:
            if anchor:
                href = name if chapters_per_file == 1 else f"{name}#{anchor}"
                toc_points.append((chapter_title, href))

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?>\n<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
            compress_type=zipfile.ZIP_DEFLATED,
        )
        for name, entries in files:
            archive.writestr(f"OEBPS/{name}", _xhtml(entries), compress_type=zipfile.ZIP_DEFLATED)
        spine_attr = ""
        if version == 3:
            manifest.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>')
            if nav_in_spine:
                spine.insert(0, '<itemref idref="nav" linear="no"/>')
            archive.writestr("OEBPS/nav.xhtml", _nav(toc_points if with_toc else []), compress_type=zipfile.ZIP_DEFLATED)
        else:
            manifest.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
            spine_attr = ' toc="ncx"'
            archive.writestr("OEBPS/toc.ncx", _ncx(toc_points if with_toc else [], title), compress_type=zipfile.ZIP_DEFLATED)
        for name, data in (extra_files or {}).items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr(
            "OEBPS/content.opf",
            f'<?xml version="1.0" encoding="UTF-8"?>\n<package xmlns="http://www.idpf.org/2007/opf" version="{version}.0"'
            ' unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f'<dc:identifier id="id">test-book</dc:identifier><dc:title>{escape(title)}</dc:title>'
            f"<dc:creator>{escape(author)}</dc:creator><dc:language>en</dc:language></metadata>"
            f"<manifest>{''.join(manifest)}</manifest><spine{spine_attr}>{''.join(spine)}</spine></package>",
            compress_type=zipfile.ZIP_DEFLATED,
        )
    return out.getvalue()


def _xhtml(entries: list[tuple[str, str, list[str]]]) -> str:
    body = []
    for anchor, chapter_title, paragraphs in entries:
        if chapter_title:
            body.append(f'<h2 id="{anchor}">{escape(chapter_title)}</h2>')
        body.extend(f"<p>{escape(paragraph)}</p>" for paragraph in paragraphs)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>A Test Book</title>'
        '<link rel="stylesheet" href="style.css"/></head><body>' + "\n".join(body) + "</body></html>"
    )


def _nav(points: list[tuple[str, str]]) -> str:
    items = "".join(f'<li><a href="{href}">{escape(t)}</a></li>' for t, href in points)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>Contents</title></head><body>'
        f'<nav epub:type="toc" id="toc"><h1>Contents</h1><ol>{items}</ol></nav>'
        '<nav epub:type="landmarks"><ol><li><a epub:type="bodymatter" href="text/part0001.xhtml">Start</a></li></ol></nav>'
        "</body></html>"
    )


def _ncx(points: list[tuple[str, str]], title: str) -> str:
    nav_points = "".join(
        f'<navPoint id="n{i}" playOrder="{i}"><navLabel><text>{escape(t)}</text></navLabel>'
        f'<content src="{href}"/></navPoint>'
        for i, (t, href) in enumerate(points, start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
        f"<head/><docTitle><text>{escape(title)}</text></docTitle><navMap>{nav_points}</navMap></ncx>"
    )


def make_docx(
    chapters: list[Chapter],
    *,
    heading_level: int = 1,
    title: str | None = "A Test Document",
    author: str = "Test Author",
    table: list[list[str]] | None = None,
) -> bytes:
    """A .docx with each chapter title in a "Heading N" paragraph."""
    import docx

    document = docx.Document()
    document.core_properties.author = author
    if title:
        document.add_heading(title, level=0)  # the Title style
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row_index, row in enumerate(table):
            for column, value in enumerate(row):
                grid.cell(row_index, column).text = value
    for chapter_title, paragraphs in chapters:
        document.add_heading(chapter_title, level=heading_level)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_pdf(
    pages: list[str],
    *,
    bookmarks: dict[int, str] | None = None,
    user_password: str | None = None,
    title: str = "A Test PDF",
    blank: bool = False,
) -> bytes:
    """A PDF with one page per string (Latin-1 text), optionally bookmarked or encrypted.

    blank=True draws a shape on every page instead of text: a "scanned" PDF.
    """
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_font("Helvetica", size=11)
    for index, text in enumerate(pages):
        pdf.add_page()
        if bookmarks and index in bookmarks:
            pdf.start_section(bookmarks[index])
        if blank:
            pdf.rect(20, 20, 100, 150, style="F")
        else:
            pdf.multi_cell(0, 5, text)
    if user_password is not None:
        pdf.set_encryption(owner_password="owner", user_password=user_password, encryption_method=EncryptionMethod.RC4)
    return bytes(pdf.output())


def make_zip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def patch_declared_size(archive: bytes, member: str, declared: int) -> bytes:
    """Rewrite `member`'s uncompressed-size fields (local header and central directory)."""
    data = bytearray(archive)
    # (signature, offset of the name length, offset of the name, offset of the size)
    for signature, name_length_at, name_at, size_at in ((b"PK\x03\x04", 26, 30, 22), (b"PK\x01\x02", 28, 46, 24)):
        position = data.find(signature)
        while position != -1:
            name_length = struct.unpack_from("<H", data, position + name_length_at)[0]
            if bytes(data[position + name_at : position + name_at + name_length]) == member.encode():
                struct.pack_into("<I", data, position + size_at, declared)
            position = data.find(signature, position + 4)
    return bytes(data)


SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_data_file(name: str) -> Path:
    """A file from the shared test data next to the repository; skips the test if absent."""
    import pytest

    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"shared test data {path} is not available (it lives outside the repository)")
    return path
