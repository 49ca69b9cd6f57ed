"""Isolation between users, and `/forget`, end to end through the whole Telegram bot.

**Isolation rule.** Every chat has its own memory, and a request the model gets on behalf
of a chat holds only what belongs to that chat:

- a private chat's request holds that user's private messages, documents, facts and
  persona, and nothing of any other user, nor anything said in a group (not even the
  user's own group messages: the group's conversation belongs to the group);
- a group's request holds what was said in that group by any of its members (the
  group's conversation is shared by them), and nothing of anyone's private chat:
  no private message, document or fact.

The property test drives two users (Alice, Bob) in their private chats and both in one
group through random interleavings of actions — messages, documents, facts, persona
switches, messages that only mention something said long ago (recall, with embeddings
on) — each carrying a marker unique to the action and recording where it was said. After
every step, each request the fake model received is checked against the markers: a
marker may appear only in requests for the chat it was said in.

**Forget.** `test_forget_erases_everything_of_the_user` has one user use every feature that
stores something, with an ASCII and a Chinese marker in all of it, next to another user
whose data must survive; `/forget` is confirmed through Telegram. Afterwards no row of any
table (full-text shadow tables included) holds the markers or the user's Telegram id, the
other user's data is intact, and, once the bot has stopped, neither the database file
nor its -wal/-shm files nor anything else in the data folder holds the markers' bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from pathlib import Path

from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from bot.telegram.callbacks import ForgetMe
from tests.card_samples import png_with_chunk_before_iend, rich_v2_card, to_base64_json
from tests.fakes.clock import ManualClock
from tests.fakes.openai_server import Reply, default_task_reply
from tests.fakes.telegram_server import DEFAULT_GROUP_ID
from tests.harness import BotHarness

ALICE = 580_417_293  # distinctive ids, so that finding one in a row means something
BOB = 731_926_584
GROUP = DEFAULT_GROUP_ID


def tg_user(user_id: int, name: str) -> dict:
    return {"id": user_id, "is_bot": False, "first_name": name, "username": name.lower(), "language_code": "en"}


def last_user_text(body: dict) -> str:
    return next((m["content"] for m in reversed(body.get("messages", [])) if m["role"] == "user"), "")


def echo(body: dict) -> Reply:
    """A model that quotes what it was told, as a real one often does: a marker the user
    wrote also ends up in the character's replies."""
    said = last_user_text(body).rpartition("The user's message follows.]")[2]
    return Reply("You said: " + said.strip()[:120].replace("\n", " "))


MARKER = re.compile(r"\b(?:mk\w+|[彧翊骁皛甪]{2,})")


def fact_tasks(body: dict) -> Reply:
    """Fact extraction turns every marker of the new messages into a fact, naming the
    messages that said it (lines "#id [time] name: text"); summaries as usual."""
    if str(body.get("prompt_cache_key", "")).startswith("memory-facts"):
        sources: dict[str, list[int]] = {}
        for number, line in re.findall(r"(?m)^#(\d+) (\[.*)$", last_user_text(body)):
            for marker in MARKER.findall(line):
                sources.setdefault(marker, []).append(int(number))
        facts = [{"text": f"The user mentioned {m}.", "sources": ids} for m, ids in sorted(sources.items())]
        return Reply(json.dumps({"facts": facts}, ensure_ascii=False))
    return default_task_reply(body)


# -- isolation ------------------------------------------------------------------------------
WHO = ("alice", "bob")
ACTIONS = st.one_of(
    st.tuples(st.just("say"), st.sampled_from(WHO), st.sampled_from(("private", "group"))),
    st.tuples(st.just("fact"), st.sampled_from(WHO), st.sampled_from(("private", "group"))),
    st.tuples(st.just("overhear"), st.sampled_from(WHO), st.just("group")),
    st.tuples(st.just("document"), st.sampled_from(WHO), st.just("private")),
    st.tuples(st.just("new"), st.sampled_from(WHO), st.just("private")),
    st.tuples(st.just("persona"), st.sampled_from(WHO), st.just("private")),
    st.tuples(st.just("forget"), st.sampled_from(WHO), st.just("private")),
)
GONE = 0  # the home of a forgotten marker: no request may hold it any more
SHARED = "the blue lighthouse by the old harbour"  # every marker's neighbour: recall is tempted
FOUND = re.compile(r"\bmk\d+[ab]\b")


