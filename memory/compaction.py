"""Compaction: old verbatim turns fold into summaries written by the model.

When the verbatim history passes `compact_at` (80%) of its budget, the oldest whole turns
(enough to bring it back to `compact_to`, 50%) are summarised by the model into a
*segment*, stored with the range of message ids it covers, and the history boundary moves
past them. The summaries sit in the static `memory` section, so the cached prefix changes
once per compaction (every few dozen turns) instead of every turn. The big gap between the
trigger and the target is what makes compaction rare.

Runs in the background after a reply (`LongTermMemory.after_turn`). All model calls happen
first; the result is written in one transaction together with the new boundary and the
re-rendered memory section, so a request built meanwhile sees either the old state or the
new one, never a mix. If a call fails nothing is written and the next turn tries again; if
the history overflows meanwhile, the core's batch dropping moves the boundary, and the
next successful compaction also summarises the dropped turns: whatever visible message
lies before the boundary and is covered by no segment (a drop, a forgotten segment, an
import) is summarised, in chunks that fit one request.

Summaries ride the conversation's prompt cache (memory/model_tasks.py): the turns being
folded are the oldest of the window, so the request is the conversation's own request
(system, static part, history, byte for byte, through the last answered message), then
the instruction naming the first N messages; the cache serves all of it but the
instruction, and a one-slot server still holds the whole conversation for the next turn. Turns already outside the window (dropped,
imported) cannot: they go in the standalone form, quoted in chunks, which is rare.

When the summaries themselves pass `summary_share` of the window, all but the newest are
folded into one higher-level segment of at most a quarter of that share (a fold rewrites
the start of the memory section, so it is made rare); the folded ones stay in the
database, pointing to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from memory.assembly import AssembledRequest, Budget
from memory.model_client import ModelClient
from memory.model_tasks import Prefix, TaskPrompt, ask, conversation_language, strip_fences
from memory.records import HistoryRow, Message, from_text
from memory.store import Store
from memory.timeline import short_stamp
from memory.tokens import MESSAGE_OVERHEAD, REQUEST_OVERHEAD, count_tokens, truncate_to_tokens
from personas import Persona

log = logging.getLogger(__name__)

def visible_messages(store: Store, conversation_id: int, *, after_id: int = 0, before_id: int | None = None,
                     limit: int | None = None) -> list[Message]:
    """The conversation's visible messages with after_id < id < before_id, oldest first."""
    return store.conversations.visible_messages(conversation_id, after_id=after_id, before_id=before_id, limit=limit)


@dataclass(frozen=True, slots=True)
class Segment:
    id: int | None  # None: planned, not stored yet
    level: int
    first_message_id: int
    last_message_id: int
    first_at: str
    last_at: str
    content: str
    tokens: int
    children: tuple["Segment", ...] = ()  # the segments a planned fold replaces


@dataclass(frozen=True)
class CompactionPolicy:
    compact_at: float = 0.8  # share of the history budget that triggers compaction
    compact_to: float = 0.5  # share of it the verbatim history is brought back to
    summary_share: float = 0.15  # share of the window the summaries may take before folding
    chunk_share: float = 0.5  # share of the window one summarising request may carry
    max_summary_tokens: int = 2000  # one summary's length, whatever the window (models write less)
    max_calls: int = 8  # model calls per run; a long backlog (an import) continues next turn


@dataclass
class CompactionResult:
    summarized_messages: int = 0
    segments: list[Segment] = field(default_factory=list)
    folds: int = 0
    boundary_message_id: int | None = None  # the new boundary, when it moved


