"""A .zip that wraps one document (novel sites often serve "book.txt" zipped).

The document to read is the one supported member if there is one, or the largest
supported member when it makes up at least 90% of the supported bytes (the rest
being "readme" and advertisement files). Several comparable documents are refused:
the user should send them one at a time. Nested archives are not opened.
"""

from __future__ import annotations

import posixpath

from ..errors import DocumentError, ErrorCode
from ..limits import DocumentLimits
from ..safezip import SafeZip

INNER_EXTENSIONS = (".txt", ".text", ".md", ".markdown", ".epub", ".pdf", ".docx", ".html", ".htm", ".xhtml")


def pick_archive_member(data: bytes, limits: DocumentLimits) -> tuple[str, bytes]:
    """(member name, member bytes) of the document inside a .zip."""
    with SafeZip(data, limits, "ZIP") as archive:
        candidates = [
            (name, archive.size(name))
            for name in archive.names()
            if not name.endswith("/")
            and not posixpath.basename(name).startswith((".", "__MACOSX"))
            and not name.startswith("__MACOSX/")
            and name.lower().endswith(INNER_EXTENSIONS)
        ]
        if not candidates:
            raise DocumentError(
                ErrorCode.UNSUPPORTED,
                "This ZIP holds no document I can read (txt, md, epub, pdf, docx, html).",
            )
        name, size = max(candidates, key=lambda candidate: candidate[1])
        if size < 0.9 * sum(candidate_size for _, candidate_size in candidates):
            raise DocumentError(
                ErrorCode.UNSUPPORTED,
                f"This ZIP holds {len(candidates)} documents. Send them one at a time.",
            )
        return name, archive.read(name)
