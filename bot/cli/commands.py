"""The core `companion` commands: chat, context, import, run, backup, migrate-db, doctor."""

from __future__ import annotations

import asyncio
import getpass
import json
import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import click

from bot.cli.common import (BadSettings, Failure, check_persona, configure, load_or_exit,
                             with_services)
from bot.inspect import render_summary, request_json
from bot.logs import configure_logging, redact
from bot.services import Services
from memory.importer import import_chat, read_chat_file
from memory.postgres import PostgresUnavailable
from memory.records import Owner, User


@click.command()
@click.option("--user", "user_spec", default=None, help="Local user name (default: your login name).")
@click.option("--persona", "persona_id", default=None, help="Persona id (default: the default persona).")
@with_services(needs_model=True)
async def chat(services: Services, user_spec: str | None, persona_id: str | None) -> int:
    """Chat in the terminal: same engine, same database. Reads stdin line by line."""
    from bot.terminal import TerminalChat

    check_persona(services, persona_id)
    user = services.resolve_user(user_spec or getpass.getuser())
    return await TerminalChat(services.service, user, persona_id).run()


@click.command()
@click.option("--user", "user_spec", required=True, help="Local user name, or tg:<id> for a Telegram user.")
@click.option("--persona", "persona_id", default=None, help="Persona id (default: the default persona).")
@click.option("--message", default=None, help="Show the request as if this were the next message.")
@click.option("--json", "as_json", is_flag=True, help="Print the exact request as JSON.")
@with_services()
async def context(services: Services, user_spec: str, persona_id: str | None, message: str | None,
                  as_json: bool) -> None:
    """Show the exact request the user's next message would send."""
    check_persona(services, persona_id)
    user = services.resolve_user(user_spec)
    engine = services.engine
    conversation = engine.conversation_for(Owner.user(user.id), persona_id, user=user)
    request = engine.build_request(conversation, user=user, query=message or "",
                                   final_user_text=message if message is not None else "")
    model = engine.route(conversation, engine.persona(conversation.persona_id)).model
    if as_json:
        click.echo(json.dumps(request_json(request, model), ensure_ascii=False, indent=2))
    else:
        click.echo(render_summary(request, model))


@click.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--user", "user_spec", required=True, help="Local user name, or tg:<id> for a Telegram user.")
@click.option("--persona", "persona_id", default=None, help="Persona id (default: the default persona).")
@with_services()
async def import_command(services: Services, file: Path, user_spec: str, persona_id: str | None) -> None:
    """Import a SillyTavern chat (.jsonl) or a companion /export JSON as the user's active
    conversation with the persona, timestamps kept."""
    check_persona(services, persona_id)
    user = _import_user(services, user_spec)
    persona = services.engine.persona(persona_id)
    zone = user.timezone or services.settings.timezone
    chat = read_chat_file(file, ZoneInfo(zone))  # a bad file raises before anything is stored
    result = import_chat(services.store, Owner.user(user.id), persona.id, chat, title=f"Imported from {file.name}")
    click.echo(f"Imported {result.messages} messages from {result.source} into a new conversation "
               f"with {persona.name} for {user.name}.")
    if result.unreadable_dates:
        click.echo(f"{result.unreadable_dates} message(s) had a date that could not be read; "
                   "they took the time of the message before them.")


def _import_user(services: Services, spec: str) -> User:
    """Like resolve_user, but a Telegram user may be imported for before their first message."""
    external_id = spec[3:].strip() if spec.startswith("tg:") else ""
    if external_id.lstrip("-").isdigit():
        return services.store.directory.ensure_user("tg", external_id)
    return services.resolve_user(spec)


@click.command()
def run() -> None:
    """Start the Telegram bot (long polling, or a webhook when COMPANION_WEBHOOK_URL is set)."""
    from bot.telegram.app import run_bot

    settings = load_or_exit()
    problems = settings.first_run_problems()
    if problems:  # before anything is created or reached: one line each, exit code 2
        for problem in problems:
            click.echo(redact(f"companion: {problem}"), err=True)
        sys.exit(2)
    configure(settings)
    try:
        code = asyncio.run(run_bot(settings))
    except PostgresUnavailable as exc:
        raise BadSettings(settings.database_problem(exc)) from None
    sys.exit(code)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Copy the database to PATH (safe while the bot runs)."""
    from bot.operations import backup_database

    settings = load_or_exit()
    try:
        size = backup_database(Path(settings.db), path)
    except (OSError, RuntimeError, sqlite3.Error) as exc:
        raise Failure(str(exc)) from None
    click.echo(f"backed up {settings.db} to {path} ({size:,} bytes, integrity ok)")


@click.command(name="migrate-db")
@click.argument("source")
@click.argument("destination")
def migrate_db(source: str, destination: str) -> None:
    """Copy a whole installation from SOURCE to DESTINATION, each a SQLite file or a
    postgresql:// URL, and check every row; DESTINATION must hold no data yet. Stop the
    bot first."""
    from memory.transfer import TransferFailed, TransferRefused, describe, migrate

    passwords = [urlparse(end).password for end in (source, destination) if "://" in end]
    configure_logging("ERROR", "text", passwords)  # a driver's error may quote a password
    try:
        transfer = migrate(source, destination)
    except (TransferRefused, PostgresUnavailable) as exc:
        raise BadSettings(str(exc)) from None
    except (TransferFailed, OSError, sqlite3.Error) as exc:
        raise Failure(str(exc)) from None
    for line in describe(transfer):
        click.echo(line)


@click.command()
def doctor() -> None:
    """Check settings, database, personas, the model endpoint and Telegram."""
    from bot.operations import run_checks

    settings = load_or_exit()
    configure_logging("ERROR", settings.log_format, settings.secrets())
    checks = asyncio.run(run_checks(settings))
    for check in checks:  # a failure's detail may quote an error that quotes a URL with the token
        click.echo(redact(f"{'ok  ' if check.ok else 'FAIL'} {check.name:<10} {check.detail}"))
    if not all(check.ok for check in checks):
        sys.exit(1)
