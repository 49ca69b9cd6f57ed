"""The static `memory` section: summaries of compacted history and pinned facts, exactly as
sent, per conversation.

The section sits in the cached prefix, so it must not change from turn to turn. It is
rendered only when something deliberately changes it: a compaction (new or folded
summaries, and the facts learned since the last one), a user's own fact edit (which
applies at once), learned facts outgrowing their share of the tail, or its first use in a
conversation. The rendered text, its token count
and the ids of the facts it holds are stored (`memory_state`), and every request reuses
them byte for byte. Facts the model learns in between ride in the tail (see
`LongTermMemory.tail_parts`) until the next compaction moves them here.

Rendering is deterministic: the active segments in message order, the facts in id order,
dates in the user's time zone, each part capped to its share of the window (the newest
summaries and facts are kept when a cap bites; older ones stay in the database).

`MemoryStateStore` holds the `memory_state` rows and their SQL; `MemoryBlock` renders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from memory.assembly import Budget, StaticBlock
from memory.compaction import CompactionPolicy, SummaryStore, summary_cap
from memory.engine import TurnContext, _zone
from memory.facts import Fact, FactStore
from memory.records import Conversation, Owner, User, from_text
from memory.sql_table import owner_where
from memory.store import Store
from memory.timeline import stamp
from memory.tokens import count_tokens

HEADER = "[Long-term memory — background for you, not part of the dialogue]"
SUMMARIES_TITLE = "Summary of our earlier conversation, oldest first:"
FACTS_TITLE = "Facts to keep in mind:"


@dataclass(frozen=True)
class MemoryState:
    conversation_id: int
    block: str
    block_tokens: int
    source_ids: tuple[str, ...]
    fact_ids: frozenset[int]  # the active facts when it was rendered
    stale: bool
    facts_cursor: int


class MemoryStateStore:
    """The `memory_state` rows: each conversation's rendered section, its sources and the
    facts cursor (the last message the fact extractor read)."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def state(self, conversation_id: int) -> MemoryState | None:
        row = self.db.execute(
            "SELECT conversation_id, block, block_tokens, source_ids, fact_ids, stale, facts_cursor "
            "FROM memory_state WHERE conversation_id = ?", [conversation_id]).fetchone()
        if row is None:
            return None
        return MemoryState(row[0], row[1], row[2], tuple(json.loads(row[3])), frozenset(json.loads(row[4])),
                           bool(row[5]), row[6])

    def _ensure_row(self, conversation_id: int) -> None:
        self.db.execute("INSERT INTO memory_state (conversation_id, updated_at) VALUES (?, ?) "
                        "ON CONFLICT (conversation_id) DO NOTHING",
                        [conversation_id, self.store.now()])

    def set_facts_cursor(self, conversation_id: int, message_id: int) -> None:
        with self.db.atomic():
            self._ensure_row(conversation_id)
            # only forward (a WHERE rather than SQLite's max() or PostgreSQL's greatest())
            self.db.execute("UPDATE memory_state SET facts_cursor = ? WHERE conversation_id = ? AND facts_cursor < ?",
                            [message_id, conversation_id, message_id])

    def mark_stale(self, owner: Owner, persona_id: str, *, clear: bool = False) -> None:
        """Every conversation of this owner and persona re-renders its section; `clear`
        also drops the stored text."""
        where, params = owner_where(owner)
        clearing = ", block = '', block_tokens = 0" if clear else ""
        with self.db.atomic():
            self.db.execute(
                f"UPDATE memory_state SET stale = 1{clearing} WHERE conversation_id IN "
                f"(SELECT id FROM conversations WHERE {where} AND persona_id = ?)", [*params, persona_id])

    def save_section(self, conversation_id: int, text: str, tokens: int, source_ids: tuple[str, ...],
                     fact_ids: list[int]) -> None:
        with self.db.atomic():
            self._ensure_row(conversation_id)
            self.db.execute(
                "UPDATE memory_state SET block = ?, block_tokens = ?, source_ids = ?, fact_ids = ?, stale = 0, "
                "updated_at = ? WHERE conversation_id = ?",
                [text, tokens, json.dumps(source_ids), json.dumps(fact_ids), self.store.now(), conversation_id])


