"""The model client against the fake OpenAI-compatible server, over real HTTP."""

import asyncio

import pytest

from memory.model_client import ErrorKind, ModelClient, ModelError
from tests.fakes.openai_server import Reply

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


class Recorder:
    def __init__(self):
        self.pieces: list[str] = []
        self.restarts = 0

    async def delta(self, text):
        self.pieces.append(text)

    async def restart(self):
        self.restarts += 1
        self.pieces.clear()

    @property
    def text(self):
        return "".join(self.pieces)


@pytest.fixture
async def client(fake_openai):
    client = ModelClient(base_url=fake_openai.url, api_key="k", deadline_seconds=8, stall_seconds=1,
                         max_backoff=0.2)
    yield client
    await client.close()


async def chat(client, recorder=None, **options):
    recorder = recorder or Recorder()
    return await client.stream_chat(model="fake-model", messages=MESSAGES, cache_key="conversation-7",
                                    on_delta=recorder.delta, on_restart=recorder.restart, **options)


async def test_streams_text_and_records_usage_with_cached_tokens(client, fake_openai):
    fake_openai.enqueue(Reply("Hello, friend. 你好！", prompt_tokens=120, cached_tokens=96))
    recorder = Recorder()
    completion = await chat(client, recorder, max_tokens=50, temperature=0.7)
    assert completion.text == recorder.text == "Hello, friend. 你好！"
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.cached_tokens) == (120, 96)
    body = fake_openai.chat_requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["prompt_cache_key"] == "conversation-7"
    assert body["max_tokens"] == 50 and body["temperature"] == 0.7
    assert fake_openai.chat_requests[0].headers["Authorization"] == "Bearer k"


async def test_reads_deepseek_cache_hit_tokens(client, fake_openai):
    fake_openai.enqueue(Reply("ok", prompt_tokens=100, cached_tokens=64, deepseek_cache_fields=True))
    completion = await chat(client)
    assert completion.usage.cached_tokens == 64


async def test_429_is_retried_after_retry_after(client, fake_openai):
    fake_openai.enqueue(Reply.rate_limited(retry_after=1), Reply("after the wait"))
    completion = await chat(client)
    assert completion.text == "after the wait"
    first, second = fake_openai.chat_requests
    assert second.at - first.at >= 0.9  # the client honoured Retry-After (a lower bound, not a timing)
    assert completion.attempts == 2


async def test_persistent_500_gives_up_with_a_server_error(fake_openai):
    client = ModelClient(base_url=fake_openai.url, api_key="k", deadline_seconds=2, max_backoff=0.3)
    fake_openai.default_reply = lambda body: Reply.error(500, "boom")
    with pytest.raises(ModelError) as caught:
        await chat(client)
    await client.close()
    assert caught.value.kind is ErrorKind.SERVER
    assert len(fake_openai.chat_requests) >= 2


@pytest.mark.parametrize("status,kind,message", [
    (400, ErrorKind.BAD_REQUEST, "no"), (401, ErrorKind.AUTH, "no"), (403, ErrorKind.AUTH, "no"),
    (404, ErrorKind.NOT_FOUND, "The model `fake` does not exist"), (404, ErrorKind.WRONG_URL, "no"),
    (422, ErrorKind.BAD_REQUEST, "no")])
async def test_client_errors_are_never_retried(client, fake_openai, status, kind, message):
    fake_openai.enqueue(Reply.error(status, message), Reply("should not be asked for"))
    with pytest.raises(ModelError) as caught:
        await chat(client)
    assert caught.value.kind is kind and caught.value.status == status
    assert len(fake_openai.chat_requests) == 1


async def test_context_length_error_is_reported_for_the_engine_to_shrink(client, fake_openai):
    fake_openai.enqueue(Reply.context_too_long(8192))
    with pytest.raises(ModelError) as caught:
        await chat(client)
    assert caught.value.kind is ErrorKind.CONTEXT_TOO_LONG
    assert "8192" in caught.value.detail
    assert len(fake_openai.chat_requests) == 1


@pytest.mark.parametrize("broken", [
    Reply("Once upon a time there was a cat", cut_after=2),
    Reply("Once upon a time there was a cat", malformed_after=2),
    Reply("Once upon a time there was a cat", finish_reason=None),
    Reply("Once upon a time there was a cat", stall_after=2, stall_seconds=5),
    Reply("Once upon a time there was a cat", error_after=2),
], ids=["cut", "malformed", "no-finish-reason", "stall", "error-in-stream"])
async def test_broken_stream_is_retried_once_from_scratch(client, fake_openai, broken):
    fake_openai.enqueue(broken, Reply("A complete answer."))
    recorder = Recorder()
    completion = await chat(client, recorder)
    assert completion.text == recorder.text == "A complete answer."
    assert recorder.restarts == 1
    assert len(fake_openai.chat_requests) == 2


async def test_comments_and_multi_line_events_are_read_as_server_sent_events(client, fake_openai):
    fake_openai.enqueue(Reply("Proxies send keep-alive comments.", keepalive=True, cached_tokens=3))
    recorder = Recorder()
    completion = await chat(client, recorder)
    assert completion.text == recorder.text == "Proxies send keep-alive comments."
    assert completion.finish_reason == "stop" and completion.usage.cached_tokens == 3


async def test_stream_broken_twice_keeps_the_partial_text(client, fake_openai):
    fake_openai.enqueue(Reply("Once upon a time", cut_after=1), Reply("Twice upon a time", cut_after=2))
    with pytest.raises(ModelError) as caught:
        await chat(client)
    assert caught.value.kind is ErrorKind.STREAM
    assert caught.value.partial == "Twice upon a time"[:16]
    assert len(fake_openai.chat_requests) == 2


async def test_stop_event_ends_the_reply_early(client, fake_openai):
    fake_openai.enqueue(Reply("word " * 200, chunk_size=5, chunk_delay=0.01))
    stop = asyncio.Event()
    recorder = Recorder()

    async def press_stop(text):
        await recorder.delta(text)
        if len(recorder.pieces) == 3:
            stop.set()

    completion = await client.stream_chat(model="m", messages=MESSAGES, on_delta=press_stop, stop=stop)
    assert completion.finish_reason == "stopped"
    assert completion.text == "word " * 3


async def test_unreachable_endpoint_is_a_connection_error():
    client = ModelClient(base_url="http://127.0.0.1:9/v1", api_key="k", deadline_seconds=1.5, max_backoff=0.2)
    with pytest.raises(ModelError) as caught:
        await chat(client)
    await client.close()
    assert caught.value.kind in (ErrorKind.CONNECTION, ErrorKind.TIMEOUT)
