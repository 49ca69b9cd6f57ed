"""The documents feature as one bundle of services, built once by the composition root.

Sizes of the model jobs follow the window: a summary unit, a character-finding chunk
and the excerpts for a character profile each take a fraction of what the model can
read at once, so the same code works with an 8k local model and a 1M-token one.
"""

from __future__ import annotations

from dataclasses import dataclass

from memory.documents import PUBLIC_ONLY, AddressPolicy, DocumentLimits, Resolver
from memory.model_client import ModelClient
from memory.persona_catalog import PersonaCatalog
from memory.reading.characters import CharacterFinder
from memory.reading.ingest import Ingestor
from memory.reading.novel_persona import NovelPersonas
from memory.reading.provider import DOCUMENTS_SHARE, ReadingProvider
from memory.reading.store import DocumentStore
from memory.reading.summaries import Summarizer
from memory.store import Store


@dataclass
class Reading:
    documents: DocumentStore
    ingestor: Ingestor
    summarizer: Summarizer
    provider: ReadingProvider
    characters: CharacterFinder
    personas: NovelPersonas

    async def close(self) -> None:
        await self.summarizer.close()

    def forget_user(self, user_id: int) -> None:
        """The reading feature's step of the forget cascade: the user's documents and
        passages, then what is held in memory by document id (ids are given again)."""
        self.documents.forget_user(user_id)
        self.summarizer.forget_user(user_id)
        self.provider.forget_user(user_id)


def build_reading(store: Store, client: ModelClient, catalog: PersonaCatalog, *, model: str, window: int,
                  reply_tokens: int, limits: DocumentLimits = DocumentLimits(), share: float = DOCUMENTS_SHARE,
                  resolver: Resolver | None = None, policy: AddressPolicy = PUBLIC_ONLY) -> Reading:
    readable = max(1024, window - reply_tokens)
    documents = DocumentStore(store)
    summarizer = Summarizer(documents, client, model=model, unit_tokens=min(8000, readable // 3))
    return Reading(
        documents=documents,
        ingestor=Ingestor(documents, limits, resolver=resolver, policy=policy),
        summarizer=summarizer,
        provider=ReadingProvider(documents, summarizer, share=share),
        characters=CharacterFinder(documents, client, model=model, chunk_tokens=min(6000, readable // 3)),
        personas=NovelPersonas(documents, client, catalog, model=model, excerpt_tokens=min(12000, readable // 2)),
    )
