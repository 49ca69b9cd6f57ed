"""Core benchmark: request assembly cost against history length, and the tokenizer.

Request assembly for conversations of 1k, 10k and 100k stored messages (about 100
tokens each) at 32k and 256k windows, through the engine's real path (persisted
boundary, history read, system text, time tail, assembly), next to the floor: reading
the same newest messages from SQLite and nothing else. Cost must follow the window,
not the history: the target is p50 <= 15 ms at 100k messages with a 256k window, and at
most 1.5x growth from 10k to 100k messages.

Also: tokenizer throughput (characters per second) on Chinese and English novels, and
the first-use load time of the o200k data in a fresh process.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import SHARED_DATA, percentile, print_table
from memory.engine import Engine, ModelSettings
from memory.model_client import ModelClient
from memory.schema import open_store
from memory.records import Owner
from memory.store import Store
from memory.tokens import count_many, count_tokens, load_encoding
from personas import PersonaLibrary

SIZES = (1_000, 10_000, 100_000)
WINDOWS = (32_768, 262_144)
RUNS = 41

_VOCABULARY = ("我们 今天 月亮 记得 喜欢 猫咪 星星 回家 故事 朋友 the river moon remember "
               "promise tea garden light quiet morning evening letter dream walk").split()


def _message_text(rng: random.Random) -> str:
    # about 100 o200k tokens of mixed Chinese and English
    return " ".join(rng.choice(_VOCABULARY) for _ in range(70))


def build_conversation(store: Store, messages: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    user = store.directory.ensure_user("local", f"bench-{messages}")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    batch = 2_000
    for start in range(0, messages, batch):
        texts = [_message_text(rng) for _ in range(min(batch, messages - start))]
        counts = count_many(texts)
        with store.db.atomic():
            for offset, (text, tokens) in enumerate(zip(texts, counts)):
                role = "user" if (start + offset) % 2 == 0 else "assistant"
                store.conversations.add_message(conversation.id, role, text, tokens=tokens,
                                  status="pending" if start + offset == messages - 1 else "complete")
    return conversation.id


def time_assembly(engine: Engine, conversation_id: int) -> tuple[list[float], int, int]:
    store = engine.store
    user = store.directory.user(store.conversations.conversation(conversation_id).user_id)
    # the first request after a long absence moves and persists the boundary, once
    first = engine.build_request(store.conversations.conversation(conversation_id), user=user, query="")
    if first.boundary_moved:
        store.conversations.set_boundary(conversation_id, first.boundary_message_id)
    samples = []
    request = first
    for _ in range(RUNS):
        started = time.perf_counter()
        conversation = store.conversations.conversation(conversation_id)
        request = engine.build_request(conversation, user=user, query="")
        samples.append((time.perf_counter() - started) * 1000)
    history = sum(1 for m in request.messages if m.section == "history") + 1
    return samples, history, request.total_tokens


def time_floor(store: Store, conversation_id: int, count: int) -> list[float]:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        rows = store.db.execute(
            "SELECT id, role, content, tokens FROM messages WHERE conversation_id = ? "
            "ORDER BY id DESC LIMIT ?", [conversation_id, count]).fetchall()
        rows.reverse()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def tokenizer_figures() -> dict:
    load_encoding()
    figures = {}
    sources = {
        "chinese": SHARED_DATA / "xiyouji.utf8.txt",
        "english": SHARED_DATA / "pride_and_prejudice.txt",
    }
    for language, path in sources.items():
        if path.exists():
            text = path.read_text(encoding="utf-8-sig")[:500_000]
        else:  # shared data absent: synthetic text of the same script
            rng = random.Random(1)
            words = [w for w in _VOCABULARY if w.isascii() == (language == "english")]
            text = " ".join(rng.choice(words) for _ in range(120_000))[:500_000]
        started = time.perf_counter()
        tokens = count_tokens(text)
        seconds = time.perf_counter() - started
        paragraphs = [p for p in text.split("\n") if p]
        started = time.perf_counter()
        count_many(paragraphs)
        batch_seconds = time.perf_counter() - started
        figures[language] = {"chars": len(text), "tokens": tokens, "chars_per_second": len(text) / seconds,
                             "batched_chars_per_second": len(text) / batch_seconds}
    code = ("import time; t = time.perf_counter(); from memory.tokens import load_encoding; "
            "load_encoding(); print(time.perf_counter() - t)")
    loads = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True, cwd=Path(__file__).resolve().parents[1]).stdout)
             for _ in range(3)]
    figures["first_use_load_seconds"] = statistics.median(loads)
    return figures


def run() -> dict:
    results: dict = {"assembly": [], "tokenizer": {}}
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "bench.db")
        client = ModelClient(base_url="http://127.0.0.1:9/v1", api_key="unused")
        conversations = {size: build_conversation(store, size) for size in SIZES}
        for window in WINDOWS:
            settings = ModelSettings(model="bench", window=window, reply_tokens=min(4096, window // 4),
                                     tail_tokens=window // 10)
            for size in SIZES:
                # a fresh engine per cell, and each conversation's boundary reset, so each
                # window starts from the same state
                engine = Engine(store, client, PersonaLibrary(), settings)
                with store.db.atomic():
                    store.db.execute("UPDATE conversations SET boundary_message_id = 0 WHERE id = ?",
                                     [conversations[size]])
                samples, history_messages, total = time_assembly(engine, conversations[size])
                floor = time_floor(store, conversations[size], history_messages)
                results["assembly"].append({
                    "messages": size, "window": window, "history_messages_sent": history_messages,
                    "request_tokens": total,
                    "assembly_p50_ms": percentile(samples, 50), "assembly_p95_ms": percentile(samples, 95),
                    "floor_p50_ms": percentile(floor, 50),
                })
        store.close()
    for window in WINDOWS:
        cells = {r["messages"]: r for r in results["assembly"] if r["window"] == window}
        results.setdefault("growth_10k_to_100k", {})[str(window)] = (
            cells[100_000]["assembly_p50_ms"] / cells[10_000]["assembly_p50_ms"])
    results["tokenizer"] = tokenizer_figures()
    target = next(r for r in results["assembly"] if r["messages"] == 100_000 and r["window"] == 262_144)
    results["targets"] = {
        "p50_at_100k_256k_ms": target["assembly_p50_ms"], "p50_target_ms": 15,
        "growth_256k": results["growth_10k_to_100k"][str(262_144)], "growth_target": 1.5,
    }
    return results


def report(results: dict) -> None:
    print_table(
        "Request assembly (ms) against stored messages",
        ["messages", "window", "sent msgs", "tokens", "p50", "p95", "floor p50"],
        [[r["messages"], r["window"], r["history_messages_sent"], r["request_tokens"],
          f"{r['assembly_p50_ms']:.2f}", f"{r['assembly_p95_ms']:.2f}", f"{r['floor_p50_ms']:.2f}"]
         for r in results["assembly"]],
    )
    for window, growth in results["growth_10k_to_100k"].items():
        print(f"growth of p50 from 10k to 100k messages at window {window}: {growth:.2f}x (target <= 1.5x)")
    tokenizer = results["tokenizer"]
    print_table(
        "Tokenizer (o200k_base)",
        ["text", "chars", "tokens", "chars/s", "chars/s batched"],
        [[name, f["chars"], f["tokens"], f"{f['chars_per_second']:,.0f}", f"{f['batched_chars_per_second']:,.0f}"]
         for name, f in tokenizer.items() if isinstance(f, dict)],
    )
    print(f"first-use load time (fresh process): {tokenizer['first_use_load_seconds'] * 1000:.0f} ms")
