"""Self-service: a user's own companion data, read and changed as whole views.

The Mini App (bot/web) is a face over this class, as the chat commands are faces over the
engine and the memory features: every action here calls the same feature classes the
commands call (`LongTermMemory` for facts, `PersonaCatalog` for personas, `DocumentStore`
for attachments, `Checkins`, `UserChoices`, the `Store` for the user's own row), so an edit
made here is what the next turn's request is built from, at once.

Scope: a user's private chat (`Owner.user`). The user is resolved by the face (the Mini
App from verified initData); every lookup below is checked against that user, so an id
from another user's data is answered as "no such thing" (`NotFound`), never served.

Views are plain dicts and lists (JSON-ready); refusals are `SelfServiceError`s whose
`code` a face maps to its own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from memory.checkins import Checkins, parse_quiet
from memory.compaction import SummaryStore
from memory.engine import Engine
from memory.facts import FactError
from memory.importer import COMPANION_FORMAT
from memory.longterm import LongTermMemory
from memory.persona_catalog import PersonaCatalog
from memory.reading import Reading
from memory.reading.provider import context_for
from memory.store import Conversation, Owner, User
from memory.user_choices import UserChoices
from personas import Persona, PersonaError
from personas.lorebook import Lorebook, LoreEntry

SEARCH_LIMIT = 30
PAGE_MESSAGES = 200
MAX_ME_NAME = 64  # the /me limits (bot/user_profile.py): every request carries these
MAX_ME_DESCRIPTION = 1000
MAX_LORE_ENTRIES = 500


class SelfServiceError(ValueError):
    """A refused change; `code` names the reason, the message says it to the operator."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


class NotFound(SelfServiceError):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"no such {what}")


