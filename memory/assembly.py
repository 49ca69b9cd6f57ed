"""Request assembly: from persona, static context, history and budget to the exact
messages to send. A pure function of its inputs; the caller persists what it decides.

Layout (cache-stable, see ../shared/STYLE.md):

    system     one leading system message (operator rules, persona, user persona)
    documents  attached documents, verbatim                      } static: change rarely
    memory     summaries and pinned facts                         }
    history    verbatim turns from the persisted boundary on, oldest first, byte-identical
    user       the newest user message, with the per-turn TAIL (time, lore, recall,
               passages, new facts) folded in after the user's words, delimited

The tail is never stored, so the next request repeats this one byte for byte up to the
end of the user's words in its final message: the tail comes after them, so the user's
words stay cached, and only the tail and what follows it (the reply) are evaluated again.
That is why the tail holds only what is news for this turn; whatever the history already
shows (the time, see memory/timeline.py; facts whose messages are in the window) stays
out of it, and a turn with an empty tail extends the previous request exactly, reply
included. The tail has its own budget, so its size never moves the history boundary.
When the history outgrows its budget, the boundary moves forward in one large step (a
quarter of the window) instead of one turn per request, so only that one request misses
the provider's prefix cache.

All token figures here are o200k counts. The window, the reply reserve and the tail
budget are in the provider's tokens; `Budget.ratio` (provider tokens per o200k token,
learnt from reported usage) converts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from memory.records import HistoryRow
from memory.tokens import MESSAGE_OVERHEAD, REQUEST_OVERHEAD, count_tokens, truncate_to_tokens

TAIL_SECTIONS = ("time", "facts", "lore", "recall", "passages")  # in priority order
TAIL_HEADER = "[Context for this turn — background for you, not written by the user]"
TAIL_FOOTER = "[End of context. Answer the user's message above it.]"


class ContextTooSmall(ValueError):
    """The fixed parts of the request alone do not fit the window."""


@dataclass(frozen=True)
class Budget:
    window: int  # the model's context window, provider tokens
    reply_tokens: int  # reserved for the reply
    tail_tokens: int  # reserved for the per-turn tail
    ratio: float = 1.0  # provider tokens per o200k token

    @classmethod
    def for_window(cls, window: int, reply_tokens: int | None = None, tail_tokens: int | None = None,
                   ratio: float = 1.0) -> "Budget":
        return cls(
            window=window,
            reply_tokens=reply_tokens if reply_tokens is not None else min(4096, window // 4),
            tail_tokens=tail_tokens if tail_tokens is not None else window // 10,
            ratio=ratio,
        )

    def ours(self, provider_tokens: int) -> int:
        return int(provider_tokens / self.ratio)

    @property
    def prompt_limit(self) -> int:
        """The most o200k tokens the prompt may hold."""
        return self.ours(self.window - self.reply_tokens)


@dataclass(frozen=True)
class StaticBlock:
    """A message of the static part (documents, memory), with its token count."""

    section: str  # "documents" | "memory"
    content: str
    tokens: int
    source_ids: tuple = ()


@dataclass(frozen=True)
class TailPart:
    """One piece of the per-turn tail. Its tokens are counted here (it is small)."""

    section: str  # one of TAIL_SECTIONS
    text: str
    source_ids: tuple = ()


@dataclass
class Part:
    section: str
    tokens: int
    source_ids: list | None = None

    def as_json(self) -> dict:
        data = {"section": self.section, "tokens": self.tokens}
        if self.source_ids:
            data["source_ids"] = list(self.source_ids)
        return data


@dataclass
class RequestMessage:
    role: str
    content: str
    section: str  # system | documents | memory | history | user
    tokens: int  # content tokens, without the per-message overhead
    parts: list[Part] | None = None
    source_ids: list | None = None

    def as_json(self) -> dict:
        data = {"role": self.role, "content": self.content, "section": self.section, "tokens": self.tokens}
        if self.parts:
            data["parts"] = [part.as_json() for part in self.parts]
        if self.source_ids:
            data["source_ids"] = list(self.source_ids)
        return data


@dataclass
class AssembledRequest:
    messages: list[RequestMessage]
    total_tokens: int  # o200k, including chat-format overhead
    budget: Budget
    boundary_message_id: int  # the boundary this request used
    boundary_moved: bool = False
    omitted_tail: list[str] = field(default_factory=list)  # tail sections that did not fit
    tail_tokens: int = 0  # what the tail (with its frame) adds to the last user message
    # (characters sent, characters stored) when the newest message was shortened to fit
    cut: tuple[int, int] | None = None
    final: tuple | None = field(default=None, repr=False)  # (text, tokens, ids) of the last user message
    prefix_tokens: int = field(default=0, repr=False)  # tokens of the messages before it
    prefix_length: int = field(default=-1, repr=False)  # how many messages come before it

    @property
    def room(self) -> int:
        """The o200k tokens the prompt could still take without passing the window."""
        return max(0, self.budget.prompt_limit - self.total_tokens)

    def history_start(self) -> int | None:
        """The id of the oldest stored message this request holds verbatim (None: none)."""
        ids = [i for m in self.messages if m.section in ("history", "user")
               for i in (m.source_ids or [i for part in m.parts or [] if part.section == "user"
                                          for i in part.source_ids or []])]
        return min(ids) if ids else None

    def payload(self) -> list[dict[str, str]]:
        """The `messages` argument for chat.completions."""
        return [{"role": m.role, "content": m.content} for m in self.messages]

    def section_tokens(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for message in self.messages:
            if message.parts:
                for part in message.parts:
                    key = "user" if part.section == "user" else f"tail:{part.section}"
                    totals[key] = totals.get(key, 0) + part.tokens
                totals["tail:frame"] = totals.get("tail:frame", 0) + message.tokens - sum(
                    p.tokens for p in message.parts)
            else:
                totals[message.section] = totals.get(message.section, 0) + message.tokens
        return totals


_FRAME_TOKENS: int | None = None


def _frame_tokens() -> int:
    """Tokens of the tail's header, footer and separators (constant)."""
    global _FRAME_TOKENS
    if _FRAME_TOKENS is None:
        _FRAME_TOKENS = count_tokens(f"\n\n{TAIL_HEADER}\n\n{TAIL_FOOTER}")
    return _FRAME_TOKENS


