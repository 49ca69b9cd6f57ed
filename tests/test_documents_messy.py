"""Chapters of the shared novels as they are found on the web (see tests/fakes/messy_novels.py).

Every messy variant must give exactly the chapters of the clean text, with the clean
titles (a volume's title in front of its first chapter), and strip exactly the junk
lines the variant added: site banners, advertisements, running headers.
"""

import pytest

from memory.documents import extract_bytes, extract_path
from tests.fakes.documents import shared_data_file
from tests.fakes.messy_novels import NOVELS, messy_variants

CASES = [(novel, name) for novel in NOVELS for name in ("site prefix on every heading, BOM and banner",
                                                         "running number before every heading",
                                                         "site suffix after every heading", "table of contents",
                                                         "running headers", "ads between chapters",
                                                         "mentions of other chapters", "everything at once")]
CASES += [(NOVELS[0], name) for name in ("table of contents and site prefix", "CRLF, GB18030 with UTF-8 ads",
                                         "volumes above chapters", "Arabic 第N章", "mixed spaces")]
CASES += [(NOVELS[1], name) for name in ("CRLF, Windows-1252", "volumes above Roman chapters",
                                         "Book One above Chapter I.", "CHAPTER 1")]

_variants: dict[str, dict] = {}


def variant(novel: str, name: str):
    if novel not in _variants:
        shared_data_file(novel)  # skips with a reason when ../shared/data is absent
        _variants[novel] = messy_variants(novel)
    return _variants[novel][name]


@pytest.mark.parametrize(("novel", "name"), CASES, ids=[f"{n.split('.')[0]}: {v}" for n, v in CASES])
def test_messy_variant_gives_the_exact_chapters(novel, name):
    expected = variant(novel, name)
    document = extract_bytes(expected.data, expected.filename)
    assert [c.title for c in document.chapters] == expected.titles
    assert len(document.stripped_lines) == expected.stripped
    assert document.volumes == expected.volumes
    if "table of contents" in name or name == "everything at once":
        assert document.toc_entries == len(expected.titles)
        toc = document.text.index("目录" if novel.startswith("xiyouji") else "Contents")
        assert toc < document.chapters[0].start  # the TOC is front matter, not chapter 1
    for chapter in document.chapters:  # offsets still exact after the junk lines went
        first_line = document.chapter_text(chapter).split("\n")[0]
        assert chapter.title.split(" ")[0].split("\u3000")[0] in first_line
    text = document.text
    assert "www." not in text and "（本章完）" not in text  # no advertisement left for the model to read
    assert "西游记\u3000第" not in text and "Pride and Prejudice | " not in text  # no running header left


@pytest.mark.parametrize("novel", NOVELS)
def test_the_clean_novels_lose_nothing(novel):
    document = extract_path(shared_data_file(novel))
    assert document.stripped_lines == () and document.volumes == 0 and document.toc_entries == 0
    assert len(document.chapters) == (100 if novel.startswith("xiyouji") else 61)


def test_gb18030_file_with_utf8_lines_pasted_in_is_read_line_by_line():
    expected = variant(NOVELS[0], "CRLF, GB18030 with UTF-8 ads")
    document = extract_bytes(expected.data, expected.filename)
    assert document.encoding == "gb18030"
    assert "孙悟空" in document.text and "\ufffd" not in document.text
