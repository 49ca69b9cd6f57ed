import re

from memory.documents.chapters import chapters_from_starts, detect_chapters
from memory.documents.extract import extract_path
from tests.fakes.documents import shared_data_file

CN_NUMBERS = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"]


def titles(text: str) -> list[str]:
    return [chapter.title for chapter in detect_chapters(text)]


def body(title: str, extra: str = "") -> str:
    return f"{title}\n　　这是{title}的正文，讲了很多事情。{extra}\n　　又一段。\n\n"


def test_offsets_cover_heading_to_last_character():
    text = "书名\n\n" + body("第一章 开始") + body("第二章 结束")
    chapters = detect_chapters(text)
    assert [c.index for c in chapters] == [0, 1]
    assert text[chapters[0].start :].startswith("第一章 开始")
    assert text[chapters[0].end - 4 : chapters[0].end] == "又一段。"
    assert chapters[1].end == len(text.rstrip())
    assert not text[chapters[0].end : chapters[1].start].strip()
    assert [c.number for c in chapters] == [1, 2]


def test_quoted_heading_lines_inside_prose_do_not_split_chapters():
    text = (
        body("第一回 开始")
        + body("第二回 发展", "他说“第三回里写的……”")
        + "第三回里写的东西很有意思。\n"
        + body("第三回 高潮")
        + "“第五回写得真好，”她说。\n"
        + body("第四回 结局")
    )
    assert titles(text) == ["第一回 开始", "第二回 发展", "第三回 高潮", "第四回 结局"]


def test_standalone_mentions_out_of_sequence_are_dropped_by_numbering():
    text = (
        body("第一章 开始")
        + body("第二章 发展")
        + "第八十章\n"  # looks like a heading, but nothing continues from 80
        + body("第三章 继续")
        + "第一章\n"  # a stray back-reference; the next heading is 4, not 2
        + body("第四章 结局")
    )
    assert titles(text) == ["第一章 开始", "第二章 发展", "第三章 继续", "第四章 结局"]


def test_a_preface_mentioning_a_late_chapter_is_not_a_chapter():
    text = "序\n　　本书最精彩的是：\n第五十章 决战\n　　值得一读。\n\n" + body("第一章 开始") + body("第二章 发展")
    assert titles(text) == ["序", "第一章 开始", "第二章 发展"]


def test_missing_chapters_and_partial_uploads():
    text = "".join(body(f"第{n}章 标题{n}") for n in ("一", "二", "四", "五", "九", "十"))
    assert [c.number for c in detect_chapters(text)] == [1, 2, 4, 5, 9, 10]
    partial = "".join(body(f"第{n}章") for n in ("一百零一", "一百零二", "一百零三"))
    assert [c.number for c in detect_chapters(partial)] == [101, 102, 103]


def test_split_chapters_with_the_same_number_are_kept():
    text = body("第一章 风起（上）") + body("第一章 风起（下）") + body("第二章 云涌")
    assert titles(text) == ["第一章 风起（上）", "第一章 风起（下）", "第二章 云涌"]


def test_table_of_contents_becomes_front_matter():
    toc = "目录\n" + "".join(f"第{n}章 标题{n}\n" for n in CN_NUMBERS[:5]) + "\n"
    text = toc + "".join(body(f"第{n}章 标题{n}") for n in CN_NUMBERS[:5])
    chapters = detect_chapters(text)
    assert [c.title for c in chapters] == [f"第{n}章 标题{n}" for n in CN_NUMBERS[:5]]
    assert chapters[0].start == len(toc)


def test_numbering_restarting_per_volume():
    text = (
        "第一卷 风起\n\n" + body("第一章 少年") + body("第二章 长大")
        + "第二卷 云涌\n" + body("第一章 再起") + body("第二章 结束")
    )
    chapters = detect_chapters(text)
    assert [c.title for c in chapters] == ["第一卷 风起 第一章 少年", "第二章 长大", "第二卷 云涌 第一章 再起", "第二章 结束"]
    assert text[chapters[0].start :].startswith("第一卷 风起")
    assert text[chapters[2].start :].startswith("第二卷 云涌")


def test_volumes_alone_are_chapters_when_there_is_nothing_finer():
    text = "".join(body(f"第{n}卷 卷名") for n in CN_NUMBERS[:3])
    assert [c.number for c in detect_chapters(text)] == [1, 2, 3]


def test_chapters_win_over_sections():
    text = ""
    for chapter in CN_NUMBERS[:3]:
        text += body(f"第{chapter}章 大标题")
        for section in CN_NUMBERS[:4]:
            text += body(f"第{section}节 小标题")
    assert [c.title for c in detect_chapters(text)] == ["第一章 大标题", "第二章 大标题", "第三章 大标题"]


def test_prologue_and_epilogue_around_numbered_chapters():
    text = "楔子\n　　很久以前。\n\n" + body("第一章 开始") + body("第二章 结束") + "尾声\n　　完。\n\n番外一 后来\n　　后来的事。"
    assert titles(text) == ["楔子", "第一章 开始", "第二章 结束", "尾声", "番外一 后来"]


