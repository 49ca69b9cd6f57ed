"""Rich character cards built from the V1/V2/V3 specs and SillyTavern's exports, for the
card and persona-file tests. Each function returns a fresh object; every field a real
card may carry is present, including ones we do not interpret, nulls, and Chinese text."""

from __future__ import annotations

import base64
import copy
import io
import json
import zlib
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo


def sillytavern_entry_extensions(**overrides: Any) -> dict[str, Any]:
    extensions = {
        "position": 0,
        "exclude_recursion": False,
        "display_index": 0,
        "probability": 100,
        "useProbability": True,
        "depth": 4,
        "selectiveLogic": 0,
        "group": "",
        "group_override": False,
        "group_weight": 100,
        "prevent_recursion": False,
        "delay_until_recursion": False,
        "scan_depth": None,
        "match_whole_words": None,
        "use_group_scoring": False,
        "case_sensitive": None,
        "automation_id": "",
        "role": 0,
        "vectorized": False,
        "sticky": 0,
        "cooldown": 0,
        "delay": 0,
        "triggers": [],
    }
    extensions.update(overrides)
    return extensions


def rich_v2_card() -> dict[str, Any]:
    data = {
        "name": "Seraphina",
        "description": "{{char}} is a guardian of the Eldoria forest. 她也会说中文。",
        "personality": "caring, protective, gentle",
        "scenario": "{{user}} wakes up in {{char}}'s glade after an attack.",
        "first_mes": "*Seraphina kneels beside you.* You're awake. Don't move too fast.",
        "mes_example": "<START>\n{{user}}: Where am I?\n{{char}}: Somewhere safe.",
        "creator_notes": "Gentle fantasy roleplay.",
        "system_prompt": "{{original}}\nWrite {{char}}'s replies in third person.",
        "post_history_instructions": "Stay gentle.",
        "alternate_greetings": ["*She hums by the fire.*", "你醒了？别急着起来。"],
        "tags": ["fantasy", "female", "中文"],
        "creator": "tester",
        "character_version": "1.2",
        "extensions": {
            "talkativeness": "0.5",
            "fav": False,
            "world": "Eldoria",
            "depth_prompt": {"prompt": "Remember the forest.", "depth": 4, "role": "system"},
            "regex_scripts": [{"scriptName": "trim", "findRegex": "/\\s+$/", "replaceString": "", "disabled": False}],
            "chub": {"id": 12345, "full_path": "tester/seraphina", "related_lorebooks": []},
            "some_tool/nullable": None,
        },
        "character_book": {
            "name": "Eldoria",
            "description": "The forest and its people",
            "scan_depth": 3,
            "token_budget": 1024,
            "recursive_scanning": False,
            "extensions": {"sillytavern_world": "Eldoria"},
            "x_unknown_book_field": {"kept": True},
            "entries": [
                {
                    "id": 0,
                    "keys": ["Eldoria", "forest"],
                    "secondary_keys": [],
                    "comment": "The forest",
                    "content": "Eldoria is an ancient forest full of magic.",
                    "constant": False,
                    "selective": True,
                    "insertion_order": 100,
                    "enabled": True,
                    "position": "before_char",
                    "use_regex": True,
                    "extensions": sillytavern_entry_extensions(),
                },
                {
                    "id": 1,
                    "keys": ["shadowclaw", "/shadow ?claws?/i"],
                    "secondary_keys": ["attack", "袭击"],
                    "comment": "",
                    "content": "Shadowclaws are corrupted beasts.",
                    "constant": False,
                    "selective": True,
                    "insertion_order": 90,
                    "enabled": True,
                    "position": "after_char",
                    "case_sensitive": None,
                    "name": "Shadowclaw",
                    "priority": 10,
                    "extensions": sillytavern_entry_extensions(selectiveLogic=3, match_whole_words=True),
                    "probability": 80,
                },
                {
                    "id": "third",
                    "keys": ["精灵"],
                    "content": "精灵住在森林深处。",
                    "enabled": False,
                    "insertion_order": 5,
                    "extensions": {},
                },
            ],
        },
    }
    root_junk = {
        "avatar": "none",
        "chat": "Seraphina - 2024-01-01@12h00m00s",
        "create_date": "2024-01-01@12h00m00s",
        "talkativeness": "0.5",
        "fav": False,
        "creatorcomment": "Gentle fantasy roleplay.",
        "tags": ["fantasy", "female", "中文"],
    }
    mirrors = {key: data[key] for key in ("name", "description", "personality", "scenario", "first_mes", "mes_example")}
    return {**mirrors, **root_junk, "spec": "chara_card_v2", "spec_version": "2.0", "data": data}


