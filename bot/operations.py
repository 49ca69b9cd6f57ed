"""Operator tasks behind `companion backup` and `companion doctor` (the copy itself is
the storage's: `memory.store.backup_database`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from bot.settings import Settings, is_placeholder
from memory.postgres import PostgresUnavailable
from memory.store import backup_database


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


async def run_checks(settings: Settings) -> list[Check]:
    """Settings, database, personas, tokenizer, model endpoint, Telegram: each a line."""
    from bot.services import build_services
    from memory.tokens import load_encoding

    checks: list[Check] = []
    problems = settings.first_run_problems()  # what would stop `companion run`
    checks += [Check("settings", False, problem) for problem in problems]
    if not problems:
        checks.append(Check("settings", True, f"model {settings.model}, window {settings.window:,} tokens"))
    try:
        load_encoding()
        checks.append(Check("tokenizer", True, "o200k_base from the installed package, sha256 verified"))
    except Exception as exc:  # noqa: BLE001 - every failure is a finding
        checks.append(Check("tokenizer", False, str(exc)))
    # The doctor creates no SQLite file: without one, or without the PostgreSQL server, the
    # other checks run over a database in memory.
    in_memory = settings.model_copy(update={"db": Path(":memory:"), "database_url": None})
    exists: bool | None = settings.database_url is not None or Path(settings.db).exists()
    try:
        services = build_services(settings if exists else in_memory)
    except PostgresUnavailable as exc:
        checks.append(Check("database", False, settings.database_problem(exc)))
        services, exists = build_services(in_memory), None
    try:
        if exists:
            integrity = services.store.integrity()
            counts = services.store.counts()
            checks.append(Check("database", integrity == "ok",
                                f"{settings.database_label}: integrity {integrity}; {counts['users']} users, "
                                f"{counts['messages']} messages"))
        elif exists is False:
            checks.append(Check("database", True, f"{settings.db} does not exist yet; companion run creates it"))
        errors = services.personas.library.errors
        checks.append(Check("personas", not errors, "; ".join(errors) if errors else
                            f"{len(services.personas.all())} personas"))
        if is_placeholder(settings.api_key() or ""):
            checks.append(Check("model", False, "not tried: OPENAI_API_KEY is a placeholder"))
        else:
            checks.append(await _check_model(services, settings))
        token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
        if token and is_placeholder(token):
            checks.append(Check("telegram", False, "not tried: TELEGRAM_BOT_TOKEN is the sample of .env.example"))
        else:
            checks.append(await _check_telegram(settings))
    finally:
        await services.close()
    return checks


async def _check_model(services, settings: Settings) -> Check:
    """One tiny request. A failure is reported with its cause as the chat would tell it
    (nothing listening, a name that does not resolve, TLS, a wrong OPENAI_BASE_URL, an
    unknown COMPANION_MODEL, a refused key), naming the setting to fix."""
    from bot.texts import error_text
    from memory.model_client import ModelError

    try:
        completion = await asyncio.wait_for(services.client.stream_chat(
            model=settings.model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=1), 30)
        if completion.fallback_from:
            return Check("model", False, f"{settings.openai_base_url or 'OpenAI'} failed; the fallback endpoint's "
                                         f"{completion.model} answered ({completion.latency_ms} ms)")
        return Check("model", True, f"{settings.openai_base_url or 'OpenAI'} answered ({completion.latency_ms} ms)")
    except ModelError as exc:
        told = error_text(str(exc.kind), "en", exc.detail).replace(" Your message is saved.", "")
        if "{detail}" not in _template(str(exc.kind)):
            told += f" ({exc.detail})"
        return Check("model", False, f"{exc.kind}: {told}")
    except asyncio.TimeoutError:
        return Check("model", False, f"timeout: {settings.openai_base_url or 'OpenAI'} accepted the connection "
                                     "but sent no answer within 30 s")


def _template(kind: str) -> str:
    from bot.texts import CATALOGUE

    return CATALOGUE.get(f"error.{kind}", CATALOGUE["error.server"])["en"]


async def _check_telegram(settings: Settings) -> Check:
    if not settings.telegram_bot_token:
        return Check("telegram", False, "TELEGRAM_BOT_TOKEN is not set (needed for companion run)")
    from aiogram.exceptions import TelegramAPIError, TelegramNetworkError

    from bot.telegram.app import build_bot

    bot = build_bot(settings, settings.require_telegram())
    try:
        me = await bot.get_me()
        return Check("telegram", True, f"@{me.username} (id {me.id})")
    except (TelegramAPIError, TelegramNetworkError) as exc:
        return Check("telegram", False, f"getMe failed: {exc}")
    finally:
        await bot.session.close()


__all__ = ["Check", "backup_database", "run_checks"]
