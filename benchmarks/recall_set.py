"""The recall evaluation set: long two-person conversations and natural questions about them.

Written by script and by hand, no model: four conversations (two English, two Chinese),
each of 16 dated sessions over ten months and 350 to 400 turns between two speakers
whose names recur everywhere (they address each other, talk about each other). The
chatter is drawn from hand-written lines that reuse the ordinary words the questions use
(class, sister, weekend, 工作, 周末…), so those words are no clue by themselves.

Into that chatter go hand-written episodes (the frames below), each said by one of the
two speakers and filled with values of its own per conversation; each gives a question
asked the way people ask, labelled with the turns that answer it. Kinds:

* `single`: single-hop paraphrase; the question shares no rare word with its answer
  (checked by `honesty_violations`: every word the question shares with an evidence
  turn, names aside, is in at least `MIN_SHARED_DF` messages of the conversation);
* `multi`: the answer needs two turns of different sessions (a cousin's name in one,
  what he did in another; two instruments named months apart);
* `temporal`: "when…" questions, and questions pinned to a month ("in May", 五月, "last
  month") that only the session dates resolve;
* `absent`: never mentioned; the evidence is empty, and the figure is whether recall
  stays quiet.

Halves: conversations `en-1` and `zh-1` are the development half (all tuning was done on
them), `en-2` and `zh-2` the test half. The two halves share the frames, not the values,
names, dates or chatter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

MIN_SHARED_DF = 6
SESSIONS = 16


@dataclass
class Line:
    speaker: str  # "u" (the user) | "p" (the persona)
    text: str
    evidence_of: list[int] = field(default_factory=list)  # question indexes


@dataclass
class Question:
    kind: str  # single | multi | temporal | absent
    text: str
    evidence: list[int] = field(default_factory=list)  # message indexes in the conversation


@dataclass
class Conversation:
    key: str
    half: str  # dev | test
    chinese: bool
    user: str
    persona: str
    messages: list[tuple[str, str, datetime]]  # (role, text, time)
    questions: list[Question]
    now: datetime


# -- the frames -----------------------------------------------------------------------------
# (kind, [(session offset, evidence text), ...], question, {slot: values}) ; {me} is the
# speaker's name, {you} the other's; `{month}` in a question is the first evidence session's month.

EN_FRAMES = [
    ("single", [(0, "I signed up for a {craft} class at the community centre, first lesson was tonight.")],
     "What kind of class did {me} sign up for?", {"craft": ["pottery", "woodcarving", "glassblowing", "calligraphy"]}),
    ("single", [(0, "My sister just got hired at the {place} downtown, she starts Monday.")],
     "Where does {me}'s sister work now?", {"place": ["aquarium", "planetarium", "observatory", "conservatory"]}),
    ("single", [(0, "I've been painting {subject} on the balcony every evening this week.")],
     "What has {me} been painting lately?", {"subject": ["sunflowers", "lighthouses", "seagulls", "windmills"]}),
    ("single", [(0, "We adopted a dog from the shelter, a {breed} with one floppy ear.")],
     "What breed is {me}'s new dog?", {"breed": ["beagle", "dachshund", "whippet", "schnauzer"]}),
    ("single", [(0, "Finally finished {title}, that ending wrecked me.")],
     "Which book did {me} finish reading?", {"title": ["Middlemarch", "Rebecca", "Dracula", "Frankenstein"]}),
    ("single", [(0, "My doctor says the headaches come from {cause}, so no more of that.")],
     "What did the doctor blame {me}'s headaches on?", {"cause": ["dehydration", "eyestrain", "caffeine", "insomnia"]}),
    ("single", [(0, "For my birthday my parents gave me a {gift}, I almost cried.")],
     "What present did {me} get from the parents?", {"gift": ["telescope", "typewriter", "gramophone", "kayak"]}),
    ("single", [(0, "I'm trying to cook more, last night it was {dish} from my grandmother's recipe.")],
     "What did {me} cook from the family recipe?", {"dish": ["goulash", "moussaka", "jambalaya", "ratatouille"]}),
    ("single", [(0, "The support group meets in the {venue} now, it feels less gloomy there.")],
     "Where does {me}'s support group meet?", {"venue": ["library basement", "chapel annex", "bakery loft",
                                                         "boathouse"]}),
    ("single", [(0, "At work they moved me onto the {team} team, totally new stuff for me.")],
     "Which team is {me} on at work now?", {"team": ["logistics", "payroll", "procurement", "compliance"]}),
    ("multi", [(0, "My cousin is called {cousin}, he's the one who lives by the sea."),
               (5, "{cousin} just opened a {shop} near the harbour, I'm so proud of him.")],
     "What did {me}'s cousin open?", {"cousin": ["Tomas", "Ibrahim", "Florian", "Desmond"],
                                       "shop": ["bakery", "bookshop", "surf school", "noodle bar"]}),
    ("multi", [(0, "I dug my old instrument out of the cupboard, the {first}, and it still sounds fine."),
               (6, "New instrument unlocked: I'm learning the {second} now, my neighbours hate it.")],
     "Which instruments does {me} play?", {"first": ["cello", "clarinet", "trombone", "oboe"],
                                            "second": ["banjo", "ukulele", "accordion", "harmonica"]}),
    ("multi", [(0, "My best friend {friend} is getting married, I'm her maid of honour!"),
               (4, "{friend}'s wedding will be in {town}, in a barn, very rustic.")],
     "Where is {me}'s best friend getting married?", {"friend": ["Priya", "Rosalind", "Ottoline", "Bettina"],
                                                       "town": ["Galway", "Bruges", "Hallstatt", "Colmar"]}),
    ("multi", [(0, "Our neighbour {neighbour} keeps bringing us vegetables from her garden."),
               (5, "Guess what, {neighbour} won first prize at the county fair for her {crop}!")],
     "What did {me}'s neighbour win a prize for?", {"neighbour": ["Agnes", "Mildred", "Hortense", "Winifred"],
                                                     "crop": ["pumpkins", "marrows", "radishes", "gooseberries"]}),
    ("multi", [(0, "I want to see {city1} before I turn thirty, it's on my list."),
               (7, "Booked it! Flying to {city1} next month, and then a train to {city2}.")],
     "Where is {me} going after the flight?", {"city1": ["Lisbon", "Kyoto", "Oslo", "Havana"],
                                                "city2": ["Sintra", "Nara", "Bergen", "Trinidad"]}),
    ("temporal", [(0, "Today was my first day at the new job, at {firm}, everyone was so friendly.")],
     "When did {me} start the new job?", {"firm": ["Halcyon", "Brightwater", "Northgate", "Ironbark"]}),
    ("temporal", [(0, "We finally moved into the new flat on {street}, boxes everywhere.")],
     "When did {me} move into the new flat?", {"street": ["Rowan Street", "Juniper Lane", "Alder Road",
                                                           "Hawthorn Close"]}),
    ("temporal", [(0, "Spent the weekend in {region}, the cliffs were unreal.")],
     "Where did {me} spend a weekend in {month}?", {"region": ["Cornwall", "Brittany", "Donegal", "Pembrokeshire"]}),
    ("temporal", [(0, "The {band} concert was incredible, I lost my voice singing.")],
     "Which concert did {me} go to in {month}?", {"band": ["Radiohead", "Coldplay", "Portishead", "Bjork"]}),
    ("temporal", [(0, "I ran my first race today, a {race}, legs are jelly.")],
     "What race did {me} run in {month}?", {"race": ["half marathon", "ten kilometre trail", "fun run",
                                                    "triathlon"]}),
    ("absent", [], "Has {me} ever been skiing?", {}),
    ("absent", [], "What is the name of {me}'s piano teacher?", {}),
    ("absent", [], "Did {me} ever mention a trip to Australia?", {}),
    ("absent", [], "What is the name of {me}'s sister's husband?", {}),
    ("absent", [], "What did the doctor give {me} for the back pain?", {}),
]

ZH_FRAMES = [
    ("single", [(0, "我报了社区中心的{craft}班，今晚上了第一节课。")],
     "{me}报了什么班？", {"craft": ["陶艺", "木雕", "书法", "插花"]}),
    ("single", [(0, "我姐姐刚被市中心的{place}录用了，下周一上班。")],
     "{me}的姐姐现在在哪儿工作？", {"place": ["水族馆", "天文馆", "博物馆", "植物园"]}),
    ("single", [(0, "这周每天晚上我都在阳台上画{subject}。")],
     "{me}最近在画什么？", {"subject": ["向日葵", "灯塔", "海鸥", "风车"]}),
    ("single", [(0, "我们从救助站领养了一只狗，是{breed}，一只耳朵耷拉着。")],
     "{me}新养的狗是什么品种？", {"breed": ["比格犬", "腊肠犬", "柴犬", "雪纳瑞"]}),
    ("single", [(0, "终于读完了{title}，结局让我哭了好久。")],
     "{me}读完了哪本书？", {"title": ["《红楼梦》", "《围城》", "《活着》", "《边城》"]}),
    ("single", [(0, "医生说我头疼是因为{cause}，以后得注意了。")],
     "医生说{me}头疼是什么原因？", {"cause": ["缺水", "用眼过度", "喝咖啡太多", "失眠"]}),
    ("single", [(0, "过生日爸妈送了我一台{gift}，我差点哭出来。")],
     "{me}的爸妈送了什么生日礼物？", {"gift": ["望远镜", "打字机", "留声机", "缝纫机"]}),
    ("single", [(0, "我最近在学做饭，昨晚照外婆的方子做了{dish}。")],
     "{me}照家里的方子做了什么菜？", {"dish": ["红烧肉", "糖醋排骨", "佛跳墙", "东坡肉"]}),
    ("single", [(0, "互助小组现在改在{venue}聚会了，气氛好多了。")],
     "{me}的互助小组在哪儿聚会？", {"venue": ["图书馆地下室", "教堂侧厅", "面包店二楼", "船屋"]}),
    ("single", [(0, "公司把我调到{team}组了，全是新东西。")],
     "{me}现在在公司哪个组？", {"team": ["物流", "薪酬", "采购", "合规"]}),
    ("multi", [(0, "我表哥叫{cousin}，就是住在海边的那个。"),
               (5, "{cousin}在港口边开了一家{shop}，我替他骄傲。")],
     "{me}的表哥开了什么店？", {"cousin": ["阿桂", "小琛", "阿珩", "老璟"],
                              "shop": ["面包房", "书店", "冲浪学校", "面馆"]}),
    ("multi", [(0, "我把以前的乐器从柜子里翻出来了，是{first}，音色还不错。"),
               (6, "新乐器解锁：我开始学{second}了，邻居快疯了。")],
     "{me}会哪些乐器？", {"first": ["大提琴", "单簧管", "长号", "双簧管"],
                       "second": ["尤克里里", "手风琴", "口琴", "班卓琴"]}),
    ("multi", [(0, "我最好的朋友{friend}要结婚了，我当伴娘！"),
               (4, "{friend}的婚礼定在{town}，在一个谷仓里，很有田园感。")],
     "{me}最好的朋友在哪儿结婚？", {"friend": ["小萱", "阿璐", "小筠", "阿棠"],
                                 "town": ["大理", "婺源", "阳朔", "丽江"]}),
    ("multi", [(0, "邻居{neighbour}阿姨总给我们送她园子里的菜。"),
               (5, "你猜怎么着，{neighbour}阿姨的{crop}在县里的集市上得了一等奖！")],
     "{me}的邻居因为什么得了奖？", {"neighbour": ["王", "赵", "孙", "钱"],
                                 "crop": ["南瓜", "冬瓜", "萝卜", "葫芦"]}),
    ("multi", [(0, "三十岁之前我一定要去一次{city1}，这在我的清单上。"),
               (7, "订好了！下个月飞{city1}，然后坐火车去{city2}。")],
     "{me}下了飞机之后要去哪儿？", {"city1": ["里斯本", "京都", "奥斯陆", "哈瓦那"],
                                "city2": ["辛特拉", "奈良", "卑尔根", "特立尼达"]}),
    ("temporal", [(0, "今天是我在{firm}新工作的第一天，大家都很友好。")],
     "{me}什么时候开始新工作的？", {"firm": ["恒远", "青禾", "北辰", "铁木"]}),
    ("temporal", [(0, "我们终于搬进{street}的新房子了，到处都是箱子。")],
     "{me}什么时候搬的新家？", {"street": ["梧桐路", "杜松巷", "桤木街", "山楂里"]}),
    ("temporal", [(0, "这个周末在{region}过的，悬崖美得不真实。")],
     "{me}{month}的时候去哪儿过了个周末？", {"region": ["舟山", "北戴河", "涠洲岛", "平潭"]}),
    ("temporal", [(0, "{band}的演唱会太棒了，我嗓子都喊哑了。")],
     "{me}{month}去看了谁的演唱会？", {"band": ["五月天", "陈奕迅", "周杰伦", "王菲"]}),
    ("temporal", [(0, "今天跑了人生第一场比赛，{race}，腿都软了。")],
     "{me}{month}跑了什么比赛？", {"race": ["半程马拉松", "十公里越野", "迷你跑", "铁人三项"]}),
    ("absent", [], "{me}滑过雪吗？", {}),
    ("absent", [], "{me}的钢琴老师叫什么名字？", {}),
    ("absent", [], "{me}有没有说过去澳大利亚旅行？", {}),
    ("absent", [], "{me}姐姐的老公叫什么？", {}),
    ("absent", [], "医生给{me}的腰疼开了什么药？", {}),
]

# -- the chatter ----------------------------------------------------------------------------
# Hand-written lines; {you} is the other speaker's name, {me} the speaker's. They use the
# questions' ordinary words in other senses, so those words alone find nothing.

EN_CHATTER = [
    "Morning, {you}! How did you sleep?", "{you}, you always know how to cheer me up.",
    "Ha, classic {me}. I knew you'd say that.", "Long day at work, {you}. I just want tea and a blanket.",
    "My sister called again, nothing important, she just wanted to chat.",
    "It rained all weekend, {you}, I barely left the flat.",
    "Did you eat something proper today, {you}?", "I think the neighbour's dog barked until two in the morning.",
    "I started a new book but I can't get into it.", "Honestly {you}, work has been a blur this month.",
    "I want to take a class of some kind, something with my hands.",
    "We should plan a weekend away at some point, {you}.",
    "The support group was quiet this time, only five of us.", "My parents want me to visit more often.",
    "{me} here, reporting for duty, haha.", "I cooked pasta again, {you}, I'm a creature of habit.",
    "That concert on the radio last night was lovely.", "I keep meaning to go running and then I don't.",
    "The doctor's office never picks up the phone.", "You're a good listener, {you}, you know that?",
    "What are you up to this evening, {you}?", "I painted the kitchen wall and now I regret the colour.",
    "My cousin texted me a meme at six in the morning.", "I miss the sea, {you}.",
    "Do you think I should ask for a raise at work?", "My friend's dog is the laziest animal alive.",
    "Work drinks tonight, wish me luck, {you}.", "The flat is freezing, the heating broke again.",
    "I'm so tired, {you}, but a good tired.", "Let's talk tomorrow, {you}, I'm fading.",
    "Good night, {you}!", "How's your week going, {you}?", "I bought flowers for no reason today.",
    "The train was late again, of course.", "I tried meditating, lasted about four minutes.",
    "My team at work is nice but chaotic.", "Remind me to call my sister on Sunday, {you}.",
    "There was a festival in town, too crowded for me.", "I finished the laundry, a small victory.",
    "{you}, do you ever feel like the weeks run together?", "The weather's turning, {you}, I can feel autumn coming.",
    "I watched a documentary about octopuses, they're so clever.", "My back hurts from the new chair at work.",
    "I got a letter from the bank, boring stuff.", "Maybe I'll learn an instrument one day.",
    "I made soup, {you}, proud of myself.", "The neighbours are having a party again.",
    "Friday at last, {you}!", "I walked along the river after work, it was quiet.",
    "I'm thinking of cutting my hair short.", "Thanks for listening, {you}.",
    "I should sign up for the gym, {you}, but the doctor says walking is enough.",
    "My headache is back, {you}. Maybe I need to see the doctor.",
    "My parents sent a recipe for soup, as if I'd ever make it.",
    "Did you sign up for that newsletter, {you}? It keeps emailing me.",
    "We should meet for coffee soon, {you}, a proper catch-up.",
    "The shop on the corner is open late now, so handy.", "My parents are thinking of moving to the coast.",
    "Best thing today: a free coffee at work.", "My old classmate got married last year, I only heard now.",
    "They gave out a prize at work for the best idea, I didn't win.",
    "I'm not sure this job is what I want forever, {you}.",
    "Job hunting is exhausting, {you}, I don't know how people do it.",
    "I'd love to move somewhere with a garden one day.",
    "There's a race through the park on Sunday, the roads will be closed.",
    "The concert tickets were way too expensive, so I skipped it.",
    "That headache pill the doctor gave me makes me sleepy.",
    "My parents met at a concert, did I ever tell you, {you}?",
    "Grandma's recipe book is falling apart, I should copy it.",
    "Did you meet anyone new this week, {you}?", "The new cafe might open next month, fingers crossed.",
    "Everyone at work is getting married this year, it's a trend.",
    "Best to stay in tonight, {you}, the storm is coming.",
    "They're running a prize draw at the supermarket, I entered.", "If I move flats again I'll scream, {you}.",
    "I watched a race on TV, pure chaos.", "Sign me up for anything that involves cake, {you}.",
]
EN_REACTIONS = [
    "Oh wow, {you}, that's great!", "Really? Tell me more, {you}.", "That sounds lovely.", "Ha! Of course it is.",
    "I'm so happy for you, {you}.", "That's a lot, {you}. How do you feel about it?", "No way!",
    "Good for you, {you}.", "Hmm, I see what you mean.", "That's so you, {you}.", "Aww.", "Fair enough!",
    "I'd love to hear how it goes.", "You deserve it, {you}.", "Sounds like quite a week.", "Interesting!",
]
ZH_CHATTER = [
    "早啊{you}！昨晚睡得好吗？", "{you}，你总是知道怎么让我开心。", "哈哈，这就是{me}。我就知道你会这么说。",
    "今天工作好累，{you}，只想喝杯茶裹着毯子。", "我姐姐又打电话来了，没什么事，就是想聊聊。", "{you}，整个周末都在下雨，我几乎没出门。",
    "{you}，你今天好好吃饭了吗？", "邻居家的狗一直叫到凌晨两点。", "我开始看一本新书，但是看不进去。",
    "说实话{you}，这个月工作忙得晕头转向。", "我想报个什么班，学点手工的东西。", "{you}，我们哪个周末一起出去玩吧。",
    "这次互助小组人很少，就我们五个。", "我爸妈想让我多回家看看。", "{me}来报到啦，哈哈。", "我又做了面条，{you}，我真是个习惯动物。",
    "昨晚广播里放的演唱会录音真好听。", "我老是想去跑步，然后就没去。", "医院的电话永远打不通。", "{you}，你真是个好听众，你知道吗？",
    "{you}，今晚打算干嘛？", "我把厨房的墙刷了，现在后悔选了这个颜色。", "我表哥早上六点给我发了个表情包。", "{you}，我好想念海边。",
    "你觉得我该不该在公司要求涨工资？", "我朋友家的狗是世界上最懒的动物。", "今晚公司聚餐，{you}，祝我好运。", "家里冷死了，暖气又坏了。",
    "{you}，我好累，但是是那种充实的累。", "{you}，我们明天再聊吧，我快睡着了。", "晚安，{you}！", "{you}，你这周过得怎么样？",
    "今天无缘无故给自己买了花。", "火车又晚点了，果然。", "我试着冥想，坚持了大概四分钟。", "我们组的同事人都很好，就是有点乱。",
    "{you}，提醒我周日给姐姐打电话。", "城里有个庙会，人太多了。", "终于把衣服洗完了，小小的胜利。", "{you}，你会不会觉得每周都过得一模一样？",
    "{you}，天气变凉了，秋天快来了。", "我看了一部关于章鱼的纪录片，它们好聪明。", "公司新换的椅子坐得我腰疼。", "银行给我寄了封信，无聊的事。",
    "也许哪天我会学一门乐器。", "{you}，我煮了汤，为自己骄傲。", "邻居又在开派对了。", "{you}，终于到周五了！",
    "下班后我沿着河边走了走，很安静。", "我在想要不要把头发剪短。", "{you}，谢谢你听我说这些。",
    "这本杂志我一晚上就读完了，{you}，没什么内容。", "{you}，我又头疼了，可能得去看医生。", "医生让我多喝水少熬夜，说得容易。",
    "下周是我同事的生日，我们打算凑钱买蛋糕。", "我妈给了我一个煲汤的方子，可我从来没做过。", "周末有个同学聚会，{you}，我有点不想去。",
    "互助小组的组长人特别好，总是很耐心。", "我们小组这周要交报告，{you}，压力好大。", "我表哥又换手机了，他每年都换。",
    "{you}，最好的休息就是什么都不做。", "我同学下个月结婚，我还没想好送什么。", "电视上在放足球比赛，吵死了。",
    "读完那篇文章我心情很复杂，{you}。", "头疼的时候我就想躺着，{you}。", "今天是我们部门聚会，吃了火锅。",
    "{you}，你最好早点睡，明天还要早起。", "表哥说他要来城里出差，可能会来找我。", "公司组织了一场羽毛球比赛，我第一轮就输了。",
    "又有人结婚了，{you}，红包都快发不起了。", "这个方子是网上找的，不知道靠不靠谱。", "生日那天我只想安安静静地过。",
    "医生说我的检查结果都正常，放心了。", "互助这种事，说起来简单，做起来难。", "小组讨论的时候我总是不敢说话。",
    "{you}，我随手画了只猫，画得好丑。", "楼下新开了一家奶茶店，排队的人好多。", "公司年会抽奖，我又什么都没抽到。",
    "隔壁在搬家，吵了一整天。", "这幅画是我在旧货店淘的。", "我同事拿了季度奖，请大家喝咖啡。",
    "{you}，要是能搬到离公司近点的地方就好了。", "周末逛了一家旧书店，什么都没买。",
]
ZH_REACTIONS = [
    "哇，{you}，太好了！", "真的吗？{you}，快跟我说说。", "听起来好棒。", "哈哈，那当然。", "{you}，真替你高兴。",
    "{you}，这事不小啊，你感觉怎么样？", "不会吧！", "{you}，干得好。", "嗯，我懂你的意思。", "{you}，这很像你。",
    "哎呀。", "也对！", "之后跟我说说怎么样了。", "{you}，这是你应得的。", "这周真是够忙的。", "有意思！",
]

CONVERSATIONS = [
    # key, half, chinese, user, persona, first session, seed
    ("en-1", "dev", False, "Maya", "Leo", datetime(2025, 3, 2, 19, 0, tzinfo=timezone.utc), 1),
    ("zh-1", "dev", True, "林夏", "阿哲", datetime(2025, 2, 23, 12, 0, tzinfo=timezone.utc), 2),
    ("en-2", "test", False, "Grace", "Owen", datetime(2025, 3, 9, 18, 0, tzinfo=timezone.utc), 3),
    ("zh-2", "test", True, "苏晴", "何川", datetime(2025, 3, 1, 11, 0, tzinfo=timezone.utc), 4),
]
_EN_MONTHS = "January February March April May June July August September October November December".split()
_ZH_MONTHS = "一月 二月 三月 四月 五月 六月 七月 八月 九月 十月 十一月 十二月".split()


def _session_times(first: datetime, rng: random.Random) -> list[datetime]:
    """16 session starts over about ten months, 2 to 4 weeks apart."""
    times, at = [], first
    for _ in range(SESSIONS):
        times.append(at)
        at = at + timedelta(days=rng.randint(14, 24), hours=rng.randint(-3, 3))
    return times


def build(key: str, half: str, chinese: bool, user: str, persona: str, first: datetime, seed: int) -> Conversation:
    rng = random.Random(seed)
    frames = ZH_FRAMES if chinese else EN_FRAMES
    chatter, reactions = (ZH_CHATTER, ZH_REACTIONS) if chinese else (EN_CHATTER, EN_REACTIONS)
    names = {"u": user, "p": persona}
    starts = _session_times(first, rng)
    sessions: list[list[Line]] = [[] for _ in range(SESSIONS)]
    questions: list[Question] = []
    used_months: dict[str, set[int]] = {}
    value_offset = seed - 1
    for frame_index, (kind, lines, question, slots) in enumerate(frames):
        for speaker_index, speaker in enumerate(("u", "p")):
            me, you = names[speaker], names["p" if speaker == "u" else "u"]
            values = {slot: options[(value_offset + speaker_index * 2) % len(options)]
                      for slot, options in slots.items()}
            span = max((offset for offset, _ in lines), default=0)
            month_bound = "{month}" in question
            for _ in range(100):
                session = rng.randrange(0, SESSIONS - span)
                month = starts[session].month
                if not month_bound or month not in used_months.get(question, set()):
                    break
            used_months.setdefault(question, set()).add(month)
            month_name = _ZH_MONTHS[month - 1] if chinese else _EN_MONTHS[month - 1]
            q_index = len(questions)
            questions.append(Question(kind, question.format(me=me, you=you, month=month_name)))
            for offset, text in lines:
                sessions[session + offset].append(
                    Line(speaker, text.format(me=me, you=you, **values), [q_index]))
    session_turns = []
    for session_index, episodes in enumerate(sessions):
        rng.shuffle(episodes)
        turns: list[Line] = []
        size = rng.randint(20, 24)
        plan = ["episode"] * len(episodes) + ["chatter"] * max(0, size // 2 - len(episodes))
        rng.shuffle(plan)
        episode_iter = iter(episodes)
        for item in plan:
            if item == "episode":
                line = next(episode_iter)
                other = "p" if line.speaker == "u" else "u"
                turns += [line, Line(other, rng.choice(reactions).format(you=names[line.speaker],
                                                                           me=names[other]))]
            else:
                turns += _chatter_pair(rng, chatter, names)
        if turns and turns[0].speaker == "p":
            turns.insert(0, Line("u", rng.choice(chatter).format(you=persona, me=user)))
        session_turns.append(turns)
    conversation = _flatten(key, half, chinese, user, persona, starts, session_turns, questions, rng)
    # the ordinary words a question shares with its answer must be ordinary here too: pad
    # the chatter with bank lines holding them until each is in MIN_SHARED_DF messages
    from memory.recall import message_keys

    for _ in range(8):
        missing = sorted({shared for _, shared in honesty_violations(conversation)})
        if not missing:
            break
        for shared in missing:
            holders = [line for line in chatter if shared in message_keys(line)]
            for line in rng.sample(holders, min(2, len(holders))):
                speaker = rng.choice("up")
                other = "p" if speaker == "u" else "u"
                turns = session_turns[rng.randrange(SESSIONS)]
                at = rng.randrange(1, len(turns) // 2) * 2
                turns[at:at] = [Line(speaker, line.format(you=names[other], me=names[speaker])),
                                Line(other, rng.choice(reactions).format(you=names[speaker], me=names[other]))]
        conversation = _flatten(key, half, chinese, user, persona, starts, session_turns, questions, rng)
    return conversation


def _chatter_pair(rng: random.Random, chatter: list[str], names: dict[str, str]) -> list[Line]:
    first = rng.choice("up")
    second = "p" if first == "u" else "u"
    return [Line(speaker, rng.choice(chatter).format(you=names["p" if speaker == "u" else "u"], me=names[speaker]))
            for speaker in (first, second)]


def _flatten(key, half, chinese, user, persona, starts, session_turns, questions, rng) -> Conversation:
    """The sessions as one list of timed messages, with each question's evidence indexes."""
    timing = random.Random(len(starts))
    messages: list[tuple[str, str, datetime]] = []
    evidence: dict[int, list[int]] = {}
    for start, turns in zip(starts, session_turns):
        at = start
        for line in turns:
            for q_index in line.evidence_of:
                evidence.setdefault(q_index, []).append(len(messages))
            messages.append(("user" if line.speaker == "u" else "assistant", line.text, at))
            at += timedelta(minutes=timing.randint(1, 4))
    asked = [Question(q.kind, q.text, sorted(evidence.get(index, []))) for index, q in enumerate(questions)]
    return Conversation(key, half, chinese, user, persona, messages, asked, starts[-1] + timedelta(days=12))


