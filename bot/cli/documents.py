"""`companion ingest` and `companion characters`: documents and novels from the command line.

    companion ingest PATH [--user U] [--attach] [--json]
    companion characters DOC_ID [--user U] [--upto N] [--pick NAME|NUMBER [--card FILE]] [--json]

Both draw a progress bar on stderr (unless --json) and stop cleanly on Ctrl-C: nothing
half-read is kept. A refusal is one line on stderr and exit code 1. Registered on the
`companion` group by `bot.cli`.
"""

from __future__ import annotations

import getpass
import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from bot.cli.common import Failure, with_services
from bot.services import Services
from bot.texts import text
from memory.documents import DocumentError
from memory.reading import Cancelled, CancelToken, Character, context_for
from memory.records import Owner
from personas import card_to_json, card_to_png


class ProgressBar:
    """A click progress bar on stderr whose label follows the job's stage."""

    def __init__(self, enabled: bool):
        self.bar = click.progressbar(length=100, file=sys.stderr, show_eta=False, label="") if enabled else None
        self.percent = 0

    def report(self, stage: str, percent: int) -> None:
        if self.bar is None:
            return
        self.bar.label = f"{text(f'doc.stage.{stage}', 'en'):<24}"
        self.bar.update(max(0, percent - self.percent))
        self.percent = max(self.percent, percent)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()


@contextmanager
def cancellable() -> Iterator[CancelToken]:
    """Ctrl-C cancels the job (which then cleans up) instead of killing it midway."""
    token = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: token.cancel())
    try:
        yield token
    except Cancelled:
        raise Failure("cancelled; nothing was stored") from None
    except DocumentError as error:
        raise Failure(error.message) from None
    finally:
        signal.signal(signal.SIGINT, previous)


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--user", "user_spec", default=None, help="Local user name, or tg:<id> (default: your login name).")
@click.option("--attach", is_flag=True, help="Attach it to the user's current conversation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@with_services()
async def ingest(services: Services, path: Path, user_spec: str | None, attach: bool, as_json: bool) -> None:
    """Read a document (txt/md in any encoding, epub, pdf, docx, html) into a user's library."""
    user = services.resolve_user(user_spec or getpass.getuser())
    bar = ProgressBar(not as_json)
    try:
        with cancellable() as token:
            result = services.reading.ingestor.ingest_path(path, user, progress=bar.report, cancel=token)
    finally:
        bar.close()
    mode = None
    if attach:
        engine = services.engine
        owner = Owner.user(user.id)
        conversation = engine.conversation_for(owner, services.store.directory.persona_of(owner), user=user)
        services.reading.documents.attach(conversation.id, result.document.id)
        planned = services.reading.provider.plan(context_for(engine, conversation, user))
        mode = next(p.mode for p in planned if p.document_id == result.document.id)
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False))
        return
    d = result.document
    volumes = f" in {result.volumes} volumes" if result.volumes else ""
    junk = f", {result.stripped_lines} junk lines stripped" if result.stripped_lines else ""
    click.echo(f"document {d.id}: “{d.title}” ({d.format}{', ' + d.encoding if d.encoding else ''}), "
               f"{d.chars:,} characters, {d.chapter_count} chapters{volumes}{junk}, {d.tokens:,} tokens, "
               f"{result.seconds:.2f} s" + (" (already stored)" if result.duplicate else ""))
    if mode is not None:
        click.echo(f"attached to conversation {conversation.id}: read {mode}")


def _choose(found: list[Character], pick: str) -> Character:
    if pick.isdigit() and 1 <= int(pick) <= len(found):
        return found[int(pick) - 1]
    for character in found:
        if pick.casefold() in (name.casefold() for name in character.names):
            return character
    return Character(pick)  # not in the list: the profile pass looks for it in the text


@click.command()
@click.argument("document_id", type=int)
@click.option("--user", "user_spec", default=None, help="Local user name, or tg:<id> (default: your login name).")
@click.option("--upto", type=int, default=None, help="Only chapters 1..N (the novel's timeline).")
@click.option("--pick", default=None, help="Make a persona of this character (its name or number in the list).")
@click.option("--card", "card_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --pick: also write the persona as a character card (.png or .json).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@with_services(needs_model=True)
async def characters(services: Services, document_id: int, user_spec: str | None, upto: int | None,
                     pick: str | None, card_path: Path | None, as_json: bool) -> None:
    """List the main characters of a stored novel (and make a persona of one with --pick)."""
    user = services.resolve_user(user_spec or getpass.getuser())
    reading = services.reading
    document = reading.documents.owned_document(user.id, document_id)
    if upto is not None and not 1 <= upto <= document.chapter_count:
        raise Failure(f"--upto must be between 1 and {document.chapter_count} (the chapters of “{document.title}”)")
    if card_path is not None and (pick is None or card_path.suffix.lower() not in (".png", ".json")):
        raise Failure("--card needs --pick and a file name ending in .png or .json")
    bar = ProgressBar(not as_json)
    try:
        with cancellable() as token:
            found = await reading.characters.find(document.id, upto, progress=bar.report, cancel=token)
            persona = None
            if pick is not None:
                character = _choose(found, pick)
                persona = await reading.personas.create(user, document.id, character, upto, progress=bar.report,
                                                        cancel=token)
                reading.personas.start(services.engine, user, persona, document.id, upto)
    finally:
        bar.close()
    if persona is not None and card_path is not None:
        card_path.write_bytes(card_to_png(persona) if card_path.suffix.lower() == ".png" else card_to_json(persona))
    if as_json:
        payload: dict = {"document": document.id, "upto": upto, "characters": [
            {"name": c.name, "aliases": c.aliases, "line": c.line, "mentions": c.mentions} for c in found],
            "places": reading.characters.places(document.id, upto)}
        if persona is not None:
            payload["persona"] = persona.id
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    for number, character in enumerate(found, 1):
        click.echo(f"{number}. {character.name}" + (f" — {character.line}" if character.line else ""))
    if persona is not None:
        click.echo(f"persona {persona.id} ({persona.name}) made for {user.name}; it is now their persona"
                   + (f"; card written to {card_path}" if card_path else ""))
