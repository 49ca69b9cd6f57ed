"""Recall: stored turns of the owner's history with this persona that the request does
not hold, found for the new message and placed in the tail.

When it runs. Whenever stored turns of the scope (this conversation, and the owner's
earlier conversations with the persona) are not in the request, whatever the reason: an
imported chat whose boundary is 0 though only its last turns fit, a window that shrank
after the fact (another model, a persona's own window), turns folded into summaries or
dropped in a batch. The engine calls `late_tail_parts` with the request assembled without
recall, so the exclusion is what the request actually holds (its oldest verbatim
message), not the persisted boundary.

How much. Recall may fill the room the request leaves (the window minus the reply
reserve minus everything else), up to `window_share` of the window and `max_tokens`,
never past it; as many hits as fit. Every recalled token is paid in full on every turn (the tail is never
cached), so the caps were chosen on a measured curve of evidence found against recalled
tokens (`python -m benchmarks memory`, README "Recall"): it flattens at about 600. Each hit comes with its
neighbour (a user message with the reply to it, a reply with the question it answers);
hits are grouped by session day, each group under its date, oldest first, in order.

Ranking, for questions the way people ask them ("What did Maya paint?", 她去年去哪儿旅行了？):

* Query analysis: English words lowercased without diacritics (as `unicode61` indexes
  them), stop words dropped, stemmed (Snowball English, PyStemmer); each stem is expanded
  to the index's own words with that stem (the FTS5 vocabulary, by prefix range), so
  "painted" finds "painting" and "paints". Chinese runs are segmented (jieba-rs), stop words
  dropped, and each word becomes the character bigrams the index holds (`textsearch`); a
  run of single characters (an unknown name) is joined back.
* BM25 over those terms without a hard evidence gate: the FTS5 index gives candidates for
  the terms that are not everywhere, and they are scored here with Okapi BM25 over the
  stems. Terms in more than `common_share` of all messages (the two speakers' names, said
  in every other turn) are searched only within a date range and weigh `common_weight`.
  A hit must cover `min_coverage` of the query's weight and score `relative_floor` of
  the best one; both were set on the development half of the evaluation set.
* Temporal questions: "last year", "in May", "last month", "2023", 去年, 五月, 上个月 become
  a date range in the user's zone; messages of that range are searched with every term
  (names too) and gain `date_boost`. "When…"/什么时候 questions need no range: every hit
  is shown under its session's date.
* Multi-hop: the first hits' rare words (a sister's name, the town of a trip) are searched
  again with the question (`second_pass` weight), which finds the turn that says what
  the question asks about them.
* With `COMPANION_EMBEDDING_MODEL` set, the nearest messages by embedding join the ranking
  (reciprocal rank fusion), which finds paraphrases the words miss.

Cost: a few FTS5 queries and the scoring of at most `candidates` messages per turn, with
stems, term counts and vocabulary expansions cached; it adds under 50 ms p50 at 100k
messages (benchmark `memory`). The queries themselves are storage's: the full-text index's in
`RecallIndex` (memory/recall_index.py), the messages' and conversations' in the Store.
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

import rjieba
import Stemmer

from memory.assembly import TailPart
from memory.compaction import visible_messages
from memory.embeddings import EmbeddingIndex, Embedder
from memory.engine import ContextProvider, TurnContext, _zone
from memory.recall_index import RecallIndex, recall_index
from memory.records import Conversation, Message, from_text, to_text, utc_now
from memory.store import Store
from memory.textsearch import _CJK_CHARS, _CJK_RUN, fold_diacritics
from memory.timeline import WEEKDAYS
from memory.tokens import count_tokens, truncate_to_tokens

log = logging.getLogger(__name__)

_PIECES = re.compile(f"[{_CJK_CHARS}]+|[^\\s{_CJK_CHARS}]+")
_WORD = re.compile(r"[^\W_]+")  # unicode61 splits at underscores too
RRF_K = 60
HEADER = "Earlier messages that may be relevant (recalled from long ago; not part of the current exchange):"

STOP_WORDS_EN = frozenset("""
a about above after again against ago all also am an and any anything are aren as at back be because been before
being below between both but by can could did didn do does doesn doing don done down during each else ever every
few for from further get gets getting got had has have having he her here hers herself him himself his how i if in
into is isn it its itself just kind know let like ll lot lots many me might more most much must my myself no nor not
now of off oh ok okay on once one only or other our ours out over own really recently remember right s said same say
says she should so some something still such t tell than that the their theirs them themselves then there these
they thing things think this those through to too told under until up us ve very was wasn way we well were weren
what whats when where which while who whom whose why will with won would yeah yes yet you your yours yourself
re d m mention mentioned talk talked
""".split())
STOP_WORDS_ZH = frozenset("""
什么 什么样 时候 怎么 怎样 怎么样 为什么 哪里 哪儿 哪个 哪些 哪天 哪年 几月 几号 多少 多久 我们 你们 他们 她们
它们 这个 那个 这些 那些 一个 一下 一些 没有 有没有 是不是 可以 最近 之前 以前 后来 然后 因为 所以 但是 还是
或者 觉得 知道 记得 提到 提过 说过 曾经 一直 已经 就是 还有 自己 时间 那天 今年 去年 前年 上个月 这个月 上次
""".split())
STOP_CHARS_ZH = frozenset("的了吗呢吧啊呀嘛是在有和跟与也都还就又我你他她它这那去过着会能要想说做干给对把被让从到很")
_MONTHS_EN = {name: index + 1 for index, name in enumerate(
    "january february march april may june july august september october november december".split())}
_MONTHS_EN.update({name[:3]: number for name, number in list(_MONTHS_EN.items()) if name != "may"})
_ZH_NUMBERS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
               "十一": 11, "十二": 12}
_ZH_MONTH = re.compile(r"(十一|十二|[一二三四五六七八九十]|1[0-2]|[1-9])月")
_YEAR = re.compile(r"(?<!\d)(19\d\d|20\d\d)(?!\d)")
_SEASONS_EN = {"spring": (3, 5), "summer": (6, 8), "autumn": (9, 11), "fall": (9, 11), "winter": (12, 14)}
_SEASONS_ZH = {"春天": (3, 5), "夏天": (6, 8), "秋天": (9, 11), "冬天": (12, 14)}

_stemmer = Stemmer.Stemmer("english")
_stem_cache: dict[str, str] = {}


def stem(word: str) -> str:
    """The Snowball English stem of a lowercased word (cached: the vocabulary is small)."""
    found = _stem_cache.get(word)
    if found is None:
        if len(_stem_cache) > 200_000:
            _stem_cache.clear()
        found = _stem_cache[word] = _stemmer.stemWord(word) if word.isascii() and word.isalpha() else word
    return found


def _chinese_terms(run: str, stop: frozenset = frozenset()) -> list[str]:
    """The bigrams of the run's words: no bigram straddles two words. Characters the
    segmenter leaves single in a row (likely an unknown word such as a name) are joined
    back into bigrams; a longer word gives all its bigrams, since the segmenter often glues
    an unknown name to the character after it (小瑾会 -> 小瑾, 瑾会). With `stop` (a query),
    its words give none, and a lone one-character word is kept as it is."""
    terms, singles = [], ""
    for word in [*rjieba.cut(run), ""]:
        if len(word) == 1 and not (stop and word in STOP_CHARS_ZH):
            singles += word
            continue
        if stop and len(singles) == 1:
            terms.append(singles)  # a lone word of one character (画, 狗): a weak key of its own
        for piece in (singles, "" if word in stop else word):
            terms += [piece[i:i + 2] for i in range(len(piece) - 1)]
        singles = ""
    return terms


def _fold(text: str) -> str:
    """Lowercased, without diacritics: how unicode61 sees Latin text."""
    return fold_diacritics(text.lower())


def index_terms(text: str) -> list[str]:
    """The distinct search terms of a text, in order: lowercased Latin words without
    diacritics (as unicode61 indexes them), and the bigrams of Chinese words (as
    `textsearch` indexes Chinese); lone characters are left out."""
    terms: list[str] = []
    for piece in _PIECES.findall(text):
        if _CJK_RUN.fullmatch(piece):
            terms += _chinese_terms(piece)
        else:
            terms += [word for word in _WORD.findall(_fold(piece)) if len(word) > 1 or word.isdigit()]
    return list(dict.fromkeys(terms))


def query_keys(text: str) -> list[str]:
    """The question's search keys: English stems (stop words out) and Chinese bigrams
    (stop words out), distinct, in order."""
    keys: list[str] = []
    for piece in _PIECES.findall(text):
        if _CJK_RUN.fullmatch(piece):
            keys += _chinese_terms(piece, STOP_WORDS_ZH)
        else:
            keys += [stem(word) for word in _WORD.findall(_fold(piece))
                     if (len(word) > 1 or word.isdigit()) and word not in STOP_WORDS_EN]
    return list(dict.fromkeys(keys))


def message_keys(text: str) -> frozenset[str]:
    """The keys a stored message offers: its English stems, Chinese bigrams and characters."""
    keys: set[str] = set()
    for piece in _PIECES.findall(text):
        if _CJK_RUN.fullmatch(piece):
            keys.update(piece[i:i + 2] for i in range(len(piece) - 1))
            keys.update(piece)
        else:
            keys.update(stem(word) for word in _WORD.findall(_fold(piece)))
    return frozenset(keys)


def date_range(text: str, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The span a question points at ("last year", "in May", 去年, 五月, 上个月), in the
    user's zone, or None. A month without a year is its latest past occurrence."""
    lowered = text.lower()
    local = now.astimezone(zone)

    def month_span(year: int, month: int, months: int = 1) -> tuple[datetime, datetime]:
        start = datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=zone)
        end_month = month - 1 + months
        return start, datetime(year + end_month // 12, end_month % 12 + 1, 1, tzinfo=zone)

    def latest(month: int) -> int:
        return local.year if month <= local.month else local.year - 1

    year_match = _YEAR.search(lowered)
    year = int(year_match.group(1)) if year_match else None
    if "last year" in lowered or "去年" in text:
        year = local.year - 1
    elif "前年" in text:
        year = local.year - 2
    elif "this year" in lowered or "今年" in text:
        year = local.year
    if "last month" in lowered or "上个月" in text:
        previous = local.month - 1 or 12
        return month_span(local.year if local.month > 1 else local.year - 1, previous)
    if "last week" in lowered or "上周" in text or "上个星期" in text:
        start = (local - timedelta(days=local.weekday() + 7)).replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=7)
    month = None
    for word in _WORD.findall(lowered):
        if word in _MONTHS_EN and (word != "may" or re.search(r"\b(in|of|last|since|during|early|late) may\b",
                                                              lowered)):
            month = _MONTHS_EN[word]
            break
    zh_month = _ZH_MONTH.search(text)
    if month is None and zh_month:
        value = zh_month.group(1)
        month = _ZH_NUMBERS.get(value) or int(value)
    season = next((span for word, span in _SEASONS_EN.items() if re.search(rf"\b{word}\b", lowered)), None)
    season = season or next((span for word, span in _SEASONS_ZH.items() if word in text), None)
    if month is not None:
        return month_span(year if year is not None else latest(month), month)
    if season is not None:
        first, last = season
        start_year = year if year is not None else (local.year if first <= local.month else local.year - 1)
        return month_span(start_year, first, last - first + 1)
    if year is not None:
        return datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
    return None


