"""The update journal: updates are journaled on receipt, handled once, replayed if unfinished."""

import json

from aiogram import Dispatcher, Router
from aiogram.types import Message

from bot.telegram.middlewares import JournalOnReceipt, UpdateJournal


def counting_dispatcher(journal: UpdateJournal) -> tuple[Dispatcher, list[str]]:
    handled: list[str] = []
    router = Router()

    @router.message()
    async def record(message: Message) -> None:
        handled.append(message.text)

    dispatcher = Dispatcher()
    dispatcher.update.outer_middleware(journal)
    dispatcher.include_router(router)
    return dispatcher, handled


async def test_updates_are_journaled_when_getupdates_returns_them_and_handled_once(store, telegram, telegram_bot):
    journal = UpdateJournal(store)
    telegram_bot.session.middleware(JournalOnReceipt(journal))
    dispatcher, handled = counting_dispatcher(journal)
    telegram.private_message("one")
    telegram.private_message("two")

    updates = await telegram_bot.get_updates()
    # a crash now, before any handler ran, would still find both in the journal
    assert [entry.update_id for entry in store.inbox.unfinished_updates("tg")] == [u.update_id for u in updates]
    assert store.inbox.unfinished_updates("tg")[0].chat_key == f"{telegram.user()['id']}:"

    for update in updates:
        await dispatcher.feed_update(telegram_bot, update)
    again = await telegram_bot.get_updates()  # not confirmed: Telegram sends them again
    for update in again:
        await dispatcher.feed_update(telegram_bot, update)
    assert handled == ["one", "two"]
    assert store.inbox.unfinished_updates("tg") == []


async def test_an_update_journaled_elsewhere_is_handled_once(store, telegram, telegram_bot):
    journal = UpdateJournal(store)
    dispatcher, handled = counting_dispatcher(journal)
    telegram.private_message("webhook retry")
    update = (await telegram_bot.get_updates())[0]
    await dispatcher.feed_update(telegram_bot, update)
    await dispatcher.feed_update(telegram_bot, update)
    assert handled == ["webhook retry"]


def test_update_json_with_lone_surrogates_loads_as_replacement_characters():
    from bot.telegram.middlewares import load_json

    raw = '{"text": "a\\ud800b \\ud83d\\ude00 \\udfff", "entities": [{"\\udc00": ["\\ud801"]}], "n": 1}'
    loaded = load_json(raw)
    assert loaded == {"text": "a\ufffdb 😀 \ufffd", "entities": [{"\ufffd": ["\ufffd"]}], "n": 1}
    json.dumps(loaded, ensure_ascii=False).encode("utf-8")  # encodable now
    assert load_json('{"text": "😀 plain"}') == {"text": "😀 plain"}
    assert load_json('{"text": "nul\\u0000here"}') == {"text": "nul\ufffdhere"}  # no text; PostgreSQL refuses it
