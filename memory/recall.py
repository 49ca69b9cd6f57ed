"""Recall: old verbatim turns, outside the window, that bear on the new message.

The new message is turned into search terms: lowercased words for Latin scripts (as
`unicode61` indexes them), and for Chinese the character bigrams (as `textsearch` indexes
Chinese) of the words a segmenter (jieba-rs) finds. Segmenting only the query avoids the
noise of bigrams that straddle two words ("气下" in "天气下雨") while the index stays the
dictionary-free bigram index; characters the segmenter leaves single (an unknown name
split in two) are joined back. Terms found in more than a small share of all messages
(0.3%; counts come from the FTS5 vocabulary, cached) say little about any one turn and are
left out; the rarest remaining terms are OR-ed and ranked by FTS5's BM25. That finds
"Marcus" or "小芳" said once two thousand turns ago, and keeps the query cheap at 100k
messages (common terms have the longest posting lists).

Every recalled token is paid in full on every request (the tail is never cached), so a hit
needs evidence: a very rare term (in at most 3 messages: a name said once or twice), or two
uncommon ones; one uncommon word in common is not enough. The last few turns reorder what
the new message finds (half weight), and search on their own only when the new message
has nothing to search for ("what was her name again?").

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

import rjieba

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


def _chinese_terms(run: str) -> list[str]:
    """The bigrams of the run's words: no bigram straddles two words. Characters the
    segmenter leaves single in a row (likely an unknown word such as a name) are joined
    back into bigrams; a longer word gives all its bigrams, since the segmenter often glues
    an unknown name to the character after it (小瑾会 -> 小瑾, 瑾会)."""
    terms, singles = [], ""
    for word in [*rjieba.cut(run), ""]:
        if len(word) == 1:
            singles += word
            continue
        for piece in (singles, word):
            terms += [piece[i:i + 2] for i in range(len(piece) - 1)]
        singles = ""
    return terms


def _fold(text: str) -> str:
    """Lowercased, without diacritics: how unicode61 sees Latin text."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def index_terms(text: str) -> list[str]:
    """The distinct search terms of a text, in order: lowercased Latin words without
    diacritics (as unicode61 indexes them), and the bigrams of Chinese words (as
    `textsearch` indexes Chinese); lone characters are left out."""
    terms: list[str] = []
    for piece in _PIECES.findall(text):
        if _CJK_RUN.fullmatch(piece):
            terms += _chinese_terms(piece)
        else:
            terms += [word for word in _WORD.findall(_fold(piece)) if len(word) > 1 or word.isdigit()]
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

    def count(self, token: str, total: int) -> int:
        cached = self._cache.get(token)
        if cached is not None and cached[1] * 1.1 >= total:
            self._cache.move_to_end(token)
            return cached[0]
        row = self.db.execute("SELECT doc FROM messages_fts_terms WHERE term = ?", [token]).fetchone()
        self._cache[token] = (row[0] if row else 0, total)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return self._cache[token][0]

    def counts(self, terms: Sequence[str], total: int) -> dict[str, int]:
        return {term: self.count(term, total) for term in terms}


