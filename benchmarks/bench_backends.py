"""Backends: the core storage on SQLite and on PostgreSQL, side by side, in one run.

One conversation is filled with HISTORY messages (sentences of 西游记 and Pride and
Prejudice, alternating user and assistant, as a long companion chat would hold), on a
SQLite file and on a fresh database of a throwaway PostgreSQL cluster
(tests/postgres_server.py; or the server COMPANION_TEST_DATABASE_URL names). Then, for
each backend, in alternating rounds:
- store a message (`add_message`: row, token count given, index row, commit): the
  per-turn write, twice a turn;
- read the window (`conversation` + `history_since` from a boundary WINDOW messages
  back): the per-turn read of request assembly;
- search (`search_messages`, the /search command), for Chinese names and English words,
  each query's best 10;
- recall (`RecallProvider.rank`: the per-turn search of the history beyond the window,
  query analysis, candidates and scoring) for questions asked the way people ask them.
Figures: p50 and p95 per operation, and PostgreSQL's p50 as a multiple of SQLite's (the
issue's bar: within 2x). Both run in this process over local sockets or files; the
PostgreSQL server's own CPU is on the other core.

`BENCH_BACKENDS_HISTORY` (default 20000) and `BENCH_BACKENDS_ROUNDS` (default 200) set
the size.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from benchmarks.common import percentile, print_table
from memory.recall import RecallProvider
from memory.records import Owner
from memory.schema import open_postgres_store, open_store
from memory.tokens import count_tokens

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
HISTORY = int(os.environ.get("BENCH_BACKENDS_HISTORY", "20000"))
ROUNDS = int(os.environ.get("BENCH_BACKENDS_ROUNDS", "200"))
WINDOW = 2000
QUERIES = ["悟空", "唐僧", "八戒", "观音菩萨", "花果山", "Elizabeth", "Darcy", "Netherfield", "sister letter",
           "悟空 师父"]
QUESTIONS = ["悟空在花果山做什么？", "Who did Elizabeth dance with at the ball?", "唐僧怎么收的八戒？",
             "What did Mr. Darcy write in his letter?", "观音菩萨说了什么？", "Was Netherfield let at last?"]
OPERATIONS = ("store a message", "read the window", "search", "recall")


def sentences() -> list[str]:
    chinese = re.split(r"(?<=[。！？])", (DATA / "xiyouji.utf8.txt").read_text(encoding="utf-8"))
    english = re.split(r"(?<=[.!?])\s+", (DATA / "pride_and_prejudice.txt").read_text(encoding="utf-8"))
    lines = [s.strip() for pair in zip(chinese, english) for s in pair if len(s.strip()) > 8]
    wanted = HISTORY + ROUNDS  # past the novels' length, they are told again
    return [lines[i % len(lines)] for i in range(wanted)]


def fill(store, lines: list[str]) -> tuple[int, Owner]:
    owner = Owner.user(store.directory.ensure_user("bench", 1).id)
    conversation = store.conversations.start_conversation(owner, "assistant")
    for start in range(0, len(lines), 500):  # a day's chat at a time, as it would arrive
        with store.transaction():
            for i, line in enumerate(lines[start:start + 500], start):
                store.conversations.add_message(conversation.id, "user" if i % 2 == 0 else "assistant", line,
                                                tokens=count_tokens(line))
    return conversation.id, owner


def measure(store, conversation_id: int, owner: Owner, extra: list[str], timings: dict, recall) -> None:
    for i, line in enumerate(extra):
        started = time.perf_counter()
        store.conversations.add_message(conversation_id, "user", line, tokens=len(line))
        timings["store a message"].append(time.perf_counter() - started)
        started = time.perf_counter()
        conversation = store.conversations.conversation(conversation_id)
        rows = store.conversations.history_since(conversation.id, timings["boundary"])
        timings["read the window"].append(time.perf_counter() - started)
        assert len(rows) >= WINDOW
        query = QUERIES[i % len(QUERIES)]
        started = time.perf_counter()
        store.conversations.search_messages(owner, query, limit=10)
        timings["search"].append(time.perf_counter() - started)
        started = time.perf_counter()
        recall.rank(conversation, QUESTIONS[i % len(QUESTIONS)], window=(conversation.id, timings["boundary"]))
        timings["recall"].append(time.perf_counter() - started)


def run() -> dict:
    from tests.postgres_server import NoPostgres, PostgresServer

    lines = sentences()
    history, extra = lines[:HISTORY], lines[HISTORY:]
    url = os.environ.get("COMPANION_TEST_DATABASE_URL")
    try:
        server = PostgresServer.existing(url) if url else PostgresServer.start()
    except NoPostgres as error:
        print(f"skipped: no PostgreSQL server ({error})")
        return {"skipped": str(error)}
    results: dict = {"history": HISTORY, "rounds": ROUNDS, "window": WINDOW, "backends": {}}
    try:
        with tempfile.TemporaryDirectory() as folder, server.fresh_database() as database:
            stores = {"sqlite": open_store(Path(folder) / "bench.db"), "postgresql": open_postgres_store(database)}
            setups, timings = {}, {}
            for name, store in stores.items():
                started = time.perf_counter()
                conversation_id, owner = fill(store, history)
                setups[name] = (conversation_id, owner, time.perf_counter() - started)
                # what autovacuum (PostgreSQL: statistics, and the GIN index's pending list merged)
                # and optimize (SQLite) keep doing on a running bot
                store.db.execute("VACUUM ANALYZE" if name == "postgresql" else "ANALYZE")
                first = [m.id for m in store.conversations.messages(conversation_id, limit=WINDOW)][0]
                timings[name] = {**{op: [] for op in OPERATIONS}, "boundary": first}
            recalls = {name: RecallProvider(store) for name, store in stores.items()}
            # alternate the backends in rounds of 10, so a busy moment hits both alike
            for start in range(0, len(extra), 10):
                for name, store in stores.items():
                    conversation_id, owner, _ = setups[name]
                    measure(store, conversation_id, owner, extra[start:start + 10], timings[name], recalls[name])
            for name, store in stores.items():
                found = {q: len(store.conversations.search_messages(setups[name][1], q, limit=1000)) for q in QUERIES}
                results["backends"][name] = {
                    "fill_s": setups[name][2], "found_per_query": found,
                    **{f"{op}_p50_ms": percentile(timings[name][op], 50) * 1000
                       for op in OPERATIONS},
                    **{f"{op}_p95_ms": percentile(timings[name][op], 95) * 1000
                       for op in OPERATIONS},
                }
                store.close()
    finally:
        if not url:
            server.stop()
    sqlite, postgres = results["backends"]["sqlite"], results["backends"]["postgresql"]
    results["postgres_over_sqlite_p50"] = {
        op: postgres[f"{op}_p50_ms"] / sqlite[f"{op}_p50_ms"] for op in OPERATIONS}
    return results


def report(results: dict) -> None:
    if "skipped" in results:
        return
    sqlite, postgres = results["backends"]["sqlite"], results["backends"]["postgresql"]
    rows = []
    for op in OPERATIONS:
        rows.append([op, f"{sqlite[f'{op}_p50_ms']:.2f} / {sqlite[f'{op}_p95_ms']:.2f}",
                     f"{postgres[f'{op}_p50_ms']:.2f} / {postgres[f'{op}_p95_ms']:.2f}",
                     f"{results['postgres_over_sqlite_p50'][op]:.2f}x"])
    rows.append(["fill (s)", f"{sqlite['fill_s']:.1f}", f"{postgres['fill_s']:.1f}",
                 f"{postgres['fill_s'] / sqlite['fill_s']:.2f}x"])
    print_table(f"core storage, {results['history']:,} messages, window {results['window']:,}, "
                f"{results['rounds']} rounds (ms p50 / p95)",
                ["operation", "SQLite", "PostgreSQL", "PG / SQLite p50"], rows)
    same = sqlite["found_per_query"] == postgres["found_per_query"]
    print(f"search finds the same number of messages per query on both: {same}")
    if not same:
        print(f"  SQLite {sqlite['found_per_query']}\n  PostgreSQL {postgres['found_per_query']}")
