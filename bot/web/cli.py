"""`companion web`: the Mini App alone, for development and tests (the bot process serves
it too, beside polling or the webhook, when COMPANION_WEB_URL or COMPANION_WEB_PORT is set)."""

from __future__ import annotations

import click

from bot.services import build_services
from bot.settings import Settings
from bot.web.initdata import sign_init_data
from bot.web.server import serve_forever, web_app_for


async def serve_web(settings: Settings, token: str, *, link_for: int | None = None) -> None:
    services = build_services(settings)
    try:
        host, port = settings.web_host, settings.web_listen_port
        if link_for is not None:
            init_data = sign_init_data(token, {"id": link_for, "first_name": "Dev"})
            click.echo(f"http://{host}:{port}/app#tgWebAppData={_quoted(init_data)}&tgWebAppVersion=8.0"
                       "&tgWebAppPlatform=web")
        click.echo(f"serving the Mini App on http://{host}:{port}/app (Ctrl-C stops)")
        await serve_forever(web_app_for(services, token), host, port)
    finally:
        await services.close()


def _quoted(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