class TermStats:
    """Document counts of index terms and the index words of a stem, cached: counting a
    common term scans its whole posting list, and the counts change slowly."""

    def __init__(self, index: RecallIndex, max_entries: int = 50_000):
        self.index = index
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[int, int]] = OrderedDict()  # term -> (count, total when counted)
        self._words: OrderedDict[str, tuple[list[str], int]] = OrderedDict()  # stem -> (index words, total)

    def total(self) -> int:
        """About how many messages are indexed (ids are dense enough for a threshold)."""
        return self.index.highest_message_id()

    def count(self, token: str, total: int) -> int:
        if token.endswith("*"):
            return self._cache[token[:-1]][0]
        cached = self._cache.get(token)
        if cached is not None and cached[1] * 1.1 >= total:
            self._cache.move_to_end(token)
            return cached[0]
        self._cache[token] = (self.index.documents_with(token), total)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return self._cache[token][0]

    def counts(self, terms: Sequence[str], total: int) -> dict[str, int]:
        return {term: self.count(term, total) for term in terms}

    def words(self, key: str, total: int) -> list[str]:
        """The index's words with this stem (a Chinese bigram is its own word; a single
        character stands for the bigrams that start with it, a prefix query)."""
        if len(key) == 1 and _CJK_RUN.match(key):
            if key not in self._cache or self._cache[key][1] * 1.1 < total:
                self._cache[key] = (min(self.index.documents_with_prefix(key), total), total)
            return [key + "*"]
        if not key.isascii() or not key.isalpha() or len(key) < 3:
            return [key]
        cached = self._words.get(key)
        if cached is not None and cached[1] * 1.1 >= total:
            self._words.move_to_end(key)
            return cached[0]
        prefix = key[:-1] if key.endswith(("i", "e", "y")) and len(key) > 3 else key
        rows = self.index.terms_between(prefix, prefix + "{")
        words = [term for term, doc in rows if stem(term) == key]
        for term, doc in rows:
            if term in words:
                self._cache[term] = (doc, total)
        self._words[key] = (words or [key], total)
        while len(self._words) > self.max_entries:
            self._words.popitem(last=False)
        return self._words[key][0]