@dataclass
class SelfService:
    engine: Engine
    catalog: PersonaCatalog
    memory: LongTermMemory
    reading: Reading | None = None
    choices: UserChoices | None = None
    checkins: Checkins | None = None
    default_timezone: str = "UTC"
    speaks: bool = False  # voice replies are offered (a speech model is set)

    @property
    def store(self):
        return self.engine.store

    # -- the chat ----------------------------------------------------------------------
    @staticmethod
    def owner(user: User) -> Owner:
        return Owner.user(user.id)

    def current_persona(self, user: User) -> Persona:
        return self.engine.persona(self.store.persona_of(self.owner(user)))

    def conversation(self, user: User) -> Conversation:
        """The private chat's active conversation (started with its greeting if none)."""
        return self.engine.conversation_for(self.owner(user), self.current_persona(user).id, user=user)

    # -- personas ----------------------------------------------------------------------
    def personas(self, user: User) -> dict:
        current = self.current_persona(user).id
        items = []
        for entry in self.catalog.available_to(user):
            persona = entry.persona
            items.append({
                "id": persona.id, "name": persona.name, "summary": persona.summary(user.name, 160),
                "description": persona.render(persona.description, user.name)[:600],
                "starters": [persona.render(s, user.name) for s in persona.starter_prompts[:6]],
                "tags": persona.tags[:8], "private": entry.private, "mine": entry.owner_user_id == user.id,
                "has_avatar": self._has_avatar(persona), "current": persona.id == current,
                "lore_entries": len(persona.lorebook.entries) if persona.lorebook else 0,
            })
        return {"current": current, "personas": items}

    def _has_avatar(self, persona: Persona) -> bool:
        if persona.id in self.catalog.library:
            return self.catalog.library.avatar_path(persona.id) is not None
        return bool(persona.avatar) or self.catalog.avatar(persona.id) is not None

    def avatar(self, user: User, persona_id: str) -> bytes:
        if not self.catalog.may_use(persona_id, user):
            raise NotFound("persona")
        data = self.catalog.avatar(persona_id)
        if not data:
            raise NotFound("avatar")
        return data

    def switch_persona(self, user: User, persona_id: str) -> dict:
        """The chat talks to `persona_id` from the next message on: its active conversation
        (started with its greeting the first time), so histories never mix."""
        if not self.catalog.may_use(persona_id, user):
            raise NotFound("persona")
        persona = self.catalog.require(persona_id)
        owner = self.owner(user)
        existing = self.store.active_conversation(owner, persona.id)
        self.store.set_persona_of(owner, persona.id)
        conversation = existing or self.engine.start_conversation(owner, persona.id, user=user)
        return {"persona": persona.id, "conversation": conversation.id, "started": existing is None}

    # -- memory: pinned facts, summaries, the user persona -----------------------------
    def memory_view(self, user: User) -> dict:
        conversation = self.conversation(user)
        persona_id = conversation.persona_id
        facts = []
        for fact in self.memory.list_facts(self.owner(user), persona_id):
            sources = []
            for message_id in fact.source_ids[:5]:
                try:
                    message = self.store.message(message_id)
                except KeyError:
                    continue  # forgotten since
                sources.append({"id": message.id, "role": message.role, "at": message.created_at,
                                "text": message.content[:300]})
            facts.append({"id": fact.id, "text": fact.text, "origin": fact.origin, "said_at": fact.said_at,
                          "created_at": fact.created_at, "updated_at": fact.updated_at, "sources": sources})
        summaries = [{"id": s.id, "level": s.level, "from": s.first_at, "to": s.last_at, "text": s.content}
                     for s in SummaryStore(self.store).active(conversation.id)]
        fresh = self.store.user(user.id)
        return {"persona": persona_id, "persona_name": self.engine.persona(persona_id).name, "facts": facts,
                "summaries": summaries, "me": {"name": fresh.me_name or "", "description": fresh.me_description or "",
                                               "shown_name": fresh.name}}

    def add_fact(self, user: User, text: str) -> int:
        return self._facts_call(lambda persona_id: self.memory.add_fact(self.owner(user), persona_id, text).id, user)

    def edit_fact(self, user: User, fact_id: int, text: str) -> int:
        fact = self._facts_call(lambda p: self.memory.edit_fact(self.owner(user), p, fact_id, text), user)
        if fact is None:
            raise NotFound("fact")
        return fact.id

    def delete_fact(self, user: User, fact_id: int) -> None:
        """Deleted facts stay as tombstones, so extraction never learns them again."""
        if not self._facts_call(lambda p: self.memory.delete_fact(self.owner(user), p, fact_id), user):
            raise NotFound("fact")

    def _facts_call(self, work, user: User):
        try:
            return work(self.current_persona(user).id)
        except FactError as exc:
            raise SelfServiceError("invalid_fact", str(exc)) from None

    def set_me(self, user: User, name: str, description: str) -> dict:
        name, description = name.strip(), description.strip()
        if len(name) > MAX_ME_NAME or len(description) > MAX_ME_DESCRIPTION:
            raise SelfServiceError("too_long", f"name up to {MAX_ME_NAME}, description up to "
                                               f"{MAX_ME_DESCRIPTION} characters")
        self.store.update_user(user.id, me_name=name or None, me_description=description or None)
        return self.memory_view(self.store.user(user.id))["me"]

    # -- lorebooks of the user's own personas ------------------------------------------
    def _own_persona(self, user: User, persona_id: str) -> Persona:
        entry = self.catalog.entry(persona_id)
        if entry is None or entry.owner_user_id != user.id:
            raise NotFound("persona of yours")
        return entry.persona

    def lorebook(self, user: User, persona_id: str) -> dict:
        persona = self._own_persona(user, persona_id)
        entries = persona.lorebook.entries if persona.lorebook else []
        return {"persona": persona.id, "name": persona.name, "entries": [
            {"keys": e.keys, "content": e.content, "order": e.insertion_order, "enabled": e.enabled,
             "constant": bool(e.constant), "comment": e.comment or ""} for e in entries]}

    def own_personas(self, user: User) -> list[dict]:
        return [{"id": e.persona.id, "name": e.persona.name} for e in self.catalog.available_to(user)
                if e.owner_user_id == user.id]

    def save_lorebook(self, user: User, persona_id: str, entries: list[dict]) -> dict:
        """Replace the entries (keys, content, order, on/off); fields the page does not show
        (an imported card's extensions, regex flags…) are kept for entries kept in place."""
        persona = self._own_persona(user, persona_id)
        if not isinstance(entries, list) or len(entries) > MAX_LORE_ENTRIES:
            raise SelfServiceError("invalid_lore", f"a list of at most {MAX_LORE_ENTRIES} entries")
        old = persona.lorebook.entries if persona.lorebook else []
        new_entries = []
        try:
            for index, item in enumerate(entries):
                keys = [str(k).strip() for k in item.get("keys", []) if str(k).strip()]
                content = str(item.get("content", "")).strip()
                if not content:
                    raise SelfServiceError("invalid_lore", f"entry {index + 1} has no text")
                if not keys and not item.get("constant"):
                    raise SelfServiceError("invalid_lore", f"entry {index + 1} needs a key (or always on)")
                base = old[index] if index < len(old) else LoreEntry()
                order = float(item.get("order", 100))
                new_entries.append(LoreEntry.model_validate({
                    **base.model_dump(), "keys": keys, "content": content,
                    "insertion_order": int(order) if order.is_integer() else order,
                    "enabled": bool(item.get("enabled", True)), "constant": bool(item.get("constant")) or None,
                    "comment": str(item.get("comment", "")).strip() or None}))
            book = (persona.lorebook or Lorebook()).model_copy(update={"entries": new_entries})
            self.catalog.update(persona.model_copy(update={"lorebook": book}))
        except (PersonaError, ValueError, TypeError) as exc:
            if isinstance(exc, SelfServiceError):
                raise
            raise SelfServiceError("invalid_lore", str(exc).splitlines()[0]) from None
        return self.lorebook(user, persona_id)

    # -- documents ---------------------------------------------------------------------
    def documents(self, user: User) -> dict:
        if self.reading is None:
            return {"available": False, "documents": []}
        store = self.reading.documents
        conversation = self.conversation(user)
        attached = {a.document.id: a for a in store.attachments(conversation.id)}
        items = []
        for document in store.documents_of(user.id):
            attachment = attached.get(document.id)
            items.append({
                "id": document.id, "title": document.title, "author": document.author, "format": document.format,
                "chars": document.chars, "tokens": document.tokens, "added": document.created_at,
                "chapters": [{"number": n, "title": c.title} for n, c in enumerate(store.chapters(document.id), 1)],
                "attached": attachment is not None,
                "upto": attachment.limit if attachment is not None else None,
            })
        return {"available": True, "documents": items}

    def _owned_document(self, user: User, document_id: int):
        if self.reading is None:
            raise NotFound("document")
        try:
            return self.reading.documents.owned_document(user.id, document_id)
        except KeyError:
            raise NotFound("document") from None

    def attach(self, user: User, document_id: int, attached: bool) -> None:
        document = self._owned_document(user, document_id)
        conversation = self.conversation(user)
        if not attached:
            self.reading.documents.detach(conversation.id, document.id)
            return
        if document.id not in self.reading.documents.attached_ids(conversation.id):
            self.reading.documents.attach(conversation.id, document.id)
            self.reading.provider.schedule_summaries(context_for(self.engine, conversation, user))

    async def set_reading_position(self, user: User, document_id: int, upto: int | None) -> None:
        """The conversation reads chapters 1..upto (None: the whole document). A persona made
        from this novel is rebuilt up to that chapter first, as /asof does."""
        document = self._owned_document(user, document_id)
        if upto is not None and not 0 < upto <= document.chapter_count:
            raise SelfServiceError("bad_chapter", f"chapter 1 to {document.chapter_count}")
        conversation = self.conversation(user)
        if document.id not in self.reading.documents.attached_ids(conversation.id):
            self.attach(user, document.id, True)
        link = self.reading.documents.persona_link(conversation.persona_id)
        if link is not None and link.document_id == document.id:
            await self.reading.personas.retime(conversation.persona_id, upto)
        self.reading.documents.set_upto(conversation.id, document.id, upto)

    # -- history -----------------------------------------------------------------------
    def history(self, user: User) -> dict:
        owner = self.owner(user)
        groups: dict[str, dict] = {}
        for conversation in self.store.conversations_of(owner):
            persona = self.engine.persona(conversation.persona_id)
            group = groups.setdefault(persona.id, {"persona": persona.id, "name": persona.name, "conversations": []})
            last = self.store.messages(conversation.id, limit=1)
            group["conversations"].append({
                "id": conversation.id, "title": conversation.title, "started": conversation.created_at,
                "updated": conversation.updated_at, "active": conversation.active,
                "messages": self.store.count_messages(conversation.id),
                "last": last[0].content[:160] if last else ""})
        return {"personas": list(groups.values())}

    def _own_conversation(self, user: User, conversation_id: int) -> Conversation:
        try:
            conversation = self.store.conversation(conversation_id)
        except KeyError:
            raise NotFound("conversation") from None
        if conversation.owner != self.owner(user):
            raise NotFound("conversation")
        return conversation

    def messages(self, user: User, conversation_id: int, *, before_id: int | None = None) -> dict:
        conversation = self._own_conversation(user, conversation_id)
        persona = self.engine.persona(conversation.persona_id)
        rows = [m for m in self.store.iter_messages(conversation.id) if m.status != "hidden"
                and (before_id is None or m.id < before_id)]
        shown = rows[-PAGE_MESSAGES:]
        return {"conversation": conversation.id, "persona": persona.name, "more": len(rows) > len(shown),
                "messages": [self._message(m, persona.name, user) for m in shown]}

    @staticmethod
    def _message(message, persona_name: str, user: User) -> dict:
        who = persona_name if message.role == "assistant" else (message.speaker_name or user.name)
        return {"id": message.id, "role": message.role, "who": who, "at": message.created_at,
                "text": message.content, "conversation": message.conversation_id}

    def search(self, user: User, query: str) -> list[dict]:
        """Full-text search over every conversation of the user (Chinese and English, the
        index recall uses); best matches first."""
        query = query.strip()
        if not query:
            return []
        found = self.store.search_messages(self.owner(user), query, limit=SEARCH_LIMIT)
        results = []
        for message in found:
            persona = self.engine.persona(self.store.conversation(message.conversation_id).persona_id)
            results.append({**self._message(message, persona.name, user), "text": message.content[:400],
                            "persona": persona.id})
        return results

    def export(self, user: User, conversation_id: int) -> dict:
        """Every stored message of one conversation, in the /export JSON format."""
        conversation = self._own_conversation(user, conversation_id)
        persona = self.engine.persona(conversation.persona_id)
        messages = [{"role": m.role, "name": self._message(m, persona.name, user)["who"], "content": m.content,
                     "created_at": m.created_at}
                    for m in self.store.iter_messages(conversation.id) if m.status != "hidden"]
        return {"format": COMPANION_FORMAT, "persona": {"id": persona.id, "name": persona.name}, "messages": messages}

    # -- settings ----------------------------------------------------------------------
    def settings(self, user: User) -> dict:
        user = self.store.user(user.id)
        plan = self.checkins.plan(user.id) if self.checkins is not None else None
        quiet = plan.quiet if plan is not None else (self.checkins.default_quiet if self.checkins else None)
        return {
            "language": user.language_override or "auto", "telegram_language": user.language,
            "timezone": user.timezone or "", "default_timezone": self.default_timezone,
            "checkins": {"available": self.checkins is not None, "enabled": bool(plan and plan.enabled),
                         "every_hours": round(plan.every.total_seconds() / 3600) if plan else
                         (round(self.checkins.default_every.total_seconds() / 3600) if self.checkins else None),
                         "quiet": str(quiet) if quiet is not None else ""},
            "voice": {"available": self.speaks and self.choices is not None,
                      "enabled": bool(self.choices and self.choices.of(user.id).voice_replies)},
        }

    def update_settings(self, user: User, changes: dict) -> dict:
        """Apply what `changes` names (language, timezone, checkins{enabled, every_hours,
        quiet}, voice); all are checked before any is stored."""
        updates: dict = {}
        if "language" in changes:
            if changes["language"] not in ("en", "zh", "auto"):
                raise SelfServiceError("bad_language", "en, zh or auto")
            updates["language_override"] = None if changes["language"] == "auto" else changes["language"]
        if "timezone" in changes:
            zone = str(changes["timezone"] or "").strip()
            if zone:
                try:
                    zone = ZoneInfo(zone).key
                except (ZoneInfoNotFoundError, ValueError):
                    raise SelfServiceError("bad_timezone", f"unknown time zone {zone!r}") from None
            updates["timezone"] = zone or None
        checkin = changes.get("checkins")
        quiet = every = None
        if checkin is not None:
            if self.checkins is None:
                raise SelfServiceError("checkins_unavailable", "check-ins are switched off on this bot")
            if checkin.get("quiet") is not None and (quiet := parse_quiet(str(checkin["quiet"]))) is None:
                raise SelfServiceError("bad_quiet", "a span of local hours such as 22-9, or off")
            if checkin.get("every_hours") is not None:
                try:
                    every = timedelta(hours=float(checkin["every_hours"]))
                except (TypeError, ValueError):
                    raise SelfServiceError("bad_rhythm", "hours between check-ins") from None
                if not self.checkins.allowed_every(every):
                    raise SelfServiceError("bad_rhythm", "outside the allowed rhythm")
        voice = changes.get("voice")
        if voice is not None and not (self.speaks and self.choices is not None):
            raise SelfServiceError("voice_unavailable", "this bot has no speech model")
        if updates:
            self.store.update_user(user.id, **updates)
        user = self.store.user(user.id)
        if checkin is not None:
            if quiet is not None:
                self.checkins.set_quiet(user, quiet)
            if checkin.get("enabled") is False:
                self.checkins.switch_off(user)
            elif checkin.get("enabled") or every is not None:
                self.checkins.switch_on(user, every)
        if voice is not None:
            self.choices.set_voice_replies(user.id, bool(voice))
        return self.settings(user)
