"""Copy a whole installation from one database to another (`companion migrate-db`):
a SQLite file to PostgreSQL, and back, losslessly.

Each end is a SQLite file path or a `postgresql://` URL. Both are opened with every
migration applied (`memory.schema`), so they hold the same tables, and the destination
must hold no data yet: a row in any table that is copied refuses it, before anything
is written (`TransferRefused`; a missing SQLite source is refused too, never created).

What is copied: every ordinary table, every row, ids as they are. What is not:
- the migration bookkeeping (`_sqlite_migrations`, `_companion_migrations`): each end
  records the migrations it applied itself;
- the derived full-text indexes, which differ by backend: on SQLite the FTS5 virtual
  tables (and fts5vocab tables) and their shadow tables, on PostgreSQL the tsvector side
  tables (`messages_search`, `document_passages_search`) and any table named after one
  of them (`<index table>_…`, as FTS5 names its shadow tables). The storage classes
  rebuild them on the destination from the copied rows (`Conversations.reindex`,
  `DocumentStore.reindex`), so search finds the same messages and passages there.

How: one transaction on the destination, around all of it. Tables go in foreign-key
order (parents first); a column that refers to its own table (`messages.reply_to`,
`summary_segments.folded_into`, `facts.replaces`/`replaced_by`) is written NULL first
and set once the whole table is in. Rows are read in batches inside one read
transaction of the source (a consistent snapshot: on PostgreSQL REPEATABLE READ, with
a server-side cursor), and written in batches (SQLite: executemany; PostgreSQL: COPY).
On PostgreSQL the identity sequences are then set past the highest id copied.

Then, still inside the transaction, every table is checked: its rows are read back from
the destination in primary-key order (text keys compared bytewise on both engines) and
their count and a sha256 over their values (`_digest`) must equal what was read from the
source; any difference rolls everything back (`TransferFailed`). A SQLite destination
this run created is removed again when the copy fails.

Stop the bot (and anything else writing) while it runs: what is written to the source
after its snapshot is taken is not copied.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from memory.postgres import PostgresDatabase, PostgresMigrations, one_line, redacted_url
from memory.sql_table import dialect
from memory.store import StoreBase

SQLITE_BOOKKEEPING = "_sqlite_migrations"  # sqlite-utils' Migrations
POSTGRES_BOOKKEEPING = PostgresMigrations.TABLE
_FTS5_SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")
BATCH = 1000


class TransferRefused(ValueError):
    """The copy cannot start (a missing source, a destination with data, schemas that
    differ); nothing was changed. The message says why."""


class TransferFailed(RuntimeError):
    """The copy failed or did not check out; the destination was rolled back."""


@dataclass(frozen=True)
class TableCopy:
    table: str
    copied: int  # rows read from the source and written
    checked: int  # rows read back from the destination, equal to the source's


@dataclass(frozen=True)
class Transfer:
    source: str  # labels, without passwords
    destination: str
    tables: list[TableCopy]
    indexes: dict[str, int]  # rebuilt full-text index: rows indexed

    @property
    def rows(self) -> int:
        return sum(table.copied for table in self.tables)


@dataclass
class _Table:
    name: str
    columns: list[str]
    key: list[str]  # the primary key (every column, when there is none)
    text_columns: set[str] = field(default_factory=set)
    parents: set[str] = field(default_factory=set)  # tables it refers to, not itself
    self_refs: list[str] = field(default_factory=list)  # columns referring to its own table
    identity: list[str] = field(default_factory=list)  # PostgreSQL identity columns


def is_postgres_url(spec: str) -> bool:
    return spec.startswith(("postgresql://", "postgres://"))


def label(spec: str) -> str:
    """The end as messages name it: the path, or the URL without password and query."""
    return redacted_url(spec) if is_postgres_url(spec) else spec


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- what each end holds ---------------------------------------------------------------
def _sqlite_tables(db: Any) -> dict[str, _Table]:
    """The ordinary tables of a SQLite connection (sqlite3's or sqlite-utils')."""
    rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    virtual = {name for name, sql in rows if (sql or "").lstrip().upper().startswith("CREATE VIRTUAL TABLE")}
    shadows = {v + suffix for v in virtual for suffix in _FTS5_SHADOWS}
    tables = {}
    for name, _ in rows:
        if name in virtual or name in shadows or name.startswith("sqlite_") or name == SQLITE_BOOKKEEPING:
            continue
        info = db.execute(f"PRAGMA table_info({_quote(name)})").fetchall()  # cid, name, type, notnull, default, pk
        columns = [row[1] for row in info]
        key = [row[1] for row in sorted((row for row in info if row[5]), key=lambda row: row[5])]
        table = _Table(name, columns, key or list(columns))
        for fk in db.execute(f"PRAGMA foreign_key_list({_quote(name)})").fetchall():  # id, seq, table, from, to
            if fk[2] == name:
                table.self_refs.append(fk[3])
            else:
                table.parents.add(fk[2])
        tables[name] = table
    return tables


def _postgres_tables(db: PostgresDatabase) -> dict[str, _Table]:
    """The ordinary tables of the connection's current schema."""
    names = {row[0] for row in db.execute(
        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') "
        "AND relnamespace = current_schema()::regnamespace").fetchall()}
    columns: dict[str, list[tuple[str, str, str]]] = {}
    for table, column, kind, identity in db.execute(
            "SELECT table_name, column_name, data_type, is_identity FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position").fetchall():
        columns.setdefault(table, []).append((column, kind, identity))
    indexes = {name for name in names if any(kind == "tsvector" for _, kind, _ in columns.get(name, []))}
    derived = indexes | {name for name in names if any(name.startswith(index + "_") for index in indexes)}
    keys: dict[str, list[tuple[int, str]]] = {}
    for table, column, position in db.execute(
            "SELECT t.relname, a.attname, array_position(i.indkey::int2[], a.attnum) FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_attribute a ON a.attrelid = t.oid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary "
            "AND t.relnamespace = current_schema()::regnamespace").fetchall():
        keys.setdefault(table, []).append((position, column))
    tables = {}
    for name in sorted(names - derived - {POSTGRES_BOOKKEEPING}):
        described = columns.get(name, [])
        table = _Table(name, [c for c, _, _ in described], [c for _, c in sorted(keys.get(name, []))])
        table.key = table.key or list(table.columns)
        table.text_columns = {c for c, kind, _ in described if kind in ("text", "character varying", "character")}
        table.identity = [c for c, _, identity in described if identity == "YES"]
        tables[name] = table
    for table, parent, column in db.execute(
            "SELECT t.relname, r.relname, a.attname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "JOIN pg_class r ON r.oid = c.confrelid JOIN pg_attribute a ON a.attrelid = c.conrelid "
            "AND a.attnum = ANY(c.conkey) WHERE c.contype = 'f' "
            "AND t.relnamespace = current_schema()::regnamespace").fetchall():
        if table not in tables:
            continue
        if parent == table:
            tables[table].self_refs.append(column)
        else:
            tables[table].parents.add(parent)
    return tables


