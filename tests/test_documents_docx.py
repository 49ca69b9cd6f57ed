import io

import docx
from docx.enum.style import WD_STYLE_TYPE
import pytest

from memory.documents.errors import DocumentError, ErrorCode
from memory.documents.extract import extract_bytes
from tests.fakes.documents import make_docx, make_zip, patch_declared_size

CHAPTERS = [(f"第{n}章 标题", [f"　　第{n}章的第一段。", "第二段。"]) for n in "一二三"]


def test_heading_styles_are_chapters():
    document = extract_bytes(make_docx(CHAPTERS), "book.docx")
    assert (document.format, document.title, document.author) == ("docx", "A Test Document", "Test Author")
    assert document.chapter_source == "styles"
    assert [(c.title, c.number) for c in document.chapters] == [("第一章 标题", 1), ("第二章 标题", 2), ("第三章 标题", 3)]
    assert document.chapter_text(document.chapters[0]) == "第一章 标题\n\n　　第一章的第一段。\n\n第二段。"
    assert document.text.startswith("A Test Document\n\n第一章")


def test_chapters_at_heading_2_under_a_single_heading_1():
    data = make_docx([("Part One", [])], heading_level=1)
    document = docx.Document(io.BytesIO(data))
    for title in ("Alpha", "Beta"):
        document.add_heading(title, level=2)
        document.add_paragraph(f"{title} text.")
    out = io.BytesIO()
    document.save(out)
    result = extract_bytes(out.getvalue(), "book.docx")
    assert [c.title for c in result.chapters] == ["Alpha", "Beta"]


def test_custom_styles_based_on_headings_count():
    document = docx.Document()
    style = document.styles.add_style("My Chapter", WD_STYLE_TYPE.PARAGRAPH)
    style.base_style = document.styles["Heading 1"]
    for title in ("One", "Two"):
        document.add_paragraph(title, style="My Chapter")
        document.add_paragraph("Body.")
    out = io.BytesIO()
    document.save(out)
    assert [c.title for c in extract_bytes(out.getvalue(), "x.docx").chapters] == ["One", "Two"]


def test_tables_are_read_in_order():
    document = extract_bytes(make_docx(CHAPTERS[:1], table=[["姓名", "年龄"], ["悟空", "五百"]]), "book.docx")
    assert "姓名\t年龄\n悟空\t五百" in document.text
    assert document.text.index("姓名") < document.text.index("第一章")


def test_without_heading_styles_numbered_lines_still_make_chapters():
    document = docx.Document()
    for n in "一二":
        document.add_paragraph(f"第{n}章 标题")
        document.add_paragraph("正文。")
    out = io.BytesIO()
    document.save(out)
    result = extract_bytes(out.getvalue(), "x.docx")
    assert result.chapter_source == "headings"
    assert [c.number for c in result.chapters] == [1, 2]


def test_a_zip_that_is_not_a_word_document_is_corrupt():
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_zip({"hello.txt": b"hi"}), "book.docx")
    assert error.value.code is ErrorCode.CORRUPT


def test_damaged_document_xml_is_corrupt():
    archive = make_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document"})
    with pytest.raises(DocumentError) as error:
        extract_bytes(archive, "book.docx")
    assert error.value.code is ErrorCode.CORRUPT


def test_docx_declaring_a_huge_member_is_a_zip_bomb():
    bomb = patch_declared_size(make_docx(CHAPTERS), "word/document.xml", 0x7FFFFFFF)
    with pytest.raises(DocumentError) as error:
        extract_bytes(bomb, "book.docx")
    assert error.value.code is ErrorCode.ZIP_BOMB


def test_password_protected_word_file():
    # Office saves encrypted .docx files as OLE2 compound documents.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600
    with pytest.raises(DocumentError) as error:
        extract_bytes(ole, "secret.docx")
    assert error.value.code is ErrorCode.ENCRYPTED


def test_empty_document_has_no_text():
    with pytest.raises(DocumentError) as error:
        extract_bytes(make_docx([], title=None), "empty.docx")
    assert error.value.code is ErrorCode.NO_TEXT


def test_chinese_named_heading_styles_count():
    document = docx.Document()
    style = document.styles.add_style("标题 2", WD_STYLE_TYPE.PARAGRAPH)
    for title in ("第一章 起", "第二章 承"):
        document.add_paragraph(title, style=style)
        document.add_paragraph("正文。")
    out = io.BytesIO()
    document.save(out)
    result = extract_bytes(out.getvalue(), "x.docx")
    assert (result.chapter_source, [c.title for c in result.chapters]) == ("styles", ["第一章 起", "第二章 承"])


def test_docx_member_lying_about_its_size_is_never_inflated_whole():
    # word/document.xml declares 4 KB (with the CRC of 4 KB of zeros) and inflates to
    # 1.1 GB: zipfile's own read() would inflate all of it before looking at the size.
    import tracemalloc

    from tests.fakes.bad_inputs import docx_bomb

    bomb = docx_bomb(lying=True)
    tracemalloc.start()
    try:
        with pytest.raises(DocumentError) as error:
            extract_bytes(bomb, "liar.docx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error.value.code is ErrorCode.CORRUPT
    assert peak < 50 * 1024 * 1024
