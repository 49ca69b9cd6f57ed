"""Chat import: SillyTavern .jsonl in every date shape it has written, and our own export,
through the real `companion import` command."""

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from memory.importer import ChatImportError, parse_chat, parse_send_date, read_chat_file
from memory.schema import open_store
from memory.records import Owner
from tests.test_cli import companion, model_env
from tests.conftest import said

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("value, expected", [
    (1683525372345, "2023-05-08T05:56:12.345+00:00"),  # epoch milliseconds
    ("1683525372345", "2023-05-08T05:56:12.345+00:00"),
    (1683525372, "2023-05-08T05:56:12+00:00"),  # epoch seconds
    ("2023-05-08T05:56:12.345Z", "2023-05-08T05:56:12.345+00:00"),  # ISO 8601
    ("2023-05-08T13:56:12+08:00", "2023-05-08T05:56:12+00:00"),
    ("2023-05-08 @13h 56m 12s 345ms", "2023-05-08T05:56:12.345+00:00"),  # humanized, local time
    ("2023-5-8 @9h 5m 2s 7ms", "2023-05-08T01:05:02.007+00:00"),
    ("May 8, 2023 1:56pm", "2023-05-08T05:56:00+00:00"),  # the old format, local time
    ("December 25, 2023 11:05am", "2023-12-25T03:05:00+00:00"),
    ("Mon May 08 2023 13:56:12 GMT+0800 (China Standard Time)", "2023-05-08T05:56:12+00:00"),
])
def test_every_send_date_shape_is_read(value, expected):
    parsed = parse_send_date(value, SHANGHAI)
    assert parsed.astimezone(timezone.utc) == datetime.fromisoformat(expected)


@pytest.mark.parametrize("value", [None, "", "yesterday", "1:56pm", "13h 56m", True, "2023-99-99", -5])
def test_unreadable_dates_are_none(value):
    assert parse_send_date(value, SHANGHAI) is None


SILLYTAVERN = [
    {"user_name": "Mia", "character_name": "Luna", "create_date": "2023-05-08 @13h 50m 00s 000ms",
     "chat_metadata": {"note_prompt": ""}},
    {"name": "Luna", "is_user": False, "is_system": False, "send_date": "May 8, 2023 1:56pm",
     "mes": "*waves* Hello, Mia!", "swipes": ["*waves* Hello, Mia!", "Hi!"], "swipe_id": 0},
    {"name": "Mia", "is_user": True, "send_date": "2023-05-08T06:00:00.000Z", "mes": "Hi Luna, my cat is Mochi."},
    {"name": "Luna", "is_user": False, "send_date": 1683525660000, "mes": "Mochi! What a name."},
    {"name": "Mia", "is_user": True, "send_date": "2023-05-09 @9h 05m 10s 5ms", "mes": "早上好"},
    {"name": "System", "is_user": False, "is_system": True, "send_date": "2023-05-09 @9h 05m 11s 0ms",
     "mes": "[Mia changed the scenario]"},
    {"name": "Luna", "is_user": False, "send_date": "sometime", "mes": "早！"},
    {"name": "Mia", "is_user": True, "send_date": "2023-05-09 @9h 06m 00s 0ms", "mes": "   "},
]


def write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return path


def rows(db_path):
    store = open_store(db_path)
    found = store.db.execute(
        "SELECT c.persona_id, c.active, m.role, m.content, m.created_at, m.status, m.speaker_name "
        "FROM messages m JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id").fetchall()
    store.close()
    return found


def test_sillytavern_chat_imports_with_timestamps_and_continues(tmp_path, fake_openai, db_path):
    chat = write_jsonl(tmp_path / "Luna - 2023-05-08.jsonl", SILLYTAVERN)
    env = model_env(fake_openai, db_path, COMPANION_TIMEZONE="Asia/Shanghai")
    result = companion(["import", str(chat), "--user", "mia"], env_extra=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "Imported 6 messages from SillyTavern into a new conversation with Assistant for mia.")
    assert "1 message(s) had a date that could not be read" in result.stdout
    imported = rows(db_path)
    assert [(r[2], r[3], r[4], r[5]) for r in imported] == [
        ("assistant", "*waves* Hello, Mia!", "2023-05-08T05:56:00.000+00:00", "complete"),
        ("user", "Hi Luna, my cat is Mochi.", "2023-05-08T06:00:00.000+00:00", "complete"),
        ("assistant", "Mochi! What a name.", "2023-05-08T06:01:00.000+00:00", "complete"),
        ("user", "早上好", "2023-05-09T01:05:10.005+00:00", "complete"),
        ("assistant", "[Mia changed the scenario]", "2023-05-09T01:05:11.000+00:00", "hidden"),
        ("assistant", "早！", "2023-05-09T01:05:11.000+00:00", "complete"),  # took the time before it
    ]
    assert {r[0] for r in imported} == {"assistant"} and {r[1] for r in imported} == {1}
    assert imported[0][6] == "Luna" and imported[1][6] == "Mia"

    fake_openai.enqueue("Mochi is well, I hope?")
    chat_run = companion(["chat", "--user", "mia"], env_extra=env, stdin="Do you remember my cat?\n")
    assert chat_run.returncode == 0, chat_run.stderr
    sent = [m["content"] for m in fake_openai.chat_requests[-1].messages]
    assert [said(c) for c in sent[1:4]] == ["*waves* Hello, Mia!", "Hi Luna, my cat is Mochi.", "Mochi! What a name."]
    assert sent[4] == "[Tue 2023-05-09 09:05]\n早上好"  # a new session, in the user's zone
    assert "[Mia changed the scenario]" not in "\n".join(sent)


