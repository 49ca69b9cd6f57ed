"""What a Telegram message says, as text for the model.

Text and captions pass as written. A reply to an older message quotes it; a forwarded
message says where it came from; stickers, photos, polls, locations and contacts become
short bracketed descriptions the character can react to. Group messages addressed to the
bot lose the leading @mention. Voice, video and files are handled elsewhere (None here).
"""

from __future__ import annotations

import re

from aiogram.types import Message

QUOTE_LIMIT = 300


def describe(message: Message, *, bot_username: str | None = None, bot_id: int | None = None,
             last_bot_message_id: str | None = None) -> str | None:
    body = _body(message)
    if body is None:
        return None
    if bot_username:
        body = re.sub(rf"^\s*@{re.escape(bot_username)}\b[\s,:，：]*", "", body, flags=re.IGNORECASE) or body
    prefix = _forward_note(message) + _quote(message, bot_id, last_bot_message_id)
    return f"{prefix}{body}" if prefix else body


def _body(message: Message) -> str | None:
    if message.text:
        return message.text
    if message.sticker:
        return f"[sticker {message.sticker.emoji or ''}]".replace(" ]", "]")
    if message.photo:
        return f"[photo] {message.caption}" if message.caption else "[photo]"
    if message.poll:
        options = " / ".join(option.text for option in message.poll.options)
        return f"[poll] {message.poll.question} — {options}"
    if message.location:
        return f"[location {message.location.latitude:.4f}, {message.location.longitude:.4f}]"
    if message.contact:
        return f"[contact {message.contact.first_name} {message.contact.last_name or ''}]".replace(" ]", "]")
    if message.dice:
        return f"[dice {message.dice.emoji} {message.dice.value}]"
    if message.animation:
        return f"[GIF] {message.caption}" if message.caption else "[GIF]"
    return None


def _forward_note(message: Message) -> str:
    origin = message.forward_origin
    if origin is None:
        return ""
    name = (getattr(getattr(origin, "sender_user", None), "full_name", None)
            or getattr(origin, "sender_user_name", None)
            or getattr(getattr(origin, "chat", None), "title", None)
            or getattr(getattr(origin, "sender_chat", None), "title", None) or "someone")
    return f"[forwarded from {name}]\n"


def _quote(message: Message, bot_id: int | None, last_bot_message_id: str | None) -> str:
    quoted = message.reply_to_message
    if quoted is None:
        return ""
    if bot_id is not None and quoted.from_user and quoted.from_user.id == bot_id \
            and str(quoted.message_id) == str(last_bot_message_id):
        return ""  # a reply to the bot's latest message is just the next turn
    words = message.quote.text if message.quote else (quoted.text or quoted.caption or "")
    if not words:
        return ""
    if len(words) > QUOTE_LIMIT:
        words = words[:QUOTE_LIMIT] + "…"
    who = quoted.from_user.full_name if quoted.from_user else "someone"
    return f"[replying to {who}: “{words}”]\n"


def addressed_to_bot(message: Message, bot_username: str | None, bot_id: int) -> bool:
    """In a group: a mention, a text_mention, a reply to the bot, or a command for it."""
    if message.reply_to_message and message.reply_to_message.from_user \
            and message.reply_to_message.from_user.id == bot_id:
        return True
    text = message.text or message.caption or ""
    for entity in message.entities or message.caption_entities or []:
        if entity.type == "text_mention" and entity.user and entity.user.id == bot_id:
            return True
        if entity.type == "mention" and bot_username:
            mention = entity.extract_from(text)
            if mention.lstrip("@").lower() == bot_username.lower():
                return True
        if entity.type == "bot_command" and entity.offset == 0:
            command = entity.extract_from(text)
            return "@" not in command or command.split("@", 1)[1].lower() == (bot_username or "").lower()
    return False
