"""Real audio for tests, made on the spot: a short tone as Ogg Opus (encoded by libopus
through PyAV, exactly what Telegram's voice notes are) or as 16-bit PCM WAV (stdlib), and
a check that bytes decode as audio, for the fakes to refuse what a real endpoint would."""

from __future__ import annotations

import io
import math
import struct
import wave

import av

OPUS_FRAME = 960  # 20 ms at 48 kHz


def pcm_tone(seconds: float, rate: int, frequency: float = 440.0) -> bytes:
    count = int(seconds * rate)
    return b"".join(struct.pack("<h", int(6000 * math.sin(2 * math.pi * frequency * i / rate))) for i in range(count))


def ogg_opus_tone(seconds: float = 0.5, frequency: float = 440.0) -> bytes:
    """A mono 48 kHz Ogg Opus stream of a sine tone."""
    pcm = pcm_tone(seconds, 48_000, frequency)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48_000, layout="mono")
        frame_bytes = OPUS_FRAME * 2
        for index, offset in enumerate(range(0, len(pcm), frame_bytes)):
            chunk = pcm[offset:offset + frame_bytes].ljust(frame_bytes, b"\0")
            frame = av.AudioFrame(format="s16", layout="mono", samples=OPUS_FRAME)
            frame.planes[0].update(chunk)
            frame.sample_rate, frame.pts = 48_000, index * OPUS_FRAME
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def wav_tone(seconds: float = 0.5, rate: int = 24_000, frequency: float = 440.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm_tone(seconds, rate, frequency))
    return buffer.getvalue()


def decoded_seconds(data: bytes) -> float | None:
    """How long the audio plays, or None when the bytes are not audio FFmpeg can decode."""
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(stream))
            return samples / stream.rate
    except (av.error.FFmpegError, IndexError):
        return None


def codec_of(data: bytes) -> tuple[str, str] | None:
    """(container format, audio codec) of the bytes, or None."""
    try:
        with av.open(io.BytesIO(data)) as container:
            return container.format.name, container.streams.audio[0].codec_context.name
    except (av.error.FFmpegError, IndexError):
        return None
