"""How fast, how big and how accurate is speech to text on a worker, for calls like ours?

Speech: 24 sentences of the kind tipsters leave (drugs, knives, a registration, a
street, a time, a first name), read by espeak-ng in six English voices and carried as a
phone line carries them (dev/phone_audio.py: 8 kHz, 300-3400 Hz, mu-law). Conditions:
- clean: each sentence alone (5-7 s: the worst case for speed, since Whisper encodes a
  30 s window however short the recording);
- noisy: the same with sox pink noise mixed in 10 dB below the speech;
- message: the sentences four at a time in one voice with pauses, about 20 s, closer to
  what a caller leaves.

Each installed engine runs in a fresh process that loads its model, transcribes one
recording to warm up, then every recording in turn. Reported: real-time factor (wall
time / audio time; CPU seconds per audio second beside it: the machine is shared, CPU
time is the steadier figure), the process's peak RSS, and word error rate (edit distance
over normalised words: dev/word_errors.py), per condition, per voice and overall.

Targets (PASS/FAIL; the script exits 0 either way, non-zero only when it could not run):
- real-time factor at most 0.15 overall;
- the transcribing process under 450 MB resident at its peak;
- word error rate no worse than about 0.45 on clean espeak speech (DESIGN.md's figure).

Usage: `.venv/bin/python bench/transcription.py [--model-dir DIR --languages en,pl] [--transcripts]`
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from dev.phone_audio import joined, require_speech_tools, speak, with_noise  # noqa: E402
from dev.word_errors import edit_distance, normalised_words  # noqa: E402

TARGET_REAL_TIME_FACTOR = 0.15
TARGET_PEAK_RSS_MB = 450
TARGET_CLEAN_WORD_ERROR_RATE = 0.45
NOISE_SNR_DB = 10
SENTENCES_PER_MESSAGE = 4
VOICES = ("en-gb", "en-us", "en-gb-x-rp", "en-us+m3", "en-gb+f3", "en-gb-scotland")

SENTENCES = (
    "There is a man selling drugs outside the chip shop on Station Road every Friday night.",
    "He keeps a knife in his jacket and shows it to the younger kids after school.",
    "The dealer drives a silver Ford Focus, registration L B seventeen X Y Z.",
    "They meet behind the church on Mill Lane at about eleven o'clock.",
    "A lad called Jamie is storing stolen bikes in his garage.",
    "I saw two men carrying a shotgun into the flat above the bookmakers.",
    "Cocaine is being sold from the red door at number fourteen Park Street.",
    "The woman next door is beaten by her boyfriend and she is too scared to call the police.",
    "The van is white with a ladder on the roof and it parks there every morning.",
    "Kids are being paid to carry parcels of heroin on the train to the coast.",
    "There was a fight with machetes near the bus station last Saturday.",
    "Someone called Darren is selling fake cigarettes at the market on Sunday.",
    "The man has a tattoo of a snake on his neck and a scar above his eye.",
    "He threatened the shop keeper with a knife and took the money from the till.",
    "They are growing cannabis in the loft, you can smell it from the street.",
    "The stolen car was left in the car park behind the swimming pool.",
    "A woman named Sarah is being kept in the house and is not allowed out.",
    "The drugs are hidden under the floor in the back bedroom.",
    "He was boasting that he set fire to the warehouse on Canal Street.",
    "At half past nine a blue motorbike drops off packages at the corner shop.",
    "The gang uses the park near Queen Street to sell drugs to teenagers.",
    "I think my landlord is forging passports in the office upstairs.",
    "The black van has the registration M D sixty nine K P R.",
    "He said he would stab anyone who talks to the police about the robbery.",
)


@dataclass(frozen=True)
class Recording:
    condition: str
    voice: str
    script: str
    wav: bytes


@dataclass(frozen=True)
class Heard:
    recording: Recording
    text: str
    audio_seconds: float
    wall_seconds: float
    cpu_seconds: float


@dataclass(frozen=True)
class EngineRun:
    engine: str
    load_seconds: float
    peak_rss_mb: float
    heard: list[Heard]


def recordings() -> list[Recording]:
    """Every sentence clean and noisy, one voice each in turn, and the sentences as messages."""
    made: list[Recording] = []
    for start in range(0, len(SENTENCES), SENTENCES_PER_MESSAGE):
        voice = VOICES[start // SENTENCES_PER_MESSAGE % len(VOICES)]
        scripts = SENTENCES[start:start + SENTENCES_PER_MESSAGE]
        spoken = [speak(script, voice=voice) for script in scripts]
        for script, wav in zip(scripts, spoken, strict=True):
            made.append(Recording("clean", voice, script, wav))
            made.append(Recording("noisy", voice, script, with_noise(wav, NOISE_SNR_DB)))
        made.append(Recording("message", voice, " ".join(scripts), joined(spoken)))
    return made


# --- Engines: each runs in its own process, so its peak RSS is its own ---------------------

def run_faster_whisper(model_dir: str | None, languages: str, batch: list[Recording]) -> EngineRun:
    import ctranslate2

    from workers.speech.faster_whisper_engine import FasterWhisperRecogniser

    ctranslate2.set_random_seed(1)  # the temperature fallback samples: the same run twice
    started = time.perf_counter()
    if model_dir is None:
        recogniser = FasterWhisperRecogniser.embedded()
    else:
        recogniser = FasterWhisperRecogniser.operator_model(Path(model_dir), frozenset(languages.split(",")))
    load_seconds = time.perf_counter() - started
    recogniser.transcribe(batch[0].wav, "en")  # warm-up: first-call costs are not per-recording costs
    heard = []
    for recording in batch:
        wall, cpu = time.perf_counter(), time.process_time()
        transcript = recogniser.transcribe(recording.wav, "en")
        heard.append(Heard(recording, transcript.text, transcript.audio_seconds,
                           time.perf_counter() - wall, time.process_time() - cpu))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine = "faster-whisper " + ("tiny.en (embedded)" if model_dir is None else model_dir)
    return EngineRun(engine, load_seconds, peak_rss_mb, heard)


def in_fresh_process(function, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


# --- End to end (to be added) -------------------------------------------------------------

def measure_end_to_end() -> None:
    """END-TO-END MEASUREMENT GOES HERE: recording-status callback -> tip queued for handlers.

    To be added with the worker pipeline: post a signed recording-status callback for a
    spoken message held by the provider stand-in, run the worker, and time from the
    callback to the tip's arrival in the handlers' queue (and the worker's peak RSS).
    bench/pipeline_latency.py measures the worker's part of this today.
    """
    print("\nend to end (callback -> queued tip): not measured here yet; see bench/pipeline_latency.py")


# --- Report -------------------------------------------------------------------------------

def word_errors(heard: list[Heard]) -> tuple[int, int]:
    edits = sum(edit_distance(normalised_words(h.recording.script), normalised_words(h.text)) for h in heard)
    return edits, sum(len(normalised_words(h.recording.script)) for h in heard)


def summary_line(label: str, heard: list[Heard]) -> str:
    edits, words = word_errors(heard)
    audio = sum(h.audio_seconds for h in heard)
    wall, cpu = sum(h.wall_seconds for h in heard), sum(h.cpu_seconds for h in heard)
    return (f"  {label:<16} {len(heard):>3} recordings {audio:6.1f} s audio   RTF {wall / audio:5.3f} "
            f"(CPU {cpu / audio:5.3f} s/s)   WER {edits / words:5.3f} ({edits}/{words} words)")


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def report(run: EngineRun, show_transcripts: bool) -> None:
    print(f"\n{run.engine}: loaded in {run.load_seconds:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB")
    conditions = sorted({h.recording.condition for h in run.heard}, key=["clean", "noisy", "message"].index)
    for condition in conditions:
        print(summary_line(condition, [h for h in run.heard if h.recording.condition == condition]))
    print(summary_line("overall", run.heard))
    print("  WER by voice (clean / noisy):  " + "   ".join(
        f"{voice} {rate(run, voice, 'clean')} / {rate(run, voice, 'noisy')}" for voice in VOICES))
    if show_transcripts:
        for h in run.heard:
            print(f"    [{h.recording.condition}/{h.recording.voice}] {h.text}")
    audio = sum(h.audio_seconds for h in run.heard)
    real_time_factor = sum(h.wall_seconds for h in run.heard) / audio
    clean_edits, clean_words = word_errors([h for h in run.heard if h.recording.condition == "clean"])
    print(f"  targets: RTF {real_time_factor:.3f} <= {TARGET_REAL_TIME_FACTOR}: "
          f"{verdict(real_time_factor <= TARGET_REAL_TIME_FACTOR)};  "
          f"peak RSS {run.peak_rss_mb:.0f} MB < {TARGET_PEAK_RSS_MB} MB: "
          f"{verdict(run.peak_rss_mb < TARGET_PEAK_RSS_MB)};  "
          f"clean WER {clean_edits / clean_words:.3f} <= {TARGET_CLEAN_WORD_ERROR_RATE}: "
          f"{verdict(clean_edits / clean_words <= TARGET_CLEAN_WORD_ERROR_RATE)}")


def rate(run: EngineRun, voice: str, condition: str) -> str:
    edits, words = word_errors([h for h in run.heard
                                if h.recording.voice == voice and h.recording.condition == condition])
    return f"{edits / words:.2f}" if words else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark speech to text on espeak-ng telephone speech.")
    parser.add_argument("--model-dir", help="also measure an operator's CTranslate2 Whisper model directory")
    parser.add_argument("--languages", default="en", help="the operator model's languages (STT_LANGUAGES)")
    parser.add_argument("--transcripts", action="store_true", help="print every transcript")
    args = parser.parse_args(argv)
    require_speech_tools()

    from workers.speech.faster_whisper_engine import COMPUTE_TYPE, CPU_THREADS, DECODING

    started = time.perf_counter()
    batch = recordings()
    print(f"{len(batch)} recordings made in {time.perf_counter() - started:.1f} s "
          f"({len(SENTENCES)} sentences x clean/noisy at {NOISE_SNR_DB} dB SNR, "
          f"+ {len(batch) - 2 * len(SENTENCES)} messages); {multiprocessing.cpu_count()} CPUs")
    print(f"faster-whisper decoding: {DECODING}, {COMPUTE_TYPE}, {CPU_THREADS} threads")

    runs = [in_fresh_process(run_faster_whisper, None, "en", batch)]
    if args.model_dir:
        runs.append(in_fresh_process(run_faster_whisper, args.model_dir, args.languages, batch))
    for run in runs:
        report(run, args.transcripts)
    if importlib.util.find_spec("pocketsphinx") is None:
        print("\npocketsphinx: not installed (not measured)")
    else:
        print("\npocketsphinx: installed, but Tipline has no engine for it yet "
              "(one new file: workers/speech/pocketsphinx_engine.py)")
    measure_end_to_end()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
