"""The composition root: the one place that builds everything from the settings.

The CLI, the terminal chat, the Telegram app and the tests all call `build_services`;
nothing else constructs a Store, a ModelClient, an Engine or the service layer. A test
(or anything embedding the bot) hands in `Parts` to replace what the settings would
build: the clock, the store, the model client, the persona files, the context
providers, how links are resolved. Everything else is built as in production, so the
forget cascade (`forget_cascade`, handed to the Store once every feature is built) is
the production one in every test. The Store is handed its schema here too
(`memory.schema.migration_sets`).

Order: the store; the persona catalog; the model client (with its fallback); the
long-term memory, recall and timeline providers; companion life (model menu and
router, safety, audio: bot/life.py); documents and novels; the engine; check-ins (they write
through the engine); and on top the service layer every face calls (memory/service).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Sequence

from bot.life import Life, build_checkins, build_life, with_fallback
from bot.settings import Settings
from memory.compaction import CompactionPolicy
from memory.documents import PUBLIC_ONLY, AddressPolicy, Resolver
from memory.embeddings import Embedder
from memory.engine import ContextProvider, Engine, ModelSettings
from memory.longterm import LongTermMemory
from memory.model_client import ModelClient
from memory.persona_catalog import PersonaCatalog
from memory.reading import Reading, build_reading
from memory.recall import RecallProvider
from memory.routing import ModelRouter
from memory.schema import migration_sets, open_postgres_store
from memory.service import Admission, CompanionService, Policy, VoiceAbility
from memory.service.self_service import SelfService
from memory.records import Owner, User, utc_now
from memory.store import Store, StoreBase
from memory.timeline import TimelineProvider
from personas import PersonaLibrary


@dataclass
class Parts:
    """What to use instead of what the settings would build (None: build it)."""

    clock: Callable = utc_now  # the time source of the store, the engine and the timeline
    store: StoreBase | None = None
    client: ModelClient | None = None  # the main model client (no fallback is added around it)
    library: PersonaLibrary | None = None  # persona files
    providers: Sequence[ContextProvider] | None = None  # the engine's context providers (None: all of ours)
    models: ModelRouter | None = None  # who answers whom (None: the settings' menu and the users' choices)
    link_resolver: Resolver | None = None  # how links in messages are resolved (tests inject one)
    link_policy: AddressPolicy = field(default=PUBLIC_ONLY)  # which addresses links may reach


@dataclass
class Services:
    settings: Settings
    store: StoreBase
    personas: PersonaCatalog
    client: ModelClient
    engine: Engine
    reading: Reading | None = None  # documents and novels
    memory: LongTermMemory | None = None  # pinned facts (/memory), summaries, compaction
    recall: RecallProvider | None = None
    life: Life | None = None  # voice, check-ins, model choice, safety (bot/life.py)
    service: CompanionService | None = None  # what every face calls (memory/service)

    @property
    def self_service(self) -> SelfService:
        """The user's own data as whole views, over the service layer (the Mini App's)."""
        return SelfService(self.service)

    async def close(self) -> None:
        if self.reading is not None:
            await self.reading.close()
        await self.engine.close()
        if self.recall is not None:
            await self.recall.close()
        if self.life is not None:
            await self.life.close()
        self.store.close()

    def resolve_user(self, spec: str) -> User:
        """`tg:<id>` names a Telegram user; anything else is a local (terminal) user name."""
        if spec.startswith("tg:"):
            external_id = spec[3:].strip()
            if not external_id.lstrip("-").isdigit():
                raise ValueError(f"'{spec}' is not a Telegram user: use tg:<numeric id>")
            user = self.store.directory.find_user("tg", external_id)
            if user is None:
                raise ValueError(f"no Telegram user {external_id} has talked to the bot yet")
            return user
        return self.store.directory.ensure_user("local", spec, display_name=spec)


def build_services(settings: Settings, parts: Parts | None = None, *, clock: Callable | None = None,
                   link_resolver: Resolver | None = None, link_policy: AddressPolicy | None = None) -> Services:
    """Everything, from the settings and `parts`. (`clock`, `link_resolver` and
    `link_policy` are shorthands for the same fields of `parts`.)"""
    parts = parts or Parts()
    if clock is not None:
        parts.clock = clock
    if link_resolver is not None:
        parts.link_resolver = link_resolver
    if link_policy is not None:
        parts.link_policy = link_policy
    clock = parts.clock
    store = parts.store or open_database(settings, clock)
    library = parts.library or PersonaLibrary([settings.personas_dir] if settings.personas_dir else [])
    personas = PersonaCatalog(store, library)
    client = parts.client or with_fallback(settings, ModelClient(
        base_url=settings.openai_base_url,
        api_key=settings.api_key(),
        deadline_seconds=settings.model_deadline_seconds,
        stall_seconds=settings.stream_stall_seconds,
        send_cache_key=settings.prompt_cache_key,
        slots="auto" if settings.model_slots is None else settings.model_slots,
        preempt_background=settings.model_preempt,
    ))
    memory, recall, timeline = build_memory(settings, store, client, clock=clock)
    life = build_life(settings, store)
    reading = build_reading(store, client, personas, model=settings.model, window=settings.window,
                            reply_tokens=settings.reply_reserve, limits=settings.document_limits,
                            share=settings.documents_share, resolver=parts.link_resolver, policy=parts.link_policy)
    providers = [reading.provider, memory, recall, timeline] if parts.providers is None else list(parts.providers)
    engine = Engine(
        store, client, personas,
        ModelSettings(model=settings.model, window=settings.window, reply_tokens=settings.reply_reserve,
                      tail_tokens=settings.tail_budget, temperature=settings.temperature),
        providers=providers,
        operator_rules=settings.system_prompt,
        default_timezone=settings.timezone,
        clock=clock,
        models=parts.models or life.router,
    )
    life.checkins = build_checkins(settings, engine)
    store.set_forget_cascade(forget_cascade(personas, recall, memory, life, reading))
    store.set_compact_steps([reading.documents.optimize_index])
    service = build_service(settings, engine, personas, life, memory=memory, reading=reading)
    return Services(settings, store, personas, client, engine, reading, memory, recall, life, service)


def forget_cascade(personas: PersonaCatalog, recall: RecallProvider, memory: LongTermMemory,
                   life: Life, reading: Reading) -> list[Callable[[int], None]]:
    """What a user's forget erases besides the core rows, in order: their private personas;
    recall's in-memory indexes (they may point at the rows about to go); what long-term
    memory derived from them (group summaries re-made without them, their facts: it reads
    their messages, so before those go); the life tables; their documents and what is
    held about them."""
    return [personas.forget_user, recall.forget_user, memory.forget_user, life.forget_user, reading.forget_user]


def policy_of(settings: Settings) -> Policy:
    """The operator's admission rules and prices, as the service layer takes them."""
    return Policy.of(daily_tokens=settings.daily_tokens, cached_token_weight=settings.cached_token_weight,
                     default_timezone=settings.timezone, admins=settings.admins,
                     allowed_users=settings.allowed_users, open_to_all=settings.open_to_all,
                     price_input=settings.price_input, price_cached_input=settings.price_cached_input,
                     price_output=settings.price_output, price_currency=settings.price_currency)


