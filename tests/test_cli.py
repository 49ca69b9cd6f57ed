"""The `companion` command as a user runs it: a real process, the fake model over HTTP."""

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from memory.records import Owner
from memory.schema import open_postgres_store, open_store
from tests.bot_process import COMMAND, clean_environment
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.conftest import assert_each_line_stored_once_and_each_turn_answered_once, said, said_all


def companion(args, *, env_extra=None, stdin="", cwd=None, timeout=60):
    env = {**clean_environment(), **(env_extra or {})}
    return subprocess.run(COMMAND + args, input=stdin, capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)


def model_env(fake, db_path, **extra):
    return {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-test", "COMPANION_DB": str(db_path),
            "COMPANION_MODEL": "fake-model", "COMPANION_CONTEXT_TOKENS": "32768", **extra}


def test_piped_chat_answers_every_line_and_exits(fake_openai, db_path):
    fake_openai.enqueue("Hello! Nice to meet you.", "你好！我记得你叫小明。", "Goodbye.")
    result = companion(["chat", "--user", "xiaoming"], env_extra=model_env(fake_openai, db_path),
                       stdin="Hi, I'm Xiaoming\n你还记得我叫什么吗？\nbye\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Hello! Nice to meet you.", "你好！我记得你叫小明。", "Goodbye."]
    assert len(fake_openai.chat_requests) == 3
    last = fake_openai.chat_requests[-1].messages
    assert said_all(last[1:5]) == [
        "Hi, I'm Xiaoming", "Hello! Nice to meet you.", "你还记得我叫什么吗？", "你好！我记得你叫小明。"]
    store = open_store(db_path)
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 6
    store.close()


def test_chat_continues_the_same_conversation_across_runs(fake_openai, db_path):
    env = model_env(fake_openai, db_path)
    companion(["chat", "--user", "ann"], env_extra=env, stdin="first run\n")
    companion(["chat", "--user", "ann"], env_extra=env, stdin="second run\n")
    contents = [m["content"] for m in fake_openai.chat_requests[-1].messages]
    assert said(contents[1]) == "first run" and said(contents[-1]) == "second run"