def _fit_tail(parts: Sequence[TailPart], budget_tokens: int) -> tuple[list[tuple[TailPart, str, int]], list[str]]:
    """Choose tail parts in priority order within the tail budget; truncate the one that overflows."""
    order = {section: index for index, section in enumerate(TAIL_SECTIONS)}
    ranked = sorted(parts, key=lambda p: order.get(p.section, len(order)))
    remaining = budget_tokens - _frame_tokens() - 8  # slack for merges across the joins
    chosen: list[tuple[TailPart, str, int]] = []
    omitted: list[str] = []
    for part in ranked:
        text = part.text.strip()
        if not text:
            continue
        tokens = count_tokens(text) + 1  # + the blank line between parts
        if tokens > remaining and remaining > 64:
            text = truncate_to_tokens(text, remaining - 2)
            tokens = count_tokens(text) + 1
        if tokens > remaining:
            omitted.append(part.section)
            continue
        chosen.append((part, text, tokens))
        remaining -= tokens
    return chosen, omitted


def _current_turn_start(history: Sequence[HistoryRow]) -> int:
    """Index of the first message of the current turn: the trailing user messages."""
    index = len(history)
    while index > 0 and history[index - 1].role == "user":
        index -= 1
    return index


def _move_boundary(history: Sequence[HistoryRow], keep_from: int, budget_tokens: int,
                   step_tokens: int) -> int:
    """Index of the first history row to keep after moving the boundary in one large step.

    Drops the oldest whole turns until what is left fits `budget_tokens - step` (so the
    boundary then stays put for about `step` tokens of new conversation), never dropping
    the current turn, and starts the kept history at a user message when it can.
    """
    target = budget_tokens - min(step_tokens, budget_tokens // 2)
    remaining = sum(row.tokens + MESSAGE_OVERHEAD for row in history)
    start = 0
    while start < keep_from and remaining > target:
        remaining -= history[start].tokens + MESSAGE_OVERHEAD
        start += 1
    while start < keep_from and history[start].role != "user":
        start += 1
    return start


def assemble(
    *,
    system_text: str,
    system_tokens: int,
    history: Sequence[HistoryRow],
    boundary_message_id: int,
    budget: Budget,
    static_blocks: Sequence[StaticBlock] = (),
    tail_parts: Sequence[TailPart] = (),
    final_user_text: str | None = None,
) -> AssembledRequest:
    """Build the request. `history` holds the visible messages from the boundary on, the
    newest user message(s) last; `final_user_text` adds an unstored final user message
    (an instruction such as "continue", or a preview in the context inspector).

    The tail takes at most its reserve here; `with_tail` then lets it fill the room the
    history left (recall, see `Engine.build_request`) without moving the boundary."""
    limit = budget.prompt_limit
    tail_budget = budget.ours(budget.tail_tokens)
    fixed = REQUEST_OVERHEAD + system_tokens + MESSAGE_OVERHEAD
    fixed += sum(block.tokens + MESSAGE_OVERHEAD for block in static_blocks)
    extra_user_tokens = 0 if final_user_text is None else count_tokens(final_user_text) + MESSAGE_OVERHEAD
    history_budget = limit - fixed - tail_budget - extra_user_tokens
    if history_budget < 64:
        raise ContextTooSmall(
            f"the system prompt and static context take {fixed} tokens, leaving no room for the "
            f"conversation in a window of {budget.window} tokens"
        )

    rows = list(history)
    turn_start = _current_turn_start(rows) if final_user_text is None else len(rows)
    boundary_moved = False
    history_tokens = sum(row.tokens + MESSAGE_OVERHEAD for row in rows)
    if history_tokens > history_budget:
        start = _move_boundary(rows, turn_start, history_budget, budget.ours(budget.window) // 4)
        if start > 0:
            rows = rows[start:]
            turn_start -= start
            boundary_message_id = rows[0].id if rows else boundary_message_id
            boundary_moved = True
            history_tokens = sum(row.tokens + MESSAGE_OVERHEAD for row in rows)

    messages = [RequestMessage("system", system_text, "system", system_tokens)]
    for block in static_blocks:
        messages.append(RequestMessage("user", block.content, block.section, block.tokens,
                                       source_ids=list(block.source_ids) or None))

    # The current turn alone may still be too long (a huge message at a small window):
    # then its oldest messages stay out of this request and the newest one is shortened.
    overflow = history_tokens - history_budget
    current = rows[turn_start:]
    while overflow > 0 and len(current) > 1:
        overflow -= current[0].tokens + MESSAGE_OVERHEAD
        current = current[1:]
    earlier = rows[:turn_start]
    for row in earlier:
        messages.append(RequestMessage(row.role, row.content, "history", row.tokens, source_ids=[row.id]))

    last_text, last_tokens, last_ids, cut = None, 0, None, None
    if final_user_text is not None:
        last_text, last_tokens = final_user_text, count_tokens(final_user_text)
    elif current:
        for row in current[:-1]:
            messages.append(RequestMessage(row.role, row.content, "history", row.tokens, source_ids=[row.id]))
        row = current[-1]
        last_text, last_tokens, last_ids = row.content, row.tokens, [row.id]
        if overflow > 0:
            last_text = truncate_to_tokens(row.content, max(16, row.tokens - overflow))
            last_tokens = count_tokens(last_text)
            cut = (max(0, len(last_text) - row.lead), len(row.content) - row.lead)  # of the stored text
    request = AssembledRequest(messages, 0, budget, boundary_message_id, boundary_moved, prefix_length=len(messages),
                               cut=cut)
    request.final = (last_text, last_tokens, last_ids) if last_text is not None else None
    request.prefix_tokens = REQUEST_OVERHEAD + sum(m.tokens + MESSAGE_OVERHEAD for m in messages)
    return with_tail(request, tail_parts, tail_budget)


def with_tail(request: AssembledRequest, tail_parts: Sequence[TailPart], tail_room: int) -> AssembledRequest:
    """The request with this tail folded into its last user message, within `tail_room`
    tokens; everything before that message is kept as it is (no second assembly)."""
    chosen, omitted = _fit_tail(tail_parts, tail_room)
    messages = list(request.messages[:request.prefix_length])
    tail_tokens = 0
    if request.final is not None:
        last_text, last_tokens, last_ids = request.final
        if chosen:
            tail_text = "\n\n".join(text for _, text, _ in chosen)
            # after the user's words, so that they stay in the next request's cached prefix
            framed = f"{TAIL_HEADER}\n{tail_text}\n{TAIL_FOOTER}"
            content = f"{last_text}\n\n{framed}" if last_text else framed
            parts = [Part("user", last_tokens, last_ids)]
            parts += [Part(part.section, tokens, list(part.source_ids) or None) for part, _, tokens in chosen]
            tokens = count_tokens(content)  # exact: BPE may merge across the joins
            tail_tokens = tokens - last_tokens
            messages.append(RequestMessage("user", content, "user", tokens, parts=parts))
        else:
            messages.append(RequestMessage("user", last_text, "user", last_tokens, source_ids=last_ids))
    total = request.prefix_tokens + sum(m.tokens + MESSAGE_OVERHEAD for m in messages[request.prefix_length:])
    result = AssembledRequest(messages, total, request.budget, request.boundary_message_id, request.boundary_moved,
                              omitted, tail_tokens, cut=request.cut)
    result.final, result.prefix_tokens, result.prefix_length = request.final, request.prefix_tokens, \
        request.prefix_length
    return result
