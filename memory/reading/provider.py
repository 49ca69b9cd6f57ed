"""Lossless reading: the context provider that puts attached documents into requests.

The rule (per conversation, documents in the order they were attached):

* The documents may take `share` (default 60%) of the prompt budget left after the
  per-turn tail and the persona's system text, so the history keeps at least the
  other 40%.
* A document whose text (up to the timeline's chapter, if one is set) fits in what is
  left of that room goes into the static part **verbatim**, the whole text.
* Any other document is **summarized**: the static part holds its chapter summaries
  (made once by the model, in the background, and kept), and each new message brings
  the passages of that document that best match it (full-text search, CJK and Latin;
  at most `passage_tokens`, 3000 by default, or half the tail) into the tail. Until
  its summaries exist, the static part holds its chapter list.
  If even the summaries do not fit, each is cut to a length from a fixed ladder; if
  that fails too, the chapter list (or the bare header) stands in.

The decision is persisted per attachment and reused turn after turn, so a small drift
of the token calibration cannot flip a book between verbatim and summarized (which
would cost a cache miss each time). It is taken again when documents are attached or
detached, when the timeline changes, or when the persisted verbatim documents no longer
fit the room by a wide margin (a smaller window after a context-length error).

Rendered blocks are cached in memory (bounded by characters), keyed by what they
depend on, so a turn never re-reads or re-counts a book: the token count of a verbatim
block is the stored count of its passages plus its small header.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

from memory.assembly import StaticBlock, TailPart
from memory.engine import ContextProvider, Engine, TurnContext
from memory.reading.render import (
    INTRO,
    contents_block,
    documents_message,
    passages_text,
    summaries_block,
    verbatim_block,
)
from memory.reading.store import Attachment, DocumentStore, StoredChapter
from memory.reading.summaries import Summarizer
from memory.records import Conversation, User
from memory.tokens import count_tokens, truncate_to_tokens

DOCUMENTS_SHARE = 0.6
HEADER_TOKENS = 120  # allowance for a document's markers and header lines
KEEP_DECISION_SLACK = 1.2  # persisted verbatim documents may exceed the room by this factor
SUMMARY_LADDER = (10_000, 400, 300, 200, 150, 100, 75, 50, 35, 24)  # tokens per summary
CACHE_CHARS = 24_000_000
PASSAGE_TOKENS = 3000  # the passages of one turn together, at most (a quarter of a small tail)


@dataclass(frozen=True)
class PlannedDocument:
    attachment: Attachment
    mode: str  # verbatim | summaries

    @property
    def document_id(self) -> int:
        return self.attachment.document.id


class ReadingProvider(ContextProvider):
    def __init__(self, documents: DocumentStore, summarizer: Summarizer, *, share: float = DOCUMENTS_SHARE,
                 passages_per_turn: int = 6, passage_tokens: int = PASSAGE_TOKENS, cache_chars: int = CACHE_CHARS):
        self.documents = documents
        self.summarizer = summarizer
        self.share = share
        self.passages_per_turn = passages_per_turn
        self.passage_tokens = passage_tokens
        self.cache_chars = cache_chars
        self._blocks: OrderedDict[tuple, tuple[str, int]] = OrderedDict()
        self._cached_chars = 0
        self._chapters: dict[int, list[StoredChapter]] = {}
        self._system_counts: dict[str, int] = {}

    def forget_user(self, user_id: int) -> None:
        """A step of the forget cascade. The blocks held in memory are keyed by document id,
        and SQLite gives a deleted document's id to the next one stored: without this, the
        next user's document could be answered with the forgotten one's text."""
        self._blocks.clear()
        self._cached_chars = 0
        self._chapters.clear()

    @cached_property
    def _intro_tokens(self) -> int:
        # On first use, not at construction: loading the tokenizer takes 1-2 s, which every
        # `companion` command paid, even one that refuses an empty file.
        return count_tokens(INTRO) + 2

    # -- the decision ---------------------------------------------------------------------------
    def room(self, context: TurnContext) -> int:
        """Tokens all attached documents together may take in the static part: the share
        of what the system message and the tail leave of the prompt."""
        budget = context.budget
        left = budget.prompt_limit - budget.ours(budget.tail_tokens) - self._system_tokens(context)
        return max(0, int(self.share * left))

    def _system_tokens(self, context: TurnContext) -> int:
        """The persona's part of the system message (what the engine adds around it is small)."""
        user = context.user
        text = context.persona.system_text(user.name if user else "User", (user.me_description or "") if user else "")
        tokens = self._system_counts.get(text)
        if tokens is None:
            if len(self._system_counts) > 256:
                self._system_counts.clear()
            tokens = self._system_counts[text] = count_tokens(text)
        return tokens

    def verbatim_tokens(self, attachment: Attachment) -> int:
        return self.documents.tokens_upto(attachment.document.id, attachment.limit) + HEADER_TOKENS

    def plan(self, context: TurnContext) -> list[PlannedDocument]:
        """Verbatim or summarized, for each attached document (persisted; see the module doc)."""
        conversation_id = context.conversation.id
        attachments = self.documents.attachments(conversation_id)
        if not attachments:
            return []
        room = self.room(context)
        if all(a.mode is not None for a in attachments):
            kept = sum(self.verbatim_tokens(a) for a in attachments if a.mode == "verbatim")
            if kept <= room * KEEP_DECISION_SLACK:
                return [PlannedDocument(a, a.mode) for a in attachments]
        modes: dict[int, str] = {}
        used = 0
        for attachment in attachments:
            need = self.verbatim_tokens(attachment)
            if used + need <= room:
                modes[attachment.document.id] = "verbatim"
                used += need
            else:
                modes[attachment.document.id] = "summaries"
        self.documents.set_modes(conversation_id, modes)
        return [PlannedDocument(a, modes[a.document.id]) for a in attachments]

    # -- the static part --------------------------------------------------------------------------
    def static_blocks(self, context: TurnContext) -> Sequence[StaticBlock]:
        planned = self.plan(context)
        if not planned:
            return ()
        verbatim = [p for p in planned if p.mode == "verbatim"]
        summarized = [p for p in planned if p.mode == "summaries"]
        taken = self._intro_tokens + sum(self.verbatim_tokens(p.attachment) + 1 for p in verbatim)
        left = self.room(context) - taken
        each = max(0, left // len(summarized) - 1) if summarized else 0
        rendered = [self._verbatim(p.attachment) if p.mode == "verbatim" else self._condensed(p.attachment, each)
                    for p in planned]
        content = documents_message([text for text, _ in rendered])
        tokens = self._intro_tokens + sum(tokens + 1 for _, tokens in rendered)
        return [StaticBlock("documents", content, tokens, tuple(f"document:{p.document_id}" for p in planned))]

    def _verbatim(self, attachment: Attachment) -> tuple[str, int]:
        document, limit = attachment.document, attachment.limit
        key = ("verbatim", document.id, limit)
        cached = self._cached(key)
        if cached is None:
            text = self.documents.text(document.id, limit)
            block = verbatim_block(document, text, self.chapters(document.id), limit)
            frame = block.replace(text, "", 1)
            cached = self._remember(key, block, self.documents.tokens_upto(document.id, limit) + count_tokens(frame))
        return cached

    def _condensed(self, attachment: Attachment, room: int) -> tuple[str, int]:
        """Summaries within `room` tokens, else the chapter list, else the bare header."""
        document, limit = attachment.document, attachment.limit
        chapters = self.chapters(document.id)
        if self.summarizer.is_complete(document.id):
            lines = None  # read only when a block must be rendered
            for cap in SUMMARY_LADDER:
                key = ("summaries", document.id, limit, cap)
                cached = self._cached(key)
                if cached is None:
                    lines = lines or self.summarizer.lines(document.id, limit)
                    capped = [type(line)(line.chapter_index, truncate_to_tokens(line.summary, cap, "…"))
                              for line in lines]
                    block = summaries_block(document, chapters, capped, limit)
                    cached = self._remember(key, block, count_tokens(block))
                if cached[1] <= room:
                    return cached
        for with_chapters in (True, False):
            key = ("contents", document.id, limit, with_chapters)
            cached = self._cached(key)
            if cached is None:
                block = contents_block(document, chapters, limit, with_chapters=with_chapters)
                cached = self._remember(key, block, count_tokens(block))
            if cached[1] <= room or not with_chapters:
                return cached
        raise AssertionError("unreachable")

    def chapters(self, document_id: int) -> list[StoredChapter]:
        chapters = self._chapters.get(document_id)
        if chapters is None:
            if len(self._chapters) > 1024:
                self._chapters.clear()
            chapters = self._chapters[document_id] = self.documents.chapters(document_id)
        return chapters

    def _cached(self, key: tuple) -> tuple[str, int] | None:
        value = self._blocks.get(key)
        if value is not None:
            self._blocks.move_to_end(key)
        return value

    def _remember(self, key: tuple, text: str, tokens: int) -> tuple[str, int]:
        self._blocks[key] = (text, tokens)
        self._cached_chars += len(text)
        while self._cached_chars > self.cache_chars and len(self._blocks) > 1:
            _, (old, _) = self._blocks.popitem(last=False)
            self._cached_chars -= len(old)
        return text, tokens

    # -- the tail ---------------------------------------------------------------------------------
    def tail_parts(self, context: TurnContext) -> Sequence[TailPart]:
        """The passages of summarized documents that best match the new message."""
        if not context.query.strip():
            return ()
        planned = [p for p in self.plan(context) if p.mode == "summaries"]
        if not planned:
            return ()
        query = context.query
        link = self.documents.persona_link(context.persona.id)
        if link is not None and any(p.document_id == link.document_id for p in planned):
            query += " " + link.character_name  # the character's own scenes rank first
        scopes = [(p.document_id, p.attachment.limit) for p in planned]
        found = self.documents.search_passages(scopes, query, limit=self.passages_per_turn)
        room = min(self.passage_tokens, context.budget.ours(context.budget.tail_tokens) // 2)
        kept, used = [], 0
        for passage in found:  # best first, within the room (stored counts: nothing to count here)
            if kept and used + passage.tokens > room:
                break
            kept.append(passage)
            used += passage.tokens
        found = kept
        if not found:
            return ()
        order = {p.document_id: index for index, p in enumerate(planned)}
        documents = {p.document_id: p.attachment.document for p in planned}
        found.sort(key=lambda passage: (order[passage.document_id], passage.id))
        rows = []
        for passage in found:
            chapters = self.chapters(passage.document_id)
            title = chapters[passage.chapter_index].title if passage.chapter_index is not None else None
            rows.append((documents[passage.document_id], title, passage))
        return [TailPart("passages", passages_text(rows), tuple(f"passage:{p.id}" for p in found))]

    # -- background ---------------------------------------------------------------------------------
    async def after_turn(self, context: TurnContext) -> None:
        """Summaries of summarized documents start in the background (never awaited here)."""
        self.schedule_summaries(context)

    def schedule_summaries(self, context: TurnContext) -> list[PlannedDocument]:
        """Decide (right after an attach, or after a turn) and start summaries where needed."""
        planned = self.plan(context)
        for item in planned:
            if item.mode == "summaries":
                self.summarizer.schedule(item.document_id)
        return planned


def context_for(engine: Engine, conversation: Conversation, user: User | None) -> TurnContext:
    """What a turn of this conversation would give the provider (for deciding outside a turn)."""
    persona = engine.persona(conversation.persona_id)
    budget = engine.budget(persona.model.model or engine.settings.model, persona=persona)
    return TurnContext(conversation, persona, user, "", budget)