@dataclass(frozen=True)
class RecallSettings:
    window_share: float = 0.15  # recall may fill the room left, up to this share of the window…
    max_tokens: int = 600  # …and this many tokens: the evidence a question needs does not grow with the window
    max_hits: int = 24  # ranked hits, each with its neighbour
    max_keys: int = 6  # rarest query keys searched
    candidates: int = 120  # messages scored per search
    common_share: float = 0.1  # a key in more than this share of messages is "everywhere"…
    common_floor: int = 8  # …unless it is in at most this many
    common_weight: float = 0.15  # …and then weighs this much (so do the speakers' names)
    char_weight: float = 0.5  # a one-character Chinese word (画, 狗) is a weak key
    search_share: float = 0.01  # keys in more messages than this share (and the floor) only score
    search_floor: int = 50
    min_coverage: float = 0.3  # a hit holds at least this share of the query's weight
    relative_floor: float = 0.25  # and scores at least this share of the best hit
    date_boost: float = 0.5  # a message in the question's date range gains this share of the best weight
    second_pass: float = 0.5  # weight of the multi-hop pass
    second_pass_hits: int = 3  # first hits whose rare words are searched again
    rare_share: float = 0.002  # a hit's word in at most this share of messages is "named" by it
    context_messages: int = 2  # earlier turns searched when the new message has nothing to search for
    message_tokens: int = 150  # a longer recalled message is shortened
    min_similarity: float = 0.35  # an embedding hit must be at least this close
    k1: float = 1.2
    b: float = 0.5