class SummaryStore:
    """The summary_segments table; callers never write its SQL."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def active(self, conversation_id: int) -> list[Segment]:
        rows = self.db.execute(
            "SELECT id, level, first_message_id, last_message_id, first_at, last_at, content, tokens "
            "FROM summary_segments WHERE conversation_id = ? AND folded_into IS NULL ORDER BY first_message_id",
            [conversation_id]).fetchall()
        return [Segment(*row) for row in rows]

    def save(self, conversation_id: int, segment: Segment, folded_into: int | None = None) -> int:
        """Store a planned segment and, under it, the planned segments it folds."""
        if segment.id is not None:
            if folded_into is not None:
                self.db.execute("UPDATE summary_segments SET folded_into = ? WHERE id = ?",
                                [folded_into, segment.id])
            return segment.id
        with self.db.atomic():  # a segment and the segments it folds, together or not at all
            (segment_id,) = self.db.execute(
                "INSERT INTO summary_segments (conversation_id, level, first_message_id, last_message_id, "
                "first_at, last_at, content, tokens, created_at, folded_into) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [conversation_id, segment.level, segment.first_message_id, segment.last_message_id,
                 segment.first_at, segment.last_at, segment.content, segment.tokens, self.store.now(),
                 folded_into]).fetchone()
            for child in segment.children:
                self.save(conversation_id, child, segment_id)
        return segment_id

    def uncovered_runs(self, conversation_id: int, before_id: int) -> list[list[Message]]:
        """Runs of visible messages before `before_id` that no active segment covers."""
        ranges, covered_to = [], 0
        for segment in self.active(conversation_id):
            if segment.first_message_id > covered_to + 1:
                ranges.append((covered_to + 1, segment.first_message_id - 1))
            covered_to = max(covered_to, segment.last_message_id)
        ranges.append((covered_to + 1, before_id - 1))
        runs = []
        for low, high in ranges:
            if high < low:
                continue
            run = visible_messages(self.store, conversation_id, after_id=low - 1, before_id=high + 1)
            if run:
                runs.append(run)
        return runs

    def forget_messages(self, conversation_id: int, message_ids: Sequence[int]) -> int:
        """Delete every segment (of any level) that summarises one of these messages.

        Folded segments under a deleted one that do not cover them become active again;
        what is left uncovered is summarised afresh by the next compaction.
        """
        doomed = set()
        for message_id in message_ids:
            doomed |= {row[0] for row in self.db.execute(
                "SELECT id FROM summary_segments WHERE conversation_id = ? AND ? BETWEEN first_message_id "
                "AND last_message_id", [conversation_id, message_id]).fetchall()}
        with self.db.atomic():
            for segment_id in doomed:
                self.db.execute("DELETE FROM summary_segments WHERE id = ?", [segment_id])
        return len(doomed)


def history_budget(request: AssembledRequest) -> int:
    """The tokens the verbatim history may take in requests laid out like this one."""
    fixed = REQUEST_OVERHEAD + sum(m.tokens + MESSAGE_OVERHEAD for m in request.messages
                                   if m.section not in ("history", "user"))
    budget = request.budget
    return budget.prompt_limit - fixed - budget.ours(budget.tail_tokens)


def summary_cap(budget: Budget, policy: CompactionPolicy) -> int:
    return int(budget.ours(budget.window) * policy.summary_share)


def _cut_index(rows: Sequence[HistoryRow], budget_tokens: int, policy: CompactionPolicy) -> int:
    """How many of the oldest rows to fold: 0 below the trigger, else enough whole turns to
    bring the rest to the target, never the newest turn."""
    total = sum(row.tokens + MESSAGE_OVERHEAD for row in rows)
    if total <= policy.compact_at * budget_tokens:
        return 0
    newest_turn = len(rows)
    while newest_turn > 0 and rows[newest_turn - 1].role != "user":
        newest_turn -= 1
    while newest_turn > 0 and rows[newest_turn - 1].role == "user":
        newest_turn -= 1
    index, remaining = 0, total
    while index < newest_turn and remaining > policy.compact_to * budget_tokens:
        remaining -= rows[index].tokens + MESSAGE_OVERHEAD
        index += 1
    while index < newest_turn and rows[index].role != "user":
        index += 1  # the kept history starts with a user message
    return index


def _chunks(run: Sequence[Message], limit: int) -> list[list[Message]]:
    """Split a run into pieces of at most `limit` tokens, preferably before a user message."""
    chunks: list[list[Message]] = []
    current: list[Message] = []
    size = 0
    for message in run:
        tokens = min(message.tokens, limit // 2) + MESSAGE_OVERHEAD
        if current and size + tokens > limit:
            split = len(current)
            if message.role != "user":  # move the question along with its answer when possible
                split = next((i for i in range(len(current) - 1, 0, -1) if current[i].role == "user"), split)
            chunks.append(current[:split])
            current = current[split:]
            size = sum(min(m.tokens, limit // 2) + MESSAGE_OVERHEAD for m in current)
        current.append(message)
        size += tokens
    if current:
        chunks.append(current)
    return chunks


_SUMMARY_PROMPTS = {
    "en": (
        "You write the long-term memory of an ongoing conversation between {user} (the user) and {persona}. "
        "Summarise the conversation excerpt you are given so that {persona} can carry on the relationship "
        "months from now without rereading it. Keep: the names of people, pets and places; dates (as "
        "absolute dates, from the timestamps); promises and plans; the user's preferences, feelings and "
        "important events; shared jokes; questions and threads still open. Leave out small talk. Write in "
        "English, in the third person, as compact prose or short bullet points, in at most about {words} "
        "words. Answer with the summary only."
    ),
    "zh": (
        "你负责为{user}（用户）和{persona}之间正在进行的对话撰写长期记忆。请概括给你的这段对话，"
        "让{persona}在几个月后不必重读也能延续这段关系。要保留：人物、宠物和地点的名字；日期（根据时间戳写成具体日期）；"
        "承诺和计划；用户的喜好、感受和重要经历；两人之间的玩笑；尚未解决的问题和话题。省略闲聊。"
        "用中文、第三人称，写成简洁的段落或要点，不超过约{chars}字。只输出摘要本身。"
    ),
}
_FOLD_PROMPTS = {
    "en": (
        "You keep the long-term memory of an ongoing conversation between {user} (the user) and {persona}. "
        "Merge the consecutive summaries you are given into one shorter summary, oldest first, of at most "
        "about {words} words. Keep names, dates, promises, preferences and open threads; drop what no longer "
        "matters. Write in English, in the third person. Answer with the summary only."
    ),
    "zh": (
        "你负责维护{user}（用户）和{persona}之间正在进行的对话的长期记忆。请把给你的几段连续摘要合并成一段更短的摘要，"
        "按时间先后排列，不超过约{chars}字。保留名字、日期、承诺、喜好和尚未解决的话题，删去已经不重要的内容。"
        "用中文、第三人称。只输出摘要本身。"
    ),
}
_LABELS = {
    "en": ("Summary of what came before (for context; do not repeat it):", "Conversation excerpt:",
           "Summaries to merge:"),
    "zh": ("此前内容的摘要（仅供参考，不要重复）：", "对话片段：", "要合并的摘要："),
}
# The prefixed form: the excerpt is the conversation above, not quoted again.
_EXCERPT_ABOVE = {
    "en": "The excerpt to summarise is the start of the conversation above, after the long-term memory: its first "
          "{count} messages, from {first} to {last}; the last of them begins “{snippet}”. Summarise those only; the "
          "long-term memory already holds what came before, and the later messages stay as they are.",
    "zh": "要概括的对话片段是上面长期记忆之后那段对话的开头：前 {count} 条消息，从 {first} 到 {last}；"
          "其中最后一条的开头是“{snippet}”。只概括这些消息；之前的内容已经在长期记忆里，之后的消息保持原样。",
}


class Compactor:
    """Plans a compaction with the model's help, then writes it in one transaction."""

    def __init__(self, store: Store, summaries: SummaryStore, client: ModelClient, *, model: str,
                 policy: CompactionPolicy | None = None):
        self.store = store
        self.summaries = summaries
        self.client = client
        self.model = model
        self.policy = policy or CompactionPolicy()

    def due(self, conversation_id: int, boundary_message_id: int, budget_tokens: int) -> bool:
        """Whether the history passed the trigger, or messages before the boundary lack a summary."""
        rows = self.store.conversations.history_since(conversation_id, boundary_message_id)
        return _cut_index(rows, budget_tokens, self.policy) > 0 or bool(
            boundary_message_id and self.summaries.uncovered_runs(conversation_id, boundary_message_id))

    async def compact(self, conversation_id: int, *, persona: Persona, user_name: str, budget: Budget,
                      budget_tokens: int, zone: ZoneInfo, language_hint: str | None = None,
                      model: str | None = None, commit: Callable[[], None] = lambda: None,
                      prefix: Callable[[int | None], list | None] | None = None,
                      prefix_cache_key: str | None = None) -> CompactionResult | None:
        """Summarise what must be, fold what grew too big, and write it all at once.

        `commit` runs inside the writing transaction (the caller re-renders the memory
        section there). `prefix(through_message_id)`: the conversation's own request (the
        engine's `task_prefix`), for the turns still in the window; None sends every
        summary in the standalone form. Returns None when there was nothing to do.
        """
        policy = self.policy
        conversation = self.store.conversations.conversation(conversation_id)
        rows = self.store.conversations.history_since(conversation_id, conversation.boundary_message_id)
        cut = _cut_index(rows, budget_tokens, policy)
        new_boundary = rows[cut].id if 0 < cut < len(rows) else conversation.boundary_message_id
        runs = self.summaries.uncovered_runs(conversation_id, new_boundary)
        if not runs:
            return None
        window = budget.ours(budget.window)
        cap = summary_cap(budget, policy)
        chunk_limit = max(1000, min(int(window * policy.chunk_share), window - cap - 2000))
        boundary = conversation.boundary_message_id
        pieces: list[tuple[list[Message], Prefix | None]] = []
        for run in runs:
            outside = [m for m in run if m.id < boundary] if prefix is not None else list(run)
            inside = run[len(outside):]
            pieces += [(chunk, None) for chunk in _chunks(outside, chunk_limit)]
            if inside and prefix is not None and prefix(inside[-1].id):
                # in the window: one request, whatever its length (it fits the conversation's own).
                # Its prefix is the whole conversation, not only the turns it folds: on a
                # server with one slot, the next turn then finds all of it still cached.
                pieces.append((list(inside), partial(prefix, None)))
            elif inside:
                pieces += [(chunk, None) for chunk in _chunks(inside, chunk_limit)]
        chunks = [chunk for chunk, _ in pieces]
        calls_left = policy.max_calls
        existing = self.summaries.active(conversation_id)
        plan = list(existing)
        result = CompactionResult()
        language = conversation_language((m.content for c in chunks[:2] for m in c[:50]), language_hint)
        task = _Task(self, persona=persona, user_name=user_name, zone=zone, language=language,
                     model=model or self.model, conversation_id=conversation_id, prefix_cache_key=prefix_cache_key)
        for chunk, chunk_prefix in pieces[:calls_left]:
            before = [s for s in plan if s.last_message_id < chunk[0].id]
            segment = await task.summarize(chunk, before[-1] if before else None, chunk_limit, cap,
                                           prefix=chunk_prefix)
            task.fold_prefix = chunk_prefix or task.fold_prefix
            plan = sorted([*plan, segment], key=lambda s: s.first_message_id)
            result.segments.append(segment)
            result.summarized_messages += len(chunk)
            calls_left -= 1
        complete = len(chunks) <= policy.max_calls
        while calls_left > 0 and len(plan) >= 2 and sum(s.tokens for s in plan) > cap:
            plan = await task.fold(plan, cap)
            result.folds += 1
            calls_left -= 1

        with self.store.transaction():
            if [s.id for s in self.summaries.active(conversation_id)] != [s.id for s in existing]:
                log.info("segments of conversation %s changed during compaction; retrying later", conversation_id)
                return None
            for segment in plan:
                self.summaries.save(conversation_id, segment)
            if complete and new_boundary > conversation.boundary_message_id:
                self.store.conversations.set_boundary(conversation_id, new_boundary)
                result.boundary_message_id = new_boundary
            commit()
        return result


