"""The handlers' queue: two Redis Streams (urgent first) read through a consumer group.

A stream's pending entries are the handlers' leases: a claimed tip stays pending until it
is acknowledged, and one left idle past its lease can be taken over (XAUTOCLAIM).

Stream ids are normally the millisecond of arrival, which would put an exact time next to
every tip (promise 6). Entries get explicit ids instead: the start of the coarse hour,
and a sequence number within it. Only the order within an hour remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import redis

from ivr.core import keys
from ivr.core.coarse_time import current_hour, hour_milliseconds
from ivr.core.redis_values import StreamEntry, as_text
from ivr.core.statuses import TipsterStatus, Triage

GROUP = "handlers"
# The consumer that holds a returning tip nobody in particular is waiting for: its entries
# look lapsed from the start, so the next claim takes them. Account names start with a
# letter (ivr/core/accounts.py), so no handler can be called this.
NOBODY = "~returning"

# Lua: append an entry to stream `stream` at id (hour, n), never below the stream's last
# id, so a clock that steps back (or a late recording from an earlier hour) still appends.
_XADD_AT_HOUR = """
local function xadd_at_hour(stream, hour_ms, tip)
  local ms, seq = hour_ms, 0
  if redis.call('EXISTS', stream) == 1 then
    local info = redis.call('XINFO', 'STREAM', stream)
    local last
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then last = info[i + 1] end
    end
    local last_ms, last_seq = string.match(last, '^(%d+)-(%d+)$')
    last_ms, last_seq = tonumber(last_ms), tonumber(last_seq)
    if last_ms >= ms then ms, seq = last_ms, last_seq + 1 end
  end
  return redis.call('XADD', stream, string.format('%d-%d', ms, seq), 'tip', tip)
end
"""

# KEYS[1] stream, KEYS[2] the tip's case; ARGV[1] the hour's first millisecond, ARGV[2] tip.
# The case remembers its one entry from the start, so a later move (`_RETURN`) finds it
# even before anyone claimed it.
_ADD_AT_HOUR = _XADD_AT_HOUR + """
local id = xadd_at_hour(KEYS[1], tonumber(ARGV[1]), ARGV[2])
redis.call('HSET', KEYS[2], 'stream', KEYS[1], 'entry', id)
return id
"""

# A tipster came back to a tip (an answer, or more information). KEYS[1] the tip's case,
# KEYS[2] the returning stream, KEYS[3] the tip, KEYS[4] the deadlines' "status since" set.
# ARGV: group, hour ms, lease ms, the handler to offer it to first ('' for nobody), NOBODY,
# tip, the triage a reopened tip gets, the tipster-facing status that goes with it, the hour.
# Returns 'held' (a live lease: its holder keeps it), 'waiting' (unclaimed, left where it
# is), or 'returned' (now in the returning stream, held by the handler offered it, else by
# NOBODY with a lapsed lease). The tip has one entry before and after: never two holders.
_RETURN = _XADD_AT_HOUR + """
local group, hour_ms, lease_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local offered, nobody, tip = ARGV[4], ARGV[5], ARGV[6]
local stream, entry, finished = unpack(redis.call('HMGET', KEYS[1], 'stream', 'entry', 'finished'))
redis.call('HSET', KEYS[1], 'news', 1)
if finished then
  if stream and entry then redis.call('XDEL', stream, entry) end  -- acknowledged when it finished
  redis.call('HDEL', KEYS[1], 'finished')
  redis.call('HSET', KEYS[1], 'reopened_from', finished)
  redis.call('HINCRBY', KEYS[1], 'reopened', 1)
  redis.call('HSET', KEYS[3], 'triage', ARGV[7], 'tipster_status', ARGV[8], 'tipster_status_hour', ARGV[9])
  redis.call('ZADD', KEYS[4], hour_ms, tip)
elseif stream and entry then
  local pending = redis.call('XPENDING', stream, group, entry, entry, 1)
  if #pending > 0 then
    if pending[1][2] ~= nobody and tonumber(pending[1][3]) < lease_ms then return 'held' end
  elseif offered == '' then
    return 'waiting'
  end
  redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
else
  return 'waiting'  -- queued before cases knew their entry, and never claimed: still unclaimed
end
local id = xadd_at_hour(KEYS[2], hour_ms, tip)
-- Nothing else ever waits undelivered in this stream, so '>' reads the entry just added.
redis.call('XREADGROUP', 'GROUP', group, offered ~= '' and offered or nobody, 'COUNT', 1, 'STREAMS', KEYS[2], '>')
if offered == '' then
  redis.call('XCLAIM', KEYS[2], group, nobody, 0, id, 'IDLE', lease_ms + 1, 'JUSTID')