@dataclass
class _Query:
    weights: dict[str, float]  # key -> weight x idf
    words: dict[str, list[str]]  # key -> index words
    searched: list[str]  # keys searched without a date range (not everywhere)


class RecallProvider(ContextProvider):
    def __init__(self, store: Store, *, settings: RecallSettings | None = None, embedder: Embedder | None = None,
                 default_timezone: str = "UTC", clock=utc_now):
        self.store = store
        self.text_index = recall_index(store)
        self.settings = settings or RecallSettings()
        self.embedder = embedder
        self.index = EmbeddingIndex(store, embedder.model) if embedder else None
        self.default_timezone = default_timezone
        self.clock = clock
        self.terms = TermStats(self.text_index)
        self._keys: OrderedDict[int, tuple[int, frozenset[str]]] = OrderedDict()  # id -> (length, keys)
        self._query_vectors: OrderedDict[tuple[int, str], object] = OrderedDict()
        self._indexing: set[int] = set()

    def forget_user(self, user_id: int) -> None:
        """A forget cascade step: nothing held in memory outlives the rows it came from."""
        if self.index is not None:
            self.index.clear()
        self._query_vectors.clear()
        self._keys.clear()

    # -- scope ----------------------------------------------------------------------------
    def scope(self, conversation: Conversation) -> list[int]:
        """The owner's conversations with this persona: recall reaches into earlier ones too."""
        return self.store.conversations.conversation_ids_of(conversation.owner, conversation.persona_id)

    def _outside(self, scope: Sequence[int], window: tuple[int, int]) -> bool:
        """Whether any visible message of the scope is outside the window."""
        return self.text_index.any_outside(scope, window)

    # -- ranking --------------------------------------------------------------------------
    def _query(self, text: str, total: int, names: frozenset[str] = frozenset()) -> _Query:
        """The question's keys with their weights. `names`: the speakers' keys, which are
        everywhere in their own conversations however rare they are in the whole index."""
        s = self.settings
        keys = query_keys(text)
        words = {key: self.terms.words(key, total) for key in keys}
        counts = {key: sum(self.terms.counts(words[key], total).values()) for key in keys}
        keys = [key for key in keys if counts[key] > 0]
        common = max(s.common_floor, total * s.common_share)
        weights = {}
        for key in keys:
            idf = math.log(1 + (total - counts[key] + 0.5) / (counts[key] + 0.5))
            everywhere = counts[key] > common or key in names
            weights[key] = idf * (s.common_weight if everywhere else s.char_weight if len(key) == 1 else 1.0)
        # retrieval reads each searched key's posting list: the long ones only score
        cheap = max(s.search_floor, total * s.search_share)
        usable = sorted((k for k in keys if counts[k] <= common and k not in names), key=lambda k: counts[k])
        searched = [k for k in usable if counts[k] <= cheap][:s.max_keys] or usable[:1]
        return _Query(weights, words, searched)

    def _candidates(self, words: Sequence[str], scope: Sequence[int], window: tuple[int, int],
                    span: tuple[datetime, datetime] | None = None) -> list[tuple[int, str, int]]:
        """(id, content, tokens) of messages holding any of the words, best by the index's rank."""
        if not words:
            return []
        texts = (to_text(span[0]), to_text(span[1])) if span is not None else None
        return self.text_index.matching(words, scope, window, span=texts, limit=self.settings.candidates)

    def _message_keys(self, message_id: int, content: str) -> frozenset[str]:
        cached = self._keys.get(message_id)
        if cached is not None and cached[0] == len(content):  # a continued reply grows
            return cached[1]
        keys = message_keys(content)
        self._keys[message_id] = (len(content), keys)
        while len(self._keys) > 20_000:
            self._keys.popitem(last=False)
        return keys

    def _score(self, query: _Query, candidates, scores: dict[int, float], factor: float = 1.0,
               contents: dict[int, str] | None = None) -> None:
        """Okapi BM25 (term frequency 1: turns are short) of each candidate, added in."""
        s = self.settings
        for message_id, content, tokens in candidates:
            if message_id in scores and factor == 1.0:
                continue
            keys = self._message_keys(message_id, content)
            norm = s.k1 * (1 - s.b + s.b * max(tokens, 1) / 40)
            score = sum(w for key, w in query.weights.items() if key in keys) * (s.k1 + 1) / (1 + norm)
            scores[message_id] = scores.get(message_id, 0.0) + score * factor
            if contents is not None:
                contents[message_id] = content

    def rank(self, conversation: Conversation, query: str, *, context_text: str = "", query_vector=None,
             window: tuple[int, int] | None = None, zone: ZoneInfo | None = None,
             names: Sequence[str] = ()) -> list[int]:
        """Ids of the best old messages for this query, best first, those too weak left out.

        `window`: (conversation id, first message id the request holds); the last turns
        (`context_text`) are searched only when the new message has nothing to search for;
        `names`: the speakers' names, weighed down."""
        s = self.settings
        scope = self.scope(conversation)
        window = window or (conversation.id, conversation.boundary_message_id)
        total = max(self.terms.total(), 1)
        name_keys = frozenset(query_keys(" ".join(names)))
        parsed = self._query(query, total, name_keys)
        if not parsed.weights and context_text:
            parsed = self._query(context_text, total, name_keys)
        scores: dict[int, float] = {}
        contents: dict[int, str] = {}
        words = [w for key in parsed.searched for w in parsed.words[key]]
        self._score(parsed, self._candidates(words, scope, window), scores, contents=contents)
        span = date_range(query, self.clock(), zone or ZoneInfo("UTC"))
        full = sum(parsed.weights.values()) or 1.0
        if span is not None:
            every = [w for key in parsed.weights for w in parsed.words[key]]
            ranged = self._candidates(every, scope, window, span) if every else []
            self._score(parsed, ranged, scores, contents=contents)
            boost = s.date_boost * max(parsed.weights.values(), default=1.0)
            for message_id, _, _ in ranged:
                scores[message_id] += boost
        ranked = self._passing(scores, full)
        if ranked and s.second_pass > 0:
            named = self._named(ranked[:s.second_pass_hits], contents, parsed, total)
            if named:
                # on its own scale: its best hit ranks at `second_pass` of the first pass's best
                second = self._query(" ".join(named), total, name_keys)
                second.weights.update({k: w * 0.5 for k, w in parsed.weights.items() if k not in second.weights})
                second.words.update(parsed.words)
                found: dict[int, float] = {}
                self._score(second, self._candidates([w for k in second.searched for w in second.words[k]],
                                                     scope, window), found)
                found = {i: score for i, score in found.items() if i not in ranked}  # new ones only
                best, second_best = max(scores[i] for i in ranked), max(found.values(), default=0.0)
                for message_id, score in found.items():
                    if score >= s.relative_floor * second_best > 0:
                        scores[message_id] = max(scores.get(message_id, 0.0),
                                                 s.second_pass * best * score / second_best)
                ranked = self._passing(scores, full)
        if query_vector is not None and self.index is not None:
            nearest = self.index.search(scope, query_vector, limit=20, min_similarity=s.min_similarity,
                                        exclude=window)
            fused: dict[int, float] = {}
            for ranking in (ranked, [message_id for message_id, _ in nearest]):
                for position, message_id in enumerate(ranking):
                    fused[message_id] = fused.get(message_id, 0.0) + 1 / (RRF_K + position)
            ranked = sorted(fused, key=lambda i: -fused[i])
        return ranked

    def _passing(self, scores: dict[int, float], full: float) -> list[int]:
        """Ids with enough evidence, best first: a share of the query's weight, and of the best."""
        if not scores:
            return []
        s = self.settings
        best = max(scores.values())
        cut = max(s.min_coverage * full * (s.k1 + 1) / (1 + s.k1), s.relative_floor * best)
        return sorted((i for i, v in scores.items() if v > 0 and v >= cut), key=lambda i: -scores[i])

    def _named(self, hits: Sequence[int], contents: dict[int, str], parsed: _Query, total: int) -> list[str]:
        """The rare words the first hits hold that the question does not (a name, a place)."""
        limit = max(2, total * self.settings.rare_share)
        named: list[str] = []
        for message_id in hits:
            content = contents.get(message_id)
            if content is None:
                continue
            for term in index_terms(content):
                key = stem(term) if term.isascii() else term
                if key in parsed.weights or term in STOP_WORDS_EN or len(term) < 2:
                    continue
                if self.terms.count(term, total) <= limit:
                    named.append(term)
        return list(dict.fromkeys(named))[:6]

    # -- the tail part --------------------------------------------------------------------
    def _neighbour(self, message: Message, window: tuple[int, int]) -> Message | None:
        """The reply to a user message, or the question a reply answers."""
        if message.role == "user":
            found = visible_messages(self.store, message.conversation_id, after_id=message.id, limit=1)
            wanted = "assistant"
        else:
            found_id = self.store.conversations.visible_id_before(message.conversation_id, message.id)
            found = [self.store.conversations.message(found_id)] if found_id is not None else []
            wanted = "user"
        if not found or found[0].role != wanted:
            return None
        neighbour = found[0]
        if neighbour.conversation_id == window[0] and neighbour.id >= window[1]:
            return None  # already in the request
        return neighbour

    def window_of(self, context: TurnContext) -> tuple[int, int]:
        """(conversation id, oldest message id the request holds): what recall leaves out."""
        conversation = context.conversation
        start = context.request.history_start() if context.request is not None else None
        if start is None:
            start = conversation.boundary_message_id if context.request is None else 2 ** 62
        return conversation.id, start

    def recalled(self, context: TurnContext, room: int | None = None, query_vector=None) -> list[Message]:
        """The messages to recall for this turn, oldest first, within `room` (o200k tokens)
        and `window_share` of the window."""
        conversation = context.conversation
        if not context.query.strip():
            return []
        budget = context.budget
        cap = min(int(budget.ours(budget.window) * self.settings.window_share), self.settings.max_tokens)
        if room is not None:
            cap = min(cap, room)
        cap -= count_tokens(HEADER) + 24  # the header and the tail frame's joins
        window = self.window_of(context)
        scope = self.scope(conversation)
        if cap <= 40 or not self._outside(scope, window):
            return []  # no room, or the whole history is in the request
        recent = self.store.conversations.last_settled_contents(conversation.id, self.settings.context_messages)
        zone = _zone(context.user.timezone if context.user else None, self.default_timezone)
        names = [context.persona.name, context.user.name if context.user else ""]
        ranked = self.rank(conversation, context.query, context_text="\n".join(recent),
                           query_vector=query_vector, window=window, zone=zone, names=names)
        in_scope = set(scope)
        chosen: dict[int, Message] = {}
        days: set[tuple[int, str]] = set()
        used = hits = 0
        for message_id in ranked[:self.settings.max_hits * 3]:
            if hits >= self.settings.max_hits or cap - used < 40:
                break
            if message_id in chosen:
                continue
            try:
                message = self.store.conversations.message(message_id)
            except KeyError:  # forgotten since the embeddings were loaded
                continue
            if message.conversation_id not in in_scope:  # an id freed by a forget and given out again
                continue
            group = [message]
            neighbour = self._neighbour(message, window)
            if neighbour is not None and neighbour.id not in chosen:
                group.append(neighbour)
            cost = sum(min(m.tokens, self.settings.message_tokens) + 6 for m in group)
            day = (message.conversation_id, message.created_at[:10])
            cost += 0 if day in days else 12
            if used + cost > cap:
                continue
            for item in group:
                chosen[item.id] = item
            days.add(day)
            used += cost
            hits += 1
        messages = sorted(chosen.values(), key=lambda m: (m.created_at, m.id))
        while messages and count_tokens(self.render(messages, context)) > cap + count_tokens(HEADER):
            messages = messages[:-1]  # the estimate was short (rare): drop the newest
        return messages

    def render(self, messages: Sequence[Message], context: TurnContext) -> str:
        """The header, then each session day's messages under its date, oldest first."""
        zone = _zone(context.user.timezone if context.user else None, self.default_timezone)
        user_name = context.user.name if context.user else "User"
        lines = [HEADER]
        day = None
        for message in messages:
            local = from_text(message.created_at).astimezone(zone)
            if (message.conversation_id, local.date()) != day:
                day = (message.conversation_id, local.date())
                lines.append(f"[{WEEKDAYS[local.weekday()]} {local:%Y-%m-%d}]")
            name = (message.speaker_name or user_name) if message.role == "user" else context.persona.name
            text = message.content
            if message.tokens > self.settings.message_tokens:
                text = truncate_to_tokens(text, self.settings.message_tokens)
            lines.append(f"{local:%H:%M} {name}: {text}")
        return "\n".join(lines)

    def late_tail_parts(self, context: TurnContext, room: int) -> Sequence[TailPart]:
        vector = self._query_vectors.pop((context.conversation.id, context.query), None)
        messages = self.recalled(context, room, vector)
        if not messages:
            return ()
        return [TailPart("recall", self.render(messages, context), tuple(m.id for m in messages))]

    # -- embeddings -----------------------------------------------------------------------
    async def before_turn(self, context: TurnContext) -> None:
        if self.embedder is None or not context.query.strip():
            return
        [vector] = await self.embedder.embed([context.query])
        self._query_vectors[(context.conversation.id, context.query)] = vector
        while len(self._query_vectors) > 64:
            self._query_vectors.popitem(last=False)

    async def after_turn(self, context: TurnContext) -> None:
        """Embed messages that have no embedding yet (a few batches per turn)."""
        if self.embedder is None or self.index is None or context.conversation.id in self._indexing:
            return
        self._indexing.add(context.conversation.id)
        try:
            missing = self.index.missing(self.scope(context.conversation), limit=256)
            if missing:
                vectors = await self.embedder.embed([text for _, text in missing])
                self.index.save([(message_id, vector) for (message_id, _), vector in zip(missing, vectors)])
        finally:
            self._indexing.discard(context.conversation.id)

    async def close(self) -> None:
        if self.embedder is not None:
            await self.embedder.close()
