"""Characters of a novel in Telegram: /characters, picking one, its card, and /asof.

The novel is the one the conversation is about: the document the current persona was
made from, else the latest attached document that has chapters, else the latest
attached one. /characters lists its main characters (found by the model once, cached)
under a status message with progress and Cancel; a button per character makes the
persona and starts a new conversation with it, the novel attached within the same
timeline. /asof N sets the timeline of the novel in this conversation (chapters 1..N
only); when the persona was made from that novel, its profile and lore are made again
from those chapters, so the character cannot spoil what comes later.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot.telegram.callbacks import ExportCard, PickCharacter
from bot.telegram.context import ChatContext
from bot.telegram.jobs import ActiveJobs, run_job
from bot.telegram.views import send_markdown, short
from bot.texts import render, text
from memory.persona_catalog import PersonaCatalog
from memory.service import CompanionService
from personas import card_to_json, card_to_png


class NovelDesk:
    def __init__(self, service: CompanionService, catalog: PersonaCatalog, jobs: ActiveJobs):
        self.service = service
        self.catalog = catalog
        self.jobs = jobs

    def _upto_text(self, upto: int | None, lang: str) -> str:
        return text("doc.upto", lang, number=upto) if upto else ""

    async def _say(self, bot: Bot, ctx: ChatContext, line: str) -> None:
        await bot.send_message(ctx.chat_id, line, message_thread_id=ctx.thread_id)

    # -- /characters --------------------------------------------------------------------------
    async def list_characters(self, bot: Bot, ctx: ChatContext) -> None:
        novel = self.service.novel(ctx.place)
        if novel is None:
            await self._say(bot, ctx, text("doc.no_novel", ctx.lang))
            return
        document, upto = novel.document, novel.limit
        found, status = await run_job(bot, ctx, self.jobs, document.title, lambda progress, cancel:
                                      self.service.characters(ctx.place, progress=progress, cancel=cancel),
                                      stage="scan")
        if found is None:
            return
        if not found:
            await status.finish(text("doc.characters_none", ctx.lang, title=document.title))
            return
        lines = [text("doc.characters_title", ctx.lang, title=document.title, upto=self._upto_text(upto, ctx.lang))]
        lines += [f"{n}. {c.name}" + (f" — {short(c.line, 120)}" if c.line else "") for n, c in enumerate(found, 1)]
        rows = [[InlineKeyboardButton(text=f"🎭 {short(c.name, 30)}", callback_data=PickCharacter(
            document_id=document.id, upto=upto or 0, index=n).pack())] for n, c in enumerate(found)]
        await status.finish("\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows))

    async def pick(self, bot: Bot, ctx: ChatContext, choice: PickCharacter) -> None:
        upto = choice.upto or None
        listed = self.service.listed_character(ctx.place, choice.document_id, upto, choice.index)
        if listed is None:
            await bot.send_message(ctx.chat_id, text("doc.characters_gone", ctx.lang))
            return
        document, character = listed
        switch, status = await run_job(bot, ctx, self.jobs, character.name, lambda progress, cancel:
                                       self.service.play_character(ctx.place, document.id, character, upto,
                                                                   progress=progress, cancel=cancel), stage="scan")
        if switch is None:
            return
        persona = switch.persona
        card = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=text("doc.button_card", ctx.lang), callback_data=ExportCard(persona_id=persona.id).pack())]])
        await status.finish(text("doc.playing", ctx.lang, name=persona.name, title=document.title,
                                 upto=self._upto_text(upto, ctx.lang)), card)
        if switch.last is not None:
            await send_markdown(bot, ctx.chat_id, switch.last.content)

    async def send_card(self, bot: Bot, ctx: ChatContext, persona_id: str) -> None:
        if not self.catalog.may_use(persona_id, ctx.user):
            return
        persona = self.catalog.entry(persona_id).persona
        caption = text("doc.card_caption", ctx.lang, name=persona.name)
        await bot.send_document(ctx.chat_id, BufferedInputFile(card_to_png(persona, self.catalog.avatar(persona_id)),
                                                               filename=f"{persona.id}.png"), caption=caption)
        await bot.send_document(ctx.chat_id, BufferedInputFile(card_to_json(persona), filename=f"{persona.id}.json"))

    # -- /asof ----------------------------------------------------------------------------------
    async def set_timeline(self, bot: Bot, ctx: ChatContext, argument: str | None) -> None:
        plan = self.service.plan_timeline(ctx.place, argument)
        if plan.retime_persona is None:
            await self._say(bot, ctx, render(await self.service.apply_timeline(ctx.place, plan), ctx.lang))
            return
        # The persona was made from this novel: its profile and lore follow the timeline.
        outcome, status = await run_job(bot, ctx, self.jobs, plan.retime_name, lambda progress, cancel:
                                        self.service.apply_timeline(ctx.place, plan, progress=progress,
                                                                    cancel=cancel), stage="scan")
        if outcome is not None:
            await status.finish(render(outcome, ctx.lang))
