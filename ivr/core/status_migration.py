"""Brings stored statuses up to date: words become codes (records from before
`ivr.core.statuses`), and tips from before the tipster-facing status get one.

Run by every worker as it starts (`workers.run`), not by the web app and not by hand: the
worker already waits for Redis (the web app must start and answer calls without it), and
a deploy always starts a worker, so no operator step can be forgotten. Once every record
is rewritten a marker key is set per step, so later starts cost a GET each; the marker
lives beside the records, so restoring an older backup brings the migration back with it.
Each record is rewritten in its own WATCH transaction and only fields that still hold old
words (or lack the tipster-facing status) change: two workers starting together, or a
worker finishing a part meanwhile, lose nothing, and running it again changes nothing.

The tipster-facing status of an older tip is the stage its triage maps to
(`TipsterStatus.for_triage`), dated from the hour the tip was received: the hour a handler
first looked at it was never recorded, and dating from receipt errs on the side of the
tipster on the supervisors' deadlines page (an open tip shows as waiting longer, not less).
A shredded tip (its key dropped by the retention rules) gets its status but is not listed
on the deadlines page: nothing more can be done with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import redis

from ivr.core import keys
from ivr.core.redis_values import HashFields, as_text
from ivr.core.statuses import Arrival, PartStatus, TipsterStatus, Triage
from ivr.core.transactions import atomically

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
    """Every step, in order (codes first: the backfill reads the triage as a code); returns
    how many records changed."""
    return _statuses_as_codes(connection) + backfill_tipster_statuses(connection)


def _statuses_as_codes(connection: redis.Redis) -> int:
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


def backfill_tipster_statuses(connection: redis.Redis) -> int:
    """Give every tip without a tipster-facing status the one its triage maps to, and list the
    open ones for the deadlines page from the hour they were received; returns how many changed."""
    if connection.exists(keys.TIPSTER_STATUSES_BACKFILLED):
        return 0
    changed = sum(_backfill_tip(connection, as_text(key))
                  for key in connection.scan_iter(match=keys.tip("*"), count=500, _type="hash"))
    connection.set(keys.TIPSTER_STATUSES_BACKFILLED, 1)
    if changed:
        log.info("tipster-facing statuses: %d tip(s) from before them given one", changed)
    return changed


def _backfill_tip(connection: redis.Redis, key: str) -> bool:
    reference = key.rsplit(":", 1)[1]

    def backfill(pipe: redis.client.Pipeline) -> bool:
        triage, received, status, wrapped = pipe.hmget(key, "triage", "received_hour", "tipster_status",
                                                       "wrapped_key")
        if status is not None or triage is None or received is None:
            return False
        try:
            stage = TipsterStatus.for_triage(Triage(as_text(triage)))
            since = datetime.strptime(as_text(received), "%Y-%m-%dT%H:00Z").replace(tzinfo=UTC)
        except ValueError:
            log.warning("tipster-facing status: a tip record left alone (its triage or hour is unreadable)")
            return False
        pipe.multi()
        pipe.hset(key, mapping={"tipster_status": stage, "tipster_status_hour": as_text(received)})
        if wrapped and not stage.is_final:
            pipe.zadd(keys.TIPSTER_STATUS_SINCE, {reference: int(since.timestamp()) * 1000}, nx=True)
        return True

    return atomically(connection, [key], backfill)
