"""Secrets never reach the logs (bot/logs.py).

Unit tests of the redactor as `configure_logging` installs it: the message after its
arguments are merged, an exception's traceback (a real aiohttp error quoting the bot API
URL with the token, wrapped the way aiogram wraps it), the JSON extra fields, secrets
added at run time, and the one-line errors the CLI prints itself.

Then whole sessions: `companion run` as a real process at DEBUG (so aiogram's and the
HTTP clients' own loggers speak too), in JSON and in text, with distinctive secrets,
driven through turns, commands, model errors (429, 500, a 400 whose message quotes the
key, a cut stream), Telegram errors (502 and 429 on sendMessage), a document read, a
document and a voice message whose download fails (aiohttp's error then quotes the file
URL, token included), and SIGTERM. No line it wrote holds the token, its secret part
after the colon, or a key. `companion doctor` and failed starts are checked the same way.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from bot.logs import NOISY, REDACTED, add_secret, configure_logging, redact
from bot.settings import Settings
from bot.texts import error_text, text
from tests.bot_process import COMMAND, BotProcess, bot_environment
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.telegram_server import DEFAULT_USER_ID, FakeTelegram

TOKEN = "918273645:SECRET-TOKEN-xyzAbc123_tokenTail"
TOKEN_SECRET = TOKEN.split(":", 1)[1]
API_KEY = "sk-SECRET-apikey-7d1f0c9e2b4a4e0f"
AUDIO_KEY = "sk-SECRET-audio-0a9b8c7d6e5f"
FALLBACK_KEY = "sk-SECRET-fallback-1f2e3d4c5b6a"
WEBHOOK_SECRET = "SECRET-webhook-5e6f7a8b9c"
ALICE = DEFAULT_USER_ID


def leaks(output: str) -> list[str]:
    """Lines with a secret, or a piece of one: every secret here holds "SECRET-"."""
    return [line for line in output.splitlines() if "SECRET-" in line]


@pytest.fixture
def logging_state():
    """configure_logging changes process-wide state; put it back for the other tests."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in NOISY}, sys.excepthook
    yield
    root.handlers[:], level, noisy, sys.excepthook = saved
    root.setLevel(level)
    for name, value in noisy.items():
        logging.getLogger(name).setLevel(value)
    configure_redactor_only(())


def configure_redactor_only(secrets) -> None:
    """Reset the module's redactor without touching handlers (for the fixture's teardown)."""
    import bot.logs

    bot.logs._redactor = bot.logs.Redactor(secrets)


def captured(capsys, fmt: str = "text", level: str = "DEBUG") -> logging.Logger:
    configure_logging(level, fmt, [TOKEN, API_KEY, None, "short"])
    capsys.readouterr()
    return logging.getLogger("tests.secrets")


# -- the redactor ---------------------------------------------------------------------------

def test_message_and_its_arguments_are_redacted(logging_state, capsys):
    log = captured(capsys)
    log.info("calling https://api.telegram.org/bot%s/getMe with key %s", TOKEN, API_KEY)
    log.warning("the secret half alone: %s; in the message itself: " + API_KEY, TOKEN_SECRET)
    err = capsys.readouterr().err
    assert not leaks(err)
    assert f"https://api.telegram.org/bot{REDACTED}/getMe with key {REDACTED}" in err
    assert f"the secret half alone: {REDACTED}; in the message itself: {REDACTED}" in err


def test_bot_id_and_short_values_are_left_alone(logging_state, capsys):
    log = captured(capsys)
    log.info("bot id %s, a word: short, a number: %d", TOKEN.split(":")[0], 42)
    assert "bot id 918273645, a word: short, a number: 42" in capsys.readouterr().err


async def test_traceback_of_an_aiohttp_error_is_redacted(logging_state, capsys):
    """aiohttp's response errors quote the URL, and Telegram's URLs hold the token; aiogram
    wraps them in a TelegramNetworkError whose text repeats it."""
    from aiogram.exceptions import TelegramNetworkError
    from aiogram.methods import GetFile
    from aiohttp import ClientResponseError, RequestInfo
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    url = URL(f"https://api.telegram.org/file/bot{TOKEN}/documents/file_7.txt")
    info = RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    for fmt in ("text", "json"):
        log = captured(capsys, fmt)
        try:
            try:
                raise ClientResponseError(info, (), status=500, message="Internal Server Error")
            except ClientResponseError as cause:
                raise TelegramNetworkError(GetFile(file_id="x"), f"{type(cause).__name__}: {cause}") from cause
        except TelegramNetworkError:
            log.exception("job failed")
        err = capsys.readouterr().err
        assert not leaks(err), fmt
        assert "ClientResponseError" in err and f"/file/bot{REDACTED}/documents/file_7.txt" in err


