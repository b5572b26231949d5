"""Reading a WAV recording's header in memory: is it audio, and how long is it.

Any speech engine, and the disguise, checks a recording here before decoding it, so
that empty, truncated and non-audio bytes fail the same way (AudioError) whatever reads
them. The data chunk's declared size is not trusted: a WAV written to a pipe (sox,
ffmpeg) cannot go back to fill it in, and a recording cut short in transit declares more
than it holds, so the length is what is actually present.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

from ivr.core.audio import AudioError

RIFF_HEADER_BYTES = 12
CHUNK_HEADER_BYTES = 8
FMT_CHUNK_MIN_BYTES = 16


@dataclass(frozen=True)
class WavFormat:
    """The fields of a WAV header that say how long the audio is."""

    format_tag: int  # 1 PCM, 3 float, 6 A-law, 7 mu-law, 0xFFFE extensible
    channels: int
    sample_rate: int
    block_align: int  # bytes per frame, all channels
    bits_per_sample: int
    data_bytes: int  # present in the file, not as declared

    @property
    def frames(self) -> int:
        return self.data_bytes // self.block_align

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate


def read_wav_format(wav: bytes) -> WavFormat:
    """The format of a RIFF/WAVE recording; AudioError unless it holds at least one frame."""
    if len(wav) < RIFF_HEADER_BYTES:
        raise AudioError(f"not a WAV recording: {len(wav)} bytes is too short for a RIFF header")
    if wav[0:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise AudioError("not a WAV recording: no RIFF/WAVE header")
    fields: tuple[int, int, int, int, int] | None = None
    offset = RIFF_HEADER_BYTES
    while offset + CHUNK_HEADER_BYTES <= len(wav):
        chunk_id = wav[offset:offset + 4]
        (chunk_size,) = struct.unpack_from("<I", wav, offset + 4)
        body = offset + CHUNK_HEADER_BYTES
        if chunk_id == b"fmt ":
            if chunk_size < FMT_CHUNK_MIN_BYTES or body + FMT_CHUNK_MIN_BYTES > len(wav):
                raise AudioError("corrupt WAV recording: the format chunk is truncated")
            format_tag, channels, sample_rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", wav, body)
            fields = (format_tag, channels, sample_rate, block_align, bits)
        elif chunk_id == b"data":
            if fields is None:
                raise AudioError("corrupt WAV recording: audio data before its format chunk")
            return _checked(*fields, data_bytes=min(chunk_size, len(wav) - body))
        offset = body + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
    raise AudioError("truncated WAV recording: no audio data chunk")


def wav_duration_seconds(wav: bytes) -> float:
    """How long a WAV recording plays, from its header and the data actually present."""
    return read_wav_format(wav).duration_seconds


def _checked(format_tag: int, channels: int, sample_rate: int, block_align: int, bits: int,
             data_bytes: int) -> WavFormat:
    if not (channels and sample_rate and block_align and bits):
        raise AudioError("corrupt WAV recording: zero channels, sample rate or sample size in its header")
    wav_format = WavFormat(format_tag, channels, sample_rate, block_align, bits, data_bytes)
    if wav_format.frames == 0:
        raise AudioError("empty WAV recording: it holds no audio")
    return wav_format


def pcm16_mono_wav(pcm16_mono: bytes, sample_rate: int) -> bytes:
    """Raw 16-bit mono samples with a correct WAV header, in memory (sox cannot seek back on a pipe)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm16_mono)
    return buffer.getvalue()
