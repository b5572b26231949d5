"""The surge's spoken messages: a pool of synthesised hotline messages, cached on disk.

A TV appeal's calls are 30-90 s of talk about drugs, knives, vehicles and streets. Each
clip joins such sentences until it is long enough, spoken by `dev.phone_audio.speak` as a
phone line carries it. Synthesising 20 of them takes a while, so they are kept under
bench/out/clips/ (git-ignored), named by a hash of their text and of dev/phone_audio.py:
a second run reuses them, and a changed voice makes new ones.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dev.phone_audio import speak
from dev.twilio.calls import wav_seconds

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CLIPS_DIR = PROJECT_ROOT / "bench" / "out" / "clips"
WORDS_PER_SECOND = 2.8  # measured on espeak-ng's en-gb at 150 words a minute; only to pick how many sentences
SENTENCES = (
    "There is a man selling drugs outside the school on Station Road every Friday night.",
    "He drives a silver Ford Focus and parks it behind the chip shop on Mill Lane.",
    "The boys he uses are about fourteen and they wait by the bus stop after school.",
    "He keeps the drugs in a flat above the bookmakers on the corner of Church Street.",
    "Another man collects the money on Sunday mornings in a white van with a broken back light.",
    "I saw a young lad with a big knife in his waistband near the park gates on Victoria Avenue.",
    "They keep the knives in a blue holdall under the stairs at number twelve, Queens Road.",
    "A black BMW with tinted windows goes up and down Albert Street late at night.",
    "The registration starts with the letters K and T and it has a dent in the passenger door.",
    "People come and go from the house on Park Lane all day and they only stay for a minute.",
    "Last week there was a fight outside the off licence on the High Street and someone pulled a blade.",
    "The older one is called Dean, he is about thirty, tall, with a shaved head and a scar on his cheek.",
    "They use the alley behind the launderette on Mill Lane to hand the packages over.",
    "A red moped with two riders keeps coming to the flats on Green Street after dark.",
    "Everybody on the estate knows about it but nobody says anything because they are scared.",
    "I think they are storing stolen bikes in the garages behind the community centre.",
    "There is a smell of cannabis coming from the house next to the church every evening.",
    "A grey Vauxhall Corsa drops off a girl who looks about fifteen at the hotel on Station Road.",
    "The man in the flat below mine has a machete and he showed it to my neighbour.",
    "Please do something before one of the children gets hurt.",
)


@dataclass(frozen=True)
class Clip:
    """One spoken message: its WAV (8 kHz, as a call recording holds it) and whole seconds."""

    wav: bytes
    seconds: int


def clip_texts(count: int, shortest: float, longest: float, seed: int = 14) -> list[str]:
    """`count` messages whose lengths step evenly from about `shortest` to `longest` seconds."""
    chooser = random.Random(seed)  # nosec B311  # picks sentences, not secrets
    texts = []
    for index in range(count):
        target = shortest + (longest - shortest) * index / max(1, count - 1)
        sentences: list[str] = []
        while sum(len(s.split()) for s in sentences) < target * WORDS_PER_SECOND:
            sentences.append(chooser.choice(SENTENCES))
        texts.append(" ".join(sentences))
    return texts


def _cached(text: str, speaker_hash: str) -> Clip:
    name = hashlib.sha256(f"{speaker_hash}\n{text}".encode()).hexdigest()[:24]
    path = CLIPS_DIR / f"{name}.wav"
    if not path.exists():
        wav = speak(text, "en")
        partial = path.with_suffix(".part")
        partial.write_bytes(wav)
        partial.replace(path)
    wav = path.read_bytes()
    return Clip(wav=wav, seconds=wav_seconds(wav))


def clip_pool(texts: Sequence[str]) -> list[Clip]:
    """The clips for `texts`, synthesised two at a time when not cached yet."""
    CLIPS_DIR.mkdir(parents=True, exist_ok=True)
    speaker_hash = hashlib.sha256((PROJECT_ROOT / "dev" / "phone_audio.py").read_bytes()).hexdigest()
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda text: _cached(text, speaker_hash), texts))
