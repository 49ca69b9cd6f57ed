"""The `companion` command line.

Exit codes everywhere: 0 done, 1 the operation failed or the input was refused, 2 bad
settings or usage. Problems are one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import json
import logging
import sys
from typing import Any, Callable

import click

from bot.inspect import render_summary, request_json
from bot.services import Services, build_services
from bot.settings import Settings, SettingsError, load_settings
from memory.assembly import ContextTooSmall
from memory.store import Owner
from personas import PersonaError


class Failure(click.ClickException):
    """The operation failed or the input was refused (exit code 1)."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"companion: {self.message}", err=True)


class BadSettings(click.ClickException):
    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"companion: {self.message}", err=True)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The HTTP clients log every request at INFO; that is noise next to a chat.
    for noisy in ("httpx", "httpx2", "openai", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def load_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None


def with_services(*, needs_model: bool = False) -> Callable:
    """Load settings, build services, run the (async) command in one event loop, close the
    services in that same loop, and map errors to exit codes."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            settings = load_or_exit()
            configure_logging(settings)
            if needs_model:
                try:
                    settings.require_model_access()
                except SettingsError as exc:
                    raise BadSettings(str(exc)) from None

            async def run_command() -> Any:
                services = build_services(settings)
                try:
                    return await command(services, *args, **kwargs)
                finally:
                    await services.close()

            try:
                code = asyncio.run(run_command())
            except (PersonaError, ContextTooSmall, ValueError, KeyError) as exc:
                logging.getLogger(__name__).debug("command failed", exc_info=True)
                raise Failure(str(exc).strip("'\"")) from None
            if code:
                sys.exit(code)

        return wrapper

    return decorate


def check_persona(services: Services, persona_id: str | None) -> str | None:
    if persona_id is not None and services.personas.get(persona_id) is None:
        known = ", ".join(p.id for p in services.personas.all())
        raise click.BadParameter(f"no persona '{persona_id}' (known: {known})", param_hint="--persona")
    return persona_id


@click.group()
@click.version_option(package_name="companion-bot")
def main() -> None:
    """A Telegram companion bot with lossless long memory."""


@main.command()
@click.option("--user", "user_spec", default=None, help="Local user name (default: your login name).")
@click.option("--persona", "persona_id", default=None, help="Persona id (default: the default persona).")
@with_services(needs_model=True)
async def chat(services: Services, user_spec: str | None, persona_id: str | None) -> int:
    """Chat in the terminal: same engine, same database. Reads stdin line by line."""
    from bot.terminal import TerminalChat

    check_persona(services, persona_id)
    user = services.resolve_user(user_spec or getpass.getuser())
    return await TerminalChat(services, user, persona_id).run()


@main.command()
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
    model = engine.persona(conversation.persona_id).model.model or services.settings.model
    if as_json:
        click.echo(json.dumps(request_json(request, model), ensure_ascii=False, indent=2))
    else:
        click.echo(render_summary(request, model))


@main.command()
def run() -> None:
    """Start the Telegram bot (long polling, or a webhook when COMPANION_WEBHOOK_URL is set)."""
    from bot.telegram.app import run_bot

    settings = load_or_exit()
    try:
        settings.require_telegram()
        settings.require_model_access()
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None
    configure_logging(settings)
    code = asyncio.run(run_bot(settings))
    sys.exit(code)


# Documents and novels live in their own module; registered here, after the helpers
# they import from this one.
from bot.cli_documents import characters, ingest  # noqa: E402

main.add_command(ingest)
main.add_command(characters)


if __name__ == "__main__":
    main()
