"""Personas in Telegram end to end: /persona and switching, /me, character cards sent as
files (getFile on the fake Bot API), /publish, /reload, /card. Assertions are on what the
fake Bot API and the fake model received, and on the database."""

import base64
import json

import pytest

from bot.telegram.callbacks import ChoosePersona, PersonaPage
from bot.telegram.formatting import format_reply
from bot.telegram.views import short
from bot.texts import text
from memory.schema import open_store
from memory.records import Owner
from personas import Persona, card_to_dict, read_card
from personas.images import read_png_text
from tests.card_samples import as_json, png_with_chunk_before_iend, png_with_pillow_text, rich_v2_card, to_base64_json
from tests.fakes.telegram_server import DEFAULT_GROUP_ID, DEFAULT_USER_ID
from tests.harness import BotHarness
from tests.conftest import said

ALICE = DEFAULT_USER_ID
BOB = 2002


@pytest.fixture
async def open_bot(tmp_path, telegram, fake_openai):
    """The bot open to everyone (Alice is the admin), with an operator personas directory."""
    personas_dir = tmp_path / "personas"
    personas_dir.mkdir()
    harness = await BotHarness(tmp_path, telegram, fake_openai, open_to_all=True,
                               personas_dir=personas_dir).start()
    harness.personas_dir = personas_dir
    yield harness
    await harness.stop()


def bob():
    return {"id": BOB, "is_bot": False, "first_name": "Bob", "username": "bob", "language_code": "en"}


async def say(bot_harness, words, count, *, user=None, chat_id=ALICE):
    bot_harness.telegram.private_message(words, user=user)
    return await bot_harness.replies(chat_id, count)


def user_of(bot_harness, external_id):
    return bot_harness.store.directory.find_user("tg", external_id)


def contents(request):
    return [message["content"] for message in request.messages]


async def test_switching_personas_keeps_each_history_apart(companion, telegram, fake_openai):
    fake_openai.enqueue("Hello from the assistant.", "Aye, welcome aboard.", "Back with the assistant.")
    await say(companion, "hello assistant", 1)
    await say(companion, "/persona", 2)
    menu = telegram.bot_messages(ALICE)[-1]
    assert menu.text.startswith("Now talking to: Assistant\nA thoughtful, friendly assistant")
    assert "• 林夕 — 林夕，二十七岁" in menu.text and "• Captain Mara Vale — Mara Vale, 41" in menu.text
    assert [b["text"] for b in menu.buttons] == ["● Assistant", "林夕", "Captain Mara Vale"]

    telegram.callback_query(menu.message_id, ChoosePersona(key="mara").pack())
    texts = await companion.replies(ALICE, 4)
    assert texts[2] == "Now talking to Captain Mara Vale."
    greeting = telegram.bot_messages(ALICE)[-1]
    mara = companion.services.personas.require("mara")
    assert greeting.text == format_reply(mara.render(mara.greeting.strip(), "Alice"))[0].text
    assert [b["text"] for b in greeting.buttons] == [short(prompt, 60) for prompt in mara.starter_prompts[:6]]
    assert len(greeting.buttons) >= 2
    assert telegram.message(ALICE, menu.message_id).buttons == []  # the menu's buttons are gone

    await say(companion, "hi captain", 5)
    to_mara = fake_openai.chat_requests[-1]
    assert "Mara" in to_mara.messages[0]["content"]
    assert "hello assistant" not in json.dumps(to_mara.messages, ensure_ascii=False)
    assert contents(to_mara)[1].startswith(mara.greeting.strip()[:20])
    assert said(contents(to_mara)[-1]) == "hi captain"

    texts = await say(companion, "/persona assistant", 6)
    assert texts[-1].startswith("Now talking to Assistant again") and "Hello from the assistant." in texts[-1]
    await say(companion, "still there?", 7)
    back = fake_openai.chat_requests[-1]
    assert [said(c) for c in contents(back)[1:3]] == ["hello assistant", "Hello from the assistant."]
    assert "hi captain" not in json.dumps(back.messages) and "Aye, welcome aboard." not in json.dumps(back.messages)

    alice = user_of(companion, ALICE)
    assert companion.store.directory.persona_of(Owner.user(alice.id)) == "assistant"
    by_persona = {c.persona_id for c in companion.store.conversations.conversations_of(Owner.user(alice.id))}
    assert by_persona == {"assistant", "mara"}
    texts = await say(companion, "/persona assistant", 8)
    assert texts[-1] == "You are already talking to Assistant."