def _tables(db: Any) -> dict[str, _Table]:
    return _postgres_tables(db) if dialect(db) == "postgresql" else _sqlite_tables(db)


def _with_rows(db: Any, tables: Iterable[_Table]) -> dict[str, int]:
    """The tables that hold rows, and how many."""
    found = {}
    for table in tables:
        (count,) = db.execute(f"SELECT count(*) FROM {_quote(table.name)}").fetchone()
        if count:
            found[table.name] = count
    return found


def _in_order(tables: dict[str, _Table]) -> list[_Table]:
    """Parents before the tables that refer to them."""
    ordered: list[_Table] = []
    placed: set[str] = set()
    waiting = dict(sorted(tables.items()))
    while waiting:
        ready = [name for name, table in waiting.items() if table.parents & set(tables) <= placed]
        if not ready:
            raise TransferRefused(f"the foreign keys between {', '.join(waiting)} form a cycle")
        for name in ready:
            ordered.append(waiting.pop(name))
            placed.add(name)
    return ordered


# -- opening the ends ------------------------------------------------------------------
def _peek_data(spec: str) -> dict[str, int]:
    """What the destination holds already, read before any migration touches it."""
    if is_postgres_url(spec):
        db = PostgresDatabase(spec)
        try:
            return _with_rows(db, _postgres_tables(db).values())
        finally:
            db.close()
    path = Path(spec)
    if not path.exists():
        return {}
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _with_rows(connection, _sqlite_tables(connection).values())
    except sqlite3.DatabaseError as error:
        raise TransferRefused(f"{spec} is not a SQLite database: {error}") from None
    finally:
        connection.close()


def _open(spec: str) -> StoreBase:
    from memory.schema import open_postgres_store, open_store

    return open_postgres_store(spec) if is_postgres_url(spec) else open_store(spec)


def _refuse_data(spec: str, found: dict[str, int]) -> None:
    if found:
        held = ", ".join(f"{name} ({count})" for name, count in sorted(found.items()))
        raise TransferRefused(f"the destination {label(spec)} already holds data: {held}; "
                              "migrate-db copies into an empty database only")


