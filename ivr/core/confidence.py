"""How sure the recogniser was of a transcript's words: which words are doubtful, and when a
whole transcript is.

A voice tip's text is a machine transcript: tiny.en heard "outside the chicken shop on
Tooley Street" as "Julie Street", and a handler who reads it as the tipster's own words
passes on a wrong street in good faith. faster-whisper gives each word a probability (the
mean of its tokens'); the worker keeps them with the transcript, sealed under the tip's key
like the transcript itself (`ivr.core.tips`), the console marks the doubtful words, and a
transcript doubtful overall keeps its recording for a disguised listen until a handler has
reviewed it (`workers.recordings`, capped by `ivr.core.doubtful_audio`).

The thresholds come from bench/transcription.py's confidence table (44 hotline sentences,
four voices, clean and with line noise at 15 and 5 dB; tiny.en). A mean below 0.6 flagged
no clean natural-voice transcript, 6% of those at 15 dB and 67% at 5 dB, and every one it
flagged there had a key term wrong; at 0.7 it flagged 3% of clean ones, at 0.8 a third
(91% of those with a key term wrong, but a third of all recordings kept is too many). It
also flags 62% of very short human utterances ("Front left") that were right: a short
message has few words to average, which is what DOUBTFUL_AUDIO_MAX_PERCENT bounds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

DOUBTFUL_WORD_PROBABILITY = 0.5
"""A word the recogniser gave a probability below this is marked doubtful on the console."""

DOUBTFUL_MEAN_PROBABILITY = 0.6
"""A transcript whose words' mean probability is below this is doubtful overall: its
recording is kept for a disguised listen (within DOUBTFUL_AUDIO_MAX_PERCENT)."""

DOUBTFUL_WORD_SHARE = 0.25
"""A transcript with more than this share of doubtful words is doubtful overall too (a few
wrong names in a long message do not pull the mean down far enough, and names are what
matter)."""


@dataclass(frozen=True)
class Word:
    """One word of a transcript as the recogniser wrote it, and how sure it was of it.

    `text` keeps the recogniser's spacing and punctuation (" Street."), so the words
    joined are the segment's text; `probability` is between 0 and 1.
    """

    text: str
    probability: float

    @property
    def doubtful(self) -> bool:
        return self.probability < DOUBTFUL_WORD_PROBABILITY


@dataclass(frozen=True)
class Piece:
    """A stretch of a transcript's text as the console shows it: a doubtful word, or the rest."""

    text: str
    doubtful: bool = False


def doubtful_overall(words: Sequence[Word]) -> bool:
    """Is the recogniser unsure of this transcript as a whole? (No words: nothing to judge.)"""
    if not words:
        return False
    mean = sum(word.probability for word in words) / len(words)
    share = sum(1 for word in words if word.doubtful) / len(words)
    return mean < DOUBTFUL_MEAN_PROBABILITY or share > DOUBTFUL_WORD_SHARE


def marked_pieces(text: str, words: Sequence[Word]) -> tuple[Piece, ...]:
    """`text` cut into pieces, each doubtful word a piece of its own; the pieces joined are `text`.

    The transcript's text is the record; the words only mark it. Each word is found in
    the text after the previous one, with nothing but spaces between them; where that
    fails (a transcript and words that do not match), the rest of the text is shown
    unmarked rather than marked in the wrong place.
    """
    pieces: list[Piece] = []
    cursor = 0
    for word in words:
        needle = word.text.strip()
        if not needle:
            continue
        found = text.find(needle, cursor)
        if found < 0 or text[cursor:found].strip():
            break
        pieces.append(Piece(text[cursor:found]))
        pieces.append(Piece(needle, word.doubtful))
        cursor = found + len(needle)
    pieces.append(Piece(text[cursor:]))
    return _joined_plain(pieces)


def words_as_json(words: Sequence[Word]) -> str:
    """The words as the worker stores them (then sealed): `[[text, probability], ...]`."""
    return json.dumps([[word.text, round(word.probability, 3)] for word in words], ensure_ascii=False)


def words_from_json(stored: str) -> tuple[Word, ...]:
    """The words `words_as_json` stored."""
    return tuple(Word(str(text), float(probability)) for text, probability in json.loads(stored))


def _joined_plain(pieces: list[Piece]) -> tuple[Piece, ...]:
    """Adjacent unmarked pieces joined, empty ones dropped."""
    joined: list[Piece] = []
    for piece in pieces:
        if not piece.text:
            continue
        if joined and not piece.doubtful and not joined[-1].doubtful:
            joined[-1] = Piece(joined[-1].text + piece.text)
        else:
            joined.append(piece)
    return tuple(joined)
