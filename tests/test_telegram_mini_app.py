"""The Mini App from Telegram's side: the menu button, /app, and the app served in the bot's
own process (`companion run`, beside polling) and alone (`companion web`)."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from urllib.parse import parse_qs

from bot.web.initdata import sign_init_data
from tests.bot_process import COMMAND, BotProcess, clean_environment, free_port
from tests.fakes.telegram_server import DEFAULT_USER_ID
from tests.harness import BotHarness

WEB_URL = "https://bot.example.org/app"


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, ConnectionError):  # not listening yet
        return 0, ""


async def test_the_menu_button_and_app_open_the_mini_app(tmp_path, telegram, fake_openai):
    companion = await BotHarness(tmp_path, telegram, fake_openai, web_url=WEB_URL).start()
    try:
        menu = telegram.calls_of("setChatMenuButton")
        assert menu and menu[-1].params["menu_button"]["web_app"]["url"] == WEB_URL
        telegram.private_message("/app")
        await companion.replies(DEFAULT_USER_ID, 1)
        button = telegram.bot_messages(DEFAULT_USER_ID)[-1].buttons[0]
        assert button["web_app"] == {"url": WEB_URL}
    finally:
        await companion.stop()


async def test_without_an_address_app_says_how_to_set_it_up(tmp_path, telegram, fake_openai):
    companion = await BotHarness(tmp_path, telegram, fake_openai).start()
    try:
        assert telegram.calls_of("setChatMenuButton") == []
        telegram.private_message("/app")
        texts = await companion.replies(DEFAULT_USER_ID, 1)
        assert "COMPANION_WEB_URL" in texts[0]
    finally:
        await companion.stop()


def test_the_bot_process_serves_the_mini_app_beside_polling(tmp_path, telegram, fake_openai):
    port = free_port()
    bot = BotProcess(tmp_path, telegram, fake_openai, COMPANION_WEB_PORT=str(port)).start()
    try:
        bot.wait_polling()
        status, page = get(f"http://127.0.0.1:{port}/app")
        assert status == 200 and "app.js" in page
        init_data = sign_init_data(telegram.token, {"id": DEFAULT_USER_ID, "first_name": "Alice"})
        status, body = get(f"http://127.0.0.1:{port}/app/api/me", {"Authorization": "tma " + init_data})
        assert status == 200 and str(DEFAULT_USER_ID) in body
        assert get(f"http://127.0.0.1:{port}/app/api/me")[0] == 401
    finally:
        assert bot.terminate() == 0


def test_companion_web_serves_it_alone(tmp_path, telegram):
    port = free_port()
    env = {**clean_environment(), "TELEGRAM_BOT_TOKEN": telegram.token, "COMPANION_WEB_PORT": str(port),
           "COMPANION_DB": str(tmp_path / "web.db"), "COMPANION_OPEN": "true"}
    process = subprocess.Popen(COMMAND + ["web", "--link-for", "77"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        link = process.stdout.readline().strip()
        assert link.startswith(f"http://127.0.0.1:{port}/app#tgWebAppData=")
        assert "serving the Mini App" in process.stdout.readline()
        telegram.wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 30, message="companion web")
        init_data = parse_qs(link.split("#", 1)[1])["tgWebAppData"][0]
        status, body = get(f"http://127.0.0.1:{port}/app/api/me", {"Authorization": "tma " + init_data})
        assert status == 200 and '"id": 77' in body
    finally:
        process.terminate()
        assert process.wait(20) == 0
