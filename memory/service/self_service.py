"""Self-service: a user's own companion data as whole views, for the Mini App (bot/web).

Every action is a call of the service layer (`CompanionService`, facade.py), the same
call a chat command makes: switching persona, facts, /me, documents, the reading
position, search, export, language, time zone, check-ins and voice. What a page needs
beyond the commands lives here, on the same feature classes: the views with more detail
than a chat message shows (facts with their source turns, summaries, chapters, the
conversations with each persona, the settings in one place), editing a fact by its id,
exporting any one conversation, and the lorebook of the user's own personas.

Scope: the user's private chat (`Place.direct`). Every id from the page is checked
against that user: an id from someone else's data is `NotFound`, never served. A refusal
the service layer words (`Notice`) travels in `SelfServiceError.notice`, so the page says
it in the same words as the chat.
"""

from __future__ import annotations

from datetime import timedelta

from memory.compaction import SummaryStore
from memory.facts import FactError
from memory.service.facade import CompanionService
from memory.service.results import Notice, Place, SwitchKind
from memory.service.zones import zone_label
from memory.records import Conversation, User
from personas import PersonaError
from personas.lorebook import Lorebook, LoreEntry

SEARCH_LIMIT = 30
PAGE_MESSAGES = 200
MAX_ME_NAME = 64  # as /me (bot/user_profile.py): every request carries them
MAX_ME_DESCRIPTION = 1000
MAX_LORE_ENTRIES = 500
REFUSALS = {  # notices of the service layer that mean "not done"
    "tg.memory_invalid", "tg.memory_usage", "tg.lang_usage", "tg.tz_invalid", "tg.checkin_unavailable",
    "tg.checkin_bad_rhythm", "tg.checkin_rhythm_range", "tg.checkin_bad_quiet", "tg.voice_not_available",
    "doc.no_novel", "doc.no_chapters", "doc.asof_usage"}


class SelfServiceError(ValueError):
    """A refused change: `code` for programs, `notice` (when the service layer gave one)
    for people."""

    def __init__(self, code: str, message: str = "", notice: Notice | None = None) -> None:
        super().__init__(message or code)
        self.code = code
        self.notice = notice


class NotFound(SelfServiceError):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"no such {what}")


def _done(notice: Notice | None, code: str) -> Notice:
    if notice is None:
        raise NotFound(code)
    if notice.key in REFUSALS:
        raise SelfServiceError(code, notice.key, notice)
    return notice


