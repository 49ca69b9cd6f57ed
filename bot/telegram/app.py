"""The Telegram app: builds the bot and the dispatcher from the services, and runs it.

Services reach handlers through the Dispatcher's workflow data (`Dispatcher(**deps)`,
handler parameters by name): `service` (the service layer, memory/service: every
command and the turn), `settings`, `turns` (its turns streamed into Telegram),
`replies`, `me` (the bot's own Telegram user), `personas` (card import and export),
for documents `jobs`, `reading_desk`, `novel_desk`, and `voice`. Handlers never get the
Store. Per update, middlewares add `user`, `lang`, `is_admin` (People) and `ctx`,
`place` (ChatPreamble). One Router per handler module, made fresh by its
`make_router()` for each dispatcher.

Start-up: the token is checked with getMe (a clear error if Telegram refuses it), the
command menu is registered in English and Chinese (failure tolerated), turns a crash
left pending are marked failed, and updates a crash left unhandled are replayed. Then
long polling, or a webhook when COMPANION_WEBHOOK_URL is set. On SIGTERM/SIGINT the bot
stops taking updates, asks streaming replies to stop (their partial text is kept and
sent), waits for in-flight handlers, and exits within about 10 s.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError, TelegramUnauthorizedError
from aiogram.types import BotCommand, BotCommandScopeDefault, ErrorEvent, MenuButtonWebApp, Update, WebAppInfo
from aiogram.types import User as TelegramUser

from bot.logs import add_secret, redact
from bot.services import Services, build_services
from bot.settings import Settings
from bot.telegram.age_gate import AgeGate
from bot.telegram.checkin_loop import CheckinLoop
from bot.telegram.handlers import (account, admin, characters, chat, checkins, commands, documents, history,
                                   memory, mini_app, models, personas, stop, voice)
from bot.telegram.jobs import ActiveJobs
from bot.telegram.middlewares import ChatPreamble, JournalOnReceipt, People, UpdateJournal, load_json
from bot.telegram.novels import NovelDesk
from bot.telegram.reading import ReadingDesk
from bot.telegram.resilience import TelegramRetry
from bot.telegram.responses import pin_response_types
from bot.telegram.send_budget import BudgetLimits, LocalSendBudget, SendBudget, install
from bot.telegram.streaming import ActiveReplies, StreamSettings
from bot.telegram.turns import TurnRunner
from bot.telegram.voice import VoiceDesk
from bot.texts import text
from memory.records import User

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 8.0

COMMANDS = {
    "en": [("start", "Say hello"), ("help", "What I can do"), ("new", "New conversation"),
           ("history", "Your conversations"), ("retry", "Another answer"), ("continue", "Continue my reply"),
           ("undo", "Undo the last exchange"), ("memory", "What I remember about you"),
           ("context", "What I see now"), ("search", "Search our history"), ("usage", "Tokens and cost"),
           ("export", "Export this conversation"), ("docs", "Your documents"),
           ("characters", "Characters of the novel"), ("asof", "Novel timeline: up to chapter N"),
           ("persona", "Who I am; switch character"), ("me", "Tell me who you are"),
           ("card", "This character as a card"), ("voice", "Voice replies on/off"),
           ("checkin", "Let me write first"), ("model", "Choose the model"), ("tz", "Your time zone"),
           ("lang", "Menu language"), ("app", "Open the app"), ("forget", "Delete all your data")],
    "zh": [("start", "打个招呼"), ("help", "我能做什么"), ("new", "开始新对话"), ("history", "你的对话"),
           ("retry", "换一个回答"), ("continue", "接着写"), ("undo", "撤销上一轮"), ("memory", "我记着的关于你的事"),
           ("context", "我现在看到的内容"), ("search", "搜索历史"), ("usage", "用量与费用"), ("export", "导出对话"),
           ("docs", "你的文档"), ("characters", "小说人物"), ("asof", "小说时间线：截至第 N 章"),
           ("persona", "当前角色；切换角色"), ("me", "告诉我你是谁"), ("card", "把当前角色导出为角色卡"),
           ("voice", "语音回复开关"), ("checkin", "允许我主动找你"), ("model", "选择模型"),
           ("tz", "你的时区"), ("lang", "菜单语言"), ("app", "打开应用"), ("forget", "删除你的全部数据")],
}


def build_bot(settings: Settings, token: str) -> Bot:
    if settings.telegram_api_base:
        server = TelegramAPIServer.from_base(settings.telegram_api_base, is_local=settings.telegram_api_local)
        return Bot(token, session=AiohttpSession(api=server))
    return Bot(token)


HANDLER_MODULES = (stop, admin, account, history, commands, memory, mini_app, personas, documents, characters,
                   voice, models, checkins, chat)  # in this order: the chat router takes whatever is left


def build_dispatcher(services: Services, me: TelegramUser, *, stream_settings: StreamSettings | None = None) -> Dispatcher:
    pin_response_types()
    settings = services.settings
    service = services.service
    replies = ActiveReplies()
    life = services.life
    voice_desk = VoiceDesk(life.audio, life.choices)
    turns = TurnRunner(service, replies, stream_settings=stream_settings, voice=voice_desk)
    jobs = ActiveJobs()
    dispatcher = Dispatcher(service=service, settings=settings, turns=turns, replies=replies, me=me,
                            personas=services.personas, jobs=jobs, voice=voice_desk,
                            reading_desk=ReadingDesk(service, settings, jobs),
                            novel_desk=NovelDesk(service, services.personas, jobs))
    journal = UpdateJournal(services.store)
    dispatcher["journal"] = journal
    dispatcher.update.outer_middleware(journal)
    dispatcher.update.outer_middleware(People(service))
    if settings.age_confirmation:
        dispatcher.update.outer_middleware(AgeGate(life.choices, minimum_age=settings.minimum_age))
    preamble = ChatPreamble(turns)
    for observer in (dispatcher.message, dispatcher.edited_message, dispatcher.callback_query):
        observer.middleware(preamble)
    if life.checkins is not None:
        checkin_loop = CheckinLoop(service, voice_desk, poll_seconds=settings.checkin_poll_seconds,
                                   stream_settings=stream_settings)
        dispatcher["checkin_loop"] = checkin_loop
        dispatcher.startup.register(checkin_loop.start)
        dispatcher.shutdown.register(checkin_loop.stop)
    for module in HANDLER_MODULES:
        dispatcher.include_router(module.make_router())
    dispatcher.errors.register(_on_error)
    return dispatcher


async def _on_error(event: ErrorEvent, service, bot: Bot, lang: str = "en", event_chat=None,
                    event_thread_id: int | None = None, user: User | None = None) -> bool:
    """Nothing crashes the polling loop: log, mark users who blocked the bot inactive, and
    tell the user in one line that it failed, so a failure is never silence."""
    if isinstance(event.exception, TelegramForbiddenError) and user is not None:
        service.user_left(user)
        log.info("user %s blocked the bot; marked inactive", user.external_id)
        return True
    log.error("handling update %s failed", event.update.update_id, exc_info=event.exception)
    if event_chat is not None and event.update.event_type in ("message", "callback_query"):
        try:
            await bot.send_message(event_chat.id, text("tg.failed", lang), message_thread_id=event_thread_id)
        except Exception as exc:  # noqa: BLE001 - telling the user is best effort
            log.info("could not tell chat %s that its update failed: %s", event_chat.id, exc)
    return True


async def register_commands(bot: Bot) -> None:
    for language, menu in COMMANDS.items():
        try:
            await bot.set_my_commands([BotCommand(command=c, description=d) for c, d in menu],
                                      scope=BotCommandScopeDefault(),
                                      language_code=None if language == "en" else language)
        except Exception as exc:  # noqa: BLE001 - the menu is a convenience
            log.warning("could not register the %s command menu: %s", language, exc)


async def replay_unfinished(dispatcher: Dispatcher, bot: Bot, services: Services) -> int:
    """Handle the updates a crash left unfinished, in the order they arrived."""
    entries = services.store.inbox.unfinished_updates("tg")
    for entry in entries:
        try:
            update = Update.model_validate_json(entry.payload)
        except ValueError:
            services.store.inbox.finish_update("tg", entry.update_id)
            continue
        await dispatcher.feed_update(bot, update, replayed=True)
    return len(entries)


async def prepare(services: Services, bot: Bot, *, stream_settings: StreamSettings | None = None,
                  send_budget: SendBudget | None = None) -> tuple[Dispatcher, TelegramUser]:
    """`send_budget`: the one all of this token's workers share; by default this process's own."""
    bot.session.middleware(TelegramRetry(backoff=(stream_settings or StreamSettings()).server_error_backoff))
    install(bot, send_budget or LocalSendBudget(BudgetLimits.from_settings(services.settings)))
    bot.session.json_loads = load_json  # lone surrogates in updates become U+FFFD
    me = await bot.get_me()
    dispatcher = build_dispatcher(services, me, stream_settings=stream_settings)
    await register_commands(bot)
    await set_menu_button(bot, services.settings.web_url)
    recovered = services.service.recover()
    journal: UpdateJournal = dispatcher["journal"]
    bot.session.middleware(JournalOnReceipt(journal))
    journal.prune()
    replayed = await replay_unfinished(dispatcher, bot, services)
    if recovered or replayed:
        log.info("after restart: %d unfinished turns marked failed, %d updates replayed", recovered, replayed)
    return dispatcher, me


async def shutdown(dispatcher: Dispatcher) -> None:
    """Ask streaming replies to stop (they keep and send their partial text), then wait."""
    replies: ActiveReplies = dispatcher["replies"]
    for reply in list(replies._replies.values()):
        reply.stop()
    tasks = set(getattr(dispatcher, "_handle_update_tasks", set())) | dispatcher.workflow_data.get("webhook_tasks", set())
    pending = [task for task in tasks if not task.done()]
    if pending:
        await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_SECONDS)


async def run_bot(settings: Settings) -> int:
    token = settings.require_telegram()
    services = build_services(settings)
    bot = build_bot(settings, token)
    try:
        try:
            dispatcher, me = await prepare(services, bot)
        except TelegramUnauthorizedError:
            print("companion: Telegram refused TELEGRAM_BOT_TOKEN; copy the token again from @BotFather",
                  file=sys.stderr)
            return 2
        except TelegramAPIError as exc:  # unreachable, or an answer that retrying did not fix
            print(redact(f"companion: Telegram did not let the bot start ({exc}); check TELEGRAM_API_BASE and the "
                  "network, then start again"), file=sys.stderr)
            return 1
        async def on_shutdown() -> None:
            await shutdown(dispatcher)

        dispatcher.shutdown.register(on_shutdown)
        log.info("running as @%s", me.username)
        try:
            web_runner = await start_mini_app(services, token) if settings.web_enabled else None
        except OSError as exc:
            print(f"companion: the Mini App cannot listen on {settings.web_host}:{settings.web_listen_port} "
                  f"({exc.strerror or exc}); set COMPANION_WEB_PORT to a free port", file=sys.stderr)
            return 1
        try:
            return await _receive_updates(dispatcher, bot, settings)
        finally:
            if web_runner is not None:
                await web_runner.cleanup()
    finally:
        await bot.session.close()
        await services.close()


async def start_mini_app(services: Services, token: str):
    """The Mini App beside polling or the webhook (its own port: COMPANION_WEB_PORT)."""
    from bot.web.server import start_web, web_app_for

    settings = services.settings
    return await start_web(web_app_for(services, token), settings.web_host, settings.web_listen_port)


async def set_menu_button(bot: Bot, web_url: str | None) -> None:
    """The bot's menu button opens the Mini App (for every private chat); a failure is tolerated."""
    if not web_url:
        return
    try:
        await bot.set_chat_menu_button(menu_button=MenuButtonWebApp(text="App", web_app=WebAppInfo(url=web_url)))
    except Exception as exc:  # noqa: BLE001 - the menu button is a convenience; /app still works
        log.warning("could not set the Mini App menu button: %s", exc)


