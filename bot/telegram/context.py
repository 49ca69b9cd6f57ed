"""Where a Telegram update happens, in the engine's terms.

A private chat is the user's own conversation with their current persona; each group,
and each forum topic in it, is a conversation of its own (`tg:<chat id>[:<topic id>]`)
with the persona chosen there.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.types import Chat, Message

from memory.engine import Engine
from memory.store import Conversation, Owner, User


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
    def for_chat(cls, chat: Chat, thread_id: int | None, user: User, lang: str) -> "ChatContext":
        private = chat.type == "private"
        if private:
            return cls(chat.id, None, True, Owner.user(user.id), user, lang)
        key = f"tg:{chat.id}" + (f":{thread_id}" if thread_id else "")
        return cls(chat.id, thread_id, False, Owner.group(key), user, lang)

    def conversation(self, engine: Engine) -> Conversation:
        """The active conversation here, started with the persona's greeting if there is none."""
        persona_id = engine.store.persona_of(self.owner)
        return engine.conversation_for(self.owner, persona_id, user=self.user)
