"""Check-ins with a controllable clock: only for users who opted in, at most at their
rhythm, never in their quiet hours (in their time zone), not while they talk, pausing
when they stop answering, and exactly once across restarts and competing passes."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from memory.checkins import CHECKIN_INSTRUCTION, Checkins, QuietHours, parse_every, parse_quiet
from memory.schema import open_store
from memory.records import Owner
from tests.conftest import make_engine
from tests.fakes.clock import ManualClock


@pytest.fixture
def store(backend_store):
    """Each test on a SQLite file and on PostgreSQL."""
    return backend_store


SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("text,expected", [
    ("22-9", (1320, 540)), ("23:30-07:15", (1410, 435)), ("23到7", (1380, 420)), ("0-24", (0, 0)),
    ("off", (0, 0)), ("22 - 8", (1320, 480)),
])
def test_parse_quiet(text, expected):
    quiet = parse_quiet(text)
    assert (quiet.start, quiet.end) == expected


@pytest.mark.parametrize("text", ["noon", "25-3", "22:61-7", "", "22"])
def test_parse_quiet_refuses(text):
    assert parse_quiet(text) is None


@pytest.mark.parametrize("text,hours", [("12h", 12), ("2d", 48), ("1w", 168), ("daily", 24), ("每天", 24),
                                        ("3 days", 72), ("weekly", 168), ("6小时", 6)])
def test_parse_every(text, hours):
    assert parse_every(text) == timedelta(hours=hours)


@pytest.mark.parametrize("text", ["0h", "soon", "1.5d", "-2d"])
def test_parse_every_refuses(text):
    assert parse_every(text) is None


def test_quiet_hours_wrap_midnight_in_the_users_zone():
    quiet = QuietHours(22 * 60, 9 * 60)
    late = datetime(2026, 3, 2, 15, 30, tzinfo=timezone.utc)  # 23:30 in Shanghai
    assert quiet.after(late, SHANGHAI) == datetime(2026, 3, 3, 1, 0, tzinfo=timezone.utc)  # 09:00 there
    early = datetime(2026, 3, 2, 20, 0, tzinfo=timezone.utc)  # 04:00 in Shanghai, the next day
    assert quiet.after(early, SHANGHAI) == datetime(2026, 3, 3, 1, 0, tzinfo=timezone.utc)
    day = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)  # noon in Shanghai
    assert quiet.after(day, SHANGHAI) == day
    assert str(quiet) == "22:00–09:00" and not QuietHours(0, 0).contains(late)


@pytest.fixture
def clock():
    return ManualClock("2026-03-02T02:00:00+00:00")  # 10:00 in Shanghai


@pytest.fixture
async def world(tmp_path, fake_openai, clock):
    store = open_store(tmp_path / "c.db", clock=clock)
    engine = make_engine(store, fake_openai, clock=clock)
    checkins = Checkins(engine, unanswered_limit=2)
    yield store, engine, checkins
    await engine.close()
    store.close()


def user_in(store, zone="Asia/Shanghai", external_id=1):
    user = store.directory.ensure_user("tg", external_id, display_name="Alice")
    store.directory.update_user(user.id, timezone=zone)
    return store.directory.user(user.id)


def test_nobody_who_did_not_opt_in_is_written_to(world, clock):
    store, _, checkins = world
    user_in(store)
    clock.advance(days=30)
    assert checkins.claim_due() == []
    assert store.db.execute("SELECT count(*) FROM checkins").fetchone()[0] == 0


async def test_due_after_the_rhythm_outside_quiet_hours_in_the_users_zone(world, clock, fake_openai):
    store, engine, checkins = world
    alice = user_in(store)
    plan = checkins.switch_on(alice, timedelta(hours=12))
    # 12 h after 10:00 Shanghai is 22:00, in her quiet hours: the due time moves to 09:00
    assert plan.due_at == datetime(2026, 3, 3, 1, 0, tzinfo=timezone.utc)
    clock.set("2026-03-02T14:30:00+00:00")  # 22:30 Shanghai: not yet
    assert checkins.claim_due() == []
    clock.set("2026-03-03T01:05:00+00:00")  # 09:05 Shanghai
    claims = checkins.claim_due()
    assert [c.user.id for c in claims] == [alice.id]
    assert checkins.claim_due() == []  # claimed once
    fake_openai.enqueue("Morning! How did the interview go?")
    result = await checkins.write(claims[0])
    checkins.finish(claims[0], "sent")
    assert result.reply.role == "assistant" and result.reply.content == "Morning! How did the interview go?"
    request = fake_openai.chat_requests[-1]
    assert CHECKIN_INSTRUCTION.split(":")[0].format(user="Alice") in request.messages[-1]["content"]
    assert "Current time for the user: Tuesday, 2026-03-03 09:05" in request.messages[-1]["content"]
    stored = store.conversations.messages(claims[0].conversation_id)
    assert stored[-1].content == result.reply.content  # the instruction itself is never stored
    assert all("Not written by" not in m.content for m in stored)
    assert checkins.ledger(alice.id) == [("2026-03-03T01:00:00.000+00:00", "sent")]
    # the next one is a rhythm later, counted from this check-in
    assert checkins.plan(alice.id).due_at == datetime(2026, 3, 3, 13, 5, tzinfo=timezone.utc)


def test_a_user_in_another_zone_has_other_quiet_hours(world, clock):
    store, _, checkins = world
    bob = user_in(store, "America/New_York", external_id=2)
    clock.set("2026-03-02T08:00:00+00:00")  # 03:00 in New York
    plan = checkins.switch_on(bob, timedelta(hours=4))  # 07:00 there, still quiet until 09:00
    assert plan.due_at == datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)


def test_conversation_in_full_swing_gets_no_check_in(world, clock):
    store, engine, checkins = world
    alice = user_in(store)
    checkins.switch_on(alice, timedelta(hours=6))
    conversation = engine.conversation_for(Owner.user(alice.id), user=alice)
    clock.advance(hours=5)
    store.conversations.add_message(conversation.id, "user", "still here", user_id=alice.id)
    clock.advance(hours=2)  # the stored due time passed, but she wrote 2 h ago
    assert checkins.claim_due() == []
    assert checkins.plan(alice.id).due_at == clock.now + timedelta(hours=4)


def test_opting_out_stops_check_ins(world, clock):
    store, _, checkins = world
    alice = user_in(store)
    checkins.switch_on(alice, timedelta(hours=6))
    checkins.switch_off(alice)
    clock.advance(days=3)
    assert checkins.claim_due() == [] and not checkins.plan(alice.id).enabled


async def test_silence_pauses_check_ins_until_the_user_writes(world, clock, fake_openai):
    store, engine, checkins = world
    alice = user_in(store)
    checkins.switch_on(alice, timedelta(hours=6))
    sent = 0
    for _ in range(4):
        clock.advance(hours=6, minutes=1)
        for claim in checkins.claim_due():
            await checkins.write(claim)
            checkins.finish(claim, "sent")
            sent += 1
    assert sent == 2 and checkins.unanswered(alice.id) == 2
    conversation = engine.conversation_for(Owner.user(alice.id), user=alice)
    store.conversations.add_message(conversation.id, "user", "sorry, busy week", user_id=alice.id)
    clock.advance(hours=6, minutes=1)
    assert len(checkins.claim_due()) == 1


async def test_a_restart_neither_loses_nor_doubles_a_check_in(tmp_path, fake_openai, clock):
    path = tmp_path / "restart.db"
    store = open_store(path, clock=clock)
    engine = make_engine(store, fake_openai, clock=clock)
    checkins = Checkins(engine)
    alice = user_in(store)
    checkins.switch_on(alice, timedelta(hours=6))
    await engine.close()
    store.close()

    # restart: the plan survived; the check-in is claimed, written, and the process dies before sending
    clock.advance(hours=7)
    store = open_store(path, clock=clock)
    engine = make_engine(store, fake_openai, clock=clock)
    checkins = Checkins(engine)
    claim = checkins.claim_due()[0]
    await checkins.write(claim)
    written = store.conversations.messages(claim.conversation_id)[-1]
    await engine.close()
    store.close()

    # restart again: the unfinished claim is abandoned, its text hidden, and nothing is sent twice
    store = open_store(path, clock=clock)
    engine = make_engine(store, fake_openai, clock=clock)
    checkins = Checkins(engine)
    assert checkins.recover() == 1
    assert store.conversations.message(written.id).status == "hidden"
    assert checkins.claim_due() == []
    assert checkins.ledger(alice.id)[0][1] == "abandoned"
    clock.advance(hours=6, minutes=1)  # 23:01 in Shanghai: quiet
    assert checkins.claim_due() == []
    clock.set("2026-03-03T01:30:00+00:00")  # 09:30 there: the rhythm goes on
    assert len(checkins.claim_due()) == 1
    await engine.close()
    store.close()


def test_two_passes_over_one_database_claim_a_check_in_once(tmp_path, fake_openai, clock):
    path = tmp_path / "two.db"
    first_store, second_store = open_store(path, clock=clock), open_store(path, clock=clock)
    first = Checkins(make_engine(first_store, fake_openai, clock=clock))
    second = Checkins(make_engine(second_store, fake_openai, clock=clock))
    alice = user_in(first_store)
    first.switch_on(alice, timedelta(hours=6))
    clock.advance(hours=7)
    plans_seen_by_second = second_store.db.execute("SELECT count(*) FROM checkin_plans").fetchone()[0]
    claims = first.claim_due() + second.claim_due()
    assert plans_seen_by_second == 1 and len(claims) == 1
    first_store.close()
    second_store.close()


def test_rhythm_limits_and_quiet_hours_setting(world, clock):
    store, _, checkins = world
    alice = user_in(store)
    assert not checkins.allowed_every(timedelta(hours=1)) and checkins.allowed_every(timedelta(days=2))
    with pytest.raises(ValueError):
        checkins.switch_on(alice, timedelta(minutes=30))
    plan = checkins.set_quiet(alice, QuietHours(0, 0))  # before opting in: kept for later
    assert not plan.enabled and plan.quiet == QuietHours(0, 0)
    plan = checkins.switch_on(alice)
    assert plan.quiet == QuietHours(0, 0) and plan.every == timedelta(days=1)
    assert plan.due_at == clock.now + timedelta(days=1)
