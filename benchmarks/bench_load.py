"""Load: 60 users at one instant, then 200 users x 20 turns, against a Bot API enforcing Telegram's flood limits.

The real `companion run` process (long polling, SQLite file, drafts, formatting, default
settings; started as `tests/bot_process.py` starts it) talks to the fake Bot API and a
fake model, both served from this process. Every user writes in their own private chat
and sends their next message only after the previous reply arrived plus a think time
(seeded, so every run offers the same load): a closed loop, as people chat. "paced": a
think time of 5-10 s, still faster than people type (about 21 turns a second offered);
"closed loop": 0-1 s, far more than one process can serve (about 133 offered), which
measures the bot's capacity and shows what happens past it. The first message of each
user also creates their account.

The model answers every reply request in 1.0 s: the first token after 0.25 s, then the
rest of a 60-150 token reply (o200k tokens, drawn per turn) in chunks of about 5 tokens
spread evenly over the remaining 0.75 s, so previews (drafts) are sent as with a real
provider. Providers send 1-3 tokens per chunk; coarser chunks keep the fake's own CPU
cost (it shares 2 cores with the bot here) out of the figures, and make the bot's share
a little smaller than with a real provider too (each chunk is one JSON parse and a
callback in the bot).
Background memory work (summaries, fact extraction, embeddings) is answered at once.

The fake Bot API drives the users itself: its sendMessage handler sees a reply arrive
and schedules that user's next message on the server's own event loop, so no polling
sits between a reply and the next message. Figures:

* bot-added latency, from the bot's structured turn log: dispatcher receipt to final
  message sent, minus the model's time as the bot saw it (as `benchmarks/bench_telegram.py`);
* end to end as the user sees it: message queued at the fake Bot API to the final
  sendMessage arriving there (includes the 1 s model, long-poll delivery, the fakes);
* throughput, peak RSS of the bot process (VmHWM; VmRSS sampled), database size, the
  bot's and this process's CPU time (this process holds both fakes: if its CPU nears a
  core, the fakes, not the bot, would be the limit), Telegram calls by method;
* errors: failed turns, error lines sent to users, non-2xx Telegram calls, log records
  at error/critical level, and the stored history: every user message and every reply
  stored exactly once (lost / duplicated), none left pending.

The fake Bot API enforces Telegram's flood limits (tests/fakes/telegram_limits.py: 30
posts and edits a second for the bot, a burst of 30; 1 a second per chat, a burst of 3;
20 a minute per group) and answers 429 past them, so the figures show the bot's send
budget at work: 429s (and their share of all posts and edits), how long replies waited for
the budget (the turn log's `budget_wait_ms`), previews it skipped, the peak posts a second.

"burst" is the flood case: 60 users write at the same instant and the model streams a
600-character reply to each over 3 s. Its figure of merit is the time to the last full
reply, printed next to the earliest time the limits themselves allow: each reply's final
message can go only once its model stream has ended (as the fake model measured it), and
the bot's bucket (30 a second, a burst of 30, full at the start) lets them out no faster;
the bound schedules them greedily in that order and ignores every other cost, the bot's
own included: it has every final arrive at the instant its stream ends, which no bot can
do (it reads the stream's end, stores the reply, formats and sends it), and it refills
the bucket from the instant a final is sent, where a bot that cannot know when Telegram
counted it refills from when it reads the answer (send_budget.py). Next to it: the
quickest any final of the run arrived after its own stream ended (the one that waited
for nothing) and the bound with every final ready that much later, which is what a bot
as quick as its own best case could reach.

`LOAD_SCENARIOS=burst` (comma-separated names) runs some scenarios only;
`LOAD_BACKENDS=sqlite,postgresql` runs them on a SQLite file and then on a fresh database
of a throwaway PostgreSQL cluster (tests/postgres_server.py, or COMPANION_TEST_DATABASE_URL's
server); the default is SQLite only.
"""

from __future__ import annotations

