"""Logging for the faces: readable text by default, or one JSON object per line
(`COMPANION_LOG_FORMAT=json`) for log collectors. Extra structured fields a record
carries (a turn's id and latencies, for instance) are kept in the JSON output.

Secrets never reach the logs. Settings hold them as `SecretStr`, so a repr or a logged
settings object shows stars; the HTTP clients' per-request lines (which include URLs, and
for Telegram the bot token inside the URL) are turned down to warnings unless the level is
DEBUG. And as a safety net for whatever still carries a secret - an aiohttp error whose
text quotes `https://api.telegram.org/bot<TOKEN>/getFile`, a traceback, a library's DEBUG
line - a `Redactor` filter on the one handler replaces every configured secret with
`[redacted]` in the message (after its arguments are merged), the exception and stack
text, and the extra fields, before any formatter sees the record. The secrets are every
`SecretStr` setting (`Settings.secrets()`), the part of a `user:password`-shaped secret
after its colon on its own (a bot token's secret half), and secrets made at run time
(`add_secret`: a webhook secret token the bot generates). `redact()` cleans the one-line
errors the CLI prints itself, and an uncaught exception's traceback goes through it too.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import datetime, timezone
from typing import Any, Iterable

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
NOISY = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "aiohttp.access", "aiogram.event")
REDACTED = "[redacted]"
# Shorter values are not treated as secrets: replacing "k" or "test" everywhere would
# garble every line, and a key that short protects nothing anyway.
MIN_SECRET_LENGTH = 6


class Redactor(logging.Filter):
    """Replaces the secrets it knows in everything a log record will print."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        candidates = {secret.strip()}
        # "123456:AAH...": the bot id before the colon is public, the rest is the secret
        _, colon, rest = secret.strip().partition(":")
        if colon:
            candidates.add(rest)
        for value in list(candidates):
            # as a JSON string or a repr shows it, in case the secret holds quotes or backslashes
            candidates.add(json.dumps(value, ensure_ascii=False)[1:-1])
            candidates.add(repr(value)[1:-1])
        for value in candidates:
            if len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
                self._secrets.append(value)
        self._secrets.sort(key=len, reverse=True)  # the whole token before its part after the colon

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def redact_value(self, value: Any) -> Any:
        """A copy of an extra field's value with secrets replaced (strings inside dicts and
        lists too); any other object that would print a secret becomes its redacted text."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact_value(k): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set)):
            return [self.redact_value(item) for item in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        shown = str(value)
        cleaned = self.redact(shown)
        return value if cleaned == shown else cleaned

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and not key.startswith("_"):
                setattr(record, key, self.redact_value(value))
        return True


# The redactor of the configured handler; `redact()` uses it for text printed outside logging.
_redactor = Redactor()


def redact(text: str) -> str:
    """`text` with every configured secret replaced by `[redacted]`."""
    return _redactor.redact(text)


def add_secret(secret: str | None) -> None:
    """A secret made at run time (a generated webhook secret token), redacted from now on."""
    _redactor.add(secret)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info or record.exc_text:
            # exc_text is the traceback the Redactor already cleaned
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def _redacted_excepthook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
    """An uncaught exception's traceback, printed as Python does but without secrets."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, error, tb))))


def configure_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str | None] = ()) -> None:
    """One handler on stderr for the root logger, redacting `secrets` (and any added later)."""
    global _redactor
    _redactor = Redactor(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # At DEBUG the operator asked for everything, the HTTP clients' lines included (the
    # redactor keeps the token out of them); otherwise they are noise.
    noisy_level = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for name in NOISY:
        logging.getLogger(name).setLevel(noisy_level)
    if sys.excepthook is sys.__excepthook__:  # not one a debugger or test runner installed
        sys.excepthook = _redacted_excepthook