@dataclass
class _Task:
    """The model calls of one compaction, in the conversation's language."""

    compactor: Compactor
    persona: Persona
    user_name: str
    zone: ZoneInfo
    language: str
    model: str
    conversation_id: int
    prefix_cache_key: str | None = None
    fold_prefix: Prefix | None = None  # the prefix the last summary rode, for the folds after it

    def _name(self, message: Message) -> str:
        if message.speaker_name and message.role == "user":
            return message.speaker_name
        return self.user_name if message.role == "user" else self.persona.name

    def _limits(self, target: int) -> dict[str, int]:
        return {"words": max(40, int(target * 0.7)), "chars": max(60, target)}

    async def _ask(self, system: str, user: str, target: int, kind: str, *, instruction: str | None = None,
                   prefix: Prefix | None = None) -> tuple[str, int]:
        prompt = TaskPrompt(system, user, instruction=instruction if prefix else None, prefix=prefix,
                            prefix_cache_key=self.prefix_cache_key, language=self.language)
        answer = await ask(self.compactor.client, model=self.model, prompt=prompt, max_tokens=target * 2 + 64,
                           cache_key=f"memory-{kind}-{self.conversation_id}", task=kind)
        text = strip_fences(answer)
        if not text:
            raise ValueError(f"the model wrote an empty {kind}")
        tokens = count_tokens(text)
        if tokens > target * 3 // 2:
            text = truncate_to_tokens(text, target * 3 // 2, marker=" […]")
            tokens = count_tokens(text)
        return text, tokens

    async def summarize(self, chunk: Sequence[Message], previous: Segment | None, chunk_limit: int,
                        cap: int, prefix: Prefix | None = None) -> Segment:
        source_tokens = sum(m.tokens for m in chunk)
        target = min(max(80, source_tokens // 8), max(80, cap // 3), self.compactor.policy.max_summary_tokens)
        context_title, excerpt_title, _ = _LABELS[self.language]
        parts = []
        if previous is not None:
            parts += [context_title, truncate_to_tokens(previous.content, 400), ""]
        parts.append(excerpt_title)
        for message in chunk:
            content = message.content if message.tokens <= chunk_limit // 2 else truncate_to_tokens(
                message.content, chunk_limit // 2)
            parts.append(f"[{short_stamp(from_text(message.created_at), self.zone)}] {self._name(message)}: {content}")
        system = _SUMMARY_PROMPTS[self.language].format(user=self.user_name, persona=self.persona.name,
                                                        **self._limits(target))
        instruction = None
        if prefix is not None:
            snippet = " ".join(chunk[-1].content.split())[:60]
            instruction = "\n\n".join([system, _EXCERPT_ABOVE[self.language].format(
                count=len(chunk), first=short_stamp(from_text(chunk[0].created_at), self.zone),
                last=short_stamp(from_text(chunk[-1].created_at), self.zone), snippet=snippet)])
        text, tokens = await self._ask(system, "\n".join(parts), target, "summary", instruction=instruction,
                                       prefix=prefix)
        return Segment(None, 1, chunk[0].id, chunk[-1].id, chunk[0].created_at, chunk[-1].created_at, text, tokens)

    async def fold(self, plan: list[Segment], cap: int) -> list[Segment]:
        """Fold every segment but the newest into one of at most a quarter of the cap: the
        summaries drop well below the cap, so folding (which changes the whole memory
        section, the summaries at its start) stays rare."""
        count = max(2, len(plan) - 1)
        oldest = plan[:count]
        taken = sum(s.tokens for s in oldest)
        target = max(80, min(taken // 2, cap // 4, self.compactor.policy.max_summary_tokens))
        _, _, merge_title = _LABELS[self.language]
        lines = [merge_title]
        for segment in oldest:
            lines += ["", f"[{short_stamp(from_text(segment.first_at), self.zone)} – "
                          f"{short_stamp(from_text(segment.last_at), self.zone)}]", segment.content]
        system = _FOLD_PROMPTS[self.language].format(user=self.user_name, persona=self.persona.name,
                                                     **self._limits(target))
        text, tokens = await self._ask(system, "\n".join(lines), target, "fold",
                                       instruction=f"{system}\n\n" + "\n".join(lines), prefix=self.fold_prefix)
        folded = Segment(None, max(s.level for s in oldest) + 1, oldest[0].first_message_id,
                         oldest[-1].last_message_id, oldest[0].first_at, oldest[-1].last_at, text, tokens,
                         tuple(oldest))
        return [folded, *plan[count:]]
