"""Time awareness: date lines between sessions in the history, conversation age in the tail."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from memory.store import HistoryRow, Owner, Store, to_text
from memory.timeline import ago, with_date_lines
from tests.conftest import make_memory_engine
from tests.fakes.openai_server import Reply

START = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)  # a Friday


def row(index, role, minutes):
    return HistoryRow(index, role, f"m{index}", 2, to_text(START + timedelta(minutes=minutes)), "complete")


def test_date_lines_open_sessions_on_user_messages_only():
    rows = [row(1, "user", 0), row(2, "assistant", 1), row(3, "user", 60), row(4, "assistant", 61),
            row(5, "assistant", 3 * 24 * 60), row(6, "user", 3 * 24 * 60 + 5), row(7, "user", 3 * 24 * 60 + 6)]
    shanghai = ZoneInfo("Asia/Shanghai")
    decorated = with_date_lines(rows, None, shanghai)
    assert [r.content for r in decorated] == [
        "m1", "m2", "m3", "m4", "m5", "[Mon 2024-03-04 17:05]\nm6", "m7"]
    assert decorated[5].tokens > rows[5].tokens and decorated[5].id == 6
    # the window's first message opens a session when the message before it is old
    shifted = with_date_lines(rows[2:], to_text(START - timedelta(days=1)), shanghai)
    assert shifted[0].content == "[Fri 2024-03-01 18:00]\nm3"
    assert with_date_lines(rows, None, shanghai) == decorated  # deterministic


def test_ago_reads_naturally():
    now = START
    assert ago(now - timedelta(minutes=1), now) == "1 minute ago"
    assert ago(now - timedelta(hours=5), now) == "5 hours ago"
    assert ago(now - timedelta(days=3, hours=2), now) == "3 days ago"
    assert ago(now - timedelta(days=400), now) == "13 months ago"
    assert ago(now - timedelta(days=800), now) == "2 years ago"


async def test_the_model_learns_when_things_were_said_without_breaking_the_prefix(tmp_path, fake_openai):
    now = [START]
    store = Store(tmp_path / "t.db", clock=lambda: now[0])
    engine = make_memory_engine(store, fake_openai, clock=lambda: now[0], facts_every=0)
    user = store.ensure_user("local", "mia", display_name="Mia")
    store.update_user(user.id, timezone="Asia/Shanghai")
    user = store.user(user.id)
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
    assert back.endswith("[Mon 2024-03-04 18:00]\nI'm back")
    last = requests[3].messages
    assert [m["content"] for m in last[1:-1]] == [
        "good morning", "re: good morning", "lunch?", "re: lunch?", "[Mon 2024-03-04 18:00]\nI'm back", "re: I'm back"]
    assert last[:len(requests[2].messages) - 1] == requests[2].messages[:-1]  # the prefix repeats
    assert [m.content for m in store.messages(conversation.id)][4] == "I'm back"  # stored as written
    now[0] += timedelta(days=2)
    await engine.submit(conversation.id, "hello again", user=user)
    assert ("This conversation began Fri 2024-03-01 17:00 (5 days ago)."
            in fake_openai.chat_requests[-1].messages[-1]["content"])
    await engine.close()
    store.close()
