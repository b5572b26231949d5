"""How many recordings may be kept because their transcript is doubtful: a share, capped.

Promise 3 says audio does not outlive its transcript. A transcript the recogniser was unsure
of (`ivr.core.confidence.doubtful_overall`) stretches it: its recording stays at the
provider until a handler has reviewed it, so they can hear a disguised copy before passing
on a street the model may have misheard. That must stay the exception, so the share of
transcribed recordings kept this way is capped by DOUBTFUL_AUDIO_MAX_PERCENT over a rolling
window of WINDOW_DAYS: per-day counters in Redis (`keys.doubtful_audio_day`), a hash of two
numbers, `transcribed` and `kept`, expiring after the window. Nothing in a key or a value
names a tip, a recording or a time finer than the day.

The allowance is the percentage of the window's transcripts, rounded down, but at least
one: a quiet window may keep its first doubtful recording; 0 keeps none. Counting and deciding are one Lua
script, so two workers cannot both take the last place. A job that dies after counting and
is run again counts its transcript twice: the cap errs towards keeping less.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis

from ivr.core import keys

WINDOW_DAYS = 7
"""The rolling window the share is counted over: today (UTC) and the six days before."""

_COUNTER_TTL_SECONDS = (WINDOW_DAYS + 1) * 24 * 3600

# KEYS: the window's day counters, today's first. ARGV: the cap in percent, "1" when this
# transcript is doubtful, the counters' TTL. Returns 1 when its recording may be kept.
_COUNT = """
redis.call('HINCRBY', KEYS[1], 'transcribed', 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[2] ~= '1' then return 0 end
local transcribed, kept = 0, 0
for _, key in ipairs(KEYS) do
  transcribed = transcribed + tonumber(redis.call('HGET', key, 'transcribed') or '0')
  kept = kept + tonumber(redis.call('HGET', key, 'kept') or '0')
end
local allowance = math.floor(tonumber(ARGV[1]) * transcribed / 100)
if allowance < 1 and tonumber(ARGV[1]) > 0 then allowance = 1 end
if kept >= allowance then return 0 end
redis.call('HINCRBY', KEYS[1], 'kept', 1)
return 1
"""


def utc_now() -> datetime:
    return datetime.now(UTC)


class DoubtfulAudioAllowance:
    """Counts transcripts, and says whether a doubtful one's recording may be kept."""

    def __init__(self, connection: redis.Redis, max_percent: int,
                 clock: Callable[[], datetime] = utc_now) -> None:
        if not 0 <= max_percent <= 100:
            raise ValueError(f"max_percent: please give a share between 0 and 100, not {max_percent}")
        self._max_percent = max_percent
        self._clock = clock
        self._count = connection.register_script(_COUNT)

    def count(self, doubtful: bool) -> bool:
        """Count one transcript stored; True when it is doubtful and its recording may be kept."""
        today = self._clock().date()
        window = [keys.doubtful_audio_day((today - timedelta(days=back)).isoformat()) for back in range(WINDOW_DAYS)]
        return bool(self._count(keys=window, args=[self._max_percent, int(doubtful), _COUNTER_TTL_SECONDS]))
