"""The schema registry: every feature's migration set, in the order they are applied.

The Store applies the sets it is handed and imports none of them: a feature's storage
module imports the Store, so a Store that imported the features' migrations would close
an import cycle. The composition root (bot/services.py) hands it `migration_sets()`;
tools and tests that want a store without the rest of the bot call `open_store`.

PostgreSQL (memory/postgres.py) has migration sets of its own, in the same order:
every set, documents included (`postgres_migration_sets`).

Order: the core set first (users, conversations, messages: the others refer to them),
then personas, documents, long-term memory and companion life. A set that has shipped
keeps its name and place; a new feature appends its set at the end.
"""

from __future__ import annotations

from pathlib import Path

from sqlite_utils.migrations import Migrations

from memory import life_schema, memory_migrations, migrations, persona_catalog
from memory.reading import schema as documents_schema
from memory.postgres import PostgresMigrations, PostgresStore
from memory.store import Store


def migration_sets() -> list[Migrations]:
    """Every migration set, in the order they are applied."""
    return [migrations.migrations, persona_catalog.migrations, documents_schema.migrations,
            memory_migrations.migrations, life_schema.migrations]


def open_store(path: str | Path, **options) -> Store:
    """A Store with the whole schema (`options`: the Store's own, such as the clock)."""
    return Store(path, migration_sets=migration_sets(), **options)


def postgres_migration_sets() -> list[PostgresMigrations]:
    """The PostgreSQL migration sets, in the order they are applied."""
    return [migrations.postgres_migrations, persona_catalog.postgres_migrations, documents_schema.postgres_migrations,
            memory_migrations.postgres_migrations, life_schema.postgres_migrations]


def open_postgres_store(url: str, **options) -> PostgresStore:
    """A PostgresStore with the PostgreSQL schema (`options`: the Store's own)."""
    return PostgresStore(url, migration_sets=postgres_migration_sets(), **options)
