"""Logging for the faces: readable text by default, or one JSON object per line
(`COMPANION_LOG_FORMAT=json`) for log collectors. Extra structured fields a record
carries (a turn's id and latencies, for instance) are kept in the JSON output.

Secrets never reach the logs: settings hold them as `SecretStr`, and the HTTP clients'
per-request INFO lines (which include URLs, and for Telegram the bot token inside the
URL) are turned down to warnings.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

_STANDARD = set(vars(logging.makeLogRecord({})))
NOISY = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "aiohttp.access", "aiogram.event")


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
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
