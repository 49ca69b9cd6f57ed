import pytest

from memory.documents.normalize import drop_banner_lines, normalize_text, strip_gutenberg
from tests.fakes.documents import shared_data_file


def test_newlines_become_lf():
    assert normalize_text("a\r\nb\rc\u2028d\x0ce\nf") == "a\nb\nc\nd\ne\nf"


def test_boms_and_control_characters_go_tabs_stay():
    assert normalize_text("\ufeffab\ufeffc\x00d\x07e\tf\u200bg") == "abcde\tfg"


def test_trailing_whitespace_goes_leading_indentation_stays():
    assert normalize_text("\u3000\u3000第一段。  \n    second line\t\u3000\n") == "\u3000\u3000第一段。\n    second line"


def test_blank_line_runs_collapse_to_one():
    assert normalize_text("\n\n\na\n\n\n\n \n\u3000\nb\n\nc\n\n\n") == "a\n\nb\n\nc"


def test_nfc():
    assert normalize_text("Cafe\u0301") == "Caf\u00e9"


@pytest.mark.parametrize(
    "banner",
    [
        "本书由某某论坛整理",
        "本书来自www.example.com免费txt小说下载站",
        "更多精彩请访问 www.example.com",
        "更多好书请到：example.cc",
        "手机阅读请访问 m.example.com",
        "手机用户请浏览阅读，更优质的阅读体验。",
        "请记住本站域名：www.example.net",
        "声明：本书为八零电子书网(www.80txt.com)的用户上传至本站的存储空间，本站只提供TXT全集电子书存储服务以及免费下载服务。",
        "【更多精彩 尽在 https://example.la 】",
    ],
)
def test_scrape_banners_are_dropped(banner):
    assert normalize_text(f"第一章 开始\n{banner}\n　　正文第一段。") == "第一章 开始\n　　正文第一段。"


@pytest.mark.parametrize(
    "line",
    [
        "他去了www.example.com买书。这是正文里很长的一句话，提到了网址而已，应该保留。",
        "“本书的作者是谁？”他问。",
        "手机掉进了河里。",
        "See https://docs.python.org/3/library/re.html for the syntax.",
        "更多的人来了。",
    ],
)
def test_prose_that_merely_mentions_sites_is_kept(line):
    assert drop_banner_lines(f"前文\n{line}\n后文") == f"前文\n{line}\n后文"


def test_long_lines_are_never_banners():
    line = "本书由" + "很长的正文内容" * 30
    assert drop_banner_lines(line) == line


GUTENBERG = """\ufeffThe Project Gutenberg EBook of A Tale, by Some Author\r
\r
Title: A Tale\r
\r
Author: Some Author\r
\r
*** START OF THIS PROJECT GUTENBERG EBOOK A TALE ***\r
\r
Chapter 1\r
\r
Once upon a time.\r
\r
End of the Project Gutenberg EBook of A Tale, by Some Author\r
\r
*** END OF THIS PROJECT GUTENBERG EBOOK A TALE ***\r
\r
Section 1. General Terms of Use\r
"""


def test_gutenberg_header_and_licence_are_cut_and_read():
    result = strip_gutenberg(GUTENBERG)
    assert result is not None
    assert (result.title, result.author) == ("A Tale", "Some Author")
    assert normalize_text(result.text) == "Chapter 1\n\nOnce upon a time."


def test_newer_gutenberg_markers():
    text = "Title: X\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nbody\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\nlicence"
    result = strip_gutenberg(text)
    assert result is not None and normalize_text(result.text) == "body"


def test_texts_that_only_mention_gutenberg_are_left_alone():
    assert strip_gutenberg("A book about Gutenberg and his press.") is None
    assert strip_gutenberg("No markers at all.") is None


def test_pride_and_prejudice_loses_its_boilerplate():
    raw = shared_data_file("pride_and_prejudice.txt").read_text(encoding="utf-8-sig")
    result = strip_gutenberg(raw)
    assert result is not None
    body = normalize_text(result.text)
    assert (result.title, result.author) == ("Pride and Prejudice", "Jane Austen")
    assert "Gutenberg" not in body
    assert body.startswith("Produced by Anonymous Volunteers")
    assert body.endswith("had been the means of uniting them.")


def test_a_gutenberg_book_in_the_middle_of_a_file_is_not_cut_out():
    book = "Title: X\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nbody\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
    text = "Another novel. " * 10_000 + "\n" + book + "More text after it. " * 10_000
    assert strip_gutenberg(text) is None


def test_an_end_marker_far_from_the_end_is_not_trusted():
    text = "Title: X\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nbody\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
    text += "Much more text. " * 10_000
    result = strip_gutenberg(text)
    assert result is not None and "Much more text." in result.text
