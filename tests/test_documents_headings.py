import pytest

from memory.documents.headings import CHAPTER, SECTION, VOLUME, clean_title, find_headings, heading_number


def single(line: str):
    found = find_headings(f"前文。\n{line}\n后文。")
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("line", "number", "title"),
    [
        ("第一回　灵根育孕源流出　心性修持大道生", 1, "第一回　灵根育孕源流出　心性修持大道生"),
        ("第十二章 风起", 12, "第十二章 风起"),
        ("第一百二十章", 120, "第一百二十章"),
        ("第一二零章 数字", 120, "第一二零章 数字"),
        ("第两百章", 200, "第两百章"),
        ("第廿三回", 23, "第廿三回"),
        ("第卅章", 30, "第卅章"),
        ("第〇章 序", 0, "第〇章 序"),
        ("第零章", 0, "第零章"),
        ("第壹佰贰拾叁章", 123, "第壹佰贰拾叁章"),
        ("第12章 阿拉伯", 12, "第12章 阿拉伯"),
        ("第１２章 全角", 12, "第１２章 全角"),
        ("第 3 章 空格", 3, "第 3 章 空格"),
        ("　　第五章　缩进", 5, "第五章　缩进"),
        ("【第六章】括号", 6, "第六章 括号"),
        ("☆第七章 星", 7, "第七章 星"),
        ("正文 第八章 正文前缀", 8, "第八章 正文前缀"),
        ("【更多精彩】第八章 横幅", 8, "第八章 横幅"),
        ("第九章风起云涌", 9, "第九章风起云涌"),
        ("第十章：冒号", 10, "第十章：冒号"),
        ("第十一章 你是谁？", 11, "第十一章 你是谁？"),
    ],
)
def test_chinese_heading_shapes(line, number, title):
    heading = single(line)
    assert (heading.number, heading.title, heading.level) == (number, title, CHAPTER)


@pytest.mark.parametrize(
    ("line", "group", "level"),
    [("第一节 小节", "cn:节", SECTION), ("第一卷 风起", "cn:卷", VOLUME), ("第二部 下部", "cn:部", VOLUME), ("第三集", "cn:集", VOLUME)],
)
def test_chinese_units(line, group, level):
    heading = single(line)
    assert (heading.group, heading.level) == (group, level)


def test_volume_and_chapter_on_one_line():
    found = find_headings("第一卷 风起 第三章 少年\n正文")
    assert [(h.group, h.number) for h in found] == [("cn:卷", 1), ("cn:章", 3)]


@pytest.mark.parametrize(
    "line",
    [
        "他说“第三回里写的……”",
        "第三回里写的东西很有意思。",
        "“第五章写得真好，”她说，“我看了三遍。”",
        "这是第三章的内容，我们接着讲下去，一直讲到很晚很晚才停下来休息。",
        "第一章开始的时候，他还是个孩子，什么都不懂，后来慢慢长大了，才明白了很多道理",
        "第二章，",
        "我读到第七回了",
    ],
)
def test_chinese_headings_quoted_in_prose_are_not_headings(line):
    assert find_headings(line) == []


@pytest.mark.parametrize(
    ("line", "number", "group"),
    [
        ("Chapter 1", 1, "en:chapter"),
        ("CHAPTER XII", 12, "en:chapter"),
        ("CHAPTER 1.", 1, "en:chapter"),
        ("Chapter 3: The Storm", 3, "en:chapter"),
        ("Chapter Twenty-One", 21, "en:chapter"),
        ("Chapter IV. In Which Things Happen", 4, "en:chapter"),
        ("Chapter 5 The Ball", 5, "en:chapter"),
        ("## Chapter 6", 6, "en:chapter"),
        ("Part II", 2, "en:part"),
        ("BOOK THREE", 3, "en:book"),
        ("Volume 1 - Beginnings", 1, "en:volume"),
    ],
)
def test_english_heading_shapes(line, number, group):
    found = find_headings(f"Text before.\n{line}\nText after.")
    assert [(h.number, h.group) for h in found] == [(number, group)]


@pytest.mark.parametrize(
    "line",
    [
        "chapter 3 of the book was long.",
        "Chapter 3 of the book was long, and we all knew it.",
        "\"Chapter 3\" was the best part.",
        "In Chapter 3 he dies.",
        "Book Did it",
        "Part I " + "of a very long sentence that keeps going " * 4,
    ],
)
def test_english_mentions_are_not_headings(line):
    assert find_headings(f"Text.\n{line}\nText.") == []


def test_heading_number():
    assert heading_number("第十二回 标题") == 12
    assert heading_number("Chapter XII: Title") == 12
    assert heading_number("Prologue") is None


def test_clean_title():
    assert clean_title("  【第一章】  标题  ") == "第一章 标题"
    assert clean_title("☆☆第二章　　题") == "第二章　题"
    assert clean_title("正文 第三章 题") == "第三章 题"


def test_a_bare_english_heading_takes_its_name_from_the_next_line():
    text = "CHAPTER I.\nDown the Rabbit-Hole\n\nAlice was beginning to get very tired.\n\nCHAPTER II.\n\nThe Pool of Tears\n\nText."
    assert [h.title for h in find_headings(text)] == ["CHAPTER I. Down the Rabbit-Hole", "CHAPTER II. The Pool of Tears"]


def test_the_first_line_of_hard_wrapped_prose_is_not_a_chapter_name():
    text = "Chapter 1\n\nIt is a truth universally acknowledged, that a single man in possession\nof a good fortune.\n"
    assert [h.title for h in find_headings(text)] == ["Chapter 1"]
    short = "Chapter 2\n\nShe laughed.\n\nThen she left."
    assert [h.title for h in find_headings(short)] == ["Chapter 2"]
    capitals = "CHAPTER III.\n\nTHE BEGINNING.\n\nText."
    assert [h.title for h in find_headings(capitals)] == ["CHAPTER III. THE BEGINNING."]