async def test_the_menu_pages_through_many_personas(companion, telegram):
    for number in range(7):
        companion.services.personas.add(Persona(id=f"extra-{number}", name=f"Extra {number}",
                                                description=f"Number {number}. More text."), source="card")
    await say(companion, "/persona", 1)
    menu = telegram.bot_messages(ALICE)[-1]
    assert len(menu.buttons) == 6 + 3
    assert [b["text"] for b in menu.buttons[-3:]] == ["◀", "Page 1 of 2", "▶"]
    assert menu.buttons[-1]["callback_data"] == PersonaPage(page=1).pack()
    telegram.callback_query(menu.message_id, PersonaPage(page=1).pack())
    await telegram.wait_until(lambda: "Extra 6" in (telegram.message(ALICE, menu.message_id).text or ""))
    page_two = telegram.message(ALICE, menu.message_id)
    assert "• Extra 6 — Number 6." in page_two.text and "• Extra 0" not in page_two.text
    assert [b["text"] for b in page_two.buttons][:4] == ["Extra 3", "Extra 4", "Extra 5", "Extra 6"]


async def test_me_sets_who_the_user_is_for_the_model(companion, telegram, fake_openai):
    texts = await say(companion, "/me", 1)
    assert texts[-1].startswith("I call you Alice (your Telegram name).")
    texts = await say(companion, "/me Ally — a night-shift nurse who loves cats", 2)
    assert texts[-1] == "Got it: I'll call you Ally.\nAbout you: a night-shift nurse who loves cats"
    fake_openai.enqueue("Hi Ally!")
    await say(companion, "hi", 3)
    system = fake_openai.chat_requests[-1].messages[0]["content"]
    assert "talking with Ally." in system  # {{user}} in the assistant's system prompt
    assert system.endswith("## About Ally\na night-shift nurse who loves cats")

    texts = await say(companion, "/me 小雨", 4)
    assert texts[-1] == "Got it: I'll call you 小雨.\nAbout you: a night-shift nurse who loves cats"
    texts = await say(companion, "/me " + "x" * 1001, 5)
    assert "too long" in texts[-1] and user_of(companion, ALICE).me_name == "小雨"
    texts = await say(companion, "/me clear", 6)
    assert texts[-1] == "Forgotten. I call you Alice again (your Telegram name)."
    alice = user_of(companion, ALICE)
    assert (alice.me_name, alice.me_description) == (None, None)


async def test_a_card_file_becomes_a_private_persona_of_its_sender(open_bot, telegram, fake_openai):
    card = png_with_chunk_before_iend("chara", to_base64_json(rich_v2_card()))
    telegram.document(telegram.add_file(card, "seraphina.png", "image/png"))
    texts = await open_bot.replies(ALICE, 1)
    assert texts[0] == "Imported the character card “Seraphina” (id seraphina). It is private: only you can choose it."
    imported = telegram.bot_messages(ALICE)[-1]
    assert imported.buttons[0]["text"] == "💬 Talk to Seraphina"
    assert telegram.calls_of("getFile", ok=True)
    entry = open_bot.services.personas.entry("seraphina")
    assert entry.private and entry.owner_user_id == user_of(open_bot, ALICE).id
    assert entry.persona.model_dump(exclude={"id"}) == read_card(card).persona.model_dump(exclude={"id"})

    # Bob neither sees nor reaches it
    await say(open_bot, "/persona", 1, user=bob(), chat_id=BOB)
    bobs_menu = telegram.bot_messages(BOB)[-1]
    assert "Seraphina" not in bobs_menu.text and "Seraphina" not in json.dumps(bobs_menu.buttons)
    texts = await say(open_bot, "/persona seraphina", 2, user=bob(), chat_id=BOB)
    assert texts[-1] == text("tg.persona_unavailable", "en", id="seraphina")
    telegram.callback_query(bobs_menu.message_id, ChoosePersona(key="seraphina").pack(), chat_id=BOB, user=bob())
    await telegram.wait_until(lambda: any(c.params.get("show_alert") for c in telegram.calls_of("answerCallbackQuery")))
    assert open_bot.store.directory.persona_of(Owner.user(user_of(open_bot, BOB).id)) is None

    # Alice talks to it
    telegram.callback_query(imported.message_id, imported.buttons[0]["callback_data"])
    texts = await open_bot.replies(ALICE, 3)
    assert texts[1] == "Now talking to Seraphina."
    assert texts[2].startswith("Seraphina kneels beside you.")  # Markdown emphasis becomes an entity
    fake_openai.enqueue("Rest now.")
    await say(open_bot, "where am I?", 4)
    assert "guardian of the Eldoria forest" in fake_openai.chat_requests[-1].messages[0]["content"]

    # an admin publishes it; now Bob may choose it
    texts = await say(open_bot, "/publish", 5)
    assert "• seraphina — Seraphina (Alice)" in texts[-1]
    texts = await say(open_bot, "/publish seraphina", 6)
    assert texts[-1] == "“Seraphina” (seraphina) is now offered to everyone."
    texts = await say(open_bot, "/persona seraphina", 4, user=bob(), chat_id=BOB)
    assert texts[-2] == "Now talking to Seraphina."
    texts = await say(open_bot, "/publish seraphina", 7)
    assert texts[-1].startswith("There is no private persona “seraphina”")


