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
from bot.texts import text
from memory.engine import Engine
from memory.persona_catalog import PersonaCatalog
from memory.reading import Attachment, Reading, context_for
from personas import card_to_json, card_to_png

OFF = {"off", "all", "0", "none", "全书", "关闭"}


class NovelDesk:
    def __init__(self, reading: Reading, engine: Engine, catalog: PersonaCatalog, jobs: ActiveJobs):
        self.reading = reading
        self.engine = engine
        self.catalog = catalog
        self.jobs = jobs

    def novel(self, ctx: ChatContext) -> Attachment | None:
        conversation = ctx.conversation(self.engine)
        attachments = self.reading.documents.attachments(conversation.id)
        link = self.reading.documents.persona_link(conversation.persona_id)
        for attachment in attachments:
            if link is not None and attachment.document.id == link.document_id:
                return attachment
        with_chapters = [a for a in attachments if a.document.chapter_count]
        return (with_chapters or attachments or [None])[-1]

    def _upto_text(self, upto: int | None, lang: str) -> str:
        return text("doc.upto", lang, number=upto) if upto else ""

    # -- /characters --------------------------------------------------------------------------
    async def list_characters(self, bot: Bot, ctx: ChatContext) -> None:
        novel = self.novel(ctx)
        if novel is None:
            await bot.send_message(ctx.chat_id, text("doc.no_novel", ctx.lang), message_thread_id=ctx.thread_id)
            return
        document, upto = novel.document, novel.limit
        found, status = await run_job(bot, ctx, self.jobs, document.title, lambda progress, cancel:
                                      self.reading.characters.find(document.id, upto, progress=progress,
                                                                   cancel=cancel), stage="scan")
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
        characters = self.reading.characters.cached(choice.document_id, upto)
        try:
            document = self.reading.documents.owned_document(ctx.user.id, choice.document_id)
        except KeyError:
            characters = None
        if not characters or choice.index >= len(characters):
            await bot.send_message(ctx.chat_id, text("doc.characters_gone", ctx.lang))
            return
        character = characters[choice.index]
        persona, status = await run_job(bot, ctx, self.jobs, character.name, lambda progress, cancel:
                                        self.reading.personas.create(ctx.user, document.id, character, upto,
                                                                     progress=progress, cancel=cancel), stage="scan")
        if persona is None:
            return
        conversation = self.reading.personas.start(self.engine, ctx.user, persona, document.id, upto)
        self.reading.provider.schedule_summaries(context_for(self.engine, conversation, ctx.user))
        card = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=text("doc.button_card", ctx.lang), callback_data=ExportCard(persona_id=persona.id).pack())]])
        await status.finish(text("doc.playing", ctx.lang, name=persona.name, title=document.title,
                                 upto=self._upto_text(upto, ctx.lang)), card)
        greeting = self.engine.store.messages(conversation.id, limit=1)
        if greeting:
            await send_markdown(bot, ctx.chat_id, greeting[0].content)

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
        novel = self.novel(ctx)

        async def say(key: str, **values: object) -> None:
            await bot.send_message(ctx.chat_id, text(key, ctx.lang, **values), message_thread_id=ctx.thread_id)

        if novel is None:
            await say("doc.no_novel")
            return
        document = novel.document
        if not document.chapter_count:
            await say("doc.no_chapters", title=document.title)
            return
        chapters = self.reading.provider.chapters(document.id)
        choice = (argument or "").strip().lower()
        number = int(choice) if choice.isdigit() and 0 < int(choice) <= document.chapter_count else None
        if choice not in OFF and number is None:
            current = text("doc.asof_whole", ctx.lang) if novel.limit is None else text(
                "doc.asof_chapter", ctx.lang, number=novel.limit, chapter=chapters[novel.limit - 1].title)
            await say("doc.asof_usage", title=document.title, current=current, count=document.chapter_count)
            return
        conversation = ctx.conversation(self.engine)
        if number is None:
            outcome = text("doc.asof_cleared", ctx.lang, title=document.title)
        else:
            outcome = text("doc.asof_set", ctx.lang, title=document.title, current=text(
                "doc.asof_chapter", ctx.lang, number=number, chapter=chapters[number - 1].title))
        link = self.reading.documents.persona_link(conversation.persona_id)
        if link is None or link.document_id != document.id:
            self.reading.documents.set_upto(conversation.id, document.id, number)
            await bot.send_message(ctx.chat_id, outcome, message_thread_id=ctx.thread_id)
            return
        # The persona was made from this novel: its profile and lore follow the timeline.
        persona, status = await run_job(bot, ctx, self.jobs, link.character_name, lambda progress, cancel:
                                        self.reading.personas.retime(conversation.persona_id, number,
                                                                     progress=progress, cancel=cancel), stage="scan")
        if persona is not None:
            self.reading.documents.set_upto(conversation.id, document.id, number)
            await status.finish(outcome)