def test_json_extra_fields_are_redacted(logging_state, capsys):
    class Endpoint:
        def __str__(self) -> str:
            return f"Endpoint(key={API_KEY})"

    log = captured(capsys, "json")
    log.info("turn done", extra={"turn": {"id": 7, "url": f"/bot{TOKEN}/sendMessage", "keys": [API_KEY, 3]},
                                 "note": TOKEN_SECRET, "endpoint": Endpoint(), "latency_ms": 120})
    line = capsys.readouterr().err
    assert not leaks(line)
    record = json.loads(line)
    assert record["turn"] == {"id": 7, "url": f"/bot{REDACTED}/sendMessage", "keys": [REDACTED, 3]}
    assert record["note"] == REDACTED and record["endpoint"] == f"Endpoint(key={REDACTED})"
    assert record["latency_ms"] == 120


def test_a_secret_added_at_run_time_is_redacted(logging_state, capsys):
    log = captured(capsys)
    add_secret(WEBHOOK_SECRET)
    log.info("webhook secret %s", WEBHOOK_SECRET)
    assert f"webhook secret {REDACTED}" in capsys.readouterr().err
    assert redact(f"X-Telegram-Bot-Api-Secret-Token: {WEBHOOK_SECRET}") == f"X-Telegram-Bot-Api-Secret-Token: {REDACTED}"


def test_an_uncaught_exception_prints_no_secret(logging_state, capsys):
    sys.excepthook = sys.__excepthook__  # as in `companion run`; the fixture puts pytest's back
    configure_logging("INFO", "text", [TOKEN])
    try:
        raise RuntimeError(f"GET https://api.telegram.org/bot{TOKEN}/getMe failed")
    except RuntimeError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and f"/bot{REDACTED}/getMe failed" in err
    assert not leaks(err)


def test_debug_lets_the_http_loggers_speak_and_info_turns_them_down(logging_state, capsys):
    configure_logging("DEBUG", "text", [TOKEN])
    assert all(logging.getLogger(name).getEffectiveLevel() == logging.DEBUG for name in NOISY)
    configure_logging("INFO", "text", [TOKEN])
    assert all(logging.getLogger(name).getEffectiveLevel() == logging.WARNING for name in NOISY)


def test_every_secret_setting_is_redacted(logging_state, capsys):
    settings = Settings(telegram_bot_token=TOKEN, openai_api_key=API_KEY, audio_api_key=AUDIO_KEY,
                        fallback_api_key=FALLBACK_KEY, webhook_secret=WEBHOOK_SECRET,
                        moderation_api_key="sk-SECRET-moderation-11", embedding_api_key="sk-SECRET-embedding-22")
    configure_logging("INFO", "text", settings.secrets())
    logging.getLogger("tests.secrets").info("all: %s", " ".join(settings.secrets()))
    err = capsys.readouterr().err
    assert "SECRET" not in err and err.count(REDACTED) == 7


def test_model_error_shown_to_the_user_is_redacted(logging_state):
    configure_logging("INFO", "text", [API_KEY])
    shown = error_text("bad_request", "en", f"Incorrect API key provided: {API_KEY}")
    assert shown == text("error.bad_request", "en", detail=f"Incorrect API key provided: {REDACTED}")


# -- whole sessions, as a real process --------------------------------------------------------

@pytest.fixture
def servers():
    with FakeOpenAI() as model, FakeTelegram(TOKEN) as telegram:
        telegram.open_private_chat()
        yield telegram, model


# Every secret setting a polling bot can hold; the audio key is used (voice messages).
SECRET_ENVIRONMENT = dict(OPENAI_API_KEY=API_KEY, COMPANION_STT_MODEL="whisper-1", COMPANION_AUDIO_API_KEY=AUDIO_KEY,
                          COMPANION_FALLBACK_API_KEY=FALLBACK_KEY, COMPANION_WEBHOOK_SECRET=WEBHOOK_SECRET,
                          COMPANION_LOG_LEVEL="DEBUG", COMPANION_LOG_FORMAT="json")
TEXT_ENVIRONMENT = {**SECRET_ENVIRONMENT, "COMPANION_LOG_FORMAT": "text"}


