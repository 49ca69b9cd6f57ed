from hypothesis import given
from hypothesis import strategies as st
import pytest

from memory.documents.numerals import (
    parse_chinese_number,
    parse_english_number,
    parse_heading_number,
    parse_roman_number,
)

DIGITS = "零一二三四五六七八九"
CAPITAL_DIGITS = "零壹贰叁肆伍陆柒捌玖"


def to_chinese(number: int, digits: str = DIGITS, units: str = "十百千", drop_leading_one: bool = True) -> str:
    """Standard Chinese numerals, written independently of the parser under test."""
    if number == 0:
        return digits[0]
    if number >= 100_000_000:
        high, low = divmod(number, 100_000_000)
        return to_chinese(high, digits, units, drop_leading_one) + "亿" + _tail(low, 10_000_000, digits, units)
    if number >= 10_000:
        high, low = divmod(number, 10_000)
        return to_chinese(high, digits, units, drop_leading_one) + "万" + _tail(low, 1000, digits, units)
    text = ""
    zero_pending = False
    for power, unit in ((1000, units[2]), (100, units[1]), (10, units[0]), (1, "")):
        digit = number // power % 10
        if digit == 0:
            zero_pending = bool(text)
            continue
        if zero_pending:
            text += digits[0]
            zero_pending = False
        if not (drop_leading_one and digit == 1 and power == 10 and not text):
            text += digits[digit]
        text += unit
    return text


def _tail(low: int, zero_below: int, digits: str, units: str) -> str:
    if low == 0:
        return ""
    prefix = digits[0] if low < zero_below else ""
    return prefix + to_chinese(low, digits, units, drop_leading_one=False)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("一", 1),
        ("十", 10),
        ("十二", 12),
        ("二十", 20),
        ("一十二", 12),
        ("九十九", 99),
        ("一百", 100),
        ("一百零五", 105),
        ("一百一十", 110),
        ("一百二十", 120),
        ("一百二", 120),
        ("两百", 200),
        ("兩百五十", 250),
        ("一千零一", 1001),
        ("一千二百三十四", 1234),
        ("两千零二十五", 2025),
        ("一万", 10000),
        ("一万零一", 10001),
        ("三万五", 35000),
        ("一亿二千万", 120_000_000),
        ("一二零", 120),
        ("二〇二四", 2024),
        ("一〇八", 108),
        ("一○八", 108),
        ("零", 0),
        ("〇", 0),
        ("廿", 20),
        ("廿三", 23),
        ("卅", 30),
        ("卅一", 31),
        ("卌", 40),
        ("壹", 1),
        ("拾", 10),
        ("壹佰贰拾叁", 123),
        ("壹贰叁", 123),
        ("貳拾", 20),
        ("陸拾陸", 66),
        ("12", 12),
        ("１２", 12),
        ("1２0", 120),
        ("3百", 300),
    ],
)
def test_chinese_numbers_in_every_notation(text, value):
    assert parse_chinese_number(text) == value


@pytest.mark.parametrize("text", ["", " ", "第", "十十", "百千", "廿廿", "三廿", "abc", "一x", "章"])
def test_not_a_chinese_number(text):
    assert parse_chinese_number(text) is None


@given(st.integers(min_value=0, max_value=999_999))
def test_round_trip_standard_form(number):
    assert parse_chinese_number(to_chinese(number)) == number


@given(st.integers(min_value=1, max_value=99_999))
def test_round_trip_capital_forms(number):
    written = to_chinese(number, CAPITAL_DIGITS, "拾佰仟", drop_leading_one=False)
    assert parse_chinese_number(written) == number


@given(st.integers(min_value=0, max_value=10**9))
def test_round_trip_digit_by_digit(number):
    assert parse_chinese_number("".join("〇一二三四五六七八九"[int(d)] for d in str(number))) == number


@given(st.integers(min_value=0, max_value=10**6))
def test_round_trip_full_width_digits(number):
    assert parse_chinese_number(str(number).translate(str.maketrans("0123456789", "０１２３４５６７８９"))) == number


@pytest.mark.parametrize(
    ("text", "value"), [("I", 1), ("iv", 4), ("XII", 12), ("xl", 40), ("XLIX", 49), ("MCMXCIV", 1994), ("LXI", 61)]
)
def test_roman_numbers(text, value):
    assert parse_roman_number(text) == value


@pytest.mark.parametrize("text", ["", "IIII", "VV", "IC", "ABC", "MMMMM"])
def test_not_roman(text):
    assert parse_roman_number(text) is None


@pytest.mark.parametrize(
    ("text", "value"), [("one", 1), ("Twelve", 12), ("twenty", 20), ("Twenty-One", 21), ("forty two", 42), ("hundred", 100)]
)
def test_english_number_words(text, value):
    assert parse_english_number(text) == value


@pytest.mark.parametrize("text", ["", "twenty-twenty", "one two", "eleventy"])
def test_not_english_numbers(text):
    assert parse_english_number(text) is None


def test_heading_number_tries_every_notation():
    assert parse_heading_number("十二") == 12
    assert parse_heading_number("XII") == 12
    assert parse_heading_number("twelve") == 12
    assert parse_heading_number("12") == 12
    assert parse_heading_number("dozen") is None
