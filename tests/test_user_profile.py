"""Reading /me: a name, a description, or both, in English and Chinese."""

import pytest

from bot.user_profile import MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MeRequest, parse_me


@pytest.mark.parametrize("args, expected", [
    (None, MeRequest("show")),
    ("   ", MeRequest("show")),
    ("clear", MeRequest("clear")),
    ("清除", MeRequest("clear")),
    ("Alice — a night-shift nurse who loves cats", MeRequest("set", "Alice", "a night-shift nurse who loves cats")),
    ("Alice - loves cats - and tea", MeRequest("set", "Alice", "loves cats - and tea")),
    ("Mary-Jane: a painter", MeRequest("set", "Mary-Jane", "a painter")),
    ("Alice | nurse", MeRequest("set", "Alice", "nurse")),
    ("小雨，一个爱猫的夜班护士", MeRequest("set", "小雨", "一个爱猫的夜班护士")),
    ("小雨：喜欢下雨天", MeRequest("set", "小雨", "喜欢下雨天")),
    ("  Mary   Ann  ", MeRequest("set", "Mary Ann")),
    ("小雨", MeRequest("set", "小雨")),
    ("— loves rainy days", MeRequest("set", None, "loves rainy days")),
    ("I work nights and I love cats", MeRequest("set", None, "I work nights and I love cats")),
    ("我是一个喜欢猫的夜班护士", MeRequest("set", None, "我是一个喜欢猫的夜班护士")),
    ("Alice:", MeRequest("set", "Alice", None)),
])
def test_parse_me(args, expected):
    assert parse_me(args) == expected


def test_long_names_and_descriptions_are_refused():
    assert parse_me("A — " + "x" * MAX_DESCRIPTION_CHARS).too_long is False
    assert parse_me("A — " + "x" * (MAX_DESCRIPTION_CHARS + 1)).too_long
    assert parse_me("n" * (MAX_NAME_CHARS + 1) + " — nurse").too_long
