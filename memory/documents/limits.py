"""Size, expansion and time limits for reading documents and fetching links.

One frozen dataclass holds every limit so the integrator can build it from settings
once and pass it everywhere. The defaults are chosen for a bot on the official
Telegram Bot API, which lets bots download files of at most 20 MB; a self-hosted
local Bot API server lifts that limit, and then `max_document_bytes` is the only
thing standing between a huge upload and the process's memory, so raise it
deliberately rather than to "unlimited".
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """Limits applied while extracting and fetching documents.

    max_document_bytes: largest input accepted, in bytes (uploaded file or downloaded
        body). Default 20 MiB, the official Bot API's download limit; a local Bot API
        server allows bigger files, raise this along with it.
    max_expanded_bytes: the most an archive (EPUB, DOCX, ZIP) may expand to, summed over
        the sizes its central directory declares. Default 1 GiB; checked before any
        member is inflated.
    max_member_bytes: the most one archive member may expand to when it is actually
        read (the guard on real reads, in case declared sizes lie). Default 256 MiB.
    max_compression_ratio: the largest uncompressed/compressed ratio allowed for a
        member (and for the archive as a whole). Default 100; ordinary XML and text
        compress 5-20x, while zip bombs reach 1000x.
    max_chars: the longest extracted text accepted, in characters. Default 10 million
        (a very long web novel; a 2-million-character novel is about 1.3 M tokens).
    fetch_timeout_seconds: wall-clock limit for downloading a link, redirects included.
    fetch_connect_timeout_seconds: limit for opening each connection.
    max_redirects: how many redirects a link may take before it is refused.
    """

    max_document_bytes: int = 20 * MIB
    max_expanded_bytes: int = 1024 * MIB
    max_member_bytes: int = 256 * MIB
    max_compression_ratio: float = 100.0
    max_chars: int = 10_000_000
    fetch_timeout_seconds: float = 30.0
    fetch_connect_timeout_seconds: float = 10.0
    max_redirects: int = 5

    def __post_init__(self) -> None:
        for name in (
            "max_document_bytes",
            "max_expanded_bytes",
            "max_member_bytes",
            "max_compression_ratio",
            "max_chars",
            "fetch_timeout_seconds",
            "fetch_connect_timeout_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"DocumentLimits.{name} must be positive")
        if self.max_redirects < 0:
            raise ValueError("DocumentLimits.max_redirects must not be negative")


DEFAULT_LIMITS = DocumentLimits()