def test_prologue_words_in_the_middle_are_ignored():
    text = body("第一章 开始") + "序\n" + body("第二章 结束")
    assert titles(text) == ["第一章 开始", "第二章 结束"]


def test_messy_junk_before_headings():
    text = (
        body("　　第一章 一")
        + body("【第二章】二")
        + body("☆第三章 三")
        + body("正文 第四章 四")
        + body("第5章 五")
        + body("第６章 六")
        + body("第七章七")
    )
    assert [c.number for c in detect_chapters(text)] == [1, 2, 3, 4, 5, 6, 7]


def test_every_numeral_style_in_one_long_book():
    # Runs of consecutive chapters (a partial upload skips from 5 to 19 and so on),
    # each chapter numbered in a different notation.
    written = {
        1: "一", 2: "貳", 3: "叁", 4: "4", 5: "５",
        19: "十九", 20: "廿", 21: "廿一", 22: "二二", 23: "二十三", 30: "卅",
        99: "九十九", 100: "一百", 101: "一〇一", 102: "一百零二", 103: "壹佰零叁",
        199: "一百九十九", 200: "两百", 201: "二百零一", 202: "两百〇二",
    }
    text = "".join(body(f"第{chinese}回 标题") for chinese in written.values())
    assert [c.number for c in detect_chapters(text)] == [n for n in written if n != 30]


def test_english_headings():
    text = "".join(
        f"{heading}\n\nSome text of the chapter, which goes on.\n\n"
        for heading in ["CHAPTER I.", "CHAPTER II.", "Chapter 3: The Storm", "Chapter Four", "CHAPTER 5"]
    )
    assert [c.number for c in detect_chapters(text)] == [1, 2, 3, 4, 5]


def test_english_parts_with_chapters_inside():
    text = ""
    chapter = 0
    for part in ("I", "II"):
        text += f"PART {part}\n\n"
        for _ in range(3):
            chapter += 1
            text += f"Chapter {chapter}\n\nProse about chapter {chapter}; see Chapter 1 for more.\n\n"
    chapters = detect_chapters(text)
    assert [c.number for c in chapters] == [1, 2, 3, 4, 5, 6]
    assert chapters[0].title == "PART I Chapter 1"
    assert chapters[3].title == "PART II Chapter 4"


def test_prologue_and_epilogue_in_english():
    text = "Prologue\n\nBefore.\n\nChapter 1\n\nOne.\n\nChapter 2\n\nTwo.\n\nEpilogue\n\nAfter."
    assert titles(text) == ["Prologue", "Chapter 1", "Chapter 2", "Epilogue"]


def test_no_headings_no_chapters():
    assert detect_chapters("Just a short note.\n\nWith two paragraphs.") == []
    assert detect_chapters("") == []


def test_chapters_from_starts_trims_trailing_whitespace():
    text = "A\n\nfirst  \n\n\nB\nsecond\n\n"
    chapters = chapters_from_starts(text, [(13, "B", 2), (0, "A", 1)])
    assert [(c.index, c.title, text[c.start : c.end]) for c in chapters] == [(0, "A", "A\n\nfirst"), (1, "B", "B\nsecond")]


def test_journey_to_the_west_has_exactly_its_100_chapters():
    path = shared_data_file("xiyouji.utf8.txt")
    document = extract_path(path)
    expected = re.findall(r"^(第[一二三四五六七八九十百]+回[^\n]*)$", path.read_text(encoding="utf-8"), re.M)
    assert len(expected) == 100
    assert [c.title for c in document.chapters] == [" ".join(t.split("\u3000")).replace(" ", "\u3000") for t in expected]
    assert [c.number for c in document.chapters] == list(range(1, 101))
    assert document.chapters[0].title == "第一回　灵根育孕源流出　心性修持大道生"
    assert document.chapters[-1].title == "第一百回　径回东土　五圣成真"
    assert document.chapter_text(document.chapters[-1]).endswith("《西游记》至此终。")


def test_pride_and_prejudice_has_exactly_61_chapters():
    document = extract_path(shared_data_file("pride_and_prejudice.txt"))
    assert [c.title for c in document.chapters] == [f"Chapter {n}" for n in range(1, 62)]
    assert document.chapter_text(document.chapters[0]).startswith("Chapter 1\n\nIt is a truth universally acknowledged")
    assert document.chapter_text(document.chapters[-1]).endswith("had been the means of uniting them.")


def test_a_long_web_novel_with_a_full_table_of_contents():
    toc = "目录\n" + "".join(f"第{n}章 标题{n}\n" for n in range(1, 1501)) + "\n"
    text = toc + "".join(f"第{n}章 标题{n}\n　　正文。\n\n" for n in range(1, 1501))
    chapters = detect_chapters(text)
    assert [c.number for c in chapters] == list(range(1, 1501))
    assert chapters[0].start == len(toc)
