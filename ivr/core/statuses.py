"""The statuses a tip carries at rest: short stable codes, never the words people read.

A tip's record stores these codes (`ivr.core.tips`), the case its outcome (`ivr.console.casework`);
the words a handler reads for each code live in `config/console.json`, checked at load
(`ivr.console.catalogue`) to have words for every code here. So a word can change
without touching a record, and a record written before that change still reads right.
A code, once stored, never changes meaning: add a new one instead.
"""

from __future__ import annotations

from enum import StrEnum


class PartStatus(StrEnum):
    """Where the machine is with a part (and, by precedence, with the whole tip)."""

    AWAITING_TRANSCRIPT = "awaiting-transcript"
    AWAITING_LANGUAGE = "awaiting-language"  # a language the model does not cover: audio kept for a person
    NO_SPEECH = "no-speech"
    TRANSCRIPTION_FAILED = "transcription-failed"  # audio kept for a person
    READY = "ready"


class Triage(StrEnum):
    """Where the handlers are with a tip: set by hand, or by what happens to it."""

    NEW = "new"
    IN_REVIEW = "in-review"
    FOLLOW_UP = "follow-up"
    MALICIOUS = "malicious"
    PASSED_ON = "passed-on"
    CLOSED = "closed"


class Arrival(StrEnum):
    """How a tip reached us when not the usual way (most tips store none)."""

    # A text that reached the provider while we could not store it (Redis down), taken in
    # by the provider sweep: the tipster was never given a reference.
    LINE_DOWN = "line-down"


class TipsterStatus(StrEnum):
    """What a returning tipster is told about their tip (`ivr.core.follow_up`): four plain
    stages, set by the casework through the triage (`for_triage`), never by hand. The words
    the tipster hears are in config/prompts/<language>.json ("status_<code>")."""

    RECEIVED = "received"
    LOOKED_AT = "being-looked-at"
    PASSED_ON = "passed-on"
    CLOSED = "closed"

    @classmethod
    def for_triage(cls, triage: Triage) -> TipsterStatus:
        """The stage a tipster hears for a triage status: a handler's own judgement (follow-up,
        possibly malicious) is never told, only that someone is looking at it."""
        return {Triage.NEW: cls.RECEIVED, Triage.PASSED_ON: cls.PASSED_ON,
                Triage.CLOSED: cls.CLOSED}.get(triage, cls.LOOKED_AT)

    @property
    def is_final(self) -> bool:
        """Passed on or closed: nothing more is owed to the tipster (the deadlines page stops counting)."""
        return self in (TipsterStatus.PASSED_ON, TipsterStatus.CLOSED)


class QuestionState(StrEnum):
    """Where a handler's question to the tipster is."""

    WAITING = "waiting"  # the tipster hears it when they call or text back
    ANSWERED = "answered"
    WITHDRAWN = "withdrawn"  # by a handler, before an answer came
    ENDED = "ended"  # the tipster closed their reference: no answer can come
