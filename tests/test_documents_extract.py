import codecs
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest

from memory.documents.errors import DocumentError, ErrorCode
from memory.documents.extract import detect_format, extract_bytes, extract_path
from memory.documents.limits import DocumentLimits
from tests.fakes.documents import make_docx, make_epub, make_pdf, make_zip, shared_data_file

NOVEL = "《测试小说》\n\n第一章 开始\n\n　　他说：“走吧。”\n\n第二章 结束\n\n　　他们走了。\n"
TRADITIONAL_NOVEL = "《測試小說》\n\n第一章 開始\n\n　　他說：「我們走吧，這個地方不好。」\n\n第二章 結束\n\n　　他們走了，再也沒有回來。\n" * 3


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (NOVEL.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + NOVEL.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF16_LE + NOVEL.encode("utf-16-le"), "utf-16-le"),
        (NOVEL.encode("utf-16-le"), "utf-16-le"),
        (NOVEL.encode("utf-16-be"), "utf-16-be"),
        (NOVEL.encode("gb18030"), "gb18030"),
        (NOVEL.replace("\n", "\r\n").encode("gb18030"), "gb18030"),
        (NOVEL.replace("\n", "\r").encode("utf-8"), "utf-8"),
    ],
)
def test_text_in_any_encoding_gives_the_same_document(data, encoding):
    document = extract_bytes(data, "novel.txt")
    assert (document.format, document.encoding, document.title) == ("txt", encoding, "测试小说")
    assert document.text == NOVEL.strip().replace("\n\n\n", "\n\n")
    assert [c.title for c in document.chapters] == ["第一章 开始", "第二章 结束"]


def test_big5_novel():
    document = extract_bytes(TRADITIONAL_NOVEL.encode("big5"), "小說.txt")
    assert document.encoding in ("cp950", "big5hkscs")
    assert document.title == "測試小說"
    assert document.chapters[0].title == "第一章 開始"


def test_messy_web_novel_upload():
    text = (
        "本书由某某论坛整理\r\n更多精彩请访问 www.example.com\r\n\r\n《乱世》\r\n\r\n目录\r\n"
        + "".join(f"第{n}章 标题{n}\r\n" for n in "一二三")
        + "\r\n\r\n\r\n"
        + "".join(
            f"【第{n}章】标题{n}\r\n　　正文第{n}章。他说“第三回里写的……”好看。\r\n手机阅读请访问 m.example.com\r\n\r\n\r\n"
            for n in "一二三"
        )
    ).encode("gb18030")
    document = extract_bytes(text, "download.txt")
    assert document.title == "乱世"
    assert [c.title for c in document.chapters] == ["第一章 标题一", "第二章 标题二", "第三章 标题三"]
    assert "www.example.com" not in document.text and "手机阅读" not in document.text
    assert "\r" not in document.text and "\n\n\n" not in document.text
    assert document.text.startswith("《乱世》\n\n目录\n第一章 标题一")
    assert document.chapter_text(document.chapters[2]) == "【第三章】标题三\n　　正文第三章。他说“第三回里写的……”好看。"


def test_title_falls_back_to_the_file_name():
    assert extract_bytes(b"Some notes.", "my notes.txt").title == "my notes"


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "fmt"),
    [
        (b"%PDF-1.7 ...", "x.pdf", None, "pdf"),
        (b"%PDF-1.7 ...", "x.bin", None, "pdf"),
        (b"%PDF-1.7 ...", "x.txt", None, "pdf"),
        (b"plain", "x.txt", None, "txt"),
        (b"# md", "x.MD", None, "md"),
        (b"<html><body>x</body></html>", "x.htm", None, "html"),
        (b"\xef\xbb\xbf<!DOCTYPE html><html>", "page", None, "html"),
        (b"anything", "download", "text/html; charset=utf-8", "html"),
        (b"anything", "download", "application/pdf", "pdf"),
        (b"plain text", "no-extension", None, "txt"),
    ],
)
def test_detect_format(data, filename, content_type, fmt):
    assert detect_format(data, filename, content_type) == fmt


def test_detect_zip_kinds_by_content():
    epub = make_epub([("Chapter 1", ["x"])])
    assert detect_format(epub, "book.zip") == "epub"
    assert detect_format(make_docx([("A", ["x"])]), "download") == "docx"
    assert detect_format(make_zip({"a.txt": b"x"}), "download") == "zip"
    assert detect_format(epub, "book.epub") == "epub"


@pytest.mark.parametrize(
    ("data", "filename", "code"),
    [
        (b"\x89PNG\r\n\x1a\n....", "photo.png", ErrorCode.UNSUPPORTED),
        (b"\xff\xd8\xff\xe0....", "scan.jpg", ErrorCode.UNSUPPORTED),
        (bytes(range(256)) * 4, "damaged.png", ErrorCode.UNSUPPORTED),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old.doc", ErrorCode.UNSUPPORTED),
        (b"whatever", "book.mobi", ErrorCode.UNSUPPORTED),
        (b"whatever", "book.rar", ErrorCode.UNSUPPORTED),
        (b"not a pdf", "book.pdf", ErrorCode.CORRUPT),
        (b"not an epub", "book.epub", ErrorCode.CORRUPT),
        (b"not a docx", "book.docx", ErrorCode.CORRUPT),
    ],
)
def test_unsupported_and_mislabelled_files(data, filename, code):
    with pytest.raises(DocumentError) as error:
        extract_bytes(data, filename)
    assert error.value.code is code
    assert error.value.message