import math
import os
import random
import re
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import percentile, print_table, proc_cpu_seconds, proc_status_kb
from bot.telegram.send_budget import LocalSendBudget
from tests.bot_process import BotProcess
from tests.fakes.openai_server import FakeOpenAI, Reply, memory_task
from tests.fakes.telegram_limits import FloodLimits, counted
from tests.fakes.telegram_server import FakeTelegram

SEED = 20260601
# (name, users, turns per user, think time range in seconds). "closed loop" is the load the
# issue asks for: every user writes again within a second of reading the reply, far faster
# than people do, and more than the bot's one event loop can serve on a shared 2-core
# machine, so it shows the bot saturated. "paced" is the same 200 users with a 5-10 s think
# time, about a sixth of the offered load, to see what the bot adds with more headroom.
# "burst": 60 users at the same instant, one turn each, a 600-character reply over 3 s.
# (name, users, turns, think, model seconds, reply characters; None: 60-150 tokens)
SCENARIOS = (("burst", 60, 1, (0.0, 0.0), 3.0, 600),
             ("paced", 200, 20, (5.0, 10.0), 1.0, None), ("closed loop", 200, 20, (0.0, 1.0), 1.0, None))
MODEL_SECONDS = 1.0
LIMITS = FloodLimits()
FIRST_TOKEN_SECONDS = 0.25
REPLY_TOKENS = (60, 150)
CHUNK_CHARS = 22  # about 5 o200k tokens of English prose
TIMEOUT_SECONDS = 600
FIRST_USER_ID = 500_000

MARK = re.compile(r"ref u(\d+) t(\d+)\b")  # in each user message: which user, which turn
REPLY_MARK = re.compile(r"re u(\d+) t(\d+)\b")  # in each reply: the turn it answers
WORDS = ("the morning light was soft and I kept thinking about what you said yesterday "
         "about the garden the old bridge near the station and how long it takes to learn "
         "something properly maybe we could talk about books again tonight because the one "
         "I started is slow but kind and it reminds me of summer at my grandmother's house "
         "where the kettle was always on and nobody was ever in a hurry").split()


def user_text(rng: random.Random, user: int, turn: int) -> str:
    return f"ref u{user} t{turn}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30)))


def reply_bodies(count: int = 64) -> list[str]:
    """Reply texts of 60-150 o200k tokens (the marker the model adds is a few more)."""
    from memory.tokens import count_tokens

    rng = random.Random(SEED)
    bodies = []
    for _ in range(count):
        target = rng.randint(*REPLY_TOKENS)
        words: list[str] = []
        while count_tokens(" ".join(words)) < target:
            sentence = [rng.choice(WORDS) for _ in range(rng.randint(5, 14))]
            words += [sentence[0].capitalize(), *sentence[1:-1], sentence[-1] + "."]
        bodies.append(" ".join(words))
    return bodies


