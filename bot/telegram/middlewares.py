"""Outer middlewares on every update, in the order they run:

1. `UpdateJournal` records each update before handling it. An update delivered twice
   (a restart, a webhook retry) is handled once; an update whose handling a crash cut
   short is still unfinished in the journal and is replayed at start-up. Messages of one
   chat are handled strictly in arrival order (a FIFO lock per chat); other updates
   (button presses, stop requests) are not queued behind a streaming reply.
   Updates are journaled on receipt (`receive`), before Telegram learns they arrived:
   `JournalOnReceipt` does it for each getUpdates answer, before aiogram confirms them
   with the next offset (it starts handling them as tasks and confirms at once, so a
   crash in between would otherwise lose them), and the webhook receiver before it
   answers 200.
2. `People` turns the Telegram user into our `User` (created on first sight), picks the
   language of the texts, marks a user who had blocked the bot active again, and applies
   access control: with no allowlist only admins are served unless the bot is open, and
   everyone else gets one polite refusal and costs no model call. Group messages not
   addressed to the bot pass (flagged `allowed`), since they are only kept as context.

Then, as an inner middleware of messages and button presses, `ChatPreamble` builds
where it happens once (`ctx`, and `place` for the service layer), and skips a message
replayed after a crash that is already handled (finishing what the crash cut short).

Updates are parsed with `load_json` (the bot session's `json_loads`, and the webhook's):
JSON may carry a lone UTF-16 surrogate ("\\ud800"), which a Python str holds but UTF-8
cannot encode, so journaling the update, storing its text and sending it to the model
all failed; a failed getUpdates answer was then fetched again, forever, and the bot went
silent for everyone. Lone surrogates become U+FFFD (one UTF-16 unit each, so entity
offsets still fit), and so does NUL ("\\u0000"), which is no text and which PostgreSQL's
text columns cannot hold: the message is stored the same on both backends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import timedelta
from typing import Any, Awaitable, Callable

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, Update
from aiogram.types import User as TelegramUser

from bot.telegram.context import ChatContext
from bot.texts import language_of, text
from memory.service import Access, CompanionService
from memory.records import to_text
from memory.store import Store

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
SEQUENCED = ("message", "edited_message")
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
# pairs are joined by json.loads: the surrogates left are lone
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def load_json(text: str) -> Any:
    """json.loads with lone surrogates and NUL replaced by U+FFFD (checked only when the
    text escapes one)."""
    data = json.loads(text)
    return _storable(data) if _UNSTORABLE_ESCAPE.search(text) else data


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


class _ChatLocks:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[Any]]) -> Any:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await work()
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class UpdateJournal(BaseMiddleware):
    PRUNE_EVERY = 1000  # updates
    KEEP = timedelta(days=3)  # Telegram may restart update ids after a long idle

    def __init__(self, store: Store) -> None:
        self.store = store
        self.locks = _ChatLocks()
        self._since_prune = 0
        self._received: set[int] = set()  # journaled on receipt by this process, not handled yet

    def prune(self) -> int:
        self._since_prune = 0
        return self.store.inbox.prune_updates(to_text(self.store.clock() - self.KEEP))

    def receive(self, updates: list[Update]) -> None:
        """Journal updates as they arrive, in one transaction; redeliveries are left out."""
        with self.store.transaction():
            for update in updates:
                if self._journal(update):
                    self._received.add(update.update_id)

    def _journal(self, update: Update) -> bool:
        context = UserContextMiddleware.resolve_event_context(update)
        chat_key = f"{context.chat.id}:{context.thread_id or ''}" if context.chat else None
        payload = update.model_dump_json(exclude_none=True, exclude_unset=True)
        return self.store.inbox.journal_update("tg", update.update_id, payload, chat_key=chat_key,
                                         user_external_id=context.user.id if context.user else None)

    async def __call__(self, handler: Handler, update: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(update, Update)
        data.setdefault("received_at", time.monotonic())
        chat: Chat | None = data.get("event_chat")
        chat_key = f"{chat.id}:{data.get('event_thread_id') or ''}" if chat else None
        self._since_prune += 1
        if self._since_prune >= self.PRUNE_EVERY:
            self.prune()
        journaled = data.get("replayed") or update.update_id in self._received
        self._received.discard(update.update_id)
        if not journaled and not self._journal(update):
            log.info("update %s delivered again; already handled", update.update_id)
            return None
        try:
            if update.event_type in SEQUENCED and chat_key:
                return await self.locks.run(chat_key, lambda: handler(update, data))
            return await handler(update, data)
        finally:
            self.store.inbox.finish_update("tg", update.update_id)


class JournalOnReceipt(BaseRequestMiddleware):
    """A middleware of the bot's HTTP session: the updates of every getUpdates answer are
    journaled before aiogram sees them, hence before the next getUpdates confirms them."""

    def __init__(self, journal: UpdateJournal) -> None:
        self.journal = journal

    async def __call__(self, make_request: NextRequestMiddlewareType, bot: Any, method: TelegramMethod) -> Any:
        result = await make_request(bot, method)  # the method's result (a list of updates here)
        if isinstance(method, GetUpdates) and result:
            self.journal.receive(result)
        return result


def _group_chatter(update: Update, data: dict[str, Any]) -> bool:
    """A group message not addressed to the bot: kept as context, whoever wrote it."""
    from bot.telegram.describe import addressed_to_bot

    message = update.message
    me = data.get("me")
    return (message is not None and message.chat.type in ("group", "supergroup") and me is not None
            and not addressed_to_bot(message, me.username, me.id))


class People(BaseMiddleware):
    """The Telegram user as our `User`, the language of the texts, and admission (the
    service layer's access rule): a refused user hears so once and costs no model call."""

    def __init__(self, service: CompanionService) -> None:
        self.service = service

    async def __call__(self, handler: Handler, update: TelegramObject, data: dict[str, Any]) -> Any:
        sender: TelegramUser | None = data.get("event_from_user")
        if sender is None or sender.is_bot:
            return await handler(update, data)
        user = self.service.arrive("tg", sender.id, display_name=sender.full_name, language=sender.language_code)
        lang = language_of(user.ui_language)
        allowed = self.service.admission.allowed(user)
        if not allowed and not _group_chatter(update, data):
            assert isinstance(update, Update)
            told = update.event_type in ("message", "callback_query")  # refused once, where it can be said
            if told and self.service.admit(user) is Access.REFUSED:
                await self._refuse(update, data, sender.id, lang)
            return None
        data.update(user=user, lang=lang, is_admin=self.service.is_admin(user), allowed=allowed)
        return await handler(update, data)

    @staticmethod
    async def _refuse(update: TelegramObject, data: dict[str, Any], sender_id: int, lang: str) -> None:
        chat: Chat | None = data.get("event_chat")
        if chat is not None:
            try:
                await data["bot"].send_message(chat.id, text("tg.refused", lang, user_id=sender_id),
                                               message_thread_id=data.get("event_thread_id"))
            except Exception:  # noqa: BLE001 - a refusal that cannot be delivered changes nothing
                log.info("could not deliver the refusal to %s", sender_id)


class ChatPreamble(BaseMiddleware):
    """Before every message and button handler: `ctx` (ChatContext) and `place`; and for
    a message replayed after a crash that is already stored, the replay rules of the
    service layer instead of the handler (`TurnRunner.already_handled`)."""

    def __init__(self, turns: Any) -> None:
        self.turns = turns

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user, lang = data.get("user"), data.get("lang", "en")
        if user is None:
            return await handler(event, data)
        if isinstance(event, CallbackQuery):
            if event.message is None:  # a button under an inline message: no chat of ours
                return await handler(event, data)
            ctx = ChatContext.of_callback(event, user, lang)
        elif isinstance(event, Message):
            ctx = ChatContext.of(event, user, lang)
        else:
            return await handler(event, data)
        data.update(ctx=ctx, place=ctx.place)
        update: Update | None = data.get("event_update")
        if (data.get("replayed") and isinstance(event, Message) and update is not None
                and update.event_type == "message"
                and await self.turns.already_handled(data["bot"], ctx, event.message_id)):
            return None
        return await handler(event, data)
