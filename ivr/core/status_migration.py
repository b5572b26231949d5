"""Rewrites statuses stored as English words (records from before `ivr.core.statuses`) as codes.

Run by every worker as it starts (`workers.run`), not by the web app and not by hand: the
worker already waits for Redis (the web app must start and answer calls without it), and
a deploy always starts a worker, so no operator step can be forgotten. Once every record
is rewritten a marker key is set, so later starts cost one GET; the marker lives beside
the records, so restoring an older backup brings the migration back with it. Each record
is rewritten in its own WATCH transaction and only fields that still hold old words
change: two workers starting together, or a worker finishing a part meanwhile, lose
nothing, and running it again changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import redis

from ivr.core import keys
from ivr.core.redis_values import HashFields, as_text
from ivr.core.statuses import Arrival, PartStatus, Triage

log = logging.getLogger(__name__)

# The words stored before codes, exactly as the code of then wrote them. History: never edit.
_PART_WORDS: Mapping[str, str] = {
    "awaiting transcript": PartStatus.AWAITING_TRANSCRIPT,
    "awaiting transcription in its language": PartStatus.AWAITING_LANGUAGE,
    "no speech detected": PartStatus.NO_SPEECH,
    "transcription failed": PartStatus.TRANSCRIPTION_FAILED,
    "ready": PartStatus.READY,
}
_TRIAGE_WORDS: Mapping[str, str] = {
    "new": Triage.NEW, "in review": Triage.IN_REVIEW, "needs follow-up": Triage.FOLLOW_UP,
    "possibly malicious": Triage.MALICIOUS, "passed on": Triage.PASSED_ON, "closed": Triage.CLOSED,
}
_ARRIVAL_WORDS: Mapping[str, str] = {"arrived while the line was down": Arrival.LINE_DOWN}


def _tip_field_words(field: str) -> Mapping[str, str]:
    """The old words a tip's field may hold (none for a field that holds no status)."""
    if field == "status" or (field.startswith("part:") and field.endswith(":status")):
        return _PART_WORDS
    return {"triage": _TRIAGE_WORDS, "arrival": _ARRIVAL_WORDS}.get(field, {})


def _case_field_words(field: str) -> Mapping[str, str]:
    return _TRIAGE_WORDS if field == "finished" else {}


def migrate_statuses(connection: redis.Redis) -> int:
    """Rewrite every tip and case still holding old words as codes; returns how many records changed."""
    if connection.exists(keys.STATUS_CODES_MIGRATED):
        return 0
    changed = 0
    for pattern, words_for in ((keys.tip("*"), _tip_field_words), (keys.case("*"), _case_field_words)):
        for key in connection.scan_iter(match=pattern, count=500, _type="hash"):
            changed += _rewrite_record(connection, key, words_for)
    connection.set(keys.STATUS_CODES_MIGRATED, 1)
    if changed:
        log.info("stored statuses: %d record(s) rewritten from words to codes", changed)
    return changed


def _rewrite_record(connection: redis.Redis, key: bytes, words_for: Callable[[str], Mapping[str, str]]) -> bool:
    """Rewrite one record's old words as codes, in one transaction; True when it held any."""
    update: HashFields = {}

    def rewrite(pipe: redis.client.Pipeline) -> None:
        update.clear()  # a retried attempt reads afresh
        for field, value in pipe.hgetall(key).items():
            code = words_for(as_text(field)).get(as_text(value, errors="replace"))
            if code is not None and code != as_text(value):
                update[field] = code
        if update:
            pipe.multi()
            pipe.hset(key, mapping=update)

    connection.transaction(rewrite, key)
    return bool(update)
