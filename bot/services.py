"""The composition root: builds the services every face (CLI, terminal chat, Telegram)
uses from the settings, in one place. Nothing else constructs a Store, a ModelClient
or an Engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.life import Life, build_life, with_fallback
from bot.settings import Settings
from memory.compaction import CompactionPolicy
from memory.embeddings import Embedder
from memory.documents import PUBLIC_ONLY, AddressPolicy, Resolver
from memory.engine import Engine, ModelSettings
from memory.longterm import LongTermMemory
from memory.model_client import ModelClient
from memory.persona_catalog import PersonaCatalog
from memory.reading import Reading, build_reading
from memory.recall import RecallProvider
from memory.service import Admission, CompanionService, Policy, VoiceAbility
from memory.service.self_service import SelfService
from memory.store import Owner, Store, User, utc_now
from memory.timeline import TimelineProvider
from personas import PersonaLibrary


@dataclass
class Services:
    settings: Settings
    store: Store
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
            user = self.store.find_user("tg", external_id)
            if user is None:
                raise ValueError(f"no Telegram user {external_id} has talked to the bot yet")
            return user
        return self.store.ensure_user("local", spec, display_name=spec)


def build_services(settings: Settings, *, clock=utc_now, link_resolver: Resolver | None = None,
                   link_policy: AddressPolicy = PUBLIC_ONLY) -> Services:
    """`clock`: the time source of the store and the engine (tests pass a controllable one);
    `link_resolver`/`link_policy`: how links in messages are resolved and which addresses
    they may reach (tests inject a resolver; production keeps the defaults)."""
    store = Store(settings.db, synchronous=settings.db_durability.upper(), clock=clock)
    personas = PersonaCatalog(store, PersonaLibrary([settings.personas_dir] if settings.personas_dir else []))
    client = ModelClient(
        base_url=settings.openai_base_url,
        api_key=settings.api_key(),
        deadline_seconds=settings.model_deadline_seconds,
        stall_seconds=settings.stream_stall_seconds,
        send_cache_key=settings.prompt_cache_key,
    )
    client = with_fallback(settings, client)
    memory, recall, timeline = build_memory(settings, store, client, clock=clock)
    life = build_life(settings, store)
    reading = build_reading(store, client, personas, model=settings.model, window=settings.window,
                            reply_tokens=settings.reply_reserve, limits=settings.document_limits,
                            share=settings.documents_share, resolver=link_resolver, policy=link_policy)
    engine = Engine(
        store, client, personas,
        ModelSettings(model=settings.model, window=settings.window, reply_tokens=settings.reply_reserve,
                      tail_tokens=settings.tail_budget, temperature=settings.temperature),
        providers=[reading.provider, memory, recall, timeline],
        operator_rules=settings.system_prompt,
        default_timezone=settings.timezone,
        clock=clock,
        models=life.router,
    )
    life.attach(engine)
    service = build_service(settings, engine, personas, life, memory=memory, reading=reading)
    return Services(settings, store, personas, client, engine, reading, memory, recall, life, service)


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
    recall = RecallProvider(store, embedder=embedder, default_timezone=settings.timezone)
    store.forget_hooks.append(memory.forget_user)
    timeline = TimelineProvider(store, default_timezone=settings.timezone,
                                session_gap=timedelta(minutes=settings.session_gap_minutes), clock=clock)
    return memory, recall, timeline


__all__ = ["Owner", "Services", "build_services"]
