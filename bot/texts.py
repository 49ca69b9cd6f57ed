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
