import pytest

from memory.documents.errors import DocumentError, ErrorCode
from memory.documents.extract import extract_bytes
from memory.documents.limits import DocumentLimits
from memory.documents.formats.epub import read_epub
from tests.fakes.documents import make_epub, make_zip

CHAPTERS = [(f"Chapter {n}", [f"Paragraph {p} of chapter {n}." for p in range(1, 4)]) for n in range(1, 6)]
CHINESE = [(f"第{n}章 标题", [f"　　第{n}章的正文。"]) for n in "一二三"]


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("chapters_per_file", [1, 2])
def test_chapters_come_from_the_table_of_contents(version, chapters_per_file):
    document = extract_bytes(
        make_epub(CHAPTERS, version=version, chapters_per_file=chapters_per_file, front_matter=["Copyright notice."]),
        "book.epub",
    )
    assert (document.format, document.title, document.author) == ("epub", "A Test Book", "Test Author")
    assert document.chapter_source == "toc"
    assert [c.title for c in document.chapters] == [f"Chapter {n}" for n in range(1, 6)]
    assert document.text.startswith("Copyright notice.\n\nChapter 1")
    for chapter in document.chapters:
        number = chapter.title.split()[-1]
        assert document.chapter_text(chapter) == (
            f"Chapter {number}\n\n"
            + "\n\n".join(f"Paragraph {p} of chapter {number}." for p in range(1, 4))
        )


def test_the_navigation_document_is_not_text():
    document = extract_bytes(make_epub(CHAPTERS, version=3, nav_in_spine=True), "book.epub")
    assert "Contents" not in document.text
    assert "Start" not in document.text


def test_chinese_epub():
    document = extract_bytes(make_epub(CHINESE, title="测试书", author="作者"), "书.epub")
    assert document.title == "测试书"
    assert [(c.title, c.number) for c in document.chapters] == [("第一章 标题", 1), ("第二章 标题", 2), ("第三章 标题", 3)]


def test_without_a_toc_the_headings_name_the_files():
    document = read_epub(make_epub(CHAPTERS, version=3, with_toc=False), DocumentLimits())
    assert document.chapter_source == "styles"
    assert [s.title for s in document.sections] == [f"Chapter {n}" for n in range(1, 6)]


def test_drm_encrypted_content_is_refused():
    encryption = (
        b'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        b'<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        b'<enc:CipherData><enc:CipherReference URI="OEBPS/text/part0001.xhtml"/></enc:CipherData>'
        b"</enc:EncryptedData></encryption>"
    )
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_epub(CHAPTERS, extra_files={"META-INF/encryption.xml": encryption}), "book.epub")
    assert error.value.code is ErrorCode.ENCRYPTED


def test_obfuscated_fonts_are_not_drm():
    encryption = (
        b'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        b'<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
        b'<enc:CipherData><enc:CipherReference URI="OEBPS/fonts/a.otf"/></enc:CipherData>'
        b"</enc:EncryptedData></encryption>"
    )
    document = extract_bytes(make_epub(CHAPTERS, extra_files={"META-INF/encryption.xml": encryption}), "book.epub")
    assert len(document.chapters) == 5


def test_missing_container_is_corrupt():
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_zip({"mimetype": b"application/epub+zip", "OEBPS/a.xhtml": b"<p>x</p>"}), "book.epub")
    assert error.value.code is ErrorCode.CORRUPT


def test_broken_package_document_is_corrupt():
    archive = make_zip(
        {
            "mimetype": b"application/epub+zip",
            "META-INF/container.xml": b'<container><rootfiles><rootfile full-path="content.opf"/></rootfiles></container>',
            "content.opf": b"<package><manifest>",
        }
    )
    with pytest.raises(DocumentError) as error:
        extract_bytes(archive, "book.epub")
    assert error.value.code is ErrorCode.CORRUPT


def test_image_only_epub_has_no_text():
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_epub([("", [])], with_toc=False), "book.epub")
    assert error.value.code is ErrorCode.NO_TEXT


def test_epub_zip_bomb_is_refused():
    bomb = make_epub(CHAPTERS, extra_files={"OEBPS/images/huge.bmp": b"\0" * (20 * 1024 * 1024)})
    with pytest.raises(DocumentError) as error:
        extract_bytes(bomb, "book.epub")
    assert error.value.code is ErrorCode.ZIP_BOMB
