"""The text catalogue: every text in every language, with the same placeholders, and every
key the code asks for exists."""

import re
import string
from pathlib import Path

import pytest

from bot.texts import CATALOGUE, LANGUAGES, error_text, language_of, text

ROOT = Path(__file__).resolve().parent.parent


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_text_exists_in_every_language_with_the_same_placeholders(key):
    entry = CATALOGUE[key]
    assert set(entry) == set(LANGUAGES), key
    assert all(entry[language].strip() for language in LANGUAGES), key
    assert placeholders(entry["en"]) == placeholders(entry["zh"]), key


def test_every_key_the_code_asks_for_is_in_the_catalogue():
    asked = set()
    for path in (ROOT / "bot").rglob("*.py"):
        asked |= set(re.findall(r"""\btext\(\s*["']([a-z_]+\.[a-z0-9_.]+)["']""", path.read_text(encoding="utf-8")))
    assert asked and asked <= set(CATALOGUE), sorted(asked - set(CATALOGUE))


def test_languages_and_fallbacks():
    assert [language_of(code) for code in ("zh", "zh-hans", "zh-Hant", "zh-CN", "en", "de", None)] == \
        ["zh", "zh", "zh", "zh", "en", "en", "en"]
    assert text("tg.age_no", "zh-TW", age=18) == "我未满 18 岁"
    assert text("tg.age_no", "fr", age=18) == "I am under 18"
    assert error_text("no-such-kind", "en") == text("error.server", "en")
