"""Voice in Telegram end to end: a real Ogg Opus voice note travels from the fake Bot API
through the bot to the fake transcription endpoint, is stored as spoken text and
answered; with /voice on, the reply also comes back as an Ogg Opus voice note (sendVoice)."""

import pytest

from memory.records import Owner
from tests.fakes.audio import codec_of, decoded_seconds, ogg_opus_tone, wav_tone
from tests.fakes.telegram_server import DEFAULT_USER_ID
from tests.harness import BotHarness

ALICE = DEFAULT_USER_ID


@pytest.fixture
async def voiced(tmp_path, telegram, fake_openai):
    harness = await BotHarness(tmp_path, telegram, fake_openai, stt_model="whisper-1", tts_model="tts-1",
                               tts_voice="nova").start()
    yield harness
    await harness.stop()


def alice_messages(harness):
    user = harness.store.directory.find_user("tg", ALICE)
    conversation = harness.store.conversations.active_conversation(Owner.user(user.id), "assistant")
    return harness.store.conversations.messages(conversation.id) if conversation else []


async def test_a_voice_note_is_transcribed_stored_as_spoken_and_answered(voiced, telegram, fake_openai):
    note = ogg_opus_tone(0.8)
    fake_openai.transcripts.append("What should I cook tonight?")
    fake_openai.enqueue("Pasta with lemon!")
    sent = telegram.voice(note, duration=1)
    assert await voiced.replies(ALICE, 1) == ["Pasta with lemon!"]
    upload = fake_openai.audio_requests[0].body
    assert upload["model"] == "whisper-1" and upload["file"]["data"] == note
    assert upload["file"]["filename"].endswith(".ogg")  # Telegram's .oga renamed
    assert fake_openai.chat_requests[0].messages[-1]["content"].endswith("[voice message] What should I cook tonight?")
    spoken = [m for m in alice_messages(voiced) if m.role == "user"]
    assert [(m.content, m.platform_message_id) for m in spoken] == [
        ("[voice message] What should I cook tonight?", str(sent["message_id"]))]
    assert telegram.calls_of("sendVoice") == []  # voice replies are off until asked for


async def test_voice_replies_come_back_as_ogg_opus_voice_notes(voiced, telegram, fake_openai):
    telegram.private_message("/voice on")
    assert "on" in (await voiced.replies(ALICE, 1))[0]
    fake_openai.enqueue("*smiles* Of course I remember your sister's wedding.")
    telegram.voice(ogg_opus_tone(0.5))
    await telegram.wait_until(lambda: telegram.calls_of("sendVoice", ok=True), 10)
    assert "Of course I remember your sister's wedding." in telegram.bot_texts(ALICE)[1]
    voice_message = telegram.bot_messages(ALICE)[-1]
    assert voice_message.kind == "voice"
    stored = voice_message.payload["voice"]
    data = telegram.file_bytes(stored["file_id"])
    assert stored["mime_type"] == "audio/ogg" and codec_of(data) == ("ogg", "opus")
    assert stored["duration"] == max(1, round(decoded_seconds(data)))
    speech = [r for r in fake_openai.audio_requests if r.path.endswith("/speech")][0].body
    assert speech == {"model": "tts-1", "voice": "nova", "input": "smiles Of course I remember your sister's wedding.",
                      "response_format": "opus"}
    telegram.private_message("/voice off")
    await voiced.replies(ALICE, 4)
    fake_openai.enqueue("Text only now.")
    telegram.private_message("ok")
    await voiced.replies(ALICE, 5)
    assert len(telegram.calls_of("sendVoice")) == 1


async def test_audio_files_are_transcribed_too(voiced, telegram, fake_openai):
    telegram.audio(wav_tone(0.6), file_name="memo.wav", mime_type="audio/wav")
    await voiced.replies(ALICE, 1)
    assert fake_openai.audio_requests[0].body["file"]["filename"] == "memo.wav"
    assert len(fake_openai.chat_requests) == 1


async def test_what_cannot_be_heard_gets_one_clear_message_and_no_turn(voiced, telegram, fake_openai):
    telegram.voice(b"OggS but not really audio")
    texts = await voiced.replies(ALICE, 1)
    assert "couldn't make out" in texts[0]
    fake_openai.transcripts.append("   ")
    telegram.voice(ogg_opus_tone(0.3))
    texts = await voiced.replies(ALICE, 2)
    assert "any words" in texts[1]
    assert fake_openai.chat_requests == [] and [m for m in alice_messages(voiced) if m.role == "user"] == []


async def test_without_audio_settings_the_user_is_told_clearly(companion, telegram, fake_openai):
    telegram.voice(ogg_opus_tone(0.3))
    texts = await companion.replies(ALICE, 1)
    assert "can't listen" in texts[0]
    telegram.private_message("/voice on")
    texts = await companion.replies(ALICE, 2)
    assert "COMPANION_TTS_MODEL" in texts[1]
    assert fake_openai.requests == []
