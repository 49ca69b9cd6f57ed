"""Reading CHARX files (Character Card V3): a zip with `card.json` at its root and assets.

Uploads are untrusted, so nothing is extracted to disk and every read is bounded: the
number of members, the size of `card.json` and of an asset, and (for large members) the
compression ratio, read with a hard cap in case the zip headers lie. Encrypted members
are refused.
"""

from __future__ import annotations

import io
import zipfile

from personas.errors import PersonaError

ZIP_SIGNATURE = b"PK\x03\x04"
MAX_CHARX_MEMBERS = 10_000
MAX_CARD_JSON_BYTES = 4 * 1024 * 1024
MAX_ASSET_BYTES = 20 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
_RATIO_CHECK_FROM_BYTES = 1024 * 1024


def is_zip(data: bytes) -> bool:
    return data.startswith(ZIP_SIGNATURE)


def open_charx(data: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise PersonaError("not a valid .charx file (it should be a zip archive)") from None
    if len(archive.infolist()) > MAX_CHARX_MEMBERS:
        raise PersonaError(f"the .charx file has over {MAX_CHARX_MEMBERS} files in it")
    return archive


def read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes | None:
    """The bytes of one member, or None if there is no such member. Raises PersonaError."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.flag_bits & 0x1:
        raise PersonaError(f"'{name}' in the .charx file is encrypted; export it without a password")
    if info.file_size > limit:
        raise PersonaError(f"'{name}' in the .charx file is over {limit // (1024 * 1024)} MB")
    if info.file_size > _RATIO_CHECK_FROM_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        raise PersonaError(f"'{name}' in the .charx file is compressed suspiciously well (a zip bomb?)")
    try:
        with archive.open(info) as member:
            content = member.read(limit + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError):
        raise PersonaError(f"'{name}' in the .charx file is damaged or uses an unsupported compression") from None
    if len(content) > limit:
        raise PersonaError(f"'{name}' in the .charx file is over {limit // (1024 * 1024)} MB")
    return content
