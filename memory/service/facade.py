"""`CompanionService`: every chat command and the turn, as calls, for every face.

A face (the Telegram app, the terminal chat, the Mini App) turns what a person did
into one call here, with a `Place` (who, and where), and turns the result back into
its own form: texts from `Notice`s, buttons or plain-text commands from the data. It
never reaches the Store or the engine itself. Each call resolves the place's current
conversation once and passes it down.

The turn (`say`, `retry`, `continue_reply`, `edit`) applies admission in this order:
screening of what the user wrote (refused input is neither stored nor answered), the
daily budget (no model call when used up), then the engine's turn, then screening of
the reply (a refused reply is hidden and not shown; with a refuse policy nothing is
previewed while it is written). The outcome says what to show, and what to add under
it: what was cut from a message longer than the model's window, which fallback model
answered, why the reply broke off.

Replay after a crash (`replay`): a platform message already stored is not handled
again; if it is in the last exchange, a message never answered is answered now and a
reply stored but never delivered is delivered now (the face then calls `delivered`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, Sequence
from zoneinfo import ZoneInfo

from memory.assembly import AssembledRequest
from memory.engine import Engine, ReplySink, TurnResult
from memory.facts import FactError
from memory.importer import COMPANION_FORMAT
from memory.moderation import Screening
from memory.persona_catalog import PersonaCatalog
from memory.service.admission import Admission
from memory.service.results import (
    Access,
    Alternatives,
    ConversationItem,
    ConversationView,
    DocumentItem,
    DocumentsView,
    Export,
    ExportFile,
    FactsView,
    HistoryLine,
    Notice,
    PersonaMenu,
    PersonaSwitch,
    Place,
    Replay,
    ReplayKind,
    SearchHit,
    SearchResults,
    SwitchKind,
    TurnOutcome,
    TurnStatus,
    Usage,
)
from memory.service.zones import parse_zone, zone_label
from memory.records import Conversation, Message, User, from_text, to_text
from memory.vision import ImageInput

log = logging.getLogger(__name__)
TIMELINE_OFF = {"off", "all", "0", "none", "全书", "关闭"}
LANGUAGE_CHOICES = ("en", "zh", "auto")
VOICE_ON, VOICE_OFF = ("on", "开"), ("off", "关")


def short(value: str, limit: int = 60) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


@dataclass(frozen=True)
class VoiceAbility:
    """What the operator's audio endpoint can do."""

    speaks: bool = False  # voice replies (text to speech)
    listens: bool = False  # voice messages (transcription)


@dataclass(frozen=True)
class TimelinePlan:
    """What `/asof ARG` will do: `notice` to say now or after `retime_persona` is made again."""

    notice: Notice
    ready: bool  # False: nothing to change (usage, no novel, no chapters)
    document_id: int | None = None
    upto: int | None = None
    retime_persona: str | None = None  # the persona made from the novel: its profile follows
    retime_name: str | None = None


Progress = Callable[[str, int], None]


class _Unshown:
    """A reply sink that shows nothing while the model writes (the reply may be refused)."""

    async def delta(self, text: str) -> None:
        return None

    async def restart(self) -> None:
        return None


