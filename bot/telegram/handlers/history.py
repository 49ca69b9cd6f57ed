"""Looking back: /history (resume an older conversation), /search, /export."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.telegram.callbacks import ResumeConversation
from bot.telegram.context import ChatContext
from bot.telegram.handlers.commands import callback_context
from bot.telegram.views import export_files, history_keyboard, search_results, short
from bot.texts import text
from memory.engine import Engine
from memory.store import User

router = Router(name="history")


@router.message(Command("history"))
async def history(message: Message, user: User, lang: str, engine: Engine) -> None:
    ctx = ChatContext.of(message, user, lang)
    persona = engine.persona(ctx.conversation(engine).persona_id)
    keyboard = history_keyboard(engine.store, ctx.owner, persona.id)
    await message.answer(text("tg.history_title", lang, persona=persona.name) if keyboard
                         else text("tg.history_empty", lang), reply_markup=keyboard)


@router.callback_query(ResumeConversation.filter())
async def resume(callback: CallbackQuery, callback_data: ResumeConversation, user: User, lang: str,
                 engine: Engine) -> None:
    ctx = callback_context(callback, user, lang)
    conversation = engine.store.conversation(callback_data.conversation_id)
    if conversation.owner != ctx.owner:
        await callback.answer()
        return
    engine.store.resume_conversation(conversation.id)
    last = engine.store.messages(conversation.id, limit=1)
    await callback.answer()
    await callback.message.answer(text("tg.resumed", lang, date=conversation.updated_at[:10],
                                       last=short(last[0].content, 300) if last else "…"))


@router.message(Command("search"))
async def search(message: Message, command: CommandObject, user: User, lang: str, engine: Engine) -> None:
    if not command.args:
        await message.answer(text("tg.search_usage", lang))
        return
    ctx = ChatContext.of(message, user, lang)
    await message.answer(search_results(engine.store, ctx.owner, command.args, lang, engine))


@router.message(Command("export"))
async def export(message: Message, bot: Bot, user: User, lang: str, engine: Engine) -> None:
    ctx = ChatContext.of(message, user, lang)
    conversation = ctx.conversation(engine)
    count = engine.store.count_messages(conversation.id)
    for document in export_files(engine.store, engine, conversation, user):
        await bot.send_document(ctx.chat_id, document, message_thread_id=ctx.thread_id,
                                caption=text("tg.export_caption", lang, count=count))
