"""Embeddings for hybrid recall, from any OpenAI-compatible `/v1/embeddings` endpoint.

Used only when `COMPANION_EMBEDDING_MODEL` is set. Messages are embedded in the
background after each turn (newest first, in batches, so an imported history catches up
over a few turns) and stored as unit-length float32 vectors; the embedding of a new
message is fetched just before its request is built (`before_turn`, bounded in time).

Search is exact: a dot product of the query with every vector of the owner's
conversations with the persona, held in memory as one numpy matrix per scope that grows
with the rows added since it last looked (a few milliseconds at 100k messages). That
avoids a vector-database dependency for sizes one person's chat history reaches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import openai

from memory.store import Store

log = logging.getLogger(__name__)

MAX_INPUT_CHARS = 4000  # well under the usual 8k-token input limit, for Chinese too
BATCH = 64


class Embedder:
    """Calls the embeddings endpoint with the official openai SDK."""

    def __init__(self, *, model: str, base_url: str | None, api_key: str | None,
                 dimensions: int | None = None, timeout: float = 20.0):
        self.model = model
        self.dimensions = dimensions
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                          max_retries=1, timeout=timeout)

    async def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Unit-length vectors for the texts, in order."""
        vectors: list[np.ndarray] = []
        for start in range(0, len(texts), BATCH):
            batch = [(text or " ")[:MAX_INPUT_CHARS] for text in texts[start:start + BATCH]]
            extra = {"dimensions": self.dimensions} if self.dimensions else {}
            # "float": local servers (Ollama, llama.cpp) do not all speak the SDK's default base64
            response = await self._client.embeddings.create(model=self.model, input=batch,
                                                            encoding_format="float", **extra)
            for item in sorted(response.data, key=lambda d: d.index):
                vectors.append(unit(np.asarray(item.embedding, dtype=np.float32)))
        return vectors

    async def close(self) -> None:
        await self._client.close()


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


@dataclass
class _Matrix:
    """The vectors of one scope: rows filled up to `size`, capacity doubling as it grows."""

    last_row: int = 0
    size: int = 0
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    conversations: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    vectors: np.ndarray | None = None

    def extend(self, rows: list[tuple[int, int, int, bytes]]) -> None:
        if not rows:
            return
        new = np.stack([np.frombuffer(row[3], dtype=np.float32) for row in rows])
        if self.vectors is None:
            self.vectors = np.zeros((0, new.shape[1]), dtype=np.float32)
        if new.shape[1] != self.vectors.shape[1]:  # the model's size changed: start over with the new one
            self.__init__()  # type: ignore[misc]
            self.vectors = np.zeros((0, new.shape[1]), dtype=np.float32)
        needed = self.size + len(rows)
        if needed > len(self.vectors):
            capacity = max(needed, 2 * len(self.vectors), 256)
            self.vectors = np.resize(self.vectors, (capacity, new.shape[1]))
            self.ids = np.resize(self.ids, capacity)
            self.conversations = np.resize(self.conversations, capacity)
        self.vectors[self.size:needed] = new
        self.ids[self.size:needed] = [row[1] for row in rows]
        self.conversations[self.size:needed] = [row[2] for row in rows]
        self.size = needed
        self.last_row = rows[-1][0]


class EmbeddingIndex:
    """Stored message embeddings and exact search over one scope's conversations."""

    def __init__(self, store: Store, model: str, *, max_scopes: int = 8):
        self.store = store
        self.db = store.db
        self.model = model
        self.max_scopes = max_scopes
        self._matrices: dict[tuple[int, ...], _Matrix] = {}

    def clear(self) -> None:
        """Drop every scope held in memory (after a forget: SQLite hands the freed ids of
        messages, conversations and embeddings out again, so what is held may point at
        someone else's rows now); each is loaded afresh from the table on its next search."""
        self._matrices.clear()

    def missing(self, conversation_ids: Sequence[int], limit: int = 256) -> list[tuple[int, str]]:
        """(id, text) of visible messages without an embedding, newest first."""
        marks = ",".join("?" * len(conversation_ids))
        return self.db.execute(
            f"SELECT m.id, m.content FROM messages m WHERE m.conversation_id IN ({marks}) "
            "AND m.status != 'hidden' AND NOT EXISTS (SELECT 1 FROM message_embeddings e "
            "WHERE e.message_id = m.id AND e.model = ?) ORDER BY m.id DESC LIMIT ?",
            [*conversation_ids, self.model, limit]).fetchall()

    def save(self, items: Sequence[tuple[int, np.ndarray]]) -> None:
        with self.db.atomic():
            for message_id, vector in items:
                # a new row (a new id), as the in-memory index loads rows by growing id
                self.db.execute("DELETE FROM message_embeddings WHERE message_id = ? AND model = ?",
                                [message_id, self.model])
                self.db.execute("INSERT INTO message_embeddings (message_id, model, vector) VALUES (?, ?, ?)",
                                [message_id, self.model, np.asarray(vector, dtype=np.float32).tobytes()])

    def _matrix(self, conversation_ids: Sequence[int]) -> _Matrix:
        key = tuple(sorted(conversation_ids))
        matrix = self._matrices.pop(key, None) or _Matrix()
        self._matrices[key] = matrix  # most recently used last
        while len(self._matrices) > self.max_scopes:
            self._matrices.pop(next(iter(self._matrices)))
        marks = ",".join("?" * len(key))
        rows = self.db.execute(
            f"SELECT e.id, e.message_id, m.conversation_id, e.vector FROM message_embeddings e "
            f"JOIN messages m ON m.id = e.message_id WHERE e.id > ? AND e.model = ? "
            f"AND m.conversation_id IN ({marks}) ORDER BY e.id", [matrix.last_row, self.model, *key]).fetchall()
        matrix.extend(rows)
        return matrix

    def search(self, conversation_ids: Sequence[int], query: np.ndarray, *, limit: int = 20,
               min_similarity: float = 0.0, exclude: tuple[int, int] | None = None) -> list[tuple[int, float]]:
        """(message id, cosine similarity) of the nearest messages, best first; `exclude`
        is (conversation id, first message id) of the window, whose messages are left out."""
        matrix = self._matrix(conversation_ids)
        if matrix.vectors is None or matrix.size == 0 or len(query) != matrix.vectors.shape[1]:
            return []
        scores = matrix.vectors[:matrix.size] @ query.astype(np.float32)
        if exclude is not None:
            conversation_id, first_id = exclude
            scores[(matrix.conversations[:matrix.size] == conversation_id)
                   & (matrix.ids[:matrix.size] >= first_id)] = -np.inf
        count = min(limit, matrix.size)
        best = np.argpartition(-scores, count - 1)[:count]
        best = best[np.argsort(-scores[best])]
        return [(int(matrix.ids[i]), float(scores[i])) for i in best if scores[i] >= min_similarity]
