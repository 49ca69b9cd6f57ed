"""Receiving updates by webhook: journaled before Telegram hears they arrived.

Telegram counts an update delivered once the webhook answers 200, and aiogram's
`SimpleRequestHandler` answers at once while the update is handled in a background task,
so a crash between the two would lose it. This receiver checks the secret token, parses
the update, journals it (`UpdateJournal.receive`) and only then answers; handling runs in
a task as before. A body that is not an update gets 400 (Telegram drops it after retries)
and a wrong secret 401.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot.telegram.middlewares import UpdateJournal, load_json

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookReceiver:
    def __init__(self, dispatcher: Dispatcher, bot: Bot, journal: UpdateJournal, secret: str) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.journal = journal
        self.secret = secret
        self.tasks: set[asyncio.Task] = set()  # updates being handled, awaited at shutdown

    def register(self, app: web.Application, path: str) -> None:
        app.router.add_post(path, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.headers.get(SECRET_HEADER, ""), self.secret):
            return web.Response(text="Unauthorized", status=401)
        try:
            update = Update.model_validate(await request.json(loads=load_json), context={"bot": self.bot})
        except (ValueError, ValidationError):
            return web.Response(text="not a Telegram update", status=400)
        self.journal.receive([update])
        task = asyncio.create_task(self._feed(update))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({})

    async def _feed(self, update: Update) -> None:
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception:  # noqa: BLE001 - one update's failure must not reach the server
            log.exception("handling update %s failed", update.update_id)
