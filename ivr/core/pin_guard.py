"""Who may add to a tip by quoting its reference and PIN, and how guessing is stopped.

Three promises, and how each is kept:
- **A burst cannot beat the limit.** Each check is counted (one atomic script) *before*
  the slow argon2 verify, and only the first PIN_CHECKS_PER_WINDOW of a window are
  verified, right or wrong, however many texts arrive at once.
- **Guessing gets slower the longer it goes on.** When every check of a window failed,
  the reference locks for an hour, then a day, then a week while failures continue; the
  level is remembered for LOCK_MEMORY_SECONDS after the latest lock, and while it is the
  tip shows "under attack" on the console.
- **Nothing tells a known reference from an unknown one.** Malformed, unknown, locked
  and wrong all cost exactly one argon2 verify with the same parameters and get the same
  answer (the caller words it).
- **A deleted tip's tipster is told, and nobody else.** A tip deleted under the retention
  rules leaves a tombstone holding its PIN's hash (`ivr.core.retention`); a proven PIN on a
  tombstone is `Proof.DELETED`. The tip's hash and the tombstone's are read together, in
  the one round trip that read the tip's alone, on every path: a tombstone costs no more
  and no less than a tip, and its refusals are the same refusal.

What a tipster types here is unverified: it names a key only through a keyed digest
(a phone number typed as a reference must not turn up in a key name or the AOF), and a
malformed reference or PIN stores nothing at all.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from enum import Enum

import redis
from argon2.exceptions import InvalidHashError, VerificationError

from ivr.core import keys
from ivr.core.digest_moves import adopt, names
from ivr.core.redis_values import as_text
from ivr.core.references import is_valid_pin, is_valid_reference
from ivr.core.tips import PIN_HASHER, TipStore
from ivr.core.vault import KeyedDigest, Secrets

log = logging.getLogger(__name__)

PIN_CHECKS_PER_WINDOW = 5
WINDOW_SECONDS = 3600
# The lock after each failed window in a row: an hour, a day, then a week each time.
LOCK_SECONDS = (3600, 24 * 3600, 7 * 24 * 3600)
# How long a lock is remembered, for escalation and for the console's "under attack".
LOCK_MEMORY_SECONDS = 30 * 24 * 3600

# Verified whenever there is no real hash to check (or it must not be checked), so every
# refusal costs what a wrong PIN costs. Its secret is random: no PIN ever matches it.
_UNMATCHABLE_PIN_HASH = PIN_HASHER.hash(secrets.token_urlsafe(24))

# KEYS[1] the reference's attempts hash. ARGV[1] window seconds. Returns this check's number.
_COUNT_CHECK = """
local checks = redis.call('HINCRBY', KEYS[1], 'checks', 1)
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return checks
"""

# KEYS[1] attempts hash, KEYS[2] lock level. ARGV[1] checks per window, ARGV[2] lock memory,
# ARGV[3..] lock seconds by level. Returns the lock's seconds, or 0 when this failure locks nothing.
_COUNT_FAILURE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[1], 'failures', 1) ~= tonumber(ARGV[1]) then return 0 end
local level = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local seconds = tonumber(ARGV[2 + math.min(level, #ARGV - 2)])
redis.call('EXPIRE', KEYS[1], seconds)
return seconds
"""


class Proof(Enum):
    """What a checked reference and PIN prove."""

    REFUSED = "refused"  # wrong, unknown, malformed, locked, closed: one answer for all
    PROVEN = "proven"  # the tip's PIN: the tipster may hear about it and add to it
    DELETED = "deleted"  # a tombstone's PIN: the tip was dealt with and deleted


