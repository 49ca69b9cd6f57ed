"""A failing main endpoint hands the turn to the fallback endpoint, which is recorded as
the model that answered; errors another endpoint would not fix are not handed over; the
main endpoint rests for a while after failing."""

import pytest

from memory.engine import Engine, ModelSettings
from memory.fallback import FallbackClient
from memory.model_client import ErrorKind, ModelClient
from memory.records import Owner
from personas import PersonaLibrary
from tests.fakes.openai_server import FakeOpenAI, Reply


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backup():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def setup(store, fake_openai, backup):
    ticks = Ticks()
    primary = ModelClient(base_url=fake_openai.url, api_key="main-key", deadline_seconds=1, stall_seconds=1,
                          max_backoff=0.05)
    fallback = ModelClient(base_url=backup.url, api_key="backup-key", deadline_seconds=5, stall_seconds=1)
    client = FallbackClient(primary, fallback, fallback_model="backup-model", cooldown_seconds=60, clock=ticks)
    engine = Engine(store, client, PersonaLibrary(), ModelSettings(model="fake-model", window=32_768,
                                                                    reply_tokens=512, tail_tokens=1024))
    alice = store.directory.ensure_user("tg", 1)
    conversation = engine.conversation_for(Owner.user(alice.id), user=alice)
    yield engine, conversation.id, alice, ticks
    await engine.close()


async def test_server_errors_go_to_the_fallback_which_is_recorded(setup, store, fake_openai, backup):
    engine, conversation_id, alice, _ = setup
    fake_openai.default_reply = lambda body: Reply.error(502, "bad gateway")
    backup.enqueue("Backup here.")
    result = await engine.submit(conversation_id, "hello?", user=alice)
    assert result.status == "complete" and result.reply.content == "Backup here."
    assert result.model == "backup-model" and result.completion.fallback_from == "fake-model"
    assert len(fake_openai.chat_requests) >= 2  # the main client retried before giving up
    sent = backup.chat_requests[0]
    assert sent.body["model"] == "backup-model" and sent.headers["Authorization"] == "Bearer backup-key"
    assert sent.messages == fake_openai.chat_requests[0].messages
    assert store.db.execute("SELECT model, outcome FROM usage").fetchall() == [("backup-model", "complete")]


async def test_rate_limits_and_dead_endpoints_fall_back_too(store, backup):
    ticks = Ticks()
    dead = ModelClient(base_url="http://127.0.0.1:9/v1", api_key="k", deadline_seconds=0.5, max_backoff=0.05)
    client = FallbackClient(dead, ModelClient(base_url=backup.url, api_key="k"), clock=ticks)
    completion = await client.stream_chat(model="same-model", messages=[{"role": "user", "content": "hi"}])
    assert (completion.model, completion.fallback_from) == ("same-model", "same-model")
    assert backup.chat_requests[0].body["model"] == "same-model"  # another provider of the same model
    await client.close()


async def test_the_main_endpoint_rests_after_failing_then_is_tried_again(setup, fake_openai, backup):
    engine, conversation_id, alice, ticks = setup
    fake_openai.enqueue(Reply.rate_limited(retry_after=30))  # longer than the deadline: no retry
    backup.enqueue("one", "two", "three")
    assert (await engine.submit(conversation_id, "a", user=alice)).model == "backup-model"
    assert len(fake_openai.chat_requests) == 1
    ticks.now += 30
    assert (await engine.submit(conversation_id, "b", user=alice)).model == "backup-model"
    assert len(fake_openai.chat_requests) == 1  # resting: straight to the fallback
    ticks.now += 31
    fake_openai.enqueue("main again")
    result = await engine.submit(conversation_id, "c", user=alice)
    assert (result.model, result.reply.content) == ("fake-model", "main again")
    assert result.completion.fallback_from is None


async def test_errors_a_fallback_would_not_fix_are_not_handed_over(setup, fake_openai, backup):
    engine, conversation_id, alice, _ = setup
    fake_openai.enqueue(Reply.error(401, "invalid key"))
    result = await engine.submit(conversation_id, "hi", user=alice)
    assert result.status == "failed" and result.error.kind is ErrorKind.AUTH
    fake_openai.enqueue(Reply("Half a sent", cut_after=1), Reply("ence, then cut", cut_after=1))
    result = await engine.submit(conversation_id, "again", user=alice)
    assert result.status == "interrupted" and result.error.kind is ErrorKind.STREAM
    assert backup.chat_requests == []


async def test_a_failing_fallback_reports_its_own_error(setup, fake_openai, backup):
    engine, conversation_id, alice, _ = setup
    fake_openai.default_reply = lambda body: Reply.error(503, "down")
    backup.enqueue(Reply.error(400, "unknown model backup-model"))
    result = await engine.submit(conversation_id, "hi", user=alice)
    assert result.status == "failed" and result.error.kind is ErrorKind.BAD_REQUEST
    assert "backup-model" in result.error.detail
