"""Long-term memory as one context provider: summaries and pinned facts in the static
`memory` section, newly learned facts in the tail, and the background work that keeps
them (fact extraction, then compaction) after each reply.

Background work for one conversation never overlaps itself (a second reply arriving
while the first one's work runs simply skips it; the next turn catches up). It may overlap
the conversation's next turn: compaction does its model calls first and writes in one
transaction, and the boundary only moves forward, so the turn sees the state before or
after, never half of it. A failure is logged and retried on a later turn, after a backoff
in turns (1, 2, 4 … 16), while the core's batch dropping keeps requests within the window.

Both ride the conversation's prompt cache: their requests are the conversation's own
request up to the messages they read, then their instruction (memory/model_tasks.py), and
they pass the endpoint's gate as background work, behind every turn (memory/model_gate.py).
With `COMPANION_MEMORY_MODEL` set to another model than the conversation's, that cannot
hold (another model, another cache): they go in their standalone form, fact extraction
every `facts_every` user messages in chunks of `FACT_CHUNK_TOKENS`, summaries once per
compaction.

Newly learned facts wait in the tail for the next compaction; if they outgrow a third of
the tail budget they are moved into the static section at once instead (rare: the model
learns a few facts a week, a compaction comes every few dozen turns).

`list_facts`, `add_fact`, `edit_fact`, `delete_fact` are the operations behind the
user's `/memory` command; the user's edits apply at once (the section is re-rendered on
the next request). `forget_messages` and `forget_user` drop what was derived from
messages or a user being erased.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Sequence

from memory.assembly import Budget, StaticBlock, TailPart
from memory.compaction import (CompactionPolicy, CompactionResult, Compactor, SummaryStore, history_budget,
                               visible_messages)
from memory.engine import ContextProvider, TurnContext, _zone
from memory.facts import ExtractionResult, Fact, FactExtractor, FactStore, clean_fact_text, same_fact
from memory.memory_block import MemoryBlock
from memory.model_client import ModelClient
from memory.records import Conversation, Message, Owner
from memory.store import Store
from memory.tokens import count_tokens

log = logging.getLogger(__name__)

FACT_CHUNK_TOKENS = 3000  # most message tokens one extraction request reads


@dataclass
class _Backoff:
    failures: int = 0
    skip: int = 0

    def ready(self) -> bool:
        if self.skip > 0:
            self.skip -= 1
            return False
        return True

    def failed(self) -> None:
        self.failures += 1
        self.skip = min(2 ** (self.failures - 1), 16) - 1

    def succeeded(self) -> None:
        self.failures = self.skip = 0


class LongTermMemory(ContextProvider):
    def __init__(self, store: Store, client: ModelClient, *, model: str, task_model: str | None = None,
                 policy: CompactionPolicy | None = None, facts_every: int = 4, facts_share: float = 0.05,
                 default_timezone: str = "UTC"):
        self.store = store
        self.model = model
        self.task_model = task_model
        self.policy = policy or CompactionPolicy()
        self.facts_every = facts_every
        self.default_timezone = default_timezone
        self.summaries = SummaryStore(store)
        self.facts = FactStore(store)
        self.block = MemoryBlock(store, self.summaries, self.facts, policy=self.policy, facts_share=facts_share,
                                 default_timezone=default_timezone)
        self.compactor = Compactor(store, self.summaries, client, model=model, policy=self.policy)
        self.extractor = FactExtractor(self.facts, client, model=model)
        self._running: set[int] = set()
        self._backoff: dict[tuple[str, int], _Backoff] = {}

    # -- the request ----------------------------------------------------------------------
    def static_blocks(self, context: TurnContext) -> Sequence[StaticBlock]:
        block = self.block.static_block(context)
        return [block] if block else ()

    def pending_facts(self, conversation_id: int, owner: Owner, persona_id: str) -> list[Fact]:
        """Active facts the conversation's memory section does not hold yet."""
        state = self.block.state(conversation_id)
        held = state.fact_ids if state else frozenset()
        return [fact for fact in self.facts.active(owner, persona_id) if fact.id not in held]

    def _facts_tail(self, conversation: Conversation, budget: Budget) -> tuple[list[str], list[Fact], bool]:
        """The tail's lines for facts waiting for a compaction, newest first within a third
        of the tail budget; and whether some did not fit.

        A fact the model took from messages that are all still in the window is left out:
        the history shows it already, and every tail token (with the reply after it) is
        evaluated again on every turn. The user's own facts, corrections of a fact the
        memory section holds, and facts whose messages left the window are shown."""
        waiting = [fact for fact in self.pending_facts(conversation.id, conversation.owner, conversation.persona_id)
                   if not self._in_window(fact, conversation)]
        cap = budget.ours(budget.tail_tokens) // 3 - 20
        lines: list[str] = []
        shown: list[Fact] = []
        used = 0
        for fact in reversed(waiting):
            line = f"- {fact.text}"
            if fact.replaces is not None:
                old = self.facts.get(conversation.owner, conversation.persona_id, fact.replaces)
                if old is not None:
                    line += f" (this replaces: {old.text})"
            tokens = count_tokens(line) + 1
            if used + tokens > cap:
                return lines[::-1], shown[::-1], True
            lines.append(line)
            shown.append(fact)
            used += tokens
        return lines[::-1], shown[::-1], False

    @staticmethod
    def _in_window(fact: Fact, conversation: Conversation) -> bool:
        return (fact.origin == "model" and fact.replaces is None and bool(fact.source_ids)
                and min(fact.source_ids) >= conversation.boundary_message_id)

    def tail_parts(self, context: TurnContext) -> Sequence[TailPart]:
        lines, shown, _ = self._facts_tail(context.conversation, context.budget)
        if not lines:
            return ()
        header = "Facts learned since the long-term memory above was written (they win where they differ):"
        return [TailPart("facts", "\n".join([header, *lines]), tuple(f"fact:{f.id}" for f in shown))]

    # -- background work ------------------------------------------------------------------
    async def after_turn(self, context: TurnContext) -> None:
        conversation_id = context.conversation.id
        if conversation_id in self._running:
            return
        self._running.add(conversation_id)
        try:
            await self._guarded("facts", context, self.extract_facts)
            await self._guarded("compaction", context, self.compact)
        finally:
            self._running.discard(conversation_id)

    async def _guarded(self, kind: str, context: TurnContext, work) -> None:
        backoff = self._backoff.setdefault((kind, context.conversation.id), _Backoff())
        if not backoff.ready():
            return
        try:
            await work(context)
        except Exception as exc:  # noqa: BLE001 - retried on a later turn
            backoff.failed()
            log.warning("%s for conversation %s failed (%s); retrying in %d turn(s)", kind,
                        context.conversation.id, exc, backoff.skip + 1)
        else:
            backoff.succeeded()

    def _task_model(self, context: TurnContext) -> str:
        """COMPANION_MEMORY_MODEL, else the model that answers the conversation (whose
        cache holds it)."""
        return self.task_model or context.model or context.persona.model.model or self.model

    def _prefix(self, context: TurnContext):
        """The conversation's own request builder, when the task goes to the same model."""
        if context.prefix is None or self._task_model(context) != context.model:
            return None
        return context.prefix

    def _unread_messages(self, conversation_id: int) -> list[Message]:
        """Visible messages after the extraction cursor, up to the turn still in progress."""
        unread = []
        for message in visible_messages(self.store, conversation_id, after_id=self.block.facts_cursor(conversation_id),
                                        limit=2000):
            if message.status == "pending":
                break
            unread.append(message)
        return unread

    async def extract_facts(self, context: TurnContext) -> list[ExtractionResult]:
        """Ask the model for durable facts in the messages it has not read yet (every
        `facts_every` user messages, at most two requests per turn)."""
        if self.facts_every <= 0:
            return []
        conversation, user = context.conversation, context.user
        unread = self._unread_messages(conversation.id)
        if sum(1 for m in unread if m.role == "user") < self.facts_every:
            return []
        zone = _zone(user.timezone if user else None, self.default_timezone)
        prefix = self._prefix(context)
        boundary = self.store.conversations.conversation(conversation.id).boundary_message_id
        results = []
        for _ in range(2):
            if not unread:
                break
            chunk_prefix = None
            if prefix is not None and unread[0].id >= boundary and prefix(unread[-1].id):
                chunk = unread  # all in the conversation's own request: one request reads them
                chunk_prefix = partial(prefix, chunk[-1].id)
            else:
                chunk, size = [], 0
                for message in unread:
                    if chunk and (size + message.tokens > FACT_CHUNK_TOKENS
                                  or (prefix is not None and message.id >= boundary)):
                        break  # the rest, in the window, rides the prefix next
                    chunk.append(message)
                    size += message.tokens
            results.append(await self.extractor.extract(
                conversation.owner, conversation.persona_id, chunk, user_name=user.name if user else "User",
                persona_name=context.persona.name, zone=zone, language_hint=user.language if user else None,
                model=self._task_model(context), cache_key=f"memory-facts-{conversation.id}",
                prefix=chunk_prefix, prefix_cache_key=context.cache_key))
            self.block.set_facts_cursor(conversation.id, chunk[-1].id)
            unread = unread[len(chunk):]
        if self._facts_tail(conversation, context.budget)[2]:
            # more new facts than the tail shows: move them into the memory section now
            self.block.refresh(conversation, user, context.budget)
        return results

    async def compact(self, context: TurnContext) -> CompactionResult | None:
        """Fold old turns into summaries when the history passed its trigger (or turns
        dropped before the boundary lack a summary)."""
        if context.request is None:
            return None
        conversation, user = context.conversation, context.user
        budget = context.request.budget
        zone = _zone(user.timezone if user else None, self.default_timezone)
        result = await self.compactor.compact(
            conversation.id, persona=context.persona, user_name=user.name if user else "User", budget=budget,
            budget_tokens=history_budget(context.request), zone=zone,
            language_hint=user.language if user else None, model=self._task_model(context),
            commit=lambda: self.block.refresh(self.store.conversations.conversation(conversation.id), user, budget),
            prefix=self._prefix(context), prefix_cache_key=context.cache_key)
        if result is not None:
            log.info("compacted conversation %s: %d messages into %d summaries, %d folds", conversation.id,
                     result.summarized_messages, len(result.segments), result.folds)
        return result

    # -- the user's /memory command -------------------------------------------------------
    def list_facts(self, owner: Owner, persona_id: str) -> list[Fact]:
        """The owner's active facts with this persona, oldest first."""
        return self.facts.active(owner, persona_id)

    def add_fact(self, owner: Owner, persona_id: str, text: str) -> Fact:
        """Add a fact (FactError if empty or too long); an equal active fact is returned as is."""
        text = clean_fact_text(text)
        existing = next((f for f in self.facts.active(owner, persona_id) if same_fact(f.text, text)), None)
        if existing is not None:
            return existing
        fact = self.facts.add(owner, persona_id, text, origin="user")
        self.block.mark_stale(owner, persona_id)
        return fact

    def edit_fact(self, owner: Owner, persona_id: str, fact_id: int, text: str) -> Fact | None:
        """Replace an active fact's text; the new fact (new id) or None if there is no such fact."""
        text = clean_fact_text(text)
        old = self.facts.get(owner, persona_id, fact_id)
        if old is None or old.status != "active":
            return None
        fact = self.facts.add(owner, persona_id, text, origin="user", topic=old.topic, replaces=old.id)
        self.block.mark_stale(owner, persona_id)
        return fact

    def delete_fact(self, owner: Owner, persona_id: str, fact_id: int) -> bool:
        """Delete an active fact; False if there is no such fact. The model will not relearn it."""
        deleted = self.facts.delete(owner, persona_id, fact_id)
        if deleted:
            self.block.mark_stale(owner, persona_id)
        return deleted

    def forget_user(self, user_id: int) -> None:
        """Drop what was derived from a user who is being erased (a forget cascade
        step; runs before their rows go): summaries of group conversations that cover their
        messages or the replies to them (summarised again without them), group facts stated
        only there, and their own facts. Their own conversations' summaries, state and
        embeddings go with those rows."""
        by_conversation: dict[int, list[int]] = {}
        for conversation_id, message_id in self.store.conversations.forgotten_group_messages(user_id):
            by_conversation.setdefault(conversation_id, []).append(message_id)
        for conversation_id, message_ids in by_conversation.items():
            self.forget_messages(conversation_id, message_ids)
        self.facts.forget_user(user_id)

    def forget_messages(self, conversation_id: int, message_ids: Sequence[int]) -> None:
        """Drop what was derived from messages being forgotten: the summaries that cover them
        (what remains is summarised afresh) and facts stated only by them."""
        conversation = self.store.conversations.conversation(conversation_id)
        self.summaries.forget_messages(conversation_id, message_ids)
        self.facts.forget_messages(message_ids)
        # the stored section may quote those summaries and facts: cleared, not just marked stale
        self.block.mark_stale(conversation.owner, conversation.persona_id, clear=True)
