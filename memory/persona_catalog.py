"""Every persona the bot can play: the persona files, plus personas kept in the database.

Persona files (shipped, and the operator's `COMPANION_PERSONAS_DIR`) are read by
`personas.PersonaLibrary`. Personas that arrive at run time live in the database:
character cards imported by the operator on the CLI (owner NULL: offered to everyone),
a card a user sends in Telegram or a character made from a novel (private to that user
until an admin publishes it). The engine looks personas up by id only; who may *choose*
a persona is checked when it is chosen (`available_to`).

Database personas are stored as the persona's JSON (so nothing of a card is lost) with
their avatar bytes, and parsed once per change (cached by the stored text). Cards come in
through `import_card` (the CLI passes no owner, Telegram the sender) and go out through
`export_card`, so both faces store and write cards the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from memory.migrations import run_sql
from memory.postgres import PostgresDatabase, PostgresMigrations, run_statements
from memory.records import User
from memory.store import Store
from personas import (
    DEFAULT_PERSONA_ID,
    ImportedCard,
    Persona,
    PersonaError,
    PersonaLibrary,
    card_to_json,
    card_to_png,
    persona_id_from_name,
    read_card,
)
from personas.images import avatar_png

log = logging.getLogger(__name__)

migrations = Migrations("companion.personas")


@migrations()
def m001_stored_personas(db: Database) -> None:
    run_sql(
        db,
        """
        CREATE TABLE stored_personas (
            id TEXT PRIMARY KEY,
            owner_user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            data TEXT NOT NULL,
            avatar BLOB,
            published INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX stored_personas_by_owner ON stored_personas (owner_user_id);
        """,
    )


@migrations()
def m002_persona_origins(db: Database) -> None:
    run_sql(
        db,
        """
        -- Where a persona came from, when that can arrive twice: a card sent in Telegram is
        -- 'tg:<chat>:<message>', so an update replayed after a crash finds the persona its
        -- first handling stored instead of importing the card again.
        ALTER TABLE stored_personas ADD COLUMN origin TEXT;
        CREATE UNIQUE INDEX stored_personas_by_origin ON stored_personas (origin) WHERE origin IS NOT NULL;
        """,
    )



# The same table on PostgreSQL (memory/postgres.py).
postgres_migrations = PostgresMigrations("companion.personas")


@postgres_migrations()
def p001_stored_personas(db: PostgresDatabase) -> None:
    run_statements(
        db,
        """
        CREATE TABLE stored_personas (
            id TEXT PRIMARY KEY,
            owner_user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            data TEXT NOT NULL,
            avatar BYTEA,
            published INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            origin TEXT
        );
        CREATE INDEX stored_personas_by_owner ON stored_personas (owner_user_id);
        CREATE UNIQUE INDEX stored_personas_by_origin ON stored_personas (origin) WHERE origin IS NOT NULL
        """,
    )

@dataclass(frozen=True)
class PersonaEntry:
    persona: Persona
    source: str  # builtin | file | operator | card | novel | …
    owner_user_id: int | None = None
    published: bool = False

    @property
    def private(self) -> bool:
        return self.owner_user_id is not None and not self.published


class PersonaCatalog:
    """Looks like a `PersonaLibrary` to the engine (`get`, `require`, `default`, `all`)."""

    def __init__(self, store: Store, library: PersonaLibrary):
        self.store = store
        self.library = library
        self._cache: dict[str, tuple[str, PersonaEntry]] = {}  # id -> (stored JSON, entry)

    # -- lookups the engine uses --------------------------------------------------------
    def get(self, persona_id: str) -> Persona | None:
        entry = self.entry(persona_id)
        return entry.persona if entry else None

    def require(self, persona_id: str | None) -> Persona:
        persona_id = persona_id or DEFAULT_PERSONA_ID
        persona = self.get(persona_id)
        if persona is None:
            raise PersonaError(f"no persona '{persona_id}' (see: companion personas list)")
        return persona

    @property
    def default(self) -> Persona:
        return self.library.default

    def all(self) -> list[Persona]:
        """Every persona offered to everyone (files, operator imports, published ones)."""
        return [entry.persona for entry in self.available_to(None)]

    def ids(self) -> list[str]:
        rows = self.store.db.execute("SELECT id FROM stored_personas").fetchall()
        return [*self.library.ids(), *(row[0] for row in rows)]

    def __contains__(self, persona_id: object) -> bool:
        return isinstance(persona_id, str) and self.entry(persona_id) is not None

    # -- entries ------------------------------------------------------------------------
    def entry(self, persona_id: str) -> PersonaEntry | None:
        persona_id = persona_id.lower()
        persona = self.library.get(persona_id)
        if persona is not None:
            return PersonaEntry(persona, "builtin" if self.library.is_builtin(persona_id) else "file")
        row = self.store.db.execute(
            "SELECT updated_at, data, source, owner_user_id, published FROM stored_personas WHERE id = ?",
            [persona_id]).fetchone()
        if row is None:
            self._cache.pop(persona_id, None)
            return None
        cached = self._cache.get(persona_id)
        if cached and cached[0] == row[1] and cached[1].published == bool(row[4]):
            return cached[1]
        entry = PersonaEntry(Persona.model_validate_json(row[1]), row[2], row[3], bool(row[4]))
        self._cache[persona_id] = (row[1], entry)
        return entry

    def available_to(self, user: User | None) -> list[PersonaEntry]:
        """What this user may choose: every shared persona, and their own private ones."""
        entries = [PersonaEntry(p, "builtin" if self.library.is_builtin(p.id) else "file")
                   for p in self.library.all()]
        rows = self.store.db.execute(
            "SELECT id FROM stored_personas WHERE owner_user_id IS NULL OR published = 1 OR owner_user_id = ? "
            "ORDER BY owner_user_id IS NOT NULL, created_at", [user.id if user else -1]).fetchall()
        entries += [entry for (persona_id,) in rows if (entry := self.entry(persona_id)) is not None]
        return entries

    def may_use(self, persona_id: str, user: User | None) -> bool:
        entry = self.entry(persona_id)
        return entry is not None and (not entry.private or (user is not None and entry.owner_user_id == user.id))

    # -- changes ------------------------------------------------------------------------
    def add(self, persona: Persona, *, source: str, owner: User | None = None,
            avatar: bytes | None = None, origin: str | None = None) -> Persona:
        """Store a persona under a fresh id (derived from its own, never taking a used one).
        `origin`: where it came from, unique (see `imported_from`)."""
        taken = set(self.ids())
        persona_id = persona.id if persona.id not in taken else persona_id_from_name(persona.name, taken)
        if persona_id in taken:
            persona_id = persona_id_from_name(persona.id, taken)
        persona = persona.model_copy(update={"id": persona_id})
        now = self.store.now()
        with self.store.db.atomic():
            self.store.db.execute(
                "INSERT INTO stored_personas (id, owner_user_id, source, data, avatar, created_at, updated_at, "
                "origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [persona.id, owner.id if owner else None, source, persona.model_dump_json(), avatar, now, now,
                 origin])
        return persona

    def update(self, persona: Persona) -> None:
        with self.store.db.atomic():
            changed = self.store.db.execute(
                "UPDATE stored_personas SET data = ?, updated_at = ? WHERE id = ?",
                [persona.model_dump_json(), self.store.now(), persona.id]).rowcount
        if not changed:
            raise PersonaError(f"persona '{persona.id}' is a file; edit the file instead")

    def imported_from(self, origin: str) -> PersonaEntry | None:
        """The persona stored from this origin (a Telegram message), if any."""
        row = self.store.db.execute("SELECT id FROM stored_personas WHERE origin = ?", [origin]).fetchone()
        return self.entry(row[0]) if row else None

    def import_card(self, data: bytes, filename: str, *, owner: User | None = None,
                    source: str = "card", origin: str | None = None) -> ImportedCard:
        """Read a character card file and store it as a new persona (of `owner`: private).

        Raises PersonaError (starting with `filename`) and stores nothing if the card is
        unusable. The card's picture is kept as a clean PNG avatar; a picture that cannot
        be decoded only costs the avatar (a warning), not the card. `origin`: see `add`."""
        card = read_card(data, filename, taken_ids=self.ids())
        avatar, warnings = None, list(card.warnings)
        if card.avatar is not None:
            try:
                avatar = avatar_png(card.avatar)
            except PersonaError as exc:
                warnings.append(f"the card's picture is not used ({exc})")
        persona = self.add(card.persona, source=source, owner=owner, avatar=avatar, origin=origin)
        return replace(card, persona=persona, avatar=avatar, warnings=tuple(warnings))

    def export_card(self, persona_id: str, file_format: Literal["json", "png"], *,
                    spec: Literal["v2", "v3"] = "v2") -> bytes:
        """The persona as a card file: JSON in `spec`, or a PNG carrying V2 and V3 on its avatar."""
        persona = self.require(persona_id)
        if file_format == "json":
            return card_to_json(persona, spec)
        avatar = self.avatar(persona.id)
        try:
            return card_to_png(persona, avatar)
        except PersonaError:
            log.warning("the avatar of persona %r is not an image; exporting with a placeholder", persona.id)
            return card_to_png(persona, None)

    def unpublished(self) -> list[PersonaEntry]:
        """Users' private personas, oldest first: what an admin could publish."""
        rows = self.store.db.execute(
            "SELECT id FROM stored_personas WHERE owner_user_id IS NOT NULL AND published = 0 "
            "ORDER BY created_at").fetchall()
        return [entry for (persona_id,) in rows if (entry := self.entry(persona_id)) is not None]

    def publish(self, persona_id: str) -> None:
        with self.store.db.atomic():
            if not self.store.db.execute("UPDATE stored_personas SET published = 1, updated_at = ? WHERE id = ?",
                                         [self.store.now(), persona_id.lower()]).rowcount:
                raise PersonaError(f"no stored persona '{persona_id}'")

    def delete(self, persona_id: str) -> None:
        with self.store.db.atomic():
            self.store.db.execute("DELETE FROM stored_personas WHERE id = ?", [persona_id.lower()])
        self._cache.pop(persona_id.lower(), None)

    def avatar(self, persona_id: str) -> bytes | None:
        path = self.library.avatar_path(persona_id) if persona_id in self.library else None
        if path is not None:
            return path.read_bytes()
        row = self.store.db.execute("SELECT avatar FROM stored_personas WHERE id = ?", [persona_id]).fetchone()
        return row[0] if row else None

    def forget_user(self, user_id: int) -> None:
        """A forget cascade step: the personas this user made privately (novel characters,
        imported cards) go with them."""
        self.store.db.execute("DELETE FROM stored_personas WHERE owner_user_id = ?", [user_id])
        self._cache.clear()


def describe(entry: PersonaEntry) -> dict:
    """The `companion personas list --json` shape."""
    return {"id": entry.persona.id, "name": entry.persona.name, "description": entry.persona.description,
            "source": entry.source}