class CompanionService:
    """The service layer. Built once by the composition root (bot/services.py)."""

    def __init__(self, engine: Engine, catalog: PersonaCatalog, admission: Admission, *,
                 memory=None, reading=None, choices=None, checkins=None, models=None,
                 voice: VoiceAbility = VoiceAbility()) -> None:
        self.engine = engine
        self.store = engine.store
        self.catalog = catalog
        self.admission = admission
        self.memory = memory  # memory.longterm.LongTermMemory: pinned facts
        self.reading = reading  # memory.reading.Reading: documents and novels
        self.choices = choices  # memory.user_choices.UserChoices
        self.checkins = checkins  # memory.checkins.Checkins, when check-ins are on
        self.models = models  # memory.routing.ModelMenu
        self.voice = voice

    # -- people and places --------------------------------------------------------------
    def arrive(self, platform: str, external_id: str | int, *, display_name: str | None = None,
               language: str | None = None) -> User:
        """The user behind a platform id, created on first sight (name and language
        refreshed); one who had blocked the bot and came back is active again."""
        user = self.store.directory.ensure_user(platform, external_id, display_name=display_name, language=language)
        if user.status != "active":
            self.store.directory.update_user(user.id, status="active")
            user = self.store.directory.user(user.id)
        return user

    def refresh(self, place: Place) -> Place:
        """The same place with the user as stored now (after /lang, /tz, /me)."""
        user = self.store.directory.user(place.user.id)
        return Place(user, place.owner, place.private, user.ui_language or place.lang)

    def user_left(self, user: User) -> None:
        """The user blocked the bot: no check-ins, no messages until they come back."""
        self.store.directory.update_user(user.id, status="blocked")

    # -- places and conversations ------------------------------------------------------
    def conversation(self, place: Place) -> Conversation:
        """The place's active conversation with its current persona, started if none."""
        persona_id = self.store.directory.persona_of(place.owner)
        return self.engine.conversation_for(place.owner, persona_id, user=place.user)

    def current(self, place: Place) -> ConversationView:
        conversation = self.conversation(place)
        persona = self.engine.persona(conversation.persona_id)
        opening = next(self.store.conversations.iter_messages(conversation.id, batch=1), None)
        greeting = opening.content if opening and opening.role == "assistant" else None
        last = self.store.conversations.messages(conversation.id, limit=1)
        return ConversationView(conversation, persona, greeting, last[0] if last else None)

    def new_conversation(self, place: Place) -> ConversationView:
        """/new: a new conversation with the same persona; the old one is kept."""
        conversation = self.engine.start_conversation(place.owner, self.store.directory.persona_of(place.owner),
                                                      user=place.user)
        persona = self.engine.persona(conversation.persona_id)
        greeting = self.store.conversations.messages(conversation.id, limit=1)
        return ConversationView(conversation, persona, greeting[0].content if greeting else None,
                                greeting[0] if greeting else None)

    def conversations(self, place: Place, limit: int = 10) -> tuple[ConversationView, list[ConversationItem]]:
        """/history: the place's conversations with its current persona, newest first."""
        view = self.current(place)
        items = []
        for conversation in self.store.conversations.conversations_of(place.owner, view.persona.id)[:limit]:
            opening = itertools.islice(self.store.conversations.iter_messages(conversation.id, batch=4), 4)
            first = next((m for m in opening if m.role == "user"), None)
            items.append(ConversationItem(conversation, first.content if first else None,
                                          self.store.conversations.count_messages(conversation.id)))
        return view, items

    def resume(self, place: Place, conversation_id: int) -> Notice | None:
        """Go back to an older conversation of this place; None if it is not the place's."""
        try:
            conversation = self.store.conversations.conversation(conversation_id)
        except KeyError:
            return None
        if conversation.owner != place.owner:
            return None
        self.store.conversations.resume_conversation(conversation.id)
        last = self.store.conversations.messages(conversation.id, limit=1)
        return Notice("tg.resumed", {"date": conversation.updated_at[:10],
                                     "last": short(last[0].content, 300) if last else "…"})

    def recent(self, place: Place, limit: int = 20) -> list[HistoryLine]:
        """The last messages of the conversation, oldest first, with who said them."""
        conversation = self.conversation(place)
        persona = self.engine.persona(conversation.persona_id)
        return [HistoryLine(m.created_at, place.user.name if m.role == "user" else persona.name, m.content, m.role)
                for m in self.store.conversations.messages(conversation.id, limit=limit)]

    def context(self, place: Place) -> tuple[AssembledRequest, str]:
        """/context: the request the next message would send (nothing persisted), and its model."""
        conversation = self.conversation(place)
        request = self.engine.build_request(conversation, user=place.user, query="", final_user_text="")
        model = self.engine.route(conversation, self.engine.persona(conversation.persona_id)).model
        return request, model

    # -- admission ---------------------------------------------------------------------
    def admit(self, user: User) -> Access:
        """May this user be served? Refused users are told once (REFUSED), then not again."""
        return self.admission.access(user)

    def is_admin(self, user: User) -> bool:
        return self.admission.is_admin(user)

    # -- the turn ----------------------------------------------------------------------
    async def say(self, place: Place, content: str, *, sink: ReplySink | None = None,
                  stop: asyncio.Event | None = None, platform_message_id: str | int | None = None,
                  speaker_name: str | None = None, images: Sequence[ImageInput] = ()) -> TurnOutcome:
        """A message from the user, answered (with any that arrived while it waited)."""
        conversation = self.conversation(place)
        before, refused = await self._screen_input(place, content, conversation.id)
        if refused is not None:
            return refused
        outcome = await self._run(place, conversation.id, lambda shown: self.engine.submit(
            conversation.id, content, user=place.user, speaker_name=speaker_name,
            platform_message_id=platform_message_id, sink=shown, stop=stop, images=images), sink)
        outcome.before[:0] = before
        return outcome

    async def retry(self, place: Place, *, conversation_id: int | None = None, sink: ReplySink | None = None,
                    stop: asyncio.Event | None = None) -> TurnOutcome:
        """/retry: another answer to the last message; every alternative is kept."""
        conversation = self._owned(place, conversation_id) if conversation_id else self.conversation(place)
        if conversation is None or not self.store.conversations.last_exchange(conversation.id)[0]:
            return TurnOutcome(TurnStatus.NOTHING_TO_RETRY, conversation.id if conversation else None,
                               error=Notice("tg.nothing_to_retry"))
        return await self._run(place, conversation.id, lambda shown: self.engine.regenerate(
            conversation.id, user=place.user, sink=shown, stop=stop), sink)

    async def continue_reply(self, place: Place, *, sink: ReplySink | None = None,
                             stop: asyncio.Event | None = None) -> TurnOutcome:
        """/continue: the last reply goes on; `shown` is the addition."""
        conversation = self.conversation(place)
        if self.store.conversations.last_exchange(conversation.id)[1] is None:
            return TurnOutcome(TurnStatus.NOTHING_TO_CONTINUE, conversation.id,
                               error=Notice("tg.nothing_to_continue"))
        return await self._run(place, conversation.id, lambda shown: self.engine.continue_reply(
            conversation.id, user=place.user, sink=shown, stop=stop), sink, continued=True)

    async def edit(self, place: Place, platform_message_id: str | int, content: str, *,
                   speaker_name: str | None = None, sink: ReplySink | None = None,
                   stop: asyncio.Event | None = None) -> TurnOutcome:
        """The user edited a message: the last exchange is answered anew; older ones are not."""
        conversation = self.conversation(place)
        edited = self.store.conversations.find_by_platform_id(conversation.id, platform_message_id, role="user")
        users, _ = self.store.conversations.last_exchange(conversation.id)
        if edited is None or edited.id not in {m.id for m in users}:
            return TurnOutcome(TurnStatus.EDIT_TOO_OLD, conversation.id, error=Notice("tg.edit_too_old"))
        before, refused = await self._screen_input(place, content, conversation.id)
        if refused is not None:
            return refused

        async def operation(shown: ReplySink | None) -> TurnResult:
            result = await self.engine.answer_edit(conversation.id, platform_message_id, content, user=place.user,
                                                   speaker_name=speaker_name, sink=shown, stop=stop)
            return result if result is not None else TurnResult("merged")

        outcome = await self._run(place, conversation.id, operation, sink)
        outcome.before[:0] = before
        return outcome

    async def remember(self, place: Place, content: str, *, speaker_name: str | None = None,
                       platform_message_id: str | int | None = None) -> Message:
        """Keep a message as context without answering it (group chatter)."""
        conversation = self.conversation(place)
        return await self.engine.remember(conversation.id, content, user=place.user, speaker_name=speaker_name,
                                          platform_message_id=platform_message_id)

    def replay(self, place: Place, platform_message_id: str | int) -> Replay:
        """For an update replayed after a crash: what is left to do for it."""
        conversation = self.conversation(place)
        stored = self.store.conversations.find_by_platform_id(conversation.id, platform_message_id, role="user")
        if stored is None:
            return Replay(ReplayKind.NEW)
        users, reply = self.store.conversations.last_exchange(conversation.id)
        if stored.id not in {m.id for m in users}:
            return Replay(ReplayKind.HANDLED)
        if reply is None:
            return Replay(ReplayKind.ANSWER_AGAIN)
        if reply.platform_message_id is None:
            return Replay(ReplayKind.RESEND, reply, failed=any(m.status == "failed" for m in users),
                          alternatives=self.alternatives(reply.id))
        return Replay(ReplayKind.HANDLED)

    def delivered(self, reply_id: int, platform_message_id: str | int) -> None:
        """The face sent the reply as this platform message (edits and replays find it)."""
        self.store.conversations.set_platform_message_id(reply_id, platform_message_id)

    async def _screen_input(self, place: Place, content: str,
                            conversation_id: int) -> tuple[list[Notice], TurnOutcome | None]:
        screening = await self.admission.screen_input(place.user, content, conversation_id)
        if screening is not None and screening.refused:
            return [], TurnOutcome(TurnStatus.INPUT_REFUSED, conversation_id, error=Notice("tg.input_refused"))
        return ([Notice("tg.input_warned")] if screening is not None and screening.warned else []), None

    async def _run(self, place: Place, conversation_id: int,
                   operation: Callable[[ReplySink | None], Awaitable[TurnResult]], sink: ReplySink | None, *,
                   continued: bool = False) -> TurnOutcome:
        if self.admission.over_budget(place.user):
            return TurnOutcome(TurnStatus.OVER_BUDGET, conversation_id,
                               error=Notice("tg.budget_exhausted", {"limit": self.admission.policy.daily_tokens}))
        result = await operation(_Unshown() if self.admission.holds_replies_back and sink is not None else sink)
        screening = None
        if result.reply is not None and result.status != "merged":
            screening = await self.admission.screen_reply(place.user, result.reply.content,
                                                          result.reply.conversation_id, result.reply.id)
        return self._outcome(conversation_id, result, screening, continued)

    def _outcome(self, conversation_id: int, result: TurnResult, screening: Screening | None,
                 continued: bool) -> TurnOutcome:
        if result.status == "merged":
            return TurnOutcome(TurnStatus.MERGED, conversation_id, result=result)
        error = None
        if result.error is not None:
            kind = str(result.error.kind)
            error = Notice(f"error.{kind}", {"detail": getattr(result.error, "detail", "")})
        if result.reply is None:
            return TurnOutcome(TurnStatus.FAILED, conversation_id, error=error or Notice("error.server"),
                               result=result)
        if screening is not None and screening.refused:
            return TurnOutcome(TurnStatus.REPLY_REFUSED, conversation_id, result.reply,
                               error=Notice("tg.reply_refused"), result=result)
        shown = result.completion.text if continued and result.completion else result.reply.content
        notices = []
        if screening is not None and screening.warned:
            notices.append(Notice("tg.reply_warned"))
        cut = result.cut
        if cut is not None:
            notices.append(Notice("turn.cut", {"sent": f"{cut[0]:,}", "total": f"{cut[1]:,}"}))
        if result.completion is not None and result.completion.fallback_from:
            notices.append(Notice("tg.answered_by", {"model": result.completion.model}))
        status = TurnStatus.PARTIAL if result.error is not None else TurnStatus.ANSWERED
        alternatives = None if result.error is not None else self.alternatives(result.reply.id)
        return TurnOutcome(status, conversation_id, result.reply, shown, notices, error=error,
                           alternatives=alternatives, result=result)

    # -- alternatives and undo ---------------------------------------------------------
    def alternatives(self, reply_id: int) -> Alternatives | None:
        """The replies to the same message as `reply_id`, when there is more than one."""
        found = self.engine.alternatives(reply_id)
        if len(found) < 2:
            return None
        ids = tuple(a.id for a in found)
        index = ids.index(reply_id)
        return Alternatives(reply_id, index, ids, found[index].status != "hidden")

    def alternative(self, place: Place, reply_id: int) -> tuple[Message, Alternatives | None] | None:
        """One alternative to show (paging with ◀ ▶ or /prev /next); None if not the place's."""
        try:
            shown = self.store.conversations.message(reply_id)
        except KeyError:
            return None
        if self._owned(place, shown.conversation_id) is None:
            return None
        return shown, self.alternatives(reply_id)

    async def use_alternative(self, place: Place, reply_id: int) -> tuple[Notice, Alternatives | None]:
        """Make the shown alternative the reply the character remembers (latest exchange only)."""
        found = self.alternative(place, reply_id)
        if found is None:
            return Notice("tg.alternative_too_old"), None
        try:
            chosen = await self.engine.choose_alternative(reply_id)
        except ValueError:
            return Notice("tg.alternative_too_old"), None
        return Notice("tg.alternative_chosen"), self.alternatives(chosen.id)

    def last_reply(self, place: Place) -> Message | None:
        return self.store.conversations.last_exchange(self.conversation(place).id)[1]

    async def undo(self, place: Place) -> Notice:
        """/undo: the last exchange leaves the context (it stays stored, hidden)."""
        hidden = await self.engine.undo(self.conversation(place).id)
        return Notice("tg.undone", {"count": len(hidden)}) if hidden else Notice("tg.nothing_to_undo")

    def _owned(self, place: Place, conversation_id: int) -> Conversation | None:
        try:
            conversation = self.store.conversations.conversation(conversation_id)
        except KeyError:
            return None
        return conversation if conversation.owner == place.owner else None

    # -- memory (pinned facts) ---------------------------------------------------------
    def facts(self, place: Place) -> FactsView:
        """/memory: what the character keeps about the user (and this chat), numbered from 1."""
        conversation = self.conversation(place)
        persona = self.engine.persona(conversation.persona_id)
        facts = self.memory.list_facts(place.owner, persona.id) if self.memory is not None else []
        return FactsView(persona, facts)

    def add_fact(self, place: Place, fact_text: str) -> Notice:
        """/memory add TEXT: in the very next request."""
        if self.memory is None:
            return Notice("tg.memory_usage")
        try:
            self.memory.add_fact(place.owner, self.conversation(place).persona_id, fact_text)
        except FactError as exc:
            return Notice("tg.memory_invalid", {"reason": str(exc)})
        return Notice("tg.memory_added")

    def edit_fact(self, place: Place, number: int, fact_text: str) -> Notice:
        """/memory edit N TEXT (N as listed)."""
        persona_id, fact = self._fact(place, number)
        if fact is None:
            return Notice("tg.memory_usage")
        try:
            self.memory.edit_fact(place.owner, persona_id, fact.id, fact_text)
        except FactError as exc:
            return Notice("tg.memory_invalid", {"reason": str(exc)})
        return Notice("tg.memory_edited", {"number": number})

    def delete_fact(self, place: Place, number: int) -> Notice:
        """/memory delete N (N as listed): the model will not learn it again."""
        persona_id, fact = self._fact(place, number)
        if fact is None:
            return Notice("tg.memory_usage")
        self.memory.delete_fact(place.owner, persona_id, fact.id)
        return Notice("tg.memory_deleted", {"number": number})

    def delete_fact_id(self, place: Place, fact_id: int) -> bool:
        """The delete button under /memory, by the fact's id."""
        if self.memory is None:
            return False
        return self.memory.delete_fact(place.owner, self.conversation(place).persona_id, fact_id)

    def _fact(self, place: Place, number: int):
        """(persona id, the fact listed as `number`), the fact None if there is none."""
        view = self.facts(place)
        return view.persona.id, (view.facts[number - 1] if 1 <= number <= len(view.facts) else None)

    # -- history: search and export ----------------------------------------------------
    def search(self, place: Place, query: str, limit: int = 10) -> SearchResults:
        """/search words: in everything the place ever said and heard (Chinese too)."""
        hits = []
        for message in self.store.conversations.search_messages(place.owner, query, limit=limit):
            who = (self.engine.persona(self.store.conversations.conversation(message.conversation_id).persona_id).name
                   if message.role == "assistant" else (message.speaker_name or None))
            hits.append(SearchHit(message, who))
        return SearchResults(query, hits)

    def export(self, place: Place) -> Export:
        """/export: the conversation as Markdown (to read) and JSON (to import again)."""
        return self.export_conversation(self.conversation(place), place.user)

    def export_conversation(self, conversation: Conversation, user: User) -> Export:
        """One of the user's conversations, current or older (the caller has checked it is
        theirs), as /export writes it."""
        persona = self.engine.persona(conversation.persona_id)
        messages = []
        markdown = [f"# {persona.name} — conversation {conversation.id}", ""]
        for message in self.store.conversations.iter_messages(conversation.id):
            if message.status == "hidden":
                continue
            name = persona.name if message.role == "assistant" else (message.speaker_name or user.name)
            messages.append({"role": message.role, "name": name, "content": message.content,
                             "created_at": message.created_at})
            when = from_text(message.created_at).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            markdown += [f"**{name}** · {when}", "", message.content, ""]
        document = {"format": COMPANION_FORMAT, "persona": {"id": persona.id, "name": persona.name},
                    "messages": messages}
        base = f"{persona.id}-{conversation.id}-{datetime.now(timezone.utc):%Y%m%d}"
        return Export(conversation, self.store.conversations.count_messages(conversation.id), [
            ExportFile(f"{base}.md", "\n".join(markdown).encode("utf-8"), "text/markdown"),
            ExportFile(f"{base}.json", json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8"),
                       "application/json")])

    def forget(self, place: Place) -> Notice:
        """/forget, confirmed: everything of the user's is deleted (every feature's rows too)."""
        self.store.forget_user(place.user.id)
        return Notice("tg.forgotten")

    # -- personas ----------------------------------------------------------------------
    def personas(self, place: Place) -> PersonaMenu:
        """/persona: who the place talks to, and everyone it may switch to."""
        current = self.engine.persona(self.store.directory.persona_of(place.owner))
        return PersonaMenu(current, self.catalog.available_to(place.user))

    def find_persona(self, place: Place, wanted: str):
        """A persona the user may use, by id, name or number in the /persona list (1-based)."""
        entries = self.catalog.available_to(place.user)
        wanted = wanted.strip().lower()
        if wanted.isdigit() and 1 <= int(wanted) <= len(entries):
            return entries[int(wanted) - 1]
        return next((e for e in entries if wanted in (e.persona.id, e.persona.name.lower())), None)

    def switch_persona(self, place: Place, wanted: str) -> PersonaSwitch:
        """/persona NAME: talk to another persona; each has its own conversations."""
        entry = self.find_persona(place, wanted)
        if entry is None:
            return PersonaSwitch(SwitchKind.UNAVAILABLE, notice=Notice("tg.persona_unavailable",
                                                                       {"id": wanted.strip()}))
        return self.switch_to(place, entry.persona.id)

    def switch_to(self, place: Place, persona_id: str) -> PersonaSwitch:
        if not self.catalog.may_use(persona_id, place.user):
            return PersonaSwitch(SwitchKind.UNAVAILABLE, notice=Notice("tg.persona_unavailable", {"id": persona_id}))
        persona = self.engine.persona(persona_id)
        if self.store.directory.persona_of(place.owner) == persona.id:
            return PersonaSwitch(SwitchKind.SAME, persona, notice=Notice("tg.persona_same", {"name": persona.name}))
        existing = self.store.conversations.active_conversation(place.owner, persona.id)
        self.store.directory.set_persona_of(place.owner, persona.id)
        conversation = existing or self.engine.start_conversation(place.owner, persona.id, user=place.user)
        last = self.store.conversations.messages(conversation.id, limit=1)
        if existing is not None and last:
            return PersonaSwitch(SwitchKind.RESUMED, persona, conversation, last[0], Notice(
                "tg.persona_resumed", {"name": persona.name, "last": short(last[0].content, 300)}))
        return PersonaSwitch(SwitchKind.STARTED, persona, conversation, last[0] if last else None,
                             Notice("tg.persona_switched", {"name": persona.name}))

    def unpublished(self) -> list[tuple[object, User]]:
        """Users' private personas an admin may publish (/publish), with their owners."""
        return [(entry, self.store.directory.user(entry.owner_user_id)) for entry in self.catalog.unpublished()]

    def set_me(self, place: Place, *, name: str | None = None, description: str | None = None,
               clear: bool = False) -> User:
        """/me: who the user says they are (None keeps a field as it is)."""
        if clear:
            self.store.directory.update_user(place.user.id, me_name=None, me_description=None)
        else:
            changes = {"me_name": name, "me_description": description}
            self.store.directory.update_user(place.user.id, **{k: v for k, v in changes.items() if v is not None})
        return self.store.directory.user(place.user.id)

    # -- documents ---------------------------------------------------------------------
    def documents(self, place: Place) -> DocumentsView:
        """/docs: the user's documents, numbered from 1, and which are attached here."""
        if self.reading is None:
            return DocumentsView([])
        conversation = self.conversation(place)
        attachments = {a.document.id: a for a in self.reading.documents.attachments(conversation.id)}
        return DocumentsView([DocumentItem(d, d.id in attachments,
                                           attachments[d.id].upto_chapter if d.id in attachments else None)
                              for d in self.reading.documents.documents_of(place.user.id)[:30]])

    def attach(self, place: Place, document_id: int) -> Notice | None:
        """Attach one of the user's documents to the conversation; None if not theirs."""
        document = self._document(place, document_id)
        if document is None:
            return None
        conversation = self.conversation(place)
        self.reading.documents.attach(conversation.id, document.id)
        self._plan_reading(place, conversation)
        return Notice("doc.attached", {"title": document.title})

    def detach(self, place: Place, document_id: int) -> Notice | None:
        document = self._document(place, document_id)
        if document is None:
            return None
        self.reading.documents.detach(self.conversation(place).id, document.id)
        return Notice("doc.detached", {"title": document.title})

    def toggle_document(self, place: Place, document_id: int) -> Notice | None:
        """The button under /docs: attach if detached, detach if attached."""
        document = self._document(place, document_id)
        if document is None:
            return None
        if document.id in self.reading.documents.attached_ids(self.conversation(place).id):
            return self.detach(place, document_id)
        return self.attach(place, document_id)

    async def read_bytes(self, place: Place, data: bytes, name: str, *, content_type: str | None = None,
                         progress: Progress | None = None, cancel=None) -> tuple[object, Notice]:
        """Read an upload (in a worker thread), store it and attach it here: (IngestResult,
        what was read and how). DocumentError when it cannot be read: nothing is kept."""
        result = await asyncio.to_thread(self.reading.ingestor.ingest_bytes, data, name, place.user,
                                         content_type=content_type, progress=progress, cancel=cancel)
        return result, self.attach_read(place, result)

    async def read_path(self, place: Place, path: str, *, progress: Progress | None = None,
                        cancel=None) -> tuple[object, Notice]:
        """Read a local file (the terminal chat, the CLI), store it and attach it here."""
        result = await asyncio.to_thread(self.reading.ingestor.ingest_path, path, place.user, progress=progress,
                                         cancel=cancel)
        return result, self.attach_read(place, result)

    async def read_link(self, place: Place, url: str, *, progress: Progress | None = None,
                        cancel=None) -> tuple[object, Notice]:
        """Read a web link (public addresses only), store it and attach it here."""
        result = await self.reading.ingestor.ingest_url(url, place.user, progress=progress, cancel=cancel)
        return result, self.attach_read(place, result)

    def attach_read(self, place: Place, result) -> Notice:
        """Attach a document just read; the notice says what was read and whether it is
        read verbatim or from summaries."""
        conversation = self.conversation(place)
        document = result.document
        self.reading.documents.attach(conversation.id, document.id)
        planned = self._plan_reading(place, conversation)
        mode = next(p.mode for p in planned if p.document_id == document.id)
        notice = Notice("doc.read", {"title": document.title, "chars": f"{document.chars:,}",
                                     "chapters": document.chapter_count, "tokens": f"{document.tokens:,}",
                                     "seconds": f"{result.seconds:.1f}", "mode": Notice(f"doc.mode.{mode}")})
        return notice.followed_by(Notice("doc.read_again") if result.duplicate else None)

    def document_by_number(self, place: Place, number: int):
        items = self.documents(place).items
        return items[number - 1].document if 1 <= number <= len(items) else None

    def _document(self, place: Place, document_id: int):
        if self.reading is None:
            return None
        try:
            return self.reading.documents.owned_document(place.user.id, document_id)
        except KeyError:
            return None

    def _plan_reading(self, place: Place, conversation: Conversation):
        from memory.reading import context_for

        return self.reading.provider.schedule_summaries(context_for(self.engine, conversation, place.user))

    def novel(self, place: Place):
        """The novel the conversation is about: the persona's source, else the latest
        attached document with chapters, else the latest attached one."""
        if self.reading is None:
            return None
        conversation = self.conversation(place)
        attachments = self.reading.documents.attachments(conversation.id)
        link = self.reading.documents.persona_link(conversation.persona_id)
        for attachment in attachments:
            if link is not None and attachment.document.id == link.document_id:
                return attachment
        with_chapters = [a for a in attachments if a.document.chapter_count]
        return (with_chapters or attachments or [None])[-1]

    async def characters(self, place: Place, *, progress: Progress | None = None, cancel=None) -> list:
        """/characters: the main characters of the conversation's novel (found by the
        model once, then cached), within its timeline. Call `novel` first: [] without one."""
        novel = self.novel(place)
        if novel is None:
            return []
        return await self.reading.characters.find(novel.document.id, novel.limit, progress=progress, cancel=cancel)

    def listed_character(self, place: Place, document_id: int, upto: int | None, index: int):
        """(document, character) of a /characters list still cached, the document the user's; else None."""
        if self.reading is None:
            return None
        characters = self.reading.characters.cached(document_id, upto)
        document = self._document(place, document_id)
        if document is None or not characters or not 0 <= index < len(characters):
            return None
        return document, characters[index]

    async def play_character(self, place: Place, document_id: int, character, upto: int | None, *,
                             progress: Progress | None = None, cancel=None) -> PersonaSwitch:
        """Make the character a persona (from chapters 1..upto) and start talking to it, the
        novel attached within the same timeline."""
        persona = await self.reading.personas.create(place.user, document_id, character, upto,
                                                     progress=progress, cancel=cancel)
        conversation = self.reading.personas.start(self.engine, place.user, persona, document_id, upto)
        self._plan_reading(place, conversation)
        greeting = self.store.conversations.messages(conversation.id, limit=1)
        return PersonaSwitch(SwitchKind.STARTED, persona, conversation, greeting[0] if greeting else None)

    def plan_timeline(self, place: Place, argument: str | None) -> TimelinePlan:
        """/asof N: what it would change (the face shows progress if a persona is retimed)."""
        novel = self.novel(place)
        if novel is None:
            return TimelinePlan(Notice("doc.no_novel"), False)
        document = novel.document
        if not document.chapter_count:
            return TimelinePlan(Notice("doc.no_chapters", {"title": document.title}), False)
        chapters = self.reading.provider.chapters(document.id)
        choice = (argument or "").strip().lower()
        number = int(choice) if choice.isdigit() and 0 < int(choice) <= document.chapter_count else None
        if choice not in TIMELINE_OFF and number is None:
            current = Notice("doc.asof_whole") if novel.limit is None else Notice(
                "doc.asof_chapter", {"number": novel.limit, "chapter": chapters[novel.limit - 1].title})
            return TimelinePlan(Notice("doc.asof_usage", {"title": document.title, "current": current,
                                                          "count": document.chapter_count}), False)
        if number is None:
            outcome = Notice("doc.asof_cleared", {"title": document.title})
        else:
            outcome = Notice("doc.asof_set", {"title": document.title, "current": Notice(
                "doc.asof_chapter", {"number": number, "chapter": chapters[number - 1].title})})
        conversation = self.conversation(place)
        link = self.reading.documents.persona_link(conversation.persona_id)
        if link is None or link.document_id != document.id:
            return TimelinePlan(outcome, True, document.id, number)
        return TimelinePlan(outcome, True, document.id, number, conversation.persona_id, link.character_name)

    async def apply_timeline(self, place: Place, plan: TimelinePlan, *, progress: Progress | None = None,
                             cancel=None) -> Notice:
        """Carry out a ready plan: a persona made from the novel is made again from chapters 1..N."""
        if not plan.ready:
            return plan.notice
        if plan.retime_persona is not None:
            await self.reading.personas.retime(plan.retime_persona, plan.upto, progress=progress, cancel=cancel)
        self.reading.documents.set_upto(self.conversation(place).id, plan.document_id, plan.upto)
        return plan.notice

    async def set_timeline(self, place: Place, argument: str | None, *, progress: Progress | None = None,
                           cancel=None) -> Notice:
        """/asof N in one call (the terminal chat): plan, then apply."""
        return await self.apply_timeline(place, self.plan_timeline(place, argument), progress=progress,
                                         cancel=cancel)

    # -- settings ----------------------------------------------------------------------
    def set_language(self, place: Place, choice: str) -> Notice:
        """/lang en|zh|auto: the language of the texts (auto: the platform's)."""
        choice = choice.strip().lower()
        if choice not in LANGUAGE_CHOICES:
            return Notice("tg.lang_usage")
        self.store.directory.update_user(place.user.id, language_override=None if choice == "auto" else choice)
        user = self.store.directory.user(place.user.id)
        return Notice("tg.lang_set", lang=user.ui_language or "en")

    def timezone(self, place: Place, value: str | None = None) -> Notice:
        """/tz [ZONE]: show the zone (as UTC+08:00), or set it from +8, UTC+8, Asia/Shanghai."""
        now = self.store.clock()
        if not (value or "").strip():
            zone = place.user.timezone or self.admission.policy.default_timezone
            return Notice("tg.tz_current", {"zone": zone_label(zone, now)})
        zone = parse_zone(value)
        if zone is None:
            return Notice("tg.tz_invalid", {"value": value.strip()})
        self.store.directory.update_user(place.user.id, timezone=zone)
        local = now.astimezone(ZoneInfo(zone))
        return Notice("tg.tz_set", {"zone": zone_label(zone, now), "time": f"{local:%Y-%m-%d %H:%M}"})

    def checkin(self, place: Place, args: str = "") -> Notice:
        """/checkin [on [RHYTHM] | off | quiet HH-HH]: let the character write first."""
        from memory.checkins import parse_every, parse_quiet

        checkins = self.checkins
        if checkins is None:
            return Notice("tg.checkin_unavailable")
        if not place.private:
            return Notice("tg.checkin_private_only")
        user = self.store.directory.user(place.user.id)
        action, _, value = args.strip().partition(" ")
        action, value = action.lower(), value.strip()
        if action == "on":
            every = parse_every(value) if value else None
            if value and every is None:
                return Notice("tg.checkin_bad_rhythm", {"value": value})
            if every is not None and not checkins.allowed_every(every):
                return Notice("tg.checkin_rhythm_range", {"low": _every(checkins.min_every),
                                                          "high": _every(checkins.max_every)})
            return self._plan_notice(checkins.switch_on(user, every), user)
        if action == "off":
            checkins.switch_off(user)
            return Notice("tg.checkin_off")
        if action == "quiet":
            quiet = parse_quiet(value)
            if quiet is None:
                return Notice("tg.checkin_bad_quiet", {"value": value})
            plan = checkins.set_quiet(user, quiet)
            shown = str(quiet) if quiet.start != quiet.end else Notice("tg.checkin_no_quiet")
            answer = Notice("tg.checkin_quiet_set", {"quiet": shown, "zone": self._zone_label(user)})
            return answer.followed_by(self._plan_notice(plan, user) if plan.enabled else None)
        return self._plan_notice(checkins.plan(user.id), user)

    def due_checkins(self, platform: str = "tg") -> list:
        """Check-ins due now, each claimed once (memory/checkins.py decides when)."""
        return self.checkins.claim_due(platform) if self.checkins is not None else []

    async def write_checkin(self, claim) -> TurnOutcome:
        """The character writes first: within the budget, screened like any reply. A face
        delivers an ANSWERED one and calls `checkin_sent`."""
        user = claim.user
        if self.admission.over_budget(user):
            self.checkins.finish(claim, "skipped")
            return TurnOutcome(TurnStatus.OVER_BUDGET, claim.conversation_id)
        result = await self.checkins.write(claim)
        if result.reply is None:
            log.warning("check-in for user %s failed: %s", user.id, result.error)
            return TurnOutcome(TurnStatus.FAILED, claim.conversation_id, result=result)
        screening = await self.admission.screen_reply(user, result.reply.content, result.reply.conversation_id,
                                                      result.reply.id)
        if screening is not None and screening.refused:
            self.checkins.finish(claim, "withheld")
            return TurnOutcome(TurnStatus.REPLY_REFUSED, claim.conversation_id, result.reply, result=result)
        return TurnOutcome(TurnStatus.ANSWERED, claim.conversation_id, result.reply, result.reply.content,
                           result=result)

    def checkin_sent(self, claim, reply_id: int | None = None, platform_message_id: str | int | None = None, *,
                     delivered: bool = True, blocked: bool = False) -> None:
        """How a check-in's delivery went: sent (as this platform message), or not (the user blocked the bot)."""
        if blocked:
            self.user_left(claim.user)
        if delivered and reply_id is not None and platform_message_id is not None:
            self.delivered(reply_id, platform_message_id)
        self.checkins.finish(claim, "sent" if delivered else "failed")

    def recover(self) -> int:
        """After a restart: turns a crash left pending are marked failed (in conversations no
        other process on the database runs a turn of now), check-ins claimed but not sent are
        abandoned. Returns how many."""
        recovered = self.engine.recover()
        if self.checkins is not None:
            recovered += self.checkins.recover()
        return recovered

    def _plan_notice(self, plan, user: User) -> Notice:
        if plan is None or not plan.enabled:
            return Notice("tg.checkin_off", then=Notice("tg.checkin_usage"))
        quiet = str(plan.quiet) if plan.quiet.start != plan.quiet.end else Notice("tg.checkin_no_quiet")
        return Notice("tg.checkin_on", {"every": _every(plan.every), "quiet": quiet, "zone": self._zone_label(user)})

    def _zone_label(self, user: User) -> str:
        return zone_label(user.timezone or self.admission.policy.default_timezone, self.store.clock())

    def voice_replies(self, place: Place, choice: str = "") -> Notice:
        """/voice [on|off]: replies also as voice notes (when the operator set a speech model)."""
        if not self.voice.speaks or self.choices is None:
            return Notice("tg.voice_not_available")
        if not place.private:
            return Notice("tg.voice_private_only")
        choice = choice.strip().lower()
        if choice in VOICE_ON + VOICE_OFF:
            self.choices.set_voice_replies(place.user.id, choice in VOICE_ON)
            return Notice("tg.voice_on" if choice in VOICE_ON else "tg.voice_off")
        state = Notice("tg.voice_state_on" if self.choices.of(place.user.id).voice_replies else "tg.voice_state_off")
        listening = "" if self.voice.listens else Notice("tg.voice_not_listening")
        return Notice("tg.voice_status", {"state": state, "listening": listening})

    def wants_voice(self, place: Place) -> bool:
        return self.voice.speaks and self.choices is not None and self.choices.of(place.user.id).voice_replies

    def current_model(self, place: Place) -> str:
        """The model that answers this place now (the user's choice, a persona's, the default)."""
        conversation = self.conversation(place)
        return self.engine.route(conversation, self.engine.persona(conversation.persona_id)).model

    def model_menu(self, place: Place) -> Notice | None:
        """/model: None when the menu may be shown; else why not (groups, a single model)."""
        menu = self.models
        if not place.private:
            return Notice("tg.model_private_only", {"model": menu.default.name if menu else self.engine.settings.model})
        if menu is None or not menu.has_choice:
            return Notice("tg.model_only_one", {"current": menu.default.name if menu else self.engine.settings.model})
        return None

    def choose_model(self, place: Place, wanted: str | int) -> Notice:
        """/model NAME (or `default`, or the menu's position): the model that answers this user."""
        refusal = self.model_menu(place)
        if refusal is not None:
            return refusal
        menu = self.models
        if isinstance(wanted, int):
            option = menu.options[wanted] if 0 <= wanted < len(menu.options) else None
        else:
            option = menu.default if wanted.strip().lower() == "default" else menu.find(wanted.strip())
        if option is None:
            return Notice("tg.model_unknown", {"model": str(wanted), "models": ", ".join(o.name for o in menu.options)})
        self.choices.set_model(place.user.id, option.name)
        persona = self.engine.persona(self.conversation(place).persona_id)
        note = Notice("tg.model_set", {"model": option.name, "window": option.window})
        if persona.model.model and persona.model.model != option.name:
            note = note.followed_by(Notice("tg.model_pinned", {"persona": persona.name, "model": persona.model.model}))
        return note

    def usage(self, place: Place) -> Usage:
        """/usage: tokens today and in all, the cached share, and the cost at the operator's prices."""
        policy = self.admission.policy
        today = self.store.usage.usage_totals(user_id=place.user.id, since=to_text(self.admission.midnight(place.user)))
        total = self.store.usage.usage_totals(user_id=place.user.id)
        share = total["cached_tokens"] / total["prompt_tokens"] if total["prompt_tokens"] else 0.0
        cost = None
        if policy.price_input is not None and policy.price_output is not None:
            cached_price = policy.price_cached_input if policy.price_cached_input is not None else policy.price_input
            cost = ((total["prompt_tokens"] - total["cached_tokens"]) * policy.price_input
                    + total["cached_tokens"] * cached_price + total["completion_tokens"] * policy.price_output) / 1e6
        return Usage(today["prompt_tokens"] + today["completion_tokens"], today["requests"], today["cached_tokens"],
                     total["prompt_tokens"] + total["completion_tokens"], total["requests"], share, cost,
                     policy.price_currency)

    # -- operators ---------------------------------------------------------------------
    def stats(self) -> Notice:
        """/stats (admins): the database counts and the last day's requests."""
        day = self.store.usage.usage_totals(since=to_text(self.store.clock() - timedelta(days=1)))
        share = day["cached_tokens"] / day["prompt_tokens"] if day["prompt_tokens"] else 0.0
        return Notice("tg.stats", {**self.store.counts(), "requests": day["requests"], "prompt": day["prompt_tokens"],
                                   "cached_share": f"{share:.0%}", "completion": day["completion_tokens"]})

    def allow(self, platform: str, external_id: str) -> Notice:
        """/allow ID (admins): let someone in on a private bot."""
        self.admission.allow(platform, external_id)
        return Notice("tg.allowed", {"user_id": external_id})


def _every(every) -> Notice:
    hours = round(every.total_seconds() / 3600)
    if hours % 24:
        return Notice("tg.hours", {"count": hours})
    return Notice("tg.day") if hours == 24 else Notice("tg.days", {"count": hours // 24})


__all__ = ["CompanionService", "TimelinePlan", "VoiceAbility", "short"]
