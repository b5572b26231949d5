"""What every speech engine is: the Recogniser interface, its Transcript, and its failures.

A module of its own so that an engine (`faster_whisper_engine`) imports the interface
without importing the package that loads it: no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ivr.core.confidence import Word

__all__ = ["ModelError", "Recogniser", "SpeechError", "Transcript", "UnsupportedLanguage", "Word"]


@dataclass(frozen=True)
class Transcript:
    """What a recording said.

    `speech_detected` is False when the recording holds no speech at all (silence, line
    noise): `text` is then "". A recording with speech can still come back with empty
    `text` when the model made out no words; a person should hear that one.

    `words` are the recogniser's words with how sure it was of each (`ivr.core.confidence`:
    the console marks the doubtful ones); joined, they spell `text`. Empty when the engine
    gives none.
    """

    text: str
    language: str
    audio_seconds: float
    speech_detected: bool
    words: tuple[Word, ...] = ()


class Recogniser(Protocol):
    """An offline speech-to-text engine, loaded once and then used for many recordings."""

    languages: frozenset[str]

    def transcribe(self, wav: bytes, language: str) -> Transcript:
        """Transcribe one WAV recording spoken in `language` (an ISO 639-1 code).

        Raises UnsupportedLanguage, or ivr.core.audio.AudioError when the bytes are not a
        readable recording (retry, then keep the recording for a person).
        """
        ...


class SpeechError(Exception):
    """Base class of the recogniser's own failures (unreadable audio is ivr.core.audio.AudioError)."""


class UnsupportedLanguage(SpeechError):
    """The configured model does not transcribe this language: produce no transcript."""


class ModelError(SpeechError):
    """The model is missing, incomplete or altered, or cannot be used in this process."""
