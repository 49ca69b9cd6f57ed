import pytest

from memory.documents.errors import DocumentError, ErrorCode
from memory.documents.extract import extract_bytes
from tests.fakes.documents import make_pdf


def test_pages_are_chapters_when_nothing_better_exists():
    document = extract_bytes(make_pdf(["Hello page one.\nSecond line.", "Page two text."]), "notes.pdf")
    assert (document.format, document.title, document.chapter_source) == ("pdf", "A Test PDF", "pages")
    assert document.text == "Hello page one.\nSecond line.\n\nPage two text."
    assert [(c.title, c.number, document.chapter_text(c)) for c in document.chapters] == [
        ("Page 1", 1, "Hello page one.\nSecond line."),
        ("Page 2", 2, "Page two text."),
    ]


def test_bookmarks_are_chapters():
    pages = ["Title page", "It begins.", "It goes on.", "It ends."]
    document = extract_bytes(make_pdf(pages, bookmarks={1: "Beginning", 3: "End"}), "book.pdf")
    assert document.chapter_source == "toc"
    assert [(c.title, document.chapter_text(c)) for c in document.chapters] == [
        ("Beginning", "It begins.\n\nIt goes on."),
        ("End", "It ends."),
    ]
    assert document.text.startswith("Title page")


def test_headings_in_the_text_beat_pages():
    pages = ["Chapter 1\nThe start.", "More of it.", "Chapter 2\nThe end."]
    document = extract_bytes(make_pdf(pages), "book.pdf")
    assert document.chapter_source == "headings"
    assert [c.title for c in document.chapters] == ["Chapter 1", "Chapter 2"]


def test_encrypted_pdf():
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_pdf(["secret"], user_password="pw"), "secret.pdf")
    assert error.value.code is ErrorCode.ENCRYPTED
    assert "password" in error.value.message


def test_scanned_pdf_has_no_text():
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_pdf(["", ""], blank=True), "scan.pdf")
    assert error.value.code is ErrorCode.NO_TEXT
    assert "scanned" in error.value.message


def test_truncated_pdf_is_corrupt():
    data = make_pdf(["Some text."])
    with pytest.raises(DocumentError) as error:
        extract_bytes(data[:200], "broken.pdf")
    assert error.value.code is ErrorCode.CORRUPT


def test_not_a_pdf_at_all():
    with pytest.raises(DocumentError) as error:
        extract_bytes(b"hello, I am text", "fake.pdf")
    assert error.value.code is ErrorCode.CORRUPT
