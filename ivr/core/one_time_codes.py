"""TOTP codes for the console: which time step a code belongs to, and spending it once.

A code is good once: the account keeps the last time step it signed in with, and a sign-in
claims its step in one Lua script that records it only if it is later than the stored
one. Checking and recording in two commands let 8 concurrent sign-ins with one relayed
code all succeed; as one script, exactly one of them does.
"""

from __future__ import annotations

import hmac
import re
import time

import pyotp
import redis

from ivr.core import keys

TOTP_STEP_SECONDS = 30

# KEYS[1]: the account hash. ARGV[1]: the step. 1 when claimed; 0 when this step or a later
# one was used already, or the account is no longer active (a hash that was deleted is
# never recreated here).
_CLAIM_STEP = """
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'last_totp_step') or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('HSET', KEYS[1], 'last_totp_step', ARGV[1])
return 1
"""


class StepClaims:
    """Spends an account's TOTP steps, each at most once, however many ask at once."""

    def __init__(self, connection: redis.Redis) -> None:
        self._claim = connection.register_script(_CLAIM_STEP)

    def claim(self, account_name: str, step: int) -> bool:
        return bool(self._claim(keys=[keys.console_account(account_name)], args=[step]))


def matching_step(secret: str | None, code: str, now: float | None, after: int) -> int | None:
    """The time step whose code is `code` (this step or one either side), if later than `after`."""
    code = re.sub(r"\s", "", code or "")
    if secret is None or not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // TOTP_STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        if step > after and hmac.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            return step
    return None