class Interleavings:
    """One bot for all examples; every marker remembers the chat it was said in (`home`),
    so a marker of an earlier example that turns up elsewhere is caught too."""

    def __init__(self, harness):
        self.harness = harness
        self.telegram = harness.telegram
        self.openai = harness.openai
        self.users = {"alice": tg_user(ALICE, "Alice"), "bob": tg_user(BOB, "Bob")}
        self.home: dict[str, int] = {}
        self.said: dict[str, tuple[str, str, str]] = {}  # marker -> the action that said it
        self.numbers = itertools.count(1)
        self.personas = {"alice": "assistant", "bob": "assistant"}
        self.checked = 0

    async def play(self, action: tuple[str, str, str]) -> None:
        kind, who, where = action
        user = self.users[who]
        chat = GROUP if where == "group" else user["id"]
        marker = f"mk{next(self.numbers)}{who[0]}"
        self.home[marker] = chat
        self.said[marker] = action
        first_request = len(self.openai.requests)
        telegram = self.telegram
        before = len(telegram.bot_messages(chat))
        if kind == "say":
            words = f"{marker} tell me about {SHARED}"
            if where == "group":
                telegram.group_message(words, user=user, mention="username")
            else:
                telegram.private_message(words, user=user)
            await telegram.wait_until(lambda: self.replied_to(marker), 10)
        elif kind == "overhear":
            telegram.group_message(f"{marker} by the way, {SHARED}", user=user)
            await telegram.wait_until(lambda: self.stored(marker), 10)
        elif kind == "document":
            data = f"Log of {who}\n\n{marker} kept {SHARED}.\n".encode()
            telegram.document(telegram.add_file(data, f"log {marker}.txt", "text/plain"), chat_id=chat, user=user,
                              caption=f"{marker} what do you make of it?")
            await telegram.wait_until(lambda: self.replied_to(marker), 10)
        elif kind == "forget":
            await self.forget(user)
        else:
            command = {"fact": f"/memory add I keep {marker} near {SHARED}", "new": "/new",
                       "persona": "/persona " + ("mara" if self.personas[who] == "assistant" else "assistant")}[kind]
            if kind == "persona":
                self.personas[who] = command.split()[1]
            if where == "group":
                telegram.group_message(command, user=user)
            else:
                telegram.private_message(command, user=user)
            await telegram.wait_until(lambda: len(telegram.bot_messages(chat)) > before, 10)
        await self.harness.services.engine.drain()
        self.check(first_request, chat)

    async def forget(self, user: dict) -> None:
        """/forget, confirmed. What the user said anywhere is gone for good; pinned facts
        they added to the group with /memory are the group's and stay."""
        telegram = self.telegram
        count = len(telegram.bot_messages(user["id"]))
        telegram.private_message("/forget", user=user)
        await telegram.wait_until(lambda: len(telegram.bot_messages(user["id"])) > count, 10)
        confirm = telegram.bot_messages(user["id"])[-1]
        telegram.callback_query(confirm.message_id, ForgetMe(confirmed=True).pack(), chat_id=user["id"], user=user)
        await telegram.wait_until(
            lambda: telegram.message(user["id"], confirm.message_id).text.startswith("Done."), 10)
        who = user["first_name"].lower()
        self.personas[who] = "assistant"
        for marker, (kind, speaker, where) in self.said.items():
            if speaker == who and not (kind == "fact" and where == "group"):
                self.home[marker] = GONE

    def stored(self, marker: str) -> bool:
        return self.harness.store.db.execute(
            "SELECT count(*) FROM messages WHERE role = 'user' AND content LIKE ?", [f"%{marker} %"]).fetchone()[0]

    def replied_to(self, marker: str) -> bool:
        return self.harness.store.db.execute(
            "SELECT count(*) FROM messages WHERE role = 'assistant' AND content LIKE ?",
            [f"%{marker} %"]).fetchone()[0]

    def check(self, first_request: int, chat: int) -> None:
        """Every request since `first_request` (replies, summaries and fact extraction,
        embeddings) was made for `chat`: it may hold only that chat's markers."""
        for request in self.openai.requests[first_request:]:
            body = json.dumps(request.body, ensure_ascii=False)
            strangers = sorted({m for m in FOUND.findall(body) if self.home.get(m) != chat})
            assert not strangers, (f"a request for chat {chat} ({request.path}) holds markers of other chats: "
                                   f"{[(m, self.home.get(m)) for m in strangers]}")
            self.checked += 1


