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
