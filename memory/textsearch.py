"""Full-text search that works for Chinese as well as English.

SQLite's FTS5 `unicode61` tokenizer splits on spaces and punctuation, so a Chinese
sentence becomes one giant token and a name inside it is never found; the `trigram`
tokenizer cannot match two-character names such as 悟空. We index CJK text as
overlapping character bigrams instead ("孙悟空说" -> "孙悟 悟空 空说"), and leave other
scripts to `unicode61` (which lowercases and folds diacritics). A query is transformed
the same way, and a CJK word becomes a phrase of its bigrams, so "悟空" matches inside
"孙悟空", and "孙悟空" matches only the three characters in a row.

This needs no dictionary and no segmenter, gives stable results for names the
segmenter does not know, and keeps the index a plain FTS5 table.

On PostgreSQL the same `index_form`, its words split and folded as `unicode61` does them
(`tsvector_text`), goes into a `tsvector` with the `simple` configuration (lowercasing,
no stemming, no stop words), and
`tsquery_expression` says the same query in tsquery syntax: a CJK word is a phrase of its
bigrams (`'孙悟' <-> '悟空'`), a lone character a prefix (`'悟':*`). Both backends thus
find the same messages for the same words.
"""

from __future__ import annotations

import re
import unicodedata

# Han (incl. extensions), kana and Hangul: scripts written without spaces.
_CJK_CHARS = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
    "\U00020000-\U0002ffff"
)
_CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
_QUERY_TERM = re.compile(f"[{_CJK_CHARS}]+|[^\\s{_CJK_CHARS}]+")
_WORD_CHARS = re.compile(r"[\w]+", re.UNICODE)


def _bigrams(run: str) -> str:
    if len(run) == 1:
        return run
    return " ".join(run[i:i + 2] for i in range(len(run) - 1))


def index_form(text: str) -> str:
    """The text as the FTS index should see it: CJK runs replaced by their bigrams."""
    return _CJK_RUN.sub(lambda m: f" {_bigrams(m.group())} ", text)


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def query_terms(query: str) -> list[str]:
    """FTS5 terms for a user query: one phrase per CJK word, one quoted token per other word."""
    terms: list[str] = []
    for piece in _QUERY_TERM.findall(query):
        if _CJK_RUN.fullmatch(piece):
            if len(piece) == 1:
                terms.append(_quote(piece) + "*")  # a lone character: any bigram starting with it
            else:
                terms.append(_quote(_bigrams(piece)))
        else:
            for word in _WORD_CHARS.findall(piece):
                terms.append(_quote(word))
    return terms


def match_expression(query: str, *, require_all: bool = True) -> str | None:
    """An FTS5 MATCH expression, or None when the query has nothing searchable.

    `require_all` is what a person typing a search expects; recall ranks with any term.
    """
    terms = query_terms(query)
    if not terms:
        return None
    return (" AND " if require_all else " OR ").join(terms)


def fold_diacritics(text: str) -> str:
    """The text without combining marks (NFKD, marks dropped), as FTS5's unicode61 with
    `remove_diacritics 2` sees it: "Zürich" as "Zurich"."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


_INDEX_WORD = re.compile(r"[^\W_]+")  # unicode61's tokens: letters and digits, split at "_", ".", "-"


def tsvector_text(index_text: str) -> str:
    """Text in `index_form` as PostgreSQL's `simple` parser must see it to index what FTS5
    indexes: its words split as unicode61 splits them (its parser would keep "example.com",
    "3.14" or "snake_case" whole), diacritics folded, one space apart."""
    return " ".join(_INDEX_WORD.findall(fold_diacritics(index_text)))


def tsquery_lexeme(term: str) -> str:
    """A term as one `to_tsquery` lexeme (quoted, so `&`, `:` or `!` in it are literal)."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery_expression(query: str, *, require_all: bool = True) -> str | None:
    """The PostgreSQL `to_tsquery('simple', …)` form of `match_expression`, or None."""
    terms: list[str] = []
    for piece in _QUERY_TERM.findall(query):
        if _CJK_RUN.fullmatch(piece):
            if len(piece) == 1:
                terms.append(tsquery_lexeme(piece) + ":*")
            else:
                terms.append("(" + " <-> ".join(tsquery_lexeme(piece[i:i + 2]) for i in range(len(piece) - 1)) + ")")
        else:
            terms.extend(tsquery_lexeme(word) for word in _INDEX_WORD.findall(fold_diacritics(piece.lower())))
    if not terms:
        return None
    return (" & " if require_all else " | ").join(terms)
