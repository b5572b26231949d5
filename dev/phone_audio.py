"""Speech and sound files made into what a phone line records: 8 kHz, 16-bit, mono WAV.

espeak-ng speaks the text into a pipe, sox resamples whatever it is given into raw
samples on another pipe, and the WAV is written in memory: no temporary file is left.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dev.twilio_like import PHONE_SAMPLE_RATE
from ivr.audio.wav import pcm16_mono_wav

# espeak-ng's voice for each language of the menus.
VOICES = {"en": "en-gb", "cy": "cy", "pl": "pl"}
TOOL_SECONDS = 120


class AudioToolMissing(RuntimeError):
    """espeak-ng or sox is not installed."""


class AudioConversionFailed(RuntimeError):
    """espeak-ng or sox ran but gave no usable audio."""


def speak(text: str, language: str) -> bytes:
    """`text` spoken by espeak-ng in the language's voice, as a phone recording."""
    voice = VOICES.get(language)
    if voice is None:
        raise ValueError(f"no espeak-ng voice for language {language!r}; known: {', '.join(VOICES)}")
    spoken = _run([_tool("espeak-ng"), "-v", voice, "--stdout", "--stdin"], text.encode(), "espeak-ng")
    return _as_phone_wav(["-t", "wav", "-"], spoken)


def from_file(path: Path) -> bytes:
    """Any sound file sox reads, as a phone recording."""
    if not path.is_file():
        raise FileNotFoundError(f"no such audio file: {path}")
    return _as_phone_wav([str(path.resolve())], b"")


def _as_phone_wav(source: list[str], stdin: bytes) -> bytes:
    samples = _run([_tool("sox"), "-q", *source, "-t", "raw", "-r", str(PHONE_SAMPLE_RATE), "-c", "1", "-b", "16",
                    "-e", "signed-integer", "-L", "-"], stdin, "sox")
    if not samples:
        raise AudioConversionFailed("sox produced no audio")
    return pcm16_mono_wav(samples, PHONE_SAMPLE_RATE)


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
