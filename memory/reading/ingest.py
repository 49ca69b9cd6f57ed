"""Ingestion: a file, bytes or a link in, a stored document out (or nothing at all).

One path for every face (the `companion ingest` CLI, Telegram uploads, links in
messages):

  download  (links only) `memory.documents.fetch_url`, with its address checks;
  extract   `memory.documents` turns the bytes into normalized text with chapters
            (any text encoding, EPUB, PDF, DOCX, HTML; zip-bomb and size limits);
  index     the text is cut into passages (at paragraphs, never across a chapter);
            every passage's o200k tokens are counted once (a chapter's tokens and the
            document's are sums of its passages'), its full-text index form (CJK as
            bigrams) is made a batch at a time in numpy (`index_forms`), and the
            passages with their index rows are written by `DocumentStore.save` in
            short transactions, visible only when complete.

How the work is spread over two cores. Only SQLite's FTS5 indexing (the largest
part), tiktoken's counting and numpy work without the GIL; extraction, the tokenizer's
loading and everything else in Python hold it. So:

  * the writer (the calling thread) extracts, cuts the passages, then writes them a
    batch at a time, each batch with one statement per table (`DocumentStore.save`),
    so that it spends the indexing outside the GIL instead of taking it back per row;
    the first batch is larger (FIRST_BATCH, then BATCH): fewer transactions, and
    fewer index segments to write and merge;
  * a worker thread makes the batches a few ahead (`prefetched`): their index forms,
    FORMS_CHUNK passages per numpy pass (small arrays stay in the cache: a third less
    CPU than a whole batch at once), and the JSON the writer hands to SQLite
    (`PassageBatch`);
  * `TokenCounter`'s thread starts once the first batch is handed to the writer, so
    the tokenizer's loading (a quarter of a second, holding the GIL) overlaps with the
    first batch's indexing rather than with the extraction (both hold the GIL: that
    only slowed the extraction down), then counts, a slice of passages at a time;
  * the writer checkpoints the index pages into the database file while the counts
    are still being made, then counts the slices left itself, and writes the counts
    with the last transaction, the one that makes the document ready.

Where the time goes is measured on every run (`IngestResult.stages`, seconds per
stage: extract, passages, rows, index forms, index, tokenizer, tokens, tokens wait,
commit, checkpoint; the tokenizer, tokens and index forms run beside the writes, so the
stages add up to more than the wall time) and reported by `python -m benchmarks
documents`.

The synchronous entry points do CPU work and blocking I/O: call them from a worker
thread (`asyncio.to_thread`) in async code, as `ingest_url` does. Progress goes to a
`Progress` callback as (stage, percent); a `CancelToken` is checked between steps. A
refusal is a `DocumentError`; cancellation raises `Cancelled`; in both cases, and on
any other failure, nothing is stored. The same text uploaded again by the same user
(same normalized text, whatever the file) returns the stored document.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue
from typing import Callable, Generator, Iterator, TypeVar

from memory.documents import (
    PUBLIC_ONLY,
    AddressPolicy,
    DocumentError,
    DocumentLimits,
    ErrorCode,
    ExtractedDocument,
    Resolver,
    extract_bytes,
    extract_path,
    fetch_url,
    split_passages,
)
from memory.documents.extract import too_large
from memory.reading.index_forms import index_forms
from memory.reading.progress import CancelToken, Progress, Stages
from memory.reading.store import (
    DocumentHeader,
    DocumentStore,
    PassageBatch,
    PreparedPassage,
    StoredChapter,
    StoredDocument,
)
from memory.records import User
from memory.tokens import load_encoding

PASSAGE_CHARS = 1000
BATCH = 512  # passages per write transaction after the first (bounds memory and lock time)
FIRST_BATCH = 1024  # the first transaction's passages: fewer transactions (and index segments) per book
FORMS_CHUNK = 64  # passages whose index forms are made in one numpy pass (small arrays, in the cache)
WEIGHTS = {"download": 0.1, "extract": 0.2, "index": 0.7}
T = TypeVar("T")


@dataclass(frozen=True)
class IngestResult:
    document: StoredDocument
    duplicate: bool  # the same text was already stored for this user
    seconds: float  # the whole ingestion: extraction, token counts, index
    volumes: int = 0  # volume headings above the chapters
    toc_entries: int = 0  # table-of-contents lines recognised (front matter, not chapters)
    stripped_lines: int = 0  # banner, advertisement and running-header lines dropped
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage (see the module doc)

    def as_json(self) -> dict:
        """The `companion ingest --json` object."""
        d = self.document
        return {"id": d.id, "title": d.title, "format": d.format, "encoding": d.encoding, "chars": d.chars,
                "tokens": d.tokens, "chapters": d.chapter_count, "volumes": self.volumes,
                "toc_entries": self.toc_entries, "stripped_lines": self.stripped_lines,
                "seconds": round(self.seconds, 3), "stages": {k: round(v, 3) for k, v in self.stages.items()}}


class Ingestor:
    def __init__(self, documents: DocumentStore, limits: DocumentLimits = DocumentLimits(), *,
                 resolver: Resolver | None = None, policy: AddressPolicy = PUBLIC_ONLY,
                 passage_chars: int = PASSAGE_CHARS):
        self.documents = documents
        self.limits = limits
        self.resolver = resolver
        self.policy = policy
        self.passage_chars = passage_chars

    def ingest_bytes(self, data: bytes, filename: str, owner: User, *, source: str | None = None,
                     content_type: str | None = None, charset: str | None = None,
                     progress: Progress | None = None, cancel: CancelToken | None = None) -> IngestResult:
        started = time.perf_counter()
        stages = Stages(progress, WEIGHTS)
        stages.report("extract")
        extracted = extract_bytes(data, filename, self.limits, content_type=content_type, charset=charset)
        return self._store(extracted, owner, source or filename, stages, cancel, started)

    def ingest_path(self, path: str | Path, owner: User, *, progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> IngestResult:
        started = time.perf_counter()
        stages = Stages(progress, WEIGHTS)
        stages.report("extract")
        path = Path(path)
        try:
            extracted = extract_path(path, self.limits)
        except FileNotFoundError:
            raise DocumentError(ErrorCode.EMPTY, f"There is no file {path}. Check the path.") from None
        except IsADirectoryError:
            raise DocumentError(ErrorCode.UNSUPPORTED, f"{path} is a folder. Name a file.") from None
        except PermissionError:
            raise DocumentError(ErrorCode.UNSUPPORTED, f"{path} cannot be read (permission denied).") from None
        return self._store(extracted, owner, path.name, stages, cancel, started)

    async def ingest_url(self, url: str, owner: User, *, progress: Progress | None = None,
                         cancel: CancelToken | None = None) -> IngestResult:
        """Download a link (refusing private, loopback and link-local addresses after each
        DNS resolution and redirect) and ingest it like an upload."""
        started = time.perf_counter()
        stages = Stages(progress, WEIGHTS)
        stages.report("download")
        fetched = await fetch_url(url, self.limits, resolver=self.resolver, policy=self.policy)
        if cancel is not None:
            cancel.check()

        def work() -> IngestResult:
            stages.report("extract")
            extracted = extract_bytes(fetched.data, fetched.filename, self.limits,
                                      content_type=fetched.content_type, charset=fetched.charset)
            return self._store(extracted, owner, fetched.url, stages, cancel, started)

        return await asyncio.to_thread(work)

    def check_size(self, size: int | None) -> None:
        """Refuse a file over the byte limit before downloading it."""
        if size is not None and size > self.limits.max_document_bytes:
            raise too_large(size, self.limits)

    # -- the shared tail ------------------------------------------------------------------
    def _store(self, extracted: ExtractedDocument, owner: User, source: str, stages: Stages,
               cancel: CancelToken | None, started: float) -> IngestResult:
        stages.done("extract")
        timings = {"extract": time.perf_counter() - started}
        if cancel is not None:
            cancel.check()
        text = extracted.text
        if not text.strip():
            raise DocumentError(ErrorCode.NO_TEXT, "The file holds no text. Send a document with text in it.")
        sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
        header = DocumentHeader(
            owner_user_id=owner.id, title=(extracted.title or "Untitled").strip()[:300], author=extracted.author,
            format=extracted.format, encoding=extracted.encoding, source=source, sha256=sha256, chars=len(text),
            chapter_source=extracted.chapter_source,
            chapters=[StoredChapter(c.index, c.title, c.number, c.start, c.end, 0) for c in extracted.chapters])
        cut = time.perf_counter()
        pieces = self.pieces(extracted)
        timings["passages"] = time.perf_counter() - cut
        counter = TokenCounter([piece[3] for piece in pieces], cancel, timings)
        try:
            stored, duplicate = self.documents.save(
                header, lambda: prefetched(self._prepared(pieces, cancel, timings, counter.start)), cancel=cancel,
                on_batch=lambda done: stages.report("index", done / len(pieces)), timings=timings,
                counts=counter.result)
        finally:
            counter.close()
        stages.done("index")
        return IngestResult(stored, duplicate, time.perf_counter() - started, extracted.volumes,
                            extracted.toc_entries, len(extracted.stripped_lines), timings)

    def pieces(self, extracted: ExtractedDocument) -> list[tuple[int | None, int, int, str]]:
        """(chapter_index, start, end, text) of every passage. Each passage runs to the
        start of the next, so the pieces joined give back the text exactly."""
        text = extracted.text
        spans = split_passages(text, extracted.chapters, self.passage_chars)
        starts = [0] + [span.start for span in spans[1:]]
        ends = starts[1:] + [len(text)]
        return [(span.chapter_index, start, end, text[start:end]) for span, start, end in zip(spans, starts, ends)]

    @staticmethod
    def _prepared(pieces: list[tuple[int | None, int, int, str]], cancel: CancelToken | None,
                  timings: dict[str, float], first_ready: Callable[[], None]) -> Iterator[PassageBatch]:
        """Batches of passages with their index forms, ready for SQLite (their tokens
        come from a `TokenCounter`). `first_ready()` is called once the first batch is
        made, just before the writer gets it."""
        timings.setdefault("index forms", 0.0)
        first = 0
        while first < len(pieces):
            if cancel is not None:
                cancel.check()
            batch = pieces[first:first + (FIRST_BATCH if first == 0 else BATCH)]
            started = time.perf_counter()
            bodies: list[str] = []
            for chunk in range(0, len(batch), FORMS_CHUNK):
                bodies += index_forms([piece[3] for piece in batch[chunk:chunk + FORMS_CHUNK]])
            timings["index forms"] += time.perf_counter() - started
            if first == 0:
                first_ready()
            first += len(batch)
            yield PassageBatch.of([PreparedPassage(chapter, start, end, 0, piece, body)
                                   for (chapter, start, end, piece), body in zip(batch, bodies)])


class TokenCounter:
    """The o200k counts of the passages, made while the passages and their index are
    written: loading the tokenizer (a quarter of a second in a fresh process) and
    counting (tiktoken, without the GIL) overlap with SQLite's work instead of coming
    before it. A thread of its own loads the tokenizer and counts from the first
    passage on, a slice of passages at a time; `result()`, called once the writes are
    done, counts the slices left in the calling thread too (two cores, two counters),
    then returns the counts in order, or raises what the counting raised. `close()`
    stops it early (a failed or cancelled ingestion)."""

    SLICE = 64  # passages a counter takes at a time

    def __init__(self, texts: list[str], cancel: CancelToken | None, timings: dict[str, float]):
        self._texts = texts
        self._cancel = cancel
        self._timings = timings
        self._counts = [0] * len(texts)
        self._next = 0  # the first passage no counter has taken yet
        self._lock = threading.Lock()
        self._loaded = threading.Event()
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="ingest-tokens", daemon=True)
        self._started = False

    def start(self) -> None:
        """Start loading and counting (once; `result()` starts it if nobody did)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._thread.start()

    def _work(self) -> None:
        try:
            started = time.perf_counter()
            load_encoding()
            loaded = time.perf_counter()
            self._timings["tokenizer"] = loaded - started
            self._loaded.set()
            self._count()
            self._timings["tokens"] = time.perf_counter() - loaded
        except BaseException as error:  # noqa: BLE001 - handed to whoever asks for the result
            self._error = error
            self._stop.set()
        finally:
            self._loaded.set()

    def _count(self) -> None:
        """Count slices until none is left (in whichever thread calls it)."""
        # One text at a time: tiktoken's batch call spreads a batch over a thread pool,
        # which on a busy two-core machine costs more CPU than it saves.
        encode = load_encoding().encode_ordinary
        texts, counts = self._texts, self._counts
        while not self._stop.is_set():
            if self._cancel is not None:
                self._cancel.check()
            with self._lock:
                first = self._next
                self._next += self.SLICE
            if first >= len(texts):
                return
            for number in range(first, min(first + self.SLICE, len(texts))):
                counts[number] = len(encode(texts[number]))

    def result(self) -> list[int]:
        self.start()
        self._loaded.wait()
        if self._error is None:
            self._count()
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._stop.is_set():
            raise RuntimeError("token counting was stopped")
        return self._counts

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            started = self._started
        if started:
            self._thread.join()


def prefetched(items: Iterator[T], depth: int = 3) -> Generator[T, None, None]:
    """Iterate `items` in a worker thread, `depth` items ahead of the consumer.

    Exceptions in the worker reach the consumer; when the consumer stops (or fails),
    closing this generator stops the worker."""
    queue: Queue = Queue(depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, end))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put((False, error))

    worker = threading.Thread(target=work, name="ingest-prepare", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = queue.get()
            if not ok:
                raise item
            if item is end:
                return
            yield item
    finally:
        stop.set()
        worker.join()
