"""EPUB 2 and 3, read with zipfile and the HTML-to-text converter (no ebooklib: AGPL).

The path through the package is the standard one: ``META-INF/container.xml`` names
the OPF package document; its manifest maps ids to files, its spine gives the
reading order, its metadata the title and author. Chapter titles come from the table
of contents: the EPUB 3 navigation document (``<nav epub:type="toc">``) or else the
EPUB 2 NCX. TOC entries point at files and often at anchors inside them (several
chapters per file is common), so each spine file is converted to text with anchor
offsets and cut at the entries that point into it. The navigation document itself
is never part of the text. Without a usable TOC each spine file is a section titled
by its first heading.

XML is parsed with lxml with entity resolution and network access off. DRM: if
``META-INF/encryption.xml`` lists content documents (font obfuscation aside), the
book is refused as encrypted.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import unquote, urldefrag

from lxml import etree

from ..encoding import decode_text, sniff_declared_charset
from ..errors import DocumentError, ErrorCode
from ..htmltext import html_to_text
from ..limits import DocumentLimits
from ..model import Section, SectionedDocument
from ..safezip import SafeZip
from ..structure import choose_heading_level, cut_sections

_HTML_TYPES = ("application/xhtml+xml", "text/html", "application/xml", "text/x-oeb1-document")
_FONT_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True)


@dataclass(slots=True)
class _ManifestItem:
    path: str
    media_type: str
    properties: str


def read_epub(data: bytes, limits: DocumentLimits) -> SectionedDocument:
    with SafeZip(data, limits, "EPUB") as archive:
        opf_path = _package_path(archive)
        opf = _parse_xml(archive.read(opf_path), "the package document")
        base = posixpath.dirname(opf_path)
        manifest = _manifest(opf, base)
        spine, ncx_id = _spine(opf)
        _refuse_drm(archive, manifest)
        nav_path = next((item.path for item in manifest.values() if "nav" in item.properties.split()), None)
        toc = _read_toc(archive, manifest, nav_path, ncx_id)
        sections, used_toc = _spine_sections(archive, manifest, spine, nav_path, toc)
    title, author = _metadata(opf)
    source = "toc" if used_toc else "styles"
    return SectionedDocument("epub", sections, title, author, None, source)


def _package_path(archive: SafeZip) -> str:
    if "META-INF/container.xml" not in archive:
        raise DocumentError(ErrorCode.CORRUPT, "This EPUB file is damaged: META-INF/container.xml is missing.")
    container = _parse_xml(archive.read("META-INF/container.xml"), "container.xml")
    for element in container.iter():
        if _local(element) == "rootfile" and element.get("full-path"):
            media_type = element.get("media-type", "application/oebps-package+xml")
            if media_type == "application/oebps-package+xml":
                return unquote(element.get("full-path", ""))
    raise DocumentError(ErrorCode.CORRUPT, "This EPUB file is damaged: container.xml names no package document.")


def _manifest(opf: etree._Element, base: str) -> dict[str, _ManifestItem]:
    manifest = {}
    for element in opf.iter():
        if _local(element) == "item" and element.get("id") and element.get("href"):
            manifest[element.get("id", "")] = _ManifestItem(
                _join(base, element.get("href", "")),
                (element.get("media-type") or "").strip().lower(),
                element.get("properties") or "",
            )
    return manifest


def _spine(opf: etree._Element) -> tuple[list[str], str | None]:
    for element in opf.iter():
        if _local(element) == "spine":
            idrefs = [item.get("idref", "") for item in element if _local(item) == "itemref"]
            return idrefs, element.get("toc")
    raise DocumentError(ErrorCode.CORRUPT, "This EPUB file is damaged: its package document has no spine.")


def _metadata(opf: etree._Element) -> tuple[str | None, str | None]:
    title = author = None
    for element in opf.iter():
        name = _local(element)
        text = " ".join("".join(element.itertext()).split()) if name in ("title", "creator") else ""
        if name == "title" and title is None and text:
            title = text
        elif name == "creator" and author is None and text:
            author = text
    return title, author


def _refuse_drm(archive: SafeZip, manifest: dict[str, _ManifestItem]) -> None:
    if "META-INF/encryption.xml" not in archive:
        return
    encryption = _parse_xml(archive.read("META-INF/encryption.xml"), "encryption.xml")
    documents = {item.path for item in manifest.values() if item.media_type in _HTML_TYPES}
    for data in encryption.iter():
        if _local(data) != "EncryptedData":
            continue
        algorithm = next((el.get("Algorithm", "") for el in data.iter() if _local(el) == "EncryptionMethod"), "")
        uri = next((el.get("URI", "") for el in data.iter() if _local(el) == "CipherReference"), "")
        if algorithm not in _FONT_OBFUSCATION and unquote(uri) in documents:
            raise DocumentError(
                ErrorCode.ENCRYPTED,
                "This EPUB is DRM-protected, so its text cannot be read. Send a DRM-free copy.",
            )


def _read_toc(
    archive: SafeZip, manifest: dict[str, _ManifestItem], nav_path: str | None, ncx_id: str | None
) -> list[tuple[str, str, str]]:
    """(title, file path, fragment) for every TOC entry, in TOC order."""
    if nav_path and nav_path in archive:
        entries = _nav_entries(archive.read(nav_path), posixpath.dirname(nav_path))
        if entries:
            return entries
    ncx = manifest.get(ncx_id or "") or next(
        (item for item in manifest.values() if item.media_type == "application/x-dtbncx+xml"), None
    )
    if ncx is not None and ncx.path in archive:
        return _ncx_entries(archive.read(ncx.path), posixpath.dirname(ncx.path))
    return []


def _nav_entries(data: bytes, base: str) -> list[tuple[str, str, str]]:
    document = _parse_xml(data, "the navigation document")
    entries = []
    for nav in document.iter():
        if _local(nav) != "nav":
            continue
        kind = next((value for name, value in nav.attrib.items() if etree.QName(name).localname == "type"), "")
        if "toc" not in kind.split():
            continue
        for link in nav.iter():
            if _local(link) == "a" and link.get("href"):
                title = " ".join("".join(link.itertext()).split())
                path, fragment = urldefrag(link.get("href", ""))
                entries.append((title, _join(base, path), unquote(fragment)))
        break
    return entries


def _ncx_entries(data: bytes, base: str) -> list[tuple[str, str, str]]:
    document = _parse_xml(data, "the NCX table of contents")
    entries = []
    for point in document.iter():  # iter() is depth-first document order, iterative
        if _local(point) != "navPoint":
            continue
        label = content = None
        for child in point:
            if _local(child) == "navLabel":
                label = " ".join("".join(child.itertext()).split())
            elif _local(child) == "content":
                content = child.get("src")
        if content:
            path, fragment = urldefrag(content)
            entries.append((label or "", _join(base, path), unquote(fragment)))
    return entries


def _spine_sections(
    archive: SafeZip,
    manifest: dict[str, _ManifestItem],
    spine: list[str],
    nav_path: str | None,
    toc: list[tuple[str, str, str]],
) -> tuple[list[Section], bool]:
    spine_items = [
        manifest[idref]
        for idref in spine
        if idref in manifest and manifest[idref].media_type in _HTML_TYPES and manifest[idref].path != nav_path
    ]
    spine_paths = {item.path for item in spine_items}
    toc = [entry for entry in toc if entry[1] in spine_paths]
    sections: list[Section] = []
    for item in spine_items:
        if item.path not in archive:
            continue
        raw = archive.read(item.path)
        converted = html_to_text(decode_text(raw, sniff_declared_charset(raw)).text)
        if toc:
            cuts = [
                (converted.anchors.get(fragment, 0) if fragment else 0, title or "")
                for title, path, fragment in toc
                if path == item.path
            ]
            sections.extend(cut_sections(converted.text, cuts))
        else:
            level = choose_heading_level(heading.level for heading in converted.headings if heading.level <= 3)
            heading = next((h for h in converted.headings if h.level == level), None)
            # Not <title>: many books repeat the book's title in every file's <title>.
            sections.append(Section(heading.text if heading else None, converted.text))
    return sections, bool(toc)


def _parse_xml(data: bytes, what: str) -> etree._Element:
    try:
        root = etree.fromstring(data, _XML_PARSER)
    except (etree.XMLSyntaxError, ValueError) as error:
        raise DocumentError(ErrorCode.CORRUPT, f"This EPUB file is damaged ({what} is not valid XML).") from error
    if root is None:
        raise DocumentError(ErrorCode.CORRUPT, f"This EPUB file is damaged ({what} is empty).")
    return root


def _local(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""  # comments and processing instructions
    return tag.rsplit("}", 1)[-1]


def _join(base: str, href: str) -> str:
    return posixpath.normpath(posixpath.join(base, unquote(href))).lstrip("/")
