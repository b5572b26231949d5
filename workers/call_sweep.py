"""The call sweep: a call's log (the caller's number, the keys pressed) is not left behind.

A call is deleted at the provider by its recording's job, after the tip is committed. A
caller who hangs up at a menu, or whose call made no recording, leaves a call no job
will ever touch. So the clock lists calls to our numbers that reached a final status
(completed, busy, failed, no-answer, canceled) more than a grace period ago and deletes
each, unless the call has a recording with, or soon with, audio at the provider: that
call is in hand (queued, being transcribed, kept for a person, or waiting for the
recording sweep) and its job deletes it after the commit. Asking the provider, rather
than a marker in Redis, also covers a recording whose callback was lost while Redis was
down. A call the provider still calls in progress (20009) is left for the next sweep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ivr.core.provider import StillInProgress
from workers.context import WorkerContext

log = logging.getLogger(__name__)

CALL_GRACE = timedelta(minutes=2)
INBOUND = "inbound"  # calls to our numbers; we make no calls ourselves


@dataclass(frozen=True)
class CallSweepReport:
    deleted: int
    in_hand: int  # a recording's job deletes it, or the provider said 20009: later
    seen: int


def sweep_calls(context: WorkerContext, now: datetime | None = None, grace: timedelta = CALL_GRACE) -> CallSweepReport:
    """Delete finished calls to our numbers that no recording's job will delete."""
    cutoff = (now or datetime.now(UTC)) - grace
    provider = context.provider
    deleted = in_hand = seen = 0
    for call in provider.list_finished_calls(ended_before=cutoff):
        if call.direction != INBOUND:
            continue
        seen += 1
        if provider.call_has_pending_recordings(call.sid):
            in_hand += 1
            continue
        try:
            provider.delete_call(call.sid)
        except StillInProgress:
            in_hand += 1
            continue
        deleted += 1
    if deleted:
        log.info("call sweep: deleted %d finished call(s) without a recording", deleted)
    return CallSweepReport(deleted=deleted, in_hand=in_hand, seen=seen)