async def _receive_updates(dispatcher: Dispatcher, bot: Bot, settings: Settings) -> int:
    """Long polling, or the webhook when COMPANION_WEBHOOK_URL is set, until stopped."""
    if settings.webhook_url:
        try:
            await run_webhook(dispatcher, bot, settings)
        except TelegramAPIError as exc:  # setWebhook refused, after retries
            print(redact(f"companion: Telegram refused the webhook ({exc}); check COMPANION_WEBHOOK_URL (a public "
                  "https URL)"), file=sys.stderr)
            return 1
    else:
        await dispatcher.start_polling(bot, allowed_updates=dispatcher.resolve_used_update_types(),
                                       close_bot_session=False)
    return 0


async def run_webhook(dispatcher: Dispatcher, bot: Bot, settings: Settings) -> None:
    from aiohttp import web
    from aiogram.webhook.aiohttp_server import setup_application

    from bot.telegram.webhook import WebhookReceiver

    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else secrets.token_urlsafe(32)
    add_secret(secret)  # a generated one is not a setting, but just as secret
    app = web.Application()
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.router.add_get("/healthz", health)
    receiver = WebhookReceiver(dispatcher, bot, dispatcher["journal"], secret)
    receiver.register(app, "/telegram")
    dispatcher["webhook_tasks"] = receiver.tasks
    setup_application(app, dispatcher, bot=bot)
    await bot.set_webhook(settings.webhook_url.rstrip("/") + "/telegram", secret_token=secret,
                          allowed_updates=dispatcher.resolve_used_update_types())
    host, port = settings.webhook_address
    runner = web.AppRunner(app)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    try:
        await web.TCPSite(runner, host, port).start()
        log.info("webhook listening on %s:%s", host, port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
