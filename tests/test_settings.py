"""Settings from the environment and .env, with one clear line per problem."""

import pytest

from bot.settings import SAFE_DEFAULT_WINDOW, SettingsError, is_local_url, known_window, load_settings


def test_defaults_and_derived_budgets(monkeypatch):
    monkeypatch.setenv("COMPANION_MODEL", "kimi-k2-0905-preview")
    settings = load_settings()
    assert settings.window == 262_144
    assert settings.reply_reserve == 4096
    assert settings.tail_budget == 26_214
    assert str(settings.db) == "data/companion.db"


def test_explicit_window_and_reply_tokens(monkeypatch):
    monkeypatch.setenv("COMPANION_CONTEXT_TOKENS", "8192")
    settings = load_settings()
    assert (settings.window, settings.reply_reserve, settings.tail_budget) == (8192, 2048, 819)
    monkeypatch.setenv("COMPANION_REPLY_TOKENS", "512")
    assert load_settings().reply_reserve == 512


@pytest.mark.parametrize("model,window", [
    ("moonshot-v1-128k", 131_072), ("moonshot-v1-8k", 8192), ("kimi-k2-turbo-preview", 262_144),
    ("deepseek-chat", 131_072), ("deepseek/deepseek-chat", 131_072), ("qwen-plus", 131_072),
    ("qwen-long", 10_000_000), ("gpt-4o-mini", 128_000), ("openai/gpt-4.1", 1_047_576),
    ("llama3.1:8b", SAFE_DEFAULT_WINDOW),
])
def test_known_model_windows(model, window):
    assert known_window(model) == window


def test_lists_are_comma_separated(monkeypatch):
    monkeypatch.setenv("COMPANION_ADMINS", "1001, 1002")
    monkeypatch.setenv("COMPANION_ALLOWED_USERS", "7")
    settings = load_settings()
    assert settings.admins == [1001, 1002] and settings.allowed_users == [7]


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("COMPANION_MODEL=deepseek-chat\nOPENAI_API_KEY=sk-from-dotenv\n")
    settings = load_settings()
    assert settings.model == "deepseek-chat"
    assert settings.api_key() == "sk-from-dotenv"
    assert "sk-from-dotenv" not in repr(settings)


@pytest.mark.parametrize("name,value,fragment", [
    ("COMPANION_CONTEXT_TOKENS", "lots", "COMPANION_CONTEXT_TOKENS: Input should be a valid integer"),
    ("COMPANION_ADMINS", "1001,bob", "COMPANION_ADMINS"),
    ("COMPANION_TIMEZONE", "Mars/Base", "unknown time zone 'Mars/Base'"),
    ("COMPANION_REPLY_TOKENS", "100000", "COMPANION_REPLY_TOKENS (100000) must be under half"),
])
def test_invalid_settings_give_one_line_naming_the_variable(monkeypatch, name, value, fragment):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert fragment in message and "\n" not in message


def test_key_is_required_unless_the_endpoint_is_local(monkeypatch):
    with pytest.raises(SettingsError, match="OPENAI_API_KEY is not set"):
        load_settings().require_model_access()
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.moonshot.cn/v1")
    with pytest.raises(SettingsError, match="api.moonshot.cn"):
        load_settings().require_model_access()
    for local in ("http://localhost:11434/v1", "http://127.0.0.1:8080/v1", "http://[::1]:8000/v1"):
        monkeypatch.setenv("OPENAI_BASE_URL", local)
        load_settings().require_model_access()
    assert not is_local_url("http://10.0.0.5/v1")


def test_secret_values_never_appear_in_errors(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    monkeypatch.setenv("COMPANION_CONTEXT_TOKENS", "x")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "sk-secret-value" not in str(caught.value)


def test_memory_settings_and_a_separate_embeddings_endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-chat")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.deepseek.com/v1")
    settings = load_settings()
    assert (settings.compact_at, settings.compact_to, settings.facts_every) == (0.8, 0.5, 4)
    assert settings.embedding_model is None
    assert settings.embedding_endpoint() == ("https://api.deepseek.com/v1", "sk-chat")
    monkeypatch.setenv("COMPANION_EMBEDDING_MODEL", "bge-m3")
    monkeypatch.setenv("COMPANION_EMBEDDING_BASE_URL", "http://127.0.0.1:11434/v1")
    settings = load_settings()
    assert settings.embedding_model == "bge-m3"
    assert settings.embedding_endpoint() == ("http://127.0.0.1:11434/v1", None)  # never the chat key
    monkeypatch.setenv("COMPANION_COMPACT_TO", "0.9")
    with pytest.raises(SettingsError, match="COMPANION_COMPACT_TO: must be below COMPANION_COMPACT_AT"):
        load_settings()


def test_every_setting_is_documented_in_readme_and_env_example():
    from pathlib import Path

    from bot.settings import Settings

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    example = (root / ".env.example").read_text(encoding="utf-8")
    names = [field.validation_alias for field in Settings.model_fields.values()]
    assert [name for name in names if name not in readme] == []
    assert [name for name in names if name not in example] == []


def test_mini_app_settings(monkeypatch):
    settings = load_settings()
    assert not settings.web_enabled and settings.web_auth_max_age_hours == 24
    monkeypatch.setenv("COMPANION_WEB_URL", "https://bot.example.org/app")
    settings = load_settings()
    assert settings.web_enabled and settings.web_listen_port == 8081 and settings.web_host == "127.0.0.1"
    monkeypatch.setenv("COMPANION_WEB_PORT", "9000")
    assert load_settings().web_listen_port == 9000
    monkeypatch.setenv("COMPANION_WEB_URL", "http://bot.example.org/app")
    with pytest.raises(SettingsError, match="COMPANION_WEB_URL.*https"):
        load_settings()
    monkeypatch.setenv("COMPANION_WEB_URL", "")
    monkeypatch.setenv("COMPANION_WEB_PORT", "")
    assert not load_settings().web_enabled


def test_a_postgresql_url_is_checked_and_never_shown_with_its_password(monkeypatch):
    assert load_settings().database_url is None and load_settings().database_label.endswith("companion.db")
    monkeypatch.setenv("COMPANION_DATABASE_URL", "  ")  # blank: the SQLite file, as unset
    assert load_settings().database_url is None
    monkeypatch.setenv("COMPANION_DATABASE_URL", "postgresql://bot:hunter2@db.internal:5432/companion")
    settings = load_settings()
    assert settings.database_label == "postgresql://bot@db.internal:5432/companion"
    assert "hunter2" not in repr(settings) and "hunter2" in settings.secrets()  # the redactor hides it alone too
    for wrong in ("mysql://bot@db/companion", "data/companion.db", "postgresql://"):
        monkeypatch.setenv("COMPANION_DATABASE_URL", wrong)
        with pytest.raises(SettingsError) as caught:
            load_settings()
        message = str(caught.value)
        assert message.startswith("COMPANION_DATABASE_URL") and "postgresql://user:password@host" in message
        assert "\n" not in message
