"""Which clock runs the periodic work: one lease in Redis, so starting a clock per machine is safe.

The leader holds `tipline:clock:leader` (its value a random id of this process) for
`CLOCK_LEASE_SECONDS`, and renews it before each piece of work with a compare-and-pexpire,
so a clock that lost it (paused past the lease, Redis failed over) learns so before it
works. A standby clock takes the key with SET NX PX once it has expired: within a lease of
the leader's machine dying. On a clean stop the leader deletes the key if it is still its
own, so a standby takes over on its next tick.
"""

from __future__ import annotations

import logging
import secrets

import redis

from ivr.core import keys

log = logging.getLogger("workers.clock")

# Renew the lease only if it is still ours: another clock may hold it since ours expired.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ClockLease:
    """This clock's claim to lead: `held()` takes or renews it, `release()` gives it back."""

    def __init__(self, connection: redis.Redis, lease_seconds: int) -> None:
        self._redis = connection
        self._lease_ms = lease_seconds * 1000
        self.holder_id = secrets.token_hex(16)
        self._leading: bool | None = None  # unknown until the first look

    def held(self) -> bool:
        """Do we lead now? Renews our lease, or takes it if nobody holds it; Redis away is "no"."""
        try:
            leading = bool(self._redis.eval(_RENEW, 1, keys.CLOCK_LEADER, self.holder_id, self._lease_ms)) or bool(
                self._redis.set(keys.CLOCK_LEADER, self.holder_id, nx=True, px=self._lease_ms))
        except redis.RedisError:
            leading = False
        if leading != self._leading:
            log.info("clock running (leader)" if leading else "clock standing by")
            self._leading = leading
        return leading

    def release(self) -> None:
        """Give the lease back if it is still ours, so a standby clock takes over at once."""
        try:
            self._redis.eval(_RELEASE, 1, keys.CLOCK_LEADER, self.holder_id)
        except redis.RedisError:
            log.warning("could not give back the clock lease: it expires in %d s", self._lease_ms // 1000)
