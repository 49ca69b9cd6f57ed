"""The `companion` command line: one click group, its commands in modules of their own.

    commands.py   chat, context, import, run, backup, migrate-db, doctor
    documents.py  ingest, characters
    personas.py   personas list/show/import/export/publish/delete
    common.py     exit codes, settings errors, `with_services`
    (bot/web/cli.py: web, the Mini App alone)

The command modules import only `common`, and this module imports them: no cycle.
"""

from __future__ import annotations

import click

from bot.cli import commands, documents, personas
from bot.web.cli import web


@click.group()
@click.version_option(package_name="companion-bot")
def main() -> None:
    """A Telegram companion bot with lossless long memory."""


for command in (commands.chat, commands.context, commands.import_command, commands.run, commands.backup,
                commands.migrate_db, commands.doctor, personas.personas, documents.ingest, documents.characters, web):
    main.add_command(command)

__all__ = ["main"]