def test_own_export_imports_to_the_named_persona(tmp_path, fake_openai, db_path):
    personas = tmp_path / "personas"
    personas.mkdir()
    (personas / "luna.toml").write_text('id = "luna"\nname = "Luna"\n', encoding="utf-8")
    export = {"format": "companion-chat/1", "persona": {"id": "luna", "name": "Luna"}, "messages": [
        {"role": "user", "name": "Mia", "content": "hello", "created_at": "2024-01-02T03:04:05.000+00:00"},
        {"role": "assistant", "name": "Luna", "content": "hi!", "created_at": "2024-01-02T03:04:09.000+00:00"},
    ]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    env = model_env(fake_openai, db_path, COMPANION_PERSONAS_DIR=str(personas))
    result = companion(["import", str(path), "--user", "tg:4242", "--persona", "luna"], env_extra=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Imported 2 messages from companion into a new conversation with Luna for 4242."
    imported = rows(db_path)
    assert [(r[0], r[2], r[4]) for r in imported] == [
        ("luna", "user", "2024-01-02T03:04:05.000+00:00"), ("luna", "assistant", "2024-01-02T03:04:09.000+00:00")]
    store = open_store(db_path)
    user = store.directory.find_user("tg", 4242)
    active = store.conversations.active_conversation(Owner.user(user.id), "luna")  # what chat and context continue
    assert [m.content for m in store.conversations.messages(active.id)] == ["hello", "hi!"]
    store.close()


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty"),
    ('{"user_name": "Mia"}\n{"name": "Luna", "mes": "hi"\n', "line 2 is not valid JSON"),
    ('{"user_name": "Mia"}\n{"name": "Luna", "text": "hi"}\n', "line 2 has no 'mes'"),
    ('{"user_name": "Mia"}\n{"name": "Luna", "mes": 5}\n', "line 2: 'mes' must be text, not int"),
    ('{"user_name": "Mia"}\n', "the file holds no messages"),
    ('{"format": "other/2", "messages": []}', "unknown export format 'other/2'"),
    ('{"format": "companion-chat/1", "messages": [{"role": "system", "content": "x"}]}',
     "message 1: role must be 'user' or 'assistant'"),
    ('[1, 2]', "a JSON list is not a chat"),
    ("[" * 100_000 + "]" * 100_000, "the file is JSON nested too deeply"),
    ('{"user_name": "Mia"}\n' + "[" * 100_000 + "]" * 100_000, "line 2 is JSON nested too deeply"),
])
def test_bad_files_are_refused_saying_what_and_where(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ChatImportError) as refused:
        read_chat_file(path, SHANGHAI)
    assert str(refused.value).startswith(f"bad.jsonl: {message}")


def test_a_bad_file_exits_1_with_one_line_and_stores_nothing(tmp_path, db_path):
    broken = write_jsonl(tmp_path / "broken.jsonl", SILLYTAVERN[:4])
    broken.write_text(broken.read_text(encoding="utf-8") + '{"name": "Luna", "mes": \n', encoding="utf-8")
    result = companion(["import", str(broken), "--user", "mia"], env_extra={"COMPANION_DB": str(db_path)})
    assert result.returncode == 1
    assert result.stderr.strip() == "companion: broken.jsonl: line 5 is not valid JSON (Expecting value at column 25)"
    assert rows(db_path) == []  # not even the readable lines


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ChatImportError, match="nope.jsonl: no such file"):
        read_chat_file(tmp_path / "nope.jsonl", SHANGHAI)


def test_a_file_over_the_cap_is_refused_without_reading_it(tmp_path):
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as file:
        file.truncate(2 * 1024**3)  # sparse: 2 GB on paper, nothing on disk
    with pytest.raises(ChatImportError, match="huge.jsonl: the file is over 64 MB"):
        read_chat_file(huge, SHANGHAI)


def test_a_binary_file_is_refused(tmp_path):
    binary = tmp_path / "chat.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ChatImportError, match="is not UTF-8 text"):
        read_chat_file(binary, SHANGHAI)


def test_parse_chat_tells_formats_apart():
    assert parse_chat(json.dumps({"mes": "hi", "is_user": True}), SHANGHAI).messages[0].role == "user"
    with pytest.raises(ChatImportError):
        parse_chat("not json at all", SHANGHAI)
