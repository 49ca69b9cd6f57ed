"""Document extraction: uploaded files and fetched links to normalized text with chapters.

Entry points: `extract_bytes(data, filename, limits)`, `extract_path(path, limits)`,
`await extract_url(url, limits, resolver=..., policy=...)`. They return an
`ExtractedDocument` (title, format, encoding, text, chapters with character offsets)
or raise `DocumentError` (a machine `code` from `ErrorCode` and a short user-facing
English message). `split_passages` cuts a document into passages for full-text
indexing. Everything here is storage-agnostic: no SQLite, no Telegram.

Module map: encoding (bytes -> str), normalize (cleaning), headings + chapters
(chapter detection), numerals (Chinese/Roman/English numbers), htmltext (HTML ->
text), safezip (zip-bomb guards), formats/* (one reader per format), structure and
assemble (sections -> document), passages, addresses + fetch (safe downloads),
extract (format dispatch), limits, errors, model.
"""

from .addresses import PUBLIC_ONLY, AddressPolicy
from .chapters import detect_chapters
from .errors import DocumentError, ErrorCode
from .extract import detect_format, extract_bytes, extract_path, extract_url
from .fetch import FetchedResource, Resolver, fetch_url, system_resolver
from .limits import DEFAULT_LIMITS, DocumentLimits
from .model import Chapter, ExtractedDocument
from .numerals import parse_chinese_number
from .passages import Passage, split_passages

__all__ = [
    "DEFAULT_LIMITS",
    "PUBLIC_ONLY",
    "AddressPolicy",
    "Chapter",
    "DocumentError",
    "DocumentLimits",
    "ErrorCode",
    "ExtractedDocument",
    "FetchedResource",
    "Passage",
    "Resolver",
    "detect_chapters",
    "detect_format",
    "extract_bytes",
    "extract_path",
    "extract_url",
    "fetch_url",
    "parse_chinese_number",
    "split_passages",
    "system_resolver",
]
