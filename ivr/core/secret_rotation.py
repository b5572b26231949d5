"""Rotating SECRET_KEY: what moves to the new key at once, what waits out a grace period.

SECRET_KEY is a list, `new,old`. The first key seals, signs and names (keyed digests);
every key listed opens, verifies and is looked up under. A rotation is three steps:
1. deploy with `SECRET_KEY=new,old` (web app, workers, clock; any order: each process
   reads and finds under both keys);
2. run `tipline secret rotate`: it re-seals what lives long and is re-sealable, and moves
   what is named by a digest where it can compute the new name;
3. after the grace period (`GRACE_SECONDS` from step 2: `tipline secret status` says
   when), deploy with `SECRET_KEY=new` alone.

Re-sealed or moved by `rotate` (so nobody re-enrols and no lock is forgotten):
- the console's sealed TOTP secrets (and one waiting in an unfinished enrolment);
- the sealed job handle each recording awaiting its transcript keeps in its tip part
  (what `workers/stuck.py` queues again);
- the PIN guard's counts and lock memory for every existing tip's reference.

Dropped by `rotate`: the stock of PINs minted ahead (`ivr.core.pin_pool`), sealed under the
old key; it is only work done early, and the clock mints a new stock under the new key.

Moved when next looked up (`ivr.core.digest_moves`): a kept recording's part marker (every
provider sweep round looks up each recording still at the provider, so the sweep never
takes a kept recording in twice), an inbound text's marker (every inbound sweep round),
sign-in failure counters, the SMS line's seen-markers. A recording's `seen` marker is
found under every key listed until it expires.

Not re-sealable, so they are why the old key stays listed (the grace period):
- call-state tokens in the provider's hands: a recording's status callback may come up
  to `RECORDING_CALLBACK_MAX_AGE` (7 days) late; menu steps live an hour;
- job arguments already queued in RQ (until they run; failed jobs are retried well
  within the week), SMS sessions and returning conversations (a day at most), enrolment
  links (72 hours), the console's session cookies (the idle timeout).
Hence GRACE_SECONDS: seven days after `rotate` ran for the current key.

Nothing about a key is stored in Redis but a fingerprint (an HMAC of a fixed label under
it) and when `rotate` last ran for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from ivr.core import Core, keys
from ivr.core.call_state import RECORDING_CALLBACK_MAX_AGE
from ivr.core.redis_values import as_text
from ivr.core.transactions import atomically
from ivr.core.vault import CannotOpen, key_fingerprint

GRACE_SECONDS = RECORDING_CALLBACK_MAX_AGE


@dataclass(frozen=True)
class RotationReport:
    totp_resealed: int
    handles_resealed: int
    handles_unopenable: int
    pin_guards_moved: int
    old_keys_needed_until: float | None  # None: only one key is listed


@dataclass(frozen=True)
class RotationStatus:
    keys_listed: int
    fingerprint: str  # the current key's
    rotated_at: float | None  # when `rotate` last ran for the current key (None: never)

    @property
    def old_keys_needed_until(self) -> float | None:
        """Until when the older keys listed must stay; None when `rotate` has not run yet."""
        return None if self.rotated_at is None else self.rotated_at + GRACE_SECONDS

    def old_keys_needed(self, now: float) -> bool:
        if self.keys_listed == 1:
            return False
        until = self.old_keys_needed_until
        return until is None or now < until


def rotate(core: Core, now: float | None = None) -> RotationReport:
    """Re-seal and move what depends on SECRET_KEY's older keys; record when. Idempotent."""
    moment = time.time() if now is None else now
    totp = core.accounts.reseal_totp()
    handles, unopenable = _reseal_awaited_handles(core)
    moved = core.pin_guard.rekey(_references(core.redis))
    core.redis.delete(keys.PIN_POOL)
    settings = core.settings
    fingerprint = key_fingerprint(settings.secret_key)
    core.redis.hsetnx(keys.SECRET_ROTATION, fingerprint, int(moment))
    rotated_at = float(as_text(core.redis.hget(keys.SECRET_ROTATION, fingerprint)))
    # Rotations before the current one are history: keep only the current key's record.
    stale = [name for name in core.redis.hkeys(keys.SECRET_ROTATION) if as_text(name) != fingerprint]
    if stale:
        core.redis.hdel(keys.SECRET_ROTATION, *stale)
    until = rotated_at + GRACE_SECONDS if len(settings.secret_keys) > 1 else None
    return RotationReport(totp_resealed=totp, handles_resealed=handles, handles_unopenable=unopenable,
                          pin_guards_moved=moved, old_keys_needed_until=until)


def status(core: Core) -> RotationStatus:
    """How many keys are listed, and whether (and since when) `rotate` ran for the current one."""
    fingerprint = key_fingerprint(core.settings.secret_key)
    raw = core.redis.hget(keys.SECRET_ROTATION, fingerprint)
    return RotationStatus(keys_listed=len(core.settings.secret_keys), fingerprint=fingerprint,
                          rotated_at=float(as_text(raw)) if raw is not None else None)


def _reseal_awaited_handles(core: Core) -> tuple[int, int]:
    """Re-seal, under the current key, the job handle each part awaiting its transcript keeps."""
    resealed = unopenable = 0
    for reference, index in core.tips.awaiting_since(float("inf")):
        tip_key, field = keys.tip(reference), f"part:{index}:job"

        def reseal(pipe: redis.client.Pipeline, tip_key: str = tip_key, field: str = field) -> str:
            sealed = pipe.hget(tip_key, field)
            pipe.multi()
            if sealed is None:
                return "gone"
            try:
                fresh = core.arguments.reseal_handle(as_text(sealed))
            except CannotOpen:
                return "unopenable"
            if fresh is None:
                return "current"
            pipe.hset(tip_key, field, fresh)
            return "resealed"

        outcome = atomically(core.redis, [tip_key], reseal)
        resealed += outcome == "resealed"
        unopenable += outcome == "unopenable"
    return resealed, unopenable


def _references(connection: redis.Redis) -> list[str]:
    return [as_text(key).rsplit(":", 1)[1] for key in connection.scan_iter(match=keys.tip("*"), count=500)]