def test_no_request_for_one_chat_holds_anything_of_another(tmp_path, telegram, fake_openai):
    fake_openai.default_reply = echo
    fake_openai.task_reply = fact_tasks
    loop = asyncio.new_event_loop()
    harness = BotHarness(tmp_path, telegram, fake_openai, admins=[ALICE], open_to_all=True, context_tokens=4096,
                         facts_every=1, embedding_model="fake-embed")
    loop.run_until_complete(harness.start())
    for user in (tg_user(ALICE, "Alice"), tg_user(BOB, "Bob")):
        telegram.open_private_chat(user)
    world = Interleavings(harness)

    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              phases=(Phase.explicit, Phase.generate))
    @given(st.lists(ACTIONS, min_size=2, max_size=7))
    # the next document stored gets a forgotten one's id
    @example([("document", "alice", "private"), ("forget", "alice", "private"), ("document", "bob", "private")])
    def interleaving(actions):
        for action in actions:
            loop.run_until_complete(world.play(action))

    try:
        interleaving()
        # the check saw the requests of both users, in private and in the group, with recall
        homes = set(world.home.values())
        assert {ALICE, BOB, GROUP} <= homes and world.checked > 30
        assert fake_openai.embedding_requests
    finally:
        loop.run_until_complete(harness.stop())
        loop.close()


# -- forget ---------------------------------------------------------------------------------
ASCII = "kqzalicesecret"  # no other word of the index starts with "kq" (see needles())
CHINESE = "彧翊骁皛"
BOB_ASCII = "wvjbobkeeps"


def needles(ascii_marker: str, chinese_marker: str) -> list[bytes]:
    """Byte strings that betray a marker. FTS5 stores each term after the prefix it shares
    with the term before it, so a term may be on disk without its first bytes: the ASCII
    marker's tail and the tail bytes of each Chinese bigram (CJK is indexed as bigrams)
    are searched for as well."""
    found = [ascii_marker.encode(), ascii_marker[2:].encode(), chinese_marker.encode()]
    for i in range(len(chinese_marker) - 1):
        found.append(chinese_marker[i:i + 2].encode()[1:])
    return found


async def wait_for_text(harness, chat_id: int, fragment: str, timeout: float = 10.0):
    telegram = harness.telegram
    await telegram.wait_until(
        lambda: any(fragment in (m.text or m.caption or "") for m in telegram.bot_messages(chat_id)), timeout)


async def say(harness, user: dict, words: str, *, expect: str | None = None, group: bool = False) -> None:
    """Send a message and wait for the bot's answer (a message holding `expect`, else one more)."""
    telegram = harness.telegram
    chat_id = GROUP if group else user["id"]
    before = len(telegram.bot_messages(chat_id))
    if group:
        telegram.group_message(words, user=user, mention="username")
    else:
        telegram.private_message(words, user=user)
    if expect is None:
        await telegram.wait_until(lambda: len(telegram.bot_messages(chat_id)) > before, 10)
    else:
        await wait_for_text(harness, chat_id, expect)
    await harness.services.engine.drain()


async def upload(harness, user: dict, data: bytes, name: str, mime: str, *, expect: str, caption=None) -> None:
    telegram = harness.telegram
    telegram.document(telegram.add_file(data, name, mime), chat_id=user["id"], user=user, caption=caption)
    await wait_for_text(harness, user["id"], expect)
    await harness.services.engine.drain()


def rows_with(store, patterns: list[bytes]) -> list[tuple[str, tuple]]:
    """(table, row) of every row, in every table (full-text shadow tables too), whose
    bytes hold one of the patterns (text compared in lower case, as the index keeps it)."""
    hits = []
    for table in store.db.table_names():
        for row in store.db.execute(f"SELECT * FROM [{table}]").fetchall():
            data = b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
            if any(p in data or p in data.lower() for p in patterns):
                hits.append((table, row))
    return hits


