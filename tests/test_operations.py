"""`companion backup` and `companion doctor` as an operator runs them."""

import sqlite3
from pathlib import Path

from memory.schema import open_store
from memory.records import Owner
from tests.fakes.bad_endpoints import closed_port
from tests.fakes.openai_server import Reply
from tests.test_cli import companion, model_env

REPOSITORY = Path(__file__).resolve().parents[1]


def test_backup_is_a_consistent_copy_and_refuses_to_overwrite(tmp_path, db_path):
    store = open_store(db_path)
    conversation = store.conversations.start_conversation(Owner.user(store.directory.ensure_user("local", "a").id), "assistant")
    for i in range(100):
        store.conversations.add_message(conversation.id, "user", f"message {i}")
    target = tmp_path / "backups" / "copy.db"
    result = companion(["backup", str(target)], env_extra={"COMPANION_DB": str(db_path)})
    store.conversations.add_message(conversation.id, "user", "written while the copy exists")
    assert result.returncode == 0, result.stderr
    assert "integrity ok" in result.stdout
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT count(*) FROM messages").fetchone()[0] == 100
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = companion(["backup", str(target)], env_extra={"COMPANION_DB": str(db_path)})
    assert again.returncode == 1 and "exists" in again.stderr
    missing = companion(["backup", str(tmp_path / "x.db")], env_extra={"COMPANION_DB": str(tmp_path / "none.db")})
    assert missing.returncode == 1 and "no database" in missing.stderr
    store.close()


def test_doctor_reports_each_check(fake_openai, telegram, db_path):
    env = model_env(fake_openai, db_path, TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_BASE=telegram.base_url,
                    COMPANION_ADMINS="1001")
    result = companion(["doctor"], env_extra=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["settings", "tokenizer", "database", "personas", "model",
                                                   "telegram"]
    assert all(line.startswith("ok") for line in lines)
    assert fake_openai.chat_requests[-1].body["max_tokens"] == 1
    assert "@companion_test_bot" in result.stdout


def test_doctor_fails_on_a_bad_endpoint_and_missing_token(db_path):
    """Nothing listening: said as unreachable, with the address and the cause. (How soon is
    asserted in-process, test_model_client.py: a subprocess's wall time here is mostly the
    interpreter starting on a loaded machine.)"""
    url = f"http://127.0.0.1:{closed_port()}/v1"
    env = {"OPENAI_BASE_URL": url, "COMPANION_DB": str(db_path)}
    result = companion(["doctor"], env_extra=env)
    assert result.returncode == 1
    assert "FAIL model" in result.stdout and "FAIL telegram" in result.stdout
    model = next(line for line in result.stdout.splitlines() if "model" in line.split()[1:2])
    assert model.startswith("FAIL model") and "unreachable" in model and url in model and "refused" in model


def test_doctor_on_a_copied_env_example_reports_each_placeholder_and_creates_nothing(tmp_path):
    (tmp_path / ".env").write_text((REPOSITORY / ".env.example").read_text())
    result = companion(["doctor"], cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL settings   OPENAI_API_KEY is still the placeholder" in out
    assert "TELEGRAM_BOT_TOKEN is still the sample of .env.example" in out and "@BotFather" in out
    assert "COMPANION_ADMINS is empty and COMPANION_OPEN is false" in out and "@userinfobot" in out
    assert "does not exist yet" in out
    assert "not tried: OPENAI_API_KEY is a placeholder" in out  # no request to any endpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]  # no data/companion.db


def test_doctor_creates_no_database(fake_openai, tmp_path):
    db_path = tmp_path / "data" / "companion.db"
    result = companion(["doctor"], env_extra=model_env(fake_openai, db_path), cwd=tmp_path)
    assert "ok   database   " in result.stdout and "does not exist yet" in result.stdout
    assert not db_path.exists() and not db_path.parent.exists()


def test_doctor_names_openai_base_url_for_a_wrong_path_and_companion_model_for_an_unknown_model(fake_openai,
                                                                                               db_path):
    wrong_path = companion(["doctor"], env_extra=model_env(fake_openai, db_path, OPENAI_BASE_URL=fake_openai.base_url))
    line = next(line for line in wrong_path.stdout.splitlines() if line.startswith("FAIL model"))
    assert "OPENAI_BASE_URL" in line and "/v1" in line and "COMPANION_MODEL" not in line
    fake_openai.enqueue(Reply.error(404, "The model `fake-model` does not exist", "model_not_found"))
    unknown = companion(["doctor"], env_extra=model_env(fake_openai, db_path))
    line = next(line for line in unknown.stdout.splitlines() if line.startswith("FAIL model"))
    assert "COMPANION_MODEL" in line and "OPENAI_BASE_URL" not in line
