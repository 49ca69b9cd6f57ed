"""Markdown -> Telegram text + entities, and splitting long replies into messages."""

from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from bot.telegram.formatting import (
    TELEGRAM_TEXT_LIMIT,
    FormattedText,
    format_reply,
    render_markdown,
    split_formatted,
    utf16_len,
)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def entity_text(piece: FormattedText, entity) -> str:
    """The characters an entity covers, cut by UTF-16 offsets as Telegram does."""
    units = piece.text.encode("utf-16-le")
    return units[entity.offset * 2:(entity.offset + entity.length) * 2].decode("utf-16-le")


def assert_well_formed(pieces: list[FormattedText], limit: int = TELEGRAM_TEXT_LIMIT) -> None:
    for piece in pieces:
        assert piece.text.strip(), "no blank messages"
        assert piece.length <= limit
        for entity in piece.entities:
            assert entity.length > 0
            assert 0 <= entity.offset and entity.offset + entity.length <= piece.length
            entity_text(piece, entity)  # raises on a torn surrogate pair


# -- rendering ------------------------------------------------------------------------------

def test_markdown_becomes_text_and_entities_without_escaping():
    formatted = render_markdown("**bold** and *it* `x < y & z` [site](https://example.com)")
    assert formatted.text == "bold and it x < y & z site"
    kinds = {(e.type, entity_text(formatted, e)) for e in formatted.entities}
    assert kinds == {("bold", "bold"), ("italic", "it"), ("code", "x < y & z"), ("text_link", "site")}
    link = next(e for e in formatted.entities if e.type == "text_link")
    assert link.url == "https://example.com"


def test_entity_offsets_count_utf16_units_after_emoji_and_cjk():
    formatted = render_markdown("😀👍 中文**粗体**")
    bold = formatted.entities[0]
    assert (bold.offset, bold.length) == (utf16_len("😀👍 中文"), 2)
    assert entity_text(formatted, bold) == "粗体"


def test_fenced_code_keeps_its_language():
    formatted = render_markdown("Look:\n\n```python\nprint('hi')\n```")
    pre = next(e for e in formatted.entities if e.type == "pre")
    assert pre.language == "python"
    assert entity_text(formatted, pre) == "print('hi')"


def test_angle_brackets_are_never_lost_as_raw_html():
    assert render_markdown("Use List<String> or Vec<u8>, not <div>.").text == \
        "Use List<String> or Vec<u8>, not <div>."
    roleplay = render_markdown("<whispers> come closer *<sigh>*")
    assert roleplay.text == "<whispers> come closer <sigh>"
    assert [(e.type, entity_text(roleplay, e)) for e in roleplay.entities] == [("italic", "<sigh>")]
    block = "<div>\nhello <b>x</b>\n</div>\n\nafter"
    assert render_markdown(block).text == block


def test_code_and_autolinks_keep_their_meaning_next_to_angle_brackets():
    formatted = render_markdown("`<div>` and <https://example.com> and ||hidden||")
    assert formatted.text == "<div> and https://example.com and hidden"
    assert [e.type for e in formatted.entities] == ["code", "text_link", "spoiler"]


def test_headings_are_bold_without_decoration():
    formatted = render_markdown("# Chapter One\n\nIt began.")
    assert formatted.text == "Chapter One\n\nIt began."
    assert sorted(e.type for e in formatted.entities) == ["bold", "underline"]


def test_plain_fallback_is_the_same_text_without_entities():
    formatted = render_markdown("**bold** _it_")
    assert formatted.plain() == FormattedText("bold it")
    assert formatted.plain().as_kwargs() == {"text": "bold it", "entities": None, "parse_mode": None}


def test_blank_reply_gives_no_messages():
    assert format_reply("") == []
    assert format_reply("  \n\n  ") == []


def test_short_reply_is_one_message_untouched():
    [piece] = format_reply("Hello **there**")
    assert piece == render_markdown("Hello **there**")


# -- splitting ------------------------------------------------------------------------------

def test_ten_thousand_characters_split_at_paragraphs():
    paragraphs = [f"Paragraph {i}. " + "Some words here. " * 30 for i in range(20)]
    reply = "\n\n".join(paragraphs)
    assert len(reply) > 10_000
    pieces = format_reply(reply)
    assert len(pieces) >= 3
    assert_well_formed(pieces)
    assert squash("".join(p.text for p in pieces)) == squash(render_markdown(reply).text)
    for piece in pieces:
        assert piece.text.startswith("Paragraph "), "each message starts at a paragraph"
        assert piece.text.endswith("here.")


