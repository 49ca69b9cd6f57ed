"""Time awareness: time stamps in the history (sessions, the first message, quarters of an
hour), conversation age in the tail; the current time without a per-turn tail line."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from memory.schema import open_store
from memory.records import HistoryRow, Owner, to_text
from memory.timeline import ago, with_date_lines
from tests.conftest import make_memory_engine
from tests.fakes.openai_server import Reply

START = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)  # a Friday


def row(index, role, minutes):
    return HistoryRow(index, role, f"m{index}", 2, to_text(START + timedelta(minutes=minutes)), "complete")


def test_stamps_open_sessions_and_quarters_on_user_messages_only():
    rows = [row(1, "user", 0), row(2, "assistant", 1), row(3, "user", 10), row(4, "user", 60), row(5, "assistant", 61),
            row(6, "assistant", 3 * 24 * 60), row(7, "user", 3 * 24 * 60 + 5), row(8, "user", 3 * 24 * 60 + 6)]
    shanghai = ZoneInfo("Asia/Shanghai")
    decorated = with_date_lines(rows, None, shanghai)
    assert [r.content for r in decorated] == [
        "[Fri 2024-03-01 17:00]\nm1",  # the conversation's first
        "m2", "m3",  # the same quarter of an hour
        "[Fri 2024-03-01 18:00]\nm4",  # the first of the user's in a new quarter
        "m5", "m6", "[Mon 2024-03-04 17:05]\nm7", "m8"]  # a session opened by a greeting
    assert decorated[3].tokens > rows[3].tokens and decorated[3].id == 4
    # the window's first message opens a session when the message before it is old
    shifted = with_date_lines(rows[3:], to_text(START - timedelta(days=1)), shanghai,
                              previous_user_at=to_text(START - timedelta(days=1)))
    assert shifted[0].content == "[Fri 2024-03-01 18:00]\nm4"
    # and looks the same whatever the window's start: a pure function of stored data
    assert with_date_lines(rows[2:], rows[1].created_at, shanghai, previous_user_at=rows[0].created_at) \
        == decorated[2:]
    assert with_date_lines(rows, None, shanghai) == decorated  # deterministic


def test_a_stamp_is_never_older_than_a_quarter_of_an_hour_on_a_long_session():
    """Replies that cross a quarter do not hide the time: the rule follows the user's messages."""
    zone = ZoneInfo("UTC")
    minutes, rows = 0, []
    for index in range(60):  # a user message every 7 minutes, each reply a minute later
        rows.append(row(2 * index, "user", minutes))
        rows.append(row(2 * index + 1, "assistant", minutes + 1))
        minutes += 7
    decorated = with_date_lines(rows, None, zone)
    last_stamp = None
    for original, sent in zip(rows, decorated):
        if sent.content != original.content:
            last_stamp = original.created_at
        if original.role == "user":
            age = datetime.fromisoformat(original.created_at) - datetime.fromisoformat(last_stamp)
            assert age < timedelta(minutes=15)
    stamped = sum(1 for o, s in zip(rows, decorated) if o.content != s.content)
    assert stamped <= 60 * 7 // 15 + 2  # about one per quarter, not one per message


def test_ago_reads_naturally():
    now = START
    assert ago(now - timedelta(minutes=1), now) == "1 minute ago"
    assert ago(now - timedelta(hours=5), now) == "5 hours ago"
    assert ago(now - timedelta(days=3, hours=2), now) == "3 days ago"
    assert ago(now - timedelta(days=400), now) == "13 months ago"
    assert ago(now - timedelta(days=800), now) == "2 years ago"


async def test_the_model_learns_when_things_were_said_without_breaking_the_prefix(tmp_path, fake_openai):
    now = [START]
    store = open_store(tmp_path / "t.db", clock=lambda: now[0])
    engine = make_memory_engine(store, fake_openai, clock=lambda: now[0], facts_every=0)
    user = store.directory.ensure_user("local", "mia", display_name="Mia")
    store.directory.update_user(user.id, timezone="Asia/Shanghai")
    user = store.directory.user(user.id)
    conversation = engine.conversation_for(Owner.user(user.id), user=user)
    for text, later in [("good morning", timedelta(0)), ("lunch?", timedelta(hours=1)),
                        ("I'm back", timedelta(days=3)), ("anyone?", timedelta(minutes=2))]:
        now[0] += later
        fake_openai.enqueue(Reply(f"re: {text}"))
        await engine.submit(conversation.id, text, user=user)
    requests = fake_openai.chat_requests
    back = requests[2].messages[-1]["content"]
    assert "The previous message was sent Fri 2024-03-01 18:00 (3 days ago)." in back
    assert "This conversation began" not in back  # its one earlier session is that message's
    assert "previous message was sent" not in requests[3].messages[-1]["content"]  # mid-session
    assert back.startswith("[Mon 2024-03-04 18:00]\nI'm back\n\n")  # the tail after the user's words
    last = requests[3].messages
    assert [m["content"] for m in last[1:-1]] == [
        "[Fri 2024-03-01 17:00]\ngood morning", "re: good morning", "[Fri 2024-03-01 18:00]\nlunch?", "re: lunch?",
        "[Mon 2024-03-04 18:00]\nI'm back", "re: I'm back"]
    assert last[:len(requests[2].messages) - 1] == requests[2].messages[:-1]  # the prefix repeats
    # mid-session, in the same quarter: no tail at all, and no time line (the stamp two
    # minutes ago says the time): the request extends the previous one, reply included
    assert last[-1]["content"] == "anyone?"
    assert not any("Current time" in m["content"] for r in requests for m in r.messages)
    assert [m.content for m in store.conversations.messages(conversation.id)][4] == "I'm back"  # stored as written
    now[0] += timedelta(days=2)
    await engine.submit(conversation.id, "hello again", user=user)
    assert ("This conversation began Fri 2024-03-01 17:00 (5 days ago)."
            in fake_openai.chat_requests[-1].messages[-1]["content"])
    await engine.close()
    store.close()
