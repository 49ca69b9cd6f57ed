"""The entry points: bytes (or a file, or a link) in, `ExtractedDocument` out.

The format is decided by content first where content is unambiguous (a PDF or ZIP
signature, an OLE2 container, an image), then by the file name's extension, then by
the HTTP content type, then by a look for ``<html``; anything else is tried as
text (and refused if it is binary). A file whose extension promises a PDF, EPUB or
DOCX but whose bytes are something else is reported as damaged rather than misread.

Extraction is synchronous and CPU-bound; from async code run `extract_bytes` in a
worker thread (`asyncio.to_thread`), as `extract_url` does. Every refusal is a
`DocumentError`.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path, PurePosixPath

from .addresses import PUBLIC_ONLY, AddressPolicy
from .assemble import assemble
from .errors import DocumentError, ErrorCode
from .fetch import Resolver, fetch_url
from .formats.archive import pick_archive_member
from .formats.docx import read_docx
from .formats.epub import read_epub
from .formats.html import read_html
from .formats.pdf import read_pdf
from .formats.plain import read_plain
from .limits import DEFAULT_LIMITS, DocumentLimits
from .model import ExtractedDocument, SectionedDocument
from .safezip import ZIP_ERRORS

FORMAT_BY_EXTENSION = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".epub": "epub",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".zip": "zip",
}
_FORMAT_BY_CONTENT_TYPE = {
    "text/plain": "txt",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/epub+zip": "epub",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/zip": "zip",
}
_SUPPORTED = "txt, md, epub, pdf, docx or html"
_UNSUPPORTED_HINTS = {
    ".doc": "Old Word .doc files are not supported. Save it as .docx or PDF and send it again.",
    ".rtf": "RTF files are not supported. Save it as .docx or .txt and send it again.",
    ".odt": "OpenDocument files are not supported. Save it as .docx or PDF and send it again.",
    ".mobi": "Kindle files are not supported. Convert it to EPUB and send it again.",
    ".azw": "Kindle files are not supported. Convert it to EPUB and send it again.",
    ".azw3": "Kindle files are not supported. Convert it to EPUB and send it again.",
    ".rar": "RAR archives are not supported. Send the document itself, or a .zip.",
    ".7z": "7z archives are not supported. Send the document itself, or a .zip.",
}
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic")
_IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM", b"II*\x00", b"MM\x00*")
_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def extract_bytes(
    data: bytes,
    filename: str,
    limits: DocumentLimits = DEFAULT_LIMITS,
    *,
    content_type: str | None = None,
    charset: str | None = None,
) -> ExtractedDocument:
    """Extract text and chapters from a document's bytes; `filename` picks the format.

    `content_type` and `charset` are what an HTTP response said, if the bytes came
    from one. Raises DocumentError.
    """
    if len(data) > limits.max_document_bytes:
        raise too_large(len(data), limits)
    if not data:
        raise DocumentError(ErrorCode.EMPTY, "The file is empty. Send a file that contains text.")
    fmt = detect_format(data, filename, content_type)
    if fmt == "zip":
        filename, data = pick_archive_member(data, limits)
        fmt = detect_format(data, filename)
        if fmt == "zip":
            raise DocumentError(ErrorCode.UNSUPPORTED, "Archives inside archives are not opened. Send the document itself.")
    sectioned = _read(fmt, data, limits, charset)
    return assemble(sectioned, PurePosixPath(filename).stem or "Untitled", limits)


def extract_path(path: str | Path, limits: DocumentLimits = DEFAULT_LIMITS) -> ExtractedDocument:
    """Extract a document from a file; the size limit is checked before reading it."""
    path = Path(path)
    size = path.stat().st_size
    if size > limits.max_document_bytes:
        raise too_large(size, limits)
    return extract_bytes(path.read_bytes(), path.name, limits)


async def extract_url(
    url: str,
    limits: DocumentLimits = DEFAULT_LIMITS,
    *,
    resolver: Resolver | None = None,
    policy: AddressPolicy = PUBLIC_ONLY,
) -> ExtractedDocument:
    """Download a link (see `fetch.fetch_url`) and extract it like an upload."""
    fetched = await fetch_url(url, limits, resolver=resolver, policy=policy)
    return await asyncio.to_thread(
        extract_bytes,
        fetched.data,
        fetched.filename,
        limits,
        content_type=fetched.content_type,
        charset=fetched.charset,
    )


def detect_format(data: bytes, filename: str, content_type: str | None = None) -> str:
    """One of "txt", "md", "epub", "pdf", "docx", "html", "zip"; DocumentError if unsupported."""
    extension = PurePosixPath(filename.lower()).suffix
    claimed = FORMAT_BY_EXTENSION.get(extension)
    head = data[:1024]
    if head.startswith(b"%PDF-") or (b"%PDF-" in head and claimed in (None, "pdf")):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return claimed if claimed in ("epub", "docx") else _zip_kind(data)
    if head.startswith(_OLE_SIGNATURE):
        if claimed == "docx":
            raise DocumentError(
                ErrorCode.ENCRYPTED, "This Word file is password-protected. Remove the password and send it again."
            )
        raise DocumentError(ErrorCode.UNSUPPORTED, _UNSUPPORTED_HINTS[".doc"])
    # A damaged picture has no signature; its name still says it is no document (without
    # this, random bytes named .png went on to encoding detection).
    if (head.startswith(_IMAGE_SIGNATURES) or extension in _IMAGE_EXTENSIONS) and claimed not in ("txt", "md", "html"):
        raise DocumentError(
            ErrorCode.UNSUPPORTED, f"This looks like an image, not a document. Send a {_SUPPORTED} file."
        )
    if claimed in ("pdf", "epub", "docx", "zip"):
        raise DocumentError(
            ErrorCode.CORRUPT, f"This file is named {extension} but is not one inside. Export it again."
        )
    if claimed is not None:
        return claimed
    if extension in _UNSUPPORTED_HINTS:
        raise DocumentError(ErrorCode.UNSUPPORTED, _UNSUPPORTED_HINTS[extension])
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in _FORMAT_BY_CONTENT_TYPE:
        return _FORMAT_BY_CONTENT_TYPE[media_type]
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return "html"
    return "txt"


def too_large(size: int, limits: DocumentLimits) -> DocumentError:
    return DocumentError(
        ErrorCode.TOO_LARGE,
        f"The file is {_megabytes(size)}, over the {_megabytes(limits.max_document_bytes)} limit. "
        "Send a smaller file or split it.",
    )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            declares_epub = (
                "mimetype" in names
                and archive.getinfo("mimetype").file_size < 100
                and _head(archive, "mimetype").strip() == b"application/epub+zip"
            )
            if declares_epub or "META-INF/container.xml" in names:
                return "epub"
            if "word/document.xml" in names:
                return "docx"
    except ZIP_ERRORS:
        pass  # a damaged archive is reported by the reader that opens it properly
    return "zip"


def _head(archive: zipfile.ZipFile, name: str, size: int = 100) -> bytes:
    # Not archive.read(): that inflates the whole member before applying the declared
    # size, and a "20-byte" mimetype can inflate to a gigabyte.
    with archive.open(name) as member:
        return member.read(size)


def _read(fmt: str, data: bytes, limits: DocumentLimits, charset: str | None) -> SectionedDocument:
    if fmt in ("txt", "md"):
        return read_plain(data, markdown=fmt == "md", declared_charset=charset)
    if fmt == "html":
        return read_html(data, charset)
    if fmt == "epub":
        return read_epub(data, limits)
    if fmt == "docx":
        return read_docx(data, limits)
    if fmt == "pdf":
        return read_pdf(data)
    raise DocumentError(ErrorCode.UNSUPPORTED, f"This kind of file is not supported. Send a {_SUPPORTED} file.")