def drive_session(telegram: FakeTelegram, model: FakeOpenAI) -> None:
    """Turns, commands, model and Telegram errors, documents, a voice message."""

    def after(action, expected=None, timeout: float = 20) -> None:
        count = len(telegram.bot_messages(ALICE))
        action()
        if expected is None:
            telegram.wait_until(lambda: len(telegram.bot_messages(ALICE)) > count, timeout, message="a new message")
        else:
            telegram.wait_until(lambda: any(expected in t for t in telegram.bot_texts(ALICE)), timeout,
                                message=repr(expected))

    def say(words: str, expected: str | None = None) -> None:
        after(lambda: telegram.private_message(words), expected)

    model.enqueue("Hello Alice, nice to meet you.")
    say("hello there", "nice to meet you")
    say("/help")
    say("/context")
    model.enqueue(Reply.rate_limited(0.2), "After the rate limit.")
    say("are you there?", "After the rate limit.")
    model.enqueue(Reply.error(500, "upstream failure"), "After the server error.")
    say("still there?", "After the server error.")
    model.enqueue(Reply.error(400, f"Incorrect API key provided: {API_KEY}"))  # an endpoint quoting the key
    say("and now?", text("error.bad_request", "en", detail=f"Incorrect API key provided: {REDACTED}"))
    model.enqueue(Reply("A reply that breaks off somewhere in the middle of it all.", cut_after=2),
                  "After the cut.")
    say("tell me a story", "After the cut.")
    telegram.fail("sendMessage", 502)
    model.enqueue("After the bad gateway.")
    say("one more", "After the bad gateway.")
    telegram.fail("sendMessage", 429, retry_after=1)
    model.enqueue("After the flood control.")
    say("and another", "After the flood control.")
    body = "Chapter 1\n\nThe lighthouse keeper counted ships every night.\n" * 20
    after(lambda: telegram.document(telegram.add_file(body.encode(), "keeper.txt", "text/plain")), "📚 Read")
    telegram.fail("download", 500)  # aiohttp's error quotes the file URL, token included
    after(lambda: telegram.document(telegram.add_file(body.encode(), "second.txt", "text/plain")),
          text("doc.failed", "en", name="second.txt"))
    telegram.fail("download", 404)
    after(telegram.voice, text("tg.voice_download_failed", "en"))
    say("/forget")
    assert not leaks("\n".join(telegram.bot_texts(ALICE)))


def test_a_full_session_logs_no_secret(tmp_path, servers):
    """In JSON, where the extra fields go out too; the failed starts below log in text."""
    telegram, model = servers
    bot = BotProcess(tmp_path, telegram, model, **SECRET_ENVIRONMENT)
    try:
        bot.start().wait_polling()
        drive_session(telegram, model)
    finally:
        code = bot.terminate()
    output = bot.output
    assert code == 0, output[-3000:]
    assert not leaks(output), leaks(output)[:3]
    assert not [line for line in output.splitlines() if line.strip() and not line.startswith("{")]
    # The net caught what the libraries wrote: the failed downloads' URLs, in a warning's
    # message and in a traceback.
    assert any(f"/file/bot{REDACTED}/voice/" in r["message"] for r in bot.records)
    assert any(f"/file/bot{REDACTED}/documents/" in r.get("exception", "") for r in bot.records)
    # DEBUG really was DEBUG, with the libraries' own loggers, which INFO turns down.
    loggers = {r["logger"] for r in bot.records}
    assert {"aiogram.event", "openai._base_client"} <= loggers, loggers
    assert any(r["level"] == "debug" for r in bot.records)


def test_a_refused_token_and_doctor_print_no_secret(tmp_path, servers):
    """Two processes at once (each pays the seconds of imports): `companion run` with a token
    Telegram refuses (getMe answers 401), and `companion doctor` with a typo in
    TELEGRAM_API_BASE, where aiohttp's error is the whole URL, token included."""
    telegram, model = servers
    typo = telegram.base_url.replace("http", "htp")
    runs = {
        "run": dict(TEXT_ENVIRONMENT, TELEGRAM_BOT_TOKEN=TOKEN.replace("xyz", "XYZ")),
        "doctor": dict(SECRET_ENVIRONMENT, TELEGRAM_API_BASE=typo),
    }
    processes = {}
    for command, env in runs.items():
        folder = tmp_path / command
        folder.mkdir()
        processes[command] = subprocess.Popen(COMMAND + [command], env=bot_environment(folder, telegram, model, **env),
                                              cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {name: (*process.communicate(timeout=120), process.returncode) for name, process in processes.items()}
    for name, (out, err, code) in results.items():
        assert not leaks(out + err), (name, leaks(out + err))

    out, err, code = results["run"]
    assert code == 2 and err.strip().splitlines()[-1].startswith("companion: Telegram refused TELEGRAM_BOT_TOKEN"), err
    out, err, code = results["doctor"]
    assert code == 1 and "ok   model" in out, out + err
    assert f"FAIL telegram   getMe failed: HTTP Client says - NonHttpUrlClientError: {typo}/bot{REDACTED}/getMe" in out


async def test_a_start_error_quoting_the_url_is_redacted(tmp_path, servers, logging_state, capsys):
    """`companion run`'s own one-line error, in this process (the imports are paid): the
    TELEGRAM_API_BASE typo again, after getMe's retries (which log it too)."""
    from bot.telegram.app import run_bot

    telegram, model = servers
    typo = telegram.base_url.replace("http", "htp")
    settings = Settings(openai_base_url=model.url, openai_api_key=API_KEY, model="fake-model", db=tmp_path / "bot.db",
                        telegram_bot_token=TOKEN, telegram_api_base=typo, log_level="DEBUG")
    configure_logging(settings.log_level, "text", settings.secrets())
    assert await run_bot(settings) == 1
    err = capsys.readouterr().err
    assert not leaks(err), leaks(err)
    assert f"Telegram getMe failed (HTTP Client says - NonHttpUrlClientError: {typo}/bot{REDACTED}/getMe)" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("companion: Telegram did not let the bot start") and f"{typo}/bot{REDACTED}/getMe" in last