def test_chat_slash_commands(fake_openai, db_path):
    fake_openai.enqueue("one", "two")
    result = companion(["chat", "--user", "bo"], env_extra=model_env(fake_openai, db_path),
                       stdin="hello\n/history\n/context\n/new\nfresh start\n/help\n/bogus\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "bo: hello" in out and "Assistant: one" in out
    assert "history (2 msgs)" in out and "of the window" in out
    assert "Started a new conversation" in out
    assert "Unknown command /bogus" in out
    assert [m["content"] for m in fake_openai.chat_requests[-1].messages][1:][0].endswith("fresh start")


def test_failed_reply_gives_a_short_error_and_exit_code_1(fake_openai, db_path):
    fake_openai.default_reply = lambda body: Reply.error(401, "bad key")
    result = companion(["chat", "--user", "cy"], env_extra=model_env(fake_openai, db_path), stdin="hi\n")
    assert result.returncode == 1
    assert result.stderr.strip().endswith("The operator should check OPENAI_API_KEY.")
    assert "Traceback" not in result.stderr


def test_missing_key_with_remote_endpoint_is_a_settings_error(db_path):
    result = companion(["chat"], env_extra={"OPENAI_BASE_URL": "https://api.deepseek.com/v1",
                                             "COMPANION_DB": str(db_path)}, stdin="hi\n")
    assert result.returncode == 2
    assert "OPENAI_API_KEY is not set" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not db_path.exists()  # checked before anything else happens


def test_local_endpoint_needs_no_key(fake_openai, db_path):
    env = model_env(fake_openai, db_path)
    del env["OPENAI_API_KEY"]
    result = companion(["chat", "--user", "dee"], env_extra=env, stdin="hi\n")
    assert result.returncode == 0, result.stderr


def test_invalid_setting_exits_2_with_one_line(db_path):
    result = companion(["context", "--user", "x"], env_extra={"COMPANION_CONTEXT_TOKENS": "huge"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("companion: COMPANION_CONTEXT_TOKENS")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_persona_is_a_usage_error(db_path):
    result = companion(["context", "--user", "x", "--persona", "nobody"],
                       env_extra={"COMPANION_DB": str(db_path)})
    assert result.returncode == 2
    assert "no persona 'nobody'" in result.stderr


def test_context_json_shows_the_exact_next_request(fake_openai, db_path):
    env = model_env(fake_openai, db_path)
    companion(["chat", "--user", "eli"], env_extra=env, stdin="I love tea\n")
    result = companion(["context", "--user", "eli", "--message", "what do I love?", "--json"], env_extra=env)
    assert result.returncode == 0, result.stderr
    request = json.loads(result.stdout)
    assert request["model"] == "fake-model" and request["window"] == 32768
    sections = [m["section"] for m in request["messages"]]
    assert sections == ["system", "history", "history", "user"]
    last = request["messages"][-1]
    assert [p["section"] for p in last["parts"]] == ["user", "time"]  # the preview has no stamp: time in the tail
    assert last["content"].startswith("what do I love?")
    assert said(request["messages"][1]["content"]) == "I love tea"
    assert request["total_tokens"] == 3 + sum(m["tokens"] + 4 for m in request["messages"])

    summary = companion(["context", "--user", "eli"], env_extra=env)
    assert summary.returncode == 0 and "% of the window" in summary.stdout


def test_context_for_an_unknown_telegram_user_is_refused(db_path):
    result = companion(["context", "--user", "tg:12345"], env_extra={"COMPANION_DB": str(db_path)})
    assert result.returncode == 1
    assert "no Telegram user 12345" in result.stderr


def test_chat_reads_bytes_that_are_not_utf8_as_replacement_characters(fake_openai, db_path):
    fake_openai.enqueue("one", "two")
    env = {**clean_environment(), **model_env(fake_openai, db_path), "LC_ALL": "C"}  # a C locale reads stdin with surrogateescape
    result = subprocess.run(COMMAND + ["chat", "--user", "ann"], input=b"caf\xe9 \xff\xfe\nnext line\n",
                            capture_output=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    store = open_store(db_path)
    rows = store.db.execute("SELECT content FROM messages WHERE role = 'user' ORDER BY id").fetchall()
    store.close()
    assert [row[0] for row in rows] == ["caf\ufffd \ufffd\ufffd", "next line"]


def test_chat_says_when_the_fallback_model_answered(fake_openai, db_path):
    fake_openai.default_reply = lambda body: Reply.error(503, "overloaded")
    with FakeOpenAI() as backup:
        backup.enqueue("Backup here.")
        result = companion(["chat", "--user", "ann"], stdin="hello\n", env_extra=model_env(
            fake_openai, db_path, COMPANION_FALLBACK_BASE_URL=backup.url, COMPANION_FALLBACK_MODEL="backup-model",
            COMPANION_MODEL_DEADLINE="1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Backup here."]
    assert "answered by backup-model" in result.stderr


def test_run_with_a_copied_env_example_stops_at_once_with_one_line_per_setting(tmp_path):
    example = Path(__file__).resolve().parents[1] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    result = companion(["run"], cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("companion: OPENAI_API_KEY is still the placeholder of .env.example")
    assert lines[1].startswith("companion: TELEGRAM_BOT_TOKEN is still the sample") and "@BotFather" in lines[1]
    assert lines[2].startswith("companion: COMPANION_ADMINS is empty and COMPANION_OPEN is false")
    assert "@userinfobot" in lines[2] and "COMPANION_OPEN=true" in lines[2]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]  # nothing created, nothing reached


def test_run_with_real_looking_values_but_no_admin_names_the_admin_setting(tmp_path):
    result = companion(["run"], cwd=tmp_path, timeout=30, env_extra={
        "OPENAI_API_KEY": "sk-live-0123456789abcdef", "TELEGRAM_BOT_TOKEN": "123456789:AAF0123456789abcdefghijklmnopqrstuv"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "COMPANION_ADMINS is empty" in result.stderr


def test_an_imported_chat_is_recalled_at_a_small_window_and_context_reports_it(fake_openai, db_path, tmp_path):
    from tests.test_recall import sillytavern_chat

    env = model_env(fake_openai, db_path, COMPANION_CONTEXT_TOKENS="4000", COMPANION_TIMEZONE="UTC")
    chat = sillytavern_chat(tmp_path / "maya.jsonl")
    result = companion(["import", str(chat), "--user", "maya"], env_extra=env)
    assert result.returncode == 0, result.stderr
    question = "What kind of class did Maya sign up for?"
    result = companion(["context", "--user", "maya", "--message", question, "--json"], env_extra=env)
    assert result.returncode == 0, result.stderr
    request = json.loads(result.stdout)
    last = request["messages"][-1]
    assert "pottery class" in last["content"]  # said 130 days before the window's first turn
    assert not any("pottery" in m["content"] for m in request["messages"][:-1])
    recall = next(p for p in last["parts"] if p["section"] == "recall")
    assert request["recalled_tokens"] == recall["tokens"] > 0
    assert request["recalled_messages"] == len(recall["source_ids"])
    assert request["total_tokens"] <= 4000 - 1000  # the window less the reply reserve
    summary = companion(["context", "--user", "maya", "--message", question], env_extra=env)
    assert f"recalled: {request['recalled_messages']} old messages, {request['recalled_tokens']:,} tokens" in summary.stdout


def test_an_unreachable_postgresql_server_exits_2_with_one_line_and_creates_nothing(tmp_path):
    result = companion(["context", "--user", "x"], cwd=tmp_path,
                       env_extra={"COMPANION_DATABASE_URL": "postgresql://bot:hunter2@127.0.0.1:1/companion"})
    assert result.returncode == 2
    assert result.stderr.startswith("companion: cannot connect to PostgreSQL") and "COMPANION_DATABASE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "hunter2" not in result.stderr
    assert list(tmp_path.iterdir()) == []



def test_chat_context_import_and_export_run_on_postgresql_and_leave_no_sqlite_file(fake_openai, postgres_url, tmp_path):
    from tests.test_recall import sillytavern_chat

    work, files = tmp_path / "work", tmp_path / "files"
    work.mkdir()
    files.mkdir()
    env = model_env(fake_openai, "unused", COMPANION_CONTEXT_TOKENS="4000", COMPANION_TIMEZONE="UTC",
                    COMPANION_DATABASE_URL=postgres_url)
    del env["COMPANION_DB"]
    fake_openai.enqueue("Hello Wukong.", "你叫悟空。")
    result = companion(["chat", "--user", "wukong"], env_extra=env, cwd=work, stdin="Hi, I'm Wukong\n我叫什么？\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Hello Wukong.", "你叫悟空。"]
    result = companion(["context", "--user", "wukong", "--json"], env_extra=env, cwd=work)
    assert result.returncode == 0, result.stderr
    assert said_all(json.loads(result.stdout)["messages"][1:5]) == ["Hi, I'm Wukong", "Hello Wukong.", "我叫什么？", "你叫悟空。"]

    chat = sillytavern_chat(files / "maya.jsonl")
    result = companion(["import", str(chat), "--user", "maya"], env_extra=env, cwd=work)
    assert result.returncode == 0, result.stderr
    result = companion(["context", "--user", "maya", "--message", "What kind of class did Maya sign up for?", "--json"],
                       env_extra=env, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "pottery class" in json.loads(result.stdout)["messages"][-1]["content"]  # recalled from beyond the window

    result = companion(["personas", "export", "mara", "--format", "json", "--out", str(files / "card.json")],
                       env_extra=env, cwd=work)
    assert result.returncode == 0, result.stderr
    assert json.loads((files / "card.json").read_text())["spec"] == "chara_card_v2"
    assert list(work.iterdir()) == []  # no SQLite file, no folder: everything went to PostgreSQL


def test_migrate_db_copies_to_postgresql_and_back_printing_the_counts_and_refuses_a_second_time(tmp_path,
                                                                                               postgres_url):
    source, back = tmp_path / "companion.db", tmp_path / "back.db"
    store = open_store(source)
    user = store.directory.ensure_user("local", "ann")
    conversation = store.conversations.start_conversation(Owner.user(user.id), "default")
    first = store.conversations.add_message(conversation.id, "user", "hello there", user_id=user.id)
    store.conversations.add_message(conversation.id, "assistant", "hi ann", reply_to=first.id)
    store.close()

    there = companion(["migrate-db", str(source), postgres_url])
    assert there.returncode == 0, there.stderr
    lines = there.stdout.splitlines()
    assert lines[0] == f"copied {source} to {postgres_url}"
    assert lines[1].split() == ["table", "rows", "copied", "rows", "checked"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if not line.startswith("full-text")}
    assert rows["users"] == ["1", "1"] and rows["conversations"] == ["1", "1"] and rows["messages"] == ["2", "2"]
    assert rows["total"] == ["4", "4"]
    assert "full-text index of messages rebuilt: 2 rows" in lines

    again = companion(["migrate-db", str(source), postgres_url])
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.strip().splitlines() == [
        f"companion: the destination {postgres_url} already holds data: conversations (1), messages (2), users (1); "
        "migrate-db copies into an empty database only"]

    missing = companion(["migrate-db", str(tmp_path / "nowhere.db"), str(back)])
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"companion: no SQLite database at {tmp_path / 'nowhere.db'}"]
    assert not back.exists() and not (tmp_path / "nowhere.db").exists()

    home = companion(["migrate-db", postgres_url, str(back)])
    assert home.returncode == 0, home.stderr
    assert home.stdout.splitlines()[2:] == lines[2:]
    store = open_store(back)
    assert [m.content for m in store.conversations.messages(conversation.id)] == ["hello there", "hi ann"]
    store.close()


def test_migrate_db_from_an_unreachable_server_is_one_line_without_the_password(tmp_path):
    result = companion(["migrate-db", "postgresql://bot:hunter2@127.0.0.1:1/companion", str(tmp_path / "new.db")])
    assert result.returncode == 2
    assert result.stderr.startswith("companion: cannot connect to PostgreSQL")
    assert len(result.stderr.strip().splitlines()) == 1 and "hunter2" not in result.stderr
    assert not (tmp_path / "new.db").exists()


# -- several `companion chat` processes on one database (memory/turn_leases.py) --------------
def backend_env(fake, request, db_path):
    """The model settings, and the database: the SQLite file, or a fresh PostgreSQL database."""
    env = model_env(fake, db_path)
    if request.param == "postgresql":
        env["COMPANION_DATABASE_URL"] = url = request.getfixturevalue("postgres_url")
        del env["COMPANION_DB"]
        return env, lambda: open_postgres_store(url)
    return env, lambda: open_store(db_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, fake_openai, db_path):
    return backend_env(fake_openai, request, db_path)


def chat_process(env, user):
    return subprocess.Popen(COMMAND + ["chat", "--user", user], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**clean_environment(), **env})


def the_conversation(store):
    (conversation_id,) = [row[0] for row in store.db.execute("SELECT id FROM conversations").fetchall()]
    return conversation_id


def test_two_chats_writing_one_conversation_at_once_store_every_line_once_and_answer_each_turn_once(
        fake_openai, backend):
    env, open_backend = backend
    assert companion(["chat", "--user", "ann"], env_extra=env, stdin="let us start\n").returncode == 0
    fake_openai.default_reply = lambda body: Reply("a reply that streams for a while", chunk_delay=0.04)
    lines = {name: [f"{name} line {i}" for i in range(5)] for name in ("first", "second")}
    processes = [chat_process(env, "ann") for _ in lines]
    for process, name in zip(processes, lines):
        process.stdin.write("".join(line + "\n" for line in lines[name]))
        process.stdin.close()
    for process in processes:
        assert process.wait(timeout=60) == 0, process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    store = open_backend()
    try:
        replies = assert_each_line_stored_once_and_each_turn_answered_once(
            store, the_conversation(store), ["let us start", *lines["first"], *lines["second"]])
    finally:
        store.close()
    assert replies == len(fake_openai.chat_requests)


def test_a_chat_killed_mid_reply_has_its_turn_taken_over_by_the_other(fake_openai, backend):
    env, open_backend = backend
    held = threading.Event()
    fake_openai.enqueue(Reply("never finished", wait_for=held), "Answering both.")
    killed = chat_process(env, "bo")
    killed.stdin.write("wait for me\n")
    killed.stdin.flush()
    try:
        deadline = time.monotonic() + 60
        while not fake_openai.chat_requests:  # its turn streams (it holds the lease)
            assert time.monotonic() < deadline and killed.poll() is None
            time.sleep(0.05)
        other = chat_process(env, "bo")
        other.stdin.write("after the kill\n")
        other.stdin.close()
        watcher = open_backend()
        try:
            while not watcher.inbox.pending_inputs():  # its line is stored: it waits for the lease
                assert time.monotonic() < deadline and other.poll() is None
                time.sleep(0.05)
        finally:
            watcher.close()
        time.sleep(1)
        assert len(fake_openai.chat_requests) == 1 and other.poll() is None
    finally:
        killed.kill()
        killed.wait()
        for stream in (killed.stdin, killed.stdout, killed.stderr):
            stream.close()
    try:
        assert other.wait(timeout=60) == 0, other.stderr.read()
        assert other.stdout.read().splitlines() == ["Answering both."]
    finally:
        held.set()
        other.stdout.close()
        other.stderr.close()
    assert said_all(fake_openai.chat_requests[1].messages[-2:]) == ["wait for me", "after the kill"]
    store = open_backend()
    try:
        assert assert_each_line_stored_once_and_each_turn_answered_once(
            store, the_conversation(store), ["wait for me", "after the kill"]) == 1
    finally:
        store.close()
