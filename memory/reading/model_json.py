"""Reading JSON out of what a model actually writes.

Asked for JSON, real models wrap it in Markdown code fences, put a sentence before or
after it, use "smart" quotes around it, leave a trailing comma, or stop in the middle
(the reply hit its token limit). `parse_model_json` takes the first JSON object or
array in the text and, when it is cut off, the longest prefix of it that closes into
valid JSON (so the complete items of a half-written list are kept). It returns None
when there is no JSON at all; it never raises.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|$)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_decoder = json.JSONDecoder()


def parse_model_json(text: str) -> Any | None:
    if not text:
        return None
    candidates = [match.group(1) for match in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        value = _first_value(candidate)
        if value is not None:
            return value
    return None


def _first_value(text: str) -> Any | None:
    for index, char in enumerate(text):
        if char not in "{[":
            continue
        fragment = text[index:]
        for attempt in (fragment, _TRAILING_COMMA.sub(r"\1", fragment)):
            try:
                return _decoder.raw_decode(attempt)[0]
            except ValueError:
                pass
        repaired = _close_prefix(_TRAILING_COMMA.sub(r"\1", fragment))
        if repaired is not None:
            return repaired
    return None


def _close_prefix(fragment: str) -> Any | None:
    """The longest prefix of a cut-off JSON value that closes into valid JSON."""
    stack: list[str] = []
    in_string = escaped = False
    cuts: list[tuple[int, tuple[str, ...]]] = []
    for index, char in enumerate(fragment):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]":
            if not stack:
                break
            stack.pop()
            cuts.append((index + 1, tuple(stack)))
            if not stack:
                break
        elif char == ",":
            cuts.append((index, tuple(stack)))
    else:
        tail = fragment.rstrip()
        if not in_string and tail[-1:] not in ("{", "[", ":", ","):  # ends right after a value: keep it
            cuts.append((len(tail), tuple(stack)))
    for end, open_brackets in reversed(cuts):
        try:
            return json.loads(fragment[:end] + "".join(reversed(open_brackets)))
        except ValueError:
            continue
    return None


def text_field(data: dict, *names: str) -> str:
    """The first of `names` that holds a string (or a list of strings, joined)."""
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return "; ".join(v.strip() for v in value if v.strip())
    return ""


def string_list(value: Any) -> list[str]:
    """A list of non-empty strings from a list, or from one comma/、-separated string."""
    if isinstance(value, str):
        value = re.split(r"[,，、;；/]", value)
    if not isinstance(value, list):
        return []
    return [item.strip() for item in value if isinstance(item, str) and item.strip()]
