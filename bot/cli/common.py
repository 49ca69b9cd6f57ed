"""What every `companion` command shares: exit codes, settings errors as one line, and
`with_services`, which builds the services (bot/services.py), runs the async command in
one event loop and closes them there.

Exit codes everywhere: 0 done, 1 the operation failed or the input was refused, 2 bad
settings or usage. Problems are one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from typing import Any, Callable

import click

from bot.logs import configure_logging, redact
from bot.services import Services, build_services
from bot.settings import Settings, SettingsError, load_settings
from memory.assembly import ContextTooSmall
from memory.postgres import PostgresUnavailable
from personas import PersonaError


class Failure(click.ClickException):
    """The operation failed or the input was refused (exit code 1)."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(redact(f"companion: {self.message}"), err=True)


class BadSettings(click.ClickException):
    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(redact(f"companion: {self.message}"), err=True)


def configure(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format, settings.secrets())


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
            configure(settings)
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
            except PostgresUnavailable as exc:
                raise BadSettings(Settings.database_problem(exc)) from None
            except (PersonaError, ContextTooSmall, ValueError, KeyError) as exc:
                logging.getLogger(__name__).debug("command failed", exc_info=True)
                # str() of a KeyError is its repr, in quotes; other messages may end in a quote
                message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
                raise Failure(message) from None
            if code:
                sys.exit(code)

        return wrapper

    return decorate


def check_persona(services: Services, persona_id: str | None) -> str | None:
    if persona_id is not None and services.personas.get(persona_id) is None:
        raise click.BadParameter(f"no persona '{persona_id}' (see: companion personas list --all)",
                                 param_hint="--persona")
    return persona_id