class SelfService:
    def __init__(self, service: CompanionService) -> None:
        self.service = service
        self.engine = service.engine
        self.store = service.store
        self.catalog = service.catalog

    # -- who ---------------------------------------------------------------------------
    def arrive(self, telegram_id: int, *, display_name: str | None, language: str | None) -> User | None:
        """The Telegram user (created on first sight, as the chat does), or None if the
        bot does not serve them (the chat's access rule)."""
        user = self.service.arrive("tg", telegram_id, display_name=display_name, language=language)
        return user if self.service.admission.allowed(user) else None

    def place(self, user: User) -> Place:
        return Place.direct(self.store.directory.user(user.id))

    # -- personas ----------------------------------------------------------------------
    def personas(self, user: User) -> dict:
        menu = self.service.personas(self.place(user))
        items = []
        for entry in menu.entries:
            persona = entry.persona
            items.append({
                "id": persona.id, "name": persona.name, "summary": persona.summary(user.name, 160),
                "description": persona.render(persona.description, user.name)[:600],
                "starters": [persona.render(s, user.name) for s in persona.starter_prompts[:6]],
                "tags": persona.tags[:8], "private": entry.private, "mine": entry.owner_user_id == user.id,
                "has_avatar": self._has_avatar(persona.id), "current": persona.id == menu.current.id})
        return {"current": menu.current.id, "personas": items}

    def _has_avatar(self, persona_id: str) -> bool:
        if persona_id in self.catalog.library:
            return self.catalog.library.avatar_path(persona_id) is not None
        return bool(self.catalog.avatar(persona_id))

    def avatar(self, user: User, persona_id: str) -> bytes:
        data = self.catalog.avatar(persona_id) if self.catalog.may_use(persona_id, user) else None
        if not data:
            raise NotFound("avatar")
        return data

    def switch_persona(self, user: User, persona_id: str) -> tuple[dict, Notice | None]:
        switch = self.service.switch_to(self.place(user), persona_id)
        if switch.kind is SwitchKind.UNAVAILABLE:
            raise NotFound("persona")
        return {"persona": switch.persona.id, "kind": switch.kind.value,
                "conversation": switch.conversation.id if switch.conversation else None}, switch.notice

    # -- memory: pinned facts, summaries, the user persona -----------------------------
    def memory_view(self, user: User) -> dict:
        place = self.place(user)
        view = self.service.facts(place)
        facts = []
        for fact in view.facts:
            sources = []
            for message_id in fact.source_ids[:5]:
                try:
                    message = self.store.conversations.message(message_id)
                except KeyError:
                    continue  # forgotten since
                sources.append({"id": message.id, "role": message.role, "at": message.created_at,
                                "text": message.content[:300]})
            facts.append({"id": fact.id, "text": fact.text, "origin": fact.origin, "said_at": fact.said_at,
                          "created_at": fact.created_at, "updated_at": fact.updated_at, "sources": sources})
        conversation = self.service.conversation(place)
        summaries = [{"id": s.id, "level": s.level, "from": s.first_at, "to": s.last_at, "text": s.content}
                     for s in SummaryStore(self.store).active(conversation.id)]
        me = place.user
        return {"persona": view.persona.id, "persona_name": view.persona.name, "facts": facts,
                "summaries": summaries,
                "me": {"name": me.me_name or "", "description": me.me_description or "", "shown_name": me.name}}

    def _fact_number(self, place: Place, fact_id: int) -> int:
        ids = [fact.id for fact in self.service.facts(place).facts]
        if fact_id not in ids:
            raise NotFound("fact")
        return ids.index(fact_id) + 1

    def add_fact(self, user: User, text: str) -> Notice:
        return _done(self.service.add_fact(self.place(user), text), "invalid_fact")

    def edit_fact(self, user: User, fact_id: int, text: str) -> Notice:
        place = self.place(user)
        try:
            return _done(self.service.edit_fact(place, self._fact_number(place, fact_id), text), "invalid_fact")
        except FactError as exc:
            raise SelfServiceError("invalid_fact", str(exc)) from None

    def delete_fact(self, user: User, fact_id: int) -> None:
        """A deleted fact stays as a tombstone, so extraction never learns it again."""
        if not self.service.delete_fact_id(self.place(user), fact_id):
            raise NotFound("fact")

    def set_me(self, user: User, name: str, description: str) -> dict:
        name, description = name.strip(), description.strip()
        if len(name) > MAX_ME_NAME or len(description) > MAX_ME_DESCRIPTION:
            raise SelfServiceError("too_long", f"name up to {MAX_ME_NAME}, description up to "
                                               f"{MAX_ME_DESCRIPTION} characters")
        place = self.place(user)
        if not name and not description:
            self.service.set_me(place, clear=True)
        else:
            self.service.set_me(place, name=name, description=description)
        return self.memory_view(user)["me"]

    # -- lorebooks of the user's own personas ------------------------------------------
    def own_personas(self, user: User) -> list[dict]:
        return [{"id": e.persona.id, "name": e.persona.name} for e in self.catalog.available_to(user)
                if e.owner_user_id == user.id]

    def _own_persona(self, user: User, persona_id: str):
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

    def save_lorebook(self, user: User, persona_id: str, entries: object) -> dict:
        """Replace the entries (keys, text, order, on/off, always on). What the page does not
        show of an entry kept in place (an imported card's extensions, regex flags…) is kept."""
        persona = self._own_persona(user, persona_id)
        if not isinstance(entries, list) or len(entries) > MAX_LORE_ENTRIES:
            raise SelfServiceError("invalid_lore", f"a list of at most {MAX_LORE_ENTRIES} entries")
        old = persona.lorebook.entries if persona.lorebook else []
        new_entries = []
        for number, item in enumerate(entries, 1):
            if not isinstance(item, dict):
                raise SelfServiceError("invalid_lore", f"entry {number} is not an entry")
            keys = [str(k).strip() for k in item.get("keys") or [] if str(k).strip()]
            content = str(item.get("content", "")).strip()
            if not content:
                raise SelfServiceError("invalid_lore", f"entry {number} has no text")
            if not keys and not item.get("constant"):
                raise SelfServiceError("invalid_lore", f"entry {number} needs a key, or to be always on")
            try:
                order = float(item.get("order", 100))
            except (TypeError, ValueError):
                raise SelfServiceError("invalid_lore", f"entry {number}: the order is a number") from None
            base = old[number - 1] if number <= len(old) else LoreEntry()
            try:
                new_entries.append(LoreEntry.model_validate({
                    **base.model_dump(), "keys": keys, "content": content,
                    "insertion_order": int(order) if order.is_integer() else order,
                    "enabled": bool(item.get("enabled", True)), "constant": bool(item.get("constant")) or None,
                    "comment": str(item.get("comment") or "").strip() or None}))
            except (PersonaError, ValueError) as exc:
                raise SelfServiceError("invalid_lore", f"entry {number}: {str(exc).splitlines()[0]}") from None
        book = (persona.lorebook or Lorebook()).model_copy(update={"entries": new_entries})
        self.catalog.update(persona.model_copy(update={"lorebook": book}))
        return self.lorebook(user, persona_id)

    # -- documents ---------------------------------------------------------------------
    def documents(self, user: User) -> dict:
        reading = self.service.reading
        if reading is None:
            return {"available": False, "documents": []}
        items = []
        for item in self.service.documents(self.place(user)).items:
            document = item.document
            chapters = reading.documents.chapters(document.id)
            upto = item.upto if item.upto is not None and item.upto < document.chapter_count else None
            items.append({
                "id": document.id, "title": document.title, "author": document.author, "format": document.format,
                "chars": document.chars, "tokens": document.tokens, "added": document.created_at,
                "chapters": [{"number": n, "title": c.title} for n, c in enumerate(chapters, 1)],
                "attached": item.attached, "upto": upto if item.attached else None})
        return {"available": True, "documents": items}

    def attach(self, user: User, document_id: int, attached: bool) -> Notice:
        place = self.place(user)
        change = self.service.attach if attached else self.service.detach
        return _done(change(place, document_id), "document")

    async def set_reading_position(self, user: User, document_id: int, upto: int | None) -> Notice:
        """The conversation knows the document up to chapter `upto` (None: all of it), as
        /asof; it is attached first if it is not. A persona made from this novel is made
        again from chapters 1..upto, as /asof does."""
        place = self.place(user)
        documents = self.documents(user)["documents"]
        document = next((d for d in documents if d["id"] == document_id), None)
        if document is None:
            raise NotFound("document")
        if upto is not None and not 0 < upto <= len(document["chapters"]):
            raise SelfServiceError("bad_chapter", f"a chapter from 1 to {len(document['chapters'])}")
        if not document["attached"]:
            self.attach(user, document_id, True)
        novel = self.service.novel(place)
        if novel is None or novel.document.id != document_id:
            # /asof works on the conversation's novel; another attached document's position
            # is set on the same attachment row /asof sets
            self.service.reading.documents.set_upto(self.service.conversation(place).id, document_id, upto)
            return Notice("doc.asof_cleared" if upto is None else "doc.asof_set", {
                "title": document["title"], "current": Notice("doc.asof_chapter", {
                    "number": upto, "chapter": document["chapters"][upto - 1]["title"]}) if upto else ""})
        return _done(await self.service.set_timeline(place, str(upto) if upto else "off"), "bad_chapter")

    # -- history -----------------------------------------------------------------------
    def history(self, user: User) -> dict:
        """The conversations with each persona, newest first, the current persona first."""
        place = self.place(user)
        current = self.store.directory.persona_of(place.owner)
        groups: dict[str, dict] = {}
        for conversation in self.store.conversations.conversations_of(place.owner):
            persona = self.engine.persona(conversation.persona_id)
            group = groups.setdefault(persona.id, {"persona": persona.id, "name": persona.name, "conversations": []})
            last = self.store.conversations.messages(conversation.id, limit=1)
            group["conversations"].append({
                "id": conversation.id, "title": conversation.title, "started": conversation.created_at,
                "updated": conversation.updated_at, "active": conversation.active,
                "messages": self.store.conversations.count_messages(conversation.id),
                "last": last[0].content[:160] if last else ""})
        ordered = sorted(groups.values(), key=lambda g: (g["persona"] != current,
                                                         -max(c["id"] for c in g["conversations"])))
        return {"personas": ordered}

    def _own_conversation(self, user: User, conversation_id: int) -> Conversation:
        try:
            conversation = self.store.conversations.conversation(conversation_id)
        except KeyError:
            raise NotFound("conversation") from None
        if conversation.owner != self.place(user).owner:
            raise NotFound("conversation")
        return conversation

    def messages(self, user: User, conversation_id: int) -> dict:
        """A conversation to read: its latest PAGE_MESSAGES messages (the export has all)."""
        conversation = self._own_conversation(user, conversation_id)
        persona = self.engine.persona(conversation.persona_id)
        total = self.store.conversations.count_messages(conversation.id)
        shown = [m for m in self.store.conversations.messages(conversation.id, limit=PAGE_MESSAGES)]
        return {"conversation": conversation.id, "persona": persona.name, "more": total > len(shown),
                "messages": [self._message(m, persona.name, user) for m in shown]}

    @staticmethod
    def _message(message, persona_name: str, user: User) -> dict:
        who = persona_name if message.role == "assistant" else (message.speaker_name or user.name)
        return {"id": message.id, "role": message.role, "who": who, "at": message.created_at,
                "text": message.content, "conversation": message.conversation_id}

    def search(self, user: User, query: str) -> list[dict]:
        """/search over every conversation of the user (Chinese and English: the index recall uses)."""
        if not query.strip():
            return []
        results = []
        for hit in self.service.search(self.place(user), query, limit=SEARCH_LIMIT).hits:
            message = hit.message
            results.append({"id": message.id, "role": message.role, "who": hit.who or user.name,
                            "at": message.created_at, "text": message.content[:400],
                            "conversation": message.conversation_id})
        return results

    def export(self, user: User, conversation_id: int) -> tuple[str, bytes]:
        """/export of one conversation as JSON (the format `companion import` reads): (file
        name, bytes), without resuming it."""
        conversation = self._own_conversation(user, conversation_id)
        file = next(f for f in self.service.export_conversation(conversation, user).files if f.name.endswith(".json"))
        return file.name, file.data

    # -- settings ----------------------------------------------------------------------
    def settings(self, user: User) -> dict:
        user = self.store.directory.user(user.id)
        checkins, choices, voice = self.service.checkins, self.service.choices, self.service.voice
        plan = checkins.plan(user.id) if checkins is not None else None
        quiet = plan.quiet if plan is not None else (checkins.default_quiet if checkins else None)
        every = plan.every if plan is not None else (checkins.default_every if checkins else None)
        return {
            "language": user.language_override or "auto", "telegram_language": user.language,
            "timezone": user.timezone or "", "default_timezone": self.service.admission.policy.default_timezone,
            "timezone_label": zone_label(user.timezone or self.service.admission.policy.default_timezone,
                                         self.store.clock()),
            "checkins": {"available": checkins is not None, "enabled": bool(plan and plan.enabled),
                         "every_hours": round(every.total_seconds() / 3600) if every else None,
                         "quiet": str(quiet) if quiet is not None and quiet.start != quiet.end else "off"
                         if quiet is not None else ""},
            "voice": {"available": voice.speaks and choices is not None,
                      "enabled": bool(choices and choices.of(user.id).voice_replies)}}

    def update_settings(self, user: User, changes: dict) -> dict:
        """Each named setting through its command's call: language (/lang), timezone (/tz),
        checkins {enabled, every_hours, quiet} (/checkin), voice (/voice)."""
        place = self.place(user)
        if "language" in changes:
            _done(self.service.set_language(place, str(changes["language"])), "bad_language")
        if str(changes.get("timezone") or "").strip():
            _done(self.service.timezone(place, str(changes["timezone"])), "bad_timezone")
        checkin = changes.get("checkins")
        if isinstance(checkin, dict):
            if self.service.checkins is None:
                raise SelfServiceError("checkins_unavailable", notice=Notice("tg.checkin_unavailable"))
            if checkin.get("quiet") not in (None, ""):
                _done(self.service.checkin(place, f"quiet {checkin['quiet']}"), "bad_quiet")
            every = checkin.get("every_hours")
            if checkin.get("enabled"):
                rhythm = f" {_hours(every)}h" if every not in (None, "") else ""
                _done(self.service.checkin(place, "on" + rhythm), "bad_rhythm")
            elif checkin.get("enabled") is False:
                self.service.checkin(place, "off")
        if "voice" in changes:
            _done(self.service.voice_replies(place, "on" if changes["voice"] else "off"), "voice_unavailable")
        return self.settings(user)


def _hours(value: object) -> int:
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise SelfServiceError("bad_rhythm", "hours between check-ins, e.g. 24") from None
    if not hours.is_integer() or hours <= 0 or timedelta(hours=hours) > timedelta(days=365):
        raise SelfServiceError("bad_rhythm", "whole hours between check-ins, e.g. 24")
    return int(hours)

