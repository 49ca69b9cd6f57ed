"""`companion web`: the Mini App alone, for development and tests (the bot process serves
it too, beside polling or the webhook, when COMPANION_WEB_URL or COMPANION_WEB_PORT is set)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import click

from bot.cli.common import BadSettings, configure, load_or_exit
from bot.services import build_services
from bot.settings import Settings, SettingsError
from bot.web.initdata import sign_init_data
from bot.web.server import serve_forever, web_app_for


@click.command()
@click.option("--link-for", "link_for", type=int, default=None, metavar="TELEGRAM_ID",
              help="Also print a local link signed for this Telegram user (development).")
def web(link_for: int | None) -> None:
    """Serve the Mini App alone (COMPANION_WEB_HOST:COMPANION_WEB_PORT, path /app)."""
    settings = load_or_exit()
    try:
        token = settings.require_telegram()  # initData is signed with it
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None
    configure(settings)
    asyncio.run(serve_web(settings, token, link_for=link_for))


async def serve_web(settings: Settings, token: str, *, link_for: int | None = None) -> None:
    services = build_services(settings)
    try:
        host, port = settings.web_host, settings.web_listen_port
        if link_for is not None:
            init_data = sign_init_data(token, {"id": link_for, "first_name": "Dev"})
            click.echo(f"http://{host}:{port}/app#tgWebAppData={quote(init_data, safe='')}&tgWebAppVersion=8.0"
                       "&tgWebAppPlatform=web")
        click.echo(f"serving the Mini App on http://{host}:{port}/app (Ctrl-C stops)")
        await serve_forever(web_app_for(services, token), host, port)
    finally:
        await services.close()
