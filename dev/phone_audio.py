"""Speech, sound files, silence and noise as a phone line carries them, made in memory.

espeak-ng speaks, sox turns it (or any sound file it reads) into what a call recording
holds: 8 kHz, the telephone band (300-3400 Hz), through the network's mu-law codec and
back to 16-bit PCM. Every step is a pipe; nothing is written to disk. sox runs repeatably
(-R: fixed seeds for noise and dither), so the same script gives the same recording every
time. Used by the simulator, the tests and bench/transcription.py; the WAV itself is
written by `ivr.core.audio.wav.pcm16_mono_wav`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from ivr.core.audio.wav import pcm16_mono_wav

PHONE_SAMPLE_RATE = 8000
RAW_PCM16 = ["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", str(PHONE_SAMPLE_RATE)]
RAW_MU_LAW = ["-t", "raw", "-e", "mu-law", "-b", "8", "-c", "1", "-r", str(PHONE_SAMPLE_RATE)]
PHONE_LINE_EFFECTS = ["highpass", "300", "lowpass", "3400"]
# espeak-ng's voice for each language of the menus.
VOICES = {"en": "en-gb", "cy": "cy", "pl": "pl"}
TOOL_SECONDS = 120


class AudioToolMissing(RuntimeError):
    """espeak-ng or sox is not installed."""


class AudioConversionFailed(RuntimeError):
    """espeak-ng or sox ran but gave no usable audio."""


def require_speech_tools() -> None:
    """Fail with what to install when espeak-ng or sox is missing."""
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise AudioToolMissing(f"{' and '.join(missing)} not installed: run `make test`, which installs them.")


def speak(text: str, language: str = "en", *, voice: str | None = None, words_per_minute: int = 150) -> bytes:
    """`text` read by espeak-ng (the language's voice, or `voice`), as a phone call recording."""
    if voice is None:
        voice = VOICES.get(language)
        if voice is None:
            raise ValueError(f"no espeak-ng voice for language {language!r}; known: {', '.join(VOICES)}")
    said = " " + text if text.startswith("-") else text  # spoken, not read as an option
    spoken = _run([_tool("espeak-ng"), "-v", voice, "-s", str(words_per_minute), "--stdout", said], b"", "espeak-ng")
    return _through_phone_line(["-t", "wav", "-"], spoken)


def from_file(path: Path) -> bytes:
    """Any sound file sox reads, as a phone call recording."""
    if not path.is_file():
        raise FileNotFoundError(f"no such audio file: {path}")
    return _through_phone_line([str(path.resolve())], b"")


def synthesise(seconds: float, *synth: str) -> bytes:
    """A phone recording of sox's `synth` (e.g. "sine", "440", or "pinknoise"), then `vol`."""
    pcm = _run([_tool("sox"), "-q", "-R", "-n", *RAW_PCM16, "-", "synth", str(seconds), *synth], b"", "sox")
    return wav_from_samples(np.frombuffer(pcm, dtype="<i2"))


def silence(seconds: float) -> bytes:
    """A WAV of `seconds` of silence at telephone quality (8 kHz, 16-bit, mono)."""
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
    return pcm16_mono_wav(pcm16.astype("<i2").tobytes(), rate)


def _through_phone_line(source: list[str], stdin: bytes) -> bytes:
    sox = _tool("sox")
    mu_law = _run([sox, "-q", "-R", *source, *RAW_MU_LAW, "-", *PHONE_LINE_EFFECTS], stdin, "sox")
    pcm = _run([sox, "-q", "-R", *RAW_MU_LAW, "-", *RAW_PCM16, "-"], mu_law, "sox")
    if not pcm:
        raise AudioConversionFailed("sox produced no audio")
    return wav_from_samples(np.frombuffer(pcm, dtype="<i2"))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AudioToolMissing(f"{name} is not installed: `make run` installs it (or: apt-get install {name}).")
    return path


def _run(command: list[str], stdin: bytes, name: str) -> bytes:
    finished = subprocess.run(command, input=stdin, capture_output=True, timeout=TOOL_SECONDS, check=False)
    if finished.returncode != 0:
        detail = finished.stderr.decode(errors="replace").strip()[-300:]
        raise AudioConversionFailed(f"{name} failed (exit {finished.returncode}): {detail}")
    return finished.stdout
