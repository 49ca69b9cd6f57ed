import pytest

from memory.documents.errors import DocumentError, ErrorCode
from memory.documents.formats.plain import read_plain


def test_plain_text_is_one_untitled_section_with_its_encoding():
    document = read_plain("第一章 开始\n正文".encode("gb18030"))
    assert document.format == "txt"
    assert document.encoding == "gb18030"
    assert [(s.title, s.text) for s in document.sections] == [(None, "第一章 开始\n正文")]


@pytest.mark.parametrize(
    ("first_line", "title"),
    [("《西游记》", "西游记"), ("\u3000\u3000《红楼梦》\r", "红楼梦"), ("书名：三国演义", "三国演义"), ("Just text", None)],
)
def test_title_from_the_first_line(first_line, title):
    assert read_plain(f"\n\n{first_line}\n\n第一回\n正文".encode()).title == title


def test_gutenberg_header_gives_title_and_author():
    data = (
        "Title: A Tale\nAuthor: Some Author\n*** START OF THE PROJECT GUTENBERG EBOOK A TALE ***\n"
        "Chapter 1\nText.\n*** END OF THE PROJECT GUTENBERG EBOOK A TALE ***\nLicence."
    ).encode()
    document = read_plain(data)
    assert (document.title, document.author) == ("A Tale", "Some Author")
    assert "Licence" not in document.sections[0].text and "START OF" not in document.sections[0].text


def test_markdown_headings_become_sections_outside_code_fences():
    data = b"# Book\n\nIntro.\n\n## One\n\nText.\n\n```\n## not a heading\n```\n\n## Two\n\nMore."
    document = read_plain(data, markdown=True)
    assert document.format == "md" and document.chapter_source == "styles"
    assert [s.title for s in document.sections] == [None, "One", "Two"]
    assert "## not a heading" in document.sections[1].text


def test_markdown_without_headings_is_plain():
    document = read_plain(b"Just a note.", markdown=True)
    assert [s.title for s in document.sections] == [None]
    assert document.chapter_source == "none"


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  "])
def test_empty_files_are_refused(data):
    with pytest.raises(DocumentError) as error:
        read_plain(data)
    assert error.value.code is ErrorCode.EMPTY


def test_binary_files_are_refused():
    with pytest.raises(DocumentError) as error:
        read_plain(bytes(range(32)) * 200)
    assert error.value.code is ErrorCode.UNSUPPORTED
