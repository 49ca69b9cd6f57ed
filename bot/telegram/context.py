"""Where a Telegram update happens, in the service layer's terms.

A private chat is the user's own conversation with their current persona; each group,
and each forum topic in it, is a conversation of its own (`tg:<chat id>[:<topic id>]`)
with the persona chosen there. `ChatPreamble` (bot/telegram/middlewares.py) builds the
`ChatContext` of every message and button press once, before the handler, so handlers
take `ctx` (and `place`, what the service layer takes) as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.types import CallbackQuery, Chat, Message

from memory.service import Place
from memory.records import Owner, User


@dataclass(frozen=True)
class ChatContext:
    chat_id: int
    thread_id: int | None
    private: bool
    owner: Owner
    user: User
    lang: str

    @classmethod
    def of(cls, message: Message, user: User, lang: str) -> "ChatContext":
        return cls.for_chat(message.chat, message.message_thread_id if message.is_topic_message else None,
                            user, lang)

    @classmethod
    def of_callback(cls, callback: CallbackQuery, user: User, lang: str) -> "ChatContext":
        """Where a button was pressed: the chat (and topic) of the message it is under."""
        message = callback.message
        return cls.for_chat(message.chat, message.message_thread_id if message.is_topic_message else None,
                            user, lang)

    @classmethod
    def for_chat(cls, chat: Chat, thread_id: int | None, user: User, lang: str) -> "ChatContext":
        private = chat.type == "private"
        if private:
            return cls(chat.id, None, True, Owner.user(user.id), user, lang)
        key = f"tg:{chat.id}" + (f":{thread_id}" if thread_id else "")
        return cls(chat.id, thread_id, False, Owner.group(key), user, lang)

    @property
    def place(self) -> Place:
        """Who and where, as the service layer takes it."""
        return Place(self.user, self.owner, self.private, self.lang)
