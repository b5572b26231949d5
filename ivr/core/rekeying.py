"""Moving tips' data keys between keys: re-keying periods, and old-format tips onto period keys.

`rekey_periods` is what makes a shred survive backups: after tips of a period are shredded,
the period's surviving tips (and SMS drafts waiting to become tips) are re-wrapped under a
new version of its key, and every older version is destroyed. It is also how a master key
rotation reaches period keys: the new version is sealed under the current master key.

`move_old_format_tips` re-wraps tips from before period keys (data key wrapped directly
under a master key) under the period key of the month they arrived, resumably: the SCAN
cursor is kept in Redis after each batch, so a job that dies goes on where it stopped.

Every move is one WATCH/MULTI on the record, so a handler or the pipeline writing the
tip meanwhile only makes the move run again from a fresh read. Nothing here changes the
ciphertext of a transcript or note: only the wrapped data key.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterator

import redis
from redis.client import Pipeline

from ivr.core import keys
from ivr.core.redis_values import HashFields, as_text
from ivr.core.transactions import atomically
from ivr.core.vault import TipVault, VaultError, period_label_of

log = logging.getLogger(__name__)
SCAN_BATCH = 500
PROGRESS_EVERY = 1000  # tips looked at between two progress lines
# A tip written under an older version while the first pass ran (its key was wrapped just
# before the new version appeared) is caught by the second.
PASSES = 2


def rekey_periods(connection: redis.Redis, vault: TipVault, periods: Collection[str]) -> int:
    """Re-wrap every surviving tip of `periods` under a fresh version of its period's key, then
    destroy the older versions. Returns how many records moved. Idempotent: a second run
    moves the same records again, under yet another version."""
    if vault.periods is None or not periods:
        return 0
    source = vault.periods
    old = {label for period in periods for label in source.labels(period)}
    newest = {period: source.new_version(period) for period in periods}
    old -= set(newest.values())  # another machine re-keying the same period at once made the same version

    def moves(label: str | None) -> bool:
        return label in old

    moved = 0
    for _ in range(PASSES):
        moved += _move_all(connection, vault, keys.tip("*"), moves, lambda fields: fields["period"])
        moved += _move_all(connection, vault, keys.sms_session("*"), moves, lambda fields: fields["period"])
    # Before the old versions go: the survivors, carried by the new one, so a backup from
    # before this re-key still opens them (and not the shredded, which are in no table).
    survivors: dict[str, dict[str, str]] = {label: {} for label in newest.values()}
    for reference, wrapped in _tip_wrapped_keys(connection):
        label = period_label_of(wrapped)
        if label in survivors:
            survivors[label][reference] = wrapped
    for label, carried in survivors.items():
        source.write_carried(label, carried)
    for label in sorted(old):
        source.destroy(label)
    log.info("re-keyed %d period(s): %d record(s) moved, %d old key version(s) destroyed",
             len(periods), moved, len(old))
    return moved


def move_old_format_tips(connection: redis.Redis, vault: TipVault) -> int:
    """Move every tip whose data key is wrapped under a master key to its month's period key.
    Resumable (SCAN cursor in Redis) and idempotent; returns how many moved in this run."""
    cursor = int(connection.get(keys.KEYS_REWRAP_CURSOR) or 0)
    moved = looked_at = 0
    while True:
        cursor, batch = connection.scan(cursor, match=keys.tip("*"), count=SCAN_BATCH)
        for key in batch:
            moved += _move_one(connection, vault, as_text(key), _is_old_format, _period_received)
        looked_at += len(batch)
        if looked_at // PROGRESS_EVERY != (looked_at - len(batch)) // PROGRESS_EVERY:
            log.info("moving old-format tips to period keys: %d looked at, %d moved so far", looked_at, moved)
        if cursor == 0:
            break
        connection.set(keys.KEYS_REWRAP_CURSOR, cursor)
    with connection.pipeline() as pipe:  # the full pass is done: no tip is left in the old format
        pipe.delete(keys.KEYS_REWRAP_CURSOR, keys.OLD_FORMAT_TIPS)
        pipe.set(keys.OLD_FORMAT_TIPS_COUNTED, 1)
        pipe.execute()
    log.info("old-format tips moved to period keys: %d", moved)
    return moved


def count_old_format_tips(connection: redis.Redis) -> dict[str, int]:
    """Master key id -> tips still wrapped directly under it: one scan when never counted,
    else the count kept in Redis (zero for all once `move_old_format_tips` has finished)."""
    if connection.exists(keys.OLD_FORMAT_TIPS_COUNTED):
        return {as_text(k): int(v) for k, v in connection.hgetall(keys.OLD_FORMAT_TIPS).items() if int(v)}
    counts = Counter(label for label in wrapped_key_ids(connection) if period_label_of(label + ":") is None)
    with connection.pipeline() as pipe:
        pipe.delete(keys.OLD_FORMAT_TIPS)
        if counts:
            mapping: HashFields = {master_id: count for master_id, count in counts.items()}
            pipe.hset(keys.OLD_FORMAT_TIPS, mapping=mapping)
        pipe.set(keys.OLD_FORMAT_TIPS_COUNTED, 1)
        pipe.execute()
    return dict(counts)


def _tip_wrapped_keys(connection: redis.Redis) -> Iterator[tuple[str, str]]:
    """(reference, wrapped data key) of every stored tip."""
    for key in connection.scan_iter(match=keys.tip("*"), count=SCAN_BATCH):
        wrapped = connection.hget(key, "wrapped_key")
        if wrapped:
            yield as_text(key).rpartition(":")[2], as_text(wrapped)


def wrapped_key_ids(connection: redis.Redis) -> Iterator[str]:
    """The key id (period key label or master key id) each stored tip's data key is wrapped under."""
    for key in connection.scan_iter(match=keys.tip("*"), count=SCAN_BATCH):
        wrapped = connection.hget(key, "wrapped_key")
        if wrapped:
            yield as_text(wrapped).partition(":")[0]


