"""The composition root: builds the services every face (CLI, terminal chat, Telegram)
uses from the settings, in one place. Nothing else constructs a Store, a ModelClient
or an Engine."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings
from memory.documents import PUBLIC_ONLY, AddressPolicy, Resolver
from memory.engine import Engine, ModelSettings
from memory.model_client import ModelClient
from memory.persona_catalog import PersonaCatalog
from memory.reading import Reading, build_reading
from memory.store import Owner, Store, User
from personas import PersonaLibrary


@dataclass
class Services:
    settings: Settings
    store: Store
    personas: PersonaCatalog
    client: ModelClient
    engine: Engine
    reading: Reading

    async def close(self) -> None:
        await self.reading.close()
        await self.engine.close()
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


def build_services(settings: Settings, *, link_resolver: Resolver | None = None,
                   link_policy: AddressPolicy = PUBLIC_ONLY) -> Services:
    """`link_resolver`/`link_policy`: how links in messages are resolved and which
    addresses they may reach (tests inject a resolver; production keeps the defaults)."""
    store = Store(settings.db)
    personas = PersonaCatalog(store, PersonaLibrary([settings.personas_dir] if settings.personas_dir else []))
    client = ModelClient(
        base_url=settings.openai_base_url,
        api_key=settings.api_key(),
        deadline_seconds=settings.model_deadline_seconds,
        stall_seconds=settings.stream_stall_seconds,
        send_cache_key=settings.prompt_cache_key,
    )
    reading = build_reading(store, client, personas, model=settings.model, window=settings.window,
                            reply_tokens=settings.reply_reserve, limits=settings.document_limits,
                            share=settings.documents_share, resolver=link_resolver, policy=link_policy)
    engine = Engine(
        store, client, personas,
        ModelSettings(model=settings.model, window=settings.window, reply_tokens=settings.reply_reserve,
                      tail_tokens=settings.tail_budget, temperature=settings.temperature),
        operator_rules=settings.system_prompt,
        default_timezone=settings.timezone,
        providers=[reading.provider],
    )
    return Services(settings, store, personas, client, engine, reading=reading)


__all__ = ["Owner", "Services", "build_services"]
