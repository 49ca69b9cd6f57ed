"""Showing one reply in a chat while the model writes it, then sending it for good.

The turn engine pushes text with `delta()` (and `restart()` when the model stream starts
over) and ends with `finish(final_text)` or `fail(error_text)`. Nothing it calls waits on
Telegram: `delta()` only appends to a buffer, and a background task shows the latest
buffer when the rate limit allows, so a slow or throttled Telegram never slows the model
stream, and intermediate states that could not be shown are simply skipped.

How the reply is shown while it is written:
- Private chats use `sendMessageDraft` (Bot API 9.5+): an ephemeral, animated preview that
  disappears once the bot sends a message, so the final text is sent with `sendMessage`.
  Drafts are sent with `can_stop`, which gives the user Telegram's own stop button and the
  bot a `stopped_message_generation` update carrying the chat and `draft_id`.
- If any draft call fails (older servers answer 404 for a method they lack, the server may
  refuse the peer, a flood limit...), the rest of this reply falls back to what groups use:
  one message sent, then edited with `editMessageText` no more often than the configured
  interval. Those previews carry an inline "Stop" button (`StopReply` callback data) whose
  id is the same number as the draft id, so one `ActiveReplies.stop(chat_id, reply_id)`
  serves both kinds of stop.
- A typing indicator is sent (and repeated every few seconds, as Telegram shows it for
  about five) until the first text arrives; its failures are ignored.
- A preview longer than one message shows (drafts) the part being written, or (edits) one
  preview message per part.

The bot's send budget (send_budget.py, when `install`ed on the bot) paces every call, so
429s should be rare: the final message waits its turn in the budget's queue; previews (the
first one before later ones) ask for a slot before the newest text is rendered and are
skipped when there is none (the reply tries again within its interval, at a random point,
so replies refused together spread out); typing actions are skipped too. Asking holds no
lock, the budget keeps each chat's last token for the final, previews use only the rate
the finals leave (send_budget.py), and the final cancels the previewer without waiting
for it, so a final message never waits for its own previews. A reply tells the budget
while it streams (`finals_due`): its final is due. `waits` tells how long the
reply's calls waited and how many previews were skipped (the turn log's `budget_wait_ms`
and `previews_skipped`). Without a budget (a bare test bot) previews are paced by the
intervals alone.

Telegram's answers and what they mean here:
- 429 (`TelegramRetryAfter`, which aiogram does not retry): previews pause until
  `retry_after` has passed; the final send waits it out and retries, a bounded number of
  times.
- "message is not modified": the message already shows that, so it counts as done.
- "can't parse entities": the same text is sent again without formatting.
- "message to edit not found" (the user deleted a preview): the text is sent anew.
- any other 400: once more as plain text without buttons or reply reference, then it fails.
- 5xx and network errors on the final send: retried after a short pause, a bounded number
  of times. Other calls of the bot get the same care from `resilience.TelegramRetry`;
  a reply's own calls are marked so that middleware leaves them to the reply.
Non-essential calls (typing, drafts, previews) never stop the reply; only the final send
raises, after its retries, so the engine learns that the user did not get the reply.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, runtime_checkable

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

from bot.telegram.formatting import FormattedText, format_reply
from bot.telegram.resilience import mark_own_retries, own_retries
from bot.telegram.send_budget import BudgetWaits, Priority, budget_of, sending

logger = logging.getLogger(__name__)


@runtime_checkable
class ReplySink(Protocol):
    """What the turn engine streams a reply into."""

    async def delta(self, text: str) -> None:
        """The next piece of the reply (appended)."""

    async def restart(self) -> None:
        """The model stream restarted from scratch: drop what was shown."""


class StopReply(CallbackData, prefix="stop"):
    """Callback data of the inline Stop button under an edited preview."""

    reply_id: int


@dataclass(frozen=True)
class StreamSettings:
    draft_interval: float = 0.5  # seconds between draft updates (drafts are made for streaming)
    edit_interval: float = 1.0  # seconds between preview edits in private chats
    group_edit_interval: float = 3.0  # groups allow ~20 messages a minute, edits included
    typing_interval: float = 4.0  # Telegram shows "typing" for about five seconds
    final_attempts: int = 5  # tries per final message before giving up
    max_retry_wait: float = 60.0  # longest flood wait honoured in one go
    server_error_backoff: float = 1.0  # wait before retrying a final send after a 5xx/network error
    preview_failure_limit: int = 3  # consecutive failed previews before previews stop
    stop_label: str = "⏹ Stop"
    placeholder: str = "…"  # what an edited preview shows after restart()


class ActiveReplies:
    """Replies being written, by (chat_id, reply_id), so stop requests can reach them.

    Wire it to both stop paths:
        router.callback_query(StopReply.filter()) -> replies.stop(chat_id, data.reply_id)
        router.stopped_message_generation()       -> replies.stop(event.chat.id, event.draft_id)
    """

    def __init__(self) -> None:
        self._replies: dict[tuple[int, int], "TelegramReply"] = {}

    def add(self, reply: "TelegramReply") -> None:
        self._replies[(reply.chat_id, reply.reply_id)] = reply

    def discard(self, reply: "TelegramReply") -> None:
        if self._replies.get((reply.chat_id, reply.reply_id)) is reply:
            del self._replies[(reply.chat_id, reply.reply_id)]

    def stop(self, chat_id: int, reply_id: int) -> bool:
        """Ask that reply to stop; False when it has already ended (or never existed)."""
        reply = self._replies.get((chat_id, reply_id))
        if reply is None:
            return False
        reply.stop()
        return True

    def __len__(self) -> int:
        return len(self._replies)


@dataclass
class _Preview:
    message_id: int
    shown: FormattedText
    has_stop_button: bool


@dataclass
class _State:
    buffer: str = ""
    mode: str = "edit"  # "draft" or "edit"
    previews: list[_Preview] = field(default_factory=list)
    blocked_until: float = 0.0  # monotonic time before which Telegram asked us not to call
    next_update_at: float = 0.0
    plain_previews: bool = False  # Telegram refused the formatting of a preview
    preview_failures: int = 0
    got_text: bool = False
    first_shown: bool = False  # a draft or preview message reached the chat


class TelegramReply:
    """One reply, streamed into one chat. Implements ReplySink; see the module docstring."""

    def __init__(self, bot: Bot, chat_id: int, *, private: bool, thread_id: int | None = None,
                 reply_to_message_id: int | None = None, settings: StreamSettings | None = None,
                 registry: ActiveReplies | None = None) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.private = private
        self.thread_id = thread_id
        self.reply_to_message_id = reply_to_message_id
        self.settings = settings or StreamSettings()
        self.registry = registry
        self.budget = budget_of(bot)
        self.waits = BudgetWaits()
        # One non-zero id serves as draft_id and as the Stop button's callback id.
        self.reply_id = secrets.randbelow(2**31 - 2) + 1
        self.stopped = asyncio.Event()  # set when the user asked to stop; the engine watches it
        self._state = _State(mode="draft" if private else "edit")
        self._wake = asyncio.Event()  # the buffer changed since it was last shown
        self._io = asyncio.Lock()  # one Telegram call about this reply at a time
        self._previewer: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        self._delivered = False

    # -- the engine's side --------------------------------------------------------------
    async def __aenter__(self) -> "TelegramReply":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def start(self) -> None:
        """Begin the typing indicator and the preview task. Called implicitly if forgotten."""
        if self._started:
            return
        self._started = True
        if self.registry is not None:
            self.registry.add(self)
        if self.budget is not None:
            self.budget.finals_due(+1)
        self._typing = asyncio.create_task(self._keep_typing())
        self._previewer = asyncio.create_task(self._show_previews())

    async def delta(self, text: str) -> None:
        if self._closed or self.stopped.is_set() or not text:
            return
        await self.start()
        self._state.buffer += text
        if not self._state.got_text and self._state.buffer.strip():
            self._state.got_text = True
            self._stop_typing()
        self._wake.set()

    async def restart(self) -> None:
        if self._closed:
            return
        await self.start()
        self._state.buffer = ""
        if self._state.got_text:
            self._state.got_text = False
            if self._typing is None or self._typing.done():
                self._typing = asyncio.create_task(self._keep_typing())
        self._wake.set()

    def stop(self) -> None:
        """The user asked to stop (Stop button or stopped_message_generation). Later deltas
        are ignored; the engine should stop the model and call finish() with what it keeps."""
        self.stopped.set()

    @property
    def text(self) -> str:
        """Everything received since the last restart()."""
        return self._state.buffer

    async def finish(self, final_text: str, reply_markup: Any = None) -> list[int]:
        """Send the reply for good, formatted and split; returns the message ids in order.

        `reply_markup` goes under the last message. Previews are reused (edit mode) or
        replaced (drafts vanish when the message is sent). A blank text removes previews
        and sends nothing.
        """
        return await self._deliver(format_reply(final_text), reply_markup)

    async def fail(self, text: str, reply_markup: Any = None) -> list[int]:
        """End the reply with an error message (sent as typed, unformatted) instead."""
        piece = FormattedText(text.strip())
        return await self._deliver([piece] if piece.text else [], reply_markup)

    async def close(self) -> None:
        """Stop background work without sending anything (finish/fail call this)."""
        self._stop_background()
        if self._previewer is not None:
            await asyncio.gather(self._previewer, return_exceptions=True)

    def _stop_background(self) -> None:
        if self._started and not self._closed and self.budget is not None:
            self.budget.finals_due(-1)
        self._closed = True
        self._stop_typing()
        if self._previewer is not None:
            self._previewer.cancel()
        if self.registry is not None:
            self.registry.discard(self)

    # -- final delivery -----------------------------------------------------------------
    async def _deliver(self, pieces: list[FormattedText], reply_markup: Any) -> list[int]:
        if self._delivered:
            raise RuntimeError("this reply was already finished; start a new TelegramReply")
        self._delivered = True
        async with self._io:  # an in-flight preview call completes first
            with own_retries(), sending(Priority.FINAL, self.waits):
                return await self._deliver_pieces(pieces, reply_markup)

    async def _deliver_pieces(self, pieces: list[FormattedText], reply_markup: Any) -> list[int]:
        # Holding `_io`, the previewer can make no call: it is cancelled, not waited for,
        # so the final message does not wait a turn of a busy event loop for it.
        self._stop_background()
        previews = self._state.previews if self._state.mode == "edit" else []
        if previews and self.budget is None:  # the final edit keeps the pace of the preview edits
            await asyncio.sleep(max(0.0, self._state.next_update_at - time.monotonic()))
        ids: list[int] = []
        for index, piece in enumerate(pieces):
            markup = reply_markup if index == len(pieces) - 1 else None
            reuse = previews[index].message_id if index < len(previews) else None
            ids.append(await self._send_final(piece, markup, reuse, first=index == 0))
        for extra in previews[len(pieces):]:
            await self._quietly("deleteMessage", self.bot.delete_message(
                chat_id=self.chat_id, message_id=extra.message_id))
        self._state.previews = []
        return ids

    async def _send_final(self, piece: FormattedText, markup: Any, edit_id: int | None,
                          *, first: bool) -> int:
        plain = bare = False
        for attempt in range(1, self.settings.final_attempts + 1):
            await self._wait_for_flood_window()
            content = piece.plain() if plain else piece
            try:
                if edit_id is not None:
                    await self.bot.edit_message_text(chat_id=self.chat_id, message_id=edit_id,
                                                     reply_markup=markup, **content.as_kwargs())
                    return edit_id
                sent = await self.bot.send_message(
                    chat_id=self.chat_id, message_thread_id=self.thread_id, reply_markup=markup,
                    reply_parameters=self._reply_parameters() if first and not bare else None,
                    **content.as_kwargs())
                return sent.message_id
            except TelegramRetryAfter as exc:
                self._note_flood(exc)
                if attempt == self.settings.final_attempts:
                    raise
            except TelegramBadRequest as exc:
                if edit_id is not None and _is_not_modified(exc):
                    return edit_id
                if _is_bad_formatting(exc) and not plain and piece.entities:
                    logger.warning("Telegram refused the formatting (%s); sending plain text", exc.message)
                    plain = True
                elif edit_id is not None and _is_missing_message(exc):
                    edit_id = None  # the user deleted the preview: send the text anew
                elif not bare:  # a refusal we do not know: once more with nothing but the text
                    logger.warning("Telegram refused the reply (%s); sending it as plain text, no buttons",
                                   exc.message)
                    plain = bare = True
                    markup = None
                else:
                    raise
            except (TelegramServerError, TelegramNetworkError):
                if attempt == self.settings.final_attempts:
                    raise
                await asyncio.sleep(self.settings.server_error_backoff)
        raise RuntimeError("unreachable: the last attempt either returns or raises")

    async def _wait_for_flood_window(self) -> None:
        delay = self._state.blocked_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(min(delay, self.settings.max_retry_wait))

    def _reply_parameters(self) -> ReplyParameters | None:
        if self.reply_to_message_id is None:
            return None
        return ReplyParameters(message_id=self.reply_to_message_id, allow_sending_without_reply=True)

    # -- previews -----------------------------------------------------------------------
    async def _show_previews(self) -> None:
        mark_own_retries()
        while True:
            await self._wake.wait()
            delay = max(self._state.next_update_at, self._state.blocked_until) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # later text joins this update instead of queueing
            if self.stopped.is_set():
                return
            if not await self._preview_slot():
                self.waits.skipped_previews += 1
                # still awake: the next try shows whatever is newest then. It comes within
                # one interval, at a random point, so replies refused together do not all
                # ask again at one instant (and find the budget short again).
                self._state.next_update_at = time.monotonic() + self._interval() * random.uniform(0.2, 1.0)
                continue
            self._wake.clear()
            async with self._io:
                self._state.next_update_at = time.monotonic() + self._interval()
                with sending(Priority.PREVIEW, self.waits, prepaid=1 if self.budget else 0):
                    ok = await self._show(self._state.buffer)
            if ok:
                self._state.preview_failures = 0
            else:
                self._state.preview_failures += 1
                self._wake.set()  # try again at the next slot with whatever is newest
                if self._state.preview_failures >= self.settings.preview_failure_limit:
                    logger.warning("previews failed %d times in a row; showing only the final reply",
                                   self._state.preview_failures)
                    return

    async def _preview_slot(self) -> bool:
        """A budget slot for the next preview, now or never, taken before its text is
        rendered; the first preview of the reply goes before the later ones of others."""
        if self.budget is None:
            return True
        priority = Priority.PREVIEW if self._state.first_shown else Priority.FIRST
        return await self.budget.try_acquire(self.chat_id, priority)

    def _interval(self) -> float:
        if self._state.mode == "draft":
            return self.settings.draft_interval
        return self.settings.edit_interval if self.private else self.settings.group_edit_interval

    async def _show(self, markdown: str) -> bool:
        """Show the current buffer once. False when Telegram did not take it."""
        pieces = format_reply(markdown)
        if self._state.plain_previews:
            pieces = [piece.plain() for piece in pieces]
        if self._state.mode == "draft":
            if await self._show_draft(pieces[-1] if pieces else FormattedText("")):
                return True
            self._state.mode = "edit"
            self._state.next_update_at = 0.0
            self._wake.set()
            return True  # not a preview failure: the next slot shows it by editing
        if not pieces:
            if not self._state.previews:
                return True
            pieces = [FormattedText(self.settings.placeholder)]
        return await self._show_by_editing(pieces)

    async def _show_draft(self, piece: FormattedText) -> bool:
        try:
            await self.bot.send_message_draft(chat_id=self.chat_id, draft_id=self.reply_id,
                                              message_thread_id=self.thread_id, can_stop=True,
                                              **piece.as_kwargs())
            self._state.first_shown = True
            return True
        except Exception as exc:  # any failure: drafts are done for this reply
            if isinstance(exc, TelegramRetryAfter):
                self._note_flood(exc)
            logger.info("drafts unavailable in chat %s (%s); streaming by edits", self.chat_id, exc)
            return False

    async def _show_by_editing(self, pieces: list[FormattedText]) -> bool:
        previews = self._state.previews
        for index, piece in enumerate(pieces):
            wants_button = index == len(pieces) - 1
            if index < len(previews):
                preview = previews[index]
                if preview.shown == piece and preview.has_stop_button == wants_button:
                    continue
                if not await self._edit_preview(preview, piece, wants_button):
                    return False
            elif not await self._send_preview(piece, wants_button, first=index == 0):
                return False
        for extra in previews[len(pieces):]:
            await self._quietly("deleteMessage", self.bot.delete_message(
                chat_id=self.chat_id, message_id=extra.message_id))
        del previews[len(pieces):]
        return True

    async def _send_preview(self, piece: FormattedText, with_button: bool, *, first: bool) -> bool:
        async def send(content: FormattedText) -> None:
            sent = await self.bot.send_message(
                chat_id=self.chat_id, message_thread_id=self.thread_id,
                reply_markup=self._stop_markup() if with_button else None,
                reply_parameters=self._reply_parameters() if first else None,
                **content.as_kwargs())
            self._state.previews.append(_Preview(sent.message_id, content, with_button))
            self._state.first_shown = True

        return await self._preview_call(piece, send)

    async def _edit_preview(self, preview: _Preview, piece: FormattedText, with_button: bool) -> bool:
        async def edit(content: FormattedText) -> None:
            try:
                await self.bot.edit_message_text(
                    chat_id=self.chat_id, message_id=preview.message_id,
                    reply_markup=self._stop_markup() if with_button else None,
                    **content.as_kwargs())
            except TelegramBadRequest as exc:
                if not _is_not_modified(exc):
                    raise
            preview.shown, preview.has_stop_button = content, with_button

        try:
            return await self._preview_call(piece, edit)
        except _PreviewGone:
            self._state.previews.remove(preview)
            return False

    async def _preview_call(self, piece: FormattedText,
                            call: Callable[[FormattedText], Awaitable[None]]) -> bool:
        try:
            try:
                await call(piece)
            except TelegramBadRequest as exc:
                if not (_is_bad_formatting(exc) and piece.entities):
                    raise
                self._state.plain_previews = True
                await call(piece.plain())
            return True
        except TelegramRetryAfter as exc:
            self._note_flood(exc)
        except TelegramBadRequest as exc:
            if _is_missing_message(exc):
                raise _PreviewGone from exc
            logger.info("preview refused in chat %s: %s", self.chat_id, exc.message)
        except TelegramAPIError as exc:
            logger.info("preview failed in chat %s: %s", self.chat_id, exc)
        return False

    def _stop_markup(self) -> InlineKeyboardMarkup:
        button = InlineKeyboardButton(text=self.settings.stop_label,
                                      callback_data=StopReply(reply_id=self.reply_id).pack())
        return InlineKeyboardMarkup(inline_keyboard=[[button]])

    def _note_flood(self, exc: TelegramRetryAfter) -> None:
        self._state.blocked_until = max(self._state.blocked_until,
                                        time.monotonic() + exc.retry_after)

    # -- typing indicator ---------------------------------------------------------------
    async def _keep_typing(self) -> None:
        mark_own_retries()
        while True:
            await self._quietly("sendChatAction", self.bot.send_chat_action(
                chat_id=self.chat_id, action="typing", message_thread_id=self.thread_id))
            await asyncio.sleep(self.settings.typing_interval)

    def _stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()

    async def _quietly(self, what: str, call: Awaitable[Any]) -> None:
        """A call whose failure must not affect the reply."""
        try:
            await call
        except TelegramRetryAfter as exc:
            self._note_flood(exc)
        except (TelegramAPIError, asyncio.TimeoutError) as exc:
            logger.debug("%s failed in chat %s: %s", what, self.chat_id, exc)


class _PreviewGone(Exception):
    """The preview message no longer exists (deleted by the user)."""


def _is_not_modified(exc: TelegramBadRequest) -> bool:
    return "message is not modified" in exc.message


def _is_bad_formatting(exc: TelegramBadRequest) -> bool:
    message = exc.message.lower()
    return "parse entities" in message or "entity" in message or "entities" in message


def _is_missing_message(exc: TelegramBadRequest) -> bool:
    message = exc.message.lower()
    return "message to edit not found" in message or "message_id_invalid" in message
