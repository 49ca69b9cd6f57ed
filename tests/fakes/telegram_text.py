"""How the fake Bot API server reads message text the way Telegram does.

Telegram turns `text` + `parse_mode` (or `text` + explicit `entities`) into plain text and
a list of MessageEntity objects, measuring every offset in UTF-16 code units, and refuses
bad input with a 400 whose description the real server uses ("can't parse entities: ...",
"message is too long", "message text is empty"). The fake must refuse the same things, or
the product's fallbacks for them are never exercised.

HTML follows https://core.telegram.org/bots/api#html-style: only the listed tags, only the
named entities &lt; &gt; &amp; &quot; plus numeric ones, tags must nest properly.
MarkdownV2 follows #markdownv2-style closely enough to refuse what the real parser
refuses most often: a reserved character that is not escaped, and an entity left open.
Legacy "Markdown" is read as MarkdownV2 without the reserved-character rule.
"""

from __future__ import annotations

import html
import re
from typing import Any

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


class BadRequest(Exception):
    """A 400 answer; `description` is what Telegram puts after "Bad Request: "."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


class _Output:
    """Plain text being built, with its length in UTF-16 units (where entities start)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0

    def write(self, piece: str) -> None:
        self.parts.append(piece)
        self.length += utf16_len(piece)

    def text(self) -> str:
        return "".join(self.parts)


# -- HTML ---------------------------------------------------------------------------------

_SIMPLE_TAGS = {
    "b": "bold", "strong": "bold",
    "i": "italic", "em": "italic",
    "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_OTHER_TAGS = {"a", "span", "tg-emoji", "tg-time"}
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)\s*(/?)>"
)
_ATTR = re.compile(r"([A-Za-z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)))?")
_CHAR_REF = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|lt|gt|amp|quot);")


