"""The terminal chat: the same service layer and database as the Telegram bot, on stdin/stdout.

Input is read line by line, so it works both interactively and with piped input: one
line is one user message (bytes that are not UTF-8 read as U+FFFD), and at the end of
input it exits after the last reply. Replies stream to stdout as they arrive; notes
about a reply (which fallback model answered, what was cut from a long message, the
alternatives to page through) and errors go to stderr as short lines, so piped output
stays the replies alone.

Every command that makes sense outside Telegram is here, as a call of the service
layer (memory/service) with the same texts as in Telegram. Buttons become commands:
after /retry, /prev and /next page through the answers and /use keeps the one shown;
/forget asks for /forget yes; /docs and /persona number their lists and take the
number. The daily budget and the safety screening apply as in Telegram.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Callable, TextIO

from bot.chat_commands import memory_change
from bot.inspect import render_summary
from bot.render import (
    document_error_text,
    documents_lines,
    facts_text,
    me_text,
    persona_lines,
    render,
    search_text,
    usage_text,
)
from bot.texts import text
from bot.user_profile import MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, parse_me
from memory.documents import DocumentError
from memory.service import CompanionService, Notice, Place, SwitchKind, TurnOutcome, TurnStatus
from memory.records import User

log = logging.getLogger(__name__)
FAILED = (TurnStatus.FAILED, TurnStatus.PARTIAL, TurnStatus.OVER_BUDGET, TurnStatus.INPUT_REFUSED,
          TurnStatus.REPLY_REFUSED)


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
    def __init__(self, service: CompanionService, user: User, persona_id: str | None = None, *,
                 stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr,
                 export_dir: Path | None = None):
        self.service = service
        self.place = Place.direct(user)
        self.persona_id = persona_id
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        if hasattr(stdin, "reconfigure"):
            # Bytes that are not UTF-8 become U+FFFD: strictly they ended the chat with a
            # decoding error, and under a C locale (surrogateescape) the line could not be
            # stored or sent, with the same end.
            stdin.reconfigure(errors="replace")
        self.interactive = stdin.isatty()
        self.export_dir = export_dir or Path.cwd()
        self.failures = 0
        self.shown_reply: int | None = None  # the alternative /prev /next page from
        self.forget_asked = False
        self.commands: dict[str, Callable[[str], object]] = {
            "/help": self._help, "/new": self._new, "/history": self._history, "/context": self._context,
            "/retry": self._retry, "/prev": self._prev, "/next": self._next, "/use": self._use,
            "/continue": self._continue, "/undo": self._undo, "/memory": self._memory, "/search": self._search,
            "/export": self._export, "/forget": self._forget, "/persona": self._persona, "/me": self._me,
            "/docs": self._docs, "/asof": self._asof, "/usage": self._usage, "/tz": self._tz,
            "/lang": self._lang, "/model": self._model, "/checkin": self._telegram_only, "/voice": self._telegram_only,
        }

    @property
    def language(self) -> str:
        return self.place.lang

    async def run(self) -> int:
        """Chat until end of input or /quit; returns the exit code (1 if a reply failed)."""
        if self.persona_id is not None:
            self.service.switch_to(self.place, self.persona_id)
        if self.interactive:
            self._say(text("chat.help", self.language))
            self._show_last_greeting()
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
                if not await self._command(line.strip()):
                    break
                continue
            self.forget_asked = False
            await self._turn_call(lambda sink: self.service.say(self.place, line, sink=sink))
        return 1 if self.failures else 0

    # -- turns --------------------------------------------------------------------------
    def _sink(self) -> StreamSink:
        return StreamSink(self.stdout, self.stderr, self.language)

    async def _turn_call(self, call) -> None:
        sink = self._sink()
        self._show_turn(await call(sink), sink)

    def _show_turn(self, outcome: TurnOutcome, sink: StreamSink) -> None:
        for notice in outcome.before:
            self._note(render(notice, self.language))
        if outcome.shown is not None and outcome.status is not TurnStatus.REPLY_REFUSED:
            if not sink.shown:  # held back while it was screened
                self.stdout.write(outcome.shown)
            self.stdout.write("\n")
            self.stdout.flush()
        elif sink.shown:
            self.stdout.write("\n")
            self.stdout.flush()
        for notice in outcome.notices:
            self._note(render(notice, self.language))
        if outcome.error is not None:
            self._note(render(outcome.error, self.language))
        if outcome.status in FAILED:
            self.failures += 1
        if outcome.reply is not None:
            self.shown_reply = outcome.reply.id
        if outcome.alternatives is not None:
            self._alternatives_hint(outcome.alternatives, fresh=True)

    def _alternatives_hint(self, alternatives, *, fresh: bool = False) -> None:
        """The plain-text form of the ◀ i/n ▶ buttons (and of ✓ under one not in use)."""
        key = "chat.alternatives" if fresh or not alternatives.in_use else "chat.alternative_kept"
        self._note(text(key, self.language, index=alternatives.index + 1, count=alternatives.count))

    async def _retry(self, args: str) -> None:
        await self._turn_call(lambda sink: self.service.retry(self.place, sink=sink))

    async def _continue(self, args: str) -> None:
        await self._turn_call(lambda sink: self.service.continue_reply(self.place, sink=sink))

    def _page(self, step: int) -> None:
        reply = self.shown_reply
        if reply is None:
            last = self.service.last_reply(self.place)
            reply = last.id if last else None
        found = self.service.alternative(self.place, reply) if reply is not None else None
        if found is None or found[1] is None:
            self._say(text("chat.no_alternatives", self.language))
            return
        alternatives = found[1]
        target = alternatives.next_id if step > 0 else alternatives.previous_id
        shown, alternatives = self.service.alternative(self.place, target)
        self.shown_reply = shown.id
        self._say(shown.content)
        self._alternatives_hint(alternatives)

    def _prev(self, args: str) -> None:
        self._page(-1)

    def _next(self, args: str) -> None:
        self._page(+1)

    async def _use(self, args: str) -> None:
        if self.shown_reply is None:
            self._say(text("chat.no_alternatives", self.language))
            return
        notice, _ = await self.service.use_alternative(self.place, self.shown_reply)
        self._say(render(notice, self.language))

    # -- commands -------------------------------------------------------------------------
    async def _command(self, line: str) -> bool:
        command, _, args = line.partition(" ")
        command = command.lower().split("@")[0]
        if command in ("/quit", "/exit"):
            return False
        if command != "/forget":
            self.forget_asked = False
        handler = self.commands.get(command)
        if handler is None:
            self._say(text("chat.unknown_command", self.language, command=command))
            return True
        try:
            result = handler(args.strip())
            if asyncio.iscoroutine(result):
                await result
        except Exception:  # noqa: BLE001 - one failed command never ends the chat
            log.exception("command %s failed", command)
            self._note(text("tg.failed", self.language))
        return True

    def _help(self, args: str) -> None:
        self._say(text("chat.help", self.language))

    def _new(self, args: str) -> None:
        view = self.service.new_conversation(self.place)
        self._say(text("chat.new", self.language, persona=view.persona.name))
        if view.greeting:
            self._say(view.greeting)

    def _history(self, args: str) -> None:
        if args.isdigit() or args.lower() == "list":
            view, items = self.service.conversations(self.place)
            if args.isdigit():
                number = int(args)
                notice = self.service.resume(self.place, items[number - 1].conversation.id) \
                    if 1 <= number <= len(items) else None
                self._say(render(notice, self.language) if notice else text("tg.history_empty", self.language))
                return
            self._say(text("chat.history_list", self.language, persona=view.persona.name) if items
                      else text("tg.history_empty", self.language))
            for number, item in enumerate(items, 1):
                mark = "● " if item.conversation.active else ""
                opening = item.opening[:40] if item.opening else "…"
                self._say(f"{number}. {mark}{item.conversation.updated_at[:10]} · {opening} ({item.messages})")
            return
        lines = self.service.recent(self.place)
        if not lines:
            self._say(text("chat.empty_history", self.language))
        for line in lines:
            self._say(f"[{line.when[:16].replace('T', ' ')}] {line.who}: {line.content}")

    def _context(self, args: str) -> None:
        request, model = self.service.context(self.place)
        self._say(render_summary(request, model))

    async def _undo(self, args: str) -> None:
        self.shown_reply = None
        self._say(render(await self.service.undo(self.place), self.language))

    def _memory(self, args: str) -> None:
        if not args:
            self._say(facts_text(self.service.facts(self.place), self.language))
            return
        self._say(render(memory_change(self.service, self.place, args), self.language))

    def _search(self, args: str) -> None:
        if not args:
            self._say(text("tg.search_usage", self.language))
            return
        self._say(search_text(self.service.search(self.place, args), self.language))

    def _export(self, args: str) -> None:
        export = self.service.export(self.place)
        folder = Path(args).expanduser() if args else self.export_dir
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for file in export.files:
            path = folder / file.name
            path.write_bytes(file.data)
            paths.append(str(path))
        self._say(text("chat.exported", self.language, count=export.messages, files=", ".join(paths)))

    def _forget(self, args: str) -> None:
        if args.lower() in ("yes", "y", "是") and self.forget_asked:
            name = self.place.user.external_id
            self._say(render(self.service.forget(self.place), self.language))
            user = self.service.arrive("local", name, display_name=name)  # the chat goes on, from nothing
            self.place = Place.direct(user, self.language)
            self.forget_asked = False
            self.shown_reply = None
            return
        if args:
            self.forget_asked = False
            self._say(text("tg.forget_cancelled", self.language))
            return
        self.forget_asked = True
        self._say(text("tg.forget_confirm", self.language) + "\n" + text("chat.forget_confirm", self.language))

    def _persona(self, args: str) -> None:
        if args:
            switch = self.service.switch_persona(self.place, args)
            self._say(render(switch.notice, self.language))
            if switch.kind is SwitchKind.STARTED and switch.last is not None:
                self._say(switch.last.content)  # the greeting of the new conversation
            self.shown_reply = None
            return
        menu = self.service.personas(self.place)
        for line in persona_lines(menu, self.place.user.name, self.language, numbered=True):
            self._say(line)

    def _me(self, args: str) -> None:
        request = parse_me(args)
        if request.too_long:
            self._say(text("tg.me_too_long", self.language, name_limit=MAX_NAME_CHARS,
                           description_limit=MAX_DESCRIPTION_CHARS))
            return
        user = self.place.user
        if request.action != "show":
            user = self.service.set_me(self.place, name=request.name, description=request.description,
                                       clear=request.action == "clear")
            self.place = self.service.refresh(self.place)
        self._say(me_text(user, request.action, self.language))

    async def _docs(self, args: str) -> None:
        action, _, number = args.partition(" ")
        action = action.lower()
        if action in ("add", "read"):
            await self._read(number.strip())
            return
        if not action:
            view = self.service.documents(self.place)
            if view.items:
                self._say(text("chat.docs_title", self.language))
            for line in documents_lines(view, self.language):
                self._say(line)
            if view.items:
                self._say(text("chat.docs_usage", self.language))
            return
        document = self.service.document_by_number(self.place, int(number)) if number.strip().isdigit() else None
        if action not in ("attach", "detach") or document is None:
            self._say(text("chat.docs_usage", self.language))
            return
        call = self.service.attach if action == "attach" else self.service.detach
        self._say(render(call(self.place, document.id) or Notice("chat.docs_usage"), self.language))

    async def _read(self, path: str) -> None:
        """/docs add PATH: read a local file (any format the bot reads) and attach it here."""
        if not path:
            self._say(text("chat.docs_usage", self.language))
            return
        try:
            _, notice = await self.service.read_path(self.place, str(Path(path).expanduser()))
        except DocumentError as error:
            self._note(document_error_text(error, self.language))
            return
        self._say(render(notice, self.language))

    async def _asof(self, args: str) -> None:
        self._say(render(await self.service.set_timeline(self.place, args), self.language))

    def _usage(self, args: str) -> None:
        self._say(usage_text(self.service.usage(self.place), self.language))

    def _tz(self, args: str) -> None:
        self._say(render(self.service.timezone(self.place, args), self.language))
        self.place = self.service.refresh(self.place)

    def _lang(self, args: str) -> None:
        self._say(render(self.service.set_language(self.place, args), self.language))
        self.place = self.service.refresh(self.place)

    def _model(self, args: str) -> None:
        """/model: the operator's menu, numbered; /model N or NAME (or default) chooses."""
        refusal = self.service.model_menu(self.place)
        if refusal is not None or args:
            wanted = int(args) - 1 if args.isdigit() else args
            self._say(render(refusal or self.service.choose_model(self.place, wanted), self.language))
            return
        current = self.service.current_model(self.place)
        self._say(text("tg.model_menu", self.language, current=current))
        for number, option in enumerate(self.service.models.options, 1):
            mark = " ●" if option.name == current else ""
            self._say(f"{number}. {option.name}{mark} · {option.window // 1000}k")

    def _telegram_only(self, args: str) -> None:
        self._say(text("chat.telegram_only", self.language, command="/checkin, /voice"))

    # -- output ---------------------------------------------------------------------------
    def _show_last_greeting(self) -> None:
        view = self.service.current(self.place)
        if view.last is not None and view.last.role == "assistant":
            self._say(view.last.content)

    def _say(self, line: str) -> None:
        self.stdout.write(line + "\n")
        self.stdout.flush()

    def _note(self, line: str) -> None:
        self.stderr.write(line + "\n")
        self.stderr.flush()
