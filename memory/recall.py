"""Recall: old verbatim turns, outside the window, that bear on the new message.

The new message (and, with half the weight, the last few turns before it) is turned into
index terms the way `textsearch` indexes text: words for Latin scripts, character bigrams
for Chinese, so a two-character name is one term. Terms too common to tell messages apart
(in more than about 1% of all messages; a term's document count comes from the FTS5
vocabulary and is cached) are left out, and the remaining rarest terms are OR-ed and
ranked by FTS5's BM25. That finds "Marcus" or "小芳" said once two thousand turns ago,
and keeps the query cheap at 100k messages (common terms have the longest posting lists).

With `COMPANION_EMBEDDING_MODEL` set, the nearest messages by embedding join the ranking
(reciprocal rank fusion), which finds paraphrases the words miss.

A hit comes with the neighbour that carries its meaning: a user message with the reply
to it, a reply with the question it answers. Hits are placed in the tail (part `recall`,
`source_ids` naming the messages) with their dates, oldest first, within a token cap;
they never enter the cached prefix. Only messages before the conversation's boundary,
or in the owner's other conversations with the persona, are candidates: what the window
holds is already there.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

from memory.assembly import TailPart
from memory.compaction import visible_messages
from memory.embeddings import EmbeddingIndex, Embedder
from memory.engine import ContextProvider, TurnContext, _zone
from memory.store import Conversation, Message, Store, from_text
from memory.textsearch import _CJK_CHARS, _CJK_RUN
from memory.timeline import stamp
from memory.tokens import truncate_to_tokens

log = logging.getLogger(__name__)

_PIECES = re.compile(f"[{_CJK_CHARS}]+|[^\\s{_CJK_CHARS}]+")
_WORD = re.compile(r"[^\W_]+")  # unicode61 splits at underscores too
RRF_K = 60
HEADER = "Earlier messages that may be relevant (recalled from long ago; not part of the current exchange):"


def index_terms(text: str) -> list[str]:
    """The distinct FTS terms of a text, in order: lowercased words without diacritics
    (as unicode61 indexes them) and CJK bigrams; lone CJK characters are left out."""
    terms: list[str] = []
    for piece in _PIECES.findall(text):
        if _CJK_RUN.fullmatch(piece):
            terms += [piece[i:i + 2] for i in range(len(piece) - 1)]
        else:
            folded = "".join(c for c in unicodedata.normalize("NFKD", piece.lower()) if not unicodedata.combining(c))
            terms += [word for word in _WORD.findall(folded) if len(word) > 1 or word.isdigit()]
    return list(dict.fromkeys(terms))


class TermStats:
    """Document counts of index terms, cached: counting a common term scans its whole
    posting list, and the counts change slowly."""

    def __init__(self, store: Store, max_entries: int = 50_000):
        self.db = store.db
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[int, int]] = OrderedDict()  # term -> (count, total when counted)

    def total(self) -> int:
        """About how many messages are indexed (ids are dense enough for a threshold)."""
        return self.db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]

    def counts(self, terms: Sequence[str], total: int) -> dict[str, int]:
        found, ask = {}, []
        for term in terms:
            cached = self._cache.get(term)
            if cached is not None and cached[1] * 1.1 >= total:
                found[term] = cached[0]
                self._cache.move_to_end(term)
            else:
                ask.append(term)
        for term in ask:
            row = self.db.execute("SELECT doc FROM messages_fts_terms WHERE term = ?", [term]).fetchone()
            found[term] = row[0] if row else 0
            self._cache[term] = (found[term], total)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return found


@dataclass(frozen=True)
class RecallSettings:
    max_hits: int = 4  # ranked hits, each with its neighbour
    max_terms: int = 8  # rarest terms searched
    common_share: float = 0.01  # a term in more than this share of messages is too common…
    common_floor: int = 30  # …unless it is in at most this many
    context_messages: int = 2  # earlier turns that also inform the search
    relative_floor: float = 0.3  # a hit must score at least this share of the best one
    token_cap: int = 1000  # most tokens of recalled text (also at most half the tail budget)
    message_tokens: int = 300  # a longer recalled message is shortened
    min_similarity: float = 0.35  # an embedding hit must be at least this close


class RecallProvider(ContextProvider):
    def __init__(self, store: Store, *, settings: RecallSettings | None = None, embedder: Embedder | None = None,
                 default_timezone: str = "UTC"):
        self.store = store
        self.db = store.db
        self.settings = settings or RecallSettings()
        self.embedder = embedder
        self.index = EmbeddingIndex(store, embedder.model) if embedder else None
        self.default_timezone = default_timezone
        self.terms = TermStats(store)
        self._query_vectors: OrderedDict[tuple[int, str], object] = OrderedDict()
        self._indexing: set[int] = set()

    # -- scope ----------------------------------------------------------------------------
    def scope(self, conversation: Conversation) -> list[int]:
        """The owner's conversations with this persona: recall reaches into earlier ones too."""
        where, params = conversation.owner.where()
        return [row[0] for row in self.db.execute(
            f"SELECT id FROM conversations WHERE {where} AND persona_id = ?",
            [*params, conversation.persona_id]).fetchall()]

    # -- ranking --------------------------------------------------------------------------
    def _search_terms(self, text: str, total: int, skip: set[str]) -> list[str]:
        settings = self.settings
        terms = [t for t in index_terms(text) if t not in skip]
        limit = max(settings.common_floor, int(total * settings.common_share))
        counts = self.terms.counts(terms, total)
        usable = sorted((t for t in terms if 0 < counts[t] <= limit), key=lambda t: counts[t])
        return usable[:settings.max_terms]

    def _text_ranking(self, terms: Sequence[str], scope: Sequence[int], window: tuple[int, int]) -> list[int]:
        if not terms:
            return []
        expression = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        marks = ",".join("?" * len(scope))
        rows = self.db.execute(
            "SELECT m.id, bm25(messages_fts) AS score FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            f"WHERE messages_fts MATCH ? AND m.conversation_id IN ({marks}) AND m.status != 'hidden' "
            "AND NOT (m.conversation_id = ? AND m.id >= ?) ORDER BY score LIMIT 30",
            [expression, *scope, *window]).fetchall()
        if not rows:
            return []
        best = rows[0][1]
        return [row[0] for row in rows if row[1] <= best * self.settings.relative_floor]

    def rank(self, conversation: Conversation, query: str, *, context_text: str = "",
             query_vector=None) -> list[int]:
        """Ids of the best old messages for this query, best first."""
        scope = self.scope(conversation)
        window = (conversation.id, conversation.boundary_message_id)
        total = self.terms.total()
        query_terms = self._search_terms(query, total, set())
        rankings: list[tuple[float, list[int]]] = [(1.0, self._text_ranking(query_terms, scope, window))]
        if context_text:
            context_terms = self._search_terms(context_text, total, set(query_terms))
            rankings.append((0.5, self._text_ranking(context_terms, scope, window)))
        if query_vector is not None and self.index is not None:
            nearest = self.index.search(scope, query_vector, limit=20, min_similarity=self.settings.min_similarity,
                                        exclude=window)
            rankings.append((1.0, [message_id for message_id, _ in nearest]))
        fused: dict[int, float] = {}
        for weight, ranking in rankings:
            for rank, message_id in enumerate(ranking):
                fused[message_id] = fused.get(message_id, 0.0) + weight / (RRF_K + rank)
        return sorted(fused, key=lambda i: -fused[i])

    # -- the tail part --------------------------------------------------------------------
    def _neighbour(self, message: Message, window: tuple[int, int]) -> Message | None:
        """The reply to a user message, or the question a reply answers."""
        if message.role == "user":
            found = visible_messages(self.store, message.conversation_id, after_id=message.id, limit=1)
            wanted = "assistant"
        else:
            found = self.db.execute(
                "SELECT id FROM messages WHERE conversation_id = ? AND id < ? AND status != 'hidden' "
                "ORDER BY id DESC LIMIT 1", [message.conversation_id, message.id]).fetchone()
            found = [self.store.message(found[0])] if found else []
            wanted = "user"
        if not found or found[0].role != wanted:
            return None
        neighbour = found[0]
        if neighbour.conversation_id == window[0] and neighbour.id >= window[1]:
            return None  # already in the window
        return neighbour

    def recalled(self, context: TurnContext, query_vector=None) -> list[Message]:
        """The messages to recall for this turn, oldest first, within the token cap."""
        conversation = context.conversation
        if not context.query.strip():
            return []
        if conversation.boundary_message_id == 0 and len(self.scope(conversation)) < 2:
            return []  # the whole history is in the window
        recent = self.db.execute(
            "SELECT content FROM messages WHERE conversation_id = ? AND status NOT IN ('hidden', 'pending') "
            "ORDER BY id DESC LIMIT ?", [conversation.id, self.settings.context_messages]).fetchall()
        ranked = self.rank(conversation, context.query, context_text="\n".join(r[0] for r in recent),
                           query_vector=query_vector)
        window = (conversation.id, conversation.boundary_message_id)
        cap = min(self.settings.token_cap, context.budget.ours(context.budget.tail_tokens) // 2)
        chosen: dict[int, Message] = {}
        used = hits = 0
        for message_id in ranked:
            if hits >= self.settings.max_hits:
                break
            if message_id in chosen:
                continue
            message = self.store.message(message_id)
            group = [message]
            neighbour = self._neighbour(message, window)
            if neighbour is not None and neighbour.id not in chosen:
                group.append(neighbour)
            cost = sum(min(m.tokens, self.settings.message_tokens) + 12 for m in group)
            if used + cost > cap:
                continue
            for item in group:
                chosen[item.id] = item
            used += cost
            hits += 1
        return sorted(chosen.values(), key=lambda m: (m.conversation_id, m.id))

    def render(self, messages: Sequence[Message], context: TurnContext) -> str:
        zone = _zone(context.user.timezone if context.user else None, self.default_timezone)
        user_name = context.user.name if context.user else "User"
        lines = [HEADER]
        for message in messages:
            name = (message.speaker_name or user_name) if message.role == "user" else context.persona.name
            text = message.content
            if message.tokens > self.settings.message_tokens:
                text = truncate_to_tokens(text, self.settings.message_tokens)
            lines.append(f"[{stamp(from_text(message.created_at), zone)}] {name}: {text}")
        return "\n".join(lines)

    def tail_parts(self, context: TurnContext) -> Sequence[TailPart]:
        vector = self._query_vectors.pop((context.conversation.id, context.query), None)
        messages = self.recalled(context, vector)
        if not messages:
            return ()
        return [TailPart("recall", self.render(messages, context), tuple(m.id for m in messages))]

    # -- embeddings -----------------------------------------------------------------------
    async def before_turn(self, context: TurnContext) -> None:
        if self.embedder is None or not context.query.strip():
            return
        [vector] = await self.embedder.embed([context.query])
        self._query_vectors[(context.conversation.id, context.query)] = vector
        while len(self._query_vectors) > 64:
            self._query_vectors.popitem(last=False)

    async def after_turn(self, context: TurnContext) -> None:
        """Embed messages that have no embedding yet (a few batches per turn)."""
        if self.embedder is None or self.index is None or context.conversation.id in self._indexing:
            return
        self._indexing.add(context.conversation.id)
        try:
            missing = self.index.missing(self.scope(context.conversation), limit=256)
            if missing:
                vectors = await self.embedder.embed([text for _, text in missing])
                self.index.save([(message_id, vector) for (message_id, _), vector in zip(missing, vectors)])
        finally:
            self._indexing.discard(context.conversation.id)

    async def close(self) -> None:
        if self.embedder is not None:
            await self.embedder.close()