def test_size_limit_is_checked_first():
    with pytest.raises(DocumentError) as error:
        extract_bytes(b"x" * 2000, "big.txt", DocumentLimits(max_document_bytes=1000))
    assert error.value.code is ErrorCode.TOO_LARGE
    assert "limit" in error.value.message


def test_extract_path_checks_the_size_before_reading(tmp_path):
    path = tmp_path / "big.txt"
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: no 50 MB is written or read
    with pytest.raises(DocumentError) as error:
        extract_path(path)
    assert error.value.code is ErrorCode.TOO_LARGE


def test_extract_path_reads_files(tmp_path):
    path = tmp_path / "novel.txt"
    path.write_bytes(NOVEL.encode("gb18030"))
    assert len(extract_path(path).chapters) == 2


def test_empty_and_whitespace_files():
    for data in (b"", b"  \r\n\t "):
        with pytest.raises(DocumentError) as error:
            extract_bytes(data, "empty.txt")
        assert error.value.code is ErrorCode.EMPTY


def test_every_format_round_trip():
    chapters = [("Chapter 1", ["One."]), ("Chapter 2", ["Two."])]
    for data, name in (
        (make_epub(chapters), "b.epub"),
        (make_docx(chapters), "b.docx"),
        (make_pdf(["Chapter 1\nOne.", "Chapter 2\nTwo."]), "b.pdf"),
        (b"<h2>Chapter 1</h2><p>One.</p><h2>Chapter 2</h2><p>Two.</p>", "b.html"),
        (b"Chapter 1\n\nOne.\n\nChapter 2\n\nTwo.", "b.txt"),
        (b"## Chapter 1\n\nOne.\n\n## Chapter 2\n\nTwo.", "b.md"),
    ):
        document = extract_bytes(data, name)
        assert [c.number for c in document.chapters] == [1, 2], name
        assert "One." in document.chapter_text(document.chapters[0]), name
        assert document.chapter_text(document.chapters[1]).endswith("Two."), name


def test_shared_novels_end_to_end():
    journey = extract_path(shared_data_file("xiyouji.utf8.txt"))
    assert (journey.title, journey.format, journey.encoding, len(journey.chapters)) == ("西游记", "txt", "utf-8", 100)
    pride = extract_path(shared_data_file("pride_and_prejudice.txt"))
    assert (pride.title, pride.author, len(pride.chapters)) == ("Pride and Prejudice", "Jane Austen", 61)
    assert "PROJECT GUTENBERG" not in pride.text.upper()
    assert not pride.text.startswith("\ufeff")


@cache
def sample_files() -> dict[str, bytes]:
    chapters = [(f"Chapter {n}", ["Text here.", "More text."]) for n in range(1, 4)]
    return {
        "a.epub": make_epub(chapters),
        "b.epub": make_epub(chapters, version=2, chapters_per_file=2),
        "a.docx": make_docx(chapters, table=[["a", "b"]]),
        "a.pdf": make_pdf(["Chapter 1\nText", "Chapter 2\nMore"], bookmarks={0: "One", 1: "Two"}),
        "a.zip": make_zip({"novel.txt": "第一章\n内容\n".encode("gb18030") * 50}),
        "a.html": "<html><head><meta charset=gbk></head><body><h1>第一章</h1><p>你好</p></body></html>".encode("gbk"),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["a.epub", "b.epub", "a.docx", "a.pdf", "a.zip", "a.html"]),
    keep=st.floats(min_value=0.0, max_value=1.0),
    flips=st.lists(st.tuples(st.floats(min_value=0.0, max_value=0.9999), st.integers(0, 255)), max_size=12),
)
def test_damaged_files_give_a_document_or_a_document_error(name, keep, flips):
    data = bytearray(sample_files()[name])
    for where, value in flips:
        data[int(where * len(data))] = value
    if keep < 0.3:
        data = data[: int(keep / 0.3 * len(data))]
    try:
        extract_bytes(bytes(data), name)
    except DocumentError as error:
        assert error.message and error.code in ErrorCode


@settings(max_examples=100, deadline=None)
@given(
    prefix=st.sampled_from([b"", b"PK\x03\x04", b"%PDF-1.4\n", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"<html>", b"\xff\xfe"]),
    body=st.binary(max_size=300),
    name=st.sampled_from(["a.txt", "a.md", "a.html", "a.epub", "a.docx", "a.pdf", "a.zip", "unknown"]),
)
def test_arbitrary_bytes_give_a_document_or_a_document_error(prefix, body, name):
    try:
        extract_bytes(prefix + body, name)
    except DocumentError as error:
        assert error.message and error.code in ErrorCode


def test_sniffing_a_zip_never_inflates_a_lying_mimetype_member_whole():
    # "mimetype" declares 20 bytes and inflates to 1.1 GB; telling EPUB from ZIP reads
    # only its first bytes.
    import tracemalloc

    from tests.fakes.bad_inputs import mimetype_bomb

    bomb = mimetype_bomb()
    tracemalloc.start()
    try:
        for name in ("book.zip", "book"):
            with pytest.raises(DocumentError):
                extract_bytes(bomb, name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
