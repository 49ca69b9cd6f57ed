"""Hand-written cast lists of the two shared novels, and how a found cast is scored.

Written from reading the books, not from the program's output: each person with the
names the text calls them by, the main cast marked (the people a reader would expect
in a list of a dozen), and the places and organisations that must never be listed as
characters. `score(found, novel)` maps every found character to the person any of its
names belongs to, and counts: people found (precision), main people found (recall),
the same person found twice, places listed as people, and aliases merged rightly or
wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# (name, aliases, main?)
PRIDE_PEOPLE = [
    ("Elizabeth Bennet", ["Elizabeth", "Lizzy", "Eliza", "Miss Elizabeth", "Miss Eliza", "Miss Elizabeth Bennet",
                          "Lizzie", "Miss Lizzy"], True),
    ("Fitzwilliam Darcy", ["Mr. Darcy", "Darcy", "Mr. Fitzwilliam Darcy"], True),
    ("Jane Bennet", ["Jane", "Miss Bennet", "Miss Jane Bennet"], True),
    ("Charles Bingley", ["Mr. Bingley", "Bingley", "Charles"], True),
    ("Mrs. Bennet", ["Mrs. Bennet"], True),
    ("Mr. Bennet", ["Mr. Bennet", "Bennet"], True),
    ("Lydia Bennet", ["Lydia", "Miss Lydia", "Mrs. Wickham", "Lydia Wickham", "Miss Lydia Bennet"], True),
    ("George Wickham", ["Mr. Wickham", "Wickham"], True),
    ("William Collins", ["Mr. Collins", "Collins"], True),
    ("Lady Catherine de Bourgh", ["Lady Catherine", "Catherine de Bourgh", "her ladyship"], True),
    ("Caroline Bingley", ["Miss Bingley", "Caroline", "Caroline Bingley"], True),
    ("Charlotte Lucas", ["Charlotte", "Miss Lucas", "Mrs. Collins", "Charlotte Lucas"], True),
    ("Kitty Bennet", ["Kitty", "Catherine", "Kitty Bennet"], False),
    ("Mary Bennet", ["Mary", "Miss Mary"], False),
    ("Mrs. Gardiner", ["Mrs. Gardiner"], False),
    ("Mr. Gardiner", ["Mr. Gardiner", "Gardiner"], False),
    ("Georgiana Darcy", ["Miss Darcy", "Georgiana", "Georgiana Darcy"], False),
    ("Sir William Lucas", ["Sir William", "William Lucas", "Sir William Lucas", "William"], False),
    ("Lady Lucas", ["Lady Lucas", "Lucas"], False),
    ("Maria Lucas", ["Maria", "Maria Lucas"], False),
    ("Colonel Fitzwilliam", ["Colonel Fitzwilliam", "Fitzwilliam"], False),
    ("Colonel Forster", ["Colonel Forster", "Forster"], False),
    ("Mrs. Forster", ["Mrs. Forster", "Harriet"], False),
    ("Mrs. Hurst", ["Mrs. Hurst", "Louisa"], False),
    ("Mr. Hurst", ["Mr. Hurst", "Hurst"], False),
    ("Mrs. Phillips", ["Mrs. Phillips"], False),
    ("Mr. Phillips", ["Mr. Phillips", "Phillips"], False),
    ("Anne de Bourgh", ["Miss de Bourgh", "Anne"], False),
    ("Mrs. Long", ["Mrs. Long"], False),
    ("Mrs. Jenkinson", ["Mrs. Jenkinson"], False),
    ("Mrs. Reynolds", ["Mrs. Reynolds"], False),
    ("Mr. Denny", ["Mr. Denny", "Denny"], False),
    ("Mary King", ["Miss King", "Mary King"], False),
    ("Mrs. Annesley", ["Mrs. Annesley"], False),
    ("Mrs. Younge", ["Mrs. Younge"], False),
    ("Mrs. Hill", ["Mrs. Hill", "Hill"], False),
    ("Sir Lewis de Bourgh", ["Sir Lewis", "Sir Lewis de Bourgh"], False),
    ("Captain Carter", ["Captain Carter"], False),
    ("Mr. Jones", ["Mr. Jones"], False),
    ("Mr. Robinson", ["Mr. Robinson"], False),
    ("Mr. Morris", ["Mr. Morris"], False),
    ("Pratt", ["Pratt"], False),
    ("Chamberlayne", ["Chamberlayne"], False),
]
PRIDE_PLACES = ["Longbourn", "Netherfield", "Netherfield Park", "Meryton", "Pemberley", "Rosings", "Rosings Park",
                "Hunsford", "London", "Hertfordshire", "Derbyshire", "Kent", "Brighton", "Lambton", "Gracechurch",
                "Gracechurch Street", "Bath", "Scotland", "Gretna Green", "Gretna", "Oxford", "Cambridge", "Newcastle",
                "Ramsgate", "Epsom", "Barnet", "Clapham", "Lucas Lodge", "Matlock", "Chatsworth", "Dovedale",
                "Birmingham", "Kenilworth", "Blenheim", "Warwick", "Oakham", "Oakham Mount", "Bromley", "Westerham",
                "Haye", "Haye-Park", "Stoke", "Ashworth", "Purvis Lodge", "Pulvis", "Grosvenor", "Grosvenor Street",
                "England", "St", "St. James", "Liverpool", "Wickham's regiment", "the militia", "Eton"]

XIYOUJI_PEOPLE = [
    ("孙悟空", ["悟空", "行者", "孙行者", "大圣", "孙大圣", "齐天大圣", "美猴王", "猴王", "弼马温", "老孙", "石猴", "猴子",
             "猴头", "泼猴", "猢狲", "心猿", "孙长老", "望大圣"], True),
    ("唐僧", ["唐三藏", "三藏", "玄奘", "陈玄奘", "唐长老", "长老", "师父", "圣僧", "御弟", "金蝉子", "江流儿", "三藏法师",
            "玄奘法师", "唐朝和尚"], True),
    ("猪八戒", ["八戒", "猪悟能", "悟能", "天蓬元帅", "呆子", "老猪", "猪刚鬣", "夯货", "二师兄"], True),
    ("沙僧", ["沙和尚", "沙悟净", "悟净", "卷帘大将"], True),
    ("白龙马", ["小白龙", "龙马", "白马", "玉龙三太子", "小龙"], False),
    ("观音菩萨", ["观音", "菩萨", "观世音", "观世音菩萨", "南海观音", "大士"], True),
    ("如来佛祖", ["如来", "佛祖", "如来佛", "世尊", "释迦牟尼"], True),
    ("玉皇大帝", ["玉帝", "玉皇", "玉皇大帝", "奉玉帝"], True),
    ("唐太宗", ["太宗", "唐王", "李世民", "太宗皇帝"], True),
    ("太上老君", ["老君", "太上老君", "上老君"], False),
    ("牛魔王", ["牛王", "牛魔王", "大力王"], True),
    ("铁扇公主", ["罗刹女", "铁扇公主", "罗刹"], False),
    ("红孩儿", ["红孩儿", "圣婴大王", "善财童子"], False),
    ("哪吒", ["哪吒", "哪吒太子", "哪吒三太子", "吒太子"], False),
    ("托塔李天王", ["李天王", "托塔天王", "托塔李天王", "塔李天王", "塔天王"], False),
    ("二郎神", ["二郎", "显圣二郎真君", "二郎真君", "小圣", "二郎神"], False),
    ("菩提祖师", ["祖师", "须菩提祖师", "菩提祖师"], False),
    ("太白金星", ["金星", "太白金星", "长庚星", "白金星"], False),
    ("镇元大仙", ["镇元子", "大仙", "镇元大仙"], False),
    ("东海龙王", ["东海龙王", "敖广", "老龙王", "老龙"], False),
    ("木叉", ["木叉", "惠岸", "惠岸行者"], False),
    ("魏征", ["魏征"], False),
    ("刘伯钦", ["伯钦", "刘伯钦"], False),
    ("高太公", ["高老", "高太公"], False),
    ("寿星", ["寿星", "南极寿星"], False),
    ("黄袍怪", ["黄袍怪", "黄袍郎", "奎木狼"], False),
    ("白骨精", ["白骨夫人", "尸魔", "白骨精"], False),
    ("金角大王", ["金角", "金角大王"], False),
    ("银角大王", ["银角", "银角大王"], False),
    ("弥勒佛", ["弥勒", "东来佛祖"], False),
    ("文殊菩萨", ["文殊"], False),
    ("普贤菩萨", ["普贤"], False),
    ("太白长庚星", [], False),
    ("阎王", ["阎王", "十代阎王", "十王"], False),
    ("寇员外", ["寇员外", "寇洪"], False),
    ("六耳猕猴", ["六耳猕猴", "假行者"], False),
    ("嫦娥", ["嫦娥"], False),
    ("天尊", ["天尊", "元始天尊", "灵宝天尊"], False),
    ("揭谛", ["揭谛"], False),
]
XIYOUJI_PLACES = ["花果山", "水帘洞", "东胜神洲", "傲来国", "灵台方寸山", "斜月三星洞", "天宫", "灵霄殿", "蟠桃园", "五行山",
                  "两界山", "长安", "长安城", "高老庄", "流沙河", "五庄观", "火焰山", "女儿国", "西梁女国", "灵山", "雷音寺",
                  "大雷音寺", "通天河", "车迟国", "乌鸡国", "狮驼岭", "盘丝洞", "天竺国", "南海", "落伽山", "普陀", "东海",
                  "龙宫", "地府", "兜率宫", "黑风山", "白虎岭", "平顶山", "莲花洞", "黄风岭", "号山", "枯松涧", "火云洞",
                  "金兜山", "琵琶洞", "翠云山", "芭蕉洞", "积雷山", "摩云洞", "比丘国", "朱紫国", "祭赛国", "宝象国", "玉华州",
                  "凤仙郡", "金平府", "东土", "大唐", "西天", "鹰愁涧", "观音院", "南天门", "万寿山", "天竺国界", "南赡部洲"]

CASTS = {
    "pride_and_prejudice.txt": (PRIDE_PEOPLE, PRIDE_PLACES),
    "xiyouji.utf8.txt": (XIYOUJI_PEOPLE, XIYOUJI_PLACES),
}


@dataclass
class CastScore:
    found: int  # characters listed
    people: int  # of them, people of the hand list
    main_found: int  # main people found (each once)
    main_total: int
    doubles: list[str] = field(default_factory=list)  # hand-list people listed more than once
    places: list[str] = field(default_factory=list)  # places listed as characters
    unknown: list[str] = field(default_factory=list)  # neither (noise, or people the list lacks)
    aliases_right: int = 0  # aliases given that name the same person
    aliases_wrong: int = 0  # aliases that name another person of the list

    @property
    def precision(self) -> float:
        return self.people / self.found if self.found else 0.0

    @property
    def recall(self) -> float:
        return self.main_found / self.main_total if self.main_total else 0.0

    def as_dict(self) -> dict:
        return {"found": self.found, "people": self.people, "precision": round(self.precision, 3),
                "main_recall": round(self.recall, 3), "main_found": self.main_found, "main_total": self.main_total,
                "doubles": self.doubles, "places": self.places, "unknown": self.unknown,
                "aliases_right": self.aliases_right, "aliases_wrong": self.aliases_wrong}


def score(found: list[tuple[str, list[str]]], novel: str) -> CastScore:
    """Score (name, aliases) pairs against the hand list of `novel` (a shared file name)."""
    people, places = CASTS[novel]
    owner = {}
    for index, (name, aliases, _) in enumerate(people):
        for alias in [name, *aliases]:
            owner.setdefault(alias.casefold(), index)
    place_names = {place.casefold() for place in places}
    result = CastScore(len(found), 0, 0, sum(1 for *_, main in people if main))
    hits: dict[int, list[str]] = {}
    for name, aliases in found:
        index = next((owner[n.casefold()] for n in [name, *aliases] if n.casefold() in owner), None)
        if index is None:
            (result.places if name.casefold() in place_names else result.unknown).append(name)
            continue
        result.people += 1
        hits.setdefault(index, []).append(name)
        for alias in aliases:
            other = owner.get(alias.casefold())
            if other == index:
                result.aliases_right += 1
            elif other is not None:
                result.aliases_wrong += 1
    result.doubles = [" = ".join(names) for names in hits.values() if len(names) > 1]
    result.main_found = sum(1 for index in hits if people[index][2])
    return result