def _attributes(raw: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _ATTR.finditer(raw):
        value = next((g for g in match.groups()[1:] if g is not None), "")
        found[match.group(1).lower()] = html.unescape(value)
    return found


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Output()
    stack: list[tuple[str, dict[str, Any] | None, int]] = []  # (tag, entity, start offset)
    entities: list[dict[str, Any]] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "<":
            match = _TAG.match(source, index)
            if not match:
                raise BadRequest(
                    f"can't parse entities: Unexpected end of name token at byte offset "
                    f"{_byte_offset(source, index)}")
            closing, name, raw_attrs, _ = match.groups()
            name = name.lower()
            if closing:
                if not stack:
                    raise BadRequest(
                        f"can't parse entities: Unexpected end tag at byte offset "
                        f"{_byte_offset(source, index)}")
                open_name, entity, start = stack.pop()
                if open_name != name:
                    raise BadRequest(
                        f"can't parse entities: Can't find end tag corresponding to start tag "
                        f"\"{open_name}\"")
                if entity is not None and out.length > start:
                    entity.update(offset=start, length=out.length - start)
                    entities.append(entity)
            else:
                entity = _entity_for_tag(name, _attributes(raw_attrs), source, index, stack)
                stack.append((name, entity, out.length))
            index = match.end()
        elif char == "&":
            match = _CHAR_REF.match(source, index)
            if match:
                out.write(html.unescape(match.group(0)))
                index = match.end()
            else:
                out.write("&")
                index += 1
        else:
            next_special = min(
                (pos for pos in (source.find("<", index), source.find("&", index)) if pos != -1),
                default=len(source),
            )
            out.write(source[index:next_special])
            index = next_special
    if stack:
        raise BadRequest(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    _merge_code_into_pre(entities)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.text(), entities


def _entity_for_tag(name: str, attrs: dict[str, str], source: str, index: int,
                    stack: list[tuple[str, dict[str, Any] | None, int]]) -> dict[str, Any] | None:
    if name in _SIMPLE_TAGS:
        kind = _SIMPLE_TAGS[name]
        if kind == "blockquote" and "expandable" in attrs:
            kind = "expandable_blockquote"
        entity: dict[str, Any] = {"type": kind}
        if name == "code" and stack and stack[-1][0] == "pre":
            language = attrs.get("class", "")
            entity["language"] = language[len("language-"):] if language.startswith("language-") else ""
            entity["_inside_pre"] = True
        return entity
    if name == "a":
        href = attrs.get("href")
        if not href:
            return None
        if href.startswith("tg://user?id="):
            return {"type": "text_mention", "user": {"id": int(href.split("=", 1)[1]),
                                                     "is_bot": False, "first_name": ""}}
        return {"type": "text_link", "url": href}
    if name == "span" and attrs.get("class") == "tg-spoiler":
        return {"type": "spoiler"}
    if name == "tg-emoji" and "emoji-id" in attrs:
        return {"type": "custom_emoji", "custom_emoji_id": attrs["emoji-id"]}
    if name == "tg-time" and "unix" in attrs:
        return {"type": "date_time", "unix_time": int(attrs["unix"])}
    raise BadRequest(
        f"can't parse entities: Unsupported start tag \"{name}\" at byte offset "
        f"{_byte_offset(source, index)}")


def _merge_code_into_pre(entities: list[dict[str, Any]]) -> None:
    """<pre><code class="language-x"> is one pre entity with a language, as Telegram reports it."""
    for code in [e for e in entities if e.pop("_inside_pre", False)]:
        for pre in entities:
            if pre["type"] == "pre" and pre["offset"] == code["offset"] and pre["length"] == code["length"]:
                if code["language"]:
                    pre["language"] = code["language"]
                entities.remove(code)
                break
        else:
            code.pop("language", None)


# -- MarkdownV2 ---------------------------------------------------------------------------

_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MARKERS = [("```", "pre"), ("||", "spoiler"), ("__", "underline"), ("*", "bold"),
            ("_", "italic"), ("~", "strikethrough"), ("`", "code")]


def parse_markdown(source: str, *, strict: bool) -> tuple[str, list[dict[str, Any]]]:
    out = _Output()
    stack: list[tuple[str, int, int]] = []  # (kind, start offset, source index)
    entities: list[dict[str, Any]] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source):
            out.write(source[index + 1])
            index += 2
            continue
        if source.startswith("```", index) or char == "`":
            fence = "```" if source.startswith("```", index) else "`"
            end = source.find(fence, index + len(fence))
            if end == -1:
                raise BadRequest(f"can't parse entities: Can't find end of the entity starting at "
                                 f"byte offset {_byte_offset(source, index)}")
            body = source[index + len(fence):end]
            entity: dict[str, Any] = {"type": "pre" if fence == "```" else "code"}
            if fence == "```":
                first_line, newline, rest = body.partition("\n")
                if newline and first_line and " " not in first_line:
                    entity["language"] = first_line
                    body = rest
            start = out.length
            out.write(re.sub(r"\\([`\\])", r"\1", body))
            entity.update(offset=start, length=out.length - start)
            entities.append(entity)
            index = end + len(fence)
            continue
        if char == "[":
            match = re.match(r"\[((?:\\.|[^\]\\])*)\]\(((?:\\.|[^)\\])*)\)", source[index:], re.S)
            if match:
                inner_text, inner_entities = parse_markdown(match.group(1), strict=strict)
                start = out.length
                out.write(inner_text)
                for inner in inner_entities:
                    inner["offset"] += start
                    entities.append(inner)
                url = re.sub(r"\\(.)", r"\1", match.group(2))
                entities.append({"type": "text_link", "offset": start, "length": out.length - start,
                                 "url": url})
                index += match.end()
                continue
        marker = next(((m, kind) for m, kind in _MARKERS[1:-1] if source.startswith(m, index)), None)
        if marker:
            text_marker, kind = marker
            if stack and stack[-1][0] == kind:
                _, start, _ = stack.pop()
                if out.length > start:
                    entities.append({"type": kind, "offset": start, "length": out.length - start})
            else:
                stack.append((kind, out.length, index))
            index += len(text_marker)
            continue
        if strict and char in _RESERVED:
            raise BadRequest(f"can't parse entities: Character '{char}' is reserved and must be "
                             f"escaped with the preceding '\\'")
        out.write(char)
        index += 1
    if stack:
        raise BadRequest(f"can't parse entities: Can't find end of the entity starting at byte "
                         f"offset {_byte_offset(source, stack[-1][2])}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.text(), entities


# -- entry point --------------------------------------------------------------------------

def read_text(text: Any, parse_mode: Any, entities: Any, *, limit: int = TEXT_LIMIT,
              what: str = "message text", allow_empty: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """`text` as Telegram stores it: (plain text, entities). Raises BadRequest like Telegram."""
    text = "" if text is None else str(text)
    mode = str(parse_mode or "").lower()
    if entities:
        if not isinstance(entities, list):
            raise BadRequest("can't parse entities JSON object")
        parsed = [dict(e) for e in entities]
    elif mode == "html":
        text, parsed = parse_html(text)
    elif mode in ("markdownv2", "markdown"):
        text, parsed = parse_markdown(text, strict=mode == "markdownv2")
    elif mode:
        raise BadRequest("unsupported parse_mode")
    else:
        parsed = []
    if not text.strip() and not allow_empty:
        raise BadRequest(f"{what} is empty")
    size = utf16_len(text)
    if size > limit:
        raise BadRequest("message is too long" if what == "message text" else f"{what} is too long")
    for entity in parsed:
        offset, span = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(span, int) or offset < 0 or span < 0:
            raise BadRequest("can't parse entities: entity offset and length must be non-negative integers")
        if offset + span > size:
            raise BadRequest(
                f"can't parse entities: entity of type \"{entity.get('type')}\" at offset {offset} "
                f"with length {span} is beyond the end of the text (UTF-16 length {size})")
    parsed = [e for e in parsed if e["length"] > 0]
    parsed.sort(key=lambda e: (e["offset"], -e["length"]))
    return text, parsed
