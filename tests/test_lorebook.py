"""Lorebook matching and selection: keys in English and Chinese, regexes, secondary-key
logic, scan depth, budget, order, constant/disabled entries, case sensitivity, recursion."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personas import Lorebook, LoreEntry, PersonaError, SelectiveLogic, format_lore, select_lore
from personas.lorebook import DEFAULT_SCAN_DEPTH, parse_decorators
from personas.schema import validate_persona


def count_characters(text: str) -> int:
    return len(text)


def book(*entries: dict, **options) -> Lorebook:
    return Lorebook.model_validate({"entries": list(entries), **options})


def chosen(lorebook: Lorebook, *messages: str, budget: int = 10_000, **options) -> list[str]:
    return [entry.content for entry in select_lore(lorebook, list(messages), count_characters, budget, **options)]


def test_english_keys_match_whole_words_case_insensitively():
    lorebook = book({"keys": ["cat"], "content": "CAT"}, {"keys": ["Hollow Guild"], "content": "GUILD"})
    assert chosen(lorebook, "My Cat is asleep.") == ["CAT"]
    assert chosen(lorebook, "a category error") == []
    assert chosen(lorebook, "cats!") == []
    assert chosen(lorebook, "(cat)") == ["CAT"]
    assert chosen(lorebook, "the hollow guild is here") == ["GUILD"]


def test_whole_word_matching_can_be_turned_off():
    ours = book({"keys": ["cat"], "content": "CAT", "match_whole_words": False})
    sillytavern = book({"keys": ["cat"], "content": "CAT", "extensions": {"match_whole_words": False}})
    assert chosen(ours, "a category") == ["CAT"]
    assert chosen(sillytavern, "a category") == ["CAT"]


def test_chinese_keys_match_inside_text_without_spaces():
    lorebook = book({"keys": ["长安"], "content": "长安城"}, {"keys": ["墨墨"], "content": "猫"})
    assert chosen(lorebook, "我明天想去长安看看花") == ["长安城"]
    assert chosen(lorebook, "墨墨今天乖不乖") == ["猫"]
    assert chosen(lorebook, "我想去西安") == []


def test_latin_key_next_to_chinese_text_counts_as_a_whole_word():
    lorebook = book({"keys": ["Python"], "content": "PY"})
    assert chosen(lorebook, "我喜欢Python语言") == ["PY"]
    assert chosen(lorebook, "Pythonic code") == []


def test_case_sensitive_entries():
    lorebook = book(
        {"keys": ["Rose"], "content": "NAME", "case_sensitive": True},
        {"keys": ["rose"], "content": "ANY"},
    )
    assert chosen(lorebook, "a rose in bloom") == ["ANY"]
    assert chosen(lorebook, "Rose said hello") == ["NAME", "ANY"]


def test_case_sensitivity_from_sillytavern_extensions():
    lorebook = book({"keys": ["Rose"], "content": "NAME", "extensions": {"case_sensitive": True}})
    assert chosen(lorebook, "a rose") == []
    assert chosen(lorebook, "Rose") == ["NAME"]


def test_slashed_regex_keys():
    lorebook = book({"keys": [r"/\bjump(s|ed|ing)?\b/i"], "content": "JUMP"}, {"keys": ["/^Hi$/m"], "content": "HI"})
    assert chosen(lorebook, "We JUMPED at dawn") == ["JUMP"]
    assert chosen(lorebook, "a jumpsuit") == []
    assert chosen(lorebook, "well\nHi\nthere") == ["HI"]
    assert chosen(lorebook, "hi") == []


def test_use_regex_entries_and_javascript_named_groups():
    lorebook = book(
        {"keys": [r"dragon(?<plural>s)?"], "content": "DRAGON", "use_regex": True},
        {"keys": [r"(?<word>ha)\k<word>"], "content": "LAUGH", "use_regex": True, "case_sensitive": True},
    )
    assert chosen(lorebook, "Two DRAGONS") == ["DRAGON"]
    assert chosen(lorebook, "haha") == ["LAUGH"]
    assert chosen(lorebook, "HAHA") == []


def test_bad_regex_is_an_error_when_the_book_is_loaded():
    with pytest.raises(ValueError, match=r"keys\[1\].*not a valid regular expression"):
        LoreEntry(keys=["fine", "/[unclosed/"], content="x")
    with pytest.raises(ValueError, match="unknown regex flag 'x'"):
        LoreEntry(keys=["/abc/x"], content="x")
    with pytest.raises(
        PersonaError, match=r"lorebook\.entries\.0.*secondary_keys\[0\].*not a valid regular expression"
    ):
        validate_persona(
            {"id": "a", "name": "A", "lorebook": {"entries": [{"keys": ["a"], "secondary_keys": ["/(/"]}]}}, "a.toml"
        )


@pytest.mark.parametrize(
    ("logic", "message", "expected"),
    [
        (SelectiveLogic.AND_ANY, "tea with grandma", True),
        (SelectiveLogic.AND_ANY, "tea alone", False),
        (SelectiveLogic.AND_ALL, "tea with grandma and honey", True),
        (SelectiveLogic.AND_ALL, "tea with grandma", False),
        (SelectiveLogic.NOT_ANY, "tea alone", True),
        (SelectiveLogic.NOT_ANY, "tea with honey", False),
        (SelectiveLogic.NOT_ALL, "tea with honey", True),
        (SelectiveLogic.NOT_ALL, "tea with grandma and honey", False),
        (SelectiveLogic.AND_ANY, "grandma and honey, no drink", False),
    ],
)
def test_secondary_key_logic(logic, message, expected):
    entry = {"keys": ["tea"], "secondary_keys": ["grandma", "honey"], "content": "TEA"}
    ours = book({**entry, "selective_logic": logic.value})
    sillytavern_code = {"and_any": 0, "not_all": 1, "not_any": 2, "and_all": 3}[logic.value]
    theirs = book({**entry, "selective": True, "extensions": {"selectiveLogic": sillytavern_code}})
    assert (chosen(ours, message) == ["TEA"]) is expected
    assert (chosen(theirs, message) == ["TEA"]) is expected


def test_secondary_keys_match_across_the_scanned_messages():
    lorebook = book({"keys": ["tea"], "secondary_keys": ["grandma"], "selective_logic": "and_all", "content": "TEA"})
    assert chosen(lorebook, "grandma called", "let's have tea") == ["TEA"]


def test_selective_false_ignores_secondary_keys():
    lorebook = book({"keys": ["tea"], "secondary_keys": ["grandma"], "selective": False, "content": "TEA"})
    assert chosen(lorebook, "tea alone") == ["TEA"]


def test_chinese_secondary_keys():
    lorebook = book({"keys": ["茶"], "secondary_keys": ["外婆", "桂花"], "content": "桂花乌龙"})
    assert chosen(lorebook, "想喝外婆泡的茶") == ["桂花乌龙"]
    assert chosen(lorebook, "想喝茶") == []


def test_scan_depth_default_book_call_and_entry():
    lorebook = book({"keys": ["dragon"], "content": "DRAGON"})
    messages = ["a dragon appeared", "oh no", "run"]
    assert DEFAULT_SCAN_DEPTH == 2
    assert chosen(lorebook, *messages) == []
    assert chosen(lorebook, *messages, scan_depth=3) == ["DRAGON"]
    assert chosen(book({"keys": ["dragon"], "content": "DRAGON"}, scan_depth=3), *messages) == ["DRAGON"]
    assert chosen(book({"keys": ["dragon"], "content": "DRAGON", "scan_depth": 3}), *messages) == ["DRAGON"]
    assert chosen(book({"keys": ["dragon"], "content": "DRAGON", "extensions": {"scan_depth": 3}}), *messages) == [
        "DRAGON"
    ]
    decorated = book({"keys": ["dragon"], "content": "@@scan_depth 3\nDRAGON"})
    assert format_lore(select_lore(decorated, messages, count_characters, 100)) == "DRAGON"
    assert chosen(lorebook, *messages, scan_depth=0) == []


def test_constant_and_disabled_entries():
    lorebook = book(
        {"keys": [], "content": "WORLD", "constant": True},
        {"keys": ["dragon"], "content": "OFF", "enabled": False},
        {"keys": [], "content": "CONSTANT BUT OFF", "constant": True, "enabled": False},
        {"keys": ["dragon"], "content": ""},
    )
    assert chosen(lorebook, "a dragon") == ["WORLD"]
    assert chosen(lorebook) == ["WORLD"]


def test_decorators_activate_and_dont_activate_and_are_stripped():
    lorebook = book(
        {"keys": [], "content": "@@activate\nALWAYS"},
        {"keys": ["dragon"], "content": "@@dont_activate\nNEVER"},
        {"keys": ["dragon"], "content": "@@unknown_thing 4\n@@@activate\nFALLBACK"},
    )
    assert chosen(lorebook, "a dragon") == ["@@activate\nALWAYS", "@@unknown_thing 4\n@@@activate\nFALLBACK"]
    entries = select_lore(lorebook, ["a dragon"], count_characters, 1000)
    assert format_lore(entries) == "ALWAYS\n\nFALLBACK"


def test_parse_decorators_keeps_only_the_first_of_a_name():
    decorators, text = parse_decorators("@@scan_depth 5\n@@scan_depth 9\n@@activate\n\nBody\n@@not_a_decorator")
    assert decorators == {"scan_depth": "5", "activate": ""}
    assert text == "\nBody\n@@not_a_decorator".strip("\n")


def test_output_order_constant_first_then_insertion_order_then_book_position():
    lorebook = book(
        {"keys": ["x"], "content": "B-30", "insertion_order": 30},
        {"keys": ["x"], "content": "C-10", "insertion_order": 10},
        {"keys": [], "content": "K-50", "constant": True, "insertion_order": 50},
        {"keys": ["x"], "content": "D-10", "insertion_order": 10},
        {"keys": [], "content": "K-5", "constant": True, "insertion_order": 5},
    )
    assert chosen(lorebook, "x") == ["K-5", "K-50", "C-10", "D-10", "B-30"]


def test_budget_keeps_constants_then_higher_priority_and_fills_the_rest():
    lorebook = book(
        {"keys": ["x"], "content": "low" * 3, "insertion_order": 1},  # 9 characters
        {"keys": ["x"], "content": "high-big" * 3, "insertion_order": 2, "priority": 50},  # 24
        {"keys": [], "content": "constant!", "constant": True, "insertion_order": 99},  # 9
        {"keys": ["x"], "content": "mid", "insertion_order": 3, "priority": 10},  # 3
    )
    assert chosen(lorebook, "x", budget=9 + 24 + 3) == ["constant!", "high-big" * 3, "mid"]
    # The big one does not fit; smaller, lower-priority ones still do.
    assert chosen(lorebook, "x", budget=9 + 9 + 3) == ["constant!", "lowlowlow", "mid"]
    assert chosen(lorebook, "x", budget=8) == ["mid"]
    assert chosen(lorebook, "x", budget=0) == []


def test_book_token_budget_caps_the_callers_budget():
    lorebook = book({"keys": ["x"], "content": "12345"}, {"keys": ["x"], "content": "678"}, token_budget=4)
    assert chosen(lorebook, "x", budget=100) == ["678"]


def test_budget_is_spent_on_text_without_decorators():
    lorebook = book({"keys": [], "content": "@@activate\nabc"})
    assert chosen(lorebook, budget=3) == ["@@activate\nabc"]


def test_recursive_scanning_follows_entry_content_with_a_limit():
    entries = [
        {"keys": ["castle"], "content": "The castle belongs to the duke."},
        {"keys": ["duke"], "content": "The duke has a sword."},
        {"keys": ["sword"], "content": "The sword is named Dawn."},
        {"keys": ["Dawn"], "content": "Dawn was forged by elves."},
        {"keys": ["elves"], "content": "Elves left long ago."},
        {"keys": ["duke"], "content": "The duke's secret.", "extensions": {"exclude_recursion": True}},
    ]
    assert chosen(book(*entries), "the castle") == ["The castle belongs to the duke."]
    recursive = chosen(book(*entries, recursive_scanning=True), "the castle")
    # The first scan plus MAX_RECURSION_PASSES (3) rounds: elves are four steps away.
    assert recursive == [entry["content"] for entry in entries[:4]]


def test_prevent_recursion_content_does_not_trigger_others():
    lorebook = book(
        {"keys": ["castle"], "content": "The castle belongs to the duke.", "extensions": {"prevent_recursion": True}},
        {"keys": ["duke"], "content": "DUKE"},
        recursive_scanning=True,
    )
    assert chosen(lorebook, "the castle") == ["The castle belongs to the duke."]


def test_selection_is_deterministic():
    lorebook = book(*({"keys": [f"k{i}"], "content": f"entry {i}", "insertion_order": i % 3} for i in range(20)))
    message = " ".join(f"k{i}" for i in range(20))
    first = select_lore(lorebook, [message], count_characters, 60)
    assert all(select_lore(lorebook, [message], count_characters, 60) == first for _ in range(5))


def test_blank_keys_are_ignored():
    lorebook = book({"keys": ["", "  "], "content": "NEVER"})
    assert chosen(lorebook, "anything at all") == []


def test_persona_lore_text_renders_macros():
    persona = validate_persona(
        {
            "id": "a",
            "name": "Alice",
            "lorebook": {"entries": [{"keys": ["garden"], "content": "{{char}} tends the garden for {{user}}."}]},
        },
        "a.toml",
    )
    assert persona.lore_text(["show me the garden"], "Bob", count_characters, 100) == "Alice tends the garden for Bob."
    assert persona.lore_text(["nothing"], "Bob", count_characters, 100) == ""


cjk_text = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=30)


@settings(max_examples=50, deadline=None)
@given(before=cjk_text, key=cjk_text.filter(bool), after=cjk_text)
def test_chinese_key_matches_anywhere_inside_chinese_text(before, key, after):
    lorebook = book({"keys": [key], "content": "HIT"})
    assert chosen(lorebook, before + key + after) == ["HIT"]
