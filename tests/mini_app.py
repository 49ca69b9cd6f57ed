"""The Mini App under test: the real composition root's services on a SQLite file, the
fake model server, and the aiohttp app served on 127.0.0.1 (a random port), with initData
signed by the test token as Telegram would."""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bot.services import Services, build_services
from bot.settings import Settings
from bot.web.initdata import sign_init_data
from bot.web.server import web_app_for
from memory.records import Owner, User
from tests.fakes.openai_server import FakeOpenAI

TOKEN = "123456:TEST-mini-app-token"
ALICE = {"id": 1001, "first_name": "Alice", "language_code": "en"}
BOB = {"id": 1002, "first_name": "Bob", "language_code": "zh-hans"}
STRANGER = {"id": 4242, "first_name": "Mallory"}


def init_data(person: dict = ALICE, *, age_seconds: float = 0, token: str = TOKEN) -> str:
    return sign_init_data(token, person, auth_date=int(time.time() - age_seconds), query_id="AAHtest")


def auth(person: dict = ALICE, **options) -> dict[str, str]:
    return {"Authorization": "tma " + init_data(person, **options)}


class MiniApp:
    def __init__(self, tmp_path: Path, fake: FakeOpenAI, **settings) -> None:
        options = {"db": tmp_path / "companion.db", "openai_base_url": fake.url, "openai_api_key": "test-key",
                   "model": "fake-model", "telegram_bot_token": TOKEN, "allowed_users": [ALICE["id"], BOB["id"]],
                   "facts_every": 0, **settings}
        self.settings = Settings(**options)
        self.fake = fake
        self.services: Services = build_services(self.settings)
        self.server = TestServer(web_app_for(self.services, TOKEN), host="127.0.0.1")
        self.client: TestClient | None = None

    async def start(self) -> "MiniApp":
        self.client = TestClient(self.server)
        await self.client.start_server()
        return self

    async def stop(self) -> None:
        await self.client.close()
        await self.services.close()

    @property
    def url(self) -> str:
        return str(self.server.make_url("/app"))

    def user(self, person: dict = ALICE) -> User:
        return self.services.store.directory.ensure_user("tg", person["id"], display_name=person["first_name"])

    async def call(self, method: str, path: str, person: dict | None = ALICE, **options):
        headers = auth(person) if person is not None else {}
        return await self.client.request(method, "/app/api/" + path, headers=headers, **options)

    async def json(self, method: str, path: str, person: dict = ALICE, status: int = 200, **options):
        response = await self.call(method, path, person, **options)
        assert response.status == status, (response.status, await response.text())
        return await response.json()

    async def say(self, text: str, person: dict = ALICE, reply: str = "ok"):
        """A turn in the user's private chat, as the Telegram app runs it; the request the
        fake model received."""
        user = self.user(person)
        engine = self.services.engine
        conversation = engine.conversation_for(Owner.user(user.id), engine.store.directory.persona_of(Owner.user(user.id)),
                                               user=user)
        self.fake.enqueue(reply)
        before = len(self.fake.chat_requests)
        await engine.submit(conversation.id, text, user=user)
        return self.fake.chat_requests[before]


def request_text(request) -> str:
    return "\n".join(str(m.get("content")) for m in request.messages)
