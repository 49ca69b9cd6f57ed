"""Recall of old verbatim turns, in Chinese and English, through the engine and the fake model."""

import random
from datetime import datetime, timedelta, timezone

import pytest

from memory.recall import index_terms
from memory.records import Owner, to_text
from memory.tokens import count_many
from tests.conftest import make_memory_engine
from tests.fakes.openai_server import Reply


@pytest.fixture
def store(backend_store):
    return backend_store


FILLER_ZH = "今天 天气 不错 我们 一起 散步 喝茶 看书 晚饭 电影 音乐 周末 工作 有点 累了 开心 觉得 还是 明天 见面".split()
FILLER_EN = "the weather was nice today we walked along river talked about books dinner music weekend tired happy".split()


def fill(store, conversation_id, turns, planted: dict[int, tuple[str, str]], seed=5):
    """`turns` filler turns; planted[turn] = (user text, reply) replaces that turn's filler."""
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, 8, tzinfo=timezone.utc)
    rows = []
    for turn in range(turns):
        words = FILLER_ZH if turn % 2 else FILLER_EN
        joiner = "" if words is FILLER_ZH else " "
        user_text = joiner.join(rng.choice(words) for _ in range(25))
        reply = joiner.join(rng.choice(words) for _ in range(30))
        user_text, reply = planted.get(turn, (user_text, reply))
        at = start + timedelta(hours=3 * turn)
        rows += [("user", user_text, at), ("assistant", reply, at + timedelta(minutes=1))]
    ids = {}
    with store.db.atomic():
        for (role, text, at), tokens in zip(rows, count_many([r[1] for r in rows])):
            ids[text] = store.conversations.add_message(conversation_id, role, text, tokens=tokens, created_at=to_text(at)).id
    return ids


def recall_part(request):
    last = request.messages[-1]
    return next((p for p in last.parts or [] if p.section == "recall"), None)


async def settle(engine, conversation, user):
    """One real turn: the request moves the boundary past the old turns, as it would live."""
    result = await engine.submit(conversation.id, "嗯", user=user)
    assert result.status == "complete"
    await engine.drain()
    return engine.store.conversations.conversation(conversation.id)


async def test_a_fact_said_2000_turns_ago_is_recalled_in_chinese_and_english(store, fake_openai):
    engine = make_memory_engine(store, fake_openai, window=16_384, facts_every=0)
    user = store.directory.ensure_user("local", "mia", display_name="Mia")
    conversation = engine.conversation_for(Owner.user(user.id), user=user)
    planted = {
        3: ("对了，我表妹小芳最喜欢吃榴莲，每次来都要买。", "榴莲的味道很特别呢！"),
        8: ("My neighbour Marcus repairs vintage motorcycles for a living.", "That sounds like a fun job."),
    }
    ids = fill(store, conversation.id, 2000, planted)
    conversation = await settle(engine, conversation, user)
    assert conversation.boundary_message_id > ids[planted[8][0]]  # both are long out of the window

    request = engine.build_request(conversation, user=user, query="小芳平时爱吃啥？", final_user_text="小芳平时爱吃啥？")
    part = recall_part(request)
    assert part is not None and ids[planted[3][0]] in part.source_ids
    assert ids[planted[3][1]] in part.source_ids  # with the reply that goes with it
    assert "[Sun 2023-01-01]\n17:00 Mia: 对了，我表妹小芳最喜欢吃榴莲" in request.messages[-1].content

    request = engine.build_request(conversation, user=user, query="What does Marcus do these days?",
                                   final_user_text="What does Marcus do these days?")
    assert ids[planted[8][0]] in recall_part(request).source_ids

    # through a real turn: the model receives the recalled turn in the tail, never in the prefix
    before = store.conversations.count_messages(conversation.id)
    fake_openai.enqueue(Reply("他喜欢榴莲。"))
    await engine.submit(conversation.id, "小芳平时爱吃啥？", user=user)
    sent = fake_openai.chat_requests[-1].messages
    assert "小芳最喜欢吃榴莲" in sent[-1]["content"]
    assert not any("小芳最喜欢吃榴莲" in m["content"] for m in sent[:-1])
    assert store.conversations.count_messages(conversation.id) == before + 2  # the tail is not stored
    await engine.close()


