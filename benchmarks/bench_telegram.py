"""Telegram bot overhead per turn, excluding model time.

The real `companion run` process (long polling, SQLite file, drafts, formatting, default
stream settings) talks to the fake Bot API and a fake model that answers every request
after a fixed latency; the fakes run in this process, the bot in its own. With 1 chat and
with 100 chats writing at the same instant (the worst case: every turn's CPU work queues
behind the others'), and with 100 chats active whose messages arrive spread over a few
seconds (20 a second, many replies in flight at once). Two views of each turn:

* bot-side (the primary figure): the bot's structured turn log (`COMPANION_LOG_FORMAT=json`),
  from the moment the update reached the dispatcher to the final message sent, minus the
  model's response time as the bot saw it, and minus the time its messages waited for the
  send budget (Telegram's flood limits: 100 replies at once cannot all go out in one
  second), which is shown on its own: what the bot adds;
* end to end: from the update queued at the fake Bot API to the final sendMessage
  arriving there, minus the model's time as the fake model measured it; this adds
  long-poll delivery and the fake servers' own latency.

A chat that waited for another chat's turn would show an overhead near the model latency
(250 ms) or more. Target: p50 <= 10 ms, and no chat waits for another.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, percentile, print_table
from tests.bot_process import BotProcess
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_server import FakeTelegram

MODEL_LATENCY = 0.25
# (chats, rounds, spread): every chat sends one message per round; `spread` seconds over
# which a round's messages are sent (0: all at the same instant, the worst case).
SCENARIOS = ((1, 30, 0.0), (100, 3, 0.0), (100, 3, 5.0))


def measure(chats: int, rounds: int, spread: float = 0.0) -> dict:
    with tempfile.TemporaryDirectory() as folder, FakeTelegram() as telegram, FakeOpenAI() as model:
        model.default_reply = lambda body: Reply("Fine, thank you! " + body["messages"][-1]["content"][-12:],
                                                 delay=MODEL_LATENCY, chunk_size=200)
        bot = BotProcess(Path(folder), telegram, model).start()
        sent = lambda: len(telegram.calls_of("sendMessage", ok=True))  # noqa: E731
        try:
            users = [telegram.user(7000 + i, first_name=f"U{i}") for i in range(chats)]
            for user in users:  # the first message of each chat creates its user and conversation
                telegram.private_message("hello", user=user)
            telegram.wait_until(lambda: sent() >= chats, 120)
            time.sleep(0.5)
            warmup_turns = len(bot.turns)
            overheads, totals = [], []
            for round_ in range(rounds):
                pushed: dict[int, float] = {}
                before, requests_before = sent(), len(model.chat_requests)
                start = time.monotonic()
                for index, user in enumerate(users):
                    if spread:  # evenly spaced arrivals: 100 chats active, not all at one instant
                        time.sleep(max(0.0, start + spread * index / chats - time.monotonic()))
                    pushed[user["id"]] = time.monotonic()
                    telegram.private_message(f"round {round_} from {user['id']}", user=user)
                telegram.wait_until(lambda: sent() >= before + chats, 120)
                finals = {int(call.params["chat_id"]): call.at
                          for call in telegram.calls_of("sendMessage", ok=True)[before:]}
                model_time = {int(r.messages[-1]["content"].rsplit(" ", 1)[-1]): r.finished_at - r.at
                              for r in model.chat_requests[requests_before:]}
                for user in users:
                    elapsed = finals[user["id"]] - pushed[user["id"]]
                    totals.append(elapsed * 1000)
                    overheads.append((elapsed - model_time[user["id"]]) * 1000)
                time.sleep(0.6)  # let drafts and typing settle between rounds
        finally:
            bot.terminate()
    turns = bot.turns[warmup_turns:]
    bot_side = [turn["overhead_ms"] - turn.get("budget_wait_ms", 0.0) for turn in turns]
    budget_waits = [turn.get("budget_wait_ms", 0.0) for turn in turns]
    return {
        "chats": chats, "turns": len(overheads), "spread_s": spread, "model_latency_ms": MODEL_LATENCY * 1000,
        "bot_overhead_p50_ms": percentile(bot_side, 50), "bot_overhead_p95_ms": percentile(bot_side, 95),
        "bot_overhead_max_ms": max(bot_side),
        "budget_wait_p50_ms": percentile(budget_waits, 50), "budget_wait_max_ms": max(budget_waits),
        "end_to_end_overhead_p50_ms": percentile(overheads, 50),
        "end_to_end_overhead_p95_ms": percentile(overheads, 95),
        "turn_p50_ms": percentile(totals, 50), "turn_max_ms": max(totals),
        "bot_errors": len(bot.errors()),
    }


def run() -> dict:
    os.chdir(ROOT)
    return {"scenarios": [measure(chats, rounds, spread) for chats, rounds, spread in SCENARIOS]}


def report(results: dict) -> None:
    print_table(
        f"Overhead per turn in ms (model latency {MODEL_LATENCY * 1000:.0f} ms excluded)",
        ["chats", "arrivals", "turns", "bot p50", "bot p95", "bot max", "end-to-end p50", "end-to-end p95",
         "turn max", "budget wait p50", "budget wait max", "errors"],
        [[s["chats"], "at once" if not s["spread_s"] else f"over {s['spread_s']:.0f} s", s["turns"],
          f"{s['bot_overhead_p50_ms']:.1f}", f"{s['bot_overhead_p95_ms']:.1f}",
          f"{s['bot_overhead_max_ms']:.1f}", f"{s['end_to_end_overhead_p50_ms']:.1f}",
          f"{s['end_to_end_overhead_p95_ms']:.1f}", f"{s['turn_max_ms']:.0f}", f"{s['budget_wait_p50_ms']:.0f}",
          f"{s['budget_wait_max_ms']:.0f}", s["bot_errors"]]
         for s in results["scenarios"]],
    )
    print("A chat that waited for another chat's turn would add at least the model latency to its overhead. "
          "End-to-end figures include the send budget's waits.")
