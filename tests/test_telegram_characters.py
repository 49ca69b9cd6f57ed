"""Playing a character of an uploaded novel, end to end: /characters, the pick button,
the card, and /asof, with the scripted model (well-formed and malformed answers)."""

import json

from bot.telegram.callbacks import ExportCard
from memory.records import Owner
from tests.fakes.novels import ZH_CHARACTERS_REPLY, ZH_PROFILE_REPLY, NovelModel, chinese_novel, kind_of, user_text
from tests.fakes.telegram_server import DEFAULT_GROUP_ID, DEFAULT_USER_ID

ALICE = DEFAULT_USER_ID


async def bot_says(companion, fragment, timeout=10.0):
    telegram = companion.telegram
    await telegram.wait_until(lambda: any(fragment in (m.text or "") for m in telegram.bot_messages(ALICE)),
                              timeout)
    return [m for m in telegram.bot_messages(ALICE) if fragment in (m.text or "")][-1]


async def read_novel(companion):
    file_id = companion.telegram.add_file(chinese_novel().encode(), "西游小记.txt", "text/plain")
    companion.telegram.document(file_id)
    await bot_says(companion, "📚")


async def test_characters_needs_a_novel(companion, telegram):
    telegram.private_message("/characters")
    texts = await companion.replies(ALICE, 1)
    assert "Attach a novel first" in texts[0]
    telegram.group_message("/characters")
    await telegram.wait_until(lambda: telegram.bot_texts(DEFAULT_GROUP_ID))
    assert "private chat" in telegram.bot_texts(DEFAULT_GROUP_ID)[0]


async def test_pick_a_character_and_talk_to_them_with_the_novel_at_hand(companion, telegram, fake_openai):
    fake_openai.default_reply = NovelModel(characters=ZH_CHARACTERS_REPLY, profile=ZH_PROFILE_REPLY, chat="俺老孙来也！")
    await read_novel(companion)
    telegram.private_message("/characters")
    listing = await bot_says(companion, "Main characters")
    assert "1. 孙悟空 — 花果山的石猴" in listing.text and "哪吒" not in listing.text
    picks = [b for b in listing.buttons if b["text"].startswith("🎭")]
    assert picks[0]["text"] == "🎭 孙悟空"
    telegram.callback_query(listing.message_id, picks[0]["callback_data"])
    playing = await bot_says(companion, "From now on I am 孙悟空")
    await bot_says(companion, "俺老孙在此，你是何人？")  # the persona's greeting
    store = companion.store
    user = store.directory.find_user("tg", ALICE)
    persona_id = store.directory.persona_of(Owner.user(user.id))
    entry = companion.services.personas.entry(persona_id)
    assert entry.source == "novel" and entry.owner_user_id == user.id and entry.persona.name == "孙悟空"
    conversation = store.conversations.active_conversation(Owner.user(user.id), persona_id)
    assert companion.services.reading.documents.attachments(conversation.id)[0].document.title == "西游小记"
    telegram.private_message("你是谁？")
    await bot_says(companion, "俺老孙来也！")
    chat = [r for r in fake_openai.chat_requests if kind_of(r.body) == "chat"][-1].messages
    assert "孙悟空" in chat[0]["content"] and "俺老孙" in chat[0]["content"]
    assert "七十二般变化" in chat[1]["content"] and chat[-1]["content"].endswith("你是谁？")
    assert playing.buttons[0]["callback_data"] == ExportCard(persona_id=persona_id).pack()
    telegram.callback_query(playing.message_id, playing.buttons[0]["callback_data"])
    await telegram.wait_until(lambda: len(telegram.calls_of("sendDocument", ok=True)) == 2)
    uploads = [u for call in telegram.calls_of("sendDocument", ok=True) for u in call.files.values()]
    card = json.loads(next(u.data for u in uploads if u.filename.endswith(".json")))
    assert card["data"]["name"] == "孙悟空" and card["data"]["character_book"]["entries"]


async def test_malformed_model_answers_still_give_a_list(companion, telegram, fake_openai):
    fake_openai.default_reply = NovelModel(characters='Sure:\n```json\n{"characters": [{"name": "唐僧", "line": "师')
    await read_novel(companion)
    telegram.private_message("/characters")
    listing = await bot_says(companion, "Main characters")
    assert "1. 唐僧" in listing.text


async def test_asof_moves_the_timeline_and_rebuilds_the_character(companion, telegram, fake_openai):
    fake_openai.default_reply = NovelModel(characters=ZH_CHARACTERS_REPLY, profile=ZH_PROFILE_REPLY, chat="嗯。")
    await read_novel(companion)
    telegram.private_message("/asof")
    usage = await bot_says(companion, "Use /asof N")
    assert "the whole book" in usage.text and "(1–5)" in usage.text
    telegram.private_message("/asof 2")
    await bot_says(companion, "up to chapter 2, “第二回　拜师学艺”")
    telegram.private_message("/characters")
    listing = await bot_says(companion, "(up to chapter 2)")
    telegram.callback_query(listing.message_id, listing.buttons[0]["callback_data"])
    await bot_says(companion, "From now on I am 孙悟空")
    profile = [r for r in fake_openai.chat_requests if kind_of(r.body) == "profile"]
    assert "大闹天宫" not in user_text(profile[-1].body)
    telegram.private_message("/asof 4")
    await bot_says(companion, "up to chapter 4, “第四回　五行山下”")
    profile = [r for r in fake_openai.chat_requests if kind_of(r.body) == "profile"]
    assert len(profile) == 2 and "五行山" in user_text(profile[-1].body)
    store = companion.store
    user = store.directory.find_user("tg", ALICE)
    persona_id = store.directory.persona_of(Owner.user(user.id))
    assert "第四回" in companion.services.personas.entry(persona_id).persona.scenario
    telegram.private_message("高老庄在哪？")
    await bot_says(companion, "嗯。")
    chat = [r for r in fake_openai.chat_requests if kind_of(r.body) == "chat"][-1].messages
    assert "五行山" in chat[1]["content"] and "高老庄收八戒" not in chat[1]["content"]
    telegram.private_message("/asof 99")
    await telegram.wait_until(lambda: sum("Use /asof N" in (m.text or "") for m in telegram.bot_messages(ALICE)) == 2)
    assert "up to chapter 4" in telegram.bot_messages(ALICE)[-1].text
    telegram.private_message("/asof off")
    await bot_says(companion, "Timeline cleared")
