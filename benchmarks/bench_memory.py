"""Memory benchmark: prefix reuse with compaction, recall of planted facts, and request
assembly with compaction state at 100k messages.

* Prefix reuse: a 3,000-turn synthetic conversation (about 150 tokens a turn, Chinese and
  English mixed, with pauses between sessions) replayed through the real engine, assembler,
  memory providers and compaction at a 32k window, the model replaced by an in-process fake
  (instant replies; extractive summaries of the length asked for). For each request: the
  share of its tokens that form a byte-identical prefix of the previous request, and
  whether it repeats all of the previous request up to its last user message. Target: mean
  share >= 0.95 over the turns after the window first overflows. The naive sliding window
  (drop one oldest turn per request) is measured the same way, and the cost of both is
  compared with cache hits billed at 10% and at 50%.
* Recall: 200 facts (person or thing, attribute, value), half Chinese, half English, each
  said once in a natural sentence at a random depth of a 3,000-turn conversation replayed
  at a 16k window; each question uses a template of its own that shares at most the
  name with the fact's sentence. Reported: the share of questions whose planted turn
  reaches the request verbatim (history or recall; target >= 0.85 with full-text ranking
  alone), and how many reach it only through a summary. Hybrid ranking is run against the
  endpoint in COMPANION_EMBEDDING_MODEL / COMPANION_EMBEDDING_BASE_URL when set, and always
  against the test suite's fake embeddings (hashed character bigrams) on 127.0.0.1, which
  shows the mechanics, not the quality of a real model.
* Natural questions (`benchmarks/recall_set.py`): four imported SillyTavern chats (two
  English, two Chinese, about 370 turns in 16 dated sessions each) and 200 questions asked
  the way people ask (single-hop paraphrase, multi-hop, temporal, not mentioned), at 4k, 8k
  and 32k windows; at 4k also after the window shrank from 32k and with the boundary a 4k
  window persists. Reported per half and kind: the share of questions with every evidence
  turn in the request (for "not mentioned": recall stayed quiet), tail and recalled tokens
  per turn, requests over the window; and the curve of evidence found against recalled
  tokens (the most tokens recall may take a turn), on the development half. Target: >= 0.8
  on the test half at 4k.
* Assembly: `build_request` with every memory provider for conversations of 10k and 100k
  messages whose old turns were compacted (256k window), with and without a recall query.
  Targets: p50 <= 15 ms at 100k, <= 1.5x growth from 10k to 100k, recall adds <= 50 ms p50.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchmarks.common import percentile, print_table
from memory.compaction import CompactionPolicy
from memory.embeddings import Embedder
from memory.engine import Engine, ModelSettings, TurnContext
from memory.longterm import LongTermMemory
from memory.model_client import Completion, Usage
from memory.recall import RecallProvider
from memory.schema import open_store
from memory.records import Owner, to_text
from memory.store import Store
from memory.timeline import TimelineProvider
from memory.tokens import count_many, count_tokens, truncate_to_tokens
from personas import PersonaLibrary

TURNS = 3_000
START = datetime(2024, 1, 1, 8, 0, tzinfo=timezone.utc)

# -- synthetic conversation -----------------------------------------------------------------

_EN_WORDS = ("the a and to of i you it that was we my is in for on with this so just but about what "
             "like really think know today feel time day good little more when could would maybe back "
             "home work walk tea coffee rain window book song morning evening night dream cat garden "
             "river moon letter quiet tired happy friend dinner weekend train city light story laugh "
             "remember promise tomorrow yesterday kitchen music movie bread soup sky cloud street shop "
             "office meeting project email phone message weather winter summer spring autumn holiday "
             "sleep early late slowly together again always never often").split()
_ZH_WORDS = ("今天 我们 你 我 他 她 的 了 是 在 有 很 也 就 都 还 没 说 想 觉得 知道 一起 时候 晚上 早上 "
             "下午 天气 下雨 喝茶 咖啡 散步 回家 上班 工作 周末 电影 音乐 故事 月亮 星星 花园 小猫 朋友 "
             "晚饭 火车 城市 灯光 笑 记得 答应 明天 昨天 厨房 面包 汤 天空 云 街道 商店 办公室 会议 "
             "项目 邮件 电话 消息 冬天 夏天 春天 秋天 假期 睡觉 早 晚 慢慢 总是 从来 经常").split()


def _zipf_choice(rng: random.Random, words: list[str]) -> str:
    return words[min(len(words) - 1, int(rng.paretovariate(1.1)) - 1)]


_PROPER_NOUNS = [first + second for first in ("Al", "Bri", "Cor", "Del", "Es", "Fen", "Gos", "Hal", "In", "Jun",
                                                "Kes", "Lu", "Mar", "Net", "Or", "Pel", "Quil", "Ro", "Sor", "Tam")
                 for second in ("der", "sk", "vo", "mar", "ker", "nic", "ton", "vard", "got", "iper", "trel",
                                "men", "gold", "tle", "rin")]


def _rare_word(rng: random.Random) -> str:
    """A proper noun (people, places, shows): 300 of them, a few talked about often, most
    seldom, as in a real chat; these are what recall keys on."""
    return _PROPER_NOUNS[min(len(_PROPER_NOUNS) - 1, int(rng.paretovariate(0.6)) - 1)]


def sentence(rng: random.Random, tokens: int, chinese: bool) -> str:
    words = []
    while True:
        if rng.random() < 0.03:
            words.append(_rare_word(rng))
        words.append(_zipf_choice(rng, _ZH_WORDS if chinese else _EN_WORDS))
        text = ("".join(words) + "。") if chinese else (" ".join(words).capitalize() + ".")
        if len(words) % 8 == 0 and count_tokens(text) >= tokens:
            return text


@dataclass
class Turn:
    user: str
    reply: str
    at: datetime


def synthetic_turns(turns: int, seed: int = 7) -> list[Turn]:
    """About 150 tokens a turn (60 from the user, 90 in the reply); sessions of a few dozen
    turns a few minutes apart, separated by pauses of hours or days."""
    rng = random.Random(seed)
    at = START
    result = []
    for index in range(turns):
        at += timedelta(minutes=rng.randint(1, 6)) if rng.random() > 0.04 else timedelta(hours=rng.randint(5, 60))
        chinese = rng.random() < 0.45
        result.append(Turn(sentence(rng, 55 + rng.randint(0, 10), chinese),
                           sentence(rng, 85 + rng.randint(0, 10), chinese), at))
    return result


# -- the fake model ---------------------------------------------------------------------------

class FakeModel:
    """Stands in for ModelClient in process: the scripted reply for each turn; for memory
    work, an extractive summary of the length asked for (the first words of each line)
    and, now and then, a fact."""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.requests: list[list[dict]] = []
        self.task_calls = 0
        self.fact_calls = 0

    async def stream_chat(self, *, model, messages, max_tokens=None, cache_key=None, on_delta=None, task=None, **_):
        if callable(messages):  # a background task's request is built when the gate lets it go
            messages = messages()
        if task is not None:
            self.task_calls += 1
            text = self._task(task, cache_key or "", messages, max_tokens or 400)
        else:
            self.requests.append(messages)
            text = self.replies.pop(0) if self.replies else "OK."
        if on_delta is not None:
            await on_delta(text)
        return Completion(text, "stop", Usage(), model, 1, 1)

    def _task(self, task: str, cache_key: str, messages, max_tokens: int) -> str:
        prompt = messages[-1]["content"]
        # the prefixed form: the conversation's own request, then the instruction
        conversation = [m["content"] for m in messages[1:-1] if m["role"] in ("user", "assistant")
                        and not m["content"].startswith(("[Long-term memory", "[Documents"))]
        if task == "facts":
            self.fact_calls += 1
            if self.fact_calls % 5:
                return '{"facts": []}'
            first = re.search(r"\] [^:]+: (.{0,80})", prompt)
            said = first.group(1) if first else next(
                (line for line in reversed(conversation) for line in [line.splitlines()[-1][:80]]), "hi")
            return '{"facts": [{"text": "The user said: %s"}]}' % said.replace('"', "'")
        target = max(40, (max_tokens - 64) // 2)
        if cache_key.startswith("memory-fold"):  # the summaries themselves, without their date spans
            lines = [line for line in prompt.splitlines()[1:] if line and not line.startswith("[")]
        else:  # the transcript's messages (quoted, or the conversation above), without stamps and names
            lines = [line.split(": ", 1)[-1] for line in prompt.splitlines() if line.startswith("[")]
            lines = lines or [text.splitlines()[-1] for text in conversation if text]
        per_line = max(8, target // max(1, len(lines)))
        return truncate_to_tokens(" ".join(truncate_to_tokens(line, per_line, marker="") for line in lines),
                                  target, marker="")

    async def close(self) -> None:
        pass


def memory_engine(store: Store, model: FakeModel, window: int, clock, *, embedder: Embedder | None = None,
                  facts_every: int = 4, policy: CompactionPolicy | None = None, personas: PersonaLibrary | None = None
                  ) -> tuple[Engine, LongTermMemory, RecallProvider]:
    memory = LongTermMemory(store, model, model="bench", policy=policy or CompactionPolicy(), facts_every=facts_every)
    recall = RecallProvider(store, embedder=embedder)
    timeline = TimelineProvider(store, clock=clock)
    settings = ModelSettings(model="bench", window=window, reply_tokens=min(4096, window // 4),
                             tail_tokens=window // 10)
    engine = Engine(store, model, personas or PersonaLibrary(), settings, providers=[memory, recall, timeline],
                    clock=clock)
    return engine, memory, recall


async def replay(store: Store, turns: list[Turn], window: int, *, plant: dict[int, str] | None = None,
                 facts_every: int = 4, policy: CompactionPolicy | None = None
                 ) -> tuple[Engine, FakeModel, int, LongTermMemory, RecallProvider]:
    """Run every turn through the engine; returns it with the conversation id."""
    now = [START]
    clock = lambda: now[0]  # noqa: E731 - the store, engine and timeline share this clock
    store.clock = clock
    model = FakeModel()
    engine, memory, recall = memory_engine(store, model, window, clock, facts_every=facts_every, policy=policy)
    user = store.directory.ensure_user("local", f"bench-{window}", display_name="Mia")
    conversation = engine.conversation_for(Owner.user(user.id), user=user)
    for index, turn in enumerate(turns):
        now[0] = turn.at
        model.replies.append(turn.reply)
        text = (plant or {}).get(index, turn.user)
        result = await engine.submit(conversation.id, text, user=user)
        assert result.status == "complete", result.error
        now[0] = turn.at + timedelta(seconds=30)
        await engine.drain()
    return engine, model, conversation.id, memory, recall


# -- prefix reuse -----------------------------------------------------------------------------

class TokenCache:
    def __init__(self) -> None:
        self.cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        tokens = self.cache.get(text)
        if tokens is None:
            tokens = self.cache[text] = count_tokens(text)
        return tokens


def prefix_figures(requests: list[list[dict]], tokens: TokenCache) -> list[dict]:
    """Per request: its tokens, the tokens of its byte-identical prefix with the previous
    request, and whether it repeats all of the previous one up to its last user message."""
    figures = []
    previous = None
    for messages in requests:
        total = 3 + sum(tokens(m["content"]) + 4 for m in messages)
        shared, repeats = 0, False
        if previous is not None:
            shared = 3
            for old, new in zip(previous, messages):
                if old == new:
                    shared += tokens(new["content"]) + 4
                    continue
                if old["role"] == new["role"]:
                    common = os.path.commonprefix([old["content"], new["content"]])
                    shared += count_tokens(common)
                break
            repeats = messages[:len(previous) - 1] == previous[:-1]
        figures.append({"tokens": total, "shared": min(shared, total), "repeats": repeats})
        previous = messages
    return figures


def naive_requests(system: str, turns: list[Turn], window: int) -> list[list[dict]]:
    """The sliding window: every turn that fits, dropping the oldest turn when it does not."""
    prompt_limit = window - min(4096, window // 4)
    budget = prompt_limit - (count_tokens(system) + 4) - window // 10 - 3
    history: list[tuple[dict, dict]] = []
    sizes: list[int] = []
    requests = []
    for turn in turns:
        tail = f"[Context for this turn]\nCurrent time for the user: {turn.at:%A, %Y-%m-%d %H:%M}\n[End of context.]"
        while history and sum(sizes) + count_tokens(turn.user) + 4 > budget:
            history.pop(0)
            sizes.pop(0)
        messages = [{"role": "system", "content": system}]
        for user_message, reply in history:
            messages += [user_message, reply]
        messages.append({"role": "user", "content": f"{tail}\n\n{turn.user}"})
        requests.append(messages)
        history.append(({"role": "user", "content": turn.user}, {"role": "assistant", "content": turn.reply}))
        sizes.append(count_tokens(turn.user) + count_tokens(turn.reply) + 8)
    return requests


def cost(figures: list[dict], cached_price: float) -> float:
    return sum(f["tokens"] - f["shared"] + cached_price * f["shared"] for f in figures)


def summarize_prefix(figures: list[dict], first: int) -> dict:
    after = figures[first:]
    shares = [f["shared"] / f["tokens"] for f in after]
    return {
        "requests": len(figures), "overflow_from_turn": first,
        "mean_share": sum(shares) / len(shares),
        "p10_share": percentile(shares, 10),
        "repeats_share": sum(f["repeats"] for f in after) / len(after),
        "mean_tokens": sum(f["tokens"] for f in after) / len(after),
    }


async def prefix_benchmark(folder: Path, policy: CompactionPolicy | None = None) -> dict:
    turns = synthetic_turns(TURNS)
    store = open_store(folder / "prefix.db")
    engine, model, conversation_id, _, _ = await replay(store, turns, 32_768, policy=policy)
    tokens = TokenCache()
    ours = prefix_figures(model.requests, tokens)
    first_compaction = next(i for i, r in enumerate(model.requests)
                            if r[1]["content"].startswith("[Long-term memory"))
    system = model.requests[0][0]["content"]
    sliding = naive_requests(system, turns, 32_768)
    naive = prefix_figures(sliding, tokens)
    # the window first overflows when the whole history no longer fits: the sliding window
    # drops its first turn then (compaction, at 80%, starts a little earlier)
    overflow = next(i for i, r in enumerate(sliding) if i and r[1]["content"] != turns[0].user)
    segments = store.db.execute("SELECT count(*), max(level) FROM summary_segments").fetchone()
    result = {
        "window": 32_768, "turns": TURNS,
        "turn_tokens": sum(count_many([t.user for t in turns]) + count_many([t.reply for t in turns])) / TURNS,
        "first_compaction_turn": first_compaction,
        "ours": summarize_prefix(ours, overflow),
        "naive": summarize_prefix(naive, overflow),
        "compactions": sum(1 for f in ours[first_compaction:] if not f["repeats"]),
        "segments": segments[0], "max_level": segments[1], "memory_task_calls": model.task_calls,
    }
    for price in (0.1, 0.5):
        result[f"cost_ratio_cached_{int(price * 100)}pct"] = (cost(ours[overflow:], price)
                                                               / cost(naive[overflow:], price))
    await engine.close()
    store.close()
    return result


# -- recall -----------------------------------------------------------------------------------

_EN_NAMES = ("Marcus Priya Anselm Beatrix Caspian Delphine Ezekiel Fionnuala Gideon Henrietta Ignatius Jocasta "
             "Kasimir Leocadia Mortimer Nerys Octavian Persephone Quentin Rosalind Severin Theodora Ulrich "
             "Valentina Wilhelmina Xander Yolanda Zebedee Aurelio Bronwyn Cordelia Desmond Eulalia Florian "
             "Gwendolyn Horatio Isolde Jericho Katarina Lysander Marguerite Nikolai Ottoline Peregrine Quinta "
             "Ravindra Saoirse Tobias Ursula Vespera Winslow Ximena Yusuf Zenobia Alaric Bettina Cosimo Dagny "
             "Evander Felicity Godfrey Hyacinth Ivo Jessamy Kieran Lavinia Magnus Noemi Osric Philippa Ragnar "
             "Sabine Tiberius Undine Viggo Wendeline Xavier Yvaine Zoltan Ambrose Briony Cyrus Dorothea Emrys "
             "Fenella Gaspard Hermione Ishaan Jolyon Kerensa Leopold Minerva Niall Oriana Percival Rhiannon "
             "Stellan Tamsin Wystan Cressida").split()
_ZH_FIRST = "阿小老大"
_ZH_SECOND = "桂萱瑾琛珂璐翊昀蔚湘岚霁筠棠芷蘅琪瑶璟玥珩琰瑗璇瑄"

_EN_FACTS = [
    ("job", "My friend {name} works as a {value}.", "What does {name} do for a living?",
     ["pilot", "dentist", "carpenter", "librarian", "nurse", "architect", "plumber", "violinist", "beekeeper",
      "locksmith"]),
    ("city", "{name} moved to {value} last spring.", "Where is {name} based nowadays?",
     ["Lisbon", "Denver", "Osaka", "Nairobi", "Tallinn", "Valparaiso", "Reykjavik", "Hobart", "Porto", "Quito"]),
    ("pet", "{name} has a {value} at home.", "Which animal keeps {name} company?",
     ["parrot", "tortoise", "ferret", "husky", "chinchilla", "goldfish", "iguana", "hedgehog", "rabbit", "corgi"]),
    ("food", "{name} absolutely loves {value}.", "Which dish is {name}'s favourite?",
     ["paella", "ramen", "goulash", "pierogi", "ceviche", "lasagna", "falafel", "bibimbap", "moussaka", "tacos"]),
    ("car", "{name} drives an old {value}.", "What vehicle does {name} own?",
     ["Volvo", "Beetle", "Saab", "Citroen", "Land Rover", "Mini", "Fiat", "Peugeot", "Skoda", "Lada"]),
    ("birthday", "{name}'s birthday is in {value}.", "When does {name} celebrate getting older?",
     ["January", "March", "April", "June", "August", "September", "October", "November", "December", "May"]),
    ("hobby", "On weekends {name} goes {value}.", "What does {name} do for fun?",
     ["sailing", "birdwatching", "bouldering", "fencing", "kayaking", "geocaching", "orienteering", "archery",
      "surfing", "caving"]),
    ("instrument", "{name} has been learning the {value} for years.", "Which instrument is {name} practising?",
     ["cello", "oboe", "harp", "banjo", "accordion", "bassoon", "ukulele", "marimba", "sitar", "trombone"]),
]
_ZH_FACTS = [
    ("职业", "我朋友{name}是一名{value}。", "{name}平时做什么工作？",
     ["医生", "厨师", "飞行员", "律师", "摄影师", "建筑师", "护士", "木匠", "图书管理员", "消防员"]),
    ("城市", "{name}去年搬到了{value}。", "{name}现在住哪儿？",
     ["成都", "杭州", "大连", "厦门", "昆明", "青岛", "拉萨", "西安", "苏州", "哈尔滨"]),
    ("宠物", "{name}家里养了一只{value}。", "{name}有什么动物陪伴？",
     ["柯基", "鹦鹉", "乌龟", "仓鼠", "龙猫", "刺猬", "金鱼", "兔子", "哈士奇", "布偶猫"]),
    ("食物", "{name}最爱吃{value}。", "{name}偏好哪种美食？",
     ["火锅", "榴莲", "饺子", "烤鸭", "螺蛳粉", "小龙虾", "煎饼", "羊肉串", "肠粉", "麻辣烫"]),
    ("爱好", "{name}每个周末都去{value}。", "{name}空闲时干嘛？",
     ["爬山", "钓鱼", "游泳", "滑雪", "骑行", "露营", "攀岩", "划船", "射箭", "潜水"]),
    ("生日", "{name}的生日在{value}。", "{name}哪天过生？",
     ["三月", "十月", "五月", "腊月", "正月", "八月", "六月", "九月", "二月", "七月"]),
    ("乐器", "{name}学了好几年{value}。", "{name}会演奏什么？",
     ["钢琴", "小提琴", "古筝", "二胡", "琵琶", "长笛", "吉他", "架子鼓", "萨克斯", "笛子"]),
]


@dataclass
class PlantedFact:
    turn: int
    name: str
    value: str
    sentence: str
    question: str
    chinese: bool


def planted_facts(count: int = 200, turns: int = TURNS, seed: int = 11) -> list[PlantedFact]:
    rng = random.Random(seed)
    zh_names = [a + b for a in _ZH_FIRST for b in _ZH_SECOND]
    rng.shuffle(zh_names)
    depths = rng.sample(range(5, turns - 5), count)
    facts = []
    for index, turn in enumerate(depths):
        chinese = index % 2 == 1
        name = zh_names[index // 2] if chinese else _EN_NAMES[index // 2]
        _, said, asked, values = (_ZH_FACTS if chinese else _EN_FACTS)[index % (7 if chinese else 8)]
        value = rng.choice(values)
        facts.append(PlantedFact(turn, name, value, said.format(name=name, value=value),
                                 asked.format(name=name), chinese))
    return facts


def recall_score(engine: Engine, store: Store, conversation_id: int, facts: list[PlantedFact],
                 vectors: dict[str, object] | None = None, recall: RecallProvider | None = None) -> dict:
    conversation = store.conversations.conversation(conversation_id)
    user = store.directory.user(conversation.user_id)
    planted_ids = {}
    for fact in facts:
        row = store.db.execute("SELECT id FROM messages WHERE conversation_id = ? AND content = ?",
                               [conversation_id, fact.sentence]).fetchone()
        planted_ids[fact.sentence] = row[0]
    verbatim = summary_only = in_summary = 0
    by_language = {"zh": 0, "en": 0}
    for fact in facts:
        if vectors is not None and recall is not None:
            recall._query_vectors[(conversation_id, fact.question)] = vectors[fact.question]
        request = engine.build_request(conversation, user=user, query=fact.question, final_user_text=fact.question)
        seen = set()
        for message in request.messages:
            seen |= set(message.source_ids or [])
            for part in message.parts or []:
                seen |= set(part.source_ids or [])
        summarized = any(m.section == "memory" and fact.name in m.content and fact.value in m.content
                         for m in request.messages)
        in_summary += summarized
        if planted_ids[fact.sentence] in seen:
            verbatim += 1
            by_language["zh" if fact.chinese else "en"] += 1
        elif summarized:
            summary_only += 1
    return {"questions": len(facts), "verbatim": verbatim, "verbatim_share": verbatim / len(facts),
            "summary_only": summary_only, "in_summary": in_summary,
            "verbatim_zh": by_language["zh"], "verbatim_en": by_language["en"]}


async def embed_all(store: Store, conversation_id: int, embedder: Embedder, recall: RecallProvider,
                    questions: list[str]) -> dict[str, object]:
    from memory.embeddings import EmbeddingIndex

    index = EmbeddingIndex(store, embedder.model)
    recall.index = index
    while missing := index.missing([conversation_id], limit=512):
        vectors = await embedder.embed([text for _, text in missing])
        index.save([(message_id, vector) for (message_id, _), vector in zip(missing, vectors)])
    vectors = await embedder.embed(questions)
    return dict(zip(questions, vectors))


async def recall_benchmark(folder: Path) -> dict:
    turns = synthetic_turns(TURNS, seed=21)
    facts = planted_facts()
    store = open_store(folder / "recall.db")
    engine, _, conversation_id, _, recall = await replay(store, turns, 16_384,
                                                         plant={f.turn: f.sentence for f in facts})
    conversation = store.conversations.conversation(conversation_id)
    results = {"window": 16_384, "turns": TURNS, "facts": len(facts),
               "boundary_message_id": conversation.boundary_message_id,
               "messages": store.conversations.count_messages(conversation_id),
               "full_text": recall_score(engine, store, conversation_id, facts)}
    questions = [f.question for f in facts]
    endpoints = []
    if os.environ.get("COMPANION_EMBEDDING_MODEL"):
        endpoints.append(("configured", Embedder(
            model=os.environ["COMPANION_EMBEDDING_MODEL"],
            base_url=os.environ.get("COMPANION_EMBEDDING_BASE_URL") or os.environ.get("OPENAI_BASE_URL"),
            api_key=os.environ.get("COMPANION_EMBEDDING_API_KEY") or os.environ.get("OPENAI_API_KEY"))))
    fake_server = None
    try:
        from tests.fakes.openai_server import FakeOpenAI

        fake_server = FakeOpenAI().start()
        endpoints.append(("fake_hashed_bigrams", Embedder(model="fake-embed", base_url=fake_server.url,
                                                           api_key="unused")))
    except ImportError:  # the test suite's fakes are not installed with the package
        pass
    for label, embedder in endpoints:
        recall.embedder = embedder
        vectors = await embed_all(store, conversation_id, embedder, recall, questions)
        results[f"hybrid_{label}"] = recall_score(engine, store, conversation_id, facts, vectors, recall)
        await embedder.close()
    recall.embedder = recall.index = None
    if fake_server is not None:
        fake_server.stop()
    await engine.close()
    store.close()
    return results


# -- assembly at 100k -------------------------------------------------------------------------

def build_long_conversation(store: Store, messages: int, seed: int = 5) -> int:
    """`messages` stored messages of about 100 tokens, a few minutes apart, with pauses."""
    rng = random.Random(seed)
    user = store.directory.ensure_user("local", f"long-{messages}", display_name="Mia")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "assistant")
    at = START
    batch = 2_000
    for start in range(0, messages, batch):
        texts = [sentence(rng, 95, rng.random() < 0.45) for _ in range(min(batch, messages - start))]
        with store.db.atomic():
            for offset, (text, tokens) in enumerate(zip(texts, count_many(texts))):
                at += timedelta(minutes=3) if rng.random() > 0.02 else timedelta(hours=20)
                index = start + offset
                store.conversations.add_message(conversation.id, "user" if index % 2 == 0 else "assistant", text, tokens=tokens,
                                  created_at=to_text(at), status="pending" if index == messages - 1 else "complete")
    return conversation.id


async def compact_fully(engine: Engine, memory: LongTermMemory, conversation_id: int) -> int:
    """Bring a long stored conversation to the state live compaction would have left."""
    store = engine.store
    conversation = store.conversations.conversation(conversation_id)
    user = store.directory.user(conversation.user_id)
    request = engine.build_request(conversation, user=user, query="")
    store.conversations.set_boundary(conversation_id, request.boundary_message_id)
    rounds = 0
    while True:
        conversation = store.conversations.conversation(conversation_id)
        request = engine.build_request(conversation, user=user, query="")
        context = TurnContext(conversation, engine.persona(conversation.persona_id), user, "", request.budget, request)
        if await memory.compact(context) is None:
            return rounds
        rounds += 1


def time_requests(engine: Engine, conversation_id: int, queries: list[str]) -> list[float]:
    store = engine.store
    samples = []
    for query in queries:
        started = time.perf_counter()
        conversation = store.conversations.conversation(conversation_id)
        user = store.directory.user(conversation.user_id)
        engine.build_request(conversation, user=user, query=query)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def assembly_benchmark(folder: Path) -> dict:
    store = open_store(folder / "assembly.db")
    model = FakeModel()
    # every conversation left compacted to half its history budget, so the sizes compare
    engine, memory, _ = memory_engine(store, model, 262_144, lambda: START + timedelta(days=400),
                                      policy=CompactionPolicy(compact_at=0.55, compact_to=0.5))
    rng = random.Random(3)
    queries = [sentence(rng, 40, rng.random() < 0.45) + " " + _rare_word(rng) for _ in range(41)]
    from benchmarks.recall_set import conversations

    natural_questions = [q.text for c in conversations() for q in c.questions[::5]]
    cells = []
    for size in (10_000, 100_000):
        conversation_id = build_long_conversation(store, size)
        rounds = await compact_fully(engine, memory, conversation_id)
        time_requests(engine, conversation_id, queries[:3])  # warm caches, as a running bot has them
        plain = time_requests(engine, conversation_id, [""] * 41)
        with_recall = time_requests(engine, conversation_id, queries)
        natural = time_requests(engine, conversation_id, natural_questions)
        conversation = store.conversations.conversation(conversation_id)
        request = engine.build_request(conversation, user=store.directory.user(conversation.user_id), query=queries[0])
        cells.append({
            "messages": size, "window": 262_144, "compaction_rounds": rounds,
            "segments": store.db.execute("SELECT count(*) FROM summary_segments WHERE conversation_id = ? "
                                         "AND folded_into IS NULL", [conversation_id]).fetchone()[0],
            "request_tokens": request.total_tokens,
            "history_messages": sum(1 for m in request.messages if m.section == "history"),
            "p50_ms": percentile(plain, 50), "p95_ms": percentile(plain, 95),
            "with_recall_p50_ms": percentile(with_recall, 50),
            "recall_adds_p50_ms": percentile(with_recall, 50) - percentile(plain, 50),
            "natural_recall_adds_p50_ms": percentile(natural, 50) - percentile(plain, 50),
        })
    await engine.close()
    store.close()
    return {"cells": cells, "growth_10k_to_100k": cells[1]["p50_ms"] / cells[0]["p50_ms"]}


def run() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        prefix = asyncio.run(prefix_benchmark(Path(folder)))
        prefix["seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        recall = asyncio.run(recall_benchmark(Path(folder)))
        recall["seconds"] = time.perf_counter() - started
        assembly = asyncio.run(assembly_benchmark(Path(folder)))
        natural = natural_benchmark(Path(folder))
    big = assembly["cells"][-1]
    test_4k = next(c for c in natural["cells"] if c["window"] == 4_096 and c["half"] == "test"
                   and c["scenario"] == "imported")
    return {
        "prefix": prefix, "recall": recall, "assembly": assembly, "natural": natural,
        "targets": {
            "mean_prefix_share": prefix["ours"]["mean_share"], "mean_prefix_share_target": 0.95,
            "recall_full_text": recall["full_text"]["verbatim_share"], "recall_target": 0.85,
            "p50_at_100k_ms": big["p50_ms"], "p50_target_ms": 15,
            "growth": assembly["growth_10k_to_100k"], "growth_target": 1.5,
            "recall_adds_p50_ms": big["recall_adds_p50_ms"], "recall_adds_target_ms": 50,
            "natural_test_4k_all_evidence": test_4k["all_evidence_share"], "natural_target": 0.8,
        },
    }


def report(results: dict) -> None:
    prefix = results["prefix"]
    print_table(
        f"Prefix reuse, {prefix['turns']} turns (~{prefix['turn_tokens']:.0f} tokens each), window {prefix['window']:,}"
        " (turns after the window first overflows)",
        ["layout", "from turn", "mean share", "p10 share", "repeats prev", "mean tokens"],
        [[name, f["overflow_from_turn"], f"{f['mean_share']:.3f}", f"{f['p10_share']:.3f}",
          f"{f['repeats_share']:.3f}", f"{f['mean_tokens']:,.0f}"]
         for name, f in (("compaction (ours)", prefix["ours"]), ("naive sliding window", prefix["naive"]))],
    )
    print(f"cost ours/naive: {prefix['cost_ratio_cached_10pct']:.3f} with cache hits at 10%, "
          f"{prefix['cost_ratio_cached_50pct']:.3f} at 50%; {prefix['compactions']} compactions, "
          f"{prefix['segments']} segments (max level {prefix['max_level']}), "
          f"{prefix['memory_task_calls']} memory calls, first compaction at turn "
          f"{prefix['first_compaction_turn']}, {prefix['seconds']:.0f} s")
    recall = results["recall"]
    rows = [["full text", *_recall_row(recall["full_text"])]]
    rows += [[key.removeprefix("hybrid_"), *_recall_row(value)] for key, value in recall.items()
             if key.startswith("hybrid_")]
    print_table(f"Recall of {recall['facts']} planted facts, {recall['turns']} turns, window {recall['window']:,}",
                ["ranking", "verbatim", "share", "zh", "en", "summary only", "in a summary"], rows)
    if not any(key.startswith("hybrid_configured") for key in recall):
        print("hybrid with a real model: set COMPANION_EMBEDDING_MODEL (and COMPANION_EMBEDDING_BASE_URL)")
    print_table(
        "Request assembly with compaction state (ms), all memory providers",
        ["messages", "window", "segments", "sent msgs", "tokens", "p50", "p95", "p50 w/ recall", "recall adds",
         "natural q. adds"],
        [[c["messages"], c["window"], c["segments"], c["history_messages"], c["request_tokens"], f"{c['p50_ms']:.2f}",
          f"{c['p95_ms']:.2f}", f"{c['with_recall_p50_ms']:.2f}", f"{c['recall_adds_p50_ms']:.2f}",
          f"{c['natural_recall_adds_p50_ms']:.2f}"]
         for c in results["assembly"]["cells"]],
    )
    print(f"growth of p50 from 10k to 100k messages: {results['assembly']['growth_10k_to_100k']:.2f}x "
          "(target <= 1.5x)")
    natural_report(results["natural"])


def _recall_row(figures: dict) -> list:
    return [f"{figures['verbatim']}/{figures['questions']}", f"{figures['verbatim_share']:.3f}",
            figures["verbatim_zh"], figures["verbatim_en"], figures["summary_only"], figures["in_summary"]]


# -- natural questions (benchmarks/recall_set.py) -------------------------------------------

WINDOWS = (4_096, 8_192, 32_768)
KINDS = ("single", "multi", "temporal", "absent")
CURVE_CAPS = (100, 200, 300, 400, 600, 1_000, 1_500)  # most recalled tokens a turn


def _seen_ids(request) -> tuple[set[int], int, int]:
    """Message ids the request holds (history and recall), its recall and tail tokens."""
    seen: set[int] = set()
    recalled = 0
    for message in request.messages:
        seen |= {i for i in message.source_ids or [] if isinstance(i, int)}
        for part in message.parts or []:
            seen |= {i for i in part.source_ids or [] if isinstance(i, int)}
            recalled += part.tokens if part.section == "recall" else 0
    return seen, recalled, request.tail_tokens


def ask_all(engine: Engine, store: Store, conversation_id: int, questions, ids: list[int]) -> list[dict]:
    """Each question asked as the next message (as `companion context --message` does)."""
    conversation = store.conversations.conversation(conversation_id)
    user = store.directory.user(conversation.user_id)
    rows = []
    for question in questions:
        request = engine.build_request(conversation, user=user, query=question.text, final_user_text=question.text)
        seen, recalled, tail = _seen_ids(request)
        wanted = {ids[index] for index in question.evidence}
        found = wanted <= seen if wanted else recalled == 0
        rows.append({"kind": question.kind, "found": found, "recall_tokens": recalled, "tail_tokens": tail,
                     "over_window": request.total_tokens > request.budget.prompt_limit})
    return rows


def natural_figures(rows: list[dict]) -> dict:
    figures = {"questions": len(rows)}
    answerable = [r for r in rows if r["kind"] != "absent"]
    figures["all_evidence_share"] = sum(r["found"] for r in answerable) / max(1, len(answerable))
    for kind in KINDS:
        of_kind = [r for r in rows if r["kind"] == kind]
        figures[kind] = sum(r["found"] for r in of_kind) / max(1, len(of_kind))  # absent: recall stayed quiet
    figures["mean_tail_tokens"] = sum(r["tail_tokens"] for r in rows) / max(1, len(rows))
    figures["mean_recall_tokens"] = sum(r["recall_tokens"] for r in rows) / max(1, len(rows))
    figures["over_window"] = sum(r["over_window"] for r in rows)
    return figures


_DATABASES: list[str] = []


def imported_conversation(folder: Path, conversation, window: int):
    """The conversation imported as a SillyTavern chat into a fresh database, and an engine."""
    from zoneinfo import ZoneInfo

    from benchmarks.recall_set import sillytavern_jsonl
    from memory.importer import import_chat, parse_sillytavern

    _DATABASES.append(conversation.key)
    store = open_store(folder / f"natural-{conversation.key}-{window}-{len(_DATABASES)}.db")
    user = store.directory.ensure_user("local", f"u{len(_DATABASES)}", display_name=conversation.user)
    chat = parse_sillytavern(sillytavern_jsonl(conversation), ZoneInfo("UTC"))
    result = import_chat(store, Owner.user(user.id), "character", chat)
    ids = [m.id for m in store.conversations.messages(result.conversation.id)]
    personas = folder / f"personas-{len(_DATABASES)}"
    personas.mkdir()
    (personas / "character.toml").write_text(f'id = "character"\nname = "{conversation.persona}"\n', encoding="utf-8")
    engine, _, recall = memory_engine(store, FakeModel(), window, lambda: conversation.now, facts_every=0,
                                      personas=PersonaLibrary([personas]))
    recall.clock = lambda: conversation.now
    return store, engine, recall, result.conversation.id, ids


def natural_benchmark(folder: Path, halves=("dev", "test"), caps=CURVE_CAPS) -> dict:
    from benchmarks.recall_set import conversations, honesty_violations

    from dataclasses import replace as _replace

    sets = [c for c in conversations() if c.half in halves]
    results: dict = {"conversations": {c.key: {"half": c.half, "messages": len(c.messages),
                                               "questions": len(c.questions),
                                               "honesty_violations": len(honesty_violations(c))} for c in sets}}
    cells = []
    for window in WINDOWS:
        for half in halves:
            scenarios: dict[str, list[dict]] = {}
            for conversation in (c for c in sets if c.half == half):
                store, engine, recall, conversation_id, ids = imported_conversation(folder, conversation, window)
                scenarios.setdefault("imported", []).extend(
                    ask_all(engine, store, conversation_id, conversation.questions, ids))
                if window == WINDOWS[0]:
                    # the window shrank after the fact: the boundary a 32k window left
                    big = memory_engine(store, FakeModel(), 32_768, lambda: conversation.now, facts_every=0,
                                        personas=engine.personas)[0]
                    user = store.directory.user(store.conversations.conversation(conversation_id).user_id)
                    request = big.build_request(store.conversations.conversation(conversation_id), user=user, query="")
                    store.conversations.set_boundary(conversation_id, request.boundary_message_id)
                    scenarios.setdefault("shrunk from 32k", []).extend(
                        ask_all(engine, store, conversation_id, conversation.questions, ids))
                    # live: the boundary this window's own turns persisted
                    request = engine.build_request(store.conversations.conversation(conversation_id), user=user, query="")
                    store.conversations.set_boundary(conversation_id, request.boundary_message_id)
                    scenarios.setdefault("live", []).extend(
                        ask_all(engine, store, conversation_id, conversation.questions, ids))
                store.close()
            for scenario, rows in scenarios.items():
                cells.append({"window": window, "half": half, "scenario": scenario, **natural_figures(rows)})
    results["cells"] = cells
    # the trade-off: evidence found against recalled (uncached) tail tokens, development half
    curve = []
    for window in WINDOWS[:2]:
        for cap in caps:
            rows = []
            for conversation in (c for c in sets if c.half == "dev"):
                store, engine, recall, conversation_id, ids = imported_conversation(folder, conversation, window)
                recall.settings = _replace(recall.settings, window_share=1.0, max_tokens=cap)
                rows += ask_all(engine, store, conversation_id, conversation.questions, ids)
                store.close()
            figures = natural_figures(rows)
            curve.append({"window": window, "max_tokens": cap, "all_evidence_share": figures["all_evidence_share"],
                          "mean_recall_tokens": figures["mean_recall_tokens"], "absent_quiet": figures["absent"]})
    results["curve"] = curve
    return results


def natural_report(results: dict) -> None:
    print_table("Natural-question evaluation set (benchmarks/recall_set.py)",
                ["conversation", "half", "messages", "questions", "honesty violations"],
                [[key, c["half"], c["messages"], c["questions"], c["honesty_violations"]]
                 for key, c in results["conversations"].items()])
    print_table("All evidence in the request (share of questions; absent: recall stayed quiet)",
                ["window", "half", "scenario", "questions", "all kinds", *KINDS, "tail tok/turn",
                 "recall tok/turn", "over window"],
                [[c["window"], c["half"], c["scenario"], c["questions"], f"{c['all_evidence_share']:.3f}",
                  *[f"{c[k]:.3f}" for k in KINDS], f"{c['mean_tail_tokens']:.0f}", f"{c['mean_recall_tokens']:.0f}",
                  c["over_window"]] for c in results["cells"]])
    print_table("Evidence found against recalled tokens (development half, imported chats)",
                ["window", "recall cap", "all evidence", "recall tok/turn", "absent quiet"],
                [[c["window"], c["max_tokens"], f"{c['all_evidence_share']:.3f}", f"{c['mean_recall_tokens']:.0f}",
                  f"{c['absent_quiet']:.3f}"] for c in results["curve"]])