@dataclass(frozen=True)
class RecallSettings:
    max_hits: int = 2  # ranked hits, each with its neighbour
    max_terms: int = 8  # rarest terms searched
    common_share: float = 0.003  # a term in more than this share of messages is too common…
    common_floor: int = 5  # …unless it is in at most this many
    context_messages: int = 2  # earlier turns that also inform the search
    relative_floor: float = 0.3  # a hit must score at least this share of the best one
    strong_count: int = 3  # a term in at most this many messages is evidence enough alone
    token_cap: int = 500  # most tokens of recalled text (also at most a third of the tail budget)
    message_tokens: int = 150  # a longer recalled message is shortened
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
        store.forget_hooks.append(self._forget_user)

    def _forget_user(self, user_id: int) -> None:
        """A `Store.forget_hooks` entry: nothing held in memory outlives the rows it came from."""
        if self.index is not None:
            self.index.clear()
        self._query_vectors.clear()

    # -- scope ----------------------------------------------------------------------------
    def scope(self, conversation: Conversation) -> list[int]:
        """The owner's conversations with this persona: recall reaches into earlier ones too."""
        where, params = conversation.owner.where()
        return [row[0] for row in self.db.execute(
            f"SELECT id FROM conversations WHERE {where} AND persona_id = ?",
            [*params, conversation.persona_id]).fetchall()]

    # -- ranking --------------------------------------------------------------------------
    def _search_terms(self, text: str, total: int, skip: set[str]) -> dict[str, int]:
        """The text's rarest usable terms with how many messages hold each."""
        settings = self.settings
        terms = [t for t in index_terms(text) if t not in skip]
        limit = max(settings.common_floor, int(total * settings.common_share))
        counts = self.terms.counts(terms, total)
        usable = sorted((t for t in terms if 0 < counts[t] <= limit), key=lambda t: counts[t])
        return {term: counts[term] for term in usable[:settings.max_terms]}

    def _evidence(self, content: str, terms: dict[str, int]) -> int:
        """How strongly a message matches: 2 for each very rare term it holds (a name said
        once or twice), 1 for each merely uncommon one."""
        words = set(_WORD.findall(_fold(content)))
        strength = 0
        for term, count in terms.items():
            if term in content if _CJK_RUN.match(term) else term in words:
                strength += 2 if count <= self.settings.strong_count else 1
        return strength

    def _text_ranking(self, terms: dict[str, int], scope: Sequence[int], window: tuple[int, int]) -> list[int]:
        """Messages matching the terms by BM25, best first, keeping those with enough
        evidence: one very rare term, or two uncommon ones. A single uncommon word in
        common is too weak a reason to spend tail tokens on an old turn."""
        if not terms:
            return []
        expression = " OR ".join(f'"{term}"' for term in terms)  # terms hold no quotes
        marks = ",".join("?" * len(scope))
        rows = self.db.execute(
            "SELECT m.id, bm25(messages_fts) AS score, m.content FROM messages_fts "
            "JOIN messages m ON m.id = messages_fts.rowid "
            f"WHERE messages_fts MATCH ? AND m.conversation_id IN ({marks}) AND m.status != 'hidden' "
            "AND NOT (m.conversation_id = ? AND m.id >= ?) ORDER BY score LIMIT 30",
            [expression, *scope, *window]).fetchall()
        rows = [row for row in rows if self._evidence(row[2], terms) >= 2]
        if not rows:
            return []
        best = rows[0][1]
        return [row[0] for row in rows if row[1] <= best * self.settings.relative_floor]

    def rank(self, conversation: Conversation, query: str, *, context_text: str = "",
             query_vector=None) -> list[int]:
        """Ids of the best old messages for this query, best first.

        The last turns (`context_text`) only reorder what the new message finds, unless the
        new message alone has nothing to search for ("what was her name again?")."""
        scope = self.scope(conversation)
        window = (conversation.id, conversation.boundary_message_id)
        total = self.terms.total()
        query_terms = self._search_terms(query, total, set())
        found: list[list[int]] = [self._text_ranking(query_terms, scope, window)]
        if query_vector is not None and self.index is not None:
            nearest = self.index.search(scope, query_vector, limit=20, min_similarity=self.settings.min_similarity,
                                        exclude=window)
            found.append([message_id for message_id, _ in nearest])
        fused: dict[int, float] = {}
        for ranking in found:
            for rank, message_id in enumerate(ranking):
                fused[message_id] = fused.get(message_id, 0.0) + 1 / (RRF_K + rank)
        if context_text:
            context_terms = self._search_terms(context_text, total, set(query_terms))
            for rank, message_id in enumerate(self._text_ranking(context_terms, scope, window)):
                if message_id in fused or not query_terms:
                    fused[message_id] = fused.get(message_id, 0.0) + 0.5 / (RRF_K + rank)
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
        scope = set(self.scope(conversation))
        cap = min(self.settings.token_cap, context.budget.ours(context.budget.tail_tokens) // 3)
        chosen: dict[int, Message] = {}
        used = hits = 0
        for message_id in ranked:
            if hits >= self.settings.max_hits:
                break
            if message_id in chosen:
                continue
            try:
                message = self.store.message(message_id)
            except KeyError:  # forgotten since the embeddings were loaded
                continue
            if message.conversation_id not in scope:  # an id freed by a forget and given out again
                continue
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

