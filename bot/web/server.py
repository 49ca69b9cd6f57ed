"""The Mini App's HTTP face: an aiohttp application serving the page at /app and its JSON
API at /app/api/, in the bot's process (beside polling or the webhook) or alone
(`companion web`).

Every API call carries the page's initData (`Authorization: tma <initData>`, the form
Telegram's docs use), checked by `bot.web.initdata`; the Telegram user id comes only from
it. The user then passes the chat's access rule (`Admission`: allowlist, admins, open)
and every action is a call of the service layer (`SelfService` over `CompanionService`)
for that user's private chat, so a user only
ever reaches their own data and an edit is in the next request. Missing, forged or stale
initData is 401, a user the bot does not serve 403, and neither gets any data.

Headers: a strict Content-Security-Policy (own scripts, styles and images only; framing
only by Telegram's web clients), nosniff, no referrer, and `no-store` on every API answer
(private data) and on the page itself (a new version is picked up at once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

from bot.texts import language_of, render
from bot.web.initdata import InitDataError, verify_init_data
from memory.service.results import Notice
from memory.service.self_service import NotFound, SelfService, SelfServiceError
from memory.records import User

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 256 * 1024
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'self' https://web.telegram.org https://*.telegram.org")

SELF_SERVICE = web.AppKey("self_service", SelfService)
GUARD = web.AppKey("guard", object)


class Guard:
    """initData → our User (created on first sight, as the chat does), or a refusal."""

    def __init__(self, service: SelfService, token: str, *, max_age_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.token = token
        self.max_age_seconds = max_age_seconds
        self.clock = clock

    def user_of(self, request: web.Request) -> User:
        header = request.headers.get("Authorization", "")
        raw = header[4:].strip() if header[:4].lower() == "tma " else ""
        try:
            data = verify_init_data(raw, self.token, max_age_seconds=self.max_age_seconds, now=self.clock())
        except InitDataError as exc:
            log.info("mini app: refused initData (%s) from %s", exc, request.remote)
            raise _error(401, "unauthorized") from None
        person = data.user
        name = " ".join(part for part in (person.first_name, person.last_name) if part)
        user = self.service.arrive(person.id, display_name=name, language=person.language_code)
        if user is None:
            raise _error(403, "not_allowed")
        return user


def _error(status: int, code: str, detail: str = "") -> web.HTTPException:
    body = json.dumps({"error": code, "detail": detail}, ensure_ascii=False)
    kind = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
            404: web.HTTPNotFound, 413: web.HTTPRequestEntityTooLarge}[status]
    if status == 413:
        return kind(max_size=MAX_BODY_BYTES, actual_size=0, text=body, content_type="application/json")
    return kind(text=body, content_type="application/json")


Handler = Callable[[web.Request, SelfService, User], Awaitable[object]]


def api(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An API route: the verified user and the service in, JSON (or a response) out;
    the service's refusals become 400/404 with their code."""

    async def route(request: web.Request) -> web.StreamResponse:
        user = request.app[GUARD].user_of(request)
        lang = language_of(user.ui_language)
        try:
            result = await handler(request, request.app[SELF_SERVICE], user)
        except NotFound as exc:
            raise _error(404, exc.code, str(exc)) from None
        except SelfServiceError as exc:
            raise _error(400, exc.code, render(exc.notice, lang) if exc.notice else str(exc)) from None
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, Notice):  # a change done, said as the chat says it
            result = {"ok": True, "notice": render(result, language_of(request.app[SELF_SERVICE].store.directory.user(
                user.id).ui_language))}
        return web.json_response(result, dumps=lambda value: json.dumps(value, ensure_ascii=False))

    return route


async def body(request: web.Request) -> dict:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _error(400, "bad_json") from None
    if not isinstance(data, dict):
        raise _error(400, "bad_json")
    return data


def number(request: web.Request, name: str) -> int:
    value = request.match_info[name]
    if not value.isdigit():
        raise _error(404, "not_found")
    return int(value)


# -- the API, one thin function per action ------------------------------------------------
async def whoami(request, service: SelfService, user: User):
    return {"id": int(user.external_id), "name": user.name, "lang": language_of(user.ui_language)}


async def list_personas(request, service, user):
    return service.personas(user)


async def persona_avatar(request, service, user):
    data = service.avatar(user, request.match_info["persona_id"])
    kind = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg" if data[:2] == b"\xff\xd8" else \
        "image/webp" if data[8:12] == b"WEBP" else "application/octet-stream"
    return web.Response(body=data, content_type=kind)


async def choose_persona(request, service, user):
    switch, notice = service.switch_persona(user, request.match_info["persona_id"])
    return {**switch, "notice": render(notice, language_of(user.ui_language)) if notice else ""}