class PinGuard:
    """PIN checks for quoted references: counted first, locked while failing, timed alike."""

    def __init__(self, secret_keys: Secrets, connection: redis.Redis, tips: TipStore) -> None:
        self._redis = connection
        self._tips = tips
        self._reference_key = KeyedDigest(secret_keys, "pin-guard.reference")
        self._count_check = connection.register_script(_COUNT_CHECK)
        self._count_failure = connection.register_script(_COUNT_FAILURE)

    def proves(self, reference: str, pin: str) -> bool:
        """True when `pin` is `reference`'s PIN (a tip, not a tombstone) and it may be checked now."""
        return self.check(reference, pin) is Proof.PROVEN

    def check(self, reference: str, pin: str) -> Proof:
        """Whether `pin` proves `reference`: its tip's PIN, its tombstone's, or neither.

        Every path makes the same three Redis round trips around one argon2 verify; a
        malformed reference or PIN makes read-only ones, so it stores nothing.
        """
        well_formed = is_valid_reference(reference) and is_valid_pin(pin)
        named = self._reference_key(reference)
        if well_formed:  # after a SECRET_KEY rotation, the counts kept under the old key's name come along
            named = adopt(self._redis, self._reference_key.every(reference), keys.pin_attempts, keys.pin_locks)
            admitted = self._admitted(named)
            tip_hash, tombstone_hash = self._pin_hashes(reference)
        else:
            admitted, tip_hash, tombstone_hash = False, None, None
            self._redis.exists(keys.pin_attempts(named))
            self._redis.exists(keys.pin_locks(named))
        pin_hash = tip_hash or tombstone_hash
        if _pin_matches(pin_hash if admitted and pin_hash else _UNMATCHABLE_PIN_HASH, pin):
            return Proof.PROVEN if tip_hash else Proof.DELETED
        if admitted:
            self._failed(named)
        else:
            self._redis.exists(keys.pin_locks(named))  # not a failure to count: only checked PINs count
        return Proof.REFUSED

    def _pin_hashes(self, reference: str) -> tuple[str | None, str | None]:
        """The tip's PIN hash and its tombstone's (one round trip; at most one exists)."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.tip(reference), "pin_hash")
            pipe.hget(keys.tombstone(reference), "pin_hash")
            tip_hash, tombstone_hash = pipe.execute()
        return (as_text(tip_hash) if tip_hash else None), (as_text(tombstone_hash) if tombstone_hash else None)

    def keys_of(self, reference: str) -> tuple[str, str]:
        """The attempt and lock keys of `reference` (retention deletes them with the tip)."""
        named = self._reference_key(reference)
        return keys.pin_attempts(named), keys.pin_locks(named)

    def under_attack(self, reference: str) -> bool:
        """True while a lock on this reference's PIN is remembered: someone has been guessing it."""
        return bool(self._redis.exists(*names(self._reference_key.every(reference), keys.pin_locks)))

    def rekey(self, references: Iterable[str]) -> int:
        """Move the counts and lock memory kept for these references under an older SECRET_KEY
        to the current key's names (`tipline secret rotate`, for every tip). Returns how many."""
        moved = 0
        for reference in references:
            digests = self._reference_key.every(reference)
            held = self._redis.exists(*names(digests[1:], keys.pin_attempts), *names(digests[1:], keys.pin_locks)) \
                if len(digests) > 1 else 0
            if held:
                adopt(self._redis, digests, keys.pin_attempts, keys.pin_locks)
                moved += 1
        return moved

    def _admitted(self, named: str) -> bool:
        checks = self._count_check(keys=[keys.pin_attempts(named)], args=[WINDOW_SECONDS])
        return int(checks) <= PIN_CHECKS_PER_WINDOW

    def _failed(self, named: str) -> None:
        seconds = int(self._count_failure(keys=[keys.pin_attempts(named), keys.pin_locks(named)],
                                          args=[PIN_CHECKS_PER_WINDOW, LOCK_MEMORY_SECONDS, *LOCK_SECONDS]))
        if seconds:
            log.warning("a quoted reference's PIN failed %d times in a window: locked for %d s",
                        PIN_CHECKS_PER_WINDOW, seconds)


def _pin_matches(pin_hash: str, pin: str) -> bool:
    try:
        return PIN_HASHER.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False