def files_with(folder: Path, patterns: list[bytes]) -> list[tuple[str, bytes]]:
    hits = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            hits += [(path.name, p) for p in patterns if p in data or p in data.lower()]
    return hits


async def test_forget_erases_everything_of_the_user(tmp_path, telegram, fake_openai):
    data_dir = tmp_path / "data"
    clock = ManualClock("2026-03-02T10:00:00+00:00")
    fake_openai.default_reply = echo
    fake_openai.task_reply = fact_tasks
    harness = await BotHarness(
        tmp_path, telegram, fake_openai, clock=clock, db=data_dir / "bot.db", admins=[ALICE], open_to_all=True,
        context_tokens=2048, facts_every=1, embedding_model="fake-embed", moderation_words=["marmalade"],
        moderation_input="warn", models=["fake-model", "small-model=2048"]).start()
    alice, bob = tg_user(ALICE, "Alice"), tg_user(BOB, "Bob")
    telegram.open_private_chat(alice)
    telegram.open_private_chat(bob)
    mark = f"{ASCII} {CHINESE}"
    try:
        # who she is, her settings
        await say(harness, alice, f"/me Ally {CHINESE}", expect="I'll call you")
        await say(harness, alice, f"/me about: a nurse who says {ASCII}", expect="About you")
        await say(harness, alice, "/tz Asia/Shanghai")
        await say(harness, alice, "/model small-model", expect="small-model")
        # private messages, long enough that the conversation gets summarised
        for n in range(8):
            await say(harness, alice, f"Story {n}: {mark} " + "the river bends past the old mill. " * 18)
        # a pinned fact of her own, and a flagged message (moderation event with an excerpt)
        await say(harness, alice, f"/memory add My secret word is {mark}", expect="")
        await say(harness, alice, f"I love marmalade and {mark}")
        # a document, read and attached, and a question about it
        document = (f"Notes of Alice\n\nChapter 1\n\nThe treasure lies under the {mark} stone.\n\n"
                    "Chapter 2\n\nNothing else.\n").encode()
        await upload(harness, alice, document, f"notes {ASCII}.txt", "text/plain", expect="📚", caption=f"where? {ASCII}")
        # a character card of her own, with her marker in it
        card = rich_v2_card()
        card["data"]["name"] = "Seraphina"
        card["data"]["description"] += f" She keeps {mark}."
        await upload(harness, alice, png_with_chunk_before_iend("chara", to_base64_json(card)), "sera.png",
                     "image/png", expect="Imported the character card")
        await say(harness, alice, "/persona seraphina", expect="Now talking to Seraphina")
        await say(harness, alice, f"Hello Seraphina, {mark}")
        await say(harness, alice, "/persona assistant", expect="Now talking to")
        # in the group: addressed to the bot, and only overheard
        for n in range(6):
            await say(harness, alice, f"group story {n} {mark} " + "the tram rattles down the hill. " * 18,
                      group=True)
        telegram.group_message(f"overheard {mark}", user=alice)
        # check-ins: on, and one sent
        await say(harness, alice, "/checkin on 12h", expect="12 h")
        clock.advance(hours=26)  # 20:00 in Shanghai
        assert await harness.dispatcher["checkin_loop"].run_once(harness.bot) == 1
        await harness.services.engine.drain()

        # Bob, whose data must survive
        await say(harness, bob, f"I am Bob, {BOB_ASCII}")
        await say(harness, bob, f"/memory add Bob's word is {BOB_ASCII}", expect="")
        await say(harness, bob, f"bob in the group {BOB_ASCII}", group=True)
        await upload(harness, bob, f"Bob's notes\n\n{BOB_ASCII} is here.\n".encode(), f"bob {BOB_ASCII}.txt", "text/plain",
                     expect="📚")

        store = harness.store
        user = store.directory.find_user("tg", ALICE)
        tables_used = {table for table, _ in rows_with(store, needles(ASCII, CHINESE))}
        for table in ("messages", "messages_fts_data", "facts", "summary_segments", "documents",
                      "document_passages", "document_passages_fts_data", "stored_personas", "moderation_events",
                      "users"):
            assert table in tables_used, table
        group_conversation = store.conversations.conversation(store.db.execute(
            "SELECT id FROM conversations WHERE group_key IS NOT NULL").fetchone()[0])
        assert store.db.execute("SELECT count(*) FROM summary_segments WHERE conversation_id = ?",
                                [group_conversation.id]).fetchone()[0]
        assert store.db.execute("SELECT count(*) FROM message_embeddings e JOIN messages m ON m.id = e.message_id "
                                "WHERE m.user_id = ?", [user.id]).fetchone()[0] > 0
        for table in ("checkin_plans", "checkins", "user_choices", "usage"):
            assert store.db.execute(f"SELECT count(*) FROM {table} WHERE user_id = ?", [user.id]).fetchone()[0], table

        # forget, confirmed with the button
        await say(harness, alice, "/forget", expect="")
        confirm = telegram.bot_messages(ALICE)[-1]
        telegram.callback_query(confirm.message_id, ForgetMe(confirmed=True).pack(), chat_id=ALICE, user=alice)
        await telegram.wait_until(lambda: telegram.message(ALICE, confirm.message_id).text.startswith("Done."), 10)
        await asyncio.sleep(0.3)  # the update is marked handled after the handler returns

        assert store.directory.find_user("tg", ALICE) is None
        left = rows_with(store, needles(ASCII, CHINESE) + [str(ALICE).encode()])
        assert [(table, str(row)[:300]) for table, row in left] == []
        # Bob's things are all there
        bob_user = store.directory.find_user("tg", BOB)
        assert bob_user is not None
        # (FTS5 may keep Bob's term after a prefix it shares with the term before it)
        assert {table for table, _ in rows_with(store, [BOB_ASCII.encode(), BOB_ASCII[2:].encode()])} >= {
            "messages", "messages_fts_data", "facts", "documents", "document_passages", "document_passages_fts_data"}
        assert any(BOB_ASCII in m.content for m in store.conversations.messages(group_conversation.id))
    finally:
        await harness.stop()
    assert files_with(tmp_path, needles(ASCII, CHINESE) + [str(ALICE).encode()]) == []
    assert files_with(data_dir, [BOB_ASCII.encode()]) != []


