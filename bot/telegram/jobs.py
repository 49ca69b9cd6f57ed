"""Long jobs in a chat: one status message with stage and percent, and a Cancel button.

`ActiveJobs` (one per dispatcher, in the workflow data as `jobs`) remembers the running
jobs by id, so that a Cancel button (a `CancelJob` callback) can reach the job's
`CancelToken`; only the user who started a job may cancel it.

`StatusMessage` is the one message a job shows. The job reports `(stage, percent)`
from any thread (ingestion runs in a worker thread); a ticker on the event loop edits
the message at most every `interval` seconds, only when the text changed, and never
fails the job over an edit Telegram refused. `finish` replaces it with the outcome.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import Awaitable, Callable, TypeVar

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.telegram.callbacks import CancelJob
from bot.telegram.context import ChatContext
from bot.render import document_error_text
from bot.texts import error_text, text
from memory.documents import DocumentError
from memory.model_client import ModelError
from memory.reading import Cancelled, CancelToken, Progress

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: int
    user_id: int
    token: CancelToken = field(default_factory=CancelToken)


class ActiveJobs:
    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)

    def start(self, user_id: int) -> Job:
        job = Job(next(self._ids), user_id)
        self._jobs[job.id] = job
        return job

    def finish(self, job: Job) -> None:
        self._jobs.pop(job.id, None)

    def cancel(self, job_id: int, user_id: int) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.user_id != user_id:
            return False
        job.token.cancel()
        return True


class StatusMessage:
    def __init__(self, bot: Bot, ctx: ChatContext, name: str, job: Job, *, interval: float = 1.5):
        self.bot = bot
        self.ctx = ctx
        self.name = name
        self.job = job
        self.interval = interval
        self.message_id: int | None = None
        self._lock = threading.Lock()
        self._latest = ("download", 0)
        self._shown = ""
        self._ticker: asyncio.Task | None = None

    def report(self, stage: str, percent: int) -> None:
        """Called by the job, from any thread."""
        with self._lock:
            self._latest = (stage, percent)

    def _text(self) -> str:
        with self._lock:
            stage, percent = self._latest
        return text("doc.progress", self.ctx.lang, name=self.name, stage=text(f"doc.stage.{stage}", self.ctx.lang),
                    percent=percent)

    def _cancel_markup(self) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=text("doc.button_cancel", self.ctx.lang), callback_data=CancelJob(job_id=self.job.id).pack())]])

    async def start(self, stage: str = "download") -> "StatusMessage":
        self.report(stage, 0)
        self._shown = self._text()
        sent = await self.bot.send_message(self.ctx.chat_id, self._shown, message_thread_id=self.ctx.thread_id,
                                           reply_markup=self._cancel_markup())
        self.message_id = sent.message_id
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            current = self._text()
            if current != self._shown:
                self._shown = current
                await self._edit(current, self._cancel_markup())

    async def _edit(self, content: str, markup: InlineKeyboardMarkup | None) -> None:
        try:
            await self.bot.edit_message_text(content, chat_id=self.ctx.chat_id, message_id=self.message_id,
                                             reply_markup=markup)
        except Exception as error:  # noqa: BLE001 - a progress edit is not essential
            log.debug("status edit failed: %s", error)

    async def finish(self, content: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Replace the status with the outcome (sent anew if the edit is refused)."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        try:
            await self.bot.edit_message_text(content, chat_id=self.ctx.chat_id, message_id=self.message_id,
                                             reply_markup=markup)
        except Exception as error:  # noqa: BLE001 - the outcome must arrive one way or another
            log.info("final status edit failed (%s); sending it instead", error)
            await self.bot.send_message(self.ctx.chat_id, content, message_thread_id=self.ctx.thread_id,
                                        reply_markup=markup)


async def run_job(bot: Bot, ctx: ChatContext, jobs: ActiveJobs, name: str,
                  work: Callable[[Progress, CancelToken], Awaitable[T]], *,
                  stage: str = "download") -> tuple[T | None, StatusMessage]:
    """Run `work(progress, cancel)` under a status message with a Cancel button. On
    success the caller finishes the status with the outcome; a refusal, a cancellation
    or any other failure (logged) finishes it here with one clear line, and returns None."""
    job = jobs.start(ctx.user.id)
    try:
        status = await StatusMessage(bot, ctx, name, job).start(stage)
    except BaseException:
        jobs.finish(job)
        raise
    try:
        return await work(status.report, job.token), status
    except Cancelled:
        await status.finish(text("doc.cancelled", ctx.lang, name=name))
    except DocumentError as error:
        await status.finish(document_error_text(error, ctx.lang))
    except ModelError as error:
        await status.finish(error_text(str(error.kind), ctx.lang, error.detail))
    except Exception:  # told once here, logged with its traceback; the bot goes on
        log.exception("job %r in chat %s failed", name, ctx.chat_id)
        await status.finish(text("doc.failed", ctx.lang, name=name))
    finally:
        jobs.finish(job)
    return None, status
