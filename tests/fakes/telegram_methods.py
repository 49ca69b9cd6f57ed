"""The Bot API methods of the fake: each `_api_<method>` answers one method as Telegram
does (its checks, its errors, its effect on the chats), and the internals they share
(chats, message ids, bot messages, edits, media). Part of FakeTelegram
(tests/fakes/telegram_server.py), which routes calls here and holds the state."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import time
from typing import Any

from tests.fakes.telegram_records import (
    _CHAT_ACTIONS,
    _DEFAULT_EXCLUDED_UPDATES,
    DEFAULT_USER_ID,
    DOWNLOAD_LIMIT,
    UPLOAD_LIMIT,
    ApiError,
    ChatMessage,
    UploadedFile,
    _detect_entities,
    _inline_markup,
)
from tests.fakes.telegram_text import CAPTION_LIMIT, BadRequest, read_text


class BotApiMethods:
    """The Bot API as the bot sees it (a mixin of FakeTelegram)."""

    # == API methods =======================================================================
    def _api_getMe(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    def _api_getChat(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._chat_or_error(params.get("chat_id"))
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                        "unique_gifts": False, "premium_subscription": False}}

    async def _api_getUpdates(self, params: dict[str, Any],
                              files: dict[str, UploadedFile]) -> list[dict[str, Any]]:
        with self.lock:
            if self.webhook["url"]:
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is "
                                    "active; use deleteWebhook to delete the webhook first")
            if "allowed_updates" in params:
                self._allowed_updates = list(params["allowed_updates"] or [])
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        deadline = time.monotonic() + max(0, int(params.get("timeout") or 0))
        assert self._update_arrived is not None
        while True:
            self._update_arrived.clear()
            with self.lock:
                ready = self._confirm_and_select(offset, limit)
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0:
                with self.lock:
                    for update in ready:
                        self.deliveries[update["update_id"]] = self.deliveries.get(update["update_id"], 0) + 1
                return ready
            try:
                await asyncio.wait_for(self._update_arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def _confirm_and_select(self, offset: int, limit: int) -> list[dict[str, Any]]:
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        allowed = set(self._allowed_updates)
        selected = []
        for update in self._updates:
            kind = next(k for k in update if k != "update_id")
            if (kind in allowed) if allowed else (kind not in _DEFAULT_EXCLUDED_UPDATES):
                selected.append(update)
        return selected[:limit]

    def _api_sendMessage(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._chat_or_error(params.get("chat_id"))
        text, entities = read_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._bot_message(chat, content, params).payload

    def _api_sendMessageDraft(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        chat = self._chat_or_error(params.get("chat_id"))
        if chat["type"] != "private":
            raise BadRequest("TEXTDRAFT_PEER_INVALID")
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise BadRequest("draft_id must be non-zero")
        text, entities = read_text(params.get("text"), params.get("parse_mode"),
                                   params.get("entities"), allow_empty=True)
        self.drafts[(chat["id"], params.get("message_thread_id"))] = {
            "draft_id": draft_id, "text": text, "entities": entities,
            "can_stop": bool(params.get("can_stop")), "at": time.monotonic(),
        }
        return True

    def _api_editMessageText(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if params.get("inline_message_id"):
            return True
        stored = self._editable(params)
        text, entities = read_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
        if "text" not in stored.payload:
            raise BadRequest("there is no text in the message to edit")
        markup = _inline_markup(params.get("reply_markup"))
        return self._apply_edit(stored, {"text": text, "entities": entities}, markup)

    def _api_editMessageReplyMarkup(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if params.get("inline_message_id"):
            return True
        stored = self._editable(params)
        return self._apply_edit(stored, {}, _inline_markup(params.get("reply_markup")))

    def _api_deleteMessage(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        chat = self._chat_or_error(params.get("chat_id"))
        messages = self._messages.get(chat["id"], {})
        if params.get("message_id") not in messages:
            raise BadRequest("message to delete not found")
        del messages[params["message_id"]]
        return True

    def _api_sendChatAction(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        self._chat_or_error(params.get("chat_id"))
        if params.get("action") not in _CHAT_ACTIONS:
            raise BadRequest("wrong parameter action in request")
        return True

    def _api_sendDocument(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return self._send_media("document", params, files)

    def _api_sendVoice(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return self._send_media("voice", params, files)

    def _api_sendPhoto(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return self._send_media("photo", params, files)

    def _api_getFile(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id")))
        if stored is None:
            raise BadRequest("invalid file_id")
        if len(stored.data) > DOWNLOAD_LIMIT:
            raise BadRequest("file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}

    def _api_setMyCommands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise BadRequest("commands must be a list of at most 100 BotCommand")
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise BadRequest("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise BadRequest("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    def _api_deleteMyCommands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _api_getMyCommands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> list[Any]:
        return self.commands.get(self._commands_key(params), [])

    def _api_answerCallbackQuery(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        query_id = params.get("callback_query_id")
        if query_id not in self._open_callback_queries:
            raise BadRequest("query is too old and response timeout expired or query ID is invalid")
        self._open_callback_queries.discard(query_id)
        if len(str(params.get("text") or "")) > 200:
            raise BadRequest("MESSAGE_TOO_LONG")
        return True

    def _api_deleteWebhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        self.webhook["url"] = ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_setWebhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise BadRequest("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook["url"] = url
        return True

    def _api_getWebhookInfo(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> dict[str, Any]:
        return {**self.webhook, "pending_update_count": len(self._updates)}

    def _api_close(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        return True

    def _api_logOut(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> bool:
        return True

    # == internals =========================================================================
    def _as_user(self, user: dict[str, Any] | int | None) -> dict[str, Any]:
        if isinstance(user, dict):
            return user
        return self.user(user if user is not None else DEFAULT_USER_ID)

    def _register_chat(self, chat: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            known = self._chats.setdefault(chat["id"], chat)
            self._messages.setdefault(chat["id"], {})
            self._next_message_id.setdefault(chat["id"], 1)
            return dict(known)

    def _known_chat(self, chat_id: int) -> dict[str, Any] | None:
        with self.lock:
            chat = self._chats.get(chat_id)
            return dict(chat) if chat else None

    def _chat_or_error(self, chat_id: Any) -> dict[str, Any]:
        with self.lock:
            if isinstance(chat_id, str) and chat_id.startswith("@"):
                chat = next((c for c in self._chats.values()
                             if c.get("username") == chat_id[1:]), None)
            else:
                chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
            if chat is None:
                raise BadRequest("chat not found")
            return dict(chat)

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id[chat_id]
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _file_fields(self, file_id: str) -> dict[str, Any]:
        stored = self._files[file_id]
        fields: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                                  "file_size": len(stored.data)}
        if stored.file_name:
            fields["file_name"] = stored.file_name
        if stored.mime_type:
            fields["mime_type"] = stored.mime_type
        return fields

    def _message_in(self, chat_id: int | None, user: dict[str, Any] | int | None,
                    content: dict[str, Any], caption: str | None = None) -> dict[str, Any]:
        user = self._as_user(user)
        chat = self._chat_or_error(chat_id) if chat_id is not None else self.open_private_chat(user)
        if caption is not None:
            content = {**content, "caption": caption}
        return self._user_message(chat, user, content)

    def _user_message(self, chat: dict[str, Any], user: dict[str, Any], content: dict[str, Any],
                      *, reply_to: int | None = None, thread_id: int | None = None,
                      extra_entities: list[dict[str, Any]] | None = None,
                      entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        with self.lock:
            message_id = self._new_message_id(chat["id"])
            payload: dict[str, Any] = {"message_id": message_id, "from": user,
                                       "chat": dict(chat), "date": int(time.time())}
            if thread_id is not None:
                payload["message_thread_id"] = thread_id
                payload["is_topic_message"] = True
            if reply_to is not None:
                payload["reply_to_message"] = dict(self._messages[chat["id"]][reply_to].payload)
            payload.update(content)
            for key, source in (("entities", "text"), ("caption_entities", "caption")):
                if source in content:
                    found = (entities if entities is not None and key == "entities"
                             else _detect_entities(content[source]))
                    found = sorted((extra_entities or []) + found,
                                   key=lambda e: (e["offset"], -e["length"]))
                    if found:
                        payload[key] = found
            self._messages[chat["id"]][message_id] = ChatMessage(chat["id"], message_id, False, payload)
        self.push_update("message", payload)
        return payload

    def _bot_message(self, chat: dict[str, Any], content: dict[str, Any],
                     params: dict[str, Any]) -> ChatMessage:
        chat_id = chat["id"]
        payload: dict[str, Any] = {"message_id": 0, "from": dict(self.bot_user), "chat": chat,
                                   "date": int(time.time())}
        thread_id = params.get("message_thread_id")
        if thread_id is not None and chat.get("is_forum"):
            payload["message_thread_id"] = thread_id
            payload["is_topic_message"] = True
        reply = params.get("reply_parameters") or (
            {"message_id": params["reply_to_message_id"]} if params.get("reply_to_message_id") else None)
        if reply:
            target = self._messages[chat_id].get(reply.get("message_id"))
            if target is not None:
                payload["reply_to_message"] = dict(target.payload)
            elif not reply.get("allow_sending_without_reply"):
                raise BadRequest("message to be replied not found")
        payload.update(content)
        markup = _inline_markup(params.get("reply_markup"))
        if markup:
            payload["reply_markup"] = markup
        payload["message_id"] = self._new_message_id(chat_id)
        stored = ChatMessage(chat_id, payload["message_id"], True, payload)
        self._messages[chat_id][stored.message_id] = stored
        self.drafts.pop((chat_id, thread_id), None)  # sending a message ends the draft
        return stored

    def _editable(self, params: dict[str, Any]) -> ChatMessage:
        chat = self._chat_or_error(params.get("chat_id"))
        stored = self._messages.get(chat["id"], {}).get(params.get("message_id"))
        if stored is None:
            raise BadRequest("message to edit not found")
        if not stored.from_bot:
            raise BadRequest("message can't be edited")
        return stored

    def _apply_edit(self, stored: ChatMessage, content: dict[str, Any],
                    markup: dict[str, Any] | None) -> dict[str, Any]:
        current = stored.payload
        changed = (markup or None) != (current.get("reply_markup") or None)
        for key, value in content.items():
            changed = changed or (value or None) != (current.get(key) or None)
        if not changed:
            raise BadRequest("message is not modified: specified new message content and reply "
                             "markup are exactly the same as a current content and reply markup "
                             "of the message")
        payload = dict(current, edit_date=int(time.time()))
        for key, value in content.items():
            payload.pop(key, None)
            if value:
                payload[key] = value
        payload.pop("reply_markup", None)  # an edit without reply_markup removes the keyboard
        if markup:
            payload["reply_markup"] = markup
        stored.payload = payload
        stored.edits += 1
        return payload

    def _send_media(self, kind: str, params: dict[str, Any],
                    files: dict[str, UploadedFile]) -> dict[str, Any]:
        chat = self._chat_or_error(params.get("chat_id"))
        value = params.get(kind)
        upload = files.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://"):])
        if upload is not None:
            if len(upload.data) > UPLOAD_LIMIT:
                raise ApiError(413, "Request Entity Too Large")
            folder = {"document": "documents", "voice": "voice", "photo": "photos"}[kind]
            mime_type = upload.content_type
            if mime_type in ("", "application/octet-stream") and upload.filename:
                mime_type = mimetypes.guess_type(upload.filename)[0] or mime_type
            file_id = self.add_file(upload.data, upload.filename if kind == "document" else None,
                                    mime_type or None, folder=folder)
        elif isinstance(value, str) and value in self._files:
            file_id = value
        else:
            raise BadRequest("wrong file identifier/HTTP URL specified")
        fields = self._file_fields(file_id)
        if kind == "photo":
            fields.pop("file_name", None)
            fields.pop("mime_type", None)
            media: Any = [{**fields, "width": 800, "height": 600}]
        elif kind == "voice":
            fields.pop("file_name", None)
            media = {**fields, "duration": int(params.get("duration") or 1)}
        else:
            media = fields
        content: dict[str, Any] = {kind: media}
        if params.get("caption") is not None:
            caption, entities = read_text(params["caption"], params.get("parse_mode"),
                                          params.get("caption_entities"), limit=CAPTION_LIMIT,
                                          what="message caption", allow_empty=True)
            if caption:
                content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return self._bot_message(chat, content, params).payload

    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")
