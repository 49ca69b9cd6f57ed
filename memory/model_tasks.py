"""One-shot background requests to the model (summaries, fact extraction) and reading
their answers.

A background task speaks the conversation's language (`conversation_language`), runs
through the same `ModelClient.stream_chat` as a reply (same retries, same endpoint; no
sink, so nothing is shown), and reads the answer defensively: models wrap JSON in code
fences, add a sentence before or after it, or stop in the middle of it. `json_items`
recovers every complete object it can find instead of failing on the first flaw.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

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


async def ask(client: ModelClient, *, model: str, system: str, user: str, max_tokens: int,
              cache_key: str) -> str:
    """The model's whole answer to one system + user prompt (raises ModelError)."""
    completion = await client.stream_chat(
        model=model, messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        max_tokens=max_tokens, temperature=0.2, cache_key=cache_key,
    )
    return completion.text
