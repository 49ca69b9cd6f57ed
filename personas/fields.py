"""Field types shared by the persona models.

`JsonObject` is a free-form JSON object (card `extensions`, fields of a card we keep but
do not interpret). TOML has no null, so a persona file written from a card whose
extensions hold nulls stores such an object as a JSON string; this type reads both forms.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BeforeValidator


def _parse_json_object(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"a JSON object written as text must be valid JSON ({exc.msg} at position {exc.pos})"
        ) from None
    if not isinstance(parsed, dict):
        raise ValueError("a JSON object written as text must be an object ({...})")
    return parsed


JsonObject = Annotated[dict[str, Any], BeforeValidator(_parse_json_object)]


def contains_null(value: Any) -> bool:
    """Whether a JSON value holds a null anywhere (TOML cannot write those)."""
    if value is None:
        return True
    if isinstance(value, dict):
        return any(contains_null(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_null(item) for item in value)
    return False


def text_bytes(value: Any) -> int:
    """UTF-8 bytes of all the text in a JSON-like value (strings and object keys)."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, dict):
        return sum(len(str(key).encode("utf-8")) + text_bytes(item) for key, item in value.items())
    if isinstance(value, list):
        return sum(text_bytes(item) for item in value)
    return 0


def nesting_depth(value: Any) -> int:
    """How many objects/lists deep a JSON value goes (without recursion, for hostile input)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in items)
    return deepest
