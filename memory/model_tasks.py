"""One-shot background requests to the model (summaries, fact extraction) and reading
their answers.

A background task speaks the conversation's language (`conversation_language`), runs
through the same `ModelClient.stream_chat` as a reply (same retries, same endpoint; no
sink, so nothing is shown; `task=` puts it behind turns at the endpoint's gate), and reads
the answer defensively: models wrap JSON in code fences, add a sentence before or after
it, or stop in the middle of it. `json_items` recovers every complete object it can find
instead of failing on the first flaw.

**Riding the conversation's cache.** A task that reads the conversation is sent as the
conversation's own request (`TaskPrompt.prefix`: the same system message, static part and
history, byte for byte, up to the last message the task reads) followed by one user
message: the task's instruction. The provider's prompt cache (or a local server's slot)
then serves the whole conversation, and the next turn finds it still cached. Its
standalone form (`system` + `text`: instructions and the excerpt quoted) is used where that
cannot hold: a different `COMPANION_MEMORY_MODEL` (another model has another cache),
messages already outside the window (a dropped or imported backlog), or no conversation.
Those calls are rare and batched (one request per chunk of thousands of tokens).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from memory.model_client import ModelClient
from memory.textsearch import _CJK_CHARS

_CJK = re.compile(f"[{_CJK_CHARS}]")
_LATIN = re.compile(r"[A-Za-z]")
_FENCE = re.compile(r"^\s*```[\w-]*\s*\n?|\n?\s*```\s*$")


def conversation_language(texts: Iterable[str], hint: str | None = None) -> str:
    """"zh" when the text is mostly Chinese (by characters against Latin letters), else "en".

    The user's declared language decides only when the text says nothing either way.
    """
    cjk = latin = 0
    for text in texts:
        cjk += len(_CJK.findall(text))
        latin += len(_LATIN.findall(text))
    if cjk or latin:
        # a Chinese character carries about as much as a short English word
        return "zh" if cjk * 3 >= latin else "en"
    return "zh" if (hint or "").lower().startswith("zh") else "en"


def strip_fences(text: str) -> str:
    """The text without a surrounding Markdown code fence."""
    return _FENCE.sub("", text.strip()).strip()


def json_items(text: str, list_key: str) -> list[dict[str, Any]]:
    """Every object of the answer's list `list_key` (or of a bare list), recovering what
    it can from output that is fenced, surrounded by prose, or cut off."""
    text = strip_fences(text)
    decoder = json.JSONDecoder()
    for start in (i for i, c in enumerate(text) if c in "{["):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and isinstance(value.get(list_key), list):
            return [item for item in value[list_key] if isinstance(item, dict)]
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
        if isinstance(value, dict) and list_key not in value:
            break  # a lone object: fall through to salvaging objects one by one
    # Cut off or malformed: take each complete innermost object in turn.
    items: list[dict[str, Any]] = []
    position = 0
    while (start := text.find("{", position)) != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        if isinstance(value, dict) and list_key not in value:
            items.append(value)
        position = end
    return items


_TASK_FRAME = {
    "en": "[A task for you, not a message from the user: step out of the role for this one answer.]",
    "zh": "【这是给你的任务，不是用户发来的消息：这一次回答请跳出角色。】",
}

Prefix = Callable[[], "list[dict[str, str]] | None"]


@dataclass
class TaskPrompt:
    """A task in both forms: standalone (`system` + `text`), and, when `prefix` is given,
    `instruction` after the conversation's own request (see the module docstring)."""

    system: str
    text: str
    instruction: str | None = None
    prefix: Prefix | None = None
    prefix_cache_key: str | None = None  # the conversation's cache key, for the prefixed form
    language: str = "en"
    prefixed: bool = False  # whether the last request built was the prefixed form

    def messages(self) -> list[dict[str, str]]:
        """Built when the request is sent, so the prefix is the conversation's newest."""
        head = self.prefix() if self.prefix is not None and self.instruction else None
        self.prefixed = bool(head)
        if head:
            return [*head, {"role": "user", "content": f"{_TASK_FRAME[self.language]}\n\n{self.instruction}"}]
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.text}]


async def ask(client: ModelClient, *, model: str, system: str = "", user: str = "", max_tokens: int,
              cache_key: str, task: str = "memory", prompt: TaskPrompt | None = None) -> str:
    """The model's whole answer to one task (raises ModelError): `prompt`, or a standalone
    system + user pair. Sent as background work (`task`), behind the turns."""
    prompt = prompt or TaskPrompt(system, user)
    prefixed = prompt.prefix is not None and prompt.instruction is not None
    completion = await client.stream_chat(
        model=model, messages=prompt.messages, max_tokens=max_tokens, temperature=0.2,
        cache_key=(prompt.prefix_cache_key or cache_key) if prefixed else cache_key, task=task,
    )
    return completion.text
