"""Check-ins end to end with a controllable clock: /checkin in Telegram, the loop's pass
sending the character's message in the user's daytime, once, also after a restart."""

import pytest

from memory.records import Owner
from tests.fakes.clock import ManualClock
from tests.fakes.telegram_server import DEFAULT_USER_ID
from tests.harness import BotHarness

ALICE = DEFAULT_USER_ID


@pytest.fixture
def clock():
    return ManualClock("2026-03-02T02:00:00+00:00")  # 10:00 in Shanghai


@pytest.fixture
async def harness(tmp_path, telegram, fake_openai, clock):
    harness = await BotHarness(tmp_path, telegram, fake_openai, clock=clock).start()
    yield harness
    await harness.stop()


async def say(harness, text, count):
    harness.telegram.private_message(text)
    return await harness.replies(ALICE, count)


async def check_in_pass(harness) -> int:
    return await harness.dispatcher["checkin_loop"].run_once(harness.bot)


async def test_a_check_in_goes_out_once_in_the_users_daytime(harness, telegram, fake_openai, clock):
    await say(harness, "/tz Asia/Shanghai", 1)
    fake_openai.enqueue("How exciting! Tell me everything after.")
    await say(harness, "I'm flying to Kyoto next Friday!", 2)
    texts = await say(harness, "/checkin on 12h", 3)
    assert "12 h" in texts[-1] and "22:00–09:00" in texts[-1] and "Asia/Shanghai" in texts[-1]

    clock.advance(hours=11)  # 21:00 there: too soon
    assert await check_in_pass(harness) == 0
    clock.set("2026-03-02T15:00:00+00:00")  # 23:00 there: quiet hours
    assert await check_in_pass(harness) == 0
    clock.set("2026-03-03T01:10:00+00:00")  # 09:10 there
    fake_openai.enqueue("Good morning! Only a few days until Kyoto. Packed yet?")
    assert await check_in_pass(harness) == 1
    assert telegram.bot_texts(ALICE)[-1] == "Good morning! Only a few days until Kyoto. Packed yet?"
    request = fake_openai.chat_requests[-1]
    assert any("Kyoto next Friday" in m["content"] for m in request.messages[1:-1])
    assert "Alice has not written for about 23 hours" in request.messages[-1]["content"]
    user = harness.store.directory.find_user("tg", ALICE)
    stored = harness.store.conversations.messages(harness.store.conversations.active_conversation(Owner.user(user.id), "assistant").id)[-1]
    assert stored.role == "assistant" and stored.content.startswith("Good morning!")
    assert stored.platform_message_id == str(telegram.bot_messages(ALICE)[-1].message_id)
    assert await check_in_pass(harness) == 0

    await harness.restart()
    assert await check_in_pass(harness) == 0
    assert len(telegram.bot_texts(ALICE)) == 4
    assert harness.services.life.checkins.ledger(user.id) == [("2026-03-03T01:00:00.000+00:00", "sent")]


async def test_opting_out_and_never_opting_in(harness, telegram, fake_openai, clock):
    await say(harness, "/checkin on", 1)
    texts = await say(harness, "/checkin off", 2)
    assert "off" in texts[-1]
    stranger = telegram.user(2002, first_name="Bob")
    telegram.private_message("hi", user=stranger)  # not allowed: refused, never opted in
    await harness.replies(2002, 1)
    clock.advance(days=5)
    assert await check_in_pass(harness) == 0
    assert fake_openai.chat_requests == []


async def test_bad_check_in_input_gets_one_clear_line(harness, telegram):
    texts = await say(harness, "/checkin on soon", 1)
    assert "“soon” is not a rhythm" in texts[-1]
    texts = await say(harness, "/checkin on 1h", 2)
    assert "between 4 h and 30 days" in texts[-1]
    texts = await say(harness, "/checkin quiet lunchtime", 3)
    assert "“lunchtime” is not a span of hours" in texts[-1]
    texts = await say(harness, "/checkin quiet 23-7", 4)
    assert "23:00–07:00" in texts[-1]
    user = harness.store.directory.find_user("tg", ALICE)
    plan = harness.services.life.checkins.plan(user.id)
    assert not plan.enabled and (plan.quiet.start, plan.quiet.end) == (23 * 60, 7 * 60)
    telegram.group_message("/checkin on")
    await telegram.wait_until(lambda: telegram.bot_texts(-1001234567890), 5)
    assert "private chat" in telegram.bot_texts(-1001234567890)[0]