async def test_an_answer_is_recalled_with_its_question(store, fake_openai):
    engine = make_memory_engine(store, fake_openai, window=8192, facts_every=0)
    user = store.directory.ensure_user("local", "mia", display_name="Mia")
    conversation = engine.conversation_for(Owner.user(user.id), user=user)
    planted = {10: ("What should the new wifi be called?", "Let's call the network Bluefalcon, with a capital B.")}
    ids = fill(store, conversation.id, 300, planted)
    conversation = await settle(engine, conversation, user)
    request = engine.build_request(conversation, user=user, query="Is it Bluefalcon?", final_user_text="Is it Bluefalcon?")
    assert recall_part(request).source_ids == [ids[planted[10][0]], ids[planted[10][1]]]
    await engine.close()


async def test_recall_reaches_earlier_conversations_but_not_the_window_or_other_personas(
        tmp_path, store, fake_openai):
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "luna.toml").write_text('id = "luna"\nname = "Luna"\n', encoding="utf-8")
    from personas import PersonaLibrary

    engine = make_memory_engine(store, fake_openai, personas=PersonaLibrary([folder]), facts_every=0)
    user = store.directory.ensure_user("local", "mia", display_name="Mia")
    owner = Owner.user(user.id)
    old = engine.conversation_for(owner, user=user)
    tomatoes = store.conversations.add_message(old.id, "user", "My grandmother Esmeralda grows tomatoes.")
    lovely = store.conversations.add_message(old.id, "assistant", "Lovely!")
    with_luna = engine.conversation_for(owner, "luna", user=user)
    store.conversations.add_message(with_luna.id, "user", "Esmeralda also keeps bees.")
    current = engine.start_conversation(owner, user=user)
    store.conversations.add_message(current.id, "user", "Esmeralda called me today.")
    store.conversations.add_message(current.id, "assistant", "How is she?")
    request = engine.build_request(store.conversations.conversation(current.id), user=user, query="What does Esmeralda grow?",
                                   final_user_text="What does Esmeralda grow?")
    # an earlier conversation with the same persona, not another persona's, not what the window holds
    assert recall_part(request).source_ids == [tomatoes.id, lovely.id]
    assert "keeps bees" not in request.messages[-1].content
    await engine.close()


def test_index_terms_match_how_messages_are_indexed():
    assert index_terms("小芳平时做什么工作？") == ["小芳", "平时", "什么", "工作"]  # no "芳平" across words
    assert index_terms("图书管理员阿桂") == ["图书", "管理", "理员", "阿桂"]
    assert index_terms("小瑾会演奏什么") == ["小瑾", "瑾会", "演奏", "什么"]  # a name glued to a verb
    assert index_terms("What does Marcus do, Café-owner_Marcus?") == [
        "what", "does", "marcus", "do", "cafe", "owner"]
    assert index_terms("a 我 2024") == ["2024"]


# -- recall whenever stored turns are outside the request ------------------------------------

DIARY = [  # (days after the start, user text, reply); the rest is chatter naming both speakers
    (3, "Leo, I signed up for a pottery class at the community centre!", "Oh nice, Maya, tell me how it goes."),
    (40, "My cousin is called Tomas, he lives by the sea.", "Sounds lovely, Maya."),
    (70, "Tomas just opened a bakery near the harbour!", "Good for him, Maya!"),
    (95, "Spent the weekend in Cornwall, the cliffs were unreal.", "Jealous, Maya!"),
    (60, "I've been painting sunflowers on the balcony every evening.", "Maya, send me a photo!"),
]
START = datetime(2025, 1, 6, 18, tzinfo=timezone.utc)


