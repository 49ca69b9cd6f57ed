"""The model client against the fake OpenAI-compatible server, over real HTTP."""

import asyncio
import socket
import time

import pytest

from bot.texts import error_text
from memory.model_client import ErrorKind, ModelClient, ModelError, classify
from tests.fakes.bad_endpoints import BadEndpoint, closed_port
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


# -- endpoint errors that say what is wrong -------------------------------------------


@pytest.fixture
def bad_endpoint():
    with BadEndpoint() as server:
        yield server


async def failure(base_url, **options):
    """The error a chat against `base_url` ends with, and how long that took."""
    client = ModelClient(base_url=base_url, api_key="k", deadline_seconds=options.pop("deadline", 60),
                         **{"stall_seconds": 45, "max_backoff": 0.2, **options})
    started = time.monotonic()
    with pytest.raises(ModelError) as caught:
        await chat(client)
    await client.close()
    return caught.value, time.monotonic() - started


async def test_a_closed_port_is_unreachable_within_seconds_not_after_the_deadline():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    error, seconds = await failure(url)  # the deadline is a minute: unreachable gives up first
    assert error.kind is ErrorKind.UNREACHABLE and url in error.detail and "refused" in error.detail
    assert seconds < 20
    told = error_text(str(error.kind), "en", error.detail)
    assert url in told and "OPENAI_BASE_URL" in told


async def test_tls_to_a_plain_http_server_is_a_tls_error(fake_openai):
    url = fake_openai.url.replace("http://", "https://")
    error, _ = await failure(url)
    assert error.kind is ErrorKind.TLS and url in error.detail
    assert fake_openai.chat_requests == []


def test_a_name_that_does_not_resolve_is_a_dns_error():
    """A connection error whose cause is the resolver's, as the HTTP layers raise it (no
    test may ask a real resolver)."""
    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as cause:
            raise ConnectionError("Cannot connect to host no-such-host.invalid:80") from cause
    except ConnectionError as exc:
        error = classify(exc, "http://no-such-host.invalid/v1")
    assert error.kind is ErrorKind.DNS and "no-such-host.invalid" in error.detail
    assert "host name" in error_text(str(error.kind), "en", error.detail)


@pytest.mark.parametrize("mode", ["fastapi_404", "html_404", "html_200"])
async def test_a_page_that_is_not_a_chat_endpoint_names_the_base_url(bad_endpoint, mode):
    error, _ = await failure(bad_endpoint.url(mode))
    assert error.kind is ErrorKind.WRONG_URL and bad_endpoint.url(mode) in error.detail
    told = error_text(str(error.kind), "en", error.detail)
    assert "OPENAI_BASE_URL" in told and "/v1" in told and "COMPANION_MODEL" not in told


async def test_a_base_url_without_v1_names_the_base_url(fake_openai):
    error, _ = await failure(fake_openai.base_url)  # the fake serves /v1/chat/completions only
    assert error.kind is ErrorKind.WRONG_URL
    assert "OPENAI_BASE_URL" in error_text(str(error.kind), "en", error.detail)


@pytest.mark.parametrize("mode", ["ollama_no_model", "openai_no_model"])
async def test_only_a_real_unknown_model_names_companion_model(bad_endpoint, mode):
    error, _ = await failure(bad_endpoint.url(mode))
    assert error.kind is ErrorKind.NOT_FOUND and error.status == 404
    told = error_text(str(error.kind), "en", error.detail)
    assert "COMPANION_MODEL" in told and "OPENAI_BASE_URL" not in told


async def test_a_server_that_never_answers_is_a_timeout_naming_it(bad_endpoint):
    error, _ = await failure(bad_endpoint.url("hang"), deadline=2, stall_seconds=0.5)
    assert error.kind is ErrorKind.TIMEOUT and bad_endpoint.url("hang") in error.detail
