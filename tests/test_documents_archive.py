import pytest

from memory.documents.errors import DocumentError, ErrorCode
from memory.documents.extract import extract_bytes
from memory.documents.formats.archive import pick_archive_member
from memory.documents.limits import DocumentLimits
from tests.fakes.documents import make_epub, make_zip

NOVEL = ("《测试》\n" + "".join(f"第{n}章 标题\n" + "　　正文很长很长。\n" * 200 for n in "一二三")).encode("gb18030")


def test_a_zipped_novel_is_read_like_the_file_inside():
    document = extract_bytes(make_zip({"测试.txt": NOVEL}), "download.zip")
    assert (document.title, document.encoding, len(document.chapters)) == ("测试", "gb18030", 3)


def test_readme_and_advertisement_files_are_ignored():
    archive = make_zip({"readme.txt": b"Visit our site!", "__MACOSX/._book.txt": b"junk", "book/novel.txt": NOVEL})
    assert pick_archive_member(archive, DocumentLimits())[0] == "book/novel.txt"


def test_a_zipped_epub():
    epub = make_epub([("Chapter 1", ["One."]), ("Chapter 2", ["Two."])])
    document = extract_bytes(make_zip({"book.epub": epub}), "book.zip")
    assert document.format == "epub"
    assert len(document.chapters) == 2


def test_several_documents_are_refused():
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_zip({"a.txt": NOVEL, "b.txt": NOVEL}), "two.zip")
    assert error.value.code is ErrorCode.UNSUPPORTED
    assert "2 documents" in error.value.message


def test_no_documents_inside():
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_zip({"cover.jpg": b"\xff\xd8\xff"}), "pics.zip")
    assert error.value.code is ErrorCode.UNSUPPORTED


def test_archives_inside_archives_are_not_opened():
    inner = make_zip({"novel.txt": NOVEL})
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_zip({"novel.txt": inner}), "nested.zip")
    assert error.value.code is ErrorCode.UNSUPPORTED


def test_zip_bomb():
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_zip({"novel.txt": b"a" * (20 * 1024 * 1024)}), "bomb.zip")
    assert error.value.code is ErrorCode.ZIP_BOMB