def rich_v3_card() -> dict[str, Any]:
    card = copy.deepcopy(rich_v2_card())
    card["spec"] = "chara_card_v3"
    card["spec_version"] = "3.0"
    data = card["data"]
    data.update(
        nickname="Sera",
        creator_notes_multilingual={"en": "Gentle fantasy roleplay.", "zh": "温柔的奇幻角色扮演。"},
        source=["https://example.invalid/cards/seraphina", "chub:12345"],
        group_only_greetings=["*Seraphina greets the whole party.*"],
        assets=[
            {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"},
            {"type": "emotion", "uri": "embeded://assets/emotion/images/happy.png", "name": "happy", "ext": "png"},
        ],
        creation_date=1700000000,
        modification_date=1700000500,
        x_future_field={"anything": [1, 2, None]},
    )
    for entry in data["character_book"]["entries"]:
        entry.setdefault("use_regex", False)
    data["character_book"]["entries"][0]["content"] = "@@depth 2\n@@@scan_depth 3\nEldoria is an ancient forest."
    return card


def v1_card() -> dict[str, Any]:
    return {
        "name": "Old Tom",
        "description": "<BOT> is a retired sailor.",
        "personality": "grumpy but kind",
        "scenario": "A harbour tavern.",
        "first_mes": "Arr, sit down, <USER>.",
        "mes_example": "<START>\n<USER>: Hello\n<BOT>: Hmph.",
        "avatar": "none",
        "chat": "Old Tom - 2023",
        "create_date": "2023-05-01",
        "talkativeness": "0.3",
    }


def pygmalion_card() -> dict[str, Any]:
    return {
        "char_name": "Pyg",
        "char_persona": "An old-format character.",
        "world_scenario": "Somewhere.",
        "char_greeting": "Hello there.",
        "example_dialogue": "You: hi\nPyg: hello",
    }


def as_json(card: dict[str, Any]) -> bytes:
    return json.dumps(card, ensure_ascii=False).encode("utf-8")


def to_base64_json(card: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8")).decode("ascii")


def png_image(size: tuple[int, int] = (8, 12), colour: tuple[int, int, int] = (200, 50, 50)) -> Image.Image:
    return Image.new("RGB", size, colour)


def png_with_pillow_text(chunks: dict[str, str], *, compressed: bool = False, international: bool = False) -> bytes:
    """A small PNG whose text chunks Pillow writes (before the pixel data)."""
    info = PngInfo()
    for keyword, text in chunks.items():
        if international:
            info.add_itxt(keyword, text, zip=compressed)
        else:
            info.add_text(keyword, text, zip=compressed)
    output = io.BytesIO()
    png_image().save(output, format="PNG", pnginfo=info)
    return output.getvalue()


def chunk(chunk_type: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + chunk_type + body + zlib.crc32(chunk_type + body).to_bytes(4, "big")


def png_with_chunk_before_iend(keyword: str, text: str) -> bytes:
    """A PNG with a tEXt chunk inserted just before IEND, after the pixels, as SillyTavern does."""
    output = io.BytesIO()
    png_image().save(output, format="PNG")
    plain = output.getvalue()
    iend = plain.rindex(b"IEND") - 4
    return plain[:iend] + chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1")) + plain[iend:]