end
redis.call('HSET', KEYS[1], 'stream', KEYS[2], 'entry', id)
return 'returned'
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
        self._return = connection.register_script(_RETURN)
        self._reclaim_own = connection.register_script(_RECLAIM_OWN)

    @staticmethod
    def stream_for(urgent: bool) -> str:
        return keys.HANDLER_QUEUE_URGENT if urgent else keys.HANDLER_QUEUE

    def add(self, pipe: redis.client.Pipeline, tip_id: str, urgent: bool, hour_ms: int) -> None:
        """Queue a tip, inside the caller's transaction (so a tip is stored and queued together)."""
        self._add(keys=[self.stream_for(urgent), keys.case(tip_id)], args=[hour_ms, tip_id], client=pipe)

    def bring_back(self, pipe: redis.client.Pipeline, tip_id: str, now: datetime, lease_ms: int,
                   offered_to: str | None, reopened_triage: Triage) -> None:
        """Queue (inside the caller's MULTI) the move of a tip its tipster came back to.

        A tip someone holds with a live lease stays theirs. Otherwise it moves to the
        returning stream, held first by `offered_to` (the handler who asked the question
        answered): if they do not take it within the lease, the next claim does. A finished
        tip reopens there with `reopened_triage`. An unclaimed tip nobody is offered stays
        where it waits. Always one entry per tip, moved in one script.
        """
        self.ensure_groups()
        self._return(keys=[keys.case(tip_id), keys.HANDLER_QUEUE_RETURNING, keys.tip(tip_id),
                           keys.TIPSTER_STATUS_SINCE],
                     args=[GROUP, hour_milliseconds(now), lease_ms, offered_to or "", NOBODY, tip_id,
                           reopened_triage, TipsterStatus.for_triage(reopened_triage), current_hour(now)],
                     client=pipe)

    def ensure_groups(self) -> None:
        for stream in keys.HANDLER_QUEUES:
            try:
                self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    def claim_next(self, handler: str, take_over_after_ms: int | None = None) -> Claim | None:
        """The next tip for `handler`, stream by stream (urgent, returning, the rest): in each,
        with `take_over_after_ms`, first one whose lease lapsed (claimed, untouched that
        long), else the next unclaimed one."""
        self.ensure_groups()
        for stream in keys.HANDLER_QUEUES:
            if take_over_after_ms is not None:
                lapsed = self._take_over_idle(stream, handler, take_over_after_ms)
                if lapsed:
                    return lapsed
            answer = cast("list[tuple[bytes, list[StreamEntry]]] | None",
                          self._redis.xreadgroup(GROUP, handler, {stream: ">"}, count=1))
            for _, entries in answer or []:
                for entry_id, fields in entries:
                    return Claim(stream, as_text(entry_id), as_text(fields[b"tip"]))
        return None

    def _take_over_idle(self, stream: str, handler: str, lease_ms: int) -> Claim | None:
        """A claimed tip in `stream` nobody has touched for `lease_ms`, now `handler`'s."""
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

    def finish(self, stream: str, entry_id: str, pipe: redis.client.Pipeline | None = None) -> None:
        """Passed on or closed: the entry leaves the pending list for good (XACK); with
        `pipe`, inside the caller's transaction."""
        (pipe or self._redis).xack(stream, GROUP, entry_id)

    def waiting(self) -> dict[str, dict[str, int]]:
        """How many tips are unclaimed and how many are claimed, per stream (the dashboard).

        In the returning stream every entry is pending: those NOBODY holds are the unclaimed.
        """
        self.ensure_groups()
        counts = {}
        for stream in keys.HANDLER_QUEUES:
            groups = {g["name"].decode(): g for g in self._redis.xinfo_groups(stream)}
            group = groups.get(GROUP)
            pending = int(group["pending"]) if group else 0
            if stream == keys.HANDLER_QUEUE_RETURNING:
                unclaimed = self._held_by_nobody(stream)
                counts[stream] = {"claimed": pending - unclaimed, "unclaimed": unclaimed}
                continue
            lag = group.get("lag") if group else None
            counts[stream] = {"claimed": pending,
                              "unclaimed": int(lag) if lag is not None else len(self._after_last_delivered(stream))}
        return counts

    def _held_by_nobody(self, stream: str) -> int:
        summary = self._redis.xpending(stream, GROUP)
        return sum(int(consumer["pending"]) for consumer in summary.get("consumers") or []
                   if as_text(consumer["name"]) == NOBODY)

    def _after_last_delivered(self, stream: str) -> list[StreamEntry]:
        """Entries after the group's last delivered id: nobody has claimed them yet."""
        groups = {g["name"].decode(): g for g in self._redis.xinfo_groups(stream)}
        group = groups.get(GROUP)
        last = group["last-delivered-id"].decode() if group else "0-0"
        return cast("list[StreamEntry]", self._redis.xrange(stream, min=f"({last}" if last != "0-0" else "-",
                                                             max="+"))

    def unclaimed(self) -> list[tuple[str, int]]:
        """Every tip nobody has claimed yet (and every returning tip nobody took), as
        (tip, the coarse hour it was queued in ms), oldest first: for the deadlines page."""
        self.ensure_groups()
        found = [(as_text(fields[b"tip"]), _entry_ms(entry_id))
                 for stream in (keys.HANDLER_QUEUE_URGENT, keys.HANDLER_QUEUE)
                 for entry_id, fields in self._after_last_delivered(stream)]
        for pending in self._redis.xpending_range(keys.HANDLER_QUEUE_RETURNING, GROUP, min="-", max="+",
                                                  count=10_000, consumername=NOBODY):
            entry_id = as_text(pending["message_id"])
            for _, fields in cast("list[StreamEntry]", self._redis.xrange(
                    keys.HANDLER_QUEUE_RETURNING, min=entry_id, max=entry_id, count=1)):
                found.append((as_text(fields[b"tip"]), _entry_ms(entry_id)))
        return sorted(found, key=lambda item: item[1])

    def tip_ids(self) -> list[str]:
        """Every queued tip, urgent first, in queue order (for tests and operators)."""
        return [as_text(fields[b"tip"]) for stream in keys.HANDLER_QUEUES
                for _, fields in cast("list[StreamEntry]", self._redis.xrange(stream))]


def _entry_ms(entry_id: bytes | str) -> int:
    """The millisecond part of a stream id: the coarse hour the entry was queued in."""
    return int(as_text(entry_id).split("-", 1)[0])
