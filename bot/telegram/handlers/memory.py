"""/memory: the pinned facts the character keeps about you (and this chat), which you can
read, add to, correct and delete. Changes apply from your next message on.

    /memory                  list them, each with a delete button
    /memory add TEXT         add one
    /memory edit N TEXT      replace fact number N
    /memory delete N         delete fact number N
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.telegram.callbacks import DeleteFact
from bot.telegram.context import ChatContext
from bot.telegram.handlers.commands import callback_context
from bot.texts import text
from memory.engine import Engine
from memory.facts import FactError
from memory.longterm import LongTermMemory
from memory.store import User

router = Router(name="memory")


def facts_view(memory: LongTermMemory, ctx: ChatContext, persona_id: str) -> tuple[str, InlineKeyboardMarkup | None]:
    facts = memory.list_facts(ctx.owner, persona_id)
    if not facts:
        return text("tg.memory_empty", ctx.lang), None
    lines = [text("tg.memory_title", ctx.lang)] + [f"{n}. {fact.text}" for n, fact in enumerate(facts, 1)]
    buttons = [InlineKeyboardButton(text=f"🗑 {n}", callback_data=DeleteFact(fact_id=fact.id).pack())
               for n, fact in enumerate(facts, 1)]
    rows = [buttons[i:i + 5] for i in range(0, len(buttons), 5)]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def apply_change(memory: LongTermMemory, ctx: ChatContext, persona_id: str, args: str) -> str:
    action, _, rest = args.strip().partition(" ")
    facts = memory.list_facts(ctx.owner, persona_id)
    if action in ("add", "+"):
        memory.add_fact(ctx.owner, persona_id, rest)
        return text("tg.memory_added", ctx.lang)
    number, _, new_text = rest.strip().partition(" ")
    if not number.isdigit() or not 1 <= int(number) <= len(facts) or action not in ("edit", "delete", "del"):
        return text("tg.memory_usage", ctx.lang)
    fact = facts[int(number) - 1]
    if action == "edit":
        memory.edit_fact(ctx.owner, persona_id, fact.id, new_text)
        return text("tg.memory_edited", ctx.lang, number=number)
    memory.delete_fact(ctx.owner, persona_id, fact.id)
    return text("tg.memory_deleted", ctx.lang, number=number)


@router.message(Command("memory"))
async def memory_command(message: Message, command: CommandObject, user: User, lang: str, engine: Engine,
                         memory: LongTermMemory) -> None:
    ctx = ChatContext.of(message, user, lang)
    persona_id = ctx.conversation(engine).persona_id
    if command.args:
        try:
            await message.answer(apply_change(memory, ctx, persona_id, command.args))
        except FactError as exc:
            await message.answer(text("tg.memory_invalid", lang, reason=str(exc)))
        return
    body, keyboard = facts_view(memory, ctx, persona_id)
    await message.answer(body, reply_markup=keyboard)


@router.callback_query(DeleteFact.filter())
async def delete_button(callback: CallbackQuery, callback_data: DeleteFact, user: User, lang: str,
                        engine: Engine, memory: LongTermMemory) -> None:
    ctx = callback_context(callback, user, lang)
    persona_id = ctx.conversation(engine).persona_id
    deleted = memory.delete_fact(ctx.owner, persona_id, callback_data.fact_id)
    await callback.answer(text("tg.memory_deleted_short", lang) if deleted else None)
    body, keyboard = facts_view(memory, ctx, persona_id)
    await callback.message.edit_text(body, reply_markup=keyboard)
