"""How many sign-ins may be tried, per account and per client address, counted before the check.

A sign-in attempt is counted *before* the slow argon2 check, in one Lua script that also
decides whether it may be checked at all, so a burst of concurrent attempts cannot all
read "under the limit" before any of them is counted: however many arrive at once, no
more than the limit are ever verified in a window.

Two counters, so that an outsider cannot keep a handler locked out by guessing at their
name: the client address's counter is the tight one (5 in 15 minutes stops that address),
the account's is looser (20, so it takes several addresses to lock an account, and one
attacker address is stopped long before the account is). An attempt refused for a lock
is not counted (it was not checked), so a locked address cannot push an account towards
its own lock. Each counted attempt renews its counters' expiry: a lock lasts the window
after the last checked attempt.

The address is kept only as long as its counter (the window): the key is named by a keyed
digest of the address (HMAC under a key derived from SECRET_KEY), never the address. The
typed name's counter is named by a keyed digest too: what a stranger types (a phone
number, say) must not become a key name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import redis

from ivr.core import keys
from ivr.core.digest_moves import adopt
from ivr.core.vault import KeyedDigest, Secrets

ADDRESS_FAILURES_ALLOWED = 5
ACCOUNT_FAILURES_ALLOWED = 20
WINDOW_SECONDS = 15 * 60

# KEYS[1]: the account's counter, KEYS[2]: the address's counter.
# ARGV[1]: window seconds, ARGV[2]: account limit, ARGV[3]: address limit.
# Returns {0, account count, address count} when the attempt was counted and may be
# checked; {1} when the address is locked, {2} when the account is (nothing is counted then).
_COUNT_ATTEMPT = """
local account = tonumber(redis.call('GET', KEYS[1]) or '0')
local address = tonumber(redis.call('GET', KEYS[2]) or '0')
if address >= tonumber(ARGV[3]) then return {1} end
if account >= tonumber(ARGV[2]) then return {2} end
account = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
address = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return {0, account, address}
"""

# A successful sign-in was not a failure: the account's count starts again (the person has
# proved who they are) and the address gets back the one attempt counted for it. DECR only
# an existing counter: on a missing key it would make one that never expires.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
return 0
"""


class Lock(enum.Enum):
    """Why an attempt was refused without being checked."""

    ADDRESS = 1
    ACCOUNT = 2


@dataclass(frozen=True)
class Attempt:
    """One counted sign-in attempt: whose counters it went on, and what they came to."""

    account_key: str
    address_key: str
    account_count: int
    address_count: int

    @property
    def locks_if_it_fails(self) -> tuple[Lock, ...]:
        """The locks this attempt starts if it fails (exactly one attempt reaches each limit)."""
        return tuple(lock for lock, reached in ((Lock.ADDRESS, self.address_count == ADDRESS_FAILURES_ALLOWED),
                                                (Lock.ACCOUNT, self.account_count == ACCOUNT_FAILURES_ALLOWED))
                     if reached)


class SignInLocked(Exception):
    """The attempt was not checked: its address or its account is locked for now.

    The message says which, and what to do: a lock says nothing about whether a name
    exists (unknown names are counted and locked alike) nor whether this password was right
    (it was not checked)."""

    def __init__(self, lock: Lock, seconds_left: int) -> None:
        minutes = max(1, -(-seconds_left // 60))
        if lock is Lock.ADDRESS:
            message = (f"Too many failed sign-ins from your network address: sign-in from it is paused for "
                       f"{minutes} more minutes. Wait, then try again; if you did not make them all, "
                       "tell your supervisor.")
        else:
            message = (f"This name is locked for {minutes} more minutes after too many failed sign-ins from "
                       "several addresses. If those were not yours, tell your supervisor now: someone may be "
                       "guessing at your account.")
        super().__init__(message)
        self.lock = lock
        self.seconds_left = seconds_left


class SignInLimits:
    def __init__(self, connection: redis.Redis, secret_keys: Secrets) -> None:
        self._redis = connection
        self._address_digest = KeyedDigest(secret_keys, "console-client-address")
        self._name_digest = KeyedDigest(secret_keys, "console-sign-in-name")
        self._count_attempt = connection.register_script(_COUNT_ATTEMPT)
        self._succeeded = connection.register_script(_SUCCEEDED)

    def count(self, account_name: str, address: str) -> Attempt:
        """Count an attempt before it is checked; raise SignInLocked when it may not be checked."""
        account_key = self.account_key(account_name)
        address_key = keys.console_address_failures(
            adopt(self._redis, self._address_digest.every(address), keys.console_address_failures))
        verdict, *counts = self._count_attempt(keys=[account_key, address_key],
                                               args=[WINDOW_SECONDS, ACCOUNT_FAILURES_ALLOWED,
                                                     ADDRESS_FAILURES_ALLOWED])
        if verdict:
            lock = Lock(verdict)
            seconds_left = self._redis.ttl(address_key if lock is Lock.ADDRESS else account_key)
            raise SignInLocked(lock, max(int(seconds_left), 1))
        return Attempt(account_key, address_key, account_count=int(counts[0]), address_count=int(counts[1]))

    def account_key(self, account_name: str) -> str:
        """The counter of a typed name: named by its keyed digest, since anyone can type anything there."""
        return keys.console_failures(adopt(self._redis, self._name_digest.every(account_name), keys.console_failures))

    def succeeded(self, attempt: Attempt) -> None:
        self._succeeded(keys=[attempt.account_key, attempt.address_key])
