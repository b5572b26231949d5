"""The handlers' queue: two Redis Streams (urgent first) read through a consumer group.

A stream's pending entries are the handlers' leases: a claimed tip stays pending until it
is acknowledged, and one left idle past its lease can be taken over (XAUTOCLAIM).

Stream ids are normally the millisecond of arrival, which would put an exact time next to
every tip (promise 6). Entries get explicit ids instead: the start of the coarse hour,
and a sequence number within it. Only the order within an hour remains.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ivr import keys

GROUP = "handlers"

# KEYS[1] stream; ARGV[1] the hour's first millisecond; ARGV[2..] field, value pairs.
# The id is (hour, n): never below the stream's last id, so a clock that steps back
# (or a late recording from an earlier hour) still appends.
_ADD_AT_HOUR = """
local hour_ms = tonumber(ARGV[1])
local ms, seq = hour_ms, 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  local last
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] end
  end
  local last_ms, last_seq = string.match(last, '^(%d+)-(%d+)$')
  last_ms, last_seq = tonumber(last_ms), tonumber(last_seq)
  if last_ms >= ms then ms, seq = last_ms, last_seq + 1 end
end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
return redis.call('XADD', KEYS[1], string.format('%d-%d', ms, seq), unpack(fields))
"""


@dataclass(frozen=True)
class Claim:
    """A tip a handler holds: which stream entry, which tip."""

    stream: str
    entry_id: str
    tip_id: str


class HandlerQueue:
    def __init__(self, connection: redis.Redis) -> None:
        self._redis = connection
        self._add = connection.register_script(_ADD_AT_HOUR)

    @staticmethod
    def stream_for(urgent: bool) -> str:
        return keys.HANDLER_QUEUE_URGENT if urgent else keys.HANDLER_QUEUE

    def add(self, pipe: redis.client.Pipeline, tip_id: str, urgent: bool, hour_ms: int) -> None:
        """Queue a tip, inside the caller's transaction (so a tip is stored and queued together)."""
        self._add(keys=[self.stream_for(urgent)], args=[hour_ms, "tip", tip_id], client=pipe)

    def ensure_groups(self) -> None:
        for stream in keys.HANDLER_QUEUES:
            try:
                self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    def claim_next(self, handler: str) -> Claim | None:
        """The next unclaimed tip for `handler`, urgent ones first."""
        self.ensure_groups()
        for stream in keys.HANDLER_QUEUES:
            answer = self._redis.xreadgroup(GROUP, handler, {stream: ">"}, count=1)
            for _, entries in answer or []:
                for entry_id, fields in entries:
                    return Claim(stream, entry_id.decode(), fields[b"tip"].decode())
        return None

    def tip_ids(self) -> list[str]:
        """Every queued tip, urgent first, in queue order (for tests and operators)."""
        return [fields[b"tip"].decode() for stream in keys.HANDLER_QUEUES
                for _, fields in self._redis.xrange(stream)]
