"""What the persona commands show: the /persona menu and switching personas in a chat,
the /me answer, the /publish list.

The menu lists the personas this user may choose (`PersonaCatalog.available_to`: every
shared one and their own private ones), a page at a time, one button each, with a
one-line summary in the message. Choosing is checked again against that list when the
button is pressed, so callback data from elsewhere cannot reach someone else's private
persona.

Switching only changes which persona the chat talks to (`Store.set_persona_of`): each
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
from bot.telegram.views import send_markdown, short, starter_keyboard
from bot.texts import text
from memory.engine import Engine
from memory.persona_catalog import PersonaEntry
from memory.store import Conversation, Store, User
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


def current_persona(engine: Engine, ctx: ChatContext) -> Persona:
    return engine.persona(engine.store.persona_of(ctx.owner))


def persona_menu(entries: list[PersonaEntry], current: Persona, page: int, ctx: ChatContext
                 ) -> tuple[str, InlineKeyboardMarkup]:
    """The menu message: the current persona, this page's personas with summaries, and buttons."""
    pages = max(1, -(-len(entries) // PAGE_SIZE))
    page = page % pages
    shown = entries[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    user_name = ctx.user.name
    lines = [text("tg.persona_current", ctx.lang, name=current.name, summary=current.summary(user_name)), "",
             text("tg.persona_choose", ctx.lang)]
    lines += [f"• {entry.persona.name} — {entry.persona.summary(user_name, 90)}" for entry in shown]
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


def switch_persona(engine: Engine, ctx: ChatContext, persona_id: str) -> tuple[Conversation, bool]:
    """Make the chat talk to `persona_id`: its active conversation, and whether it just started."""
    existing = engine.store.active_conversation(ctx.owner, persona_id)
    engine.store.set_persona_of(ctx.owner, persona_id)
    if existing is not None:
        return existing, False
    return engine.start_conversation(ctx.owner, persona_id, user=ctx.user), True


async def announce_switch(bot: Bot, engine: Engine, ctx: ChatContext, persona: Persona) -> None:
    """Switch, then tell the chat: the greeting of a new conversation, or where the old one stopped."""
    if engine.store.persona_of(ctx.owner) == persona.id:
        await bot.send_message(ctx.chat_id, text("tg.persona_same", ctx.lang, name=persona.name),
                               message_thread_id=ctx.thread_id)
        return
    conversation, started = switch_persona(engine, ctx, persona.id)
    last = engine.store.messages(conversation.id, limit=1)
    if not started and last:
        await bot.send_message(ctx.chat_id, text("tg.persona_resumed", ctx.lang, name=persona.name,
                                                 last=short(last[0].content, 300)),
                               message_thread_id=ctx.thread_id)
        return
    starters = starter_keyboard(persona)
    await bot.send_message(ctx.chat_id, text("tg.persona_switched", ctx.lang, name=persona.name),
                           message_thread_id=ctx.thread_id, reply_markup=None if last else starters)
    if last:  # the greeting the new conversation starts with
        await send_markdown(bot, ctx.chat_id, last[0].content, thread_id=ctx.thread_id, reply_markup=starters)


def me_text(user: User, action: str, lang: str) -> str:
    """The answer to /me: what the bot now knows about the user."""
    if not user.me_name and not user.me_description:
        key = "tg.me_cleared" if action == "clear" else "tg.me_unset"
        return text(key, lang, name=user.name)
    about = text("tg.me_about", lang, description=user.me_description) if user.me_description else ""
    return text("tg.me_saved" if action == "set" else "tg.me_show", lang, name=user.name, about=about)


def publish_usage_text(store: Store, entries: list[PersonaEntry], lang: str, limit: int = 30) -> str:
    if not entries:
        return text("tg.publish_none", lang)
    lines = []
    for entry in entries[:limit]:
        owner = store.user(entry.owner_user_id)
        lines.append(f"• {entry.persona.id} — {short(entry.persona.name, 40)} ({owner.display_name or owner.external_id})")
    if len(entries) > limit:
        lines.append(f"… +{len(entries) - limit}")
    return text("tg.publish_usage", lang, personas="\n".join(lines))
