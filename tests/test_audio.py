"""Voice through the real openai SDK against the fake audio endpoints, with real Ogg Opus
made in the test: transcription, speech in Ogg Opus (converted when the server answers
WAV), durations read from the stream, and the text that is spoken."""

import pytest

from memory.audio import (
    AudioClient,
    AudioError,
    is_ogg_opus,
    ogg_opus_seconds,
    speakable,
    spoken,
    to_ogg_opus,
    upload_name,
)
from tests.fakes.audio import codec_of, decoded_seconds, ogg_opus_tone, wav_tone


@pytest.fixture
async def audio(fake_openai):
    client = AudioClient(base_url=fake_openai.url, api_key="test-key", transcription_model="whisper-1",
                         speech_model="tts-1", voice="nova", max_retries=0)
    yield client
    await client.close()


async def test_a_voice_note_is_transcribed_under_a_name_the_endpoint_accepts(audio, fake_openai):
    note = ogg_opus_tone(0.6)
    fake_openai.transcripts.append("  Remind me about the concert on Friday.  ")
    words = await audio.transcribe(note, upload_name("voice/file_7.oga"))
    assert words == "Remind me about the concert on Friday."
    sent = fake_openai.audio_requests[0]
    assert sent.path == "/v1/audio/transcriptions" and sent.body["model"] == "whisper-1"
    assert sent.body["file"]["filename"] == "file_7.ogg" and sent.body["file"]["data"] == note
    assert sent.body["file"]["content_type"] == "audio/ogg"
    assert spoken(words) == "[voice message] Remind me about the concert on Friday."


async def test_telegrams_own_extension_is_refused_by_the_endpoint(audio):
    with pytest.raises(AudioError, match="Invalid file format"):
        await audio.transcribe(ogg_opus_tone(0.3), "file_7.oga")


async def test_a_failing_endpoint_is_an_audio_error(audio, fake_openai):
    fake_openai.audio_error = 503
    with pytest.raises(AudioError):
        await audio.transcribe(ogg_opus_tone(0.3), "voice.ogg")
    with pytest.raises(AudioError):
        await audio.speak("hello")


@pytest.mark.parametrize("file_path,file_name,mime,expected", [
    ("voice/file_1.oga", None, "audio/ogg", "file_1.ogg"),
    ("music/file_2.mp3", "My Song.mp3", "audio/mpeg", "My Song.mp3"),
    ("music/file_3.m4a", None, "audio/mp4", "file_3.m4a"),
    ("video_notes/file_4.mp4", None, None, "file_4.mp4"),
    ("documents/file_5", None, "audio/x-wav", "voice.wav"),
    (None, None, None, "voice.ogg"),
])
def test_upload_names(file_path, file_name, mime, expected):
    assert upload_name(file_path, file_name, mime) == expected


async def test_speech_comes_back_as_ogg_opus_with_its_duration(audio, fake_openai):
    note = await audio.speak("Good morning! Did you sleep well?")
    request = fake_openai.audio_requests[0]
    assert request.body == {"model": "tts-1", "voice": "nova", "input": "Good morning! Did you sleep well?",
                            "response_format": "opus"}
    assert is_ogg_opus(note.data) and codec_of(note.data) == ("ogg", "opus")
    assert note.seconds == 1 and ogg_opus_seconds(note.data) == pytest.approx(decoded_seconds(note.data), abs=0.03)


async def test_speech_in_another_format_is_converted_to_ogg_opus(audio, fake_openai):
    fake_openai.speech_format = "wav"
    note = await audio.speak("x" * 400)  # the fake speaks 2.3 s for this
    assert codec_of(note.data) == ("ogg", "opus")
    assert decoded_seconds(note.data) == pytest.approx(2.3, abs=0.05) and note.seconds == 2


def test_conversion_of_something_that_is_not_audio_is_an_audio_error():
    with pytest.raises(AudioError, match="convert"):
        to_ogg_opus(b"<html>not audio</html>")
    assert decoded_seconds(to_ogg_opus(wav_tone(1.0, rate=22_050))) == pytest.approx(1.0, abs=0.03)


def test_duration_of_a_longer_stream_spans_many_pages():
    data = ogg_opus_tone(4.0)
    assert data.count(b"OggS") > 3
    assert ogg_opus_seconds(data) == pytest.approx(4.0, abs=0.03)


def test_speakable_drops_markdown_and_cuts_at_a_sentence():
    assert speakable("*smiles* **Hello**, `you`!\n\n# Title") == "smiles Hello, you! Title"
    long = "First sentence here. " * 30 + "Tail without end"
    cut = speakable(long, limit=100)
    assert cut.endswith(".") and len(cut) <= 100
    assert speakable("好的。" * 50, limit=20) == "好的。" * 6
