"""Speech to text for recorded tips, behind one small interface.

The worker calls `load_recogniser(settings)` once per process, before it takes jobs, then
`recogniser.transcribe(wav, language)` for each recording. Everything an engine needs
(its model, its decoding choices) lives in one module per engine; adding an engine is one
new file and one line in `load_recogniser`.

Audio never touches the disk here: recordings arrive as bytes and are decoded in memory.
Reading a WAV, and its failure `ivr.core.audio.AudioError`, are shared with the console's
disguised copy, so they live in `ivr/core/audio/`; this package holds speech recognition only.
"""

from __future__ import annotations

import functools
from pathlib import Path

from config.settings import Settings
from workers.speech.recogniser import ModelError, Recogniser, SpeechError, Transcript, UnsupportedLanguage

__all__ = ["ModelError", "Recogniser", "SpeechError", "Transcript", "UnsupportedLanguage", "load_recogniser"]


def load_recogniser(settings: Settings) -> Recogniser:
    """The recogniser `settings` configure, loaded on first call and shared after that.

    Call it in the process that runs the jobs, before taking any: a CTranslate2 model
    does not survive fork(), so an RQ worker must run jobs in-process (SimpleWorker).
    Raises ModelError with what to do when the model cannot be used.
    """
    return _load_faster_whisper(settings.stt_model_dir, settings.stt_languages)


@functools.cache
def _load_faster_whisper(model_dir: Path | None, languages: frozenset[str]) -> Recogniser:
    # Imported here so that importing the exceptions does not load CTranslate2.
    from workers.speech.faster_whisper_engine import FasterWhisperRecogniser

    if model_dir is None:
        return FasterWhisperRecogniser.embedded(languages)
    return FasterWhisperRecogniser.operator_model(model_dir, languages)