def build_service(settings: Settings, engine: Engine, personas: PersonaCatalog, life: Life, *,
                  memory: LongTermMemory | None, reading: Reading | None) -> CompanionService:
    audio = life.audio
    return CompanionService(
        engine, personas, Admission(engine.store, policy_of(settings), life.safety),
        memory=memory, reading=reading, choices=life.choices, checkins=life.checkins, models=life.menu,
        voice=VoiceAbility(speaks=bool(audio and audio.speaks), listens=bool(audio and audio.listens)))


def open_database(settings: Settings, clock: Callable = utc_now) -> StoreBase:
    """The Store the settings name: PostgreSQL when COMPANION_DATABASE_URL is set, else the
    SQLite file COMPANION_DB (created on first use)."""
    if settings.database_url is not None:
        return open_postgres_store(settings.database_url.get_secret_value(), clock=clock)
    return Store(settings.db, migration_sets=migration_sets(), synchronous=settings.db_durability.upper(),
                 clock=clock)


def build_memory(settings: Settings, store: Store, client: ModelClient, *,
                 clock=utc_now) -> tuple[LongTermMemory, RecallProvider, TimelineProvider]:
    """The long-term memory providers. Documents, when present, go before `memory` in the
    provider list, so the static part reads documents, then memory."""
    memory = LongTermMemory(
        store, client, model=settings.model, task_model=settings.memory_model,
        policy=CompactionPolicy(compact_at=settings.compact_at, compact_to=settings.compact_to,
                                summary_share=settings.summary_share),
        facts_every=settings.facts_every, default_timezone=settings.timezone)
    embedder = None
    if settings.embedding_model:
        base_url, api_key = settings.embedding_endpoint()
        embedder = Embedder(model=settings.embedding_model, base_url=base_url, api_key=api_key,
                            dimensions=settings.embedding_dimensions)
    recall = RecallProvider(store, embedder=embedder, default_timezone=settings.timezone, clock=clock)
    timeline = TimelineProvider(store, default_timezone=settings.timezone,
                                session_gap=timedelta(minutes=settings.session_gap_minutes), clock=clock)
    return memory, recall, timeline


__all__ = ["Owner", "Parts", "Services", "build_services"]
