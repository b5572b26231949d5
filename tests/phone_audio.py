"""Speech, silence and noise as a phone line carries them, made in memory.

espeak-ng speaks, sox turns it into what a call recording holds: 8 kHz, the telephone
band (300-3400 Hz), through the network's mu-law codec and back to 16-bit PCM. Every
step is a pipe; nothing is written to disk. sox runs repeatably (-R: fixed seeds for
noise and dither), so the same script gives the same recording every time. Used by tests/test_speech.py and
bench/transcription.py.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np

PHONE_SAMPLE_RATE = 8000
RAW_PCM16 = ["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", str(PHONE_SAMPLE_RATE)]
PHONE_LINE_EFFECTS = ["highpass", "300", "lowpass", "3400"]


def require_speech_tools() -> None:
    """Fail with what to install when espeak-ng or sox is missing."""
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"{' and '.join(missing)} not installed: run `make test`, which installs them.")


def speak(text: str, voice: str = "en-us", words_per_minute: int = 150) -> bytes:
    """`text` read by espeak-ng, as a phone call recording (8 kHz mono 16-bit WAV)."""
    spoken = _run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text])
    mu_law = _run(["sox", "-q", "-R", "-t", "wav", "-", "-t", "raw", "-e", "mu-law", "-b", "8", "-c", "1",
                   "-r", str(PHONE_SAMPLE_RATE), "-", *PHONE_LINE_EFFECTS], spoken)
    pcm = _run(["sox", "-q", "-R", "-t", "raw", "-e", "mu-law", "-b", "8", "-c", "1", "-r", str(PHONE_SAMPLE_RATE), "-",
                *RAW_PCM16, "-"], mu_law)
    return wav_from_samples(np.frombuffer(pcm, dtype="<i2"))


def synthesise(seconds: float, *synth: str) -> bytes:
    """A phone recording of sox's `synth` (e.g. "sine", "440", or "pinknoise"), then `vol`."""
    pcm = _run(["sox", "-q", "-R", "-n", *RAW_PCM16, "-", "synth", str(seconds), *synth])
    return wav_from_samples(np.frombuffer(pcm, dtype="<i2"))


def silence(seconds: float) -> bytes:
    return wav_from_samples(np.zeros(int(seconds * PHONE_SAMPLE_RATE), dtype="<i2"))


def with_noise(wav: bytes, snr_db: float, colour: str = "pinknoise") -> bytes:
    """`wav` with sox-made noise mixed in at `snr_db` below the speech's level."""
    speech = samples(wav).astype(np.float64)
    noise = samples(synthesise(len(speech) / PHONE_SAMPLE_RATE + 0.1, colour))[:len(speech)].astype(np.float64)
    voiced = np.abs(speech) > 0.01 * np.abs(speech).max()  # the level of the speech, not of its pauses
    speech_power = np.mean(speech[voiced] ** 2)
    noise *= np.sqrt(speech_power / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return wav_from_samples(np.clip(np.rint(speech + noise), -32768, 32767).astype("<i2"))


def joined(recordings: list[bytes], pause_seconds: float = 0.75) -> bytes:
    """One recording of several, with a pause after each, as a caller leaves a message."""
    pause = np.zeros(int(pause_seconds * PHONE_SAMPLE_RATE), dtype="<i2")
    return wav_from_samples(np.concatenate([part for wav in recordings for part in (samples(wav), pause)]))


def samples(wav: bytes) -> np.ndarray:
    """The 16-bit samples of a mono WAV made here."""
    with wave.open(io.BytesIO(wav)) as recording:
        return np.frombuffer(recording.readframes(recording.getnframes()), dtype="<i2")


def sample_rate(wav: bytes) -> int:
    with wave.open(io.BytesIO(wav)) as recording:
        return recording.getframerate()


def wav_from_samples(pcm16: np.ndarray, rate: int = PHONE_SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm16.astype("<i2").tobytes())
    return buffer.getvalue()


def _run(command: list[str], stdin: bytes | None = None) -> bytes:
    return subprocess.run(command, input=stdin, capture_output=True, check=True, timeout=60).stdout
