"""PINs minted ahead with their argon2 hashes, so that no webhook waits for argon2.

A new tip's PIN is stored as an argon2 hash (`tips.PIN_HASHER`: ~22 ms of a core). That hash
was the one slow step of a new tip's webhook, the recording callback or the text that
starts a report: during a TV appeal they queued behind each other on 2 cores and webhook
p99 passed 100 ms (bench/surge.py). The clock, at the workers' low priority, keeps a stock
of fresh PINs with their hashes in Redis (`refill`), and a new tip takes one (`take`, LPOP:
each entry goes to one tip only, whichever machine asks).

Each entry is sealed (the vault, purpose "pin-pool"), so a copy of Redis alone reveals no
PIN, as with the PINs in the call-state tokens. An empty stock, Redis away, or an entry
that no longer opens (sealed under a SECRET_KEY since retired) gives None: the caller mints
and hashes on the spot as before, slower but never refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import redis

from ivr.core import keys
from ivr.core.redis_values import as_bytes
from ivr.core.references import is_valid_pin, new_pin
from ivr.core.tips import PIN_HASHER
from ivr.core.vault import CannotOpen, Sealer, Secrets

# An appeal's peak is about one new tip a second; the clock ticks every 5 s and adds at
# most REFILL_PER_TICK (~0.5 s of one core at nice 10), so the stock lasts minutes of surge
# and refills faster than it is taken.
STOCK = 300
REFILL_PER_TICK = 20


@dataclass(frozen=True)
class MintedPin:
    pin: str
    pin_hash: str


def mint_pin() -> MintedPin:
    """A fresh PIN and its hash, here and now (~22 ms)."""
    pin = new_pin()
    return MintedPin(pin=pin, pin_hash=PIN_HASHER.hash(pin))


class PinPool:
    def __init__(self, connection: redis.Redis, secrets: Secrets) -> None:
        self._redis = connection
        self._sealer = Sealer(secrets, "pin-pool")

    def take(self) -> MintedPin | None:
        """A PIN minted ahead, now this tip's alone; None when there is none to take."""
        try:
            sealed = self._redis.lpop(keys.PIN_POOL)
        except redis.RedisError:
            return None
        if sealed is None:
            return None
        try:
            entry = json.loads(self._sealer.open(as_bytes(sealed)))
        except (CannotOpen, ValueError):
            return None  # gone from the stock all the same: it never opens again
        if not isinstance(entry, dict):
            return None
        pin, pin_hash = entry.get("pin"), entry.get("hash")
        if not isinstance(pin, str) or not is_valid_pin(pin) or not isinstance(pin_hash, str):
            return None
        return MintedPin(pin=pin, pin_hash=pin_hash)

    def refill(self, stock: int = STOCK, at_most: int = REFILL_PER_TICK,
               stopping: Callable[[], bool] = lambda: False) -> int:
        """Top the stock up towards `stock`, minting at most `at_most` and each added as soon
        as it is minted (so `stopping`, asked between them, ends it within one hash); how
        many were added."""
        missing = min(at_most, stock - self._redis.llen(keys.PIN_POOL))
        added = 0
        while added < missing and not stopping():
            self._redis.rpush(keys.PIN_POOL, self._seal(mint_pin()))
            added += 1
        return added

    def _seal(self, minted: MintedPin) -> bytes:
        return self._sealer.seal(json.dumps({"pin": minted.pin, "hash": minted.pin_hash}).encode())
