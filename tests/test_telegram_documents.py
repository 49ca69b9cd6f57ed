"""Documents in Telegram end to end: uploads through getFile, limits, refusals, /docs,
Cancel, links, and pictures, asserting on what the fakes received and on the database."""

import threading

import pytest

from bot.telegram.callbacks import ToggleDocument
from memory.documents import AddressPolicy
from memory.records import Owner
from tests.fakes.documents import make_pdf
from tests.fakes.novels import NovelModel, chinese_novel, english_novel
from tests.fakes.telegram_server import DEFAULT_GROUP_ID, DEFAULT_USER_ID
from tests.fakes.web_server import FakeWebServer, NameMap
from tests.harness import BotHarness
from tests.conftest import said

ALICE = DEFAULT_USER_ID


def alice(companion):
    return companion.store.directory.find_user("tg", ALICE)


def conversation_of(companion):
    return companion.store.conversations.active_conversation(Owner.user(alice(companion).id), "assistant")


async def status_says(companion, fragment, timeout=10.0):
    """Wait until one of the bot's messages (edits included) contains `fragment`; return it."""
    telegram = companion.telegram
    await telegram.wait_until(lambda: any(fragment in (m.text or "") for m in telegram.bot_messages(ALICE)),
                              timeout)
    return next(m for m in telegram.bot_messages(ALICE) if fragment in (m.text or ""))


async def upload(companion, data, name, mime="text/plain", caption=None):
    file_id = companion.telegram.add_file(data, name, mime)
    companion.telegram.document(file_id, caption=caption)


async def test_an_uploaded_novel_is_read_attached_and_in_the_next_request(companion, telegram, fake_openai):
    await upload(companion, chinese_novel().encode("gb18030"), "西游小记.txt")
    status = await status_says(companion, "📚")
    assert "西游小记" in status.text and "5 chapters" in status.text and "whole text" in status.text
    assert telegram.calls_of("getFile", ok=True)
    reading = companion.services.reading
    document = reading.documents.documents_of(alice(companion).id)[0]
    assert reading.documents.attached_ids(conversation_of(companion).id) == {document.id}
    assert fake_openai.chat_requests == []  # no caption: nothing to answer
    telegram.private_message("孙悟空学会了什么？")
    await companion.replies(ALICE, 2)
    messages = fake_openai.chat_requests[-1].messages
    assert messages[0]["role"] == "system" and "筋斗云" not in messages[0]["content"]
    assert messages[1]["role"] == "user" and "七十二般变化" in messages[1]["content"]


async def test_the_caption_is_answered_after_reading(companion, telegram, fake_openai):
    fake_openai.enqueue("A fine beginning.")
    await upload(companion, english_novel().encode(), "pride.txt", caption="What do you think of chapter 1?")
    await companion.replies(ALICE, 2)
    request = fake_openai.chat_requests[0].messages
    assert "Netherfield" in request[1]["content"] and request[-1]["content"].endswith("What do you think of chapter 1?")


async def test_files_over_the_bot_api_limit_are_refused_without_downloading(companion, telegram, fake_openai):
    await upload(companion, b"x" * (20 * 1024 * 1024 + 1), "huge.txt")
    texts = await companion.replies(ALICE, 1)
    assert "20 MB" in texts[0] and "local Bot API server" in texts[0]
    assert telegram.calls_of("getFile") == [] and companion.services.reading.documents.counts()["documents"] == 0


async def test_the_operators_size_limit_is_said_clearly(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, document_max_mb=0.001).start()
    try:
        await upload(harness, b"a" * 5000, "small.txt")
        texts = await harness.replies(ALICE, 1)
        assert "This file is 0.005 MB; I read documents of up to 0.001 MB" in texts[0]
        assert telegram.calls_of("getFile") == []
    finally:
        await harness.stop()


async def test_a_refused_file_gets_one_clear_line_and_nothing_is_stored(companion, telegram):
    await upload(companion, make_pdf(["secret"], user_password="pw"), "locked.pdf", "application/pdf")
    status = await status_says(companion, "password")
    assert status.buttons == []  # the Cancel button is gone
    telegram.private_message("/lang zh")
    await companion.replies(ALICE, 2)
    await upload(companion, b"", "empty.txt")
    await status_says(companion, "文件是空的")
    assert set(companion.services.reading.documents.counts().values()) == {0}


async def test_an_image_file_without_vision_gets_a_clear_message(companion, telegram, fake_openai):
    await upload(companion, b"\x89PNG\r\n\x1a\n fake", "cat.png", "image/png")
    texts = await companion.replies(ALICE, 1)
    assert "can't see pictures" in texts[0] and fake_openai.chat_requests == []


async def test_a_photo_without_vision_or_caption_gets_a_clear_message(companion, telegram, fake_openai):
    telegram.photo()
    texts = await companion.replies(ALICE, 1)
    assert "can't see pictures" in texts[0] and fake_openai.chat_requests == []
    assert companion.store.counts()["messages"] == 0