def _is_old_format(label: str | None) -> bool:
    return label is None


def _period_received(fields: dict[str, str]) -> str:
    return fields["received_hour"][:7]  # "2026-11-30T14:00Z" -> "2026-11"


def _move_all(connection: redis.Redis, vault: TipVault, pattern: str, moves: Callable[[str | None], bool],
              period: Callable[[dict[str, str]], str]) -> int:
    return sum(_move_one(connection, vault, as_text(key), moves, period)
               for key in connection.scan_iter(match=pattern, count=SCAN_BATCH))


def _move_one(connection: redis.Redis, vault: TipVault, key: str, moves: Callable[[str | None], bool],
              period: Callable[[dict[str, str]], str]) -> int:
    """Re-wrap one record's data key (a tip, or an SMS session's draft key) when `moves` says so."""

    def move(pipe: Pipeline) -> int:
        wrapped_raw, reference_raw, received_raw = pipe.hmget(key, "wrapped_key", "reference", "received_hour")
        wrapped = as_text(wrapped_raw) if wrapped_raw else ""
        reference = as_text(reference_raw) if reference_raw else key.rpartition(":")[2]
        label = period_label_of(wrapped)
        if not wrapped or not moves(label):
            return 0
        fields = {"period": (label or "").partition(".")[0], "received_hour": as_text(received_raw or b"")}
        try:
            rewrapped = vault.to_period(wrapped, reference, period(fields))
        except VaultError:
            if label is None:
                raise  # an old-format tip whose master key is missing: the operator must add it back
            return 0  # its period key is already gone: a tip shredded before (restored from a backup)
        pipe.multi()
        pipe.hset(key, "wrapped_key", rewrapped)
        return 1

    return atomically(connection, [key], move)
