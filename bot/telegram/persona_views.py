"""What the persona commands show: the /persona menu and switching personas in a chat,
the /me answer, the /publish list.

The menu lists the personas this user may choose (`PersonaCatalog.available_to`: every
shared one and their own private ones), a page at a time, one button each, with a
one-line summary in the message. Choosing is checked again against that list when the
button is pressed, so callback data from elsewhere cannot reach someone else's private
persona.

Switching only changes which persona the chat talks to (`CompanionService.switch_to`): each
persona has its own conversations with the user (or group), so histories never mix. The
first switch to a persona starts a conversation with its greeting, which is shown with
the persona's starter prompts as buttons; switching back continues where it stopped.
"""

from __future__ import annotations

import hashlib

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.telegram.callbacks import ChoosePersona, PersonaPage
from bot.telegram.context import ChatContext
from bot.render import me_text, persona_lines, render  # noqa: F401 - me_text: the /me answer, used here and in tests
from bot.telegram.views import send_markdown, short, starter_keyboard
from bot.texts import text
from memory.persona_catalog import PersonaEntry
from memory.service import CompanionService, PersonaMenu, PersonaSwitch, SwitchKind
from personas import Persona

PAGE_SIZE = 6
# Callback data holds 64 bytes; "persona:" leaves 56, so longer ids travel as a digest.
_MAX_KEY_ID = 48


def persona_key(persona_id: str) -> str:
    if len(persona_id) <= _MAX_KEY_ID:
        return persona_id
    return "~" + hashlib.sha256(persona_id.encode("utf-8")).hexdigest()[:24]  # "~" is never in an id


def find_choice(entries: list[PersonaEntry], key: str) -> PersonaEntry | None:
    return next((entry for entry in entries if persona_key(entry.persona.id) == key), None)


def persona_menu(menu: PersonaMenu, page: int, ctx: ChatContext) -> tuple[str, InlineKeyboardMarkup]:
    """The menu message: the current persona, this page's personas with summaries, and buttons."""
    entries, current = menu.entries, menu.current
    pages = max(1, -(-len(entries) // PAGE_SIZE))
    page = page % pages
    shown = entries[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    lines = persona_lines(menu, ctx.user.name, ctx.lang, first=page * PAGE_SIZE, count=PAGE_SIZE)
    rows = [[InlineKeyboardButton(text=_label(entry, current), callback_data=ChoosePersona(
        key=persona_key(entry.persona.id)).pack())] for entry in shown]
    if pages > 1:
        rows.append([
            InlineKeyboardButton(text="◀", callback_data=PersonaPage(page=(page - 1) % pages).pack()),
            InlineKeyboardButton(text=text("tg.persona_page", ctx.lang, page=page + 1, pages=pages),
                                 callback_data="noop"),
            InlineKeyboardButton(text="▶", callback_data=PersonaPage(page=(page + 1) % pages).pack()),
        ])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def _label(entry: PersonaEntry, current: Persona) -> str:
    marks = ("● " if entry.persona.id == current.id else "") + ("🔒 " if entry.private else "")
    return marks + short(entry.persona.name, 40)


def talk_keyboard(persona: Persona, lang: str) -> InlineKeyboardMarkup:
    """One button that switches the chat to `persona` (under an imported card)."""
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=text("tg.card_talk", lang, name=short(persona.name, 40)),
        callback_data=ChoosePersona(key=persona_key(persona.id)).pack())]])


async def announce_switch(bot: Bot, service: CompanionService, ctx: ChatContext, persona_id: str) -> None:
    """Switch, then tell the chat: the greeting of a new conversation, or where the old one stopped."""
    switch = service.switch_to(ctx.place, persona_id)
    await show_switch(bot, ctx, switch)


async def show_switch(bot: Bot, ctx: ChatContext, switch: PersonaSwitch) -> None:
    if switch.kind is not SwitchKind.STARTED:
        await bot.send_message(ctx.chat_id, render(switch.notice, ctx.lang), message_thread_id=ctx.thread_id)
        return
    starters = starter_keyboard(switch.persona)
    greeting = switch.last
    await bot.send_message(ctx.chat_id, render(switch.notice, ctx.lang), message_thread_id=ctx.thread_id,
                           reply_markup=None if greeting else starters)
    if greeting:  # the greeting the new conversation starts with
        await send_markdown(bot, ctx.chat_id, greeting.content, thread_id=ctx.thread_id, reply_markup=starters)


def publish_usage_text(unpublished: list, lang: str, limit: int = 30) -> str:
    if not unpublished:
        return text("tg.publish_none", lang)
    lines = []
    for entry, owner in unpublished[:limit]:
        lines.append(f"• {entry.persona.id} — {short(entry.persona.name, 40)} ({owner.display_name or owner.external_id})")
    if len(unpublished) > limit:
        lines.append(f"… +{len(unpublished) - limit}")
    return text("tg.publish_usage", lang, personas="\n".join(lines))
