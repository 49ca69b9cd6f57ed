"""The throwaway PostgreSQL server the PostgreSQL tests run against (tests/postgres_server.py).

These pin what the backend's tests rely on: a real server that accepts connections on
127.0.0.1, a fresh empty database per test that is gone afterwards, UTF-8 text, the
`pg_trgm` extension, and the `simple` text-search configuration keeping the CJK bigrams
of `memory.textsearch.index_form` as lexemes with their positions, so a phrase of
bigrams finds a two-character name inside a longer one, as the SQLite index does.
"""

from __future__ import annotations

import os

import psycopg
import pytest

from memory.textsearch import index_form


def test_a_fresh_database_per_test_on_a_real_server(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone()[0]
        encoding = connection.execute("SHOW server_encoding").fetchone()[0]
        connection.execute("CREATE TABLE mark (text TEXT)")
        connection.execute("INSERT INTO mark VALUES ('孙悟空 🐒')")
        stored = connection.execute("SELECT text FROM mark").fetchone()[0]
    assert postgres_url.startswith("postgresql://") and "@127.0.0.1:" in postgres_url
    assert tables == 0
    assert encoding == "UTF8"
    assert stored == "孙悟空 🐒"


def test_a_fresh_database_is_dropped_afterwards(postgres_server) -> None:
    with postgres_server.fresh_database() as url:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url) as connection:
            connection.execute("CREATE TABLE kept_until_the_end (id INT)")
    with psycopg.connect(postgres_server.url) as admin:
        left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]
    assert left == 0


def test_the_server_does_not_run_as_root(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        folder = connection.execute("SHOW data_directory").fetchone()[0]
    if os.path.exists(folder):  # a server of this machine (not one named by COMPANION_TEST_DATABASE_URL elsewhere)
        assert os.stat(folder).st_uid != 0


def test_bigram_phrases_find_a_chinese_name_inside_a_longer_one(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        connection.execute("CREATE TABLE passages (id INT, words TSVECTOR)")
        rows = [(1, "那猴王孙悟空大闹天宫。"), (2, "唐僧骑着白马。"), (3, "Mr. Darcy walked to Netherfield.")]
        for number, text in rows:
            connection.execute("INSERT INTO passages VALUES (%s, to_tsvector('simple', %s))",
                               (number, index_form(text)))
        find = lambda query: [row[0] for row in connection.execute(  # noqa: E731
            "SELECT id FROM passages WHERE words @@ to_tsquery('simple', %s) ORDER BY id", (query,))]
        assert find("悟空") == [1]  # one bigram
        assert find("孙悟 <-> 悟空") == [1]  # a phrase of bigrams: 孙悟空 in a row
        assert find("悟空 <-> 孙悟") == []  # the same bigrams out of order do not match
        assert find("darcy") == [3]  # lowercased English words
        assert find("唐:*") == [2]  # a lone character: any bigram starting with it
        similarity = connection.execute("SELECT similarity('Netherfield', 'netherfield park')").fetchone()[0]
    assert similarity > 0.5


@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_query_has_no_terms(query: str, postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT plainto_tsquery('simple', %s)::text", (query,)).fetchone()[0] == ""
