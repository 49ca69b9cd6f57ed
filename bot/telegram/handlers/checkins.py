"""/checkin: the user lets the character write first (on, a rhythm, quiet hours, off).
Scheduling and writing live in memory/checkins.py; the loop that sends them in
bot/telegram/checkin_loop.py."""

from __future__ import annotations

from datetime import timedelta

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.settings import Settings
from bot.texts import text
from memory.checkins import CheckinPlan, Checkins, parse_every, parse_quiet, zone_of
from memory.store import User

router = Router(name="checkins")


def every_text(every: timedelta, lang: str) -> str:
    hours = round(every.total_seconds() / 3600)
    if hours % 24:
        return text("tg.hours", lang, count=hours)
    return text("tg.day", lang) if hours == 24 else text("tg.days", lang, count=hours // 24)


def plan_text(plan: CheckinPlan | None, user: User, settings: Settings, lang: str) -> str:
    if plan is None or not plan.enabled:
        return text("tg.checkin_off", lang) + "\n\n" + text("tg.checkin_usage", lang)
    quiet = str(plan.quiet) if plan.quiet.start != plan.quiet.end else text("tg.checkin_no_quiet", lang)
    return text("tg.checkin_on", lang, every=every_text(plan.every, lang), quiet=quiet,
                zone=zone_of(user, settings.timezone).key)


def checkin_answer(checkins: Checkins, user: User, args: str, settings: Settings, lang: str) -> str:
    """Carry out `/checkin <args>`; the text to answer with."""
    action, _, value = args.strip().partition(" ")
    action, value = action.lower(), value.strip()
    if action == "on":
        every = parse_every(value) if value else None
        if value and every is None:
            return text("tg.checkin_bad_rhythm", lang, value=value)
        if every is not None and not checkins.allowed_every(every):
            return text("tg.checkin_rhythm_range", lang, low=every_text(checkins.min_every, lang),
                        high=every_text(checkins.max_every, lang))
        return plan_text(checkins.switch_on(user, every), user, settings, lang)
    if action == "off":
        checkins.switch_off(user)
        return text("tg.checkin_off", lang)
    if action == "quiet":
        quiet = parse_quiet(value)
        if quiet is None:
            return text("tg.checkin_bad_quiet", lang, value=value)
        plan = checkins.set_quiet(user, quiet)
        shown = str(quiet) if quiet.start != quiet.end else text("tg.checkin_no_quiet", lang)
        answer = text("tg.checkin_quiet_set", lang, quiet=shown, zone=zone_of(user, settings.timezone).key)
        return answer + ("\n" + plan_text(plan, user, settings, lang) if plan.enabled else "")
    return plan_text(checkins.plan(user.id), user, settings, lang)


@router.message(Command("checkin"))
async def checkin(message: Message, command: CommandObject, user: User, lang: str, settings: Settings,
                  checkins: Checkins | None) -> None:
    if checkins is None:
        await message.answer(text("tg.checkin_unavailable", lang))
    elif message.chat.type != "private":
        await message.answer(text("tg.checkin_private_only", lang))
    else:
        await message.answer(checkin_answer(checkins, user, command.args or "", settings, lang))
