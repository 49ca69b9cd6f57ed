"""From a `SectionedDocument` to the final `ExtractedDocument`.

Each section is normalized on its own and the results are joined with one blank
line, so a section's title becomes a chapter whose offsets are exact without any
remapping. A titled section that normalizes to nothing (a bookmark on a blank page,
a TOC entry for an image-only cover) hands its title to the next untitled section.

Then the chapters are chosen, in this order of trust:

1. the format's real structure (EPUB table of contents, PDF bookmarks, DOCX heading
   styles, HTML/Markdown headings) when it has at least two chapters, unless the
   text's numbered headings are more than twice as many (a coarse or junk TOC);
2. numbered headings detected in the text (`chapters.detect_chapters`), at least two;
3. whatever structure there is (one chapter; PDF pages);
4. a single detected heading; else no chapters.
"""

from __future__ import annotations

from .chapters import Structure, chapters_from_starts, detect_structure
from .errors import DocumentError, ErrorCode
from .headings import heading_number
from .limits import DocumentLimits
from .model import Chapter, ExtractedDocument, SectionedDocument
from .normalize import normalize_text, without_lines

_STRONG_SOURCES = ("toc", "styles")


def assemble(document: SectionedDocument, fallback_title: str, limits: DocumentLimits) -> ExtractedDocument:
    pieces: list[str] = []
    starts: list[tuple[int, str, int | None]] = []
    length = 0
    pending: tuple[str, int | None] | None = None
    stripped: list[str] = []
    for section in document.sections:
        text = normalize_text(section.text, stripped)
        if section.title is not None:
            number = section.number if section.number is not None else heading_number(section.title)
            pending = (section.title, number)
        if not text:
            continue
        if pieces:
            pieces.append("\n\n")
            length += 2
        if pending is not None:
            starts.append((length, pending[0], pending[1]))
            pending = None
        pieces.append(text)
        length += len(text)
        if length > limits.max_chars:
            raise _too_long(limits)
    text = "".join(pieces)
    if not text:
        raise _no_text(document.format)
    structure = detect_structure(text)
    if structure.junk and len(document.sections) == 1:  # offsets of other sections would move
        stripped.extend(text[start:end] for start, end in structure.junk)
        text, structure = _without_junk(text, structure)
    chapters, source = _choose_chapters(chapters_from_starts(text, starts), structure, document.chapter_source)
    detected = source == "headings"
    return ExtractedDocument(
        title=(document.title or "").strip() or fallback_title,
        format=document.format,
        encoding=document.encoding,
        text=text,
        chapters=chapters,
        author=(document.author or "").strip() or None,
        chapter_source=source,
        stripped_lines=tuple(stripped),
        volumes=structure.volumes if detected else 0,
        toc_entries=structure.toc_entries if detected else 0,
    )


def _without_junk(text: str, structure: Structure) -> tuple[str, Structure]:
    """The text without the structure's junk lines, and the chapters moved with it.

    Done by moving offsets rather than detecting again: junk lines are never headings,
    so the same chapters start at the same heading lines. Each removed line takes its
    newline, and at most one more where blank lines around it collapse, so a heading
    lies at most one character per removed line before its shifted offset."""
    cleaned = without_lines(text, structure.junk)
    starts = []
    removed = index = 0
    for chapter in structure.chapters:
        while index < len(structure.junk) and structure.junk[index][0] < chapter.start:
            junk_start, junk_end = structure.junk[index]
            removed += junk_end + 1 - junk_start
            index += 1
        line_end = text.find("\n", chapter.start)
        line = text[chapter.start : len(text) if line_end == -1 else line_end]
        estimate = chapter.start - removed
        found = cleaned.find(line, max(0, estimate - index - 2), estimate + len(line) + 1)
        starts.append((found if found != -1 else max(0, estimate), chapter.title, chapter.number))
    return cleaned, Structure(chapters_from_starts(cleaned, starts), structure.volumes, structure.toc_entries)


def _choose_chapters(structural: list[Chapter], structure: Structure, source: str) -> tuple[list[Chapter], str]:
    detected = structure.chapters
    if source in _STRONG_SOURCES and len(structural) >= 2 and len(detected) <= 2 * len(structural):
        return structural, source
    if len(detected) >= 2:
        return detected, "headings"
    if structural:
        return structural, source
    if detected:
        return detected, "headings"
    return [], "none"


def _too_long(limits: DocumentLimits) -> DocumentError:
    return DocumentError(
        ErrorCode.TOO_LONG,
        f"The text is longer than {limits.max_chars:,} characters. Split it into parts and send them separately.",
    )


def _no_text(fmt: str) -> DocumentError:
    if fmt in ("txt", "md"):
        return DocumentError(ErrorCode.EMPTY, "The file holds only blank space. Send a file that contains text.")
    if fmt == "pdf":
        return DocumentError(
            ErrorCode.NO_TEXT,
            "This PDF has no text layer (it looks scanned). Run OCR on it, or send a text version.",
        )
    return DocumentError(ErrorCode.NO_TEXT, f"No text was found in this {fmt.upper()} file.")
