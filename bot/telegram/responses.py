"""Keeping aiogram's parsed response types alive.

aiogram parses every Bot API answer with the pydantic generic `Response[T]`. pydantic
caches parametrized generics only weakly, so each call could build the class anew
(about 10 ms of CPU per Telegram call, which showed up as most of the bot's overhead per
turn). Holding one strong reference to each type the bot uses keeps them cached.
"""

from __future__ import annotations

from aiogram import methods
from aiogram.methods.base import Response

USED_METHODS = (
    methods.GetMe, methods.GetUpdates, methods.SendMessage, methods.SendMessageDraft, methods.EditMessageText,
    methods.EditMessageReplyMarkup, methods.SendChatAction, methods.SendDocument, methods.SendVoice,
    methods.SendPhoto, methods.GetFile, methods.SetMyCommands, methods.AnswerCallbackQuery,
    methods.DeleteMessage, methods.SetWebhook, methods.DeleteWebhook, methods.GetChat,
)

_PINNED: list[type] = []


def pin_response_types() -> None:
    if not _PINNED:
        _PINNED.extend(Response[method.__returning__] for method in USED_METHODS)  # type: ignore[name-defined]
