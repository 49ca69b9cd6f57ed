"""Pinned facts: a small, always-present memory of durable facts about the user and the
relationship (names, preferences, important dates, promises).

Facts belong to an owner (a user, or a group chat) and a persona, so they outlive any one
conversation: after `/new` the persona still knows the user's name. Each fact keeps the
ids of the messages that state it and when they were said.

The model proposes facts in the background (`FactExtractor`), from the messages since
it last looked, given the facts it already knows by number so that it can say which one a
new fact corrects. Its answer is merged conservatively:

* a fact equal or nearly equal (character-bigram overlap) to a known one is dropped;
  so is one the user deleted, which the model must not learn again;
* a fact that names a known one in `replaces` supersedes it (the old row is kept,
  `replaced`, with a link to its successor): a contradiction replaces, never piles up.

Users edit facts directly (`FactStore.add`, `edit`, `delete`); their edits win and are
never undone by the model.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from memory.model_client import ModelClient
from memory.model_tasks import Prefix, TaskPrompt, ask, conversation_language, json_items
from memory.records import Message, Owner, from_text
from memory.sql_table import owner_where
from memory.store import Store
from memory.timeline import stamp

log = logging.getLogger(__name__)

MAX_FACT_CHARS = 500


class FactError(ValueError):
    """A fact the user gave cannot be stored; the message says what to change."""


@dataclass(frozen=True)
class Fact:
    id: int
    text: str
    topic: str | None
    source_ids: tuple[int, ...]
    said_at: str | None
    origin: str  # model | user
    status: str  # active | replaced | deleted
    replaces: int | None
    created_at: str
    updated_at: str


_COLUMNS = "id, text, topic, source_ids, said_at, origin, status, replaces, created_at, updated_at"


def _fact(row: tuple) -> Fact:
    return Fact(row[0], row[1], row[2], tuple(json.loads(row[3] or "[]")), *row[4:])


def normalized(text: str) -> str:
    """Case, spacing and punctuation folded away, for comparing facts."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold()
                   if unicodedata.category(c)[0] in "LN")


def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)} or {text}


def same_fact(a: str, b: str, threshold: float = 0.85) -> bool:
    """True when two facts say the same thing in nearly the same words."""
    na, nb = normalized(a), normalized(b)
    if not na or not nb:
        return na == nb
    if na == nb:
        return True
    ga, gb = _bigrams(na), _bigrams(nb)
    return len(ga & gb) / len(ga | gb) >= threshold


def clean_fact_text(text: str) -> str:
    """A user's fact as it will be stored, or FactError saying what is wrong."""
    text = " ".join(str(text).split())
    if not text:
        raise FactError("a fact cannot be empty: write the fact after the command")
    if len(text) > MAX_FACT_CHARS:
        raise FactError(f"a fact can have at most {MAX_FACT_CHARS} characters (this one has {len(text)}); "
                        "split it into shorter facts")
    return text