def test_one_long_paragraph_splits_at_sentence_ends():
    reply = " ".join(f"Sentence number {i} goes on for a while." for i in range(400))
    pieces = format_reply(reply)
    assert len(pieces) >= 3
    assert_well_formed(pieces)
    assert all(piece.text.endswith("while.") for piece in pieces)
    assert all(piece.text.startswith("Sentence") for piece in pieces)


def test_chinese_splits_after_full_width_sentence_punctuation():
    sentences = ["今天天气很好。", "你吃饭了吗？", "我们走吧！"]
    reply = "".join(sentences[i % 3] for i in range(2000))  # no spaces at all
    pieces = format_reply(reply)
    assert len(pieces) >= 3
    assert_well_formed(pieces)
    assert all(piece.text[-1] in "。？！" for piece in pieces)
    assert "".join(p.text for p in pieces) == reply


def test_without_punctuation_splits_between_words():
    words = [f"word{i}" for i in range(2000)]
    pieces = format_reply(" ".join(words))
    assert len(pieces) >= 3
    assert_well_formed(pieces)
    assert [w for p in pieces for w in p.text.split()] == words


def test_without_any_boundary_cuts_hard_at_the_limit():
    pieces = format_reply("a" * 10_000)
    assert [p.length for p in pieces] == [4096, 4096, 1808]


def test_emoji_are_never_torn_and_length_counts_utf16():
    reply = "😀" * 3000  # 6000 UTF-16 units, 3000 characters
    pieces = format_reply(reply)
    assert [p.length for p in pieces] == [4096, 1904]
    assert "".join(p.text for p in pieces) == reply


def test_joined_emoji_sequences_stay_together():
    family = "👨\u200d👩\u200d👧"
    flag = "🇨🇳"
    reply = (family + flag + "é") * 600  # "é" written as e + combining mark below
    reply = reply.replace("é", "e\u0301")
    pieces = split_formatted(FormattedText(reply), 100)
    assert_well_formed(pieces, 100)
    assert "".join(p.text for p in pieces) == reply
    for piece in pieces:
        assert not piece.text.startswith(("\u200d", "\u0301"))
        assert not piece.text.endswith("\u200d")
        assert piece.text.count("🇨") == piece.text.count("🇳"), "flags are pairs"


def test_code_block_that_fits_is_kept_whole():
    code = "\n".join(f"x_{i} = {i} * 2" for i in range(200))  # ~2.8k characters
    reply = "Intro. " * 200 + "\n\n```python\n" + code + "\n```\n\nOutro."
    pieces = format_reply(reply)
    assert_well_formed(pieces)
    holders = [p for p in pieces if any(e.type == "pre" for e in p.entities)]
    assert len(holders) == 1
    pre = next(e for e in holders[0].entities if e.type == "pre")
    assert entity_text(holders[0], pre) == code
    assert pre.language == "python"


def test_oversized_code_block_is_split_at_lines_and_each_part_is_code():
    lines = [f"print('line {i:05d}')" for i in range(800)]  # ~16k characters
    reply = "Here:\n\n```python\n" + "\n".join(lines) + "\n```"
    pieces = format_reply(reply)
    assert_well_formed(pieces)
    assert pieces[0].text == "Here:"
    code_pieces = pieces[1:]
    assert len(code_pieces) >= 4
    seen: list[str] = []
    for piece in code_pieces:
        [pre] = piece.entities
        assert (pre.type, pre.offset, pre.length, pre.language) == ("pre", 0, piece.length, "python")
        seen.extend(piece.text.split("\n"))
    assert seen == lines, "cut only between lines"


def test_entities_are_rebased_into_each_piece():
    paragraphs = [f"Part {i} has a **marker{i}** inside. " + "Filler text. " * 40 for i in range(30)]
    pieces = format_reply("\n\n".join(paragraphs))
    assert len(pieces) >= 3
    found = []
    for piece in pieces:
        for entity in piece.entities:
            assert entity.type == "bold"
            found.append(entity_text(piece, entity))
    assert found == [f"marker{i}" for i in range(30)]


def test_entity_spanning_a_hard_cut_is_clipped_into_both_pieces():
    formatted = render_markdown("**" + "b" * 150 + "**")
    pieces = split_formatted(formatted, 100)
    assert [(p.entities[0].offset, p.entities[0].length) for p in pieces] == [(0, 100), (0, 50)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="abc xyz.。！，\n😀中文", min_size=1, max_size=80),
            st.sampled_from(["**bold**", "`code`", "\n\n", "```\nx = 1\ny = 2\n```", "_i_", "👨\u200d👩\u200d👧"]),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(min_value=8, max_value=120),
)
def test_any_reply_splits_into_valid_messages(parts, limit):
    formatted = render_markdown("".join(parts))
    pieces = split_formatted(formatted, limit)
    assert_well_formed(pieces, limit)
    assert squash("".join(p.text for p in pieces)) == squash(formatted.text)
