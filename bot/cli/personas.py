"""`companion personas …`: list, show, import and export the personas the bot can play.

Persona files (shipped, and `COMPANION_PERSONAS_DIR`) and personas stored in the
database (character cards) are listed together, by the ids every `--persona` option
takes. Cards imported here belong to the operator and are offered to every user; cards
users send in Telegram stay private to them until published (`publish`, or /publish).

A card that cannot be used is one line on stderr and exit code 1, and nothing is stored;
`import` prints only the new id on stdout, so scripts can capture it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.cli.common import Failure, with_services
from bot.services import Services
from memory.persona_catalog import PersonaEntry, describe
from personas.cards import MAX_CARD_FILE_BYTES
from personas.files import write_atomically


@click.group()
def personas() -> None:
    """Persona files and character cards."""


@personas.command("list")
@click.option("--json", "as_json", is_flag=True, help='Print [{"id", "name", "description", "source"}].')
@click.option("--all", "include_private", is_flag=True, help="Also users' private personas.")
@with_services()
async def list_(services: Services, as_json: bool, include_private: bool) -> None:
    """Every persona offered to all users (files, imported cards, published personas)."""
    catalog = services.personas
    entries = catalog.available_to(None) + (catalog.unpublished() if include_private else [])
    for problem in catalog.library.errors:
        click.echo(f"companion: warning: {problem}", err=True)
    if as_json:
        click.echo(json.dumps([describe(entry) for entry in entries], ensure_ascii=False, indent=2))
        return
    for entry in entries:
        summary = entry.persona.summary(limit=70)
        click.echo(f"{entry.persona.id:<24} {entry.persona.name}  [{_source_label(services, entry)}]"
                   + (f"  {summary}" if summary else ""))


@personas.command()
@click.argument("persona_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the whole persona as JSON.")
@with_services()
async def show(services: Services, persona_id: str, as_json: bool) -> None:
    """One persona: who it is, what it says first, its lorebook."""
    entry = _entry(services, persona_id)
    if as_json:
        shown = {**describe(entry), "private": entry.private,
                 "persona": entry.persona.model_dump(mode="json", exclude_defaults=True)}
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    click.echo(render_persona(entry, _source_label(services, entry)))


@personas.command("import")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@with_services()
async def import_(services: Services, path: Path) -> None:
    """Import a character card (V1/V2/V3 .json, .png or .charx) for every user; prints its id."""
    if path.suffix.lower() == ".toml":
        raise Failure(f"{path.name} is a persona file: put it in COMPANION_PERSONAS_DIR instead "
                      "(read at start, and by /reload in Telegram)")
    data = _read_card_file(path)
    imported = services.personas.import_card(data, path.name, source="card")
    for warning in imported.warnings:
        click.echo(f"companion: warning: {warning}", err=True)
    click.echo(imported.persona.id)


@personas.command()
@click.argument("persona_id", metavar="ID")
@click.option("--format", "file_format", type=click.Choice(["json", "png"]), required=True,
              help="json: a card file; png: a picture carrying the card (V2 and V3).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="File to write.")
@click.option("--spec", type=click.Choice(["v2", "v3"]), default="v2", show_default=True,
              help="Card version of a JSON export.")
@with_services()
async def export(services: Services, persona_id: str, file_format: str, out: Path, spec: str) -> None:
    """Write a persona as a character card other apps (SillyTavern…) can import."""
    data = services.personas.export_card(persona_id, file_format, spec=spec)
    _write_file(out, data)
    click.echo(f"wrote {out} ({len(data):,} bytes)", err=True)


@personas.command()
@click.argument("persona_id", metavar="ID")
@with_services()
async def publish(services: Services, persona_id: str) -> None:
    """Offer a user's private persona to everyone."""
    services.personas.publish(persona_id)


@personas.command()
@click.argument("persona_id", metavar="ID")
@with_services()
async def delete(services: Services, persona_id: str) -> None:
    """Delete a stored persona (conversations with it are kept; they fall back to the default)."""
    entry = _entry(services, persona_id)
    if entry.source in ("builtin", "file"):
        raise Failure(f"'{entry.persona.id}' is a persona file; remove the file instead")
    services.personas.delete(entry.persona.id)


# -- helpers ------------------------------------------------------------------------------
def _entry(services: Services, persona_id: str) -> PersonaEntry:
    entry = services.personas.entry(persona_id)
    if entry is None:
        raise Failure(f"no persona '{persona_id}' (see: companion personas list --all)")
    return entry


def _source_label(services: Services, entry: PersonaEntry) -> str:
    if entry.owner_user_id is None:
        return entry.source
    owner = services.store.directory.user(entry.owner_user_id)
    who = f"{owner.platform}:{owner.external_id}"
    return f"{entry.source}, {'published, by' if entry.published else 'private to'} {who}"


def render_persona(entry: PersonaEntry, source: str) -> str:
    """A readable view of a persona for the terminal."""
    persona = entry.persona
    lines = [f"{persona.name} ({persona.id}) [{source}]"]
    facts = [("nickname", persona.nickname), ("language", persona.language),
             ("tags", ", ".join(persona.tags)), ("creator", persona.creator),
             ("version", persona.character_version),
             ("card", persona.card_origin.spec if persona.card_origin else None),
             ("model", persona.model.model)]
    lines += [f"{label}: {value}" for label, value in facts if value]
    for title, body in (("Description", persona.description), ("Personality", persona.personality),
                        ("Scenario", persona.scenario), ("Greeting", persona.greeting),
                        ("Creator notes", persona.creator_notes)):
        if body.strip():
            lines += ["", f"## {title}", body.strip()]
    if persona.alternate_greetings:
        lines += ["", f"+ {len(persona.alternate_greetings)} alternate greetings"]
    if persona.starter_prompts:
        lines += ["", "## Starter prompts", *(f"- {prompt}" for prompt in persona.starter_prompts)]
    if persona.lorebook is not None:
        book = persona.lorebook
        depth = book.scan_depth if book.scan_depth is not None else "default"
        lines += ["", f"## Lorebook {book.name or ''}".rstrip()
                  + f" ({len(book.entries)} entries, scan depth {depth})"]
        for entry_ in book.entries:
            label = entry_.name or entry_.comment or (entry_.keys[0] if entry_.keys else "?")
            keys = ", ".join(entry_.keys) or ("always" if entry_.constant else "-")
            lines.append(f"- {label}: {keys}" + ("" if entry_.enabled else " (disabled)"))
    return "\n".join(lines)


def _read_card_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_CARD_FILE_BYTES:
            raise Failure(f"{path.name}: the file is over {MAX_CARD_FILE_BYTES // (1024 * 1024)} MB; "
                          "that is too big for a card")
        return path.read_bytes()
    except OSError as exc:
        raise Failure(f"cannot read {path}: {exc.strerror}") from None


def _write_file(path: Path, data: bytes) -> None:
    try:
        write_atomically(path, data)
    except OSError as exc:
        raise Failure(f"cannot write {path}: {exc.strerror}") from None
