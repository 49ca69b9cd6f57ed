"""Documents and novels as a product feature: storing what users upload, reading it to
the model losslessly, and playing the characters of a novel.

Built on the extraction library `memory.documents` (bytes -> normalized text with
chapters). Module map:

    schema         the `companion.documents` migration set (documents, chapters,
                   passages and their full-text index, attachments, summaries, caches)
    store          `DocumentStore`: every read and write of those tables
    ingest         `Ingestor`: file / bytes / link -> stored document, atomically,
                   with progress and cancellation
    provider       `ReadingProvider`: the engine's context provider; verbatim documents
                   or chapter summaries in the static part, relevant passages in the tail
    render         the exact text of those blocks (delimited as reading material)
    summaries      `Summarizer`: chapter summaries made once by the model, in the background
    characters     `CharacterFinder`: the main characters of a novel
    novel_persona  `NovelPersonas`: a persona (with lorebook) from one character, timeline
    model_json     robust parsing of JSON written by models
    ask            one request to the model for these jobs (document text never as instructions)
    progress       progress reports and cancellation tokens
    service        `Reading`, the bundle the composition root builds

Nothing here imports aiogram, click or `bot/`.
"""

from memory.reading.characters import Character, CharacterFinder
from memory.reading.ingest import Ingestor, IngestResult
from memory.reading.novel_persona import NovelPersonas
from memory.reading.progress import Cancelled, CancelToken, Progress
from memory.reading.provider import DOCUMENTS_SHARE, PlannedDocument, ReadingProvider, context_for
from memory.reading.service import Reading, build_reading
from memory.reading.store import Attachment, DocumentStore, StoredChapter, StoredDocument
from memory.reading.summaries import Summarizer

__all__ = [
    "DOCUMENTS_SHARE",
    "Attachment",
    "CancelToken",
    "Cancelled",
    "Character",
    "CharacterFinder",
    "DocumentStore",
    "IngestResult",
    "Ingestor",
    "NovelPersonas",
    "PlannedDocument",
    "Progress",
    "Reading",
    "ReadingProvider",
    "StoredChapter",
    "StoredDocument",
    "Summarizer",
    "build_reading",
    "context_for",
]
