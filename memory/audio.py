"""Voice: speech to text for voice messages, and text to speech for voice replies.

Both go through the openai SDK to an OpenAI-compatible endpoint: `/v1/audio/transcriptions`
(Whisper and friends; `COMPANION_STT_MODEL`) and `/v1/audio/speech` (`COMPANION_TTS_MODEL`).
Many chat providers offer neither, so the audio endpoint may differ from the chat one.

A transcribed message is stored as the user's text with a mark that it was spoken
(`spoken()`), so the character knows it heard a voice, and the history stays text.

Telegram plays a voice note only from Ogg Opus, so speech is requested with
`response_format="opus"` (OpenAI's and most compatible servers' Ogg Opus). A server that
answers in another format (WAV, MP3…) is converted with PyAV when it is installed (the
optional `audio` extra); without it, the voice note is skipped with a clear error for the
operator. The duration Telegram shows is read from the Ogg stream itself.
"""

from __future__ import annotations

import asyncio
import io
import re
import struct
from dataclasses import dataclass
from pathlib import PurePosixPath

import openai

SPOKEN_MARK = "[voice message]"
OPUS_RATE = 48_000  # Ogg Opus granule positions count 48 kHz samples, whatever the input rate
SPEECH_CHARS = 4000  # OpenAI's speech endpoint takes at most 4096 characters

# What transcription endpoints accept, by file extension. Telegram names voice notes
# `.oga`, which OpenAI refuses although the bytes are plain Ogg Opus.
UPLOAD_TYPES = {
    "ogg": "audio/ogg", "mp3": "audio/mpeg", "mpeg": "audio/mpeg", "mpga": "audio/mpeg", "m4a": "audio/mp4",
    "mp4": "video/mp4", "wav": "audio/wav", "webm": "audio/webm", "flac": "audio/flac",
}
_RENAMED = {"oga": "ogg", "opus": "ogg", "aac": "m4a", "x-wav": "wav", "mpeg3": "mp3", "x-m4a": "m4a"}


class AudioError(Exception):
    """Transcription or speech failed; the message says why, for the log."""


@dataclass(frozen=True)
class VoiceNote:
    data: bytes  # Ogg Opus
    seconds: int


def spoken(text: str) -> str:
    """The stored form of a transcribed voice message."""
    return f"{SPOKEN_MARK} {text.strip()}"


def upload_name(file_path: str | None, file_name: str | None = None, mime_type: str | None = None) -> str:
    """A file name with an extension the transcription endpoint accepts."""
    for candidate in (file_name, file_path):
        suffix = PurePosixPath(candidate or "").suffix.lstrip(".").lower()
        suffix = _RENAMED.get(suffix, suffix)
        if suffix in UPLOAD_TYPES:
            return f"{PurePosixPath(candidate).stem or 'voice'}.{suffix}"
    subtype = (mime_type or "audio/ogg").split("/")[-1].lower()
    suffix = _RENAMED.get(subtype, subtype)
    return f"voice.{suffix if suffix in UPLOAD_TYPES else 'ogg'}"


_MARKUP = re.compile(r"[*_`#>~|]+")
_SENTENCE_END = re.compile(r"[.!?。！？…]\s*")


def speakable(text: str, limit: int = SPEECH_CHARS) -> str:
    """The reply as something to say: Markdown marks dropped, cut at a sentence end."""
    plain = " ".join(_MARKUP.sub("", text).split())
    if len(plain) <= limit:
        return plain
    cut = plain[:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(cut)]
    return cut[:ends[-1]].strip() if ends and ends[-1] > limit // 2 else cut.rstrip() + "…"


# -- Ogg Opus ---------------------------------------------------------------------------
def is_ogg_opus(data: bytes) -> bool:
    return data[:4] == b"OggS" and b"OpusHead" in data[:128]


def ogg_opus_seconds(data: bytes) -> float:
    """Duration of an Ogg Opus stream: the last page's granule position, less the pre-skip."""
    head = data.find(b"OpusHead")
    pre_skip = struct.unpack_from("<H", data, head + 10)[0] if head >= 0 else 0
    granule, offset = 0, 0
    while offset + 27 <= len(data) and data[offset:offset + 4] == b"OggS":
        position = struct.unpack_from("<q", data, offset + 6)[0]
        segments = data[offset + 26]
        body = sum(data[offset + 27:offset + 27 + segments])
        if position >= 0:
            granule = position
        offset += 27 + segments + body
    return max(0.0, (granule - pre_skip) / OPUS_RATE)


def to_ogg_opus(data: bytes) -> bytes:
    """Any audio PyAV (FFmpeg) can read, as mono 48 kHz Ogg Opus."""
    try:
        import av
    except ImportError:
        raise AudioError("the speech endpoint did not answer in Ogg Opus, and converting it needs PyAV: "
                         "pip install 'companion-bot[audio]', or use an endpoint that supports "
                         "response_format=opus") from None
    target_buffer = io.BytesIO()
    try:
        with av.open(io.BytesIO(data)) as source, av.open(target_buffer, "w", format="ogg") as target:
            stream = target.add_stream("libopus", rate=OPUS_RATE, layout="mono")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
            for frame in [*source.decode(audio=0), None]:
                for resampled in resampler.resample(frame):
                    target.mux(stream.encode(resampled))
            target.mux(stream.encode(None))
    except (av.error.FFmpegError, IndexError) as exc:  # IndexError: no audio stream in it
        raise AudioError(f"cannot convert the speech endpoint's audio to Ogg Opus: {exc}") from exc
    return target_buffer.getvalue()


# -- the endpoint -----------------------------------------------------------------------
class AudioClient:
    def __init__(self, *, base_url: str | None, api_key: str | None, transcription_model: str | None = None,
                 speech_model: str | None = None, voice: str = "alloy", language: str | None = None,
                 timeout_seconds: float = 60.0, max_retries: int = 2) -> None:
        self.transcription_model = transcription_model
        self.speech_model = speech_model
        self.voice = voice
        self.language = language
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                          max_retries=max_retries, timeout=timeout_seconds)

    @property
    def listens(self) -> bool:
        return bool(self.transcription_model)

    @property
    def speaks(self) -> bool:
        return bool(self.speech_model)

    async def transcribe(self, data: bytes, filename: str) -> str:
        if not self.transcription_model:
            raise AudioError("no transcription model is set (COMPANION_STT_MODEL)")
        mime = UPLOAD_TYPES.get(PurePosixPath(filename).suffix.lstrip("."), "application/octet-stream")
        extra = {"language": self.language} if self.language else {}
        try:
            result = await self._client.audio.transcriptions.create(
                model=self.transcription_model, file=(filename, data, mime), **extra)
        except openai.OpenAIError as exc:
            raise AudioError(f"transcription failed: {type(exc).__name__}: {exc}") from exc
        return (result if isinstance(result, str) else result.text or "").strip()

    async def speak(self, text: str) -> VoiceNote:
        if not self.speech_model:
            raise AudioError("no speech model is set (COMPANION_TTS_MODEL)")
        try:
            response = await self._client.audio.speech.create(
                model=self.speech_model, voice=self.voice, input=text, response_format="opus")
            data = response.content
        except openai.OpenAIError as exc:
            raise AudioError(f"speech failed: {type(exc).__name__}: {exc}") from exc
        if not is_ogg_opus(data):
            data = await asyncio.to_thread(to_ogg_opus, data)
        return VoiceNote(data, max(1, round(ogg_opus_seconds(data))))

    async def close(self) -> None:
        await self._client.close()
