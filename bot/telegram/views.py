"""Keyboards the command handlers show (the texts come from bot/render.py), and sending
model-style Markdown as formatted messages."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.telegram.callbacks import ForgetMe, ResumeConversation, StarterPrompt
from bot.texts import text
from memory.service import ConversationItem, short
from personas import Persona

__all__ = ["forget_keyboard", "history_keyboard", "send_markdown", "short", "starter_keyboard"]


def history_keyboard(items: list[ConversationItem]) -> InlineKeyboardMarkup | None:
    rows = []
    for item in items:
        conversation = item.conversation
        label = f"{'● ' if conversation.active else ''}{conversation.updated_at[:10]} · " \
                f"{short(item.opening, 40) if item.opening else '…'} ({item.messages})"
        rows.append([InlineKeyboardButton(text=label, callback_data=ResumeConversation(
            conversation_id=conversation.id).pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def starter_keyboard(persona: Persona) -> InlineKeyboardMarkup | None:
    rows = [[InlineKeyboardButton(text=short(prompt, 60), callback_data=StarterPrompt(
        persona_id=persona.id, index=index).pack())] for index, prompt in enumerate(persona.starter_prompts[:6])]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def forget_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=text("tg.forget_yes", lang), callback_data=ForgetMe(confirmed=True).pack()),
        InlineKeyboardButton(text=text("tg.forget_no", lang), callback_data=ForgetMe(confirmed=False).pack()),
    ]])


async def send_markdown(bot, chat_id: int, markdown: str, *, thread_id: int | None = None,
                        reply_markup=None) -> None:
    """Send the model-style Markdown as formatted messages (split when long)."""
    from bot.telegram.formatting import format_reply

    pieces = format_reply(markdown)
    for index, piece in enumerate(pieces):
        await bot.send_message(chat_id, piece.text, entities=list(piece.entities) or None,
                               message_thread_id=thread_id,
                               reply_markup=reply_markup if index == len(pieces) - 1 else None)
