"""How accurate, how fast and how sure is speech to text on hotline calls?

Speech: the sentences in bench/data/hotline_sentences.json (tipster-style, UK places and
streets, each with its key terms: drugs and weapons, places, vehicles, registrations,
numbers, times), read by natural Debian voices (festival's slt-hts, flite's awb and rms)
and by espeak-ng en-gb (the harder voice), carried as a phone line carries them
(dev/phone_audio.py), clean and with pink line noise at 15 and 5 dB SNR; plus longer
messages (30-60 s) joined from them, and the only recorded human speech a Debian package
ships here (alsa-utils' "Front left" ... clips). Clips are made once and cached in
bench/out/clips/ (festival takes ~1 s a sentence), so runs compare the recogniser.

Per configuration (`--compare baseline,hint,...`; each in a fresh process, side by side
in one run), per voice and noise level:
- WER: word error rate over normalised words (dev/word_errors.py);
- recall: the share of key terms said that the transcript holds;
- precision: of the words in the transcript that are key terms of any sentence, the
  share that were said in this one (a hint that makes the model invent "knife" is worse
  than no hint); and "hint+", hint words written that nobody said;
- RTF (wall / audio) and audio seconds per CPU second (process CPU, threads included),
  the process's peak RSS;
- confidence: each transcript's mean word probability (word_timestamps=True, as in
  production); for mean thresholds 0.5-0.8 and word thresholds 0.3/0.5 (any word below),
  how often a transcript is doubtful and how often a doubtful one really had a key-term
  error (missed or invented).

`--throughput` measures compute types, threads per worker, one 2-thread worker against
two 1-thread workers side by side, and BatchedInferencePipeline on long messages.

Usage: `.venv/bin/python bench/transcription.py [--quick] [--compare NAMES] [--throughput | --throughput-only]
[--transcripts]`; `make bench` runs it with no arguments (the production configuration).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from dev.phone_audio import from_file, joined, require_speech_tools, speak, with_noise  # noqa: E402
from dev.word_errors import edit_distance, normalised_words  # noqa: E402

DATA_FILE = PROJECT_ROOT / "bench" / "data" / "hotline_sentences.json"
CLIP_CACHE = PROJECT_ROOT / "bench" / "out" / "clips"
VOICES = ("slt-hts", "awb", "rms", "en-gb")
HUMAN_VOICE = "human-alsa"
HUMAN_CLIPS = Path("/usr/share/sounds/alsa")  # alsa-utils: a person reading speaker positions
NOISE_LEVELS: tuple[float | None, ...] = (None, 15.0, 5.0)  # None: clean
MEAN_THRESHOLDS = (0.5, 0.6, 0.7, 0.8)
WORD_THRESHOLDS = (0.3, 0.5)
# The engine's decoding before issue 14, to compare against whatever it does now.
BEFORE_ISSUE_14 = {"beam_size": 5, "temperature": (0.0, 0.2, 0.4), "compression_ratio_threshold": 2.4,
                   "log_prob_threshold": None, "no_speech_threshold": 0.6, "repetition_penalty": 1.0,
                   "no_repeat_ngram_size": 4, "condition_on_previous_text": False, "without_timestamps": True,
                   "hotwords": None}
TARGETS = {"clean WER <=": 0.05, "clean recall >=": 0.97, "noisy recall >=": 0.90, "precision >=": 0.98}


@dataclass(frozen=True)
class Recording:
    voice: str
    noise: str  # "clean", "15dB", "5dB"
    kind: str  # "sentence" or "message"
    script: str
    key_terms: tuple[str, ...]
    wav: bytes


@dataclass
class Heard:
    recording: Recording
    text: str
    probabilities: list[float]
    audio_seconds: float
    wall_seconds: float
    cpu_seconds: float


@dataclass
class Run:
    config: str
    peak_rss_mb: float
    heard: list[Heard] = field(default_factory=list)


# --- Speech, made once ---------------------------------------------------------------------

def cached(key: str, make: Any) -> bytes:
    """The clip named by `key` from bench/out/clips/, made by `make()` the first time."""
    path = CLIP_CACHE / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".wav")
    if path.is_file():
        return path.read_bytes()
    wav: bytes = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav)
    return wav


def noise_name(snr_db: float | None) -> str:
    return "clean" if snr_db is None else f"{snr_db:g}dB"


def noisy(key: str, wav: bytes, snr_db: float | None) -> bytes:
    return wav if snr_db is None else cached(f"{key}|noise{snr_db}", lambda: with_noise(wav, snr_db))


def recordings(quick: bool) -> list[Recording]:
    """Every sentence in every voice and noise level, the messages, the human clips."""
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    sentences = data["sentences"][::4] if quick else data["sentences"]
    messages = [] if quick else data["messages"]
    made: list[Recording] = []
    for voice in VOICES:
        clean = {s["text"]: cached(f"{voice}|{s['text']}", lambda s=s, voice=voice: speak(s["text"], voice=voice))
                 for s in data["sentences"]}
        for snr_db in NOISE_LEVELS:
            for sentence in sentences:
                key = f"{voice}|{sentence['text']}"
                made.append(Recording(voice, noise_name(snr_db), "sentence", sentence["text"],
                                      tuple(sentence["key_terms"]), noisy(key, clean[sentence["text"]], snr_db)))
            for indices in messages:
                parts = [data["sentences"][index] for index in indices]
                key = f"{voice}|message|{indices}"
                wav = cached(key, lambda parts=parts, clean=clean: joined([clean[p["text"]] for p in parts]))
                made.append(Recording(voice, noise_name(snr_db), "message", " ".join(p["text"] for p in parts),
                                      tuple(term for part in parts for term in part["key_terms"]),
                                      noisy(key, wav, snr_db)))
    for path in sorted(HUMAN_CLIPS.glob("*_*.wav")):  # Front_Left.wav: "Front left"; not Noise.wav
        words = path.stem.replace("_", " ")
        wav = cached(f"human|{path}", lambda path=path: from_file(path))
        for snr_db in NOISE_LEVELS:
            made.append(Recording(HUMAN_VOICE, noise_name(snr_db), "sentence", words,
                                  tuple(normalised_words(words)), noisy(f"human|{path}", wav, snr_db)))
    return made


# --- Configurations ------------------------------------------------------------------------

def configurations() -> dict[str, dict[str, Any]]:
    """Each candidate: decoding options over the engine's, and the audio preparation.

    "production" is exactly what the engine does; the others change one thing each.
    """
    from workers.speech.vocabulary import vocabulary_hint

    hint = vocabulary_hint()
    return {
        "production": {},
        "baseline": {"decoding": BEFORE_ISSUE_14, "prepare": "none"},  # the engine before issue 14
        "hint": {"decoding": {"hotwords": hint}, "prepare": "none"},
        "prompt": {"decoding": {"hotwords": None, "initial_prompt": hint}, "prepare": "none"},
        "band": {"decoding": {"hotwords": None}, "prepare": "band"},
        "greedy": {"decoding": {"hotwords": None, "beam_size": 1}, "prepare": "none"},
        "fallback": {"decoding": {"hotwords": None, "temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
                                  "log_prob_threshold": -1.0}, "prepare": "none"},
        "penalty": {"decoding": {"hotwords": None, "no_repeat_ngram_size": 0, "repetition_penalty": 1.1},
                    "prepare": "none"},
        "hint-band": {"decoding": {"hotwords": hint}, "prepare": "band"},
    }


def transcribe_as(recogniser: Any, config: dict[str, Any], wav: bytes) -> tuple[str, list[float], float]:
    """The engine's own steps (decode, VAD, level gate), with `config`'s changes; words straight
    from faster-whisper, so their probabilities do not depend on our Transcript type."""
    from workers.speech import faster_whisper_engine as engine

    samples = engine._decode(wav)
    speech = engine._speech_only(samples)
    audio_seconds = len(samples) / engine.SAMPLE_RATE
    if speech is None:
        return "", [], audio_seconds
    if config.get("prepare") == "band":
        speech = engine._telephone_band(speech)
    options = {**engine.DECODING.as_kwargs(), **config.get("decoding", {})}
    segments, _info = recogniser._model.transcribe(speech, language="en", task="transcribe", vad_filter=False,
                                                   word_timestamps=True, **options)
    text, probabilities = [], []
    for segment in segments:
        text.append(segment.text.strip())
        probabilities.extend(word.probability for word in segment.words or [])
    return " ".join(text).strip(), probabilities, audio_seconds


def run_configuration(name: str, config: dict[str, Any], batch: list[Recording], threads: int | None) -> Run:
    """Load the engine in this (fresh) process and transcribe every recording with `config`."""
    import ctranslate2

    from workers.speech.faster_whisper_engine import CPU_THREADS, FasterWhisperRecogniser

    ctranslate2.set_random_seed(1)  # the temperature fallback samples: the same run twice
    recogniser = FasterWhisperRecogniser.embedded(cpu_threads=threads or CPU_THREADS)
    transcribe_as(recogniser, config, batch[0].wav)  # warm-up
    run = Run(name, 0.0)
    for recording in batch:
        wall, cpu = time.perf_counter(), time.process_time()
        text, probabilities, audio_seconds = transcribe_as(recogniser, config, recording.wav)
        run.heard.append(Heard(recording, text, probabilities, audio_seconds, time.perf_counter() - wall,
                               time.process_time() - cpu))
    run.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return run


def in_fresh_process(function: Any, *args: Any) -> Any:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


# --- Figures -------------------------------------------------------------------------------

def key_term_vocabulary() -> set[str]:
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return {term for sentence in data["sentences"] for term in sentence["key_terms"]}


def hint_words() -> set[str]:
    from workers.speech.vocabulary import vocabulary_hint

    return set(normalised_words(vocabulary_hint())) - {"and", "or", "of", "the", "a", "upon", "other"}


@dataclass
class Figures:
    recordings: int = 0
    edits: int = 0
    words: int = 0
    terms_said: int = 0
    terms_heard: int = 0
    terms_written: int = 0
    terms_invented: int = 0
    hint_invented: int = 0
    audio: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0

    def add(self, h: Heard, vocabulary: set[str], hints: set[str]) -> None:
        said, written = normalised_words(h.recording.script), normalised_words(h.text)
        self.recordings += 1
        self.edits += edit_distance(said, written)
        self.words += len(said)
        self.terms_said += len(h.recording.key_terms)
        self.terms_heard += len(set(h.recording.key_terms) & set(written))
        self.terms_written += len(set(written) & vocabulary)
        self.terms_invented += len((set(written) & vocabulary) - set(said))
        self.hint_invented += len((set(written) & hints) - set(said))
        self.audio += h.audio_seconds
        self.wall += h.wall_seconds
        self.cpu += h.cpu_seconds

    @property
    def wer(self) -> float:
        return self.edits / max(self.words, 1)

    @property
    def recall(self) -> float:
        return self.terms_heard / max(self.terms_said, 1)

    @property
    def precision(self) -> float:
        return 1 - self.terms_invented / max(self.terms_written, 1)


def key_term_error(h: Heard, vocabulary: set[str]) -> bool:
    said, written = set(normalised_words(h.recording.script)), set(normalised_words(h.text))
    return bool(set(h.recording.key_terms) - written) or bool((written & vocabulary) - said)


def groups(run: Run) -> dict[str, list[Heard]]:
    """The recordings by voice and noise level (sentences and messages together), then totals."""
    grouped: dict[str, list[Heard]] = {}
    for h in run.heard:
        grouped.setdefault(f"{h.recording.voice:<10} {h.recording.noise:<5}", []).append(h)
    natural = [h for h in run.heard if h.recording.voice in ("slt-hts", "awb", "rms")]
    for noise in map(noise_name, NOISE_LEVELS):
        grouped[f"{'natural':<10} {noise:<5}"] = [h for h in natural if h.recording.noise == noise]
    grouped[f"{'messages':<10} {'all':<5}"] = [h for h in run.heard if h.recording.kind == "message"]
    grouped[f"{'all':<10} {'all':<5}"] = run.heard
    return grouped


def report_accuracy(runs: list[Run]) -> None:
    vocabulary, hints = key_term_vocabulary(), hint_words()
    print(f"\n{'config':<11} {'voice':<10} {'noise':<5} {'n':>4} {'WER':>6} {'recall':>7} {'precis':>7} "
          f"{'hint+':>5} {'RTF':>6} {'audio s/CPU s':>13}")
    for run in runs:
        for label, heard in groups(run).items():
            if not heard:
                continue
            figures = Figures()
            for h in heard:
                figures.add(h, vocabulary, hints)
            print(f"{run.config:<11} {label} {figures.recordings:>4} {figures.wer:6.3f} {figures.recall:7.3f} "
                  f"{figures.precision:7.3f} {figures.hint_invented:>5} {figures.wall / figures.audio:6.3f} "
                  f"{figures.audio / figures.cpu:13.1f}")
        print(f"{run.config:<11} peak RSS {run.peak_rss_mb:.0f} MB")


def report_confidence(run: Run) -> None:
    """How often a transcript would be doubtful, and how often a doubtful one had a key-term error."""
    vocabulary = key_term_vocabulary()
    rules = [(f"mean<{t}", lambda p, t=t: sum(p) / len(p) < t) for t in MEAN_THRESHOLDS]
    rules += [(f"word<{t}", lambda p, t=t: any(x < t for x in p)) for t in WORD_THRESHOLDS]
    print(f"\nconfidence ({run.config}): doubtful share / of doubtful, share with a key-term error; "
          "[key-term errors: share of transcripts]")
    print(f"{'voice':<10} {'noise':<5} {'mean p':>6} {'w<.3':>5} {'w<.5':>5} "
          + " ".join(f"{name:>13}" for name, _ in rules) + "  errors")
    for label, heard in groups(run).items():
        heard = [h for h in heard if h.probabilities]
        if not heard:
            continue
        words = [p for h in heard for p in h.probabilities]
        means = [sum(h.probabilities) / len(h.probabilities) for h in heard]
        errors = [key_term_error(h, vocabulary) for h in heard]
        cells = []
        for _name, rule in rules:
            doubtful = [error for h, error in zip(heard, errors, strict=True) if rule(h.probabilities)]
            share = len(doubtful) / len(heard)
            hit = f"{sum(doubtful) / len(doubtful):.2f}" if doubtful else "-"
            cells.append(f"{share:6.2f}/{hit:>5}")
        print(f"{label} {sum(means) / len(means):6.3f} {sum(p < 0.3 for p in words) / len(words):5.2f} "
              f"{sum(p < 0.5 for p in words) / len(words):5.2f} " + " ".join(f"{c:>13}" for c in cells)
              + f"  {sum(errors) / len(errors):5.2f}")


def report_transcripts(runs: list[Run]) -> None:
    for run in runs:
        for h in run.heard:
            print(f"  [{run.config}/{h.recording.voice}/{h.recording.noise}] {h.text}")


def report_targets(run: Run) -> None:
    vocabulary, hints = key_term_vocabulary(), hint_words()
    natural = [h for h in run.heard if h.recording.voice in ("slt-hts", "awb", "rms")]
    clean, noisy_ = Figures(), Figures()
    for h in natural:
        (clean if h.recording.noise == "clean" else noisy_).add(h, vocabulary, hints)
    everywhere = min(clean.precision, noisy_.precision)
    reached = {"clean WER <=": clean.wer <= TARGETS["clean WER <="],
               "clean recall >=": clean.recall >= TARGETS["clean recall >="],
               "noisy recall >=": noisy_.recall >= TARGETS["noisy recall >="],
               "precision >=": everywhere >= TARGETS["precision >="]}
    values = {"clean WER <=": clean.wer, "clean recall >=": clean.recall, "noisy recall >=": noisy_.recall,
              "precision >=": everywhere}
    print(f"targets ({run.config}, natural voices): " + ";  ".join(
        f"{name} {TARGETS[name]}: {values[name]:.3f} {'PASS' if reached[name] else 'FAIL'}" for name in TARGETS))


# --- Throughput ----------------------------------------------------------------------------

def throughput_worker(compute_type: str, threads: int, batch: list[bytes], batched: bool) -> dict[str, float]:
    """Transcribe `batch` in this process with one model setup; its CPU and wall seconds."""
    from workers.speech import faster_whisper_engine as engine

    recogniser = engine.FasterWhisperRecogniser.embedded(cpu_threads=threads, compute_type=compute_type)
    pipeline = None
    if batched:
        from faster_whisper import BatchedInferencePipeline

        pipeline = BatchedInferencePipeline(recogniser._model)
    recogniser.transcribe(batch[0], "en")
    wall, cpu, audio = time.perf_counter(), time.process_time(), 0.0
    for wav in batch:
        if pipeline is None:
            audio += recogniser.transcribe(wav, "en").audio_seconds
            continue
        samples = engine._decode(wav)
        audio += len(samples) / engine.SAMPLE_RATE
        speech = engine._speech_only(samples)
        if speech is None:
            continue
        options = {k: v for k, v in engine.DECODING.as_kwargs().items() if k != "condition_on_previous_text"}
        segments, _ = pipeline.transcribe(speech, language="en", vad_filter=True, batch_size=8,
                                          word_timestamps=True, **options)
        list(segments)
    return {"audio": audio, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def report_throughput(batch: list[Recording]) -> None:
    sentences = [r.wav for r in batch if r.kind == "sentence" and r.noise == "clean" and r.voice != HUMAN_VOICE]
    messages = [r.wav for r in batch if r.kind == "message" and r.noise == "clean"]
    short, long_ = sentences[:12], messages[:4]
    print(f"\nthroughput ({len(short)} sentences + {len(long_)} messages, clean): audio s per CPU s, per wall s")
    setups = [("int8", 2), ("int8_float32", 2), ("float32", 2), ("int8", 1)]
    for compute_type, threads in setups:
        for label, wavs in (("sentences", short), ("messages", long_)):
            if not wavs:  # --quick has no messages
                continue
            f = in_fresh_process(throughput_worker, compute_type, threads, wavs, False)
            print(f"  {compute_type:<13} {threads} thread(s) 1 worker  {label:<9} {f['audio'] / f['cpu']:5.1f} /CPU s "
                  f"{f['audio'] / f['wall']:5.1f} /wall s  RSS {f['rss']:.0f} MB  (load {load_average()})")
    f = in_fresh_process(throughput_worker, "int8", 2, long_ or short, True)
    print(f"  int8 batched  2 thread(s) 1 worker  messages  {f['audio'] / f['cpu']:5.1f} /CPU s "
          f"{f['audio'] / f['wall']:5.1f} /wall s  RSS {f['rss']:.0f} MB  (load {load_average()})")
    for threads, workers in ((2, 1), (1, 2)):
        wavs = short + long_
        halves = [wavs[i::workers] for i in range(workers)]
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = list(pool.map(throughput_worker, ["int8"] * workers, [threads] * workers, halves,
                                    [False] * workers))
        wall = max(r["wall"] for r in results)
        audio, cpu = sum(r["audio"] for r in results), sum(r["cpu"] for r in results)
        print(f"  int8 {workers} worker(s) x {threads} thread(s), side by side: {audio / cpu:5.1f} /CPU s, "
              f"{audio / wall:5.1f} aggregate /wall s (slowest worker {wall:.1f} s of "
              f"{time.perf_counter() - started:.0f} s; load {load_average()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark speech to text on hotline telephone speech.")
    parser.add_argument("--quick", action="store_true", help="every fourth sentence, no messages")
    parser.add_argument("--compare", default="production",
                        help=f"configurations side by side, comma-separated: {', '.join(configurations())}")
    parser.add_argument("--threads", type=int, help="CPU threads per configuration (default: the engine's)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="run the configurations at the same time, one process each (on a shared machine "
                             "they then see the same load; use --threads 1)")
    parser.add_argument("--throughput", action="store_true", help="also measure compute types, threads, workers")
    parser.add_argument("--throughput-only", action="store_true",
                        help="measure compute types, threads and workers alone, without the accuracy tables")
    parser.add_argument("--transcripts", action="store_true", help="print every transcript")
    args = parser.parse_args(argv)
    require_speech_tools()
    known = configurations()
    names = [name.strip() for name in args.compare.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(known)}")

    from workers.speech.faster_whisper_engine import COMPUTE_TYPE, CPU_THREADS, DECODING

    started = time.perf_counter()
    batch = recordings(args.quick and not args.throughput_only)
    audio = sum(len(r.wav) - 44 for r in batch) / 16000
    print(f"{len(batch)} recordings ({audio:.0f} s of audio) ready in {time.perf_counter() - started:.1f} s; "
          f"{multiprocessing.cpu_count()} CPUs, load {load_average()}; voices {', '.join(VOICES)}, {HUMAN_VOICE}")
    print(f"engine: {DECODING}, {COMPUTE_TYPE}, {CPU_THREADS} threads, word_timestamps=True")
    if args.throughput_only:
        report_throughput(batch)
        return 0
    runs = []
    if args.side_by_side:
        with ProcessPoolExecutor(max_workers=len(names), mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(run_configuration, names, [known[n] for n in names], [batch] * len(names),
                                 [args.threads] * len(names)))
        print(f"  all done (load {load_average()})")
        report_accuracy(runs)
    else:
        for name in names:
            runs.append(in_fresh_process(run_configuration, name, known[name], batch, args.threads))
            print(f"  {name}: done (load {load_average()})", flush=True)
            report_accuracy(runs[-1:])  # as each finishes: a long run interrupted still tells something
            sys.stdout.flush()
    print("\nall configurations:")
    for run in runs:
        report_targets(run)
    report_confidence(runs[-1])
    if args.transcripts:
        report_transcripts(runs)
    if args.throughput:
        report_throughput(batch)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         check=False)
    print(f"\ncommit {git.stdout.strip()}, {time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
