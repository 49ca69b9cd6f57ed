import zipfile

import pytest

from memory.documents.errors import DocumentError, ErrorCode
from memory.documents.limits import DocumentLimits
from memory.documents.safezip import SafeZip
from tests.fakes.documents import make_zip, patch_declared_size

LIMITS = DocumentLimits()


def test_reads_ordinary_members():
    archive = make_zip({"a.txt": b"hello", "dir/b.xml": b"<x/>" * 100})
    with SafeZip(archive, LIMITS) as safe:
        assert set(safe.names()) == {"a.txt", "dir/b.xml"}
        assert "a.txt" in safe and "missing" not in safe
        assert safe.read("a.txt") == b"hello"
        assert safe.size("dir/b.xml") == 400


def test_not_a_zip_is_corrupt():
    with pytest.raises(DocumentError) as error:
        SafeZip(b"definitely not a zip file", LIMITS, "EPUB")
    assert error.value.code is ErrorCode.CORRUPT
    assert "EPUB" in error.value.message


def test_missing_member_is_corrupt():
    with SafeZip(make_zip({"a.txt": b"x"}), LIMITS) as safe, pytest.raises(DocumentError) as error:
        safe.read("b.txt")
    assert error.value.code is ErrorCode.CORRUPT


def test_declared_huge_member_is_refused_before_reading():
    # 2 GB declared in the central directory; the real data is 10 bytes.
    archive = patch_declared_size(make_zip({"book.txt": b"0123456789"}), "book.txt", 0x7FFFFFFF)
    with pytest.raises(DocumentError) as error:
        SafeZip(archive, LIMITS)
    assert error.value.code is ErrorCode.ZIP_BOMB


def test_total_declared_expansion_is_limited():
    members = {f"part{i}.txt": b"x" * 1000 for i in range(5)}
    limits = DocumentLimits(max_expanded_bytes=4000)
    with pytest.raises(DocumentError) as error:
        SafeZip(make_zip(members, compression=zipfile.ZIP_STORED), limits)
    assert error.value.code is ErrorCode.ZIP_BOMB


def test_highly_compressible_member_is_refused_by_ratio():
    archive = make_zip({"zeros.txt": b"\0" * (20 * 1024 * 1024)})  # ~20 KB compressed, ratio ~1000
    assert len(archive) < 100 * 1024
    with pytest.raises(DocumentError) as error:
        SafeZip(archive, LIMITS)
    assert error.value.code is ErrorCode.ZIP_BOMB
    assert "zip bomb" in error.value.message


def test_small_members_may_compress_well():
    SafeZip(make_zip({"spaces.xml": b" " * 500_000}), LIMITS).close()


def test_a_member_lying_about_its_size_is_not_inflated_past_the_lie():
    # Declares 1000 bytes, actually inflates to 5 MB: reading stops at the declared
    # size and the CRC check then fails.
    archive = patch_declared_size(make_zip({"book.txt": b"a" * 5_000_000}), "book.txt", 1000)
    with SafeZip(archive, LIMITS) as safe, pytest.raises(DocumentError) as error:
        safe.read("book.txt")
    assert error.value.code is ErrorCode.CORRUPT


def test_actual_reads_stop_at_the_member_limit():
    limits = DocumentLimits(max_member_bytes=10_000)
    archive = patch_declared_size(make_zip({"book.txt": b"a" * 50_000}), "book.txt", 9_000)
    with SafeZip(archive, limits) as safe, pytest.raises(DocumentError):
        safe.read("book.txt")


def test_declared_member_over_the_member_limit():
    limits = DocumentLimits(max_member_bytes=10_000)
    with pytest.raises(DocumentError) as error:
        SafeZip(make_zip({"book.txt": b"a" * 20_000}, compression=zipfile.ZIP_STORED), limits)
    assert error.value.code is ErrorCode.ZIP_BOMB


def test_encrypted_member_is_reported_as_encrypted():
    archive = bytearray(make_zip({"secret.txt": b"hidden"}))
    # Set the "encrypted" general-purpose flag in the local header and central directory.
    archive[6] |= 0x1
    central = archive.find(b"PK\x01\x02")
    archive[central + 8] |= 0x1
    with SafeZip(bytes(archive), LIMITS) as safe, pytest.raises(DocumentError) as error:
        safe.read("secret.txt")
    assert error.value.code is ErrorCode.ENCRYPTED
