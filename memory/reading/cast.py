"""The cast of a novel from its text alone: people once each, places kept apart.

Before any model reads the book, the text itself says who its people are, and the
model's answer is then checked against that (a model given a list of names tends to
hand it back, places and doubles included):

* **evidence of a person**: a name that speaks ("said Elizabeth", "“…,” cried Mrs.
  Bennet", 行者道, 八戒笑道), or that wears an honorific (Mr./Mrs./Miss/Lady/Sir/
  Colonel/Captain, 大圣/菩萨/长老/先生/姑娘/公主/元帅);
* **evidence of a place**: a name after "at/in/near/into/towards" or before Park/Hall/
  Lodge/Street…, and never speaking; in Chinese, a name ending in 山/洞/河/国/城/宫/
  寺/庄/岭… (or 军/派/教/会: an organisation). Places and organisations become lore,
  never characters.

**Aliases** are merged into one person. English: a bare surname goes to the most
frequent honorific form that carries it ("Bingley" → "Mr. Bingley"), a given name
takes its full name and "Miss" form ("Elizabeth Bennet", "Miss Elizabeth"), the
common diminutives go to their given name ("Lizzy", "Eliza" → "Elizabeth"), and
"Miss <surname>" goes to the only daughter of that surname named in full ("Miss
Bingley" → "Caroline"), or is left out when several share it ("Miss Bennet"):
better no entry than the same person twice. Different honorifics of one surname
stay different people (Mr. ≠ Mrs. Bennet). Chinese, all from the text:

* a name inside a longer one is the same person (悟空 ⊂ 孙悟空, 八戒 ⊂ 猪八戒), and so
  is a longer name of which it is the two ends (牛王, 牛魔王; 观音, 观世音);
* three-character names sharing their surname (孙悟空, 孙行者, 孙大圣) are one person
  when they almost never stand in the same sentence: two people who share a surname
  meet and talk, two names of one person take turns (co-occurrence);
* a speaker who names himself is that name (猴王道：“…我原有个法名，叫做孙悟空”;
  唐僧道：“贫僧俗家姓陈，法名玄奘”), and a speech that names the one spoken to (“我与
  你起个法名，叫做孙悟空，好么？”) names whoever answers at once; a naming with anyone
  else in it (我师父…, 贫僧将悟空叫做行者) proves nothing, nor does one whose two names
  keep standing together (a disguise: 行者 says 我是小钻风);
* a title said alone as a name (菩萨道：“…”) is the one person who wears it far more
  than anyone else (观音菩萨) when most of the title's scenes name that person; a
  title of many (太子, 国王, 长老 of 唐长老 and 金蝉长老) stays nobody's.

Everything is regex scans and counts over the text (西游记, 735,000 characters, in
about 1.5 s on a quiet machine); nothing here calls a model. `Cast.person_named`
holds names a model proposes to the same people (观世音菩萨, 太宗皇帝).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import rjieba

MAX_PEOPLE = 30

# -- English --------------------------------------------------------------------------
_TITLES = ("Mr", "Mrs", "Miss", "Ms", "Dr", "Lady", "Sir", "Lord", "Colonel", "Captain", "Aunt", "Uncle")
_TITLE = r"(?:Mr|Mrs|Miss|Ms|Dr|Lady|Sir|Lord|Colonel|Captain|Aunt|Uncle)"
_WORD = r"[A-Z][a-z]+"
_HONORIFIC_NAME = re.compile(rf"\b({_TITLE})\.? ((?:de )?{_WORD})\b")
_FULL_NAME = re.compile(rf"\b({_WORD}) ((?:de )?{_WORD})\b")
_SPEECH_VERBS = r"(?:said|cried|replied|answered|returned|added|continued|observed|asked|exclaimed|whispered|repeated)"
_SPEAKER_AFTER = re.compile(rf"\b{_SPEECH_VERBS} (?:({_TITLE})\.? )?((?:de )?{_WORD})\b")
_SPEAKER_BEFORE = re.compile(rf"[,!?]\W? (?:({_TITLE})\.? )?((?:de )?{_WORD}) {_SPEECH_VERBS}\b")
_CAPITALIZED = re.compile(rf"\b{_WORD}\b")
_PLACE_BEFORE = re.compile(rf"\b(?:at|in|near|into|towards|within|through|to|from) ({_WORD})\b")
_PLACE_WORD = re.compile(
    r"\b(?:Park|Hall|House|Lodge|Street|Place|Abbey|Castle|Court|Square|Road|Lane|Manor|Green|Mount|Church|"
    r"Inn|Town|City|County|shire|Regiment|Militia|Company|Society)\b")
_PLACE_AFTER = re.compile(
    rf"\b({_WORD}) (?:Park|Hall|House|Lodge|Street|Place|Abbey|Castle|Court|Square|Road|Lane|Manor|Green|Mount)\b")
_NOT_NAMES = frozenset(
    "The A An It He She They We I You His Her Their Our My Your But And Or If When Then There This That These Those "
    "What Who Why How Yes No Not In On At Of To For With By From As So Chapter Book Part Volume Oh Well Upon "
    "After Before While Though Although However Indeed Perhaps Such Every Some Any All One Two Three Nothing "
    "Good Dear Do Does Did Is Was Are Were Be Have Has Had Will Would Shall Should Can Could May Might Must Let "
    "Here Now Very Much More Most Only Even Still Yet Just Soon Whatever Nobody Everybody Mamma Papa Sister "
    "Brother Heaven God Lord Sir Madam Ma Miss Mr Mrs Lady Colonel Captain Monday Tuesday Wednesday Thursday "
    "Friday Saturday Sunday January February March April June July August September October November December "
    "Christmas Michaelmas English French".split())
_DIMINUTIVES = {  # common English pet names, and the given name they stand for
    "Lizzy": "Elizabeth", "Lizzie": "Elizabeth", "Eliza": "Elizabeth", "Liz": "Elizabeth", "Betsy": "Elizabeth",
    "Beth": "Elizabeth", "Bess": "Elizabeth", "Kitty": "Catherine", "Kate": "Catherine", "Jenny": "Jane",
    "Charley": "Charles", "Charlie": "Charles", "Tom": "Thomas", "Dick": "Richard", "Bob": "Robert",
    "Bill": "William", "Will": "William", "Jim": "James", "Jack": "John", "Johnny": "John", "Ned": "Edward",
    "Ted": "Edward", "Harry": "Henry", "Fanny": "Frances", "Polly": "Mary", "Molly": "Mary", "Peggy": "Margaret",
    "Meg": "Margaret", "Sally": "Sarah", "Nancy": "Anne", "Annie": "Anne", "Nelly": "Eleanor", "Sukey": "Susan",
}
_FAMILY_TITLES = ("Mr", "Mrs", "Miss", "Ms")
# A mother named this often ("Mrs. Bennet") means a family of daughters: "Miss Bennet"
# is then one of several (the eldest, by custom), which the text alone cannot tell.
_FAMILY_OF_DAUGHTERS = 10  # honorifics of a surname; Lady/Sir/Colonel… may precede given names

# -- Chinese --------------------------------------------------------------------------
_CJK = "\u4e00-\u9fff"
_ZH_SPEECH = re.compile(r"(?:道|曰)[：:，,“「]")
# How a speaker speaks, between the name and 道: 行者笑道, 八戒闻言大惊道, 三藏合掌道.
_ZH_MANNER = re.compile(
    r"(?:闻言|大惊|大喜|大怒|欢喜|笑|问|叫|答|喝|骂|哭|怒|喜|便|又|也|忙|只|却|大|高|厉声|低头|合掌|上前|近前|连忙|急|"
    r"听说|听见|见了|在旁|暗|心中暗想|说|应|慌|冷笑|陪笑|点头|摇手|躬身|欠身|下马|勒马|回头|开言|口中|对|与|向|遂|乃|即)+$")
_ZH_HONORIFICS = ("大圣", "菩萨", "长老", "先生", "姑娘", "公主", "元帅", "真君", "天王", "太子", "老君", "大仙",
                  "娘娘", "夫人", "小姐", "太公", "员外", "国王", "大王", "禅师", "法师", "尊者", "星君", "龙王")
_ZH_PLACE_ENDINGS = set("山洞河国城宫殿寺庄岭关岛洲府州县村庙观院阁峰涧江湖海泉林园界岸桥门台楼亭郡乡")
_ZH_ORGANISATION_ENDINGS = set("军派教会帮营寨党")
_ZH_NOT_NAMES = frozenset(
    "我们 你们 他们 她们 那人 这人 众人 二人 两个 一个 只见 不知 不是 如何 怎么 今日 如今 这个 那个 自己 心中 一齐 那里 "
    "这里 什么 怎的 原来 正是 便是 还是 说着 因笑 因又 于是 那厮 那怪 老者 又问 又道 只得 笑着 听了 看了 答应 回道 却说 "
    "众猴 众妖 众僧 众神 小妖 妖精 妖怪 师徒 徒弟 师兄 师弟 兄弟 弟子 和尚 道士 老爷 爷爷 奶奶 妈妈 那妖 那魔 那道 那和 "
    "那老 那女 那呆 那猴 这猴 这厮 那些 大家 二位 列位 诸位 我等 汝等 贫僧 老孙 俺老 我老 急急 连忙 心里 口里 闻言 笑道 "
    "今番 此时 此间 只听 忽听 听得 叫声 大喜 大惊 大怒 欢喜 上前 近前 向前 叫做 唤做 不曾 不敢 不要 只是 也是 就是 都是 "
    "正在 正要 又是 还有 没有 有个 有一 一声 一齐 一个个 那个个 两个个 长老 菩萨 师父 行者道".split())
# Role nouns said of many ("the king", "the demon"), not the name of one.
_ZH_GENERIC = frozenset(
    "国王 公主 太子 龙王 妖魔 妖王 老魔 怪物 魔王 大仙 娘娘 女子 老妖 妖邪 魔头 怪道 众女 小妖 大王 二王 三王 二怪 三怪 老怪 "
    "妖怪 妖精 女怪 老者 老儿 老道 童子 仙童 行童 道童 小童 小的 使者 将军 土地 山神 天将 天兵 神将 众神 众仙 众僧 众官 "
    "叩头 扯住 常言 十分 不住 不尽 忍不住 铁棒 好大圣 多官 战兢兢 兢兢 礼拜 下拜 传旨 妇人 王子 揭谛 三太子 二魔 三魔 老王 "
    "长老 菩萨 先生 姑娘 元帅 真君 天王 老君 夫人 小姐 太公 员外 禅师 法师 尊者 星君 师父 师兄 和尚 道士 呆子 "
    "猴子 猴头 泼猴 猢狲 老孙 老猪 夯货 徒弟 弟子 贤弟 哥哥 兄弟 女王 皇帝 陛下 驸马 丞相 太师 判官 阎王 鬼使 道人 "
    "行者闻 八戒闻 那呆 那老 那妖 那怪 那魔 那女 那国 那王 那公 那些 众人 大众 一人 一个 二人 三人 四众 师徒".split())
_ZH_NOT_FIRST = set("了的着得地也又便只却都就在是有这那我你他她它们每各众诸此其之于与和及把被将向对从个")
_ZH_NOT_LAST = set("了着的得地们也又便只却都就在是有这那来去上下里中说道笑问叫")
_ZH_CANDIDATES = 150
_ZH_THREE_SHARE = 0.1
_ZH_PHRASE_HEAD_SHARE = 0.25
_SCENE_CHARS = 10_000  # a stretch of text of this size is one scene
_SHARED_SCENES = 0.7
_ZH_RULERS = set("王帝皇后妃宗祖")  # 唐王, 唐太宗: a dynasty's ruler, not a family name
_MIN_SHARED_SCENES = 3
# Common surnames (and the few 西游记 uses: 猪, 沙); a name's first character is a
# surname only if it is one of these (三藏, 老龙王, 二郎 are no family names).
_ZH_SURNAMES = set(
    "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛奚范彭郎鲁韦昌马苗凤花方俞任"
    "袁柳酆鲍史唐费廉岑薛雷贺倪汤滕殷罗毕郝邬安常乐于时傅皮卞齐康伍余元卜顾孟平黄和穆萧尹姚邵湛汪祁毛禹狄米贝明臧计伏成戴"
    "谈宋茅庞熊纪舒屈项祝董梁杜阮蓝闵席季麻强贾路娄危江童颜郭梅盛林刁钟徐邱骆高夏蔡田樊胡凌霍虞万支柯昝管卢莫经房裘缪干解"
    "应宗丁宣邓郁单杭洪包诸左石崔吉龚程嵇邢滑裴陆荣翁荀羊惠甄曲家封芮羿储靳汲邴糜松井段富巫乌焦巴弓牧隗山谷车侯宓蓬全郗班"
    "仰秋仲伊宫宁仇栾暴甘厉戎祖武符刘景詹束龙叶幸司韶郜黎蓟薄印宿白怀蒲邰从鄂索咸籍赖卓蔺屠蒙池乔阴胥能苍双闻莘党翟谭贡劳"
    "逄姬申扶堵冉宰郦雍却璩桑桂濮牛寿通边扈燕冀浦尚农温别庄晏柴瞿阎充慕连茹习宦艾鱼容向古易慎戈廖庾终暨居衡步都耿满弘匡"
    "国文寇广禄阙东欧殳沃利蔚越夔隆师巩厍聂晁勾敖融冷訾辛阚那简饶空曾毋沙乜养鞠须丰巢关蒯相查后荆红游竺权逯盖益桓公猪")
_NOT_NOUN_TAGS = set("vadpcurmqtfy")
_ZH_FULL_NAME_LOOKUPS = 40
_ZH_FULL_NAME_SHARE = 0.02
_ZH_INFIX_SHARE = 0.2  # 牛魔王 is a fair share of the uses of 牛王
_ZH_NOT_INFIX = _ZH_NOT_FIRST | _ZH_NOT_LAST | set("一二三四五六七八九十百千万几")  # 手一指 is no name
# Naming himself: a first-person word (not 我们/我等), then within the clause a naming
# word, then the name; nobody else in between (你, 他, 我师父, 我徒弟, 我母; 贫僧将悟空叫做
# 行者 names 悟空).
_ZH_FIRST_PERSON = re.compile(r"我(?![们等])|吾(?!等)|俺(?!们)|贫僧|老孙|小僧|贫道|老身|奴家|妾身|在下|老汉|小人|朕")
_ZH_SECOND_PERSON = re.compile(r"[你汝尔](?![们等])")
_ZH_OTHER_PERSON = re.compile(r"[你您汝尔他她其伊父母爹娘妻夫兄弟姐妹哥嫂徒儿女师祖主令尊郎舅姑叔伯婆将把替给教]")
_ANSWER_GAP = 40  # characters between a speech and the next one that answers it
_ZH_NAMING = re.compile(r"法名|法号|法讳|叫做|叫作|唤做|唤作|名唤|名叫|名为|称为|称做|道号|号曰|号作|号为|贱号|小名|"
                        r"乳名|俗名|表字|混名|"
                        r"(?<=[我吾])(?:乃是|乃|就是|便是|是)")
_ZH_NAMING_CONNECTORS = "是为作做曰个，：:“‘「『 "
_ZH_NAME_END = re.compile(r"(?:[，。！？、；：”’」』\s]|是也|也|哩|呢|啊|了)")
_ZH_SPEECH_OPENING = re.compile(r"(?:道|曰)[：:，,]?[“「]")
_SELF_NAMING_COOCCURRENCE = 0.1  # share of the rarer name's sentences a self-naming still allows
_FULL_NAME_USE = 0.3  # a full name written this share as often as the group's most used name is shown
_MIN_EPITHET_SPEECHES = 10  # a title that speaks this often is used as a name (菩萨道)
_EPITHET_DOMINANCE = 2  # its most frequent wearer wears it this many times more than the next

_ZH_SENTENCE = re.compile(r"[^。！？!?\n]+")
_COOCCURRENCE_LIMIT = 0.03  # names of one person share a sentence less often than this (share of the rarer)


@dataclass
class CastMember:
    name: str
    aliases: list[str] = field(default_factory=list)
    mentions: int = 0
    speaks: int = 0  # times a speech attribution names them

    @property
    def names(self) -> list[str]:
        return [self.name, *self.aliases]


@dataclass
class Cast:
    people: list[CastMember]  # most mentioned first
    places: list[str] = field(default_factory=list)  # places and organisations: lore, not characters

    def member(self, name: str) -> CastMember | None:
        """The person this name (or alias) belongs to, if any."""
        key = name.strip().casefold()
        for person in self.people:
            if key in (n.casefold() for n in person.names):
                return person
        return None

    def person_named(self, name: str) -> CastMember | None:
        """`member`, or for a Chinese name not in the cast the one person whose name it
        spells out: a name inside it (观世音菩萨 holds 观世音, 太宗皇帝 holds 太宗), or a
        longer name with a character left out (牛魔王 of 牛王). A title alone (菩萨 in 文殊
        菩萨) proves nothing; two people found in it, nobody."""
        exact = self.member(name)
        name = name.strip()
        if exact is not None or not re.fullmatch(f"[{_CJK}]{{3,8}}", name):
            return exact
        best: dict[int, set[int]] = defaultdict(set)
        for index, person in enumerate(self.people):
            for known in person.names:
                if len(known) < 2 or known in _ZH_HONORIFICS or known in _ZH_GENERIC:
                    continue
                if known in name or (known[0] == name[0] and known[-1] == name[-1]
                                     and len(name) - len(known) <= 2 and _spells(known, name)):
                    best[len(known)].add(index)
        if not best:
            return None
        owners = best[max(best)]
        return self.people[owners.pop()] if len(owners) == 1 else None

    def is_place(self, name: str) -> bool:
        """One of the places, a longer name of one ("Netherfield Park"), or a name made
        like a place (… Hall, …山, …国) that is no one of the cast."""
        name = name.strip()
        known = {place.casefold() for place in self.places}
        if name.casefold() in known or any(word.casefold() in known for word in name.split()):
            return True
        if self.member(name) is not None:
            return False
        if _PLACE_WORD.search(name):
            return True
        return bool(re.fullmatch(f"[{_CJK}]{{2,6}}", name)) and name[-1] in _ZH_PLACE_ENDINGS | _ZH_ORGANISATION_ENDINGS


def _spells(short: str, long: str) -> bool:
    """The characters of `short` appear in `long` in order."""
    rest = iter(long)
    return all(char in rest for char in short)


def is_chinese(text: str) -> bool:
    sample = text[:20000]
    return sum(1 for char in sample if "\u4e00" <= char <= "\u9fff") > len(sample) / 4


def find_cast(text: str, limit: int = MAX_PEOPLE) -> Cast:
    """People (aliases merged) and places named in `text`; see the module doc."""
    cast = _chinese_cast(text) if is_chinese(text) else _english_cast(text)
    cast.people = cast.people[:limit]
    return cast


# -- English --------------------------------------------------------------------------------
def _english_cast(text: str) -> Cast:
    honorific = Counter((title, name) for title, name in _HONORIFIC_NAME.findall(text))
    honorific = Counter({key: count for key, count in honorific.items() if count >= 2 and key[1] not in _NOT_NAMES})
    speakers: Counter[str] = Counter()
    for pattern in (_SPEAKER_AFTER, _SPEAKER_BEFORE):
        for title, name in pattern.findall(text):
            if name not in _NOT_NAMES:
                speakers[_form(title, name) if title else name] += 1
    words = Counter(_CAPITALIZED.findall(text))
    lowered = Counter(re.findall(r"\b[a-z]+\b", text[:400_000]))
    common = lambda name: lowered[name.lower()] * 4 >= max(1, words[name])  # noqa: E731 - "Will", "Hope"
    family = {name for (title, name) in honorific if title in ("Mr", "Mrs")}
    named = {name for _, name in honorific}
    house = family | {name for (title, name) in honorific if title in ("Lady", "Sir", "Lord")}
    full_names = Counter((given, surname) for given, surname in _FULL_NAME.findall(text)
                         if surname in house and given not in _NOT_NAMES and given not in _TITLES
                         and given not in family)
    given_names = {given for given, _ in full_names} | {n for n in speakers if " " not in n and n not in family}
    surnames = {name for (title, name) in honorific if title in _FAMILY_TITLES} - given_names
    titled = {name: _form(title, name) for (title, name), _ in sorted(honorific.items(), key=lambda kv: kv[1])
              if title not in _FAMILY_TITLES}
    # Places: after a place preposition or before Park/Hall…, never speaking, never titled.
    place_votes = Counter(_PLACE_BEFORE.findall(text))
    for name, count in Counter(_PLACE_AFTER.findall(text)).items():
        place_votes[name] += 3 * count
    places = sorted(name for name, votes in place_votes.items()
                    if votes >= 2 and name not in _NOT_NAMES and speakers[name] == 0 and name not in named
                    and name not in given_names and not common(name) and votes * 3 >= words[name])
    place_set = set(places)

    people: dict[str, CastMember] = {}

    def add(name: str, mentions: int) -> CastMember:
        person = people.setdefault(name, CastMember(name))
        person.mentions += mentions
        return person

    def alias(person: CastMember, name: str, mentions: int) -> None:
        if name != person.name and name not in person.aliases:
            person.aliases.append(name)
        person.mentions += mentions

    # People of rank ("Lady Catherine", "Sir William", "Colonel Fitzwilliam") and family
    # forms ("Mr. Darcy", "Mrs. Bennet") are people of their own.
    for (title, name), count in honorific.most_common():
        if title not in _FAMILY_TITLES:
            add(_form(title, name), count)
        elif title != "Miss" or name in surnames:
            if name not in place_set:
                add(_form(title, name), count) if title != "Miss" else None
    # Given names: speakers or first names of a full name; a given name that also
    # takes a title is that titled person ("Catherine" → "Lady Catherine").
    for name in sorted(given_names, key=lambda n: -words[n]):
        if (name in place_set or name in _NOT_NAMES or name in _DIMINUTIVES or common(name)
                or words[name] < 3):
            continue
        bare = words[name] - sum(c for (t, n), c in honorific.items() if n == name)
        if name in titled:
            alias(people[titled[name]], name, max(0, bare))
        else:
            add(name, max(0, bare))
    for pet, given in _DIMINUTIVES.items():
        if words[pet] < 2 or common(pet):
            continue
        if given in people:
            alias(people[given], pet, words[pet])
        elif speakers[pet] or pet in given_names:
            add(pet, words[pet])
    # "Miss Elizabeth" is Elizabeth; "Miss Bingley" the one daughter named in full
    # ("Caroline Bingley"); "Miss Bennet", one of several, is left out.
    owner_of = {n: person for person in people.values() for n in person.names}
    for (title, name), count in honorific.items():
        if title != "Miss":
            continue
        form = _form(title, name)
        if name in owner_of:
            alias(owner_of[name], form, count)
            continue
        if name not in surnames or name in place_set:
            continue
        daughters = [given for (given, surname) in full_names if surname == name and given in people]
        mothers = sum(c for (t, n), c in honorific.items() if n == name and t in ("Mrs", "Lady"))
        if len(daughters) == 1 and mothers < _FAMILY_OF_DAUGHTERS:
            alias(people[daughters[0]], form, count)
        elif not daughters and mothers < _FAMILY_OF_DAUGHTERS:
            add(form, count)
    # A bare surname is its man's ("Darcy" → "Mr. Darcy"), else its most frequent form's.
    for name in surnames | {n for n in family if n not in people}:
        if name in people or name in place_set:
            continue
        forms = [(title == "Mr", count, _form(title, n)) for (title, n), count in honorific.items()
                 if n == name and _form(title, n) in people]
        if not forms:
            continue
        target = people[max(forms)[2]]
        bare = words[name] - sum(c for (t, n), c in honorific.items() if n == name)
        if bare > 0:
            alias(target, name, bare)
    # Full names go with their given name, or with the titled person they name.
    for (given, surname), count in full_names.items():
        owner = people.get(given) or (people.get(titled[given]) if given in titled else None)
        if owner is not None:
            alias(owner, f"{given} {surname}", 0)
    for person in people.values():
        person.speaks = speakers[person.name] + sum(speakers[a] for a in person.aliases)
    ranked = sorted((p for p in people.values() if p.mentions >= 3), key=lambda p: -p.mentions)
    return Cast(ranked, places)


def _form(title: str, name: str) -> str:
    return f"{title}. {name}" if title in ("Mr", "Mrs", "Ms", "Dr") else f"{title} {name}"


# -- Chinese --------------------------------------------------------------------------------
def _chinese_cast(text: str) -> Cast:
    # The two and the three characters before each speech verb (less the manner of
    # speaking); a three-character form counts as a name when it is a fair share of
    # its two-character tail's speeches (孙悟空 of 悟空), not a stray character before
    # it (怨行者 of 行者).
    twos: Counter[str] = Counter()
    threes: Counter[str] = Counter()
    for match in _ZH_SPEECH.finditer(text):
        before = text[max(0, match.start() - 10) : match.start()]
        before = _ZH_MANNER.sub("", before)
        if len(before) >= 2 and all("\u4e00" <= c <= "\u9fff" for c in before[-2:]):
            twos[before[-2:]] += 1
            if len(before) >= 3 and "\u4e00" <= before[-3] <= "\u9fff":
                threes[before[-3:]] += 1
    speakers: Counter[str] = Counter()
    for name, count in twos.items():
        if _trim_zh(name) == name:
            speakers[name] += count
    for name, count in threes.items():
        if count >= 3 and count >= _ZH_THREE_SHARE * twos[name[1:]] and _trim_zh(name) == name:
            speakers[name] += count
    titled: Counter[str] = Counter()
    for honorific in _ZH_HONORIFICS:  # "孙大圣", "观音菩萨", "唐长老"
        for match in re.finditer(rf"([{_CJK}]{{1,2}}){honorific}", text):
            name = _trim_zh(match.group(1) + honorific)
            if name and name not in _ZH_GENERIC:
                titled[name] += 1
    candidates = [name for name, count in speakers.most_common(_ZH_CANDIDATES) if count >= 3]
    for name in [n for n in candidates if len(n) == 2][:_ZH_FULL_NAME_LOOKUPS]:  # 孙+悟空, 猪+八戒, 唐+三藏
        before = Counter(re.findall(rf"([{_CJK}]){name}", text))
        total = text.count(name)
        for char, count in before.most_common(3):
            full = char + name
            if (count >= max(5, _ZH_FULL_NAME_SHARE * total) and char not in _ZH_NOT_FIRST
                    and not any(other.endswith(char) for other in candidates if len(other) == 2)
                    and full not in candidates and _trim_zh(full) == full and full not in _ZH_GENERIC
                    and _starts_phrases(text, full)):
                candidates.append(full)
    candidates += [name for name, count in titled.most_common(_ZH_CANDIDATES)
                   if count >= 5 and name not in speakers and _starts_phrases(text, name)]
    candidates = [name for name in candidates if not _word_of_another_kind(name)]
    counts = {name: text.count(name) for name in candidates}
    endings = "".join(sorted(_ZH_PLACE_ENDINGS | _ZH_ORGANISATION_ENDINGS))
    went = Counter(re.findall(rf"(?:到|往|在|至|回|上|离|出|进|过|入|奔|转|归)([{_CJK}]{{1,3}}[{endings}])", text))
    places = sorted({name for name in candidates if name[-1] in endings and not name.endswith(_ZH_HONORIFICS)}
                    | {name for name, count in went.items() if count >= 3 and _trim_zh(name) == name
                       and not _word_of_another_kind(name)})
    people_names = [name for name in candidates
                    if name not in places and name not in _ZH_GENERIC and counts[name] >= 5]
    # A two-character name may be the ends of a longer one (牛王 of 牛魔王, 十王 of 十代阎王).
    infixed = {full: name for name in people_names if len(name) == 2 for full in _infixed(text, name, people_names)}
    people_names += list(infixed)
    counts.update({full: text.count(full) for full in infixed})
    # A bare title that speaks as a name (菩萨道：“…”) is the one person who wears it most
    # (观音菩萨, also called 观音 and 观世音), when that person is named in most of the
    # title's scenes; the wearer then goes through the merges below like any name.
    epithets = _epithets(text, twos, titled, people_names)
    epithet_names = {holder: [n for n in (stem, *_infixed(text, stem, people_names)) if n]
                     for holder, (_, stem) in epithets.items()}
    for holder, names in epithet_names.items():
        for name in (holder, *names):
            if name not in people_names:
                people_names.append(name)
                counts[name] = text.count(name)
    # Union-find over names: containment, then shared surnames that take turns.
    parent = {name: name for name in people_names}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    def union(a: str, b: str) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra

    sentences: list[str] = []

    def one_person(first: str, second: str) -> bool:
        nonlocal sentences
        if not _same_scenes(text, first, second):
            return False
        sentences = sentences or _ZH_SENTENCE.findall(text)
        return _take_turns(sentences, [first, second])

    # Names sharing a surname that go through the book together and take turns:
    # 孙悟空, 孙行者, 孙大圣; 唐僧, 唐长老, 唐三藏 (not 唐王, the emperor of chapters 9-12).
    by_surname: dict[str, list[str]] = defaultdict(list)
    for name in people_names:
        if name[0] in _ZH_SURNAMES and (len(name) == 3 or any(len(o) == 3 and o[0] == name[0] for o in people_names)):
            # A dynasty's ruler (唐王, 唐太宗) shares the name only with other rulers.
            by_surname[name[0] + ("王" if name[-1] in _ZH_RULERS else "")].append(name)
    for names in by_surname.values():
        for index, first in enumerate(names):
            for second in names[index + 1 :]:
                if root(first) != root(second) and one_person(first, second):
                    union(first, second)
    # A name inside a longer one is that person (悟空 in 孙悟空); inside several, the
    # longer ones are one person if they go together and take turns (孙大圣, 齐天大圣).
    for name in sorted(people_names, key=len):
        holders = sorted((other for other in people_names if other != name and name in other),
                         key=lambda other: -counts[other])
        if not holders:
            continue
        union(holders[0], name)  # the most used of them otherwise (三藏 of 唐三藏, not of 三藏法师)
        for holder in holders[1:]:
            if root(holder) != root(holders[0]) and one_person(holders[0], holder):
                union(holders[0], holder)
    # The short form of a longer name (牛王, 牛魔王), when the two take turns.
    for full, short in infixed.items():
        if full in parent and short in parent and root(full) != root(short):
            sentences = sentences or _ZH_SENTENCE.findall(text)
            if _take_turns(sentences, [full, short]):
                union(full, short)
    # A speaker who names himself (猴王道：“…我原有个法名，叫做孙悟空”; 唐僧道：“贫僧俗家
    # 姓陈，法名玄奘”) is the person of that name, unless the two names often stand in one
    # sentence: a disguise (行者 says 我是小钻风 while the narration names them both).
    # The namings themselves put both names in one sentence, and are not counted; a
    # name inside the other (大圣道：“我乃齐天大圣”) is taken as said.
    for (speaker, named), votes in Counter(_self_namings(text, people_names)).items():
        if root(speaker) != root(named):
            sentences = sentences or _ZH_SENTENCE.findall(text)
            if speaker in named or named in speaker or _take_turns(
                    sentences, [speaker, named], _SELF_NAMING_COOCCURRENCE, allowed=votes):
                union(speaker, named)
    for holder, names in epithet_names.items():
        for name in names:
            union(holder, name)
    groups: dict[str, list[str]] = defaultdict(list)
    for name in people_names:
        groups[root(name)].append(name)
    titles_of: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for holder, (epithet, stem) in epithets.items():
        bare = text.count(epithet) - sum(count for name, count in titled.items() if name.endswith(epithet))
        titles_of[root(holder)].append((epithet, max(0, bare)))
    people = []
    for members in groups.values():
        # Shown by the name it speaks under most, a full name if it speaks or is written
        # fairly often (牛魔王 beside 牛王, 观音菩萨 beside 观音).
        top = max(speakers[m] for m in members)
        most = max(counts[m] for m in members)
        members.sort(key=lambda n: (-(len(n) >= 3 and (speakers[n] >= 0.1 * top or counts[n] >= _FULL_NAME_USE * most)),
                                    -speakers[n], -counts[n]))
        outer = [m for m in members if not any(m != o and m in o for o in members)]
        mentions = sum(counts[m] for m in outer) + sum(
            max(0, counts[m] - sum(counts[o] for o in members if o != m and m in o)) for m in members if m not in outer)
        titles = titles_of[root(members[0])]
        mentions += sum(count for _, count in titles)
        people.append(CastMember(members[0], list(dict.fromkeys(members[1:] + [t for t, _ in titles])), mentions,
                                 sum(speakers[m] for m in members) + sum(twos[t] for t, _ in titles)))
    people.sort(key=lambda p: -p.mentions)
    return Cast(people, places)


def _starts_phrases(text: str, name: str) -> bool:
    """A full name stands at the head of a phrase (after punctuation, 那, 却说…) in a fair
    share of its uses; "保唐僧" (a verb before 唐僧) does not."""
    starts = [match.start() for match in re.finditer(re.escape(name), text)]
    heads = sum(1 for at in starts if at == 0 or not "\u4e00" <= text[at - 1] <= "\u9fff" or text[at - 1] in "那这"
                or text[at - 2 : at] in ("却说", "只见", "原来"))
    return heads >= _ZH_PHRASE_HEAD_SHARE * len(starts)


def _word_of_another_kind(name: str) -> bool:
    """jieba knows it as one word that is no noun: a verb (磕头), adjective (心惊), adverb…"""
    tags = rjieba.tag(name)
    return len(tags) == 1 and tags[0][1][:1] in _NOT_NOUN_TAGS


def _trim_zh(name: str) -> str | None:
    """A candidate without the particles and verbs around it; None if it is no name."""
    name = name.lstrip("了与递对向把被将和同跟叫请问说见看听在吩咐教让令着得")
    if len(name) < 2 or name in _ZH_NOT_NAMES or name[-1] in _ZH_NOT_LAST or name[0] in _ZH_NOT_FIRST:
        return None
    return name


def _take_turns(sentences: list[str], names: list[str], limit: float = _COOCCURRENCE_LIMIT, allowed: int = 0) -> bool:
    """True when the names almost never share a sentence (see the module doc), not
    counting `allowed` sentences known to hold both for another reason."""
    present = [sum(1 for s in sentences if name in s) for name in names]
    if min(present) == 0:
        return False
    together = sum(1 for s in sentences if all(name in s for name in names))
    return together - allowed <= limit * min(present)


def _self_namings(text: str, names: list[str]) -> list[tuple[str, str]]:
    """(speaker, name) for each speech in which a known speaker names himself: 猴王道：
    “不劳师父盛意，我原有个法名，叫做孙悟空” gives (猴王, 孙悟空); 三藏道：“…我的法名叫
    做陈玄奘” gives (三藏, 玄奘). A speech that names the one spoken to (祖师道：“…我与
    你起个法名，叫做孙悟空，好么？”) names whoever answers (猴王笑道：“好！…”)."""
    known = set(names)
    longest = max(map(len, names), default=0)
    by_ending = sorted(names, key=len, reverse=True)
    speeches = []  # (speaker or None, where its attribution starts, where it ends, the speech)
    for opening in _ZH_SPEECH_OPENING.finditer(text):
        before = _ZH_MANNER.sub("", text[max(0, opening.start() - 10) : opening.start()])
        speaker = next((name for name in by_ending if before.endswith(name)), None)
        close = text.find("”", opening.end(), opening.end() + 400)
        close = close if close > 0 else opening.end() + 400
        speeches.append((speaker, opening.start(), close, text[opening.end() : close]))
    found = []
    for index, (speaker, _, end, speech) in enumerate(speeches):
        if speaker is None:
            continue
        for naming in _ZH_NAMING.finditer(speech):
            clause = re.split(r"[。！？]", speech[max(0, naming.start() - 16) : naming.end()])[-1]
            clause = clause[: len(clause) - len(naming.group(0))]
            rest = speech[naming.end() : naming.end() + longest + 4].lstrip(_ZH_NAMING_CONNECTORS)
            named = _name_at(rest, known, longest)
            if named is None:
                continue
            person = _named_one(clause, known)
            if person == "self":
                person = speaker
            elif person == "addressee":  # the next speech, if it answers at once
                answer = speeches[index + 1] if index + 1 < len(speeches) else None
                person = answer[0] if answer and answer[1] - end <= _ANSWER_GAP else None
            if person is not None and person != named:
                found.append((person, named))
    return found


def _named_one(clause: str, known: set[str]) -> str | None:
    """Whom the naming that ends `clause` names: "self" after a first-person word, the
    "addressee" after 你 (我与你起个法名，叫做…), None when anyone else stands between
    (我师父, 我徒弟, 贫僧将悟空叫做行者: the naming is of someone else)."""
    marks = [(m.end(), "self") for m in _ZH_FIRST_PERSON.finditer(clause)]
    marks += [(m.end(), "addressee") for m in _ZH_SECOND_PERSON.finditer(clause)]
    if not marks:
        return None
    end, person = max(marks)
    between = clause[end:]
    if _ZH_OTHER_PERSON.search(between) or any(name in between for name in known):
        return None
    return person


def _name_at(rest: str, known: set[str], longest: int) -> str | None:
    """The known name that `rest` starts with (or starts with after a surname: 陈+玄奘),
    ending where the phrase ends (not 牛魔王的兄弟, not 托塔天王三太子)."""
    for skip in (0, 1):
        if skip and rest[:1] not in _ZH_SURNAMES:
            break
        for size in range(min(longest, len(rest) - skip), 1, -1):
            name = rest[skip : skip + size]
            if name in known and _ZH_NAME_END.match(rest, skip + size):
                return name
    return None


def _epithets(text: str, speakers: Counter, titled: Counter, names: list[str]) -> dict[str, tuple[str, str]]:
    """{holder: (title, stem)}: a title said alone as a name (菩萨道：, 139 times) that one
    person wears far more than anyone else (观音菩萨 50, the next 18), and whose scenes
    mostly name that person: 菩萨 is 观音菩萨 (stem 观音, used alone too). 太子 is not 哪吒
    太子: the princes of other kingdoms have the title's later scenes."""
    found = {}
    known = set(names)
    for title in _ZH_HONORIFICS:
        if title in known or speakers[title] < _MIN_EPITHET_SPEECHES:
            continue
        ranked = Counter({name: count for name, count in titled.items()
                          if name.endswith(title) and name != title}).most_common(2)
        if not ranked or (len(ranked) > 1 and ranked[0][1] < _EPITHET_DOMINANCE * ranked[1][1]):
            continue
        holder = ranked[0][0]
        stem = holder[: -len(title)]
        stem = stem if len(stem) >= 2 and text.count(stem) >= titled[holder] + 5 and stem not in _ZH_GENERIC else ""
        if _covers_scenes(text, [holder, *([stem, *_infixed(text, stem, names)] if stem else [])], title):
            found[holder] = (title, stem)
    return found


