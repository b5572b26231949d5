"""Speech, sound files, silence and noise as a phone line carries them, made in memory.

A natural voice speaks (festival's HTS voice by default, or one of flite's; espeak-ng
for Welsh and Polish, which Debian has no natural voice for, and as a harder voice for
the benchmark), and sox turns it (or any sound file it reads) into what a call recording
holds: 8 kHz, the telephone band (300-3400 Hz), through the network's mu-law codec and
back to 16-bit PCM. Every step is a pipe; nothing is written to disk. sox runs repeatably
(-R: fixed seeds for noise and dither), so the same script gives the same recording every
time. Used by the simulator, the tests and bench/transcription.py; the WAV itself is
written by `ivr.core.audio.wav.pcm16_mono_wav`.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ivr.core.audio.wav import pcm16_mono_wav

PHONE_SAMPLE_RATE = 8000
RAW_PCM16 = ["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", str(PHONE_SAMPLE_RATE)]
RAW_MU_LAW = ["-t", "raw", "-e", "mu-law", "-b", "8", "-c", "1", "-r", str(PHONE_SAMPLE_RATE)]
PHONE_LINE_EFFECTS = ["highpass", "300", "lowpass", "3400"]
TOOL_SECONDS = 120
FESTIVAL_SAMPLE_RATE = 16000
# Festival zeroes its whole Scheme heap at start: its default (10M cells, 320 MB) costs more
# time than speaking a sentence; one utterance needs a tenth of it.
FESTIVAL_HEAP_CELLS = "1000000"


@dataclass(frozen=True)
class Voice:
    """A synthetic voice: the program that speaks and its name for the voice."""

    engine: str  # "festival", "flite" or "espeak-ng"
    name: str
    accent: str  # what a person hears, for reports


# Whisper tiny.en's word error rate on hotline sentences at 8 kHz was 0.43 with espeak-ng,
# 0.10-0.14 with flite and 0.04-0.08 with festival's HTS voice, against ~0.08 on real read
# speech (issue 14): tests speak with the natural voices, so a failure is the recogniser's.
NATURAL_VOICES = {
    "slt-hts": Voice("festival", "cmu_us_slt_arctic_hts", "American English, female (festival HTS)"),
    "awb": Voice("flite", "awb", "Scottish English, male (flite): Debian's nearest to a British voice"),
    "slt": Voice("flite", "slt", "American English, female (flite)"),
    "rms": Voice("flite", "rms", "American English, male (flite)"),
}
# Each language's voice in the simulator and the tests: a natural one where Debian has it.
VOICES = {"en": "slt-hts", "cy": "cy", "pl": "pl"}
# Which tool each engine needs (the make targets install them: dev/ensure-system-packages).
ENGINE_TOOLS = {"festival": "festival", "flite": "flite", "espeak-ng": "espeak-ng"}
TOOL_PACKAGES = {"festival": "festival festvox-us-slt-hts", "flite": "flite", "espeak-ng": "espeak-ng", "sox": "sox"}


class AudioToolMissing(RuntimeError):
    """A speech synthesiser or sox is not installed."""


class AudioConversionFailed(RuntimeError):
    """A speech synthesiser or sox ran but gave no usable audio."""


def require_speech_tools() -> None:
    """Fail with what to install when a synthesiser or sox is missing."""
    missing = [tool for tool in (*ENGINE_TOOLS.values(), "sox") if shutil.which(tool) is None]
    if missing:
        raise AudioToolMissing(f"{', '.join(missing)} not installed: run `make test`, which installs them "
                               "(Debian: festival festvox-us-slt-hts flite espeak-ng sox).")


def voice_for(name: str) -> Voice:
    """A natural voice by its name here, else espeak-ng's voice of that name ("en-gb", "pl")."""
    return NATURAL_VOICES.get(name) or Voice("espeak-ng", name, f"espeak-ng {name}")


@functools.lru_cache(maxsize=128)
def speak(text: str, language: str = "en", *, voice: str | None = None, words_per_minute: int = 150) -> bytes:
    """`text` read by the language's voice (or `voice`: a name in NATURAL_VOICES, or an
    espeak-ng voice), as a phone call recording. `words_per_minute` paces espeak-ng only.

    Remembered per process (the same words give the same bytes: sox runs repeatably):
    festival spends about a second of CPU on a sentence, and tests say the same ones often."""
    if voice is None:
        voice = VOICES.get(language)
        if voice is None:
            raise ValueError(f"no voice for language {language!r}; known: {', '.join(VOICES)}")
    chosen = voice_for(voice)
    said = " " + text if text.startswith("-") else text  # spoken, not read as an option
    if chosen.engine == "festival":
        pcm = _run([_tool("festival"), "--heap", FESTIVAL_HEAP_CELLS, "--pipe"],
                   _festival_script(chosen.name, said).encode(), "festival")
        raw = ["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", str(FESTIVAL_SAMPLE_RATE)]
        return _through_phone_line([*raw, "-"], pcm)
    if chosen.engine == "flite":
        spoken = _run([_tool("flite"), "-voice", chosen.name, "-t", said, "-o", "/dev/stdout"], b"", "flite")
    else:
        spoken = _run([_tool("espeak-ng"), "-v", chosen.name, "-s", str(words_per_minute), "--stdout", said], b"",
                      "espeak-ng")
    return _through_phone_line(["-t", "wav", "-"], spoken)


def _festival_script(voice: str, text: str) -> str:
    """Festival's Scheme for one utterance, written to stdout as raw PCM (a WAV header
    written to a pipe would say 0 bytes: festival cannot seek back to fill it in)."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return (f"(voice_{voice})\n"
            f'(set! utt (utt.synth (Utterance Text "{quoted}")))\n'
            f"(utt.wave.resample utt {FESTIVAL_SAMPLE_RATE})\n"
            "(utt.save.wave utt \"/dev/stdout\" 'raw)\n")


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
        raise AudioToolMissing(f"{name} is not installed: `make run` installs it "
                               f"(or: apt-get install {TOOL_PACKAGES.get(name, name)}).")
    return path


def _run(command: list[str], stdin: bytes, name: str) -> bytes:
    finished = subprocess.run(command, input=stdin, capture_output=True, timeout=TOOL_SECONDS, check=False)
    if finished.returncode != 0:
        detail = finished.stderr.decode(errors="replace").strip()[-300:]
        raise AudioConversionFailed(f"{name} failed (exit {finished.returncode}): {detail}")
    return finished.stdout
