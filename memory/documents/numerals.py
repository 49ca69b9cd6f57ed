"""Numbers as they are written in chapter headings: Chinese, Roman and English words.

Chinese chapter numbers come in every shape: positional with units (十二, 一百二十,
一百零五, 两百), digit by digit (一二零, 二〇二四), the old contractions 廿 (20), 卅
(30) and 卌 (40), the financial capitals (壹贰叁…拾佰仟), traditional forms, Arabic
and full-width digits, and colloquial elision (一百二 = 120, 三万五 = 35000). The
parser is lenient about what it accepts (a heading detector filters by sequence
afterwards) but never guesses: anything it cannot read returns None.
"""

from __future__ import annotations

import re

_DIGITS: dict[str, int] = {}
for _value, _chars in enumerate(
    (
        "0０零〇○",
        "1１一壹弌幺",
        "2２二贰貳两兩弍",
        "3３三叁參弎叄",
        "4４四肆",
        "5５五伍",
        "6６六陆陸",
        "7７七柒",
        "8８八捌",
        "9９九玖",
    )
):
    for _char in _chars:
        _DIGITS[_char] = _value
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}
_TENS = {"廿": 20, "卅": 30, "卌": 40}

#: Every character that may appear in a Chinese number (for building regexes).
CHINESE_NUMERAL_CHARS = "".join(sorted(set(_DIGITS) | set(_SMALL_UNITS) | set(_BIG_UNITS) | set(_TENS)))


def parse_chinese_number(text: str) -> int | None:
    """Read a Chinese (or Arabic, or mixed) integer; None if it is not one.

    >>> parse_chinese_number("一百二十"), parse_chinese_number("一二零"), parse_chinese_number("廿三")
    (120, 120, 23)
    """
    text = text.strip()
    if not text:
        return None
    if all(char in _DIGITS for char in text):
        value = 0
        for char in text:
            value = value * 10 + _DIGITS[char]
        return value
    return _parse_with_units(text)


def _parse_with_units(text: str) -> int | None:
    total = 0  # the part already scaled by 万/亿
    section = 0  # the part below the current 万/亿 group
    digits: int | None = None  # digits read since the last unit
    digit_count = 0
    zero_led = False  # the digits after a unit started with 零 (no elision then)
    last_unit = 0  # the last unit seen, for elision ("一百二" = 120)
    last_big = 0
    previous_was_unit = False
    for char in text:
        if char in _DIGITS:
            value = _DIGITS[char]
            if digits is None:
                digits, digit_count, zero_led = value, 1, value == 0
            else:
                digits, digit_count = digits * 10 + value, digit_count + 1
            previous_was_unit = False
        elif char in _TENS:
            if digits is not None or previous_was_unit and last_unit <= 10:
                return None
            section += _TENS[char]
            last_unit, previous_was_unit = 10, True
        elif char in _SMALL_UNITS:
            unit = _SMALL_UNITS[char]
            if previous_was_unit and digits is None and unit >= last_unit and last_unit:
                return None  # "十十", "百千": no digit between two units
            section += (1 if digits is None else digits) * unit
            digits, digit_count, zero_led = None, 0, False
            last_unit, previous_was_unit = unit, True
        elif char in _BIG_UNITS:
            unit = _BIG_UNITS[char]
            chunk = section + (digits or 0)
            if chunk == 0:
                chunk = 1
            if last_big == 0 or unit > last_big:
                total = (total + chunk) * unit
            else:
                total += chunk * unit
            section, digits, digit_count, zero_led = 0, None, 0, False
            last_unit, last_big, previous_was_unit = unit, unit, True
        else:
            return None
    if digits is not None:
        if digit_count == 1 and not zero_led and last_unit >= 100 and _ends_right_after_unit(text):
            digits *= last_unit // 10  # colloquial elision: 一百二 -> 120, 三万五 -> 35000
        section += digits
    return total + section


def _ends_right_after_unit(text: str) -> bool:
    return len(text) >= 2 and (text[-2] in _SMALL_UNITS or text[-2] in _BIG_UNITS)


_ROMAN = re.compile(r"^M{0,4}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def parse_roman_number(text: str) -> int | None:
    """Read a well-formed Roman numeral (any case); None otherwise."""
    upper = text.strip().upper()
    if not upper or not _ROMAN.match(upper):
        return None
    value = 0
    for char, following in zip(upper, upper[1:] + " ", strict=True):
        current = _ROMAN_VALUES[char]
        value += -current if following != " " and _ROMAN_VALUES[following] > current else current
    return value


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD_VALUES = {word: value for value, word in enumerate(_ONES)} | {
    word: 20 + 10 * index for index, word in enumerate(_TENS_WORDS)
}
ENGLISH_NUMBER_PATTERN = (
    r"(?:(?:" + "|".join(_TENS_WORDS) + r")(?:[- ](?:" + "|".join(_ONES[1:10]) + r"))?"
    r"|" + "|".join(sorted(_ONES, key=len, reverse=True)) + r"|hundred)"
)


def parse_english_number(text: str) -> int | None:
    """Read a number written in English words from zero to one hundred."""
    words = text.strip().lower().replace("-", " ").split()
    if words == ["hundred"] or words == ["one", "hundred"]:
        return 100
    if len(words) == 1 and words[0] in _WORD_VALUES:
        return _WORD_VALUES[words[0]]
    if len(words) == 2 and words[0] in _TENS_WORDS and words[1] in _ONES[1:10]:
        return _WORD_VALUES[words[0]] + _WORD_VALUES[words[1]]
    return None


def parse_heading_number(text: str) -> int | None:
    """Read the number of a heading in any supported notation."""
    for parse in (parse_chinese_number, parse_roman_number, parse_english_number):
        value = parse(text)
        if value is not None:
            return value
    return None