def conversations() -> list[Conversation]:
    return [build(*spec) for spec in CONVERSATIONS]


def honesty_violations(conversation: Conversation) -> list[tuple[str, str]]:
    """(question, shared key) where a question shares a rare key (in fewer than
    MIN_SHARED_DF messages) with one of its evidence turns. Names are left aside."""
    from memory.recall import message_keys, query_keys

    keyed = [message_keys(text) for _, text, _ in conversation.messages]
    counts: dict[str, int] = {}
    for keys in keyed:
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
    names = set(query_keys(f"{conversation.user} {conversation.persona}"))
    found = []
    for question in conversation.questions:
        asked = set(query_keys(question.text)) - names
        for index in question.evidence:
            for key in sorted(asked & keyed[index]):
                if counts.get(key, 0) < MIN_SHARED_DF:
                    found.append((question.text, key))
    return found


def sillytavern_jsonl(conversation: Conversation) -> str:
    """The conversation as a SillyTavern chat file (for `companion import`)."""
    import json

    lines = [json.dumps({"user_name": conversation.user, "character_name": conversation.persona,
                         "create_date": conversation.messages[0][2].isoformat()})]
    for role, text, at in conversation.messages:
        lines.append(json.dumps({"name": conversation.user if role == "user" else conversation.persona,
                                 "is_user": role == "user", "is_system": False,
                                 "send_date": int(at.timestamp() * 1000), "mes": text}, ensure_ascii=False))
    return "\n".join(lines) + "\n"

