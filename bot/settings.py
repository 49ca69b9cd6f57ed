"""Settings, from the environment and `.env` (pydantic-settings).

Names follow the tools people already use: the openai SDK's own `OPENAI_API_KEY` and
`OPENAI_BASE_URL`, Telegram's `TELEGRAM_BOT_TOKEN`, and `COMPANION_*` for ours.
Lists are comma-separated (`COMPANION_ADMINS=1001,1002`). Secrets are `SecretStr`, so
they never show up in logs or reprs.

A missing or invalid setting becomes one `SettingsError` line that names the variable and
says how to set it; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from memory.postgres import redacted_url

if TYPE_CHECKING:
    from memory.documents import DocumentLimits

DEFAULT_DB = Path("data") / "companion.db"
DEFAULT_MODEL = "gpt-4o-mini"
SAFE_DEFAULT_WINDOW = 8192
DEFAULT_WEB_PORT = 8081  # the Mini App's; the webhook listens on 8080
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files on the official Bot API

# Context windows of well-known models, matched on the name after any "vendor/" prefix
# (OpenRouter style). First match wins, so specific names come before families.
KNOWN_WINDOWS: list[tuple[str, int]] = [
    (r"kimi-k2-0711", 131_072),
    (r"kimi-k2", 262_144),
    (r"kimi-latest|kimi-thinking|kimi", 131_072),
    (r"deepseek", 131_072),
    (r"qwen-long", 10_000_000),
    (r"qwen-turbo|qwen-flash", 1_000_000),
    (r"qwen-plus|qwen3|qwen2\.5", 131_072),
    (r"qwen-max|qwen", 32_768),
    (r"gpt-4\.1", 1_047_576),
    (r"gpt-5", 400_000),
    (r"gpt-4o|gpt-4-turbo|chatgpt-4o", 128_000),
    (r"o1|o3|o4", 200_000),
    (r"gpt-3\.5", 16_385),
]
_MOONSHOT_SIZED = re.compile(r"moonshot-v1-(\d+)k")


def known_window(model: str) -> int:
    """The context window of a known model, or a safe default for unknown ones."""
    name = model.lower().rsplit("/", 1)[-1]
    if match := _MOONSHOT_SIZED.match(name):
        return int(match.group(1)) * 1024
    for pattern, window in KNOWN_WINDOWS:
        if re.match(pattern, name):
            return window
    return SAFE_DEFAULT_WINDOW


def is_local_url(url: str | None) -> bool:
    """True for endpoints on this machine (Ollama, llama.cpp, vLLM on localhost), which need no key."""
    if not url:
        return False
    host = (urlparse(url).hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SettingsError(Exception):
    """A setting that is missing or invalid; the message is one line for the operator."""


IntList = Annotated[list[int], NoDecode]

# How the user sets each variable, for error messages.
HINTS = {
    "OPENAI_API_KEY": "export OPENAI_API_KEY=sk-... or put it in .env",
    "COMPANION_CONTEXT_TOKENS": "set it to the model's context window in tokens, e.g. 131072",
    "COMPANION_REPLY_TOKENS": "set it to the tokens reserved for a reply, e.g. 4096",
    "TELEGRAM_BOT_TOKEN": "get one from @BotFather and export TELEGRAM_BOT_TOKEN=123456:ABC...",
    "COMPANION_ADMINS": "use comma-separated Telegram user ids, e.g. 1001,1002",
    "COMPANION_ALLOWED_USERS": "use comma-separated Telegram user ids, e.g. 1001,1002",
    "COMPANION_MODELS": "use comma-separated name=window pairs, e.g. gpt-4o-mini=128000,deepseek-chat=131072",
    "COMPANION_WEB_URL": "set it to the public https address of the Mini App, e.g. https://bot.example.org/app",
    "COMPANION_CHECKIN_QUIET": "use a span of local hours such as 22-9 or 23:30-07:00, or off",
}
StrList = Annotated[list[str], NoDecode]
_MODEL_ENTRY = re.compile(r"^(?P<name>[^=\s]+)\s*(?:=\s*(?P<window>\d+))?$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      populate_by_name=True)

    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    model: str = Field(DEFAULT_MODEL, validation_alias="COMPANION_MODEL", min_length=1)
    context_tokens: int | None = Field(None, validation_alias="COMPANION_CONTEXT_TOKENS", ge=1024)
    reply_tokens: int | None = Field(None, validation_alias="COMPANION_REPLY_TOKENS", ge=16)
    tail_tokens: int | None = Field(None, validation_alias="COMPANION_TAIL_TOKENS", ge=0)
    temperature: float | None = Field(None, validation_alias="COMPANION_TEMPERATURE", ge=0, le=2)
    db: Path = Field(DEFAULT_DB, validation_alias="COMPANION_DB")
    db_durability: Literal["normal", "full"] = Field("normal", validation_alias="COMPANION_DB_DURABILITY")
    # PostgreSQL instead of the SQLite file COMPANION_DB: postgresql://user:password@host:5432/database
    database_url: SecretStr | None = Field(None, validation_alias="COMPANION_DATABASE_URL")
    personas_dir: Path | None = Field(None, validation_alias="COMPANION_PERSONAS_DIR")
    system_prompt: str = Field("", validation_alias="COMPANION_SYSTEM_PROMPT")
    timezone: str = Field("UTC", validation_alias="COMPANION_TIMEZONE")
    prompt_cache_key: bool = Field(True, validation_alias="COMPANION_PROMPT_CACHE_KEY")
    model_deadline_seconds: float = Field(60.0, validation_alias="COMPANION_MODEL_DEADLINE", gt=0)
    stream_stall_seconds: float = Field(45.0, validation_alias="COMPANION_STREAM_STALL", gt=0)
    # requests OPENAI_BASE_URL takes at once; None: 1 on localhost or a private address, else no limit; 0: no limit
    model_slots: int | None = Field(None, validation_alias="COMPANION_MODEL_SLOTS", ge=0)
    # a turn takes the endpoint over from background work (sent again later) instead of waiting for it
    model_preempt: bool = Field(False, validation_alias="COMPANION_MODEL_PREEMPT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"] = Field(
        "INFO", validation_alias="COMPANION_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", validation_alias="COMPANION_LOG_FORMAT")

    telegram_bot_token: SecretStr | None = Field(None, validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base: str | None = Field(None, validation_alias="TELEGRAM_API_BASE")
    telegram_api_local: bool = Field(False, validation_alias="TELEGRAM_API_LOCAL")
    # Telegram's flood limits, which the send budget keeps to (bot/telegram/send_budget.py)
    telegram_sends_per_second: float = Field(30.0, validation_alias="COMPANION_TELEGRAM_SENDS_PER_SECOND", gt=0)
    telegram_chat_sends_per_second: float = Field(1.0, validation_alias="COMPANION_TELEGRAM_CHAT_SENDS_PER_SECOND",
                                                  gt=0)
    telegram_group_sends_per_minute: float = Field(20.0, validation_alias="COMPANION_TELEGRAM_GROUP_SENDS_PER_MINUTE",
                                                   ge=4)
    admins: IntList = Field(default_factory=list, validation_alias="COMPANION_ADMINS")
    allowed_users: IntList = Field(default_factory=list, validation_alias="COMPANION_ALLOWED_USERS")
    open_to_all: bool = Field(False, validation_alias="COMPANION_OPEN")
    webhook_url: str | None = Field(None, validation_alias="COMPANION_WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(None, validation_alias="COMPANION_WEBHOOK_SECRET")
    webhook_listen: str = Field("0.0.0.0:8080", validation_alias="COMPANION_WEBHOOK_LISTEN")
    daily_tokens: int | None = Field(None, validation_alias="COMPANION_DAILY_TOKENS", ge=0)
    cached_token_weight: float = Field(0.1, validation_alias="COMPANION_CACHED_TOKEN_WEIGHT", ge=0, le=1)
    price_input: float | None = Field(None, validation_alias="COMPANION_PRICE_INPUT", ge=0)
    price_cached_input: float | None = Field(None, validation_alias="COMPANION_PRICE_CACHED_INPUT", ge=0)
    price_output: float | None = Field(None, validation_alias="COMPANION_PRICE_OUTPUT", ge=0)
    price_currency: str = Field("USD", validation_alias="COMPANION_PRICE_CURRENCY")

    # --- Companion life: voice, check-ins, model choice, fallback endpoint, safety hook ---
    # README "Companion life". Audio and moderation endpoints default to OPENAI_BASE_URL;
    # the main API key is only sent to an endpoint that is that same URL.
    audio_base_url: str | None = Field(None, validation_alias="COMPANION_AUDIO_BASE_URL")
    audio_api_key: SecretStr | None = Field(None, validation_alias="COMPANION_AUDIO_API_KEY")
    stt_model: str | None = Field(None, validation_alias="COMPANION_STT_MODEL")
    stt_language: str | None = Field(None, validation_alias="COMPANION_STT_LANGUAGE")
    tts_model: str | None = Field(None, validation_alias="COMPANION_TTS_MODEL")
    tts_voice: str = Field("alloy", validation_alias="COMPANION_TTS_VOICE", min_length=1)
    checkins: bool = Field(True, validation_alias="COMPANION_CHECKINS")
    checkin_quiet: str = Field("22-9", validation_alias="COMPANION_CHECKIN_QUIET")
    checkin_min_hours: float = Field(4.0, validation_alias="COMPANION_CHECKIN_MIN_HOURS", gt=0)
    checkin_unanswered: int = Field(2, validation_alias="COMPANION_CHECKIN_UNANSWERED", ge=1)
    checkin_poll_seconds: float = Field(60.0, validation_alias="COMPANION_CHECKIN_POLL_SECONDS", gt=0)
    models: StrList = Field(default_factory=list, validation_alias="COMPANION_MODELS")
    fallback_base_url: str | None = Field(None, validation_alias="COMPANION_FALLBACK_BASE_URL")
    fallback_api_key: SecretStr | None = Field(None, validation_alias="COMPANION_FALLBACK_API_KEY")
    fallback_model: str | None = Field(None, validation_alias="COMPANION_FALLBACK_MODEL")
    fallback_cooldown_seconds: float = Field(60.0, validation_alias="COMPANION_FALLBACK_COOLDOWN", ge=0)
    moderation_model: str | None = Field(None, validation_alias="COMPANION_MODERATION_MODEL")
    moderation_base_url: str | None = Field(None, validation_alias="COMPANION_MODERATION_BASE_URL")
    moderation_api_key: SecretStr | None = Field(None, validation_alias="COMPANION_MODERATION_API_KEY")
    moderation_words: StrList = Field(default_factory=list, validation_alias="COMPANION_MODERATION_WORDS")
    moderation_words_file: Path | None = Field(None, validation_alias="COMPANION_MODERATION_WORDS_FILE")
    moderation_input: Literal["refuse", "warn", "log", "off"] = Field(
        "refuse", validation_alias="COMPANION_MODERATION_INPUT")
    moderation_output: Literal["refuse", "warn", "log", "off"] = Field(
        "refuse", validation_alias="COMPANION_MODERATION_OUTPUT")
    age_confirmation: bool = Field(False, validation_alias="COMPANION_AGE_CONFIRMATION")
    minimum_age: int = Field(18, validation_alias="COMPANION_MINIMUM_AGE", ge=1, le=99)

    # --- The Mini App (bot/web; README "Mini App") ------------------------------------------
    # Served in the bot's process when either is set, and alone by `companion web`.
    web_url: str | None = Field(None, validation_alias="COMPANION_WEB_URL")  # the public https address of /app
    web_host: str = Field("127.0.0.1", validation_alias="COMPANION_WEB_HOST", min_length=1)
    web_port: int | None = Field(None, validation_alias="COMPANION_WEB_PORT", ge=1, le=65535)
    web_auth_max_age_hours: float = Field(24.0, validation_alias="COMPANION_WEB_AUTH_MAX_AGE", gt=0)

    @field_validator("web_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is not None and (urlparse(value).scheme != "https" or not urlparse(value).hostname):
            raise ValueError("Telegram opens Mini Apps over https only; use e.g. https://bot.example.org/app")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parsed = urlparse(value.get_secret_value().strip())
        if parsed.scheme not in ("postgresql", "postgres") or not (parsed.hostname or parsed.query):
            raise ValueError("use postgresql://user:password@host:5432/database, or leave it unset to keep "
                             "the SQLite file COMPANION_DB")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("models")
    @classmethod
    def _model_entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            match = _MODEL_ENTRY.match(entry)
            if not match or (match.group("window") and int(match.group("window")) < 1024):
                raise ValueError(f"'{entry}' is not name or name=window (a window of at least 1024 tokens)")
        return value

    @field_validator("checkin_quiet")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        from memory.checkins import parse_quiet

        if parse_quiet(value) is None:
            raise ValueError(f"'{value}' is not a span of hours")
        return value

    @field_validator("moderation_words_file")
    @classmethod
    def _existing_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"there is no file '{value}'; list one word or phrase per line in it")
        return value

    # --- Documents and novels (memory/reading) ------------------------------------------
    # Largest document read, in MB (uploads, links, the CLI). The official Bot API lets
    # bots download at most 20 MB whatever this says; a local Bot API server lifts that.
    document_max_mb: float = Field(20.0, validation_alias="COMPANION_DOCUMENT_MAX_MB", gt=0, le=2000)
    # Share of the prompt (after the per-turn tail) attached documents may take verbatim.
    documents_share: float = Field(0.6, validation_alias="COMPANION_DOCUMENTS_SHARE", gt=0, lt=1)
    # Read web links found in messages (public addresses only), within this many seconds.
    fetch_links: bool = Field(False, validation_alias="COMPANION_FETCH_LINKS")
    fetch_timeout_seconds: float = Field(30.0, validation_alias="COMPANION_FETCH_TIMEOUT", gt=0, le=600)
    # Send photos to the model as images (the model must accept image input).
    vision: bool = Field(False, validation_alias="COMPANION_VISION")

    @field_validator("admins", "allowed_users", "models", "moderation_words", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("openai_base_url", "telegram_api_base", "webhook_url", "audio_base_url", "fallback_base_url",
                     "moderation_base_url", "stt_model", "tts_model", "fallback_model", "moderation_model",
                     "stt_language", "memory_model", "embedding_model", "embedding_base_url", "web_url", "web_port",
                     "database_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai") from None
        return value

    # -- derived ----------------------------------------------------------------------
    @property
    def window(self) -> int:
        return self.context_tokens or known_window(self.model)

    @property
    def reply_reserve(self) -> int:
        return self.reply_tokens or min(4096, self.window // 4)

    @property
    def tail_budget(self) -> int:
        return self.tail_tokens if self.tail_tokens is not None else self.window // 10

    @property
    def database_label(self) -> str:
        """Where the data lives, for messages: the SQLite file, or the PostgreSQL URL
        without its password."""
        settings = self  # `self.db` reads as a Store's connection to the storage-SQL check
        if settings.database_url is None:
            return str(settings.db)
        return redacted_url(settings.database_url.get_secret_value())

    @staticmethod
    def database_problem(error: Exception) -> str:
        """A database that could not be opened, and which settings to look at."""
        return f"{error}; check COMPANION_DATABASE_URL (or unset it to use the SQLite file COMPANION_DB)"

    def secrets(self) -> list[str]:
        """The value of every secret setting that is set (all the `SecretStr` fields), for the
        log redactor: a secret added later is covered without being listed anywhere."""
        values = (getattr(self, name) for name in SECRET_FIELDS)
        found = [value.get_secret_value() for value in values
                 if value is not None and value.get_secret_value().strip()]
        if self.database_url is not None:  # a driver's error may quote the password alone
            password = urlparse(self.database_url.get_secret_value()).password
            found += [password] if password else []
        return found

    def api_key(self) -> str | None:
        return self.openai_api_key.get_secret_value() if self.openai_api_key else None

    def endpoint(self, base_url: str | None, api_key: SecretStr | None) -> tuple[str | None, str | None]:
        """An extra endpoint's URL and key: unset, it is the main endpoint with the main key;
        the main key never goes to another URL."""
        if api_key is not None:
            return base_url or self.openai_base_url, api_key.get_secret_value()
        if base_url is None or base_url.rstrip("/") == (self.openai_base_url or "").rstrip("/"):
            return base_url or self.openai_base_url, self.api_key()
        return base_url, None

    def model_options(self) -> list[tuple[str, int]]:
        """COMPANION_MODELS as (name, window); a window left out is the known one."""
        options = []
        for entry in self.models:
            match = _MODEL_ENTRY.match(entry)
            window = match.group("window")
            options.append((match.group("name"), int(window) if window else known_window(match.group("name"))))
        return options

    @property
    def fallback_enabled(self) -> bool:
        return bool(self.fallback_base_url or self.fallback_model)

    def require_model_access(self) -> None:
        """Checked before any network call to the model."""
        if self.api_key():
            return
        if is_local_url(self.openai_base_url):
            return
        where = self.openai_base_url or "the OpenAI API (OPENAI_BASE_URL is not set)"
        raise SettingsError(
            f"OPENAI_API_KEY is not set, and {where} needs one: {HINTS['OPENAI_API_KEY']} "
            "(only a local OPENAI_BASE_URL such as http://127.0.0.1:11434/v1 may go without)"
        )

    @property
    def document_limits(self) -> "DocumentLimits":
        from memory.documents import DocumentLimits

        return DocumentLimits(max_document_bytes=int(self.document_max_mb * 1024 * 1024),
                              fetch_timeout_seconds=self.fetch_timeout_seconds)

    @property
    def telegram_download_limit(self) -> int:
        """Bytes a bot may download: 20 MB on the official Bot API, the document limit
        with a local Bot API server."""
        limit = self.document_limits.max_document_bytes
        return limit if self.telegram_api_local else min(limit, TELEGRAM_DOWNLOAD_LIMIT)

    @property
    def webhook_address(self) -> tuple[str, int]:
        host, _, port = self.webhook_listen.rpartition(":")
        try:
            return host or "0.0.0.0", int(port)
        except ValueError:
            raise SettingsError(
                f"COMPANION_WEBHOOK_LISTEN: '{self.webhook_listen}' is not host:port, e.g. 0.0.0.0:8080"
            ) from None

    @property
    def web_enabled(self) -> bool:
        """The bot serves the Mini App beside polling or the webhook."""
        return self.web_url is not None or self.web_port is not None

    @property
    def web_listen_port(self) -> int:
        return self.web_port or DEFAULT_WEB_PORT

    def first_run_problems(self, *, telegram: bool = True) -> list[str]:
        """What stops a first start, one line each, naming the setting and how to fill it:
        a missing key or token, the placeholders of a .env copied from .env.example
        unchanged, and a private bot that would refuse everyone, its owner too."""
        problems = []
        try:
            self.require_model_access()
        except SettingsError as exc:
            problems.append(str(exc))
        key = self.api_key() or ""
        if key and is_placeholder(key):
            problems.append(f"OPENAI_API_KEY is still the placeholder of .env.example ({key}): put your "
                            "provider's API key there (it starts sk-... for OpenAI, DeepSeek and Moonshot)")
        if not telegram:
            return problems
        token = (self.telegram_bot_token.get_secret_value().strip() if self.telegram_bot_token else "")
        if not token:
            problems.append(f"TELEGRAM_BOT_TOKEN is not set: {HINTS['TELEGRAM_BOT_TOKEN']}")
        elif is_placeholder(token):
            problems.append("TELEGRAM_BOT_TOKEN is still the sample of .env.example: create a bot with @BotFather "
                            "(/newbot) and paste the token it gives you")
        if not self.open_to_all and not self.admins and not self.allowed_users:
            problems.append("COMPANION_ADMINS is empty and COMPANION_OPEN is false, so the bot would refuse "
                            "everyone, you too: put your Telegram user id in COMPANION_ADMINS (send any message to "
                            "@userinfobot to learn it; the bot's refusal also says it), or set COMPANION_OPEN=true")
        return problems

    def require_telegram(self) -> str:
        if not self.telegram_bot_token or not self.telegram_bot_token.get_secret_value().strip():
            raise SettingsError(f"TELEGRAM_BOT_TOKEN is not set: {HINTS['TELEGRAM_BOT_TOKEN']}")
        return self.telegram_bot_token.get_secret_value().strip()

    # --- Long-term memory: compaction, pinned facts, recall, time (README "Long-term memory") ---
    memory_model: str | None = Field(None, validation_alias="COMPANION_MEMORY_MODEL")
    compact_at: float = Field(0.8, validation_alias="COMPANION_COMPACT_AT", gt=0.1, le=1)
    compact_to: float = Field(0.5, validation_alias="COMPANION_COMPACT_TO", gt=0, lt=1)
    summary_share: float = Field(0.15, validation_alias="COMPANION_SUMMARY_SHARE", gt=0, le=0.5)
    facts_every: int = Field(4, validation_alias="COMPANION_FACTS_EVERY", ge=0)
    session_gap_minutes: int = Field(180, validation_alias="COMPANION_SESSION_GAP_MINUTES", ge=1)
    embedding_model: str | None = Field(None, validation_alias="COMPANION_EMBEDDING_MODEL")
    embedding_base_url: str | None = Field(None, validation_alias="COMPANION_EMBEDDING_BASE_URL")
    embedding_api_key: SecretStr | None = Field(None, validation_alias="COMPANION_EMBEDDING_API_KEY")
    embedding_dimensions: int | None = Field(None, validation_alias="COMPANION_EMBEDDING_DIMENSIONS", ge=1)

    @field_validator("compact_to")
    @classmethod
    def _target_below_trigger(cls, value: float, info: ValidationInfo) -> float:
        trigger = info.data.get("compact_at")
        if trigger is not None and value >= trigger:
            raise ValueError(f"must be below COMPANION_COMPACT_AT ({trigger}), e.g. 0.5 with 0.8")
        return value

    def embedding_endpoint(self) -> tuple[str | None, str | None]:
        """(base URL, key) for embeddings: their own endpoint, else the chat model's. A
        separate endpoint never receives OPENAI_API_KEY."""
        if self.embedding_base_url:
            key = self.embedding_api_key.get_secret_value() if self.embedding_api_key else None
            return self.embedding_base_url, key
        return self.openai_base_url, self.api_key()


def _env_name(field_name: str) -> str:
    field = Settings.model_fields.get(field_name)
    alias = field.validation_alias if field else None
    return alias if isinstance(alias, str) else field_name.upper()


# The secret settings (every SecretStr field): the log redactor hides their values, and an
# error message never repeats them.
SECRET_FIELDS = tuple(name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation))
_SECRET_NAMES = {_env_name(name) for name in SECRET_FIELDS}


SAMPLE_VALUES = {"sk-...", "123456:ABC-your-token-from-BotFather", "123456:ABC..."}


def is_placeholder(value: str) -> bool:
    """A value left as .env.example has it, or obviously a placeholder ("sk-...", "<your key>")."""
    value = value.strip()
    return (value in SAMPLE_VALUES or value.endswith("...") or "your-token" in value.lower()
            or "your_key" in value.lower() or (value.startswith("<") and value.endswith(">")))


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and .env; a problem becomes one SettingsError line."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = _env_name(str(error["loc"][0])) if error["loc"] else "settings"
        value = error.get("input")
        shown = "" if name in _SECRET_NAMES or isinstance(value, dict) else f" (got {value!r})"
        message = error["msg"].removeprefix("Value error, ")
        hint = HINTS.get(name, "")
        raise SettingsError(f"{name}: {message}{shown}" + (f"; {hint}" if hint else "")) from None
    if settings.reply_reserve >= settings.window // 2:
        raise SettingsError(
            f"COMPANION_REPLY_TOKENS ({settings.reply_reserve}) must be under half of the "
            f"context window ({settings.window}); lower it or raise COMPANION_CONTEXT_TOKENS"
        )
    return settings
