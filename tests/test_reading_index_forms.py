"""The bulk index form tokenizes exactly as textsearch.index_form, through FTS5 itself."""

import re
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from memory.reading.index_forms import index_forms
from memory.textsearch import index_form

SAMPLES = ["孙悟空说：“俺老孙来也！”", "a孙b", "abc孙悟空def", "孙", "", "𠀀𠀁x", "カタカナと한국어", "é孙悟 Mr. Darcy",
           "第一回　灵根育孕源流出\n\n　　诗曰：", "plain English only."]
_WORD = re.compile(r"\w+")


def fts_tokens(connection, text: str) -> list[str]:
    connection.execute("DELETE FROM probe")
    connection.execute("INSERT INTO probe (rowid, body) VALUES (1, ?)", [text])
    return [row[0] for row in connection.execute("SELECT term FROM probe_terms ORDER BY offset")]


def test_same_fts5_tokens_in_the_same_order():
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE probe USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')")
    connection.execute("CREATE VIRTUAL TABLE probe_terms USING fts5vocab(probe, instance)")
    for text, bulk in zip(SAMPLES, index_forms(SAMPLES), strict=True):
        assert fts_tokens(connection, bulk) == fts_tokens(connection, index_form(text)), text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("孙悟空八戒ab é\n，。𠀀カ한1"), max_size=30), max_size=8))
def test_any_mix_of_scripts(texts):
    assert [_WORD.findall(form) for form in index_forms(texts)] == [_WORD.findall(index_form(t)) for t in texts]
