"""A handler's question to an anonymous tipster: checked for discretion, then asked.

The question reaches the tipster's phone: read out by the provider's computer voice or
sent as a text, so it passes through the provider and stays on the phone, where a partner,
a parent or the suspect may read it. So before `ivr.core.follow_up` stores it (sealed under
the tip's key) it must be short enough for one reply of two texts in the tip's language,
and discreet:

- no crime or category words ("drugs", "police", the tip's own topic as the line named it):
  refused outright, naming the words, since nothing justifies them on a tipster's phone;
- every identifying-detail flag (`ivr.console.flags`) confirmed by the handler or edited
  away, as for a pass-on: a question can reveal what the police already know ("the man at
  number 12", "at 22:15") and so who told them.

Only the handler who holds the tip may ask or withdraw (`Casework.renew` first).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis

from ivr.console.cases import CaseworkError, FlagsUnresolved, NotYours
from ivr.console.casework import Casework
from ivr.console.flags import find_flags
from ivr.core import keys
from ivr.core.follow_up import FollowUp, Question, QuestionRefused
from ivr.core.prompts import REFERENCE_LANGUAGE, Menus
from ivr.core.segments import is_gsm7
from ivr.core.statuses import PartStatus
from ivr.core.tips import Part, Tip
from ivr.core.transactions import atomically

# Longer than any question two texts can carry in any language: refused without measuring.
MAX_QUESTION_CHARACTERS = 400
# A letter outside the basic text alphabet (GSM-7): one makes the whole reply UCS-2.
WIDE_LETTER = "ŵ"
# Simple endings a listed word may carry ("gun" matches "guns", "deal" "dealing").
_ENDINGS = ("s", "es", "'s", "ed", "d", "ing", "er", "ers")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_FINAL = frozenset({PartStatus.READY, PartStatus.NO_SPEECH, PartStatus.TRANSCRIPTION_FAILED,
                    PartStatus.AWAITING_LANGUAGE})


class NotAsked(CaseworkError):
    """A question cannot be asked or withdrawn; the message says why, fit to show the handler."""


def fold(text: str) -> str:
    """Lower case, accents and curly apostrophes dropped: "Broń" and "bron" match."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ł", "l")


def _word_matches(listed: str, word: str) -> bool:
    if listed.endswith("*"):
        return word.startswith(listed[:-1])
    if word == listed or (word.startswith(listed) and word[len(listed):] in _ENDINGS):
        return True
    return (listed.endswith("e") and word == listed[:-1] + "ing") or \
        (listed.endswith("y") and word == listed[:-1] + "ies")


class Giveaways:
    """Words and phrases that would tell whoever reads the tipster's phone what they reported."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases: set[tuple[str, ...]] = set()
        for phrase in phrases:
            words = [fold(word) for word in _WORD.findall(phrase.replace("-", " "))]
            if words:
                self._phrases.add((*words[:-1], words[-1] + ("*" if phrase.endswith("*") else "")))

    def found_in(self, text: str) -> list[str]:
        """The giveaways in `text`, as the handler wrote them, in order, each once."""
        # "-" read as a space keeps every position, so a phrase is shown as it was written.
        words = [(match.span(), fold(match.group())) for match in _WORD.finditer(text.replace("-", " "))]
        found: list[str] = []
        for start in range(len(words)):
            for phrase in self._phrases:
                window = words[start:start + len(phrase)]
                if len(window) == len(phrase) and all(
                        _word_matches(listed, word) for listed, (_, word) in zip(phrase, window, strict=True)):
                    shown = text[window[0][0][0]:window[-1][0][1]]
                    if shown not in found:
                        found.append(shown)
        return found


@dataclass(frozen=True)
class StatusWords:
    """What a returning tipster is told about their tip, in one language."""

    language: str  # the language's own name ("Cymraeg")
    heard: str  # on the phone
    texted: str  # by text, when its words differ


@dataclass(frozen=True)
class Asked:
    """A question on the tip's page, with the parts that answer it."""

    question: Question
    answers: tuple[Part, ...]


