"""Statuses at rest are codes; records written before codes are rewritten when a worker starts,
and a handler reads the same words before and after.

The old records are written field by field exactly as the code before `ivr.core.statuses`
wrote them (`TipStore.add_part` / `finish_part`, `Casework._finish`), English words and
all; then a real worker process starts (`python -m workers.run --burst`), as a deploy
would start it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from dev.processes import run_worker_burst
from dev.twilio.calls import TwilioLike
from ivr.console.catalogue import load_console_catalogue
from ivr.core import keys
from ivr.core.coarse_time import current_hour
from ivr.core.prompts import CONFIG_DIR, CatalogueError
from ivr.core.redis_values import as_text
from ivr.core.references import new_reference
from ivr.core.status_migration import migrate_statuses
from ivr.core.tips import TipStore
from tests.console_people import ConsoleClient, a_texted_tip, enrolled

SAID = "The van behind the bakery on Station Road is loaded every Thursday night."
KEPT_RECORDING = {"recording_sid": "RE" + "0" * 32}

# One tip per line, as stored before codes: its parts (words, transcribed?), the tip's
# status, its triage, how it arrived, and the case's outcome. Between them every word
# that was ever stored.
BEFORE_CODES = [
    ([("ready", True), ("no speech detected", False), ("transcription failed", False)],
     "transcription failed", "possibly malicious", None, None),
    ([("ready", True)], "ready", "passed on", "arrived while the line was down", "passed on"),
    ([("awaiting transcript", False)], "awaiting transcript", "new", None, None),
    ([("awaiting transcription in its language", False)], "awaiting transcription in its language",
     "needs follow-up", None, None),
    ([("ready", True)], "ready", "in review", None, None),
    ([("no speech detected", False)], "no speech detected", "closed", None, "closed"),
]
# What each old word becomes.
CODES = {
    "awaiting transcript": "awaiting-transcript", "awaiting transcription in its language": "awaiting-language",
    "no speech detected": "no-speech", "transcription failed": "transcription-failed", "ready": "ready",
    "new": "new", "in review": "in-review", "needs follow-up": "follow-up", "possibly malicious": "malicious",
    "passed on": "passed-on", "closed": "closed", "arrived while the line was down": "line-down",
}
# Old words whose part offered a handler the disguised recording.
AUDIO_KEPT = ("transcription failed", "awaiting transcription in its language")
# The line a part without a transcript showed, per old word.
PART_LINES = {
    "awaiting transcript": "Awaiting transcript",
    "awaiting transcription in its language": "Awaiting transcription in its language; audio awaiting review",
    "no speech detected": "No speech detected", "transcription failed": "Transcription failed; audio awaiting review",
}


def a_tip_written_before_codes(connection: redis.Redis, tips: TipStore, parts: list[tuple[str, bool]],
                               status: str, triage: str, arrival: str | None, finished: str | None) -> str:
    """A tip (and its case) with the fields and words the code before codes stored; its reference."""
    reference = new_reference()
    wrapped = tips.vault.new_tip_key(reference)
    fields: dict[str, str | bytes | int] = {
        "reference": reference, "pin_hash": "", "channel": "sms" if arrival else "voice", "language": "en",
        "category": "drugs", "urgent": 0, "received_hour": current_hour(), "status": status, "triage": triage,
        "wrapped_key": wrapped, "parts": len(parts), **({"arrival": arrival} if arrival else {})}
    for index, (part_status, transcribed) in enumerate(parts, start=1):
        fields[f"part:{index}:status"] = part_status
        fields[f"part:{index}:seconds"] = 9
        if transcribed:
            fields[f"part:{index}:transcript"] = tips.vault.seal(wrapped, reference, f"part:{index}:transcript", SAID)
        if part_status == "transcription failed":
            fields[f"part:{index}:audio"] = tips.vault.seal(wrapped, reference, f"part:{index}:audio",
                                                            json.dumps(KEPT_RECORDING))
    connection.hset(keys.tip(reference), mapping=fields)
    if finished == "passed on":
        connection.hset(keys.case(reference), mapping={"partner": "met", "passed_hour": current_hour(),
                                                       "finished": finished})
    elif finished:
        connection.hset(keys.case(reference), mapping={"close_reason": "duplicate", "finished": finished})
    return reference


def stored(connection: redis.Redis, key: str) -> dict[str, bytes]:
    return {field.decode(): value for field, value in connection.hgetall(key).items()}


def everything(connection: redis.Redis) -> dict[str, dict[str, bytes]]:
    return {key.decode(): stored(connection, key.decode()) for key in connection.scan_iter(match=f"{keys.PREFIX}:*",
                                                                                          _type="hash")}


def test_a_worker_start_rewrites_every_stored_word_as_a_code_and_handlers_read_the_same_words(
        app, twilio: TwilioLike, redis_client: redis.Redis, environment) -> None:
    # Given records written before codes, beside one written today
    tips: TipStore = app.extensions["tipline"].tips
    references = [a_tip_written_before_codes(redis_client, tips, *row) for row in BEFORE_CODES]
    todays = a_texted_tip(twilio, "+447700900555", SAID)
    todays_record = stored(redis_client, keys.tip(todays))
    assert todays_record["status"] == b"ready" and todays_record["triage"] == b"new"

    # When a worker starts
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]

    # Then every status is stored as its code, and nothing else changed
    for reference, (parts, status, triage, arrival, finished) in zip(references, BEFORE_CODES, strict=True):
        record = stored(redis_client, keys.tip(reference))
        assert (record["status"].decode(), record["triage"].decode()) == (CODES[status], CODES[triage])
        assert [record[f"part:{i}:status"].decode() for i in range(1, len(parts) + 1)] == [CODES[p] for p, _ in parts]
        assert record.get("arrival") == (CODES[arrival].encode() if arrival else None)
        assert stored(redis_client, keys.case(reference)).get("finished") == (CODES[finished].encode() if finished
                                                                             else None)
        assert tips.get(reference).transcript == "\n".join(SAID for _, transcribed in parts if transcribed)
    assert stored(redis_client, keys.tip(todays)) == todays_record

    # and a handler reads the words they read before
    handler = ConsoleClient(app, enrolled(app, "sam"))
    assert handler.signs_in().status_code == 302
    for reference, (parts, status, triage, arrival, finished) in zip(references, BEFORE_CODES, strict=True):
        page = handler.get(f"/console/tips/{reference}").get_data(as_text=True)
        assert f'<dd class="status">{status}</dd>' in page and f'<dd class="triage" id="triage">{triage}</dd>' in page
        assert all(PART_LINES[p] in page for p, transcribed in parts if not transcribed)
        assert (f'<dd class="arrival">{arrival}</dd>' in page) == bool(arrival)
        if finished:
            assert f"This tip was <strong>{finished}</strong>" in page
        assert ("disguised" in page) == any(p in AUDIO_KEPT for p, _ in parts)

    # and starting again, or again without the marker, changes nothing
    after = everything(redis_client)
    assert redis_client.exists(keys.STATUS_CODES_MIGRATED) and migrate_statuses(redis_client) == 0
    redis_client.delete(keys.STATUS_CODES_MIGRATED)
    assert migrate_statuses(redis_client) == 0 and everything(redis_client) == after


def test_tips_from_before_the_tipster_facing_status_get_one_and_open_ones_join_the_deadlines(
        app, redis_client: redis.Redis) -> None:
    # Given tips stored before the tipster-facing status (codes already), one shredded since
    tips: TipStore = app.extensions["tipline"].tips
    rows = {"new": "received", "in-review": "being-looked-at", "follow-up": "being-looked-at",
            "passed-on": "passed-on", "closed": "closed"}
    older = {}
    for triage in rows:
        reference = a_tip_written_before_codes(redis_client, tips, [("ready", True)], "ready", triage, None, None)
        redis_client.hset(keys.tip(reference), "received_hour", "2026-03-02T09:00Z")
        older[triage] = reference
    shredded = a_tip_written_before_codes(redis_client, tips, [("ready", True)], "ready", "in-review", None, None)
    tips.shred(shredded)
    redis_client.delete(keys.TIPSTER_STATUSES_BACKFILLED)
    redis_client.set(keys.STATUS_CODES_MIGRATED, 1)

    # When a worker starts (the step it runs)
    assert migrate_statuses(redis_client) == len(rows) + 1

    # Then each has the stage its triage maps to, dated from the hour it was received
    for triage, reference in older.items():
        record = stored(redis_client, keys.tip(reference))
        assert record["tipster_status"].decode() == rows[triage]
        assert record["tipster_status_hour"] == b"2026-03-02T09:00Z"
        assert tips.get(reference).tipster_status == rows[triage]
    # and the open ones (not the finished, not the shredded) are listed for the deadlines page
    listed = {as_text(member): score for member, score in redis_client.zrange(keys.TIPSTER_STATUS_SINCE, 0, -1,
                                                                             withscores=True)}
    march = datetime(2026, 3, 2, 9, tzinfo=UTC).timestamp() * 1000
    assert listed == {older["new"]: march, older["in-review"]: march, older["follow-up"]: march}
    follow_up = app.extensions["tipline"].follow_up
    assert {reference for reference, _ in follow_up.status_unchanged_since(int(march) + 1)} == set(listed)

    # and starting again, with or without the marker, changes nothing
    after = everything(redis_client)
    assert migrate_statuses(redis_client) == 0
    redis_client.delete(keys.TIPSTER_STATUSES_BACKFILLED)
    assert migrate_statuses(redis_client) == 0 and everything(redis_client) == after


@pytest.mark.parametrize(("edit", "message"), [
    (lambda raw: raw["part_statuses"].pop(), r"'part_statuses' .* missing \['ready'\]"),
    (lambda raw: raw["triage"].append(["deleted", "deleted"]), r"'triage' .* unknown \['deleted'\]"),
    (lambda raw: raw.pop("arrivals"), "'arrivals' must be a non-empty list"),
], ids=["a code without words", "words for no code", "a list missing"])
def test_the_console_catalogue_must_give_words_for_every_status_code(app, tmp_path: Path, edit, message) -> None:
    raw = json.loads((CONFIG_DIR / "console.json").read_text(encoding="utf-8"))
    edit(raw)
    (tmp_path / "console.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(CatalogueError, match=message):
        load_console_catalogue(app.extensions["tipline"].menus, tmp_path / "console.json")
