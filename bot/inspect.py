"""The context inspector's two views of an assembled request: the exact JSON, and a
readable summary with the share of the window each section takes."""

from __future__ import annotations

from memory.assembly import AssembledRequest

SECTION_ORDER = ("system", "documents", "memory", "history", "tail:time", "tail:facts", "tail:lore",
                 "tail:recall", "tail:passages", "tail:frame", "user")


def recalled(request: AssembledRequest) -> tuple[int, int]:
    """(tokens, messages) of recalled old turns this request carries in its tail."""
    parts = [part for m in request.messages for part in m.parts or [] if part.section == "recall"]
    return sum(p.tokens for p in parts), sum(len(p.source_ids or ()) for p in parts)


def request_json(request: AssembledRequest, model: str) -> dict:
    tokens, messages = recalled(request)
    return {
        "model": model,
        "window": request.budget.window,
        "total_tokens": request.total_tokens,
        "tail_tokens": request.tail_tokens,
        "recalled_tokens": tokens,
        "recalled_messages": messages,
        "messages": [message.as_json() for message in request.messages],
    }


def render_summary(request: AssembledRequest, model: str) -> str:
    window = request.budget.window
    totals = request.section_tokens()
    history_messages = sum(1 for m in request.messages if m.section == "history")
    lines = [
        f"model {model}, window {window:,} tokens, reply reserve {request.budget.reply_tokens:,}",
        f"request: {len(request.messages)} messages, {request.total_tokens:,} tokens "
        f"({request.total_tokens / window:.1%} of the window)",
        "",
        f"{'section':<16}{'tokens':>10}{'share':>9}",
    ]
    for section in sorted(totals, key=lambda s: SECTION_ORDER.index(s) if s in SECTION_ORDER else 99):
        label = f"{section} ({history_messages} msgs)" if section == "history" else section
        lines.append(f"{label:<16}{totals[section]:>10,}{totals[section] / window:>9.1%}")
    free = window - request.budget.reply_tokens - request.total_tokens
    lines.append(f"{'free':<16}{free:>10,}{free / window:>9.1%}")
    tokens, messages = recalled(request)
    if messages:
        lines.append(f"recalled: {messages} old messages, {tokens:,} tokens (uncached: paid on every turn)")
    if request.omitted_tail:
        lines.append(f"left out of the tail (no room): {', '.join(request.omitted_tail)}")
    return "\n".join(lines)
