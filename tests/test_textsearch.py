"""CJK bigram indexing and query building for FTS5."""

import sqlite3

from memory.textsearch import index_form, match_expression, query_terms


def search(texts: list[str], query: str, require_all: bool = True) -> list[int]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2')")
    for i, text in enumerate(texts):
        db.execute("INSERT INTO t (rowid, body) VALUES (?, ?)", (i, index_form(text)))
    expression = match_expression(query, require_all=require_all)
    return [row[0] for row in db.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", (expression,))]


def test_index_form_turns_cjk_runs_into_bigrams():
    assert index_form("孙悟空说") == " 孙悟 悟空 空说 "
    assert index_form("Hello 猴").strip() == "Hello  猴".strip()


def test_two_character_name_matches_inside_a_sentence():
    texts = ["那孙悟空一筋斗翻上云端", "八戒在后面跟着", "The monkey king flew"]
    assert search(texts, "悟空") == [0]
    assert search(texts, "孙悟空") == [0]
    assert search(texts, "空一") == [0]
    assert search(texts, "悟能") == []


def test_three_characters_must_be_consecutive():
    assert search(["孙行者与悟空", "孙悟空"], "孙悟空") == [1]


def test_english_is_case_and_accent_insensitive():
    texts = ["Elizabeth Bennet walked to Netherfield", "Café au lait"]
    assert search(texts, "elizabeth") == [0]
    assert search(texts, "cafe") == [1]
    assert search(texts, "elizabeth darcy") == []
    assert search(texts, "elizabeth darcy", require_all=False) == [0]


def test_mixed_query_and_syntax_characters_are_safe():
    texts = ['他说"AND" OR NOT 悟空(齐天大圣)*', "nothing here"]
    assert search(texts, '悟空 "AND"') == [0]
    assert search(texts, "齐天大圣*") == [0]
    assert match_expression("  ...  ") is None
    assert query_terms("猴") == ['"猴"*']


def test_the_postgresql_query_says_the_same_as_fts5s():
    from memory.textsearch import tsquery_expression

    assert tsquery_expression("孙悟空 Darcy") == "('孙悟' <-> '悟空') & 'darcy'"
    assert tsquery_expression("悟 it's", require_all=False) == "'悟':* | 'it' | 's'"
    assert tsquery_expression("!!") is None
