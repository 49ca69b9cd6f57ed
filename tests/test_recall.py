"""Recall of old verbatim turns, in Chinese and English, through the engine and the fake model."""

import random
from datetime import datetime, timedelta, timezone

from memory.recall import index_terms
from memory.store import Owner, to_text
from memory.tokens import count_many
from tests.conftest import make_memory_engine
from tests.fakes.openai_server import Reply

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
            ids[text] = store.add_message(conversation_id, role, text, tokens=tokens, created_at=to_text(at)).id
    return ids


def recall_part(request):
    last = request.messages[-1]
    return next((p for p in last.parts or [] if p.section == "recall"), None)


async def settle(engine, conversation, user):
    """One real turn: the request moves the boundary past the old turns, as it would live."""
    result = await engine.submit(conversation.id, "嗯", user=user)
    assert result.status == "complete"
    await engine.drain()
    return engine.store.conversation(conversation.id)


async def test_a_fact_said_2000_turns_ago_is_recalled_in_chinese_and_english(store, fake_openai):
    engine = make_memory_engine(store, fake_openai, window=16_384, facts_every=0)
    user = store.ensure_user("local", "mia", display_name="Mia")
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
    before = store.count_messages(conversation.id)
    fake_openai.enqueue(Reply("他喜欢榴莲。"))
    await engine.submit(conversation.id, "小芳平时爱吃啥？", user=user)
    sent = fake_openai.chat_requests[-1].messages
    assert "小芳最喜欢吃榴莲" in sent[-1]["content"]
    assert not any("小芳最喜欢吃榴莲" in m["content"] for m in sent[:-1])
    assert store.count_messages(conversation.id) == before + 2  # the tail is not stored
    await engine.close()


async def test_an_answer_is_recalled_with_its_question(store, fake_openai):
    engine = make_memory_engine(store, fake_openai, window=8192, facts_every=0)
    user = store.ensure_user("local", "mia", display_name="Mia")
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
    user = store.ensure_user("local", "mia", display_name="Mia")
    owner = Owner.user(user.id)
    old = engine.conversation_for(owner, user=user)
    tomatoes = store.add_message(old.id, "user", "My grandmother Esmeralda grows tomatoes.")
    lovely = store.add_message(old.id, "assistant", "Lovely!")
    with_luna = engine.conversation_for(owner, "luna", user=user)
    store.add_message(with_luna.id, "user", "Esmeralda also keeps bees.")
    current = engine.start_conversation(owner, user=user)
    store.add_message(current.id, "user", "Esmeralda called me today.")
    store.add_message(current.id, "assistant", "How is she?")
    request = engine.build_request(store.conversation(current.id), user=user, query="What does Esmeralda grow?",
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
