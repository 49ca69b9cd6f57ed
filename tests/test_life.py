"""Companion life composed from the settings: which endpoint gets which key, the fallback
wrapper, the model menu, the safety checkers, and forgetting."""

import pytest

from bot.life import build_life, with_fallback
from bot.settings import Settings, SettingsError, load_settings
from memory.fallback import FallbackClient
from memory.model_client import ModelClient
from memory.moderation import ModerationEndpoint, Policy, WordList


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


def settings(**values) -> Settings:
    return Settings(**{"openai_base_url": "http://127.0.0.1:1/v1", "openai_api_key": "main-key",
                       "model": "fake-model", "context_tokens": 32_768, **values})


def test_the_main_key_only_goes_to_the_main_endpoint():
    s = settings()
    assert s.endpoint(None, None) == ("http://127.0.0.1:1/v1", "main-key")
    assert s.endpoint("http://127.0.0.1:1/v1/", None) == ("http://127.0.0.1:1/v1/", "main-key")
    assert s.endpoint("http://127.0.0.1:2/v1", None) == ("http://127.0.0.1:2/v1", None)
    with_key = settings(audio_api_key="audio-key")
    assert with_key.endpoint("http://127.0.0.1:2/v1", with_key.audio_api_key) == ("http://127.0.0.1:2/v1", "audio-key")
    assert with_key.endpoint(None, with_key.audio_api_key) == ("http://127.0.0.1:1/v1", "audio-key")


async def test_the_fallback_wraps_the_client_only_when_set():
    client = ModelClient(base_url="http://127.0.0.1:1/v1", api_key="k")
    assert with_fallback(settings(), client) is client
    wrapped = with_fallback(settings(fallback_model="cheap-model", fallback_cooldown_seconds=5), client)
    assert isinstance(wrapped, FallbackClient) and wrapped.fallback_model == "cheap-model"
    assert wrapped.fallback.base_url == "http://127.0.0.1:1/v1" and wrapped.cooldown_seconds == 5
    await wrapped.close()


async def test_life_from_settings(store, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("badword\n", encoding="utf-8")
    life = build_life(settings(models=["small=8192", "fake-model=1024"], moderation_words_file=words,
                               moderation_words=["extra"], moderation_model="omni-moderation-latest",
                               moderation_output="log", stt_model="whisper-1"), store)
    try:
        assert [(o.name, o.window) for o in life.menu.options] == [("fake-model", 32_768), ("small", 8192)]
        assert [type(c) for c in life.safety.checkers] == [WordList, ModerationEndpoint]
        assert life.safety.checkers[0].words == ["badword", "extra"]
        assert life.safety.policies == {"input": Policy.REFUSE, "output": Policy.LOG}
        assert life.audio.listens and not life.audio.speaks
        assert life.checkins is None  # until attached to an engine
    finally:
        await life.close()
    quiet = build_life(settings(), store)
    assert quiet.audio is None and quiet.safety.checkers == [] and not quiet.menu.has_choice


def test_life_settings_errors_name_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_MODERATION_WORDS_FILE", str(tmp_path / "missing.txt"))
    with pytest.raises(SettingsError, match="COMPANION_MODERATION_WORDS_FILE: there is no file"):
        load_settings()
    monkeypatch.delenv("COMPANION_MODERATION_WORDS_FILE")
    monkeypatch.setenv("COMPANION_MODERATION_INPUT", "block")
    with pytest.raises(SettingsError, match="COMPANION_MODERATION_INPUT"):
        load_settings()
    monkeypatch.delenv("COMPANION_MODERATION_INPUT")
    monkeypatch.setenv("COMPANION_MODELS", "small=8192, qwen2.5:7b, deepseek/deepseek-chat=65536")
    assert load_settings().model_options() == [("small", 8192), ("qwen2.5:7b", 131_072),
                                               ("deepseek/deepseek-chat", 65_536)]
    monkeypatch.setenv("COMPANION_MODELS", "small=abc")
    with pytest.raises(SettingsError, match="COMPANION_MODELS: 'small=abc' is not name or name=window"):
        load_settings()
    monkeypatch.delenv("COMPANION_MODELS")
    monkeypatch.setenv("COMPANION_CHECKIN_QUIET", "noon")
    with pytest.raises(SettingsError, match="COMPANION_CHECKIN_QUIET"):
        load_settings()