class ClosedLoop(FakeTelegram):
    """The fake Bot API with the users built in.

    Each user's next message is scheduled on the server's own loop when the reply to the
    previous one arrives (the reply names the turn it answers). A sendMessage that names
    no turn (an error line) also counts as the answer the user got, so the user goes on.
    """

    def __init__(self, users: int, turns: int, think: tuple[float, float]) -> None:
        super().__init__(flood_limits=LIMITS)
        self.turns = turns
        self.think = think
        self.people = {FIRST_USER_ID + i: self.user(FIRST_USER_ID + i, first_name=f"User{i}", username=f"user{i}")
                       for i in range(users)}
        self.rngs = {uid: random.Random(f"{SEED}-{uid}") for uid in self.people}
        self.pushed: dict[tuple[int, int], float] = {}  # (user, turn) -> time.monotonic() queued
        self.answered: dict[tuple[int, int], float] = {}  # (user, turn) -> final reply arrived
        self.texts: dict[tuple[int, int], str] = {}
        self.outstanding: dict[int, int] = {}  # user -> the turn awaiting a reply
        self.error_lines: list[tuple[int, str]] = []  # replies naming no turn
        self.extra_replies: list[tuple[int, str]] = []  # a turn answered twice, or an unasked one
        self.finished_users = 0
        self.done = threading.Event()

    def begin(self) -> None:
        for uid in self.people:
            self.loop.call_soon_threadsafe(self._next, uid, 0)

    def _next(self, uid: int, turn: int) -> None:
        if turn >= self.turns:
            self.finished_users += 1
            if self.finished_users == len(self.people):
                self.done.set()
            return
        self.loop.call_later(self.rngs[uid].uniform(*self.think), self._send, uid, turn)

    def _send(self, uid: int, turn: int) -> None:
        text = user_text(self.rngs[uid], uid, turn)
        with self.lock:
            self.texts[(uid, turn)] = text
            self.outstanding[uid] = turn
            self.pushed[(uid, turn)] = time.monotonic()
        self.private_message(text, user=self.people[uid])

    def _api_sendMessage(self, params: dict[str, Any], files: dict) -> dict[str, Any]:
        result = super()._api_sendMessage(params, files)  # runs on the server's loop, under self.lock
        now, chat = time.monotonic(), result["chat"]["id"]
        found = REPLY_MARK.search(result.get("text") or "")
        key = (int(found.group(1)), int(found.group(2))) if found else None
        waiting = self.outstanding.get(chat)
        if key is not None and key != (chat, waiting):
            self.extra_replies.append((chat, result["text"]))
        elif waiting is not None:
            if key is None:
                self.error_lines.append((chat, result.get("text") or ""))
            self.answered[(chat, waiting)] = now
            del self.outstanding[chat]
            self._next(chat, waiting + 1)
        else:
            self.extra_replies.append((chat, result.get("text") or ""))
        return result