def _same_end(source: str, destination: str) -> bool:
    if is_postgres_url(source) or is_postgres_url(destination):
        return source == destination
    return Path(source).resolve() == Path(destination).resolve()


# -- reading and writing ---------------------------------------------------------------
def _select(table: _Table, db: Any) -> str:
    postgres = dialect(db) == "postgresql"
    order = ", ".join(_quote(c) + (' COLLATE "C"' if postgres and c in table.text_columns else "")
                      for c in table.key)
    return f"SELECT {', '.join(map(_quote, table.columns))} FROM {_quote(table.name)} ORDER BY {order}"


def _batches(db: Any, sql: str, size: int) -> Iterator[list[tuple]]:
    """The rows of a query, `size` at a time, without holding them all (PostgreSQL: a
    server-side cursor, so the caller must be inside a transaction)."""
    if dialect(db) == "postgresql":
        with db.conn.cursor(name="migrate_db") as cursor:
            cursor.itersize = size
            cursor.execute(sql)
            while rows := cursor.fetchmany(size):
                yield rows
        return
    cursor = db.conn.execute(sql)
    try:
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()


def _normal(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _digest(digest: Any, rows: Iterable[tuple]) -> None:
    """Adds rows to a sha256: each as the repr of its values (None, int, float, str,
    bytes read the same from both engines, memoryviews as bytes, booleans as integers)."""
    for row in rows:
        digest.update(repr(tuple(_normal(value) for value in row)).encode("utf-8", "surrogatepass"))
        digest.update(b"\n")


class _SqliteWriter:
    def __init__(self, db: Any):
        self.db = db

    def insert(self, table: _Table, columns: list[str], batches: Iterable[list[tuple]]) -> None:
        sql = (f"INSERT INTO {_quote(table.name)} ({', '.join(map(_quote, columns))}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        for rows in batches:
            self.db.conn.executemany(sql, rows)

    def update(self, sql: str, rows: list[tuple]) -> None:
        self.db.conn.executemany(sql, rows)

    def reset_identities(self, tables: Iterable[_Table]) -> None:
        """Nothing to do: a rowid continues after the highest one."""


class _PostgresWriter(_SqliteWriter):
    def insert(self, table: _Table, columns: list[str], batches: Iterable[list[tuple]]) -> None:
        with self.db.conn.cursor() as cursor:
            with cursor.copy(f"COPY {_quote(table.name)} ({', '.join(map(_quote, columns))}) FROM STDIN") as copy:
                for rows in batches:
                    for row in rows:
                        copy.write_row(row)

    def update(self, sql: str, rows: list[tuple]) -> None:
        self.db.executemany(sql, rows)

    def reset_identities(self, tables: Iterable[_Table]) -> None:
        for table in tables:
            for column in table.identity:
                self.db.execute(
                    f"SELECT setval(pg_get_serial_sequence(?, ?), coalesce(max({_quote(column)}), 0) + 1, false) "
                    f"FROM {_quote(table.name)}", [_quote(table.name), column])


def _copy_table(table: _Table, source: StoreBase, writer: _SqliteWriter, size: int) -> tuple[int, str]:
    """Copy one table's rows; returns how many, and the sha256 of the source's rows."""
    digest = hashlib.sha256()
    count = 0
    positions = [table.columns.index(c) for c in table.self_refs]
    keys = [table.columns.index(c) for c in table.key]
    later: list[tuple] = []  # (self-references…, key…) of the rows that have any

    read = _batches(source.db, _select(table, source.db), size)

    def rows() -> Iterator[list[tuple]]:
        nonlocal count
        for batch in read:
            _digest(digest, batch)
            count += len(batch)
            if positions:
                written = []
                for row in batch:
                    if any(row[p] is not None for p in positions):
                        later.append(tuple(row[p] for p in positions) + tuple(row[k] for k in keys))
                        row = tuple(None if n in positions else value for n, value in enumerate(row))
                    written.append(row)
                batch = written
            yield batch

    try:
        writer.insert(table, table.columns, rows())
    finally:
        read.close()  # the source's cursor, now (not when collected) if the writing failed
    if later:
        sql = (f"UPDATE {_quote(table.name)} SET {', '.join(_quote(c) + ' = ?' for c in table.self_refs)} "
               f"WHERE {' AND '.join(_quote(c) + ' = ?' for c in table.key)}")
        for start in range(0, len(later), size):
            writer.update(sql, later[start:start + size])
    return count, digest.hexdigest()


def _check_table(table: _Table, destination: StoreBase, size: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    for batch in _batches(destination.db, _select(table, destination.db), size):
        _digest(digest, batch)
        count += len(batch)
    return count, digest.hexdigest()


def _read_snapshot(store: StoreBase) -> None:
    if dialect(store.db) == "postgresql":
        store.db.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        store.db.conn.execute("BEGIN")


def _end_snapshot(store: StoreBase) -> None:
    if dialect(store.db) == "postgresql":
        store.db.conn.execute("ROLLBACK")
    elif store.db.conn.in_transaction:
        store.db.conn.execute("ROLLBACK")


# -- the whole copy --------------------------------------------------------------------
def migrate(source: str, destination: str, *, batch: int = BATCH) -> Transfer:
    """Copy everything from `source` into the empty `destination` (each a SQLite path or
    a postgresql:// URL), check it and commit; see the module docstring."""
    if _same_end(source, destination):
        raise TransferRefused("the source and the destination are the same database")
    if not is_postgres_url(source) and not Path(source).is_file():
        raise TransferRefused(f"no SQLite database at {source}")
    _refuse_data(destination, _peek_data(destination))
    created = None if is_postgres_url(destination) or Path(destination).exists() else Path(destination)
    try:
        from_store = _open(source)
    except sqlite3.DatabaseError as error:
        raise TransferRefused(f"cannot read {source}: {error}") from None
    to_store = None
    try:
        to_store = _open(destination)
        result = _transfer(source, destination, from_store, to_store, batch)
    except BaseException:
        if to_store is not None:
            to_store.close()
            to_store = None
        if created is not None:
            for leftover in (created, created.with_name(created.name + "-wal"),
                             created.with_name(created.name + "-shm")):
                leftover.unlink(missing_ok=True)
        raise
    finally:
        from_store.close()
        if to_store is not None:
            to_store.close()
    return result


def _transfer(source: str, destination: str, from_store: StoreBase, to_store: StoreBase, size: int) -> Transfer:
    from memory.reading.store import DocumentStore

    source_tables, tables = _tables(from_store.db), _tables(to_store.db)
    if set(source_tables) != set(tables):
        only = sorted(set(source_tables) ^ set(tables))
        raise TransferRefused(f"the two databases' schemas differ (tables {', '.join(only)}); "
                              "run the same version of companion on both")
    for name, table in tables.items():
        if set(table.columns) != set(source_tables[name].columns):
            raise TransferRefused(f"the two databases' schemas differ (columns of {name})")
        # Both ends read in the same order: PostgreSQL's text keys bytewise, as SQLite's.
        table.text_columns |= source_tables[name].text_columns
    _refuse_data(destination, _with_rows(to_store.db, tables.values()))
    documents = DocumentStore(to_store)  # built before the copy: it cleans up stale ingestions when built
    writer = _PostgresWriter(to_store.db) if dialect(to_store.db) == "postgresql" else _SqliteWriter(to_store.db)
    ordered = _in_order(tables)
    copies: list[TableCopy] = []
    _read_snapshot(from_store)
    try:
        with to_store.transaction():
            expected = {}
            for table in ordered:
                try:
                    expected[table.name] = _copy_table(table, from_store, writer, size)
                except (TransferRefused, TransferFailed):
                    raise
                except Exception as error:
                    raise TransferFailed(f"copying {table.name} failed, nothing was kept: "
                                         f"{one_line(error)}") from None
            writer.reset_identities(ordered)
            indexes = {"messages": to_store.conversations.reindex(size), "document passages": documents.reindex(size)}
            for table in ordered:
                count, digest = _check_table(table, to_store, size)
                want_count, want_digest = expected[table.name]
                if (count, digest) != (want_count, want_digest):
                    raise TransferFailed(f"{table.name} did not check out ({want_count} rows read, {count} found, "
                                         f"{'same' if digest == want_digest else 'different'} contents); "
                                         "nothing was kept")
                copies.append(TableCopy(table.name, want_count, count))
    finally:
        _end_snapshot(from_store)
    return Transfer(label(source), label(destination), copies, indexes)


def describe(transfer: Transfer) -> Sequence[str]:
    """The report `companion migrate-db` prints: a line per table, then the indexes."""
    width = max([len("table"), *(len(t.table) for t in transfer.tables)])
    lines = [f"copied {transfer.source} to {transfer.destination}",
             f"{'table':<{width}}  {'rows copied':>11}  {'rows checked':>12}"]
    lines += [f"{t.table:<{width}}  {t.copied:>11,}  {t.checked:>12,}" for t in transfer.tables]
    lines.append(f"{'total':<{width}}  {transfer.rows:>11,}  {sum(t.checked for t in transfer.tables):>12,}")
    lines += [f"full-text index of {name} rebuilt: {count:,} rows" for name, count in transfer.indexes.items()]
    return lines
