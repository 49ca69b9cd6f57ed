"""Texts the user sees, in English and Chinese, chosen by the user's language.

A plain catalogue (key -> language -> text with `{placeholders}`) instead of compiled
gettext files: nothing to build, and `tests/test_texts.py` checks that every key exists
in every language with the same placeholders. Chinese covers zh, zh-hans, zh-hant, zh-CN….
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")

CATALOGUE: dict[str, dict[str, str]] = {
    # model failures, by memory.model_client.ErrorKind
    "error.rate_limit": {
        "en": "The model is busy right now (rate limit). Your message is saved — try again in a minute.",
        "zh": "模型现在太忙了（触发限流）。你的消息已保存，请一分钟后再试。",
    },
    "error.timeout": {
        "en": "The model did not answer in time. Your message is saved — try again.",
        "zh": "模型没有及时回应。你的消息已保存，请再试一次。",
    },
    "error.connection": {
        "en": "Cannot reach the model right now. Your message is saved — try again later.",
        "zh": "暂时连不上模型。你的消息已保存，请稍后再试。",
    },
    "error.server": {
        "en": "The model's server had a problem. Your message is saved — try again.",
        "zh": "模型服务器出了问题。你的消息已保存，请再试一次。",
    },
    "error.auth": {
        "en": "The model endpoint refused the API key. The operator should check OPENAI_API_KEY.",
        "zh": "模型服务拒绝了 API 密钥。请运营者检查 OPENAI_API_KEY。",
    },
    "error.not_found": {
        "en": "The model endpoint does not know this model. The operator should check COMPANION_MODEL.",
        "zh": "模型服务找不到这个模型。请运营者检查 COMPANION_MODEL。",
    },
    "error.context_too_long": {
        "en": "The conversation is too long for this model even after shortening. "
              "The operator should check COMPANION_CONTEXT_TOKENS.",
        "zh": "即使缩短后，对话对这个模型来说仍然太长。请运营者检查 COMPANION_CONTEXT_TOKENS。",
    },
    "error.bad_request": {
        "en": "The model endpoint rejected the request: {detail}",
        "zh": "模型服务拒绝了请求：{detail}",
    },
    "error.stream": {
        "en": "The reply broke off. What arrived is kept — try again to get a full answer.",
        "zh": "回复中断了。已收到的部分已保存，请再试一次以获得完整回答。",
    },
    "error.context_too_small": {
        "en": "The persona and attached material do not leave room for the conversation in this model's window.",
        "zh": "角色设定和附加材料太长，模型的上下文窗口里已放不下对话。",
    },
    # terminal chat
    "chat.help": {
        "en": "Type a message and press Enter. Commands: /new (new conversation), /history (recent "
              "messages), /context (what the model sees), /help, /quit.",
        "zh": "输入消息后回车。命令：/new（新对话）、/history（最近消息）、/context（模型看到的内容）、/help、/quit。",
    },
    "chat.new": {
        "en": "Started a new conversation with {persona}. The old one is kept.",
        "zh": "已与{persona}开始新对话，旧对话仍然保留。",
    },
    "chat.unknown_command": {
        "en": "Unknown command {command}. Type /help.",
        "zh": "未知命令 {command}。输入 /help 查看帮助。",
    },
    "chat.empty_history": {
        "en": "No messages yet.",
        "zh": "还没有消息。",
    },
    "chat.retrying": {
        "en": "[the reply broke off; retrying]",
        "zh": "[回复中断，正在重试]",
    },
    # Telegram
    "tg.refused": {
        "en": "Sorry, this bot is private. Ask its operator to add your Telegram id ({user_id}).",
        "zh": "抱歉，这是一个私人机器人。请让运营者添加你的 Telegram ID（{user_id}）。",
    },
    "tg.budget_exhausted": {
        "en": "You have used today's token budget ({limit} tokens). It resets at midnight in your time zone.",
        "zh": "你今天的 token 额度（{limit}）已经用完了，将在你所在时区的午夜重置。",
    },
    "tg.help": {
        "en": "I remember everything we say, across restarts and months.\n\n"
              "/new — start a new conversation (the old one is kept)\n"
              "/history — your conversations; resume one\n"
              "/retry — another answer to your last message\n"
              "/continue — continue my last reply\n"
              "/undo — take the last exchange out of my memory\n"
              "/context — what I see right now\n"
              "/search words — find something in our history\n"
              "/usage — tokens used and estimated cost\n"
              "/export — this conversation as Markdown and JSON\n"
              "/docs — your documents; attach or detach them (send a file to add one)\n"
              "/characters — the characters of the attached novel; I play the one you pick\n"
              "/asof N — the novel's timeline: I know it only up to chapter N\n"
              "/persona — who I am; switch character\n"
              "/me — tell me who you are\n"
              "/tz — your time zone\n"
              "/lang — language of these menus\n"
              "/forget — delete all your data",
        "zh": "我会记住我们说过的一切，重启或过了几个月也一样。\n\n"
              "/new — 开始新对话（旧对话会保留）\n"
              "/history — 你的对话列表，可恢复任意一个\n"
              "/retry — 重新回答你的上一条消息\n"
              "/continue — 接着我上一条回复继续写\n"
              "/undo — 让我忘掉最近一轮对话\n"
              "/context — 我现在能看到的内容\n"
              "/search 关键词 — 在我们的历史里搜索\n"
              "/usage — 用量与估算费用\n"
              "/export — 导出本次对话（Markdown 和 JSON）\n"
              "/docs — 你的文档；附加或取下（发送文件即可添加）\n"
              "/characters — 已附加小说中的人物；选一个，我来扮演\n"
              "/asof N — 小说时间线：我只知道到第 N 章为止的情节\n"
              "/persona — 当前角色；切换角色\n"
              "/me — 告诉我你是谁\n"
              "/tz — 设置你的时区\n"
              "/lang — 菜单语言\n"
              "/forget — 删除你的全部数据",
    },
    "tg.new": {
        "en": "New conversation with {persona}. The previous one is kept in /history.",
        "zh": "已与{persona}开始新对话。之前的对话保存在 /history 中。",
    },
    "tg.history_empty": {"en": "No conversations yet.", "zh": "还没有对话。"},
    "tg.history_title": {
        "en": "Your conversations with {persona} (newest first). Tap one to continue it:",
        "zh": "你与{persona}的对话（最新的在前）。点一个继续：",
    },
    "tg.resumed": {
        "en": "Resumed the conversation from {date}. Its last message:\n\n{last}",
        "zh": "已恢复 {date} 的对话。最后一条消息：\n\n{last}",
    },
    "tg.nothing_to_retry": {"en": "There is nothing to answer again yet.", "zh": "现在还没有可以重新回答的消息。"},
    "tg.nothing_to_continue": {"en": "There is no reply to continue yet.", "zh": "还没有可以继续的回复。"},
    "tg.undone": {
        "en": "Done: I took {count} messages out of my memory (they stay in your export).",
        "zh": "好的：我把 {count} 条消息移出了记忆（导出时仍然保留）。",
    },
    "tg.nothing_to_undo": {"en": "There is nothing to undo.", "zh": "没有可以撤销的内容。"},
    "tg.search_usage": {"en": "Usage: /search words to find", "zh": "用法：/search 要找的词"},
    "tg.search_none": {"en": "Nothing found for “{query}”.", "zh": "没有找到“{query}”。"},
    "tg.search_results": {"en": "Found in our history:", "zh": "在我们的历史中找到："},
    "tg.usage": {
        "en": "Today: {today_tokens} tokens in {today_requests} requests ({today_cached} cached).\n"
              "All time: {all_tokens} tokens in {all_requests} requests; {cached_share} of prompt tokens "
              "came from the provider's cache.{cost}",
        "zh": "今天：{today_requests} 次请求，{today_tokens} tokens（缓存命中 {today_cached}）。\n"
              "累计：{all_requests} 次请求，{all_tokens} tokens；提示词中有 {cached_share} 命中了服务商缓存。{cost}",
    },
    "tg.usage_cost": {"en": "\nEstimated cost: {cost} {currency}.", "zh": "\n估算费用：{cost} {currency}。"},
    "tg.usage_no_prices": {
        "en": "\n(The operator has not set prices, so no cost estimate.)",
        "zh": "\n（运营者没有设置价格，因此无法估算费用。）",
    },
    "tg.export_caption": {"en": "This conversation, {count} messages.", "zh": "本次对话，共 {count} 条消息。"},
    "tg.forget_confirm": {
        "en": "Delete everything I know about you: all conversations, in private and in groups, your settings "
              "and usage? This cannot be undone.",
        "zh": "删除我知道的关于你的一切：私聊和群聊中的所有对话、你的设置和用量？此操作无法撤销。",
    },
    "tg.forget_yes": {"en": "Yes, delete everything", "zh": "是的，全部删除"},
    "tg.forget_no": {"en": "Cancel", "zh": "取消"},
    "tg.forgotten": {"en": "Done. Everything about you is deleted.", "zh": "完成。关于你的一切都已删除。"},
    "tg.forget_cancelled": {"en": "Nothing was deleted.", "zh": "没有删除任何内容。"},
    "tg.tz_current": {
        "en": "Your time zone is {zone}. Change it with /tz Asia/Shanghai or /tz +8.",
        "zh": "你的时区是 {zone}。可以用 /tz Asia/Shanghai 或 /tz +8 修改。",
    },
    "tg.tz_set": {"en": "Time zone set to {zone}. It is now {time} for you.", "zh": "时区已设为 {zone}。你那里现在是 {time}。"},
    "tg.tz_invalid": {
        "en": "I don't know the time zone “{value}”. Use a name like Europe/Berlin or an offset like +8.",
        "zh": "我不认识时区“{value}”。请使用 Asia/Shanghai 这样的名称，或 +8 这样的偏移。",
    },
    "tg.lang_set": {"en": "Menus are now in English.", "zh": "菜单已切换为中文。"},
    "tg.lang_usage": {"en": "Usage: /lang en, /lang zh or /lang auto", "zh": "用法：/lang en、/lang zh 或 /lang auto"},
    "tg.edit_too_old": {
        "en": "I only re-answer edits of your latest message; this edit is noted nowhere.",
        "zh": "我只会重新回答你最新一条消息的修改；这次修改不会被记录。",
    },
    "tg.voice_unsupported": {
        "en": "I can't listen to voice or video messages yet — could you write it down for me?",
        "zh": "我暂时还听不了语音或视频消息——可以打字告诉我吗？",
    },
    "tg.file_unsupported": {
        "en": "I can't read this kind of file. Send text, or a .txt, .md, .epub, .pdf, .docx or .html file.",
        "zh": "我读不了这种文件。请发送文字，或 .txt、.md、.epub、.pdf、.docx、.html 文件。",
    },
    "tg.button_retry": {"en": "🔄 Retry", "zh": "🔄 重试"},
    "tg.button_use": {"en": "✓ Use this", "zh": "✓ 用这个"},
    "tg.alternative_chosen": {"en": "This answer is now the one I remember.", "zh": "我会记住这个回答。"},
    "tg.alternative_too_old": {
        "en": "Only the answer to your latest message can be switched.",
        "zh": "只有对你最新消息的回答可以切换。",
    },
    "tg.stats": {
        "en": "Users: {users}. Conversations: {conversations}. Messages: {messages}.\n"
              "Today: {requests} model requests, {prompt} prompt tokens ({cached_share} cached), {completion} "
              "completion tokens.",
        "zh": "用户：{users}。对话：{conversations}。消息：{messages}。\n"
              "今天：{requests} 次模型请求，提示 {prompt} tokens（缓存 {cached_share}），生成 {completion} tokens。",
    },
    "tg.allow_usage": {"en": "Usage: /allow <telegram user id>", "zh": "用法：/allow <Telegram 用户 ID>"},
    "tg.allowed": {"en": "User {user_id} may now use the bot.", "zh": "用户 {user_id} 现在可以使用机器人了。"},
    "tg.admins_only": {"en": "This command is for the bot's admins.", "zh": "这个命令只有管理员可以使用。"},
    "tg.context_note": {
        "en": "What I see in this conversation now:",
        "zh": "我在这段对话中现在能看到的内容：",
    },
    # documents and novels (bot/telegram/handlers/documents.py, characters.py)
    "doc.too_big_for_telegram": {
        "en": "This file is {size} MB, but Telegram lets bots download files of at most 20 MB, so I can't "
              "fetch it. Send a smaller file (a .zip or .epub of it is often much smaller) or split it. "
              "The bot's operator can lift this limit by running a local Bot API server.",
        "zh": "这个文件有 {size} MB，但 Telegram 只允许机器人下载不超过 20 MB 的文件，所以我拿不到它。"
              "请发送更小的文件（压缩成 .zip 或 .epub 往往会小很多），或者分成几部分。"
              "运营者可以通过自建 Bot API 服务器解除这个限制。",
    },
    "doc.too_large": {
        "en": "This file is {size} MB; I read documents of up to {limit} MB. Send a smaller file or split it.",
        "zh": "这个文件有 {size} MB，我最多能读 {limit} MB 的文档。请发送更小的文件，或者分成几部分。",
    },
    "doc.progress": {"en": "📖 “{name}”: {stage}… {percent}%", "zh": "📖 “{name}”：{stage}… {percent}%"},
    "doc.stage.download": {"en": "downloading", "zh": "下载中"},
    "doc.stage.extract": {"en": "reading the text", "zh": "读取文字"},
    "doc.stage.index": {"en": "counting and indexing", "zh": "统计与建立索引"},
    "doc.stage.scan": {"en": "looking for names", "zh": "查找人名"},
    "doc.stage.read": {"en": "reading the chapters", "zh": "阅读章节"},
    "doc.stage.profile": {"en": "writing the character sheet", "zh": "撰写人物设定"},
    "doc.button_cancel": {"en": "✖ Cancel", "zh": "✖ 取消"},
    "doc.cancelled": {"en": "Stopped “{name}”. Nothing was kept.", "zh": "已停止“{name}”，什么都没有保存。"},
    "doc.cancelling": {"en": "Stopping…", "zh": "正在停止…"},
    "doc.failed": {
        "en": "Something went wrong with “{name}”; nothing was kept. Try again.",
        "zh": "处理“{name}”时出错了，什么都没有保存。请再试一次。",
    },
    "doc.read": {
        "en": "📚 Read “{title}”: {chars} characters, {chapters} chapters, {tokens} tokens ({seconds} s). "
              "Attached to this conversation: {mode}",
        "zh": "📚 已读完《{title}》：{chars} 字符，{chapters} 章，{tokens} tokens（{seconds} 秒）。已附加到本次对话：{mode}",
    },
    "doc.read_again": {
        "en": "(You had sent this text before; I used the copy I already have.)",
        "zh": "（这份文本你之前发过，我用的是已保存的那份。）",
    },
    "doc.mode.verbatim": {
        "en": "I have the whole text in front of me.",
        "zh": "全文都在我眼前。",
    },
    "doc.mode.summaries": {
        "en": "it is too long for my context window, so I keep summaries of its chapters (written in the "
              "background) and look up the passages that matter for each message.",
        "zh": "它太长了，放不进我的上下文窗口，所以我会保留各章摘要（在后台生成），并为每条消息查找相关段落。",
    },
    "doc.error.too_large": {"en": "The file is too large.", "zh": "文件太大了。请发送更小的文件或分成几部分。"},
    "doc.error.too_long": {"en": "The text is too long.", "zh": "文字太长了。请分成几部分发送。"},
    "doc.error.zip_bomb": {
        "en": "The archive expands too far to be safe.",
        "zh": "这个压缩包解压后大得异常，为安全起见不予读取。请直接发送文档本身。",
    },
    "doc.error.encrypted": {
        "en": "The file is password-protected.",
        "zh": "文件有密码保护。请去掉密码后再发送。",
    },
    "doc.error.corrupt": {"en": "The file is damaged.", "zh": "文件已损坏或格式不对。请重新导出后再发送。"},
    "doc.error.empty": {"en": "The file is empty.", "zh": "文件是空的。请发送含有文字的文件。"},
    "doc.error.no_text": {
        "en": "The file holds no text.",
        "zh": "文件里没有文字（可能是扫描件或图片）。请发送含有文字的文档。",
    },
    "doc.error.unsupported": {
        "en": "This kind of file is not supported.",
        "zh": "不支持这种文件。请发送 .txt、.md、.epub、.pdf、.docx 或 .html 文件。",
    },
    "doc.error.encoding": {"en": "The text encoding is unknown.", "zh": "无法识别文字编码。请另存为 UTF-8 后再发送。"},
    "doc.error.bad_url": {"en": "That is not a web link.", "zh": "这不是网页链接。请发送以 http:// 或 https:// 开头的链接。"},
    "doc.error.blocked_address": {
        "en": "The link leads to a private address.",
        "zh": "这个链接指向内部或私有地址，不允许访问。请发送公开网页的链接。",
    },
    "doc.error.fetch_failed": {"en": "The link could not be downloaded.", "zh": "无法下载这个链接。请确认它能在浏览器中打开。"},
    "doc.error.timeout": {"en": "The link took too long.", "zh": "下载链接超时了。请稍后再试，或下载后直接发送文件。"},
    "doc.error.too_many_redirects": {
        "en": "The link redirected too often.",
        "zh": "这个链接跳转次数太多。请发送网页的最终地址。",
    },
    "doc.image_without_vision": {
        "en": "This is a picture, and I can't see pictures with the current model. Describe it to me, or send a "
              "document with text (.txt, .md, .epub, .pdf, .docx, .html).",
        "zh": "这是一张图片，而当前的模型看不到图片。可以描述给我听，或者发送含文字的文档（.txt、.md、.epub、.pdf、.docx、.html）。",
    },
    "doc.list_title": {
        "en": "📚 Your documents. ✅ = attached to this conversation; tap one to attach or detach it:",
        "zh": "📚 你的文档。✅ 表示已附加到本次对话；点一下可以附加或取下：",
    },
    "doc.list_empty": {
        "en": "You have no documents yet. Send me a file (.txt, .md, .epub, .pdf, .docx, .html) and I'll read it.",
        "zh": "你还没有文档。发给我一个文件（.txt、.md、.epub、.pdf、.docx、.html），我会读完它。",
    },
    "doc.attached": {"en": "Attached “{title}”.", "zh": "已附加《{title}》。"},
    "doc.detached": {"en": "Detached “{title}”.", "zh": "已取下《{title}》。"},
    "doc.no_novel": {
        "en": "Attach a novel first: send me the file, or pick one in /docs.",
        "zh": "请先附加一部小说：把文件发给我，或在 /docs 里选一部。",
    },
    "doc.private_only": {
        "en": "Characters from novels are played in a private chat with me.",
        "zh": "小说人物扮演请在与我的私聊中进行。",
    },
    "doc.upto": {"en": " (up to chapter {number})", "zh": "（截至第 {number} 章）"},
    "doc.characters_title": {
        "en": "Main characters of “{title}”{upto}. Tap one and I'll become them:",
        "zh": "《{title}》{upto}的主要人物。点一个，我就扮演他/她：",
    },
    "doc.characters_none": {
        "en": "I couldn't find the characters of “{title}”. Try again later.",
        "zh": "我没能找出《{title}》的人物，请稍后再试。",
    },
    "doc.characters_gone": {
        "en": "That list is out of date; send /characters again.",
        "zh": "这个列表已经过期了，请重新发送 /characters。",
    },
    "doc.playing": {
        "en": "🎭 From now on I am {name}, from “{title}”{upto}. This is a new conversation with the novel at hand; "
              "/asof N moves the timeline.",
        "zh": "🎭 从现在起，我就是《{title}》{upto}中的{name}。这是一段新的对话，小说就在手边；/asof N 可以调整时间线。",
    },
    "doc.button_card": {"en": "📇 Export as a character card", "zh": "📇 导出为角色卡"},
    "doc.card_caption": {"en": "{name}, as a character card (PNG and JSON).", "zh": "{name} 的角色卡（PNG 和 JSON）。"},
    "doc.asof_usage": {
        "en": "Timeline of “{title}”: {current}. Use /asof N and I'll know the story only up to chapter N "
              "(1–{count}); /asof off for the whole book.",
        "zh": "《{title}》的时间线：{current}。发送 /asof N，我就只知道到第 N 章为止的情节（1–{count}）；/asof off 恢复全书。",
    },
    "doc.asof_whole": {"en": "the whole book", "zh": "全书"},
    "doc.asof_chapter": {"en": "up to chapter {number}, “{chapter}”", "zh": "截至第 {number} 章“{chapter}”"},
    "doc.asof_set": {
        "en": "Timeline of “{title}”: {current}. I won't know anything that happens later.",
        "zh": "《{title}》的时间线：{current}。之后发生的事我一概不知。",
    },
    "doc.asof_cleared": {"en": "Timeline cleared: I know all of “{title}”.", "zh": "已取消时间线：我知道《{title}》的全部内容。"},
    "doc.no_chapters": {
        "en": "“{title}” has no chapters I could find, so there is no timeline to set.",
        "zh": "《{title}》没有可识别的章节，因此无法设置时间线。",
    },
}


def language_of(code: str | None) -> str:
    """Our catalogue language for a Telegram/BCP 47 language code."""
    if code and code.lower().startswith("zh"):
        return "zh"
    return "en"


def text(key: str, language: str | None = "en", **values: object) -> str:
    entry = CATALOGUE[key]
    template = entry.get(language_of(language), entry["en"])
    return template.format(**values) if values else template


def error_text(kind: str, language: str | None, detail: str = "") -> str:
    key = f"error.{kind}"
    if key not in CATALOGUE:
        key = "error.server"
    return text(key, language, detail=detail) if "{detail}" in CATALOGUE[key]["en"] else text(key, language)
