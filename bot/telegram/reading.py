"""Documents in Telegram: uploads, links, photos for vision models, and /docs.

The glue between the thin handlers in `handlers/documents.py` and `memory.reading`:

* An upload is refused before downloading when it is over what Telegram lets a bot
  download (20 MB on the official Bot API; `TELEGRAM_API_LOCAL` lifts it) or over
  `COMPANION_DOCUMENT_MAX_MB`, with a message that says which. Otherwise it is fetched
  with getFile and read in a worker thread (the bot keeps answering everyone else),
  under one status message edited with the stage and percent, with a Cancel button.
  The document is attached to the conversation of the chat, and the status says what
  was read and whether it is read verbatim or summarized.
* Links in a message (with `COMPANION_FETCH_LINKS=true`) are read the same way before
  the message is answered; private, loopback and link-local addresses are refused.
* Pictures (a photo, or an image sent as a file) go to the model as image content
  with `COMPANION_VISION=true`; otherwise a photo stays a "[photo]" description and an
  image file gets a clear message.
"""

from __future__ import annotations

import io
import re
from pathlib import PurePosixPath

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.settings import TELEGRAM_DOWNLOAD_LIMIT, Settings
from bot.telegram.callbacks import ToggleDocument
from bot.telegram.context import ChatContext
from bot.telegram.jobs import ActiveJobs, run_job
from bot.telegram.views import short
from bot.texts import render, text
from memory.documents import DocumentError, ErrorCode
from memory.reading import IngestResult
from memory.service import CompanionService
from memory.vision import ImageInput

MAX_LINKS = 3
_LINK = re.compile(r"https?://[^\s<>\"'“”]+", re.IGNORECASE)
_IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                   ".gif": "image/gif"}


def links_in(message_text: str | None) -> list[str]:
    """The web links in a message, trailing punctuation left out, at most MAX_LINKS."""
    found = [link.rstrip(".,;:!?)]}，。；：！？）") for link in _LINK.findall(message_text or "")]
    return list(dict.fromkeys(found))[:MAX_LINKS]


def without_mention(caption: str, bot_username: str | None) -> str:
    """A caption addressed to the bot in a group, without the leading @mention."""
    if not bot_username:
        return caption
    return re.sub(rf"^\s*@{re.escape(bot_username)}\b[\s,:，：]*", "", caption, flags=re.IGNORECASE) or caption


def image_type(message: Message) -> str | None:
    """The image type of a document that is a picture, else None."""
    document = message.document
    if document is None:
        return None
    if (document.mime_type or "").startswith("image/"):
        return document.mime_type
    return _IMAGE_SUFFIXES.get(PurePosixPath((document.file_name or "").lower()).suffix)


def _megabytes(size: int) -> str:
    value = size / (1024 * 1024)
    return f"{value:.1f}" if value >= 0.1 else f"{value:.3f}"


class ReadingDesk:
    def __init__(self, service: CompanionService, settings: Settings, jobs: ActiveJobs):
        self.service = service
        self.settings = settings
        self.jobs = jobs

    # -- uploads and links ------------------------------------------------------------------
    def size_refusal(self, size: int | None, lang: str) -> str | None:
        """Why a file of this size cannot be read, or None."""
        if size is None:
            return None
        if size <= self.settings.telegram_download_limit:
            return None
        limit = self.settings.document_limits.max_document_bytes
        if not self.settings.telegram_api_local and TELEGRAM_DOWNLOAD_LIMIT <= limit:
            return text("doc.too_big_for_telegram", lang, size=_megabytes(size))  # the Bot API stands in the way
        return text("doc.too_large", lang, size=_megabytes(size), limit=_megabytes(limit))

    async def read_upload(self, bot: Bot, message: Message, ctx: ChatContext) -> IngestResult | None:
        """Download, read, store and attach an uploaded document; None if refused."""
        document = message.document
        refusal = self.size_refusal(document.file_size, ctx.lang)
        if refusal is not None:
            await message.reply(refusal)
            return None
        name = document.file_name or "document"

        async def work(progress, cancel):
            try:
                data = (await bot.download(document, destination=io.BytesIO())).getvalue()
            except TelegramBadRequest as error:  # "file is too big": its size was not declared
                if "too big" not in str(error).lower():
                    raise
                raise DocumentError(ErrorCode.TOO_LARGE, "This file is over the 20 MB Telegram lets bots "
                                    "download. Send a smaller file or split it.") from None
            cancel.check()
            return await self.service.read_bytes(ctx.place, data, name, content_type=document.mime_type,
                                                 progress=progress, cancel=cancel)

        read, status = await run_job(bot, ctx, self.jobs, name, work)
        if read is None:
            return None
        result, notice = read
        await status.finish(render(notice, ctx.lang))
        return result

    async def read_links(self, bot: Bot, ctx: ChatContext, links: list[str]) -> None:
        """Read each link and attach it; refusals are shown and the rest goes on."""
        for link in links:
            read, status = await run_job(bot, ctx, self.jobs, short(link, 60), lambda progress, cancel:
                                         self.service.read_link(ctx.place, link, progress=progress, cancel=cancel))
            if read is not None:
                await status.finish(render(read[1], ctx.lang))

    # -- pictures ---------------------------------------------------------------------------
    async def images(self, bot: Bot, message: Message) -> list[ImageInput]:
        """The picture of a message (the largest photo size, or an image file)."""
        if message.photo:
            source, mime = message.photo[-1], "image/jpeg"
        else:
            source, mime = message.document, image_type(message) or "image/jpeg"
        data = (await bot.download(source, destination=io.BytesIO())).getvalue()
        return [ImageInput(data, mime)]

    # -- /docs --------------------------------------------------------------------------------
    def listing(self, ctx: ChatContext) -> tuple[str, InlineKeyboardMarkup | None]:
        view = self.service.documents(ctx.place)
        if not view.items:
            return text("doc.list_empty", ctx.lang), None
        rows = []
        for item in view.items:
            document = item.document
            chapters = f" · {document.chapter_count} ch." if document.chapter_count else ""
            label = f"{'✅' if item.attached else '▫️'} {short(document.title, 40)} · " \
                    f"{document.chars:,} chars{chapters}"
            rows.append([InlineKeyboardButton(text=label,
                                              callback_data=ToggleDocument(document_id=document.id).pack())])
        return text("doc.list_title", ctx.lang), InlineKeyboardMarkup(inline_keyboard=rows)
