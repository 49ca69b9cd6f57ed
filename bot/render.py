"""Service-layer results as text, the same for every face (Telegram, the terminal chat).

The service (memory/service) decides what to say; these functions say it in the
user's language from the catalogue (bot/texts.py). Faces add their own controls:
Telegram puts buttons under the text, the terminal chat prints the commands that do
the same (/prev /next, /docs attach N, /forget yes).
"""

from __future__ import annotations

from bot.texts import language_of, render, text
from memory.documents import DocumentError
from memory.service import DocumentsView, FactsView, PersonaMenu, SearchResults, Usage, short
from memory.records import User

__all__ = ["document_error_text", "documents_lines", "facts_text", "me_text", "persona_lines", "render",
           "search_text", "usage_text"]


def document_error_text(error: DocumentError, lang: str) -> str:
    """The library's precise English message, or the catalogue's translation of its code."""
    if language_of(lang) == "en":
        return error.message
    return text(f"doc.error.{error.code.value}", lang)


def facts_text(view: FactsView, lang: str) -> str:
    if not view.facts:
        return text("tg.memory_empty", lang)
    return "\n".join([text("tg.memory_title", lang)] + [f"{n}. {fact.text}" for n, fact in enumerate(view.facts, 1)])


def search_text(results: SearchResults, lang: str) -> str:
    if not results.hits:
        return text("tg.search_none", lang, query=results.query)
    lines = [text("tg.search_results", lang)]
    for hit in results.hits:
        lines.append(f"• {hit.message.created_at[:10]} {hit.who or 'you'}: {short(hit.message.content, 160)}")
    return "\n".join(lines)


def usage_text(usage: Usage, lang: str) -> str:
    if usage.cost is None:
        cost = text("tg.usage_no_prices", lang)
    else:
        cost = text("tg.usage_cost", lang, cost=f"{usage.cost:.4f}", currency=usage.currency)
    return text("tg.usage", lang, today_tokens=usage.today_tokens, today_requests=usage.today_requests,
                today_cached=usage.today_cached, all_tokens=usage.all_tokens, all_requests=usage.all_requests,
                cached_share=f"{usage.cached_share:.0%}", cost=cost)


def me_text(user: User, action: str, lang: str) -> str:
    """The answer to /me: what the bot now knows about the user."""
    if not user.me_name and not user.me_description:
        key = "tg.me_cleared" if action == "clear" else "tg.me_unset"
        return text(key, lang, name=user.name)
    about = text("tg.me_about", lang, description=user.me_description) if user.me_description else ""
    return text("tg.me_saved" if action == "set" else "tg.me_show", lang, name=user.name, about=about)


def persona_lines(menu: PersonaMenu, user_name: str, lang: str, *, numbered: bool = False,
                  first: int = 0, count: int | None = None) -> list[str]:
    """The /persona menu: the current persona, then the ones to choose from (numbered, for
    a face without buttons)."""
    current = menu.current
    lines = [text("tg.persona_current", lang, name=current.name, summary=current.summary(user_name)), "",
             text("chat.persona_choose" if numbered else "tg.persona_choose", lang)]
    shown = menu.entries[first:first + count if count is not None else None]
    for number, entry in enumerate(shown, first + 1):
        mark = f"{number}. " if numbered else "• "
        here = " ●" if numbered and entry.persona.id == current.id else ""
        lines.append(f"{mark}{entry.persona.name}{here} — {entry.persona.summary(user_name, 90)}")
    return lines


def documents_lines(view: DocumentsView, lang: str) -> list[str]:
    """/docs as numbered lines (the terminal; Telegram shows them as buttons)."""
    if not view.items:
        return [text("doc.list_empty", lang)]
    lines = []
    for number, item in enumerate(view.items, 1):
        document = item.document
        chapters = f" · {document.chapter_count} ch." if document.chapter_count else ""
        lines.append(f"{number}. {'[x]' if item.attached else '[ ]'} {short(document.title, 60)} · "
                     f"{document.chars:,} chars{chapters}")
    return lines