class MemoryBlock:
    def __init__(self, store: Store, summaries: SummaryStore, facts: FactStore, *,
                 policy: CompactionPolicy | None = None, facts_share: float = 0.05,
                 default_timezone: str = "UTC"):
        self.store = store
        self.states = MemoryStateStore(store)
        self.summaries = summaries
        self.facts = facts
        self.policy = policy or CompactionPolicy()
        self.facts_share = facts_share
        self.default_timezone = default_timezone

    # -- state --------------------------------------------------------------------------
    def state(self, conversation_id: int) -> MemoryState | None:
        return self.states.state(conversation_id)

    def facts_cursor(self, conversation_id: int) -> int:
        state = self.state(conversation_id)
        return state.facts_cursor if state else 0

    def set_facts_cursor(self, conversation_id: int, message_id: int) -> None:
        self.states.set_facts_cursor(conversation_id, message_id)

    def mark_stale(self, owner: Owner, persona_id: str, *, clear: bool = False) -> None:
        """A user's fact edit: every conversation of this owner and persona re-renders its section.
        `clear` also drops the stored text at once (messages being forgotten: the old section
        may quote them); a stale section is rendered afresh before it is used anyway."""
        self.states.mark_stale(owner, persona_id, clear=clear)

    # -- rendering ------------------------------------------------------------------------
    def caps(self, budget: Budget) -> tuple[int, int]:
        return summary_cap(budget, self.policy), int(budget.ours(budget.window) * self.facts_share)

    def render(self, conversation: Conversation, user: User | None,
               budget: Budget) -> tuple[str, int, tuple[str, ...], list[Fact]]:
        """The section's text, tokens and source ids, and the facts it took into account
        (all active ones: those over the cap are left out on purpose, not waiting)."""
        zone = _zone(user.timezone if user else None, self.default_timezone)
        summaries_cap, facts_cap = self.caps(budget)
        segments, used = [], 0
        for segment in reversed(self.summaries.active(conversation.id)):
            if used + segment.tokens + 24 > summaries_cap and segments:
                break
            segments.insert(0, segment)
            used += segment.tokens + 24
        facts, used = [], 0
        considered = self.facts.active(conversation.owner, conversation.persona_id)
        for fact in reversed(considered):
            tokens = count_tokens(fact.text) + 4
            if used + tokens > facts_cap:
                break
            facts.insert(0, fact)
            used += tokens
        if not segments and not facts:
            return "", 0, (), considered
        parts = [HEADER]
        if segments:
            parts.append(SUMMARIES_TITLE)
            for segment in segments:
                span = f"{stamp(from_text(segment.first_at), zone)} – {stamp(from_text(segment.last_at), zone)}"
                parts.append(f"[{span}]\n{segment.content}")
        if facts:
            parts.append(FACTS_TITLE + "\n" + "\n".join(f"- {fact.text}" for fact in facts))
        text = "\n\n".join(parts)
        source_ids = tuple([f"summary:{s.id}" for s in segments] + [f"fact:{f.id}" for f in facts])
        return text, count_tokens(text), source_ids, considered

    def refresh(self, conversation: Conversation, user: User | None, budget: Budget) -> MemoryState:
        """Render the section anew and store it (at compaction, after a user's edit, on first use)."""
        text, tokens, source_ids, facts = self.render(conversation, user, budget)
        self.states.save_section(conversation.id, text, tokens, source_ids, [f.id for f in facts])
        return self.state(conversation.id)  # type: ignore[return-value]

    def static_block(self, context: TurnContext) -> StaticBlock | None:
        state = self.state(context.conversation.id)
        if state is None or state.stale:
            state = self.refresh(context.conversation, context.user, context.budget)
        if not state.block:
            return None
        summaries_cap, facts_cap = self.caps(context.budget)
        if state.block_tokens > summaries_cap + facts_cap + 100:
            # a window smaller than the one it was rendered for: fit it now, without storing
            text, tokens, source_ids, _ = self.render(context.conversation, context.user, context.budget)
            return StaticBlock("memory", text, tokens, source_ids) if text else None
        return StaticBlock("memory", state.block, state.block_tokens, state.source_ids)
