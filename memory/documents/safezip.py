"""Opening ZIP-based formats (EPUB, DOCX, .zip) without falling for zip bombs.

Two guards, because a bomb can lie:

1. Before anything is inflated, the central directory's declared sizes are checked:
   the sum of uncompressed sizes against `max_expanded_bytes`, and each member's
   uncompressed/compressed ratio (and the archive's overall ratio) against
   `max_compression_ratio`. Tiny members are exempt from the ratio check (a 2 KB
   run of spaces legitimately compresses 200x and can do no harm).
2. Actual reads go through `SafeZip.read`, which streams the member and stops at
   `max_member_bytes` and at what the central directory declared. (CPython's
   zipfile itself also stops at the declared size and then fails the CRC check, so
   a member that lies about its size reads as corrupt, not as a flood.)

A whole-member `ZipFile.read()` is *not* bounded by the declared size: CPython reads
all the compressed bytes and inflates them in one call, truncating only afterwards, so
a member declaring 4 KB that inflates to 1 GB costs a gigabyte of memory before the
CRC check fails. python-docx opens the package with zipfile and reads members that
way, so the DOCX reader hands it `SafeZip.repacked()`: the same members, each read
through guard 2, stored uncompressed.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from .errors import DocumentError, ErrorCode
from .limits import DocumentLimits

# What zipfile raises on damaged archives, beyond BadZipFile: truncated streams,
# nonsense header fields, broken deflate data, and "password required".
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
    struct.error,
)
_RATIO_EXEMPT_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


class SafeZip:
    """A ZIP archive whose declared sizes passed the bomb checks."""

    def __init__(self, data: bytes, limits: DocumentLimits, what: str = "archive") -> None:
        self.limits = limits
        self.what = what
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except ZIP_ERRORS as error:
            raise DocumentError(
                ErrorCode.CORRUPT, f"This {what} file is damaged (not a valid ZIP container). Export it again."
            ) from error
        check_declared_sizes(infos, limits, what)
        self._infos = {info.filename: info for info in infos}

    def names(self) -> list[str]:
        return list(self._infos)

    def size(self, name: str) -> int:
        """The member's declared uncompressed size."""
        return self._infos[name].file_size

    def __contains__(self, name: str) -> bool:
        return name in self._infos

    def read(self, name: str) -> bytes:
        """The member's bytes, read with a hard cap; DocumentError if missing or damaged."""
        info = self._infos.get(name)
        if info is None:
            raise DocumentError(ErrorCode.CORRUPT, f"This {self.what} file is incomplete: {name} is missing.")
        if info.flag_bits & 0x1:
            raise DocumentError(
                ErrorCode.ENCRYPTED, f"This {self.what} file is password-protected. Remove the password and send it again."
            )
        cap = min(info.file_size, self.limits.max_member_bytes)
        chunks: list[bytes] = []
        total = 0
        try:
            with self._zip.open(info) as member:
                while True:
                    chunk = member.read(min(_CHUNK, cap + 1 - total))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
                    if total > cap:
                        raise _bomb(self.what)
        except DocumentError:
            raise
        except ZIP_ERRORS as error:
            raise DocumentError(
                ErrorCode.CORRUPT, f"This {self.what} file is damaged ({name} cannot be read). Export it again."
            ) from error
        return b"".join(chunks)

    def repacked(self) -> bytes:
        """The archive rebuilt from bounded reads of every member, stored uncompressed."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
            for name, info in self._infos.items():
                if info.is_dir():
                    continue
                copy.writestr(name, self.read(name))
        return out.getvalue()

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_declared_sizes(infos: list[zipfile.ZipInfo], limits: DocumentLimits, what: str) -> None:
    """Refuse an archive whose central directory promises too much expansion."""
    total_uncompressed = sum(info.file_size for info in infos)
    total_compressed = sum(info.compress_size for info in infos)
    if total_uncompressed > limits.max_expanded_bytes:
        raise _bomb(what)
    for info in infos:
        if info.file_size > limits.max_member_bytes:
            raise _bomb(what)
        if info.file_size > _RATIO_EXEMPT_BYTES and info.file_size > limits.max_compression_ratio * max(1, info.compress_size):
            raise _bomb(what)
    if total_uncompressed > _RATIO_EXEMPT_BYTES and total_uncompressed > limits.max_compression_ratio * max(1, total_compressed):
        raise _bomb(what)


def _bomb(what: str) -> DocumentError:
    return DocumentError(
        ErrorCode.ZIP_BOMB,
        f"This {what} file would expand to far more than its size (a zip bomb?), so it was not opened.",
    )