async def test_after_a_forget_the_next_users_document_is_their_own(tmp_path, telegram, fake_openai):
    """SQLite gives the ids a forget frees out again: the next document uploaded gets the
    forgotten one's id, and nothing held in memory for that id may answer for it."""
    harness = await BotHarness(tmp_path, telegram, fake_openai, admins=[ALICE], open_to_all=True).start()
    alice, bob = tg_user(ALICE, "Alice"), tg_user(BOB, "Bob")
    telegram.open_private_chat(alice)
    telegram.open_private_chat(bob)
    try:
        await say(harness, bob, "hello")  # Bob is known before Alice, so her rows have the highest ids
        await upload(harness, alice, f"Alice's diary\n\n{ASCII} {CHINESE}\n".encode(), "diary.txt", "text/plain",
                     expect="📚")
        await say(harness, alice, "what did I write?")
        assert ASCII in json.dumps(fake_openai.chat_requests[-1].body)
        alices_document = harness.services.reading.documents.documents_of(harness.store.directory.find_user("tg", ALICE).id)[0]
        await say(harness, alice, "/forget", expect="")
        confirm = telegram.bot_messages(ALICE)[-1]
        telegram.callback_query(confirm.message_id, ForgetMe(confirmed=True).pack(), chat_id=ALICE, user=alice)
        await telegram.wait_until(lambda: telegram.message(ALICE, confirm.message_id).text.startswith("Done."), 10)

        await upload(harness, bob, f"Bob's list\n\n{BOB_ASCII}\n".encode(), "list.txt", "text/plain", expect="📚")
        bobs_document = harness.services.reading.documents.documents_of(harness.store.directory.find_user("tg", BOB).id)[0]
        assert bobs_document.id == alices_document.id  # the id was given out again
        await say(harness, bob, "what is on my list?")
        request = json.dumps(fake_openai.chat_requests[-1].body, ensure_ascii=False)
        assert ASCII not in request and CHINESE not in request
        assert BOB_ASCII in request
    finally:
        await harness.stop()
