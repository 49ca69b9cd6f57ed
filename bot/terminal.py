"""The terminal chat: the same engine and database as the Telegram bot, on stdin/stdout.

Input is read line by line, so it works both interactively and with piped input: one
line is one user message (bytes that are not UTF-8 read as U+FFFD), and at the end of
input it exits after the last reply. Replies stream to stdout as they arrive; errors go
to stderr as one short line.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.inspect import render_summary
from bot.services import Services
from bot.texts import error_text, text
from memory.store import Conversation, Owner, User


class StreamSink:
    """Writes reply pieces to a text stream as they arrive."""

    def __init__(self, out: TextIO, err: TextIO, language: str):
        self.out, self.err, self.language = out, err, language
        self.shown = False

    async def delta(self, piece: str) -> None:
        self.shown = True
        self.out.write(piece)
        self.out.flush()

    async def restart(self) -> None:
        if self.shown:
            self.out.write("\n")
            self.err.write(text("chat.retrying", self.language) + "\n")
            self.err.flush()
        self.shown = False


class TerminalChat:
    def __init__(self, services: Services, user: User, persona_id: str | None, *,
                 stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr):
        self.services = services
        self.engine = services.engine
        self.user = user
        self.persona_id = persona_id
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        if hasattr(stdin, "reconfigure"):
            # Bytes that are not UTF-8 become U+FFFD: strictly they ended the chat with a
            # decoding error, and under a C locale (surrogateescape) the line could not be
            # stored or sent, with the same end.
            stdin.reconfigure(errors="replace")
        self.language = user.language or "en"
        self.interactive = stdin.isatty()
        self.failures = 0

    @property
    def owner(self) -> Owner:
        return Owner.user(self.user.id)

    def conversation(self) -> Conversation:
        return self.engine.conversation_for(self.owner, self.persona_id, user=self.user)

    async def run(self) -> int:
        """Chat until end of input or /quit; returns the exit code (1 if a reply failed)."""
        conversation = self.conversation()
        if self.interactive:
            self._say(text("chat.help", self.language))
            self._show_last_greeting(conversation)
        while True:
            if self.interactive:
                self.stdout.write("> ")
                self.stdout.flush()
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                break
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if line.startswith("/"):
                if not self._command(line.strip()):
                    break
                continue
            await self._turn(line)
        return 1 if self.failures else 0

    async def _turn(self, line: str) -> None:
        sink = StreamSink(self.stdout, self.stderr, self.language)
        conversation = self.conversation()
        result = await self.engine.submit(conversation.id, line, user=self.user, sink=sink)
        if sink.shown:
            self.stdout.write("\n")
            self.stdout.flush()
        if result.completion is not None and result.completion.fallback_from:
            # on stderr, so that piped output stays the replies alone
            self.stderr.write(text("tg.answered_by", self.language, model=result.completion.model) + "\n")
            self.stderr.flush()
        if not result.ok:
            self.failures += 1
            kind = result.error.kind if result.error else "server"
            self.stderr.write(error_text(str(kind), self.language, getattr(result.error, "detail", "")) + "\n")
            self.stderr.flush()

    def _command(self, line: str) -> bool:
        command = line.split()[0].lower()
        if command in ("/quit", "/exit"):
            return False
        if command == "/help":
            self._say(text("chat.help", self.language))
        elif command == "/new":
            conversation = self.engine.start_conversation(self.owner, self.persona_id, user=self.user)
            persona = self.engine.persona(conversation.persona_id)
            self._say(text("chat.new", self.language, persona=persona.name))
            self._show_last_greeting(conversation)
        elif command == "/history":
            self._show_history(self.conversation())
        elif command == "/context":
            conversation = self.conversation()
            request = self.engine.build_request(conversation, user=self.user, query="", final_user_text="")
            self._say(render_summary(request, self.engine.settings.model))
        else:
            self._say(text("chat.unknown_command", self.language, command=command))
        return True

    def _show_history(self, conversation: Conversation, limit: int = 20) -> None:
        messages = self.services.store.messages(conversation.id, limit=limit)
        if not messages:
            self._say(text("chat.empty_history", self.language))
        persona = self.engine.persona(conversation.persona_id)
        for message in messages:
            who = self.user.name if message.role == "user" else persona.name
            self._say(f"[{message.created_at[:16].replace('T', ' ')}] {who}: {message.content}")

    def _show_last_greeting(self, conversation: Conversation) -> None:
        messages = self.services.store.messages(conversation.id, limit=1)
        if messages and messages[0].role == "assistant":
            self._say(messages[0].content)

    def _say(self, line: str) -> None:
        self.stdout.write(line + "\n")
        self.stdout.flush()
