"""Texts the user sees, in English and Chinese, chosen by the user's language.

A plain catalogue (key -> language -> text with `{placeholders}`) instead of compiled
gettext files: nothing to build, and `tests/test_texts.py` checks that every key exists
in every language with the same placeholders. Chinese covers zh, zh-hans, zh-hant, zh-CN….
"""

from __future__ import annotations

from bot.logs import redact

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
    "error.unreachable": {
        "en": "Cannot reach the model server ({detail}). The operator should start it, or fix OPENAI_BASE_URL. "
              "Your message is saved.",
        "zh": "连不上模型服务器（{detail}）。请运营者启动它，或修正 OPENAI_BASE_URL。你的消息已保存。",
    },
    "error.dns": {
        "en": "Cannot find the model server ({detail}). The operator should check the host name in OPENAI_BASE_URL. "
              "Your message is saved.",
        "zh": "找不到模型服务器（{detail}）。请运营者检查 OPENAI_BASE_URL 里的主机名。你的消息已保存。",
    },
    "error.tls": {
        "en": "A secure connection to the model server failed ({detail}). The operator should check OPENAI_BASE_URL "
              "(http:// or https://) and the server's certificate. Your message is saved.",
        "zh": "与模型服务器的安全连接失败（{detail}）。请运营者检查 OPENAI_BASE_URL（http:// 还是 https://）和服务器证书。"
              "你的消息已保存。",
    },
    "error.wrong_url": {
        "en": "The model server's address is wrong ({detail}). The operator should check OPENAI_BASE_URL: "
              "it usually ends in /v1. Your message is saved.",
        "zh": "模型服务器的地址不对（{detail}）。请运营者检查 OPENAI_BASE_URL：它通常以 /v1 结尾。你的消息已保存。",
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
        "en": "The model endpoint does not know this model ({detail}). The operator should check COMPANION_MODEL.",
        "zh": "模型服务找不到这个模型（{detail}）。请运营者检查 COMPANION_MODEL。",
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
        "en": "Type a message and press Enter. Commands:\n"
              "/new — start a new conversation (the old one is kept)\n"
              "/history — the recent messages; /history list — your conversations; /history N — resume one\n"
              "/retry — another answer to your last message; then /prev and /next to page, /use to keep one\n"
              "/continue — continue my last reply\n"
              "/undo — take the last exchange out of my memory\n"
              "/context — what the model sees now\n"
              "/search words — find something in our history\n"
              "/memory — what I always keep in mind; /memory add TEXT, /memory edit N TEXT, /memory delete N\n"
              "/persona — who I am; /persona N or NAME switches\n"
              "/me — tell me who you are\n"
              "/docs — your documents; /docs add PATH reads a file, /docs attach N, /docs detach N\n"
              "/asof N — the novel's timeline: I know it only up to chapter N\n"
              "/export — this conversation as Markdown and JSON files\n"
              "/usage — tokens used and estimated cost\n"
              "/model — the model that answers; /model N or NAME chooses\n"
              "/tz — your time zone; /lang en|zh|auto — language of these texts\n"
              "/forget — delete all your data\n"
              "/help, /quit",
        "zh": "输入消息后回车。命令：\n"
              "/new — 开始新对话（旧对话会保留）\n"
              "/history — 最近的消息；/history list — 你的对话列表；/history 编号 — 恢复其中一个\n"
              "/retry — 重新回答你的上一条消息；之后用 /prev、/next 翻看，/use 保留其中一个\n"
              "/continue — 接着我上一条回复继续写\n"
              "/undo — 让我忘掉最近一轮对话\n"
              "/context — 模型现在看到的内容\n"
              "/search 关键词 — 在我们的历史里搜索\n"
              "/memory — 我一直记着的事；/memory add 内容、/memory edit 编号 内容、/memory delete 编号\n"
              "/persona — 当前角色；/persona 编号或名字 切换角色\n"
              "/me — 告诉我你是谁\n"
              "/docs — 你的文档；/docs add 路径 读取文件，/docs attach 编号、/docs detach 编号\n"
              "/asof N — 小说时间线：我只知道到第 N 章为止的情节\n"
              "/export — 把本次对话导出为 Markdown 和 JSON 文件\n"
              "/usage — 用量与估算费用\n"
              "/model — 回答你的模型；/model 编号或名字 选择\n"
              "/tz — 你的时区；/lang en|zh|auto — 这些文字的语言\n"
              "/forget — 删除你的全部数据\n"
              "/help、/quit",
    },
    "chat.alternatives": {
        "en": "[answer {index} of {count}: /prev and /next show the others, /use keeps the one shown]",
        "zh": "[第 {index}/{count} 个回答：/prev、/next 查看其他回答，/use 保留当前这个]",
    },
    "chat.alternative_kept": {
        "en": "[answer {index} of {count}, the one I remember]",
        "zh": "[第 {index}/{count} 个回答，我记住的是这个]",
    },
    "chat.no_alternatives": {
        "en": "There is only one answer to page through. Type /retry for another.",
        "zh": "目前只有一个回答。输入 /retry 获取另一个。",
    },
    "chat.forget_confirm": {
        "en": "Type /forget yes to delete everything; anything else keeps it.",
        "zh": "输入 /forget yes 删除全部；输入其他任何内容则保留。",
    },
    "chat.exported": {
        "en": "This conversation, {count} messages, is in {files}.",
        "zh": "本次对话（共 {count} 条消息）已写入 {files}。",
    },
    "chat.telegram_only": {
        "en": "{command} works in Telegram only: the terminal chat cannot send voice notes or write to you first.",
        "zh": "{command} 只能在 Telegram 中使用：终端聊天无法发送语音，也不能主动找你。",
    },
    "chat.docs_usage": {
        "en": "Usage: /docs, /docs add PATH, /docs attach N, /docs detach N (N as listed by /docs).",
        "zh": "用法：/docs、/docs add 路径、/docs attach 编号、/docs detach 编号（编号见 /docs 列表）。",
    },
    "chat.persona_choose": {
        "en": "Type /persona N or a name to talk to another character; each one keeps its own conversations "
              "with you.",
        "zh": "输入 /persona 编号或名字，和另一个角色聊天；每个角色都有自己和你的对话。",
    },
    "chat.docs_title": {
        "en": "📚 Your documents. [x] = attached to this conversation:",
        "zh": "📚 你的文档。[x] 表示已附加到本次对话：",
    },
    "chat.history_list": {
        "en": "Your conversations with {persona} (newest first; /history N resumes one):",
        "zh": "你与{persona}的对话（最新的在前；/history 编号 恢复其中一个）：",
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
    # the turn, every face
    "turn.cut": {
        "en": "Your message was longer than I can read at once: I read the first {sent} of its {total} "
              "characters. The whole message is stored and searchable (/search); to have me read all of it, "
              "send it as a document.",
        "zh": "你的消息太长，我一次读不完：只读了全部 {total} 个字符中的前 {sent} 个。完整消息已保存，可以搜索（/search）；"
              "想让我读完全文，请把它作为文档发送。",
    },
    # Telegram
    "tg.failed": {
        "en": "Sorry, something went wrong with that. Nothing you sent was lost — please try again.",
        "zh": "抱歉，刚才出了点问题。你发送的内容都没有丢失，请再试一次。",
    },
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
              "/memory — what I always keep in mind about you\n"
              "/card — this character as a card file\n"
              "/voice — my replies as voice notes too\n"
              "/checkin — let me write to you first now and then\n"
              "/model — choose the model that answers\n"
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
              "/memory — 我一直记着的关于你的事\n"
              "/card — 导出当前角色的角色卡\n"
              "/voice — 回复时也发语音\n"
              "/checkin — 允许我偶尔主动找你\n"
              "/model — 选择回答你的模型\n"
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
    # personas: /persona, /me, character cards, /reload, /publish, /card
    "tg.persona_current": {"en": "Now talking to: {name}\n{summary}", "zh": "当前角色：{name}\n{summary}"},
    "tg.persona_choose": {
        "en": "Tap a character to talk to them; each one keeps its own conversations with you.",
        "zh": "点一个角色和他/她聊天；每个角色与你的对话各自独立保存。",
    },
    "tg.persona_page": {"en": "Page {page} of {pages}", "zh": "第 {page}/{pages} 页"},
    "tg.persona_switched": {"en": "Now talking to {name}.", "zh": "现在和你聊天的是{name}。"},
    "tg.persona_resumed": {
        "en": "Now talking to {name} again; we continue where we left off. Last message:\n\n{last}",
        "zh": "又回到了{name}；我们从上次停下的地方继续。最后一条消息：\n\n{last}",
    },
    "tg.persona_same": {"en": "You are already talking to {name}.", "zh": "你现在就在和{name}聊天。"},
    "tg.persona_unavailable": {
        "en": "There is no character “{id}” you can choose. Send /persona to see the list.",
        "zh": "没有你可以选择的角色“{id}”。发送 /persona 查看列表。",
    },
    "tg.me_show": {
        "en": "I call you {name}.{about}\n\nChange it: /me Name — a few words about you\nForget it: /me clear",
        "zh": "我叫你{name}。{about}\n\n修改：/me 名字 — 几句话介绍你自己\n清除：/me clear",
    },
    "tg.me_about": {"en": "\nAbout you: {description}", "zh": "\n关于你：{description}"},
    "tg.me_unset": {
        "en": "I call you {name} (your Telegram name). Tell me who you are, for example:\n"
              "/me Alice — a night-shift nurse who loves cats",
        "zh": "我叫你{name}（你的 Telegram 名字）。告诉我你是谁，例如：\n/me 小雨 — 一个爱猫的夜班护士",
    },
    "tg.me_saved": {
        "en": "Got it: I'll call you {name}.{about}",
        "zh": "记住了：我会叫你{name}。{about}",
    },
    "tg.me_cleared": {
        "en": "Forgotten. I call you {name} again (your Telegram name).",
        "zh": "已清除。我会重新用你的 Telegram 名字{name}称呼你。",
    },
    "tg.me_too_long": {
        "en": "That is too long: a name may have {name_limit} characters and a description {description_limit}. "
              "Nothing was changed.",
        "zh": "太长了：名字最多 {name_limit} 个字符，介绍最多 {description_limit} 个字符。没有做任何修改。",
    },
    "tg.card_imported": {
        "en": "Imported the character card “{name}” (id {id}). It is private: only you can choose it.",
        "zh": "已导入角色卡“{name}”（ID：{id}）。它是私有的：只有你可以选择它。",
    },
    "tg.card_warnings": {"en": "\nNote: {warnings}", "zh": "\n注意：{warnings}"},
    "tg.card_talk": {"en": "💬 Talk to {name}", "zh": "💬 和{name}聊天"},
    "tg.card_refused": {
        "en": "I could not import this character card: {detail}\nNothing was saved.",
        "zh": "无法导入这张角色卡：{detail}\n没有保存任何内容。",
    },
    "tg.card_too_big": {
        "en": "This file is too big for a character card (the limit is {limit} MB).",
        "zh": "这个文件太大，不像是角色卡（上限 {limit} MB）。",
    },
    "tg.card_download_failed": {
        "en": "I could not download this file from Telegram. Try again, or send a smaller file.",
        "zh": "无法从 Telegram 下载这个文件。请重试，或发送一个更小的文件。",
    },
    "tg.card_caption": {
        "en": "{name} as a character card (V2 and V3): import it in SillyTavern, or send it back to me.",
        "zh": "{name}的角色卡（V2 和 V3）：可以导入 SillyTavern，也可以再发给我。",
    },
    "tg.reloaded": {"en": "Persona files reloaded: {count} personas.", "zh": "已重新读取角色文件：共 {count} 个角色。"},
    "tg.reload_problems": {
        "en": "\nThese files were skipped:\n{problems}",
        "zh": "\n以下文件被跳过：\n{problems}",
    },
    "tg.publish_usage": {
        "en": "Usage: /publish ID. Private personas users have added:\n{personas}",
        "zh": "用法：/publish ID。用户添加的私有角色：\n{personas}",
    },
    "tg.publish_none": {
        "en": "Usage: /publish ID. No private personas are waiting.",
        "zh": "用法：/publish ID。目前没有待公开的私有角色。",
    },
    "tg.published": {"en": "“{name}” ({id}) is now offered to everyone.", "zh": "“{name}”（{id}）现在对所有人开放。"},
    "tg.publish_unknown": {
        "en": "There is no private persona “{id}” to publish (persona files are shared already).",
        "zh": "没有可以公开的私有角色“{id}”（角色文件本来就是共享的）。",
    },
    "tg.memory_empty": {
        "en": "I have no pinned memories about you yet. Add one with /memory add I love jasmine tea.",
        "zh": "我还没有关于你的固定记忆。可以用 /memory add 我喜欢茉莉花茶 添加。",
    },
    "tg.memory_title": {
        "en": "What I always keep in mind about you (/memory add, /memory edit N, /memory delete N):",
        "zh": "我一直记着的关于你的事（/memory add、/memory edit 编号、/memory delete 编号）：",
    },
    "tg.memory_added": {"en": "Noted. I'll keep that in mind.", "zh": "记下了，我会记住的。"},
    "tg.memory_edited": {"en": "Memory {number} is corrected.", "zh": "第 {number} 条记忆已更正。"},
    "tg.memory_deleted": {"en": "Memory {number} is deleted; I won't learn it again.",
                          "zh": "第 {number} 条记忆已删除，我不会再记下它。"},
    "tg.memory_deleted_short": {"en": "Deleted.", "zh": "已删除。"},
    "tg.memory_usage": {
        "en": "Usage: /memory, /memory add TEXT, /memory edit N TEXT, /memory delete N",
        "zh": "用法：/memory、/memory add 内容、/memory edit 编号 内容、/memory delete 编号",
    },
    "tg.memory_invalid": {"en": "That can't be kept: {reason}", "zh": "无法记下：{reason}"},
    # companion life: voice, check-ins, model choice, fallback, safety
    "tg.video_unsupported": {
        "en": "I can't watch videos — could you tell me about it in words?",
        "zh": "我看不了视频——可以用文字讲给我听吗？",
    },
    "tg.voice_too_long": {
        "en": "This recording is too long for me (Telegram lets bots download at most 20 MB). Send a shorter one?",
        "zh": "这段录音太长了（Telegram 只允许机器人下载 20 MB 以内的文件）。能发短一点的吗？",
    },
    "tg.voice_download_failed": {
        "en": "I could not download this voice message from Telegram. Try sending it again.",
        "zh": "无法从 Telegram 下载这条语音。请再发一次。",
    },
    "tg.voice_transcription_failed": {
        "en": "I couldn't make out this voice message (the transcription service failed). Try again, or type it.",
        "zh": "我没听清这条语音（语音识别服务出错了）。请再试一次，或者打字告诉我。",
    },
    "tg.voice_silent": {
        "en": "I couldn't hear any words in this voice message.",
        "zh": "这条语音里我没有听到任何话。",
    },
    "tg.voice_reply_failed": {
        "en": "(I couldn't record a voice note this time.)",
        "zh": "（这次没能录成语音。）",
    },
    "tg.voice_on": {
        "en": "Voice replies are on: you'll get each of my replies as a voice note too. /voice off to stop.",
        "zh": "语音回复已开启：我的每条回复也会发一条语音。发送 /voice off 关闭。",
    },
    "tg.voice_off": {
        "en": "Voice replies are off. /voice on to hear me again.",
        "zh": "语音回复已关闭。发送 /voice on 重新开启。",
    },
    "tg.voice_status": {
        "en": "Voice replies are {state}. Use /voice on or /voice off. "
              "(You can always send me voice messages{listening}.)",
        "zh": "语音回复目前{state}。使用 /voice on 或 /voice off 切换。（你随时可以给我发语音{listening}。）",
    },
    "tg.voice_state_on": {"en": "on", "zh": "已开启"},
    "tg.voice_state_off": {"en": "off", "zh": "已关闭"},
    "tg.voice_not_listening": {"en": " — once the operator sets up transcription", "zh": "——需要运营者先设置语音识别"},
    "tg.voice_not_available": {
        "en": "Voice replies are not set up on this bot (its operator can set COMPANION_TTS_MODEL).",
        "zh": "这个机器人没有设置语音回复（运营者可以设置 COMPANION_TTS_MODEL）。",
    },
    "tg.voice_private_only": {
        "en": "Voice replies are for our private chat.",
        "zh": "语音回复只在私聊中提供。",
    },
    "tg.input_refused": {
        "en": "I can't respond to that message: it goes against this bot's rules. It was not saved.",
        "zh": "我不能回应这条消息：它违反了这个机器人的规则。这条消息没有被保存。",
    },
    "tg.input_warned": {
        "en": "⚠️ Your message was flagged by this bot's content rules. Please keep to them.",
        "zh": "⚠️ 你的消息触发了这个机器人的内容规则，请注意遵守。",
    },
    "tg.reply_refused": {
        "en": "I wrote a reply that goes against this bot's rules, so I won't send it. "
              "Try /retry or say it another way.",
        "zh": "我写出的回复违反了这个机器人的规则，所以不会发送。可以用 /retry 重试，或换个说法。",
    },
    "tg.reply_warned": {
        "en": "⚠️ This reply was flagged by this bot's content rules.",
        "zh": "⚠️ 这条回复触发了这个机器人的内容规则。",
    },
    "tg.answered_by": {
        "en": "— answered by {model} (the main model is unavailable right now)",
        "zh": "——由 {model} 回答（主模型暂时不可用）",
    },
    "tg.model_menu": {
        "en": "The model that answers you now: {current}. Choose another:",
        "zh": "现在回答你的模型：{current}。可以选择其他模型：",
    },
    "tg.model_only_one": {
        "en": "This bot offers one model: {current}.",
        "zh": "这个机器人只提供一个模型：{current}。",
    },
    "tg.model_set": {
        "en": "From now on {model} answers you (context window {window} tokens).",
        "zh": "从现在起由 {model} 回答你（上下文窗口 {window} tokens）。",
    },
    "tg.model_unknown": {
        "en": "This bot does not offer the model “{model}”. Choose one of: {models}",
        "zh": "这个机器人不提供模型“{model}”。可选：{models}",
    },
    "tg.model_pinned": {
        "en": "Note: {persona} always uses {model}; your choice applies to other characters.",
        "zh": "注意：{persona}固定使用 {model}；你的选择只对其他角色生效。",
    },
    "tg.model_private_only": {
        "en": "The model is chosen in private chats; groups use the bot's default ({model}).",
        "zh": "模型只能在私聊中选择；群聊使用机器人的默认模型（{model}）。",
    },
    "tg.checkin_on": {
        "en": "Check-ins are on: I may write to you first, at most once every {every}, never between {quiet} "
              "your time ({zone}). If you don't answer for a while, I'll wait for you. /checkin off to stop.",
        "zh": "主动问候已开启：我可能会主动找你，最多每{every}一次，你那里 {quiet}（{zone}）之间不会打扰。"
              "如果你一阵子没回复，我会等你来找我。发送 /checkin off 关闭。",
    },
    "tg.checkin_off": {
        "en": "Check-ins are off: I'll only write when you do. /checkin on to change that.",
        "zh": "主动问候已关闭：只有你找我时我才会回复。发送 /checkin on 重新开启。",
    },
    "tg.checkin_usage": {
        "en": "/checkin on [rhythm] — let me write first, e.g. /checkin on 12h (also 2d, weekly)\n"
              "/checkin quiet 22-8 — hours I stay quiet, in your time zone (/tz); /checkin quiet off for none\n"
              "/checkin off — stop",
        "zh": "/checkin on [频率] — 允许我主动找你，例如 /checkin on 12h（也可以 2d、weekly）\n"
              "/checkin quiet 22-8 — 免打扰时段，按你的时区（/tz）；/checkin quiet off 表示不设\n"
              "/checkin off — 关闭",
    },
    "tg.checkin_bad_rhythm": {
        "en": "“{value}” is not a rhythm. Use hours or days, e.g. 12h, 2d, daily or weekly.",
        "zh": "“{value}”不是有效的频率。请用小时或天，例如 12h、2d、daily 或 weekly。",
    },
    "tg.checkin_rhythm_range": {
        "en": "Choose a rhythm between {low} and {high}.",
        "zh": "请选择 {low} 到 {high} 之间的频率。",
    },
    "tg.checkin_bad_quiet": {
        "en": "“{value}” is not a span of hours. Use e.g. 22-8 or 23:30-07:00, or off.",
        "zh": "“{value}”不是有效的时段。请用例如 22-8 或 23:30-07:00，或 off。",
    },
    "tg.checkin_quiet_set": {
        "en": "Quiet hours set to {quiet} ({zone}).",
        "zh": "免打扰时段已设为 {quiet}（{zone}）。",
    },
    "tg.checkin_no_quiet": {"en": "no quiet hours", "zh": "不设免打扰"},
    "tg.checkin_private_only": {
        "en": "Check-ins are for our private chat: send /checkin to me directly.",
        "zh": "主动问候只在私聊中提供：请直接私聊我发送 /checkin。",
    },
    "tg.checkin_unavailable": {
        "en": "Check-ins are turned off on this bot.",
        "zh": "这个机器人关闭了主动问候功能。",
    },
    "tg.hours": {"en": "{count} h", "zh": " {count} 小时"},
    "tg.days": {"en": "{count} days", "zh": " {count} 天"},
    "tg.day": {"en": "day", "zh": "天"},
    "tg.age_prompt": {
        "en": "This bot is for adults. Please confirm that you are {age} or older.",
        "zh": "这个机器人仅面向成年人。请确认你已年满 {age} 岁。",
    },
    "tg.age_yes": {"en": "I am {age} or older", "zh": "我已年满 {age} 岁"},
    "tg.age_no": {"en": "I am under {age}", "zh": "我未满 {age} 岁"},
    "tg.age_confirmed": {
        "en": "Thank you. Say hello!",
        "zh": "谢谢确认。来打个招呼吧！",
    },
    "tg.age_declined": {
        "en": "Sorry, this bot is only for adults.",
        "zh": "抱歉，这个机器人只面向成年人。",
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
    # the Mini App (bot/web)
    "tg.app_open": {
        "en": "Your characters, memory, documents, history and settings, on one page:",
        "zh": "你的角色、记忆、文档、历史和设置，都在一个页面里：",
    },
    "tg.app_button": {"en": "Open the app", "zh": "打开应用"},
    "tg.app_not_set": {
        "en": "The app is not set up on this bot (the operator sets COMPANION_WEB_URL). The chat commands work: /help.",
        "zh": "这个机器人还没有开启应用（需要运营者设置 COMPANION_WEB_URL）。聊天命令照常可用：/help。",
    },
    "tg.app_private_only": {"en": "Open the app from a private chat with me.", "zh": "请在与我的私聊中打开应用。"},
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


def render(notice, language: str | None = "en") -> str:
    """The text of a service-layer `Notice` (memory/service/results.py): its values that
    are Notices are rendered first, in the same language; `then` follows on a new line."""
    language = notice.lang or language
    values = {key: render(value, language) if hasattr(value, "key") and hasattr(value, "then") else value
              for key, value in notice.values.items()}
    if notice.key.startswith("error."):
        shown = error_text(notice.key[len("error."):], language, str(values.get("detail", "")))
    else:
        template = CATALOGUE[notice.key]
        shown = text(notice.key, language, **values) if "{" in template["en"] else text(notice.key, language)
    return shown + ("\n" + render(notice.then, language) if notice.then is not None else "")


def error_text(kind: str, language: str | None, detail: str = "") -> str:
    key = f"error.{kind}"
    if key not in CATALOGUE:
        key = "error.server"
    # redacted: an endpoint's error may quote the key it was sent
    return text(key, language, detail=redact(detail)) if "{detail}" in CATALOGUE[key]["en"] else text(key, language)
