"""The handlers' queue: two Redis Streams (urgent first) read through a consumer group.

A stream's pending entries are the handlers' leases: a claimed tip stays pending until it
is acknowledged, and one left idle past its lease can be taken over (XAUTOCLAIM).

Stream ids are normally the millisecond of arrival, which would put an exact time next to
every tip (promise 6). Entries get explicit ids instead: the start of the coarse hour,
and a sequence number within it. Only the order within an hour remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis

from ivr.core import keys
from ivr.core.redis_values import StreamEntry, as_text

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


# KEYS[1] stream; ARGV: group, entry id, handler, idle ms (or "" to renew: idle 0).
# Only the handler who holds the entry may renew or release it: a takeover by someone
# else (XAUTOCLAIM after the lease) must not be undone by the first handler's next click.
_RECLAIM_OWN = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then return 0 end
if pending[1][2] ~= ARGV[3] then return -1 end
if ARGV[4] == '' then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
else
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'IDLE', ARGV[4], 'JUSTID')
end
return 1
"""


class NotHeld(Exception):
    """The entry is no longer this handler's: taken over by someone else, or finished."""

    def __init__(self, holder: str | None) -> None:
        super().__init__(f"held by {holder}" if holder else "not held by anyone")
        self.holder = holder


@dataclass(frozen=True)
class Lease:
    """Who holds a claimed entry, and how long since they last touched it."""

    holder: str
    idle_ms: int


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
        self._reclaim_own = connection.register_script(_RECLAIM_OWN)

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

    def claim_next(self, handler: str, take_over_after_ms: int | None = None) -> Claim | None:
        """The next tip for `handler`, urgent ones first: with `take_over_after_ms`, first one
        whose lease lapsed (claimed, untouched that long), else the next unclaimed one."""
        self.ensure_groups()
        if take_over_after_ms is not None:
            lapsed = self._take_over_idle(handler, take_over_after_ms)
            if lapsed:
                return lapsed
        for stream in keys.HANDLER_QUEUES:
            answer = cast("list[tuple[bytes, list[StreamEntry]]] | None",
                          self._redis.xreadgroup(GROUP, handler, {stream: ">"}, count=1))
            for _, entries in answer or []:
                for entry_id, fields in entries:
                    return Claim(stream, as_text(entry_id), as_text(fields[b"tip"]))
        return None

    def _take_over_idle(self, handler: str, lease_ms: int) -> Claim | None:
        """A claimed tip nobody has touched for `lease_ms`, now `handler`'s (urgent first)."""
        for stream in keys.HANDLER_QUEUES:
            start = "0-0"
            while True:
                # COUNT 1: only the one taken is reset; the scan still moves through the
                # pending list by cursor, a few entries per call.
                answer = self._redis.xautoclaim(stream, GROUP, handler, min_idle_time=lease_ms, start_id=start,
                                                count=1)
                start, entries = answer[0], answer[1]
                for entry_id, fields in entries:
                    if fields:  # an entry deleted from the stream comes back without fields
                        return Claim(stream, entry_id.decode(), fields[b"tip"].decode())
                if start in (b"0-0", "0-0"):
                    break
        return None

    def lease(self, stream: str, entry_id: str) -> Lease | None:
        pending = self._redis.xpending_range(stream, GROUP, min=entry_id, max=entry_id, count=1)
        if not pending:
            return None
        return Lease(holder=as_text(pending[0]["consumer"]), idle_ms=int(pending[0]["time_since_delivered"]))

    def renew(self, stream: str, entry_id: str, handler: str) -> None:
        """Restart `handler`'s lease (each action does); NotHeld when it is not theirs."""
        self._reclaim(stream, entry_id, handler, "")

    def release(self, stream: str, entry_id: str, handler: str, lease_ms: int) -> None:
        """Hand the tip back: it looks idle past its lease, so the next claim takes it."""
        self._reclaim(stream, entry_id, handler, str(lease_ms + 1))

    def _reclaim(self, stream: str, entry_id: str, handler: str, idle: str) -> None:
        outcome = self._reclaim_own(keys=[stream], args=[GROUP, entry_id, handler, idle])
        if outcome != 1:
            lease = self.lease(stream, entry_id)
            raise NotHeld(lease.holder if lease else None)

    def reassign(self, stream: str, entry_id: str, handler: str) -> None:
        """Give a claimed tip to `handler` (a supervisor's decision), whoever holds it."""
        self._redis.xclaim(stream, GROUP, handler, min_idle_time=0, message_ids=[entry_id], justid=True)

    def held_by(self, handler: str) -> list[Claim]:
        """The tips `handler` holds now (their pending entries), urgent first."""
        self.ensure_groups()
        held = []
        for stream in keys.HANDLER_QUEUES:
            for pending in self._redis.xpending_range(stream, GROUP, min="-", max="+", count=200,
                                                      consumername=handler):
                entry_id = as_text(pending["message_id"])
                for _, fields in cast("list[StreamEntry]",
                                      self._redis.xrange(stream, min=entry_id, max=entry_id, count=1)):
                    held.append(Claim(stream, entry_id, as_text(fields[b"tip"])))
        return held

    def finish(self, stream: str, entry_id: str) -> None:
        """Passed on or closed: the entry leaves the pending list for good (XACK)."""
        self._redis.xack(stream, GROUP, entry_id)

    def waiting(self) -> dict[str, dict[str, int]]:
        """How many tips are unclaimed and how many are claimed, per stream (the dashboard)."""
        self.ensure_groups()
        counts = {}
        for stream in keys.HANDLER_QUEUES:
            groups = {g["name"].decode(): g for g in self._redis.xinfo_groups(stream)}
            group = groups.get(GROUP)
            lag = group.get("lag") if group else None
            counts[stream] = {"claimed": int(group["pending"]) if group else 0,
                              "unclaimed": int(lag) if lag is not None else self._unclaimed(stream, group)}
        return counts

    def _unclaimed(self, stream: str, group: dict[str, Any] | None) -> int:
        """Entries after the group's last delivered id (Redis 6.2 has no 'lag' field)."""
        last = group["last-delivered-id"].decode() if group else "0-0"
        after = self._redis.xrange(stream, min=f"({last}" if last != "0-0" else "-", max="+")
        return len(cast("list[StreamEntry]", after))

    def tip_ids(self) -> list[str]:
        """Every queued tip, urgent first, in queue order (for tests and operators)."""
        return [as_text(fields[b"tip"]) for stream in keys.HANDLER_QUEUES
                for _, fields in cast("list[StreamEntry]", self._redis.xrange(stream))]
