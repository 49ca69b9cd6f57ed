"""`companion run` as a real child process, against the fakes running in this process.

Crash tests kill it with SIGKILL, the secrets test reads everything it writes, and the
load benchmark reads its JSON turn logs; they all start it the same way: a clean
environment (none of the developer's `OPENAI_`/`COMPANION_`/`TELEGRAM_` variables), the
fake Bot API and the fake model, a real SQLite file in a temporary folder.

Its output (stdout and stderr) is read by a thread as the process writes it, one line at a time: with
`COMPANION_LOG_FORMAT=json` each line is a JSON object (`records`), and `turns` holds the
structured record of every finished turn. A pre-started process
(`FakeTelegram.hold("getMe")`) imports everything and then waits at its first Telegram
call until `release("getMe")`, so a restart after a kill costs the start-up work of
`prepare()`, not the seconds of imports. The process logs at INFO: `wait_polling` reads
its log to know it is up, since another process may be polling the same fake.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram

SCRIPT = Path(sys.executable).parent / "companion"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "bot"]
API_KEY = "sk-test-7d1f0c9e2b4a4e0f8c3d"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COMPANION_", "TELEGRAM_"))}


def bot_environment(folder: Path, telegram: FakeTelegram, model: FakeOpenAI, **extra: str) -> dict[str, str]:
    env = clean_environment()
    env.update(OPENAI_BASE_URL=model.url, OPENAI_API_KEY=API_KEY, COMPANION_MODEL="fake-model",
               COMPANION_CONTEXT_TOKENS="32768", COMPANION_DB=str(folder / "bot.db"),
               TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_BASE=telegram.base_url,
               COMPANION_OPEN="true", COMPANION_LOG_FORMAT="json", COMPANION_LOG_LEVEL="INFO",
               # the fake serves every request at once, as a cloud provider does; the gate's
               # default for an endpoint on 127.0.0.1 (one slot) would answer chats one at a time
               COMPANION_MODEL_SLOTS="0")
    env.update(extra)
    return env


class BotProcess:
    def __init__(self, folder: Path, telegram: FakeTelegram, model: FakeOpenAI, **env: str):
        self.folder = folder
        self.telegram = telegram
        self.env = bot_environment(folder, telegram, model, **env)
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self._reader: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> "BotProcess":
        self.process = subprocess.Popen(COMMAND + ["run"], env=self.env, cwd=self.folder, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace")
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        return self

    def wait_polling(self, timeout: float = 60) -> "BotProcess":
        """Until this process has finished starting up and polls for updates (its log says so:
        another process may be polling the same fake meanwhile)."""
        self.telegram.wait_until(lambda: "Run polling for bot" in self.output or self._exited(), timeout,
                                 message="the bot to start polling")
        if self._exited():
            raise AssertionError(f"companion run exited with {self.process.returncode}:\n" + self.output[-3000:])
        return self

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed; what the database holds is what a crash leaves."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._join()

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, as systemd or Docker stop the bot; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._join()
        return self.process.returncode

    # -- what it wrote ----------------------------------------------------------------
    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def turns(self) -> list[dict[str, Any]]:
        return [record["turn"] for record in list(self.records) if "turn" in record]

    def errors(self) -> list[dict[str, Any]]:
        return [r for r in list(self.records) if r.get("level") in ("error", "critical")]

    # -- internals --------------------------------------------------------------------
    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self.records.append(record)

    def _join(self) -> None:
        if self._reader is not None:
            self._reader.join(10)

    def _exited(self) -> bool:
        return self.process.poll() is not None