def sillytavern_chat(path, chatter_turns=400):
    """A SillyTavern chat of Maya and Leo: the diary's turns among chatter, sessions days apart."""
    import json

    rng = random.Random(3)
    chatter = ["Leo, long day at work again.", "Maya, did you eat something proper?", "The weekend was rainy, Leo.",
               "Maya, my class at the gym was cancelled.", "Leo, my sister called about nothing.",
               "Good night, Maya!", "Morning, Leo!", "Maya, the balcony plants need water."]
    lines = [json.dumps({"user_name": "Maya", "character_name": "Leo", "create_date": START.isoformat()})]
    planted = {day: (text, reply) for day, text, reply in DIARY}
    for turn in range(chatter_turns):
        day = turn // 3
        at = START + timedelta(days=day, minutes=turn % 3 * 5)
        user_text, reply = planted.pop(day) if day in planted and turn % 3 == 0 else (
            rng.choice(chatter), rng.choice(chatter))
        for name, is_user, text, offset in (("Maya", True, user_text, 0), ("Leo", False, reply, 1)):
            lines.append(json.dumps({"name": name, "is_user": is_user, "is_system": False, "mes": text,
                                     "send_date": int((at + timedelta(minutes=offset)).timestamp() * 1000)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def leo_library(tmp_path):
    from personas import PersonaLibrary

    folder = tmp_path / "personas"
    folder.mkdir(exist_ok=True)
    (folder / "leo.toml").write_text('id = "leo"\nname = "Leo"\n', encoding="utf-8")
    return PersonaLibrary([folder])


def imported(tmp_path, store):
    from zoneinfo import ZoneInfo

    from memory.importer import import_chat, read_chat_file

    user = store.directory.ensure_user("local", "maya", display_name="Maya")
    chat = read_chat_file(sillytavern_chat(tmp_path / "chat.jsonl"), ZoneInfo("UTC"))
    conversation = import_chat(store, Owner.user(user.id), "leo", chat).conversation
    return user, conversation


def ask(engine, conversation, user, question):
    request = engine.build_request(engine.store.conversations.conversation(conversation.id), user=user, query=question,
                                   final_user_text=question)
    part = recall_part(request)
    return request, (part.source_ids if part else []), request.messages[-1].content


def later(days=200):
    return lambda: START + timedelta(days=days)


async def test_an_imported_chat_is_recalled_although_its_boundary_is_0(tmp_path, store, fake_openai):
    engine = make_memory_engine(store, fake_openai, window=4096, reply_tokens=1024, facts_every=0,
                                personas=leo_library(tmp_path), clock=later())
    user, conversation = imported(tmp_path, store)
    assert conversation.boundary_message_id == 0
    request, ids, text = ask(engine, conversation, user, "What kind of class did Maya sign up for?")
    assert request.history_start() > ids[0]  # the window holds only the last turns…
    assert "pottery class" in text  # …and recall brings back the old one
    assert request.total_tokens <= request.budget.prompt_limit

    # through a real turn: the fake model receives the turn in the tail, nothing is stored of it
    fake_openai.enqueue(Reply("Pottery!"))
    before = store.conversations.count_messages(conversation.id)
    result = await engine.submit(conversation.id, "What kind of class did Maya sign up for?", user=user)
    assert result.status == "complete"
    sent = fake_openai.chat_requests[-1].messages
    assert "pottery class" in sent[-1]["content"]
    assert not any("pottery" in m["content"] for m in sent[:-1])
    assert store.conversations.count_messages(conversation.id) == before + 2
    await engine.close()


async def test_recall_covers_turns_a_smaller_window_leaves_out_after_the_fact(tmp_path, store, fake_openai):
    personas = leo_library(tmp_path)
    user, conversation = imported(tmp_path, store)
    big = make_memory_engine(store, fake_openai, window=65_536, facts_every=0, personas=personas, clock=later())
    request = big.build_request(conversation, user=user, query="")
    store.conversations.set_boundary(conversation.id, request.boundary_message_id)
    assert store.conversations.conversation(conversation.id).boundary_message_id == 0  # 800 short messages fit 64k
    _, ids, _ = ask(big, conversation, user, "Which cliffs did Maya see?")
    assert ids == []  # all in the window: nothing to recall

    small = make_memory_engine(store, fake_openai, window=4096, reply_tokens=1024, facts_every=0,
                               personas=personas, clock=later())
    request, ids, text = ask(small, conversation, user, "Which cliffs did Maya see?")
    assert "Cornwall" in text and request.total_tokens <= request.budget.prompt_limit
    await big.close()
    await small.close()


async def test_the_recall_budget_follows_the_room_left_and_never_passes_the_window(tmp_path, store, fake_openai):
    from memory.recall import RecallSettings

    user, conversation = imported(tmp_path, store)
    engine = make_memory_engine(store, fake_openai, window=4096, reply_tokens=1024, facts_every=0,
                                personas=leo_library(tmp_path), clock=later())
    recall = next(p for p in engine.providers if type(p).__name__ == "RecallProvider")
    question = "Maya, Leo, the balcony, the class, the weekend, the sister?"  # words said in many turns
    tokens = []
    for share in (0.05, 0.15, 0.5):
        recall.settings = RecallSettings(window_share=share, min_coverage=0, relative_floor=0, common_share=1)
        request, ids, _ = ask(engine, conversation, user, question)
        recalled = sum(p.tokens for p in request.messages[-1].parts if p.section == "recall")
        tokens.append(recalled)
        assert recalled <= share * 4096
        assert request.total_tokens <= request.budget.prompt_limit  # never past the window
        assert request.total_tokens + request.room == request.budget.prompt_limit
    # more room, more hits (the tail reserve is 409), until the hits this question has run out
    assert tokens[0] < tokens[1] <= tokens[2]
    assert tokens[2] > 409
    await engine.close()


async def test_hits_come_with_their_neighbour_under_their_session_date_in_order(tmp_path, store, fake_openai):
    engine = make_memory_engine(store, fake_openai, window=4096, reply_tokens=1024, facts_every=0,
                                personas=leo_library(tmp_path), clock=later())
    user, conversation = imported(tmp_path, store)
    _, ids, text = ask(engine, conversation, user, "What did Maya's cousin open?")
    # multi-hop: "cousin" finds the turn that names him, his name finds what he opened
    assert "My cousin is called Tomas" in text and "opened a bakery" in text
    assert "[Sat 2025-02-15]\n18:00 Maya: My cousin is called Tomas, he lives by the sea.\n18:01 Leo: Sounds lovely" in text
    assert text.index("Tomas, he lives") < text.index("opened a bakery")  # sessions oldest first
    assert ids == sorted(ids)
    await engine.close()


async def test_stems_dates_and_names_rank_natural_questions(tmp_path, store, fake_openai):
    engine = make_memory_engine(store, fake_openai, window=4096, reply_tokens=1024, facts_every=0,
                                personas=leo_library(tmp_path), clock=later())
    user, conversation = imported(tmp_path, store)
    # "painted" finds "painting": English stems
    assert "painting sunflowers" in ask(engine, conversation, user, "What has Maya painted lately?")[2]
    # "in April" is a date range over the session dates (Cornwall was said on 2025-04-11)
    assert "Cornwall" in ask(engine, conversation, user, "What did Maya do in April?")[2]
    # the speakers' names are in most turns: alone they recall nothing
    assert ask(engine, conversation, user, "Maya and Leo?")[1] == []
    await engine.close()


def test_query_keys_stem_english_and_drop_stop_words():
    from memory.recall import query_keys

    assert query_keys("What has Maya been painting lately?") == ["maya", "paint", "late"]
    assert query_keys("林夏最近在画什么？") == ["林夏", "画"]  # 最近 and 什么 are stop words, 画 a weak key


def test_date_ranges_from_questions():
    from zoneinfo import ZoneInfo

    from memory.recall import date_range

    now, zone = datetime(2026, 2, 10, tzinfo=timezone.utc), ZoneInfo("UTC")
    assert date_range("What did she do in May?", now, zone)[0] == datetime(2025, 5, 1, tzinfo=zone)
    assert date_range("她去年去哪儿了？", now, zone) == (datetime(2025, 1, 1, tzinfo=zone), datetime(2026, 1, 1, tzinfo=zone))
    assert date_range("上个月你做了什么", now, zone)[0] == datetime(2026, 1, 1, tzinfo=zone)
    assert date_range("What may I ask?", now, zone) is None
    assert date_range("五月的时候呢", now, zone)[0] == datetime(2025, 5, 1, tzinfo=zone)