class FactStore:
    """The facts table; callers never write its SQL."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def _with_status(self, owner: Owner, persona_id: str, status: str) -> list[Fact]:
        where, params = owner_where(owner)
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM facts WHERE {where} AND persona_id = ? AND status = ? ORDER BY id",
            [*params, persona_id, status]).fetchall()
        return [_fact(row) for row in rows]

    def active(self, owner: Owner, persona_id: str) -> list[Fact]:
        return self._with_status(owner, persona_id, "active")

    def deleted(self, owner: Owner, persona_id: str) -> list[Fact]:
        """Facts the user deleted (kept so that the model does not learn them again)."""
        return self._with_status(owner, persona_id, "deleted")

    def get(self, owner: Owner, persona_id: str, fact_id: int) -> Fact | None:
        where, params = owner_where(owner)
        row = self.db.execute(f"SELECT {_COLUMNS} FROM facts WHERE id = ? AND {where} AND persona_id = ?",
                              [fact_id, *params, persona_id]).fetchone()
        return _fact(row) if row else None

    def add(self, owner: Owner, persona_id: str, text: str, *, origin: str, topic: str | None = None,
            source_ids: Iterable[int] = (), said_at: str | None = None, replaces: int | None = None) -> Fact:
        """Store an active fact; `replaces` marks that earlier fact as replaced by it."""
        now = self.store.now()
        with self.db.atomic():
            (fact_id,) = self.db.execute(
                "INSERT INTO facts (user_id, group_key, persona_id, text, topic, source_ids, said_at, origin, "
                "status, replaces, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?) "
                "RETURNING id",
                [owner.user_id, owner.group_key, persona_id, text, topic, json.dumps(sorted(set(source_ids))),
                 said_at, origin, replaces, now, now]).fetchone()
            if replaces is not None:
                self.db.execute("UPDATE facts SET status = 'replaced', replaced_by = ?, updated_at = ? WHERE id = ?",
                                [fact_id, now, replaces])
        return self.get(owner, persona_id, fact_id)  # type: ignore[return-value]

    def delete(self, owner: Owner, persona_id: str, fact_id: int) -> bool:
        where, params = owner_where(owner)
        with self.db.atomic():
            cursor = self.db.execute(
                f"UPDATE facts SET status = 'deleted', updated_at = ? WHERE id = ? AND {where} "
                "AND persona_id = ? AND status = 'active'", [self.store.now(), fact_id, *params, persona_id])
        return cursor.rowcount > 0

    def forget_user(self, user_id: int) -> None:
        """Every fact the user stated in their own conversations."""
        with self.db.atomic():
            self.db.execute("DELETE FROM facts WHERE user_id = ?", [user_id])

    def forget_messages(self, message_ids: Iterable[int]) -> int:
        """Remove model-made facts whose every source message is being forgotten."""
        forgotten = set(message_ids)
        doomed = [row[0] for row in self.db.execute(
            "SELECT id, source_ids FROM facts WHERE origin = 'model'").fetchall()
            if (sources := set(json.loads(row[1] or "[]"))) and sources <= forgotten]
        with self.db.atomic():
            for fact_id in doomed:
                self.db.execute("DELETE FROM facts WHERE id = ?", [fact_id])
        return len(doomed)


# -- extraction by the model -----------------------------------------------------------

_PROMPTS = {
    "en": (
        "You keep the pinned memory of a companion chat between {user} (the user) and {persona}: a short "
        "list of durable facts worth remembering for months. That is: the user's name and the names of the "
        "people and pets in their life; where they live and work; likes and dislikes; important dates "
        "(birthdays, anniversaries, exams, trips); plans; promises either of them made; what the "
        "relationship is like. Ignore passing moods, small talk and anything the known facts already say.\n"
        "Read the new messages and answer with JSON only, in this shape:\n"
        '{{"facts": [{{"text": "...", "topic": "...", "replaces": null, "sources": [123]}}]}}\n'
        "- text: one self-contained sentence in English, in the third person, with absolute dates (each "
        "message shows when it was written);\n"
        "- topic: two or three words naming what the fact is about, e.g. \"user's birthday\";\n"
        "- replaces: the number of the known fact this one corrects or updates (the user moved, changed "
        "jobs, changed their mind), else null;\n"
        "- sources: the numbers of the messages that state it.\n"
        'Answer {{"facts": []}} when there is nothing new to keep.'
    ),
    "zh": (
        "你负责维护{user}（用户）与{persona}之间陪伴聊天的“置顶记忆”：一份简短的、值得记住好几个月的长期事实清单。"
        "包括：用户的名字，以及他生活中的人和宠物的名字；住在哪里、在哪里工作或上学；喜欢和不喜欢的东西；"
        "重要的日期（生日、纪念日、考试、旅行）；计划；双方许下的承诺；两人关系的状态。"
        "忽略一时的情绪、闲聊，以及已知事实里已经有的内容。\n"
        "阅读新消息，只用 JSON 回答，格式如下：\n"
        '{{"facts": [{{"text": "……", "topic": "……", "replaces": null, "sources": [123]}}]}}\n'
        "- text：一句完整的中文陈述，用第三人称，日期写成具体日期（每条消息都标明了发送时间）；\n"
        "- topic：用几个字说明这条事实是关于什么的，例如“用户的生日”；\n"
        "- replaces：如果这条事实更正或更新了某条已知事实（比如搬家、换工作、改变主意），填那条已知事实的编号，否则填 null；\n"
        "- sources：陈述这条事实的消息编号。\n"
        '没有需要记住的新内容时，回答 {{"facts": []}}。'
    ),
}

_LABELS = {
    "en": ("Known facts:", "(none yet)", "New messages:"),
    "zh": ("已知事实：", "（暂无）", "新消息："),
}
# The prefixed form: the messages are the conversation above, not quoted again.
_IN_PREFIX = {
    "en": "New messages: the last {count} messages of the conversation above, from the one written {stamp} on; "
          "number them 1 to {count} in order, and use those numbers in sources.",
    "zh": "新消息：上面对话中的最后 {count} 条消息，从 {stamp} 发的那条开始；按顺序编号为 1 到 {count}，"
          "sources 里用这些编号。",
}


@dataclass
class ExtractionResult:
    added: list[Fact]
    replaced: list[int]
    skipped: int


class FactExtractor:
    """Asks the model for new facts in some messages and merges them into the store."""

    def __init__(self, facts: FactStore, client: ModelClient, *, model: str, max_tokens: int = 800):
        self.facts = facts
        self.client = client
        self.model = model
        self.max_tokens = max_tokens

    def prompt(self, messages: Sequence[Message], known: Sequence[Fact], *, user_name: str,
               persona_name: str, zone: ZoneInfo, language: str) -> tuple[str, str]:
        known_title, none_yet, new_title = _LABELS[language]
        known_lines = [f"#{f.id}" + (f" ({f.topic})" if f.topic else "") + f" {f.text}" for f in known]
        message_lines = [
            f"#{m.id} [{stamp(from_text(m.created_at), zone)}] {user_name if m.role == 'user' else persona_name}: {m.content}"
            for m in messages]
        user = "\n".join([known_title, *(known_lines or [none_yet]), "", new_title, *message_lines])
        return _PROMPTS[language].format(user=user_name, persona=persona_name), user

    def instruction(self, messages: Sequence[Message], known: Sequence[Fact], *, user_name: str,
                    persona_name: str, zone: ZoneInfo, language: str) -> str:
        """The prefixed form: the same instructions and known facts, and the new messages
        named by their place at the end of the conversation above instead of quoted."""
        known_title, none_yet, _ = _LABELS[language]
        known_lines = [f"#{f.id}" + (f" ({f.topic})" if f.topic else "") + f" {f.text}" for f in known]
        where = _IN_PREFIX[language].format(count=len(messages),
                                            stamp=stamp(from_text(messages[0].created_at), zone))
        return "\n".join([_PROMPTS[language].format(user=user_name, persona=persona_name), "",
                          known_title, *(known_lines or [none_yet]), "", where])

    async def extract(self, owner: Owner, persona_id: str, messages: Sequence[Message], *, user_name: str,
                      persona_name: str, zone: ZoneInfo, language_hint: str | None = None,
                      model: str | None = None, cache_key: str = "memory-facts",
                      prefix: Prefix | None = None, prefix_cache_key: str | None = None) -> ExtractionResult:
        """`prefix`: the conversation's own request through the last of `messages` (see
        memory/model_tasks.py); the messages are then numbered 1… by their place."""
        known = self.facts.active(owner, persona_id)
        language = conversation_language((m.content for m in messages), language_hint)
        system, user = self.prompt(messages, known, user_name=user_name, persona_name=persona_name,
                                   zone=zone, language=language)
        prompt = TaskPrompt(system, user, language=language)
        if prefix is not None:
            prompt.instruction = self.instruction(messages, known, user_name=user_name, persona_name=persona_name,
                                                  zone=zone, language=language)
            prompt.prefix, prompt.prefix_cache_key = prefix, prefix_cache_key
        answer = await ask(self.client, model=model or self.model, prompt=prompt, max_tokens=self.max_tokens,
                           cache_key=cache_key, task="facts")
        items = json_items(answer, "facts")
        if prompt.prefixed:
            by_place = {place: m.id for place, m in enumerate(messages, 1)}
            for item in items:  # places 1… to message ids
                item["sources"] = [by_place.get(i, -1) for i in _ints(item.get("sources"))]
        return self.merge(owner, persona_id, items, messages, known)

    def merge(self, owner: Owner, persona_id: str, items: Sequence[dict], messages: Sequence[Message],
              known: Sequence[Fact]) -> ExtractionResult:
        by_id = {m.id: m for m in messages}
        user_ids = [m.id for m in messages if m.role == "user"] or list(by_id)
        active = {f.id: f for f in known}
        deleted = self.facts.deleted(owner, persona_id)
        result = ExtractionResult([], [], 0)
        for item in items:
            text = " ".join(str(item.get("text") or item.get("fact") or "").split())[:MAX_FACT_CHARS]
            if not text:
                result.skipped += 1
                continue
            if any(same_fact(text, f.text) for f in [*active.values(), *deleted]):
                result.skipped += 1
                continue
            sources = [i for i in _ints(item.get("sources")) if i in by_id] or user_ids
            replaces = next((i for i in _ints([item.get("replaces")]) if i in active), None)
            topic = str(item.get("topic") or "").strip()[:80] or None
            fact = self.facts.add(owner, persona_id, text, origin="model", topic=topic, source_ids=sources,
                                  said_at=max(by_id[i].created_at for i in sources), replaces=replaces)
            if replaces is not None:
                result.replaced.append(replaces)
                del active[replaces]
            active[fact.id] = fact
            result.added.append(fact)
        return result


def _ints(values) -> list[int]:
    found = []
    for value in values if isinstance(values, list) else []:
        try:
            found.append(int(str(value).lstrip("#")))
        except (TypeError, ValueError):
            continue
    return found
