import pytest

from memory.documents.assemble import assemble
from memory.documents.errors import DocumentError, ErrorCode
from memory.documents.limits import DocumentLimits
from memory.documents.model import Section, SectionedDocument

LIMITS = DocumentLimits()


def build(sections, source="toc", fmt="epub", **kwargs):
    return assemble(SectionedDocument(fmt, sections, chapter_source=source, **kwargs), "fallback", LIMITS)


def test_sections_are_normalized_and_joined_with_exact_offsets():
    document = build(
        [Section(None, "Front\r\n\r\n\r\n"), Section("One", "One\r\ntext  "), Section(None, "more"), Section("Two", "Two")]
    )
    assert document.text == "Front\n\nOne\ntext\n\nmore\n\nTwo"
    assert [(c.title, document.chapter_text(c)) for c in document.chapters] == [("One", "One\ntext\n\nmore"), ("Two", "Two")]


def test_an_empty_titled_section_hands_its_title_on():
    document = build([Section("Cover", "  "), Section(None, "Body"), Section("Next", "Next text")])
    assert [(c.title, document.chapter_text(c)) for c in document.chapters] == [("Cover", "Body"), ("Next", "Next text")]


def test_numbers_are_read_from_structural_titles():
    document = build([Section("第一章 甲", "甲"), Section("第二章 乙", "乙")])
    assert [c.number for c in document.chapters] == [1, 2]


def test_strong_structure_wins_unless_the_text_has_far_more_headings():
    two = [Section("Part A", "x"), Section("Part B", "y")]
    assert build(two).chapter_source == "toc"
    many = "\n\n".join(f"Chapter {n}\n\ntext" for n in range(1, 8))
    coarse = [Section("Start", many), Section("End", "the end")]
    document = build(coarse)
    assert document.chapter_source == "headings"
    assert len(document.chapters) == 7


def test_pages_give_way_to_headings():
    pages = [Section("Page 1", "Chapter 1\nfoo", 1), Section("Page 2", "bar", 2), Section("Page 3", "Chapter 2\nbaz", 3)]
    document = build(pages, source="pages", fmt="pdf")
    assert (document.chapter_source, [c.title for c in document.chapters]) == ("headings", ["Chapter 1", "Chapter 2"])


def test_title_author_and_fallback_title():
    document = build([Section(None, "x")], title="  ", author=" A ")
    assert (document.title, document.author) == ("fallback", "A")


def test_no_text_and_too_long():
    with pytest.raises(DocumentError) as error:
        build([Section("Cover", " \n ")])
    assert error.value.code is ErrorCode.NO_TEXT
    with pytest.raises(DocumentError) as error:
        build([Section(None, "")], fmt="txt")
    assert error.value.code is ErrorCode.EMPTY
    with pytest.raises(DocumentError) as error:
        assemble(SectionedDocument("txt", [Section(None, "x" * 101)]), "t", DocumentLimits(max_chars=100))
    assert error.value.code is ErrorCode.TOO_LONG
