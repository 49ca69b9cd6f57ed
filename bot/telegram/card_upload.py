"""Character cards users send as files.

Only documents named `.png`, `.json` or `.charx` (or typed image/png, application/json)
are looked at. A PNG must arrive as a file: Telegram re-encodes photos as JPEG and the
card inside is lost. The file is downloaded (getFile) and kept only if it means to be a
card (`personas.looks_like_card`); anything else (a plain picture, another JSON file)
is handed on to the next router, which may be reading documents.
"""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Document

from personas import looks_like_card
from personas.cards import MAX_CARD_FILE_BYTES

CARD_SUFFIXES = (".png", ".json", ".charx")
CARD_MIME_TYPES = {"image/png", "application/json"}


class CardUnavailable(Exception):
    """The file may be a card but cannot be had; `text_key` says why, for the user."""

    def __init__(self, text_key: str) -> None:
        super().__init__(text_key)
        self.text_key = text_key


@dataclass(frozen=True)
class CardFile:
    name: str
    data: bytes


def may_hold_card(document: Document) -> bool:
    name = (document.file_name or "").lower()
    return name.endswith(CARD_SUFFIXES) or (document.mime_type or "").lower() in CARD_MIME_TYPES


def card_file_name(document: Document) -> str:
    if document.file_name:
        return document.file_name
    return "card" + (mimetypes.guess_extension(document.mime_type or "") or "")


async def download_card(bot: Bot, document: Document) -> CardFile | None:
    """The card file, or None when the document is not a card (a plain picture, other JSON)."""
    name = card_file_name(document)
    if document.file_size and document.file_size > MAX_CARD_FILE_BYTES:
        if name.lower().endswith(".png"):
            return None  # a big picture, not a card
        raise CardUnavailable("tg.card_too_big")
    try:
        downloaded = await bot.download(document, destination=io.BytesIO())
    except TelegramAPIError:
        raise CardUnavailable("tg.card_download_failed") from None
    data = downloaded.getvalue()
    return CardFile(name, data) if looks_like_card(data, name) else None