class Questions:
    """Asking, withdrawing and reading questions to a tip's tipster, for the console."""

    def __init__(self, connection: redis.Redis, follow_up: FollowUp, casework: Casework, menus: Menus,
                 giveaway_words: Mapping[str, tuple[str, ...]]) -> None:
        self._redis = connection
        self._follow_up = follow_up
        self._casework = casework
        self._menus = menus
        # Each language's list, its category labels (not the catch-all's: "something
        # else" gives nothing away) and English's, since a handler may slip into English.
        labels = {language: [label for category in menus.categories if category.id != menus.fallback_category
                             for label in (menus.catalogue(language).categories[category.id],
                                           menus.catalogue(language).sms_categories[category.id])]
                  for language in menus.languages}
        self._giveaways = {language: Giveaways([*giveaway_words[language], *labels[language],
                                                *giveaway_words[REFERENCE_LANGUAGE], *labels[REFERENCE_LANGUAGE]])
                           for language in menus.languages}

    # -- asking -------------------------------------------------------------------------------

    def ask(self, reference: str, handler: str, text: str, confirmed: set[str]) -> Question:
        """Check `text` (the holder's question) for length and discretion, then ask it.
        `confirmed`: the fingerprints of the flags the handler ticked."""
        self._renew(reference, handler)
        tip = self._casework.tip(reference)
        text = " ".join("".join(ch for ch in text or "" if ch.isprintable() or ch.isspace()).split())
        if not text:
            raise NotAsked("Write the question first.")
        if tip.reference_closed:
            raise NotAsked("The tipster closed their reference: no question can reach them now.")
        if self._follow_up.waiting_question(reference):
            raise NotAsked("A question is already waiting for the tipster: withdraw it first.")
        if len(text) > MAX_QUESTION_CHARACTERS or not self._follow_up.fits_a_text(tip.language, text):
            raise NotAsked(f"The question is too long to reach the tipster in one reply of two text messages: "
                           f"{self.fit_description(tip.language, text)}, and it has {len(text)}. Shorten it.")
        giveaways = self.giveaways_in(tip.language, text)
        if giveaways:
            raise NotAsked(f"The question says {', '.join(f'“{word}”' for word in giveaways)}: anyone who reads the "
                           "tipster's phone would learn what they reported. Ask without naming the crime, its "
                           "topic, the police or the hotline.")
        unresolved = [flag for flag in find_flags(text) if flag.fingerprint not in confirmed]
        if unresolved:
            raise FlagsUnresolved(unresolved, "the question")
        try:
            return self._follow_up.ask(reference, handler, text)
        except QuestionRefused as refused:  # what changed since the checks above (one waits now, say)
            raise NotAsked(str(refused)) from None

    def withdraw(self, reference: str, handler: str, number: int) -> None:
        """The holder withdraws the waiting question: the tipster no longer hears it."""
        self._renew(reference, handler)
        try:
            self._follow_up.withdraw(reference, number)
        except QuestionRefused as refused:
            raise NotAsked(str(refused)) from None

    def _renew(self, reference: str, handler: str) -> None:
        """Only the holder asks or withdraws (and doing so renews their lease)."""
        try:
            self._casework.renew(reference, handler)
        except NotYours as lost:
            raise NotAsked(f"{lost.holder} holds this tip now: only they can ask its tipster a question or "
                           "withdraw one." if lost.holder else
                           "Nobody holds this tip: claim it first to ask its tipster a question.") from None

    def giveaways_in(self, language: str | None, text: str) -> list[str]:
        giveaways = self._giveaways.get(language or REFERENCE_LANGUAGE, self._giveaways[REFERENCE_LANGUAGE])
        return giveaways.found_in(text)

    def characters_that_fit(self, language: str | None, text: str = "") -> int:
        """How many characters of `text`'s kind (plain, or with a letter outside the basic text
        alphabet) fit the reply that carries a question in `language` (by bisection: the
        core decides what fits)."""
        filler = next((ch for ch in text if not is_gsm7(ch)), "a")
        low, high = 0, MAX_QUESTION_CHARACTERS
        while low < high:
            middle = (low + high + 1) // 2
            if self._follow_up.fits_a_text(language, filler * middle):
                low = middle
            else:
                high = middle - 1
        return low

    def fit_description(self, language: str | None, text: str = "") -> str:
        """'in Cymraeg at most 234 characters fit (84 with a letter such as ŵ)', for `text`'s kind."""
        name = self._menus.catalogue(language).name
        wide = next((ch for ch in text if not is_gsm7(ch)), None)
        if wide:
            return f"in {name}, with a letter such as “{wide}”, at most {self.characters_that_fit(language, wide)} " \
                   "characters fit"
        return (f"in {name} at most {self.characters_that_fit(language)} characters fit "
                f"({self.characters_that_fit(language, WIDE_LETTER)} with a letter outside the basic text "
                f"alphabet, such as {WIDE_LETTER}, ą or an emoji)")

    # -- reading ------------------------------------------------------------------------------

    def waiting(self, reference: str) -> Question | None:
        """The question waiting for the tipster, if one is."""
        return self._follow_up.waiting_question(reference)

    def on_tip(self, tip: Tip) -> list[Asked]:
        """Every question asked on `tip`, oldest first, each with the parts that answer it."""
        return [Asked(question, tuple(part for part in tip.parts if part.answers == question.number))
                for question in self._follow_up.questions(tip.reference)]

    def answers_first_shown(self, tip: Tip) -> list[Part]:
        """The answers (finished parts) the holder is shown now for the first time; the case
        remembers each, so each is reported once (the audit trail's "read_answer")."""
        answers = [part for part in tip.parts if part.answers and part.status in _FINAL]
        if not answers:
            return []
        key = keys.case(tip.reference)

        def mark(pipe: redis.client.Pipeline) -> list[Part]:
            shown = pipe.hmget(key, *[f"answer_read:{part.index}" for part in answers])
            first = [part for part, seen in zip(answers, shown, strict=True) if not seen]
            if first:
                pipe.multi()
                pipe.hset(key, mapping={f"answer_read:{part.index}": 1 for part in first})
            return first

        return atomically(self._redis, [key], mark)

    def status_words(self, tip: Tip) -> list[StatusWords]:
        """The words the tipster hears for the tip's status: in English, and in the tip's language."""
        languages = dict.fromkeys([REFERENCE_LANGUAGE, self._menus.catalogue(tip.language).language])
        words = []
        for language in languages:
            catalogue = self._menus.catalogue(language)
            key = f"status_{tip.tipster_status}"
            heard, texted = catalogue.voice.get(key, tip.tipster_status), catalogue.sms.get(key, "")
            words.append(StatusWords(catalogue.name, heard, texted if texted != heard else ""))
        return words