def _infixed(text: str, name: str, known: list[str]) -> list[str]:
    """Longer names of which a two-character name is the two ends, used a fair share as
    often (牛魔王 of 牛王, 观世音 of 观音); not a numeral or particle inside (手一指)."""
    if len(name) != 2:
        return []
    total = text.count(name)
    middles = Counter(re.findall(rf"{re.escape(name[0])}([{_CJK}]{{1,2}}){re.escape(name[1])}", text))
    longer = [(name[0] + middle + name[1], middle, count) for middle, count in middles.most_common(2)]
    return [full for full, middle, count in longer
            if count >= max(5, _ZH_INFIX_SHARE * total) and not set(middle) & _ZH_NOT_INFIX
            and full not in known and _trim_zh(full) and full not in _ZH_GENERIC]


def _covers_scenes(text: str, names: list[str], title: str) -> bool:
    """Most scenes in which the title is said also name the person."""
    scenes = {m.start() // _SCENE_CHARS for m in re.finditer(re.escape(title), text)}
    named = {m.start() // _SCENE_CHARS for name in names for m in re.finditer(re.escape(name), text)}
    return len(scenes) >= _MIN_SHARED_SCENES and len(scenes & named) >= _SHARED_SCENES * len(scenes)


def _same_scenes(text: str, first: str, second: str) -> bool:
    """Most scenes of the rarer name have the other too (names of one person go
    together through the book; the emperor of chapters 9-12 and the monk do not)."""
    scenes = [{m.start() // _SCENE_CHARS for m in re.finditer(re.escape(n), text)} for n in (first, second)]
    rarer = min(scenes, key=len)
    return len(rarer) >= _MIN_SHARED_SCENES and len(scenes[0] & scenes[1]) >= _SHARED_SCENES * len(rarer)
