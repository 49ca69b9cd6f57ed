"""Conversation commands: /start, /help, /new, /retry, /continue, /undo, /context, and the
buttons under replies (Retry, paging through alternatives, using one, starter prompts)."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message

from bot.telegram.callbacks import RetryTurn, ShowAlternative, StarterPrompt, UseAlternative
from bot.telegram.context import ChatContext
from bot.telegram.formatting import format_reply
from bot.telegram.turns import TurnRunner
from bot.telegram.views import context_text, send_markdown, starter_keyboard
from bot.texts import text
from memory.engine import Engine
from memory.store import User

router = Router(name="commands")


def callback_context(callback: CallbackQuery, user: User, lang: str) -> ChatContext:
    message = callback.message
    return ChatContext.for_chat(message.chat, message.message_thread_id if message.is_topic_message else None,
                                user, lang)


@router.message(CommandStart())
async def start(message: Message, bot: Bot, user: User, lang: str, engine: Engine) -> None:
    ctx = ChatContext.of(message, user, lang)
    conversation = ctx.conversation(engine)
    persona = engine.persona(conversation.persona_id)
    opening = next(engine.store.iter_messages(conversation.id, batch=1), None)
    greeting = opening.content if opening and opening.role == "assistant" else ""
    await send_markdown(bot, ctx.chat_id, greeting or text("tg.help", lang), thread_id=ctx.thread_id,
                        reply_markup=starter_keyboard(persona))


@router.message(Command("help"))
async def help_(message: Message, lang: str) -> None:
    await message.answer(text("tg.help", lang))


@router.message(Command("new"))
async def new(message: Message, bot: Bot, user: User, lang: str, engine: Engine) -> None:
    ctx = ChatContext.of(message, user, lang)
    conversation = engine.start_conversation(ctx.owner, engine.store.persona_of(ctx.owner), user=user)
    persona = engine.persona(conversation.persona_id)
    await message.answer(text("tg.new", lang, persona=persona.name))
    greeting = engine.store.messages(conversation.id, limit=1)
    if greeting:
        await send_markdown(bot, ctx.chat_id, greeting[0].content, thread_id=ctx.thread_id,
                            reply_markup=starter_keyboard(persona))


@router.message(Command("retry"))
async def retry(message: Message, bot: Bot, user: User, lang: str, turns: TurnRunner) -> None:
    await turns.regenerate(bot, ChatContext.of(message, user, lang))


@router.message(Command("continue"))
async def continue_(message: Message, bot: Bot, user: User, lang: str, turns: TurnRunner) -> None:
    await turns.continue_reply(bot, ChatContext.of(message, user, lang))


@router.message(Command("undo"))
async def undo(message: Message, user: User, lang: str, engine: Engine) -> None:
    hidden = await engine.undo(ChatContext.of(message, user, lang).conversation(engine).id)
    await message.answer(text("tg.undone", lang, count=len(hidden)) if hidden else text("tg.nothing_to_undo", lang))


@router.message(Command("context"))
async def context(message: Message, bot: Bot, user: User, lang: str, engine: Engine) -> None:
    ctx = ChatContext.of(message, user, lang)
    await send_markdown(bot, ctx.chat_id, context_text(engine, ctx.conversation(engine), user, lang),
                        thread_id=ctx.thread_id)


@router.callback_query(RetryTurn.filter())
async def retry_button(callback: CallbackQuery, callback_data: RetryTurn, bot: Bot, user: User, lang: str,
                       turns: TurnRunner) -> None:
    await callback.answer()
    await turns.regenerate(bot, callback_context(callback, user, lang), callback_data.conversation_id)


@router.callback_query(ShowAlternative.filter())
async def show_alternative(callback: CallbackQuery, callback_data: ShowAlternative, lang: str, engine: Engine,
                           turns: TurnRunner) -> None:
    shown = engine.store.message(callback_data.reply_id)
    piece = format_reply(shown.content)[0]
    await callback.answer()
    if callback.message.text != piece.text:
        await callback.message.edit_text(piece.text, entities=list(piece.entities) or None,
                                         reply_markup=turns.alternatives_markup(shown, lang))


@router.callback_query(UseAlternative.filter())
async def use_alternative(callback: CallbackQuery, callback_data: UseAlternative, lang: str, engine: Engine,
                          turns: TurnRunner) -> None:
    try:
        chosen = await engine.choose_alternative(callback_data.reply_id)
    except ValueError:
        await callback.answer(text("tg.alternative_too_old", lang), show_alert=True)
        return
    await callback.answer(text("tg.alternative_chosen", lang))
    await callback.message.edit_reply_markup(reply_markup=turns.alternatives_markup(chosen, lang))


@router.callback_query(StarterPrompt.filter())
async def starter(callback: CallbackQuery, callback_data: StarterPrompt, bot: Bot, user: User, lang: str,
                  engine: Engine, turns: TurnRunner) -> None:
    ctx = callback_context(callback, user, lang)
    persona = engine.persona(ctx.conversation(engine).persona_id)
    await callback.answer()
    # a button left from before a persona switch belongs to another character: ignore it
    if persona.id == callback_data.persona_id and callback_data.index < len(persona.starter_prompts):
        prompt = persona.render(persona.starter_prompts[callback_data.index], user.name)
        await bot.send_message(ctx.chat_id, f"💬 {prompt}", message_thread_id=ctx.thread_id)
        await turns.answer(bot, ctx, prompt)


@router.callback_query(F.data == "noop")
async def noop(callback: CallbackQuery) -> None:
    await callback.answer()
