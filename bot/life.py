"""Companion life from the settings: the model menu and router, the fallback endpoint,
the audio endpoint, the safety hook, and check-ins (built after the engine, which
writes them). Parts of the composition root (bot/services.py), which calls these in
order; the pieces themselves live in memory/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from bot.settings import Settings
from memory import life_schema
from memory.audio import AudioClient
from memory.checkins import Checkins, parse_quiet
from memory.engine import Engine
from memory.fallback import FallbackClient
from memory.model_client import ModelClient
from memory.moderation import Checker, ModerationEndpoint, Policy, SafetyGate, WordList
from memory.routing import ModelMenu, ModelOption, ModelRouter
from memory.store import Store
from memory.user_choices import UserChoices


@dataclass
class Life:
    choices: UserChoices
    forget_user: Callable[[int], None]  # the forget cascade's step for the life tables
    menu: ModelMenu
    router: ModelRouter
    safety: SafetyGate
    audio: AudioClient | None = None
    checkins: Checkins | None = None  # built once the engine exists (build_checkins)

    async def close(self) -> None:
        await self.safety.close()
        if self.audio is not None:
            await self.audio.close()


def build_life(settings: Settings, store: Store) -> Life:
    choices = UserChoices(store)
    menu = ModelMenu(ModelOption(settings.model, settings.window),
                     [ModelOption(name, window) for name, window in settings.model_options()])
    return Life(choices, life_schema.forget_step(store), menu, ModelRouter(menu, choices), build_safety(settings, store),
                audio=build_audio(settings))


def build_checkins(settings: Settings, engine: Engine) -> Checkins | None:
    """Check-ins, when the operator has them on; they write through the engine."""
    if not settings.checkins:
        return None
    return Checkins(engine, default_quiet=parse_quiet(settings.checkin_quiet),
                    min_every=timedelta(hours=settings.checkin_min_hours),
                    unanswered_limit=settings.checkin_unanswered)


def with_fallback(settings: Settings, client: ModelClient) -> ModelClient | FallbackClient:
    """The model client, backed by the fallback endpoint when one is set."""
    if not settings.fallback_enabled:
        return client
    base_url, api_key = settings.endpoint(settings.fallback_base_url, settings.fallback_api_key)
    fallback = ModelClient(base_url=base_url, api_key=api_key, deadline_seconds=settings.model_deadline_seconds,
                           stall_seconds=settings.stream_stall_seconds, send_cache_key=settings.prompt_cache_key)
    return FallbackClient(client, fallback, fallback_model=settings.fallback_model,
                          cooldown_seconds=settings.fallback_cooldown_seconds)


def build_audio(settings: Settings) -> AudioClient | None:
    if not settings.stt_model and not settings.tts_model:
        return None
    base_url, api_key = settings.endpoint(settings.audio_base_url, settings.audio_api_key)
    return AudioClient(base_url=base_url, api_key=api_key, transcription_model=settings.stt_model,
                       speech_model=settings.tts_model, voice=settings.tts_voice, language=settings.stt_language)


def build_safety(settings: Settings, store: Store) -> SafetyGate:
    checkers: list[Checker] = []
    if settings.moderation_words_file is not None:
        checkers.append(WordList.from_file(settings.moderation_words_file, settings.moderation_words))
    elif settings.moderation_words:
        checkers.append(WordList(settings.moderation_words))
    if settings.moderation_model:
        base_url, api_key = settings.endpoint(settings.moderation_base_url, settings.moderation_api_key)
        checkers.append(ModerationEndpoint(base_url=base_url, api_key=api_key, model=settings.moderation_model))
    return SafetyGate(store, checkers, input_policy=Policy(settings.moderation_input),
                      output_policy=Policy(settings.moderation_output))
