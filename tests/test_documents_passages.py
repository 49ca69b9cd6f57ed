from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from memory.documents.chapters import detect_chapters
from memory.documents.model import Chapter
from memory.documents.normalize import normalize_text
from memory.documents.passages import Passage, split_passages


def texts(passages: list[Passage], text: str) -> list[str]:
    return [text[p.start : p.end] for p in passages]


def test_paragraphs_are_packed_up_to_the_target():
    text = "aaaa\n\nbbbb\n\ncccc\n\ndddd"
    assert texts(split_passages(text, [], 10), text) == ["aaaa\n\nbbbb", "cccc\n\ndddd"]


def test_passages_never_cross_chapters():
    text = "Front.\n\nChapter 1\n\nOne.\n\nChapter 2\n\nTwo."
    chapters = detect_chapters(text)
    passages = split_passages(text, chapters, 1000)
    assert [(p.chapter_index, text[p.start : p.end]) for p in passages] == [
        (None, "Front."),
        (0, "Chapter 1\n\nOne."),
        (1, "Chapter 2\n\nTwo."),
    ]


def test_long_paragraphs_are_cut_at_lines_then_sentences_then_hard():
    text = "第一行很长。\n第二行也很长。"
    assert texts(split_passages(text, [], 8), text) == ["第一行很长。", "第二行也很长。"]
    sentences = "一二三。四五六！七八九？"
    assert texts(split_passages(sentences, [], 5), sentences) == ["一二三。", "四五六！", "七八九？"]
    run = "x" * 25
    assert texts(split_passages(run, [], 10), run) == ["x" * 10, "x" * 10, "x" * 5]


def test_english_sentences_split_after_the_period():
    text = "One two three. Four five six. Seven."
    assert texts(split_passages(text, [], 16), text) == ["One two three.", "Four five six.", "Seven."]


def test_target_must_be_positive():
    with pytest.raises(ValueError):
        split_passages("text", [], 0)


paragraph = st.text(alphabet=st.sampled_from(list("ab 。.\n的了")), min_size=0, max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    paragraphs=st.lists(paragraph, min_size=0, max_size=30),
    headings_every=st.integers(min_value=0, max_value=5),
    target=st.integers(min_value=1, max_value=120),
)
def test_passages_cover_all_text_within_chapters_and_size(paragraphs, headings_every, target):
    pieces = []
    for index, text in enumerate(paragraphs):
        if headings_every and index % headings_every == 0:
            pieces.append(f"Chapter {index // headings_every + 1}")
        pieces.append(text)
    text = normalize_text("\n\n".join(pieces))
    chapters = detect_chapters(text)
    passages = split_passages(text, chapters, target)

    covered = [False] * len(text)
    previous_end = 0
    for passage in passages:
        assert 0 < passage.end - passage.start <= target
        assert passage.start >= previous_end  # in order, no overlap
        assert not text[passage.start].isspace() and not text[passage.end - 1].isspace()
        if passage.chapter_index is None:
            assert not chapters or passage.end <= chapters[0].start
        else:
            chapter: Chapter = chapters[passage.chapter_index]
            assert chapter.start <= passage.start and passage.end <= chapter.end
        for position in range(passage.start, passage.end):
            covered[position] = True
        previous_end = passage.end
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))
