"""Comparing a transcript with what was said: normalised words and word error rate.

Normalising first means the model is not blamed for writing "14" where the script said
"fourteen", "10:30" for "ten thirty", "man-selling" for "man selling", or "L.B." and
"LB" for "L B". Used by tests/test_speech.py and bench/transcription.py.
"""

from __future__ import annotations

import re

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SINGLE_LETTER_WORDS = {"a", "i"}


def number_in_words(number: int) -> str:
    """0-999 as they are said ("one hundred twenty"); longer numbers digit by digit."""
    if number < 20:
        return _UNITS[number]
    if number < 100:
        tens, units = divmod(number, 10)
        return _TENS[tens] + (f" {_UNITS[units]}" if units else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_UNITS[hundreds]} hundred" + (f" {number_in_words(rest)}" if rest else "")
    return " ".join(_UNITS[int(digit)] for digit in str(number))


def normalised_words(text: str) -> list[str]:
    """Lower-case words without punctuation, numbers spelt out, spelt letters joined ("l b" -> "lb")."""
    text = text.lower().replace("'", "").replace("’", "")
    text = re.sub(r"\d+", lambda match: f" {number_in_words(int(match.group()))} ", text)
    words: list[str] = []
    letters = ""
    for word in re.sub(r"[^a-z]+", " ", text).split():
        if len(word) == 1 and word not in _SINGLE_LETTER_WORDS:
            letters += word
            continue
        if letters:
            words.append(letters)
            letters = ""
        words.append(word)
    if letters:
        words.append(letters)
    return words


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word substitutions, deletions and insertions that turn `reference` into `hypothesis`."""
    previous = list(range(len(hypothesis) + 1))
    for row, said in enumerate(reference, start=1):
        current = [row]
        for column, heard in enumerate(hypothesis, start=1):
            current.append(min(previous[column] + 1, current[column - 1] + 1,
                               previous[column - 1] + (said != heard)))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    said = normalised_words(reference)
    return edit_distance(said, normalised_words(hypothesis)) / max(len(said), 1)
