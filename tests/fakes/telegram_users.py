"""The user side of the fake Bot API: who the users are, their chats and files, and what
they do (write, reply, edit, press buttons, send stickers, photos, voice, documents,
forwards, polls, delete, stop a draft), each pushed as an update for getUpdates. Part of
FakeTelegram (tests/fakes/telegram_server.py), which holds the state."""

from __future__ import annotations

import mimetypes
import time
from typing import Any, Iterable

from tests.fakes.telegram_records import DEFAULT_GROUP_ID, DEFAULT_USER_ID, StoredFile, _detect_entities
from tests.fakes.telegram_text import utf16_len


class UserSide:
    """What users do, scripted by tests (a mixin of FakeTelegram)."""

    # == scripting: identities, chats, files ==============================================
    def user(self, user_id: int = DEFAULT_USER_ID, *, first_name: str = "Alice",
             username: str | None = "alice", language_code: str | None = "en",
             last_name: str | None = None, is_premium: bool | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        for key, value in (("last_name", last_name), ("username", username),
                           ("language_code", language_code), ("is_premium", is_premium)):
            if value is not None:
                user[key] = value
        return user

    def open_private_chat(self, user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        user = self._as_user(user)
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return self._register_chat(chat)

    def open_group(self, chat_id: int = DEFAULT_GROUP_ID, *, title: str = "Test group",
                   chat_type: str = "supergroup", is_forum: bool = False) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type, "title": title}
        if is_forum:
            chat["is_forum"] = True
        return self._register_chat(chat)

    def add_file(self, data: bytes, file_name: str | None = None,
                 mime_type: str | None = None, folder: str = "documents") -> str:
        """Register a file as if some user had uploaded it; returns its file_id."""
        with self.lock:
            number = next(self._file_counter)
            suffix = ""
            if file_name and "." in file_name:
                suffix = "." + file_name.rsplit(".", 1)[1]
            elif mime_type:
                suffix = mimetypes.guess_extension(mime_type) or ""
            stored = StoredFile(
                file_id=f"BQACAgIAAxkBAAI{number:06d}fake", file_unique_id=f"AgAD{number:06d}",
                data=data, file_name=file_name, mime_type=mime_type,
                file_path=f"{folder}/file_{number}{suffix}",
            )
            self._files[stored.file_id] = stored
            return stored.file_id

    def file_bytes(self, file_id: str) -> bytes:
        with self.lock:
            return self._files[file_id].data

    # == scripting: updates from users ====================================================
    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update {"update_id": n, kind: payload} for getUpdates."""
        with self.lock:
            update = {"update_id": self._next_update_id, kind: payload}
            self._next_update_id += 1
            self._updates.append(update)
        if self.loop is not None and self._update_arrived is not None:
            self.loop.call_soon_threadsafe(self._update_arrived.set)
        return update

    def private_message(self, text: str, *, user: dict[str, Any] | int | None = None,
                        language_code: str | None = "en", **extra: Any) -> dict[str, Any]:
        """A text message from a user in their private chat with the bot; returns the Message."""
        if user is None or isinstance(user, int):
            user = self.user(user or DEFAULT_USER_ID, language_code=language_code)
        chat = self.open_private_chat(user)
        return self._user_message(chat, user, {"text": text}, **extra)

    def group_message(self, text: str, *, chat_id: int = DEFAULT_GROUP_ID,
                      user: dict[str, Any] | int | None = None, chat_type: str = "supergroup",
                      mention: str | None = None, **extra: Any) -> dict[str, Any]:
        """A message in a group. mention="username" prefixes "@botname " (a mention entity),
        mention="text_mention" prefixes the bot's first name as a text_mention entity."""
        chat = self._known_chat(chat_id) or self.open_group(chat_id, chat_type=chat_type)
        user = self._as_user(user)
        extra_entities: list[dict[str, Any]] = []
        if mention == "username":
            text = f"@{self.bot_user['username']} {text}"
        elif mention == "text_mention":
            name = self.bot_user["first_name"]
            text = f"{name} {text}"
            extra_entities.append({"type": "text_mention", "offset": 0, "length": utf16_len(name),
                                   "user": dict(self.bot_user)})
        elif mention is not None:
            raise ValueError("mention must be 'username', 'text_mention' or None")
        return self._user_message(chat, user, {"text": text}, extra_entities=extra_entities, **extra)

    def topic_message(self, text: str, *, thread_id: int, chat_id: int = DEFAULT_GROUP_ID,
                      user: dict[str, Any] | int | None = None, **extra: Any) -> dict[str, Any]:
        """A message in a forum topic of a supergroup."""
        chat = self._known_chat(chat_id) or self.open_group(chat_id, is_forum=True)
        return self._user_message(chat, self._as_user(user), {"text": text},
                                  thread_id=thread_id, **extra)

    def reply_to(self, message_id: int, text: str, *, chat_id: int = DEFAULT_USER_ID,
                 user: dict[str, Any] | int | None = None, **extra: Any) -> dict[str, Any]:
        """A user's reply to an earlier message (typically one of the bot's) in `chat_id`."""
        chat = self._chat_or_error(chat_id)
        return self._user_message(chat, self._as_user(user), {"text": text},
                                  reply_to=message_id, **extra)

    def edit_user_message(self, message: dict[str, Any], new_text: str) -> dict[str, Any]:
        """The user edits one of their text messages: an `edited_message` update."""
        chat_id, message_id = message["chat"]["id"], message["message_id"]
        with self.lock:
            stored = self._messages[chat_id][message_id]
            payload = dict(stored.payload, text=new_text, edit_date=int(time.time()))
            entities = _detect_entities(new_text)
            payload.pop("entities", None)
            if entities:
                payload["entities"] = entities
            stored.payload = payload
            stored.edits += 1
        self.push_update("edited_message", payload)
        return payload

    def callback_query(self, message_id: int, data: str, *, chat_id: int = DEFAULT_USER_ID,
                       user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        """The user presses an inline button with callback `data` under `message_id`."""
        with self.lock:
            message = self._messages[chat_id][message_id].payload
            query_id = f"{next(self._callback_counter)}{abs(chat_id) % 10**6:06d}"
            self._open_callback_queries.add(query_id)
        query = {"id": query_id, "from": self._as_user(user), "message": dict(message),
                 "chat_instance": f"-{abs(chat_id)}77", "data": data}
        self.push_update("callback_query", query)
        return query

    def sticker(self, *, chat_id: int | None = None, user: dict[str, Any] | int | None = None,
                emoji: str = "😀") -> dict[str, Any]:
        file_id = self.add_file(b"RIFF....WEBP", None, "image/webp", folder="stickers")
        content = {"sticker": {**self._file_fields(file_id), "type": "regular", "width": 512,
                               "height": 512, "is_animated": False, "is_video": False,
                               "emoji": emoji}}
        return self._message_in(chat_id, user, content)

    def photo(self, data: bytes = b"\xff\xd8\xff fake jpeg", *, caption: str | None = None,
              chat_id: int | None = None, user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        file_id = self.add_file(data, None, "image/jpeg", folder="photos")
        content: dict[str, Any] = {"photo": [{**self._file_fields(file_id), "width": 800,
                                              "height": 600}]}
        content["photo"][0].pop("mime_type", None)
        content["photo"][0].pop("file_name", None)
        return self._message_in(chat_id, user, content, caption=caption)

    def voice(self, data: bytes = b"OggS fake opus", *, duration: int = 3,
              chat_id: int | None = None, user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        file_id = self.add_file(data, None, "audio/ogg", folder="voice")
        content = {"voice": {**self._file_fields(file_id), "duration": duration}}
        content["voice"].pop("file_name", None)
        return self._message_in(chat_id, user, content)

    def audio(self, data: bytes, *, file_name: str = "song.mp3", mime_type: str = "audio/mpeg",
              duration: int = 3, chat_id: int | None = None,
              user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        """An audio file (music player style), as sent from the attachment menu."""
        file_id = self.add_file(data, file_name, mime_type, folder="music")
        return self._message_in(chat_id, user, {"audio": {**self._file_fields(file_id), "duration": duration}})

    def video_note(self, data: bytes, *, duration: int = 3, chat_id: int | None = None,
                   user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        """A round video message (MP4)."""
        file_id = self.add_file(data, None, "video/mp4", folder="video_notes")
        content = {"video_note": {**self._file_fields(file_id), "length": 240, "duration": duration}}
        content["video_note"].pop("mime_type", None)
        return self._message_in(chat_id, user, content)

    def document(self, file_id: str, *, caption: str | None = None, chat_id: int | None = None,
                 user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        """A document message for a file registered with `add_file`."""
        return self._message_in(chat_id, user, {"document": self._file_fields(file_id)},
                                caption=caption)

    def forwarded_message(self, text: str, *, origin_user: dict[str, Any] | None = None,
                          chat_id: int | None = None, user: dict[str, Any] | int | None = None
                          ) -> dict[str, Any]:
        origin = origin_user or self.user(2002, first_name="Bob", username="bob")
        forward = {"forward_origin": {"type": "user", "sender_user": origin,
                                      "date": int(time.time()) - 3600}}
        return self._message_in(chat_id, user, {"text": text, **forward})

    def poll(self, question: str, options: Iterable[str], *, chat_id: int | None = None,
             user: dict[str, Any] | int | None = None) -> dict[str, Any]:
        poll = {"id": f"5{next(self._file_counter):09d}", "question": question,
                "options": [{"persistent_id": str(i), "text": o, "voter_count": 0}
                            for i, o in enumerate(options)],
                "total_voter_count": 0, "is_closed": False, "is_anonymous": True,
                "type": "regular", "allows_multiple_answers": False, "allows_revoting": False,
                "members_only": False}
        return self._message_in(chat_id, user, {"poll": poll})

    def delete_message(self, chat_id: int, message_id: int) -> None:
        """The user deletes a message (bots get no update for that; it is just gone)."""
        with self.lock:
            self._messages[chat_id].pop(message_id, None)

    def stopped_generation(self, chat_id: int, draft_id: int,
                           thread_id: int | None = None) -> dict[str, Any]:
        """The user pressed the stop button of a draft sent with can_stop."""
        payload: dict[str, Any] = {"chat": self._chat_or_error(chat_id), "draft_id": draft_id}
        if thread_id is not None:
            payload["message_thread_id"] = thread_id
        return self.push_update("stopped_message_generation", payload)
