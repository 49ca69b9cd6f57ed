from memory.documents.model import Section
from memory.documents.structure import choose_heading_level, cut_sections


def test_choose_heading_level():
    assert choose_heading_level([]) is None
    assert choose_heading_level([1, 2, 2, 2]) == 2  # a lone h1 is the book title
    assert choose_heading_level([1, 1, 2, 2]) == 1
    assert choose_heading_level([3]) == 3
    assert choose_heading_level([2, 3]) == 2


def test_cut_sections():
    text = "front|one|two"
    assert cut_sections(text, [(6, "One"), (10, "Two")]) == [
        Section(None, "front|"),
        Section("One", "one|"),
        Section("Two", "two"),
    ]


def test_cut_at_zero_has_no_untitled_front_and_later_titles_win_ties():
    assert cut_sections("abc", [(0, "Part I"), (0, "Chapter 1")]) == [Section("Chapter 1", "abc")]


def test_no_cuts_is_one_untitled_section():
    assert cut_sections("abc", []) == [Section(None, "abc")]
