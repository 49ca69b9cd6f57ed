"""/model: which of the operator's models answers the user (COMPANION_MODELS). A persona
that names its own model keeps it; groups use the default (see memory/routing.py)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.telegram.callbacks import ChooseModel
from bot.telegram.context import ChatContext
from bot.texts import text
from memory.engine import Engine
from memory.routing import ModelMenu, ModelOption
from memory.store import User
from memory.user_choices import UserChoices

router = Router(name="models")


def model_keyboard(menu: ModelMenu, current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=("● " if option.name == current else "") + f"{option.name} · {option.window // 1000}k",
        callback_data=ChooseModel(index=index).pack())] for index, option in enumerate(menu.options)])


def chosen_text(option: ModelOption, ctx: ChatContext, engine: Engine) -> str:
    persona = engine.persona(ctx.conversation(engine).persona_id)
    note = text("tg.model_set", ctx.lang, model=option.name, window=option.window)
    if persona.model.model and persona.model.model != option.name:
        note += "\n" + text("tg.model_pinned", ctx.lang, persona=persona.name, model=persona.model.model)
    return note


@router.message(Command("model"))
async def model(message: Message, command: CommandObject, user: User, lang: str, engine: Engine,
                model_menu: ModelMenu, choices: UserChoices) -> None:
    ctx = ChatContext.of(message, user, lang)
    if not ctx.private:
        await message.answer(text("tg.model_private_only", lang, model=model_menu.default.name))
        return
    if not model_menu.has_choice:
        await message.answer(text("tg.model_only_one", lang, current=model_menu.default.name))
        return
    wanted = (command.args or "").strip()
    if not wanted:
        conversation = ctx.conversation(engine)
        current = engine.route(conversation, engine.persona(conversation.persona_id)).model
        await message.answer(text("tg.model_menu", lang, current=current),
                             reply_markup=model_keyboard(model_menu, current))
        return
    option = model_menu.default if wanted.lower() == "default" else model_menu.find(wanted)
    if option is None:
        await message.answer(text("tg.model_unknown", lang, model=wanted,
                                  models=", ".join(o.name for o in model_menu.options)))
        return
    choices.set_model(user.id, option.name)
    await message.answer(chosen_text(option, ctx, engine))


@router.callback_query(ChooseModel.filter())
async def model_chosen(callback: CallbackQuery, callback_data: ChooseModel, user: User, lang: str, engine: Engine,
                       model_menu: ModelMenu, choices: UserChoices) -> None:
    await callback.answer()
    if callback_data.index >= len(model_menu.options) or callback.message.chat.type != "private":
        return
    option = model_menu.options[callback_data.index]
    choices.set_model(user.id, option.name)
    ctx = ChatContext.for_chat(callback.message.chat, None, user, lang)
    await callback.message.edit_text(chosen_text(option, ctx, engine),
                                     reply_markup=model_keyboard(model_menu, option.name))
