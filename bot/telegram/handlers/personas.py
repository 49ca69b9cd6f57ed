"""Personas in Telegram: /persona (menu, switching), /me (the user persona), character
cards sent as files, /card (the current persona as a PNG card), and for admins /reload
(re-read persona files) and /publish (offer a user's private persona to everyone).

Files that are not character cards are handed on (`SkipHandler`) to the routers after
this one.
"""

from __future__ import annotations

from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot.telegram.callbacks import ChoosePersona, PersonaPage
from bot.telegram.card_upload import CardUnavailable, download_card, may_hold_card
from bot.telegram.context import ChatContext
from bot.telegram.persona_views import (
    announce_switch,
    find_choice,
    me_text,
    persona_menu,
    publish_usage_text,
    show_switch,
    talk_keyboard,
)
from bot.telegram.views import short
from bot.texts import text
from bot.user_profile import MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, parse_me
from memory.persona_catalog import PersonaCatalog
from memory.service import CompanionService, Place
from memory.records import User
from personas import PersonaError
from personas.cards import MAX_CARD_FILE_BYTES

def make_router() -> Router:
    router = Router(name="personas")

    @router.message(Command("persona"))
    async def persona(message: Message, command: CommandObject, bot: Bot, ctx: ChatContext, place: Place,
                      service: CompanionService) -> None:
        if command.args:  # /persona ID (or name) switches directly
            await show_switch(bot, ctx, service.switch_persona(place, command.args))
            return
        menu, keyboard = persona_menu(service.personas(place), 0, ctx)
        await message.answer(menu, reply_markup=keyboard)

    @router.callback_query(PersonaPage.filter())
    async def persona_page(callback: CallbackQuery, callback_data: PersonaPage, ctx: ChatContext, place: Place,
                           service: CompanionService) -> None:
        menu, keyboard = persona_menu(service.personas(place), callback_data.page, ctx)
        await callback.answer()
        with suppress(TelegramBadRequest):  # "message is not modified" when the page did not change
            await callback.message.edit_text(menu, reply_markup=keyboard)

    @router.callback_query(ChoosePersona.filter())
    async def choose_persona(callback: CallbackQuery, callback_data: ChoosePersona, bot: Bot, ctx: ChatContext,
                             place: Place, service: CompanionService) -> None:
        entry = find_choice(service.personas(place).entries, callback_data.key)
        if entry is None:
            await callback.answer(text("tg.persona_unavailable", place.lang, id=callback_data.key), show_alert=True)
            return
        await callback.answer()
        with suppress(TelegramBadRequest):  # pressed twice, or the message is gone: the switch is what counts
            await callback.message.edit_reply_markup(reply_markup=None)
        await announce_switch(bot, service, ctx, entry.persona.id)

    @router.message(Command("me"))
    async def me(message: Message, command: CommandObject, place: Place, service: CompanionService) -> None:
        request = parse_me(command.args)
        if request.too_long:
            await message.answer(text("tg.me_too_long", place.lang, name_limit=MAX_NAME_CHARS,
                                      description_limit=MAX_DESCRIPTION_CHARS))
            return
        user = service.set_me(place, name=request.name, description=request.description,
                              clear=request.action == "clear") if request.action != "show" else place.user
        await message.answer(me_text(user, request.action, place.lang))

    @router.message(F.chat.type == "private", F.document, F.document.func(may_hold_card))
    async def card_file(message: Message, bot: Bot, user: User, lang: str, personas: PersonaCatalog) -> None:
        origin = f"tg:{message.chat.id}:{message.message_id}"
        if (stored := personas.imported_from(origin)) is not None:  # replayed after a crash: imported already
            await message.answer(text("tg.card_imported", lang, name=stored.persona.name, id=stored.persona.id),
                                 reply_markup=talk_keyboard(stored.persona, lang))
            return
        try:
            card = await download_card(bot, message.document)
        except CardUnavailable as problem:
            await message.answer(text(problem.text_key, lang, limit=MAX_CARD_FILE_BYTES // (1024 * 1024)))
            return
        if card is None:
            raise SkipHandler()  # not a card: perhaps a document to read
        try:
            imported = personas.import_card(card.data, card.name, owner=user, origin=origin)
        except PersonaError as exc:
            await message.answer(text("tg.card_refused", lang, detail=str(exc)))
            return
        notes = text("tg.card_warnings", lang, warnings="; ".join(imported.warnings)) if imported.warnings else ""
        await message.answer(text("tg.card_imported", lang, name=imported.persona.name, id=imported.persona.id)
                             + notes, reply_markup=talk_keyboard(imported.persona, lang))

    @router.message(Command("card", "exportcard"))
    async def card(message: Message, bot: Bot, ctx: ChatContext, place: Place, service: CompanionService,
                   personas: PersonaCatalog) -> None:
        shown = service.personas(place).current
        png = personas.export_card(shown.id, "png")
        await bot.send_document(ctx.chat_id, BufferedInputFile(png, filename=f"{shown.id}.png"),
                                caption=text("tg.card_caption", place.lang, name=shown.name),
                                message_thread_id=ctx.thread_id)

    @router.message(Command("reload"))
    async def reload(message: Message, lang: str, is_admin: bool, personas: PersonaCatalog) -> None:
        if not is_admin:
            await message.answer(text("tg.admins_only", lang))
            return
        problems = personas.library.reload()
        report = text("tg.reloaded", lang, count=len(personas.library))
        if problems:
            listed = [f"• {short(problem, 300)}" for problem in problems[:10]]
            report += text("tg.reload_problems", lang, problems="\n".join(listed))
        await message.answer(report)

    @router.message(Command("publish"))
    async def publish(message: Message, command: CommandObject, lang: str, is_admin: bool,
                      service: CompanionService, personas: PersonaCatalog) -> None:
        if not is_admin:
            await message.answer(text("tg.admins_only", lang))
            return
        if not command.args:
            await message.answer(publish_usage_text(service.unpublished(), lang))
            return
        persona_id = command.args.strip().lower()
        entry = personas.entry(persona_id)
        if entry is None or not entry.private:
            await message.answer(text("tg.publish_unknown", lang, id=command.args.strip()))
            return
        personas.publish(persona_id)
        await message.answer(text("tg.published", lang, name=entry.persona.name, id=entry.persona.id))

    return router
