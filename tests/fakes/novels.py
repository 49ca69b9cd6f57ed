"""Small novels for the documents tests, and a scripted model that reads them.

`chinese_novel()` and `english_novel()` are short texts with real chapter headings,
named characters and lines of dialogue, so that chapters, passages, full-text search,
character finding and example lines can be checked by hand. `NovelModel` is a
`default_reply` for the fake OpenAI server: it answers each kind of request the
documents feature makes (chapter summaries, character lists, character profiles)
from a script the test sets, and plain chat otherwise; the server records what it
received, so tests assert on that.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from tests.fakes.openai_server import Reply

ZH_CHAPTERS = [
    ("第一回　石猴出世", ["花果山上有一块仙石，其年石破，生出一个石猴。众猴见他勇敢，拜他为王，称美猴王。",
                    "孙悟空道：“我乃天生石猴，今日方知姓也！”众猴齐声叫好。"]),
    ("第二回　拜师学艺", ["孙悟空渡海拜师，菩提祖师传他七十二般变化，又教他筋斗云。",
                    "孙悟空道：“弟子愿学长生之道。”祖师笑道：“你这猢狲，倒也伶俐。”"]),
    ("第三回　大闹天宫", ["孙悟空偷吃蟠桃，大闹天宫，十万天兵也拿他不住。",
                    "孙悟空道：“皇帝轮流做，明年到我家！”玉帝只得请来如来佛祖。"]),
    ("第四回　五行山下", ["如来将孙悟空压在五行山下，一压就是五百年。",
                    "唐僧路过五行山，揭了压帖。唐僧道：“你可愿随我西天取经？”孙悟空磕头应允。"]),
    ("第五回　高老庄收八戒", ["唐僧师徒来到高老庄，遇见猪八戒。八戒本是天蓬元帅，被贬下凡。",
                        "猪八戒道：“师父，我老猪饿了！”孙悟空笑道：“呆子，又馋了。”"]),
]
EN_CHAPTERS = [
    ("Chapter 1", ["It is a truth universally acknowledged that a single man in possession of a good fortune "
                   "must be in want of a wife.",
                   "\"My dear Mr. Bennet,\" said his lady to him one day, \"have you heard that Netherfield Park "
                   "is let at last?\""]),
    ("Chapter 2", ["Elizabeth Bennet walked to Meryton with her sister Jane.",
                   "\"I shall never dance with Mr. Darcy,\" said Elizabeth, laughing at the very idea."]),
    ("Chapter 3", ["At the ball Mr. Darcy found Elizabeth only tolerable, and said so where she could hear.",
                   "\"She is tolerable, but not handsome enough to tempt me,\" said Mr. Darcy coldly."]),
    ("Chapter 4", ["Jane and Elizabeth talked late into the night about Mr. Bingley and his proud friend.",
                   "\"He is just what a young man ought to be,\" said Jane, who liked Mr. Bingley very much."]),
]


def novel_text(chapters: list[tuple[str, list[str]]], title: str, *, newline: str = "\n") -> str:
    blocks = [title]
    for heading, paragraphs in chapters:
        blocks.append(heading)
        blocks.extend(paragraphs)
    return (newline * 2).join(blocks) + newline


def chinese_novel(*, newline: str = "\n") -> str:
    return novel_text(ZH_CHAPTERS, "《西游小记》", newline=newline)


def english_novel() -> str:
    return novel_text(EN_CHAPTERS, "A Small Pride")


_NUMERALS = "一 二 三 四 五 六 七 八 九 十 十一 十二 十三 十四 十五 十六 十七 十八 十九 二十".split()


def long_chinese_novel(chapters: int = 12) -> str:
    """About 500 tokens a chapter: too long to read verbatim in a small window."""
    made = []
    for number in range(chapters):
        heading, paragraphs = ZH_CHAPTERS[number % len(ZH_CHAPTERS)]
        made.append((f"第{_NUMERALS[number]}回　{heading.split('　')[1]}",
                     paragraphs * 3 + [f"这是第{_NUMERALS[number]}回的结尾，师徒继续向西而行，一路上山高水远。" * 3]))
    return novel_text(made, "《西游长记》")


# -- the scripted model -------------------------------------------------------------------------
def kind_of(body: dict[str, Any]) -> str:
    """What a request asks: summary | characters | profile | chat."""
    system = next((m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system"), "")
    if system.startswith("You write faithful, compact summaries"):
        return "summary"
    if system.startswith("You identify the main characters"):
        return "characters"
    if system.startswith("You turn a character of a novel"):
        return "profile"
    return "chat"


def user_text(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


class NovelModel:
    """A `default_reply` answering the documents feature's requests from a script.

    `characters` and `profile` are reply texts (or callables taking the request body),
    so a test can script malformed output; summaries name the part they summarize."""

    def __init__(self, *, characters: str | Callable[[dict], str] = "", profile: str | Callable[[dict], str] = "",
                 chat: str = "OK."):
        self.characters = characters
        self.profile = profile
        self.chat = chat

    def __call__(self, body: dict[str, Any]) -> Reply:
        kind = kind_of(body)
        if kind == "summary":
            part = re.search(r"^Part: (.*)$", user_text(body), re.MULTILINE)
            return Reply(f"Summary of {part.group(1) if part else '?'}.")
        if kind in ("characters", "profile"):
            script = getattr(self, kind)
            return Reply(script(body) if callable(script) else script, chunk_size=200)
        return Reply(self.chat)


ZH_CHARACTERS_REPLY = "```json\n" + json.dumps({"characters": [
    {"name": "孙悟空", "aliases": ["美猴王", "行者"], "line": "花果山的石猴，神通广大"},
    {"name": "唐僧", "aliases": [], "line": "取经的和尚"},
    {"name": "猪八戒", "aliases": ["八戒", "呆子"], "line": "贪吃的天蓬元帅"},
    {"name": "哪吒", "line": "书中并未出场"},
]}, ensure_ascii=False) + "\n```\nThese are the main characters."

ZH_PROFILE_REPLY = json.dumps({
    "description": "花果山仙石所生的石猴，拜菩提祖师学艺。",
    "personality": "胆大好胜，机灵顽皮。",
    "speaking_style": "自称俺老孙，说话豪爽。",
    "relationships": [{"name": "唐僧", "relation": "师父"}, {"name": "猪八戒", "relation": "师弟"}],
    "example_lines": ["我乃天生石猴，今日方知姓也！", "这句书里没有"],
    "greeting": "俺老孙在此，你是何人？",
    "characters": [{"name": "唐僧", "aliases": ["师父"], "description": "取经的和尚，心慈面软。"},
                   {"name": "猪八戒", "aliases": ["八戒"], "description": "贪吃的师弟。"}],
    "places": [{"name": "花果山", "description": "孙悟空的老家，水帘洞所在。"}],
}, ensure_ascii=False)
