"""Project rules that code review would otherwise have to catch: the one-way import flow,
and CI running exactly the README's test command."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_personas_import_nothing_of_ours():
    for path, names in imported_modules("personas").items():
        assert not names & {"bot", "memory"}, path


def test_memory_has_no_telegram_and_no_cli():
    for path, names in imported_modules("memory").items():
        assert not names & {"bot", "aiogram", "click"}, path


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("Install and run the whole test suite", 1)[1]
    command = re.search(r"```sh\n(.+?)\n```", section, re.S).group(1).strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports() -> dict[str, set[str]]:
    """Our modules and the modules of ours each imports when it is imported (imports at
    the top of the file, not those inside functions, which run later)."""
    ours = {module_name(path): path for package in ("bot", "memory", "personas")
            for path in (ROOT / package).rglob("*.py")}
    graph = {}
    for name, path in ours.items():
        targets = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            targets |= {module for module in modules if module in ours and module != name}
        graph[name] = targets
    return graph


def test_no_import_cycle():
    graph = top_level_imports()
    state: dict[str, str] = {}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if target.startswith(name + "."):  # a package importing its own modules is no cycle
                continue
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [name, target] if target in trail else [name, target])
            elif target not in state:
                visit(target, trail + [name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, cycles


def test_telegram_handlers_get_the_service_layer_not_the_store():
    for path in (ROOT / "bot" / "telegram" / "handlers").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    for alias in node.names}
        assert not imported & {"Store", "Engine"}, path
        parameters = {arg.arg for node in ast.walk(tree) if isinstance(node, ast.AsyncFunctionDef)
                      for arg in node.args.args}
        assert not parameters & {"store", "engine", "memory"}, path


# The storage modules, and in a module that also holds other code, its storage classes
# (None: the whole module). Only these write SQL or touch a Store's connection (`.db`);
# everyone else calls their methods (memory/store.py, "Storage that owns its SQL").
STORAGE = {
    "memory/store.py": None,
    "memory/sql_table.py": None,
    "memory/postgres.py": None,
    "memory/directory.py": None,
    "memory/conversations.py": None,
    "memory/inbox.py": None,
    "memory/turn_leases.py": None,
    "memory/usage_ledger.py": None,
    "memory/schema.py": None,
    "memory/transfer.py": None,
    "memory/migrations.py": None,
    "memory/memory_migrations.py": None,
    "memory/life_schema.py": None,
    "memory/recall_index.py": None,
    "memory/reading/schema.py": None,
    "memory/reading/store.py": None,
    "memory/facts.py": {"FactStore"},
    "memory/compaction.py": {"SummaryStore"},
    "memory/memory_block.py": {"MemoryStateStore"},
    "memory/embeddings.py": {"EmbeddingIndex"},
    "memory/moderation.py": {"ModerationEvents"},
    "memory/user_choices.py": {"UserChoices"},
    "memory/checkins.py": {"Checkins"},
    "memory/persona_catalog.py": {"PersonaCatalog", "m001_stored_personas", "m002_persona_origins",
                                  "p001_stored_personas"},
}
SQL = re.compile(r"\b(SELECT|INSERT INTO|INSERT OR|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX|VIRTUAL)|"
                 r"ALTER TABLE|DROP TABLE|PRAGMA|BEGIN|COMMIT|VACUUM)\b")
CONNECTION_CALLS = {"execute", "executemany", "executescript", "atomic", "enable_wal", "enable_fts"}


def sql_outside_storage(tree: ast.Module) -> list[str]:
    """What a module's code outside its storage definitions does with SQL: a string that
    reads like SQL, a call of a connection's methods, or a touch of a store's `.db`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"line {node.lineno}: SQL {node.value.strip()[:40]!r}")
        elif isinstance(node, ast.Attribute) and node.attr == "db" and (
                isinstance(node.value, ast.Name) and node.value.id in ("store", "self")
                or isinstance(node.value, ast.Attribute) and node.value.attr == "store"):
            found.append(f"line {node.lineno}: .db")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in CONNECTION_CALLS:
            found.append(f"line {node.lineno}: .{node.func.attr}()")
    return found


def test_only_storage_classes_run_sql():
    offences = {}
    for package in ("bot", "memory"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            allowed = STORAGE.get(name, set())
            if allowed is None:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstring = tree.body[0] if tree.body and isinstance(tree.body[0], ast.Expr) else None
            for node in tree.body:
                if node is docstring or getattr(node, "name", None) in allowed:
                    continue
                found = sql_outside_storage(ast.Module(body=[node], type_ignores=[]))
                if found:
                    offences.setdefault(name, []).extend(found)
    assert not offences, offences


def test_the_store_imports_no_feature():
    """Not even late: the schema and the forget cascade are handed to it (bot/services.py),
    so the Store depends on no feature and no feature on the Store's importing it. It
    builds only the core storage classes, which import no feature either."""
    tree = ast.parse((ROOT / "memory" / "store.py").read_text(encoding="utf-8"))
    ours = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("memory")}
    ours |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
             if alias.name.startswith("memory")}
    core = {"memory.directory", "memory.conversations", "memory.inbox", "memory.usage_ledger", "memory.turn_leases"}
    assert ours <= {"memory.textsearch", "memory.tokens", "memory.records", *core}, ours
    for module in core | {"memory.sql_table"}:
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("memory")}
        assert imported <= {"memory.textsearch", "memory.records", "memory.sql_table", *core}, (module, imported)


def test_the_postgresql_compose_file_points_the_bot_at_its_server_and_the_image_has_the_driver():
    compose = (ROOT / "compose.postgres.yaml").read_text()
    assert "COMPANION_DATABASE_URL: postgresql://companion:${POSTGRES_PASSWORD}@postgres:5432/companion" in compose
    assert "condition: service_healthy" in compose and "pg_isready" in compose
    assert 'pip install --no-cache-dir ".[postgres]"' in (ROOT / "Dockerfile").read_text()
