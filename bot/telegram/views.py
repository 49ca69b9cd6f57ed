"""Texts and keyboards the command handlers show, built from the store and engine."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone

from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.inspect import render_summary
from bot.settings import Settings
from bot.telegram.callbacks import ForgetMe, ResumeConversation, StarterPrompt
from bot.texts import text
from memory.engine import Engine
from memory.store import Conversation, Owner, Store, User, from_text
from personas import Persona

EXPORT_FORMAT = "companion-chat/1"


def short(value: str, limit: int = 60) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def history_keyboard(store: Store, owner: Owner, persona_id: str, limit: int = 10) -> InlineKeyboardMarkup | None:
    rows = []
    for conversation in store.conversations_of(owner, persona_id)[:limit]:
        opening = itertools.islice(store.iter_messages(conversation.id, batch=4), 4)
        first = next((m for m in opening if m.role == "user"), None)
        label = f"{'● ' if conversation.active else ''}{conversation.updated_at[:10]} · " \
                f"{short(first.content, 40) if first else '…'} ({store.count_messages(conversation.id)})"
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


def search_results(store: Store, owner: Owner, query: str, lang: str, engine: Engine) -> str:
    found = store.search_messages(owner, query, limit=10)
    if not found:
        return text("tg.search_none", lang, query=query)
    lines = [text("tg.search_results", lang)]
    for message in found:
        who = engine.persona(store.conversation(message.conversation_id).persona_id).name \
            if message.role == "assistant" else (message.speaker_name or "you")
        lines.append(f"• {message.created_at[:10]} {who}: {short(message.content, 160)}")
    return "\n".join(lines)


def usage_text(store: Store, settings: Settings, user: User, lang: str, today_since: str) -> str:
    today = store.usage_totals(user_id=user.id, since=today_since)
    total = store.usage_totals(user_id=user.id)
    share = total["cached_tokens"] / total["prompt_tokens"] if total["prompt_tokens"] else 0.0
    if settings.price_input is None or settings.price_output is None:
        cost = text("tg.usage_no_prices", lang)
    else:
        cached_price = settings.price_cached_input if settings.price_cached_input is not None else settings.price_input
        amount = ((total["prompt_tokens"] - total["cached_tokens"]) * settings.price_input
                  + total["cached_tokens"] * cached_price + total["completion_tokens"] * settings.price_output) / 1e6
        cost = text("tg.usage_cost", lang, cost=f"{amount:.4f}", currency=settings.price_currency)
    return text("tg.usage", lang,
                today_tokens=today["prompt_tokens"] + today["completion_tokens"], today_requests=today["requests"],
                today_cached=today["cached_tokens"], all_tokens=total["prompt_tokens"] + total["completion_tokens"],
                all_requests=total["requests"], cached_share=f"{share:.0%}", cost=cost)


def export_files(store: Store, engine: Engine, conversation: Conversation, user: User) -> list[BufferedInputFile]:
    """The conversation as Markdown (to read) and JSON (to import again), every stored message."""
    persona = engine.persona(conversation.persona_id)
    messages = []
    markdown = [f"# {persona.name} — conversation {conversation.id}", ""]
    for message in store.iter_messages(conversation.id):
        if message.status == "hidden":
            continue
        name = persona.name if message.role == "assistant" else (message.speaker_name or user.name)
        messages.append({"role": message.role, "name": name, "content": message.content,
                         "created_at": message.created_at})
        when = from_text(message.created_at).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        markdown += [f"**{name}** · {when}", "", message.content, ""]
    document = {"format": EXPORT_FORMAT, "persona": {"id": persona.id, "name": persona.name},
                "messages": messages}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    base = f"{persona.id}-{conversation.id}-{stamp}"
    return [
        BufferedInputFile("\n".join(markdown).encode("utf-8"), filename=f"{base}.md"),
        BufferedInputFile(json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8"), filename=f"{base}.json"),
    ]


def context_text(engine: Engine, conversation: Conversation, user: User, lang: str) -> str:
    request = engine.build_request(conversation, user=user, query="", final_user_text="")
    model = engine.route(conversation, engine.persona(conversation.persona_id)).model
    return f"{text('tg.context_note', lang)}\n```\n{render_summary(request, model)}\n```"


async def send_markdown(bot, chat_id: int, markdown: str, *, thread_id: int | None = None,
                        reply_markup=None) -> None:
    """Send the model-style Markdown as formatted messages (split when long)."""
    from bot.telegram.formatting import format_reply

    pieces = format_reply(markdown)
    for index, piece in enumerate(pieces):
        await bot.send_message(chat_id, piece.text, entities=list(piece.entities) or None,
                               message_thread_id=thread_id,
                               reply_markup=reply_markup if index == len(pieces) - 1 else None)
