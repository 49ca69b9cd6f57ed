"""Conversation commands: /start, /help, /new, /retry, /continue, /undo, /context, and the
buttons under replies (Retry, paging through alternatives, using one, starter prompts).
Each is one service-layer call (memory/service); `ctx` and `place` come from ChatPreamble."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message

from bot.inspect import render_summary
from bot.telegram.callbacks import RetryTurn, ShowAlternative, StarterPrompt, UseAlternative
from bot.telegram.context import ChatContext
from bot.telegram.formatting import format_reply
from bot.telegram.turns import TurnRunner
from bot.telegram.views import send_markdown, starter_keyboard
from bot.texts import render, text
from memory.service import CompanionService, Place


def make_router() -> Router:
    router = Router(name="commands")

    @router.message(CommandStart())
    async def start(message: Message, bot: Bot, ctx: ChatContext, place: Place, service: CompanionService) -> None:
        view = service.current(place)
        await send_markdown(bot, ctx.chat_id, view.greeting or text("tg.help", ctx.lang), thread_id=ctx.thread_id,
                            reply_markup=starter_keyboard(view.persona))

    @router.message(Command("help"))
    async def help_(message: Message, lang: str) -> None:
        await message.answer(text("tg.help", lang))

    @router.message(Command("new"))
    async def new(message: Message, bot: Bot, ctx: ChatContext, place: Place, service: CompanionService) -> None:
        view = service.new_conversation(place)
        await message.answer(text("tg.new", ctx.lang, persona=view.persona.name))
        if view.greeting:
            await send_markdown(bot, ctx.chat_id, view.greeting, thread_id=ctx.thread_id,
                                reply_markup=starter_keyboard(view.persona))

    @router.message(Command("retry"))
    async def retry(message: Message, bot: Bot, ctx: ChatContext, turns: TurnRunner) -> None:
        await turns.regenerate(bot, ctx)

    @router.message(Command("continue"))
    async def continue_(message: Message, bot: Bot, ctx: ChatContext, turns: TurnRunner) -> None:
        await turns.continue_reply(bot, ctx)

    @router.message(Command("undo"))
    async def undo(message: Message, place: Place, service: CompanionService) -> None:
        await message.answer(render(await service.undo(place), place.lang))

    @router.message(Command("context"))
    async def context(message: Message, bot: Bot, ctx: ChatContext, place: Place, service: CompanionService) -> None:
        request, model = service.context(place)
        note = f"{text('tg.context_note', ctx.lang)}\n```\n{render_summary(request, model)}\n```"
        await send_markdown(bot, ctx.chat_id, note, thread_id=ctx.thread_id)

    @router.callback_query(RetryTurn.filter())
    async def retry_button(callback: CallbackQuery, callback_data: RetryTurn, bot: Bot, ctx: ChatContext,
                           turns: TurnRunner) -> None:
        await callback.answer()
        await turns.regenerate(bot, ctx, callback_data.conversation_id)

    @router.callback_query(ShowAlternative.filter())
    async def show_alternative(callback: CallbackQuery, callback_data: ShowAlternative, place: Place,
                               service: CompanionService) -> None:
        await callback.answer()
        found = service.alternative(place, callback_data.reply_id)
        if found is None:
            return
        shown, alternatives = found
        piece = format_reply(shown.content)[0]
        if callback.message.text != piece.text:
            await callback.message.edit_text(piece.text, entities=list(piece.entities) or None,
                                             reply_markup=TurnRunner.alternatives_markup(alternatives, place.lang))

    @router.callback_query(UseAlternative.filter())
    async def use_alternative(callback: CallbackQuery, callback_data: UseAlternative, place: Place,
                              service: CompanionService) -> None:
        notice, alternatives = await service.use_alternative(place, callback_data.reply_id)
        if alternatives is None:
            await callback.answer(render(notice, place.lang), show_alert=True)
            return
        await callback.answer(render(notice, place.lang))
        await callback.message.edit_reply_markup(reply_markup=TurnRunner.alternatives_markup(alternatives,
                                                                                             place.lang))

    @router.callback_query(StarterPrompt.filter())
    async def starter(callback: CallbackQuery, callback_data: StarterPrompt, bot: Bot, ctx: ChatContext,
                      place: Place, service: CompanionService, turns: TurnRunner) -> None:
        persona = service.current(place).persona
        await callback.answer()
        # a button left from before a persona switch belongs to another character: ignore it
        if persona.id == callback_data.persona_id and callback_data.index < len(persona.starter_prompts):
            prompt = persona.render(persona.starter_prompts[callback_data.index], place.user.name)
            await bot.send_message(ctx.chat_id, f"💬 {prompt}", message_thread_id=ctx.thread_id)
            await turns.answer(bot, ctx, prompt)

    @router.callback_query(F.data == "noop")
    async def noop(callback: CallbackQuery) -> None:
        await callback.answer()

    return router