async def test_a_card_upload_replayed_after_a_crash_is_not_imported_twice(open_bot, telegram):
    card = png_with_chunk_before_iend("chara", to_base64_json(rich_v2_card()))
    message = telegram.document(telegram.add_file(card, "seraphina.png", "image/png"))
    first = (await open_bot.replies(ALICE, 1))[0]
    await open_bot.stop()
    # as if the process died after storing the persona, before the update was marked handled
    update_id = max(telegram.deliveries)
    store = open_store(open_bot.settings.db)
    with store.db.atomic():
        store.db.execute("UPDATE updates SET done_at = NULL, payload = ? WHERE update_id = ?",
                         [json.dumps({"update_id": update_id, "message": message}), update_id])
    store.close()
    await open_bot.start()
    texts = await open_bot.replies(ALICE, 2)
    assert texts == [first, first]
    assert [entry.persona.id for entry in open_bot.services.personas.unpublished()] == ["seraphina"]


async def test_files_that_are_not_cards_pass_on_and_bad_cards_are_refused(companion, telegram):
    picture = png_with_pillow_text({"Comment": "holiday"})
    telegram.document(telegram.add_file(picture, "holiday.png", "image/png"))
    texts = await companion.replies(ALICE, 1)
    assert "character card" not in texts[-1]  # answered by a later router
    telegram.document(telegram.add_file(b'{"name": "pkg", "version": "1.0"}', "package.json", "application/json"))
    texts = await companion.replies(ALICE, 2)
    assert "character card" not in texts[-1]

    telegram.document(telegram.add_file(b'{"spec": "chara_card_v2", "data": {"name": ', "broken.json"))
    texts = await companion.replies(ALICE, 3)
    assert texts[-1].startswith("I could not import this character card: broken.json: the card is not valid JSON")
    telegram.document(telegram.add_file(as_json({"spec": "chara_card_v7", "data": {"name": "X"}}), "x.json"))
    texts = await companion.replies(ALICE, 4)
    assert "unknown card spec 'chara_card_v7'" in texts[-1] and texts[-1].endswith("Nothing was saved.")
    assert companion.store.db.execute("SELECT count(*) FROM stored_personas").fetchone()[0] == 0


async def test_reload_reads_new_persona_files_and_reports_broken_ones(open_bot, telegram):
    texts = await say(open_bot, "/reload", 1, user=bob(), chat_id=BOB)
    assert texts[-1] == text("tg.admins_only", "en")
    (open_bot.personas_dir / "nova.toml").write_text('name = "Nova"\ndescription = "A star pilot. Fast."\n')
    (open_bot.personas_dir / "broken.toml").write_text('name = "Broken\n')
    texts = await say(open_bot, "/reload", 1)
    assert texts[-1].startswith("Persona files reloaded: 4 personas.\nThese files were skipped:\n• ")
    assert "broken.toml: invalid TOML" in texts[-1]
    await say(open_bot, "/persona", 2)
    assert "• Nova — A star pilot." in telegram.bot_texts(ALICE)[-1]


async def test_card_sends_the_current_persona_as_a_png_card(companion, telegram):
    await say(companion, "/persona 林夕", 2)  # a name works as well as an id
    await say(companion, "/card", 3)
    upload = next(iter(telegram.calls_of("sendDocument", ok=True)[-1].files.values()))
    assert upload.filename == "linxi.png"
    chunks = read_png_text(upload.data, {"chara", "ccv3"})
    linxi = companion.services.personas.require("linxi")
    assert json.loads(base64.b64decode(chunks["ccv3"])) == card_to_dict(linxi, "v3")
    assert read_card(upload.data, "linxi.png").persona.name == "林夕"


async def test_each_group_and_forum_topic_has_its_own_persona(companion, telegram, fake_openai):
    telegram.group_message("/persona linxi")
    texts = await companion.replies(DEFAULT_GROUP_ID, 2)
    assert texts[0] == "Now talking to 林夕." and texts[1].startswith("门上的铜铃叮当响了一声。")
    forum = -1009876543210
    telegram.open_group(forum, title="Forum", is_forum=True)
    telegram.topic_message("/persona mara", thread_id=7, chat_id=forum)
    await companion.replies(forum, 2)
    assert [m.thread_id for m in telegram.bot_messages(forum)] == [7, 7]
    store = companion.store
    assert store.directory.persona_of(Owner.group(f"tg:{DEFAULT_GROUP_ID}")) == "linxi"
    assert store.directory.persona_of(Owner.group(f"tg:{forum}:7")) == "mara"
    assert store.directory.persona_of(Owner.group(f"tg:{forum}")) is None
    assert store.directory.persona_of(Owner.user(user_of(companion, ALICE).id)) is None  # her private chat is untouched
    fake_openai.enqueue("欢迎光临。")
    telegram.group_message("你好", mention="username")
    await companion.replies(DEFAULT_GROUP_ID, 3)
    request = fake_openai.chat_requests[-1]
    assert "林夕" in request.messages[0]["content"] and said(request.messages[-1]["content"]) == "Alice: 你好"