def fake_model(model: FakeOpenAI, model_seconds: float = MODEL_SECONDS, reply_chars: int | None = None) -> None:
    bodies = reply_bodies()
    if reply_chars is not None:
        bodies = [(body + " ") * (reply_chars // len(body) + 1) for body in bodies]
    rng = random.Random(SEED)
    lock = threading.Lock()

    def answer(body: dict[str, Any]) -> Reply:
        found = MARK.search(str(body["messages"][-1].get("content") or ""))
        marker = f"re u{found.group(1)} t{found.group(2)}" if found else "re u0 t0"
        with lock:
            text = f"Oh, {marker}. " + rng.choice(bodies)
        if reply_chars is not None:
            text = text[:reply_chars].rstrip() + "."
        chunks = math.ceil(len(text) / CHUNK_CHARS)
        return Reply(text, chunk_size=CHUNK_CHARS, delay=FIRST_TOKEN_SECONDS,
                     chunk_delay=(model_seconds - FIRST_TOKEN_SECONDS) / chunks)

    model.default_reply = answer


class Sampler:
    """VmRSS of the bot process every 0.25 s; VmHWM (the kernel's peak) read at the end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            value = proc_status_kb(self.pid, "VmRSS")
            if value is not None:
                self.samples.append(value)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(2)


def stored_history(db: Path, loop: ClosedLoop) -> dict[str, int]:
    """Every user message and every reply stored exactly once, nothing pending."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT role, content, status FROM messages").fetchall()
        inbox = connection.execute("SELECT count(*) FROM inbox").fetchone()[0]
    return history_counts(rows, inbox, loop)


def stored_history_postgres(url: str, loop: ClosedLoop) -> tuple[dict[str, int], int]:
    """The same on PostgreSQL, and the database's size in bytes."""
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT role, content, status FROM messages").fetchall()
        inbox = connection.execute("SELECT count(*) FROM inbox").fetchone()[0]
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return history_counts(rows, inbox, loop), size


def history_counts(rows: list, inbox: int, loop: ClosedLoop) -> dict[str, int]:
    user_rows = Counter(content for role, content, _ in rows if role == "user")
    reply_rows = Counter((int(m.group(1)), int(m.group(2))) for role, content, _ in rows if role == "assistant"
                         for m in [REPLY_MARK.search(content)] if m)
    sent = loop.texts
    return {
        "user_messages_sent": len(sent),
        "user_messages_lost": sum(1 for text in sent.values() if user_rows[text] == 0),
        "user_messages_duplicated": sum(1 for text in sent.values() if user_rows[text] > 1),
        "replies_lost": sum(1 for key in sent if reply_rows[key] == 0),
        "replies_duplicated": sum(1 for key in sent if reply_rows[key] > 1),
        "messages_not_complete": sum(1 for _, _, status in rows if status != "complete"),
        "inbox_left": inbox,
        "rows": len(rows),
    }


def peak_per_second(times: list[float]) -> int:
    bins = Counter(int(t) for t in times)
    return max(bins.values(), default=0)


def forced_last_send(ready: list[float], per_second: float = LIMITS.per_second, burst: float = LIMITS.burst) -> float:
    """The earliest the last of these messages can be sent under a bot-wide bucket, each no
    earlier than it is ready: greedy, in order of readiness, from a full bucket."""
    tokens, at = burst, -math.inf
    for ready_at in sorted(ready):
        start = max(ready_at, at)
        if at > -math.inf:
            tokens = min(burst, tokens + (start - at) * per_second)
        if tokens < 1:
            start += (1 - tokens) / per_second
            tokens = 1.0
        tokens -= 1
        at = start
    return at


def measure(name: str, users: int, turns: int, think: tuple[float, float], model_seconds: float = MODEL_SECONDS,
            reply_chars: int | None = None, database_url: str | None = None) -> dict[str, Any]:
    """One scenario against a bot process on a SQLite file, or on `database_url`."""
    database = {"COMPANION_DATABASE_URL": database_url} if database_url else {}
    with tempfile.TemporaryDirectory() as folder, ClosedLoop(users, turns, think) as telegram, FakeOpenAI() as model:
        fake_model(model, model_seconds, reply_chars)
        bot = BotProcess(Path(folder), telegram, model, **database).start().wait_polling(120)
        pid = bot.process.pid
        started_rss = proc_status_kb(pid, "VmRSS")
        bot_cpu_before, own_cpu_before = proc_cpu_seconds(pid), time.process_time()
        try:
            with Sampler(pid) as sampler:
                start = time.monotonic()
                telegram.begin()
                finished = telegram.done.wait(TIMEOUT_SECONDS)
                wall = time.monotonic() - start
                deadline = time.monotonic() + 10  # the turn log line follows the final send
                while len(bot.turns) < len(telegram.answered) and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(1.0)  # background memory work of the last turns
            peak_rss = proc_status_kb(pid, "VmHWM")
            bot_cpu, own_cpu = proc_cpu_seconds(pid) - bot_cpu_before, time.process_time() - own_cpu_before
            during = list(bot.records)  # before the SIGTERM, which logs its own warning
        finally:
            exit_code = bot.terminate(60)
        if database_url:
            history, db_bytes = stored_history_postgres(database_url, telegram)
        else:
            db_bytes = sum(p.stat().st_size for p in Path(folder).glob("bot.db*"))
            history = stored_history(Path(folder) / "bot.db", telegram)
        calls = telegram.calls
        requests = list(model.requests)
    warnings = [r for r in during if r.get("level") == "warning"]
    turn_logs = bot.turns
    overhead = [t["overhead_ms"] for t in turn_logs]
    queued = [t["queued_ms"] for t in turn_logs]
    model_ms = [t["model_ms"] for t in turn_logs if t["model_ms"]]
    end_to_end = [(telegram.answered[k] - telegram.pushed[k]) * 1000 for k in telegram.answered]
    chat_requests = [r for r in requests if r.path.endswith("/chat/completions") and not memory_task(r.task)]
    fake_model_s = {}  # (user, turn) -> the model's time as the fake measured it (first request of the turn)
    model_done = {}  # (user, turn) -> when the fake model ended that stream, on the fake Bot API's clock
    clock_offset = time.monotonic() - time.time()  # the fake model's times are time.time()
    for request in chat_requests:
        found = MARK.search(str(request.messages[-1].get("content") or ""))
        if found and request.finished_at is not None:
            key = (int(found.group(1)), int(found.group(2)))
            fake_model_s.setdefault(key, request.finished_at - request.at)
            model_done.setdefault(key, request.finished_at + clock_offset)
    beyond_model = [(telegram.answered[k] - telegram.pushed[k] - fake_model_s[k]) * 1000
                    for k in telegram.answered if k in fake_model_s]
    by_method = Counter(call.method for call in calls)
    failed_calls = Counter(f"{call.method} {call.status}" for call in calls if not call.ok)
    sends = [call.at for call in calls if call.method == "sendMessage" and call.ok]
    posts = [call for call in calls if counted(call.method) and call.params.get("chat_id") is not None]
    refused = sum(1 for call in posts if call.status == 429)
    waits = [t.get("budget_wait_ms", 0.0) for t in turn_logs]
    answered = len(telegram.answered)
    first_push = min(telegram.pushed.values(), default=0.0)
    last_reply_s = max(telegram.answered.values(), default=first_push) - first_push
    forced_s = latency_s = with_latency_s = None
    if turns == 1 and model_done:  # the bound, and the same once each final is ready as soon as any was
        forced_s = forced_last_send(list(model_done.values())) - first_push
        lags = [telegram.answered[key] - done for key, done in model_done.items() if key in telegram.answered]
        latency_s = min(lags, default=0.0)
        with_latency_s = forced_last_send([done + latency_s for done in model_done.values()]) - first_push
    return {
        "scenario": name, "users": users, "turns_per_user": turns, "turns_offered": users * turns,
        "turns_answered": answered,
        "finished": finished, "wall_s": wall,
        "throughput_turns_per_s": answered / wall, "throughput_turns_per_min": answered / wall * 60,
        "ideal_turns_per_s": users / (model_seconds + sum(think) / 2),
        "model_s": model_seconds, "think_s": list(think), "reply_chars": reply_chars,
        "reply_tokens": list(REPLY_TOKENS) if reply_chars is None else None,
        "model_ms_as_bot_saw_p50": percentile(model_ms, 50), "model_ms_as_bot_saw_p95": percentile(model_ms, 95),
        "bot_overhead_p50_ms": percentile(overhead, 50), "bot_overhead_p95_ms": percentile(overhead, 95),
        "bot_overhead_p99_ms": percentile(overhead, 99), "bot_overhead_max_ms": max(overhead, default=math.nan),
        "bot_queued_p95_ms": percentile(queued, 95),
        "end_to_end_p50_ms": percentile(end_to_end, 50), "end_to_end_p95_ms": percentile(end_to_end, 95),
        "end_to_end_beyond_model_p50_ms": percentile(beyond_model, 50),
        "end_to_end_beyond_model_p95_ms": percentile(beyond_model, 95),
        "end_to_end_p99_ms": percentile(end_to_end, 99), "end_to_end_max_ms": max(end_to_end, default=math.nan),
        "bot_rss_start_mb": (started_rss or 0) / 1024, "bot_rss_peak_mb": (peak_rss or 0) / 1024,
        "bot_rss_sampled_max_mb": max(sampler.samples, default=0) / 1024,
        "db_mb": db_bytes / 2**20,
        "bot_cpu_s": bot_cpu, "bench_process_cpu_s": own_cpu,
        "turn_logs": len(turn_logs),
        "failed_turns": sum(1 for t in turn_logs if t["status"] != "complete" or t.get("error")),
        "error_lines_to_users": len(telegram.error_lines), "extra_replies": len(telegram.extra_replies),
        "non_2xx_telegram_calls": sum(failed_calls.values()), "non_2xx_by_method": dict(failed_calls),
        "telegram_429": sum(1 for call in calls if call.status == 429),
        "posts_and_edits": len(posts), "posts_and_edits_429": refused,
        "posts_and_edits_429_share": refused / max(1, len(posts)),
        "peak_posts_per_s": peak_per_second([call.at for call in posts if call.ok]),
        "budget_wait_p50_ms": percentile(waits, 50), "budget_wait_p95_ms": percentile(waits, 95),
        "budget_wait_max_ms": max(waits, default=math.nan),
        "turns_that_waited": sum(1 for wait in waits if wait > 0),
        "previews_skipped": sum(t.get("previews_skipped", 0) for t in turn_logs),
        "last_full_reply_s": last_reply_s, "last_reply_forced_by_limits_s": forced_s,
        "quickest_final_after_stream_end_s": latency_s, "last_reply_forced_with_quickest_final_s": with_latency_s,
        "budget_burst": LocalSendBudget()._bot.capacity,
        "flood_limits": {"per_second": LIMITS.per_second, "burst": LIMITS.burst,
                         "chat_per_second": LIMITS.chat_per_second, "chat_burst": LIMITS.chat_burst,
                         "group_per_minute": LIMITS.group_per_minute},
        "log_errors": len(bot.errors()), "log_warnings": len(warnings),
        "log_error_samples": [r.get("message") for r in bot.errors()[:5]],
        "log_warning_samples": sorted({str(r.get("message"))[:160] for r in warnings})[:5],
        "bot_exit_code": exit_code,
        "telegram_calls": dict(sorted(by_method.items())), "peak_send_message_per_s": peak_per_second(sends),
        "model_requests": {"reply": len(chat_requests), "memory tasks": sum(1 for r in requests if memory_task(r.task)),
                           "embeddings": sum(1 for r in requests if r.path.endswith("/embeddings")),
                           "unfinished": sum(1 for r in chat_requests if r.finished_at is None)},
        "history": history,
    }


def run() -> dict:
    chosen = {name.strip() for name in os.environ.get("LOAD_SCENARIOS", "").split(",") if name.strip()}
    backends = [name.strip() for name in os.environ.get("LOAD_BACKENDS", "sqlite").split(",") if name.strip()]
    scenarios = [scenario for scenario in SCENARIOS if not chosen or scenario[0] in chosen]
    results = [measure(*scenario) for scenario in scenarios] if "sqlite" in backends else []
    if "postgresql" in backends:
        from tests.postgres_server import PostgresServer

        url = os.environ.get("COMPANION_TEST_DATABASE_URL")
        server = PostgresServer.existing(url) if url else PostgresServer.start()
        try:
            for scenario in scenarios:
                with server.fresh_database() as database:
                    result = measure(*scenario, database_url=database)
                results.append({**result, "scenario": f"{result['scenario']} (PG)"})
        finally:
            if not url:
                server.stop()
    return {"scenarios": results}


def report(results: dict) -> None:
    scenarios = results["scenarios"]
    print_table(
        "Turns (model: 1 s, 3 s in burst; bot: added by the bot, per its turn log; e2e: as users see it)",
        ["scenario", "users x turns", "think s", "turns", "wall s", "turns/s", "turns/min", "ideal turns/s",
         "bot p50 ms", "bot p95 ms", "bot p99 ms", "bot max ms", "e2e p50 ms", "e2e p95 ms", "peak RSS MB", "DB MB"],
        [[r["scenario"], f"{r['users']} x {r['turns_per_user']}", f"{r['think_s'][0]:.0f}-{r['think_s'][1]:.0f}",
          f"{r['turns_answered']}/{r['turns_offered']}", f"{r['wall_s']:.1f}", f"{r['throughput_turns_per_s']:.1f}",
          f"{r['throughput_turns_per_min']:.0f}", f"{r['ideal_turns_per_s']:.0f}",
          f"{r['bot_overhead_p50_ms']:.1f}", f"{r['bot_overhead_p95_ms']:.1f}", f"{r['bot_overhead_p99_ms']:.1f}",
          f"{r['bot_overhead_max_ms']:.0f}", f"{r['end_to_end_p50_ms']:.0f}", f"{r['end_to_end_p95_ms']:.0f}",
          f"{r['bot_rss_peak_mb']:.0f}", f"{r['db_mb']:.1f}"] for r in scenarios],
    )
    print_table("Errors (target: none); stored history: user messages and replies lost / duplicated",
                ["scenario", "failed turns", "error lines", "extra replies", "non-2xx calls", "429", "log errors",
                 "log warnings", "exit code", "messages lost", "dup", "replies lost", "dup", "not complete", "inbox"],
                [[r["scenario"], r["failed_turns"], r["error_lines_to_users"], r["extra_replies"],
                  r["non_2xx_telegram_calls"], r["telegram_429"], r["log_errors"], r["log_warnings"],
                  r["bot_exit_code"], r["history"]["user_messages_lost"], r["history"]["user_messages_duplicated"],
                  r["history"]["replies_lost"], r["history"]["replies_duplicated"],
                  r["history"]["messages_not_complete"], r["history"]["inbox_left"]] for r in scenarios])
    print_table(f"Flood limits enforced by the fake Bot API ({LIMITS.per_second:.0f}/s for the bot, "
                f"{LIMITS.chat_per_second:.0f}/s a chat with a burst of {LIMITS.chat_burst:.0f}, "
                f"{LIMITS.group_per_minute}/min a group): 429s, the send budget's waits, the last reply",
                ["scenario", "posts+edits", "429", "429 %", "peak posts/s", "turns waited", "wait p50 ms",
                 "wait p95 ms", "wait max ms", "previews skipped", "last full reply s", "forced by limits s",
                 "quickest final s", "forced + quickest s"],
                [[r["scenario"], r["posts_and_edits"], r["posts_and_edits_429"],
                  f"{r['posts_and_edits_429_share'] * 100:.2f}", r["peak_posts_per_s"], r["turns_that_waited"],
                  f"{r['budget_wait_p50_ms']:.0f}", f"{r['budget_wait_p95_ms']:.0f}", f"{r['budget_wait_max_ms']:.0f}",
                  r["previews_skipped"], f"{r['last_full_reply_s']:.2f}",
                  *("—" if r[key] is None else f"{r[key]:.2f}"
                    for key in ("last_reply_forced_by_limits_s", "quickest_final_after_stream_end_s",
                                "last_reply_forced_with_quickest_final_s"))]
                 for r in scenarios])
    methods = sorted({method for r in scenarios for method in r["telegram_calls"]})
    print_table("Telegram calls", ["scenario", *methods],
                [[r["scenario"], *(r["telegram_calls"].get(m, 0) for m in methods)] for r in scenarios])
    for r in scenarios:
        print(f"\n{r['scenario']}: model requests {r['model_requests']}; model time as the bot saw it p50/p95 "
              f"{r['model_ms_as_bot_saw_p50']:.0f}/{r['model_ms_as_bot_saw_p95']:.0f} ms; turn queued p95 "
              f"{r['bot_queued_p95_ms']:.1f} ms")
        print(f"  end to end minus the model's time as the fake measured it, p50/p95: "
              f"{r['end_to_end_beyond_model_p50_ms']:.0f}/{r['end_to_end_beyond_model_p95_ms']:.0f} ms")
        print(f"  bot RSS at start {r['bot_rss_start_mb']:.0f} MB, peak {r['bot_rss_peak_mb']:.0f} MB; CPU: bot "
              f"{r['bot_cpu_s']:.1f} s ({r['bot_cpu_s'] / max(1, r['turns_answered']) * 1000:.1f} ms a turn), "
              f"this process (both fakes) {r['bench_process_cpu_s']:.1f} s, over {r['wall_s']:.1f} s")
        print(f"  peak sendMessage rate {r['peak_send_message_per_s']}/s")
        if r["non_2xx_by_method"] or r["log_error_samples"] or r["log_warning_samples"]:
            print(f"  failed calls: {r['non_2xx_by_method']}; errors logged: {r['log_error_samples']}; "
                  f"warnings logged: {r['log_warning_samples']}")
    print("\nUnder load the bot reads the model's stream late, so the model time it logs grows and its own figure "
          "understates what it adds; the end-to-end figures do not have that blind spot. Both include the time "
          "replies waited for the send budget (Telegram's limits), shown apart in the flood table.")