async def memory_view(request, service, user):
    return service.memory_view(user)


async def add_fact(request, service, user):
    return service.add_fact(user, str((await body(request)).get("text", "")))


async def edit_fact(request, service, user):
    return service.edit_fact(user, number(request, "fact_id"), str((await body(request)).get("text", "")))


async def delete_fact(request, service, user):
    service.delete_fact(user, number(request, "fact_id"))
    return {"deleted": True}


async def set_me(request, service, user):
    data = await body(request)
    return service.set_me(user, str(data.get("name", "")), str(data.get("description", "")))


async def own_personas(request, service, user):
    return {"personas": service.own_personas(user)}


async def lorebook(request, service, user):
    return service.lorebook(user, request.match_info["persona_id"])


async def save_lorebook(request, service, user):
    return service.save_lorebook(user, request.match_info["persona_id"], (await body(request)).get("entries"))


async def documents(request, service, user):
    return service.documents(user)


async def change_document(request, service, user):
    data, document_id = await body(request), number(request, "document_id")
    if "upto" in data:
        upto = data["upto"]
        if upto is not None and (not isinstance(upto, int) or isinstance(upto, bool)):
            raise _error(400, "bad_chapter")
        return await service.set_reading_position(user, document_id, upto)
    return service.attach(user, document_id, bool(data.get("attached")))


async def history(request, service, user):
    return service.history(user)


async def conversation_messages(request, service, user):
    return service.messages(user, number(request, "conversation_id"))


async def search(request, service, user):
    return {"query": request.query.get("q", ""), "results": service.search(user, request.query.get("q", ""))}


async def export(request, service, user):
    name, data = service.export(user, number(request, "conversation_id"))
    return web.Response(body=data, content_type="application/json", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def settings_view(request, service, user):
    return service.settings(user)


async def update_settings(request, service, user):
    return service.update_settings(user, await body(request))


# -- the page -----------------------------------------------------------------------------
async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def to_page(request: web.Request) -> web.Response:
    raise web.HTTPFound("/app")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@web.middleware
async def limit_body(request: web.Request, handler):
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _error(413, "too_large")
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    private = request.path.startswith("/app/api/") or request.path in ("/app", "/app/")
    response.headers["Cache-Control"] = "no-store" if private else "no-cache"


def build_web_app(self_service: SelfService, token: str, *, max_age_seconds: float = 24 * 3600,
                  clock: Callable[[], float] = time.time) -> web.Application:
    app = web.Application(middlewares=[limit_body], client_max_size=MAX_BODY_BYTES)
    app[SELF_SERVICE] = self_service
    app[GUARD] = Guard(self_service, token, max_age_seconds=max_age_seconds, clock=clock)
    app.on_response_prepare.append(security_headers)
    routes = app.router
    routes.add_get("/", to_page)
    routes.add_get("/healthz", health)
    routes.add_get("/app", page)
    routes.add_get("/app/", page)
    routes.add_static("/app/static", STATIC, follow_symlinks=False)
    for method, path, handler in [
        ("GET", "me", whoami),
        ("GET", "personas", list_personas),
        ("GET", "personas/{persona_id}/avatar", persona_avatar),
        ("POST", "personas/{persona_id}/choose", choose_persona),
        ("GET", "memory", memory_view),
        ("POST", "memory/facts", add_fact),
        ("PUT", "memory/facts/{fact_id}", edit_fact),
        ("DELETE", "memory/facts/{fact_id}", delete_fact),
        ("PUT", "memory/me", set_me),
        ("GET", "lorebooks", own_personas),
        ("GET", "lorebooks/{persona_id}", lorebook),
        ("PUT", "lorebooks/{persona_id}", save_lorebook),
        ("GET", "documents", documents),
        ("PATCH", "documents/{document_id}", change_document),
        ("GET", "history", history),
        ("GET", "history/{conversation_id}", conversation_messages),
        ("GET", "history/{conversation_id}/export", export),
        ("GET", "search", search),
        ("GET", "settings", settings_view),
        ("PATCH", "settings", update_settings),
    ]:
        routes.add_route(method, f"/app/api/{path}", api(handler))
    return app


def web_app_for(services, token: str, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The Mini App over the composition root's services (bot/services.py)."""
    return build_web_app(services.self_service, token,
                         max_age_seconds=services.settings.web_auth_max_age_hours * 3600, clock=clock)


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("mini app listening on http://%s:%s/app", host, port)
    return runner


async def serve_forever(app: web.Application, host: str, port: int) -> None:
    """`companion web`: serve until SIGINT/SIGTERM."""
    runner = await start_web(app, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
