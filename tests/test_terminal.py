"""`companion chat` as a new user tries it: every command, through the real CLI process,
against the fake model; the database file is read afterwards."""

import json

from memory.schema import open_store
from tests.test_cli import companion, model_env


def chat(fake, db_path, stdin, *, cwd=None, **extra):
    return companion(["chat", "--user", "ann"], env_extra=model_env(fake, db_path, **extra), stdin=stdin, cwd=cwd)


def rows(db_path, sql, params=()):
    store = open_store(db_path)
    try:
        return store.db.execute(sql, params).fetchall()
    finally:
        store.close()


def test_help_lists_every_command(fake_openai, db_path):
    result = chat(fake_openai, db_path, "/help\n")
    assert result.returncode == 0, result.stderr
    for command in ("/new", "/history", "/retry", "/prev", "/next", "/use", "/continue", "/undo", "/context",
                    "/search", "/memory add", "/memory edit", "/memory delete", "/persona", "/me", "/docs attach",
                    "/docs detach", "/asof", "/export", "/usage", "/tz", "/lang", "/forget", "/model", "/quit"):
        assert command in result.stdout, command


def test_a_fact_added_with_memory_add_is_in_the_next_request(fake_openai, db_path):
    fake_openai.enqueue("Noted!", "Jasmine, of course.")
    result = chat(fake_openai, db_path, "hello\n/memory add I love jasmine tea\n/memory\nwhat do I like?\n"
                  "/memory edit 1 I love oolong tea\n/memory\n/memory delete 1\n/memory\n/memory bogus\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Noted. I'll keep that in mind." in out
    assert "1. I love jasmine tea" in out and "1. I love oolong tea" in out
    assert "Memory 1 is corrected." in out and "Memory 1 is deleted" in out
    assert "I have no pinned memories about you yet" in out
    assert "Usage: /memory, /memory add TEXT" in out
    sent = json.dumps(fake_openai.chat_requests[-1].messages, ensure_ascii=False)
    assert "I love jasmine tea" in sent


def test_retry_then_prev_next_and_use_page_through_the_answers(fake_openai, db_path):
    fake_openai.enqueue("First answer.", "Second answer.")
    result = chat(fake_openai, db_path, "tell me a joke\n/retry\n/prev\n/use\n/next\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == ["First answer.", "Second answer.", "First answer."]
    assert "answer 2 of 2" in result.stderr and "answer 1 of 2" in result.stderr
    assert "This answer is now the one I remember." in result.stdout
    replies = rows(db_path, "SELECT content, status FROM messages WHERE role = 'assistant' ORDER BY id")
    assert replies == [("First answer.", "complete"), ("Second answer.", "hidden")]
    assert len(fake_openai.chat_requests) == 2


def test_retry_with_nothing_to_answer_and_continue_and_undo(fake_openai, db_path):
    fake_openai.enqueue("Once upon a time", "there was a cat.")
    result = chat(fake_openai, db_path, "/retry\n/continue\nstory please\n/continue\n/undo\n/undo\n/history\n")
    assert result.returncode == 0, result.stderr
    assert "There is nothing to answer again yet." in result.stderr
    assert "There is no reply to continue yet." in result.stderr
    assert "Once upon a time" in result.stdout and "there was a cat." in result.stdout
    assert "nothing to undo" in result.stdout.lower()
    assert "No messages yet." in result.stdout
    stored = rows(db_path, "SELECT role, status FROM messages ORDER BY id")
    assert stored == [("user", "hidden"), ("assistant", "hidden")]


def test_search_export_and_forget_with_its_confirmation(fake_openai, db_path, tmp_path):
    fake_openai.enqueue("Kyoto in spring is lovely.")
    folder = tmp_path / "out"
    folder.mkdir()
    result = chat(fake_openai, db_path, "I went to Kyoto\n/search Kyoto\n/search\n/export\n/forget\n/forget yes\n"
                  "/history\n", cwd=folder)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Found in our history:" in out and "Kyoto" in out and "Usage: /search" in out
    exported = sorted(p.name for p in folder.iterdir())
    assert len(exported) == 2 and exported[0].endswith(".json") and exported[1].endswith(".md")
    document = json.loads((folder / exported[0]).read_text())
    assert [m["content"] for m in document["messages"]] == ["I went to Kyoto", "Kyoto in spring is lovely."]
    assert "This conversation, 2 messages, is in" in out
    assert "Type /forget yes" in out and "Everything about you is deleted." in out
    assert rows(db_path, "SELECT count(*) FROM messages") == [(0,)]


def test_forget_needs_the_confirmation(fake_openai, db_path):
    fake_openai.enqueue("Hi.")
    result = chat(fake_openai, db_path, "hi\n/forget yes\n/forget\n/forget no\n")
    assert result.returncode == 0, result.stderr
    assert "Nothing was deleted." in result.stdout
    assert rows(db_path, "SELECT count(*) FROM messages") == [(2,)]


def test_persona_list_and_switch_by_number_or_name(fake_openai, db_path):
    fake_openai.enqueue("Hello from the assistant.", "Hello from Mara.")
    result = chat(fake_openai, db_path, "hi\n/persona\n/persona mara\nhi mara\n/persona mara\n/persona 1\n"
                  "/persona nobody\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Now talking to: Assistant" in out and "1. Assistant ●" in out
    assert "3. Captain Mara Vale" in out
    assert "Now talking to Captain Mara Vale." in out and "You are already talking to Captain Mara Vale." in out
    assert "Now talking to Assistant again; we continue where we left off." in out
    assert "There is no character “nobody”" in out
    conversations = rows(db_path, "SELECT persona_id FROM conversations ORDER BY id")
    assert [c[0] for c in conversations] == ["assistant", "mara"]
    mara = rows(db_path, "SELECT m.content FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                         "WHERE c.persona_id = 'mara' AND m.role = 'user'")
    assert mara == [("hi mara",)]


def test_me_tz_lang_and_usage(fake_openai, db_path):
    fake_openai.enqueue("Hi Ann.")
    result = chat(fake_openai, db_path, "hi\n/me Ann — a night-shift nurse\n/tz +8\n/tz\n/tz UTC+8\n"
                  "/tz Asia/Shanghai\n/tz Mars/Olympus\n/usage\n/lang zh\n/tz\n/lang bogus\n/lang en\n"
                  "/checkin\n/voice on\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "I'll call you Ann." in out and "night-shift nurse" in out
    assert "Time zone set to UTC+08:00." in out and "Your time zone is UTC+08:00." in out
    assert "Etc/GMT" not in out
    assert "Time zone set to Asia/Shanghai (UTC+08:00)." in out
    assert "I don't know the time zone “Mars/Olympus”" in out
    assert "Today:" in out and "1 requests" in out
    assert "菜单已切换为中文。" in out and "你的时区是 Asia/Shanghai (UTC+08:00)" in out
    assert "用法：/lang en" in out and "Menus are now in English." in out
    assert out.count("works in Telegram only") == 2
    user = rows(db_path, "SELECT me_name, timezone, language_override FROM users")
    assert user == [("Ann", "Asia/Shanghai", "en")]


def test_docs_attach_detach_and_asof(fake_openai, db_path, tmp_path):
    novel = tmp_path / "novel.txt"
    novel.write_text("\n\n".join(f"Chapter {n}\n\n" + f"Story of chapter {n}. " * 40 for n in range(1, 4)))
    ingested = companion(["ingest", str(novel), "--user", "ann"], env_extra=model_env(fake_openai, db_path))
    assert ingested.returncode == 0, ingested.stderr
    fake_openai.enqueue("I see the novel.")
    result = chat(fake_openai, db_path, f"/docs\n/asof 2\n/docs attach 1\n/docs\n/asof 2\n/asof\nwhat happens?\n"
                  f"/docs detach 1\n/docs attach 9\n/asof off\n/docs add {tmp_path / 'missing.txt'}\n"
                  f"/docs add {novel}\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "missing.txt" in result.stderr  # one line saying the file is not there
    assert out.count("Read “novel”") == 1 and "1. [x] novel" in out
    assert "1. [ ] novel" in out and "1. [x] novel" in out
    assert "Attached “novel”." in out and "Detached “novel”." in out
    assert "up to chapter 2" in out
    assert "Usage: /docs" in out
    sent = json.dumps(fake_openai.chat_requests[-1].messages)
    assert "Story of chapter 2." in sent and "Story of chapter 3." not in sent


def test_budget_applies_in_the_terminal(fake_openai, db_path):
    fake_openai.enqueue("One.", "Two.")
    result = chat(fake_openai, db_path, "first\nsecond\n", COMPANION_DAILY_TOKENS="5")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["One."]
    assert "You have used today's token budget (5 tokens)." in result.stderr
    assert len(fake_openai.chat_requests) == 1


def test_screening_applies_in_the_terminal(fake_openai, db_path):
    fake_openai.enqueue("A fine answer.", "Something forbidden here.")
    result = chat(fake_openai, db_path, "say something forbidden\nhello\nagain\n",
                  COMPANION_MODERATION_WORDS="forbidden")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["A fine answer."]  # the refused reply was never shown
    assert len(fake_openai.chat_requests) == 2  # the refused input never reached the model
    stored = rows(db_path, "SELECT role, content, status FROM messages ORDER BY id")
    assert ("user", "say something forbidden", "complete") not in stored
    assert stored[-1] == ("assistant", "Something forbidden here.", "hidden")


def test_a_message_longer_than_the_window_says_what_was_cut(fake_openai, db_path):
    fake_openai.enqueue("That was long.")
    long_message = " ".join(f"word{n}" for n in range(6000))
    result = chat(fake_openai, db_path, long_message + "\n", COMPANION_CONTEXT_TOKENS="4096")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["That was long."]
    assert "I read the first" in result.stderr and f"of its {len(long_message):,} characters" in result.stderr
    assert "send it as a document" in result.stderr
    stored = rows(db_path, "SELECT content FROM messages WHERE role = 'user'")
    assert stored == [(long_message,)]


def test_model_menu_and_choice(fake_openai, db_path):
    fake_openai.enqueue("Small here.")
    result = chat(fake_openai, db_path, "/model\n/model 2\nhi\n/model nonesuch\n/model default\n",
                  COMPANION_MODELS="fake-model=32768,small-model=4096")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "The model that answers you now: fake-model." in out
    assert "1. fake-model ● · 32k" in out and "2. small-model · 4k" in out
    assert "From now on small-model answers you" in out and "From now on fake-model answers you" in out
    assert "nonesuch" in out
    assert fake_openai.chat_requests[-1].body["model"] == "small-model"
    only_one = chat(fake_openai, db_path, "/model\n")
    assert "fake-model" in only_one.stdout