async def test_docs_lists_and_toggles_attachments(companion, telegram):
    await upload(companion, chinese_novel().encode(), "西游小记.txt")
    await status_says(companion, "📚")
    telegram.private_message("/docs")
    await companion.replies(ALICE, 2)
    listing = telegram.bot_messages(ALICE)[-1]
    document = companion.services.reading.documents.documents_of(alice(companion).id)[0]
    assert listing.buttons[0]["text"].startswith("✅ 西游小记")
    assert listing.buttons[0]["callback_data"] == ToggleDocument(document_id=document.id).pack()
    telegram.callback_query(listing.message_id, listing.buttons[0]["callback_data"])
    await telegram.wait_until(lambda: telegram.message(ALICE, listing.message_id).buttons[0]["text"].startswith("▫️"))
    assert companion.services.reading.documents.attached_ids(conversation_of(companion).id) == set()
    answered = telegram.calls_of("answerCallbackQuery")[-1]
    assert "Detached" in answered.params.get("text", "")


async def test_cancel_stops_reading_and_keeps_nothing(companion, telegram):
    telegram.download_gate = threading.Event()
    try:
        await upload(companion, chinese_novel().encode(), "slow.txt")
        status = await status_says(companion, "slow.txt")
        assert status.buttons[0]["text"] == "✖ Cancel"
        telegram.callback_query(status.message_id, status.buttons[0]["callback_data"])
        await telegram.wait_until(lambda: telegram.calls_of("answerCallbackQuery"))
    finally:
        telegram.download_gate.set()
    await status_says(companion, "Nothing was kept")
    assert companion.services.reading.documents.counts()["documents"] == 0


@pytest.fixture
def web():
    with FakeWebServer() as server:
        yield server


async def test_links_are_read_before_the_message_is_answered(tmp_path, telegram, fake_openai, web):
    web.page("/novel.txt", chinese_novel().encode("gb18030"), "text/plain; charset=gb18030")
    port = web.base_url.rsplit(":", 1)[1]
    options = {"link_resolver": NameMap({"books.test": ["127.0.0.1"], "intranet.test": ["10.1.2.3"]}),
               "link_policy": AddressPolicy(allow_loopback_for_tests=True)}
    harness = await BotHarness(tmp_path, telegram, fake_openai, fetch_links=True, service_options=options).start()
    try:
        fake_openai.enqueue("读完了。")
        telegram.private_message(f"读一下 http://books.test:{port}/novel.txt 和 http://intranet.test/secret 。")
        await harness.replies(ALICE, 3)
        texts = telegram.bot_texts(ALICE)
        assert any("📚" in t and "西游小记" in t for t in texts)
        assert any("private address" in t for t in texts)
        assert [path for _, path, _ in web.requests] == ["/novel.txt"]
        request = fake_openai.chat_requests[-1].messages
        assert "筋斗云" in request[1]["content"] and "intranet.test/secret" in request[-1]["content"]
    finally:
        await harness.stop()


async def test_links_are_left_alone_unless_enabled(companion, telegram, fake_openai, web):
    web.page("/novel.txt", "正文".encode(), "text/plain")
    telegram.private_message(f"look {web.base_url}/novel.txt")
    await companion.replies(ALICE, 1)
    assert web.requests == [] and len(fake_openai.chat_requests) == 1


async def test_with_vision_a_photo_goes_to_the_model_for_that_turn_only(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, vision=True).start()
    try:
        fake_openai.default_reply = NovelModel(chat="A cat!")
        telegram.photo(b"\xff\xd8\xff tabby", caption="my cat")
        await harness.replies(ALICE, 1)
        content = fake_openai.chat_requests[0].messages[-1]["content"]
        assert content[0]["text"].endswith("[photo] my cat") and content[1]["image_url"]["url"].startswith(
            "data:image/jpeg;base64,")
        conversation = harness.store.conversations.active_conversation(Owner.user(harness.store.directory.find_user("tg", ALICE).id),
                                                         "assistant")
        assert [m.content for m in harness.store.conversations.messages(conversation.id)] == ["[photo] my cat", "A cat!"]
        await upload(harness, b"\x89PNG\r\n\x1a\n fake", "cat.png", "image/png", caption="and this?")
        await harness.replies(ALICE, 2)
        assert fake_openai.chat_requests[1].messages[-1]["content"][1]["image_url"]["url"].startswith(
            "data:image/png;base64,")
    finally:
        await harness.stop()


async def test_in_a_group_only_uploads_addressed_to_the_bot_are_read(companion, telegram, fake_openai):
    fake_openai.enqueue("It is about a monkey.")
    plain = telegram.add_file(english_novel().encode(), "pride.txt", "text/plain")
    telegram.document(plain, chat_id=DEFAULT_GROUP_ID, caption="for later")
    addressed = telegram.add_file(chinese_novel().encode(), "西游小记.txt", "text/plain")
    telegram.document(addressed, chat_id=DEFAULT_GROUP_ID, caption="@companion_test_bot what is this about?")
    await telegram.wait_until(lambda: "It is about a monkey." in telegram.bot_texts(DEFAULT_GROUP_ID), 10)
    reading = companion.services.reading
    group = companion.store.conversations.active_conversation(Owner.group(f"tg:{DEFAULT_GROUP_ID}"), "assistant")
    assert [a.document.title for a in reading.documents.attachments(group.id)] == ["西游小记"]
    request = fake_openai.chat_requests[-1].messages
    assert "筋斗云" in request[1]["content"]  # verbatim in the static part: no passages in a tail
    assert said(request[-1]["content"]) == "Alice: what is this about?"
