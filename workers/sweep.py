"""The provider sweep: nothing is lost when a recording callback never arrived.

The provider does not retry a recording-status callback, and one that arrives while Redis
is away cannot be queued. So the clock lists the recordings still at the provider and:
- takes in any that no tip accounts for, once it is older than a grace period (its
  callback may still be on its way), as a tip part of its own with a fresh reference
  (the caller's reference rode in the lost callback's URL);
- deletes any whose tip part is finished and was not kept for a person (a clean-up that
  failed after the commit).

`sweep_replies` deletes the SMS replies Twilio made from our TwiML: outbound-reply records
(holding the reference, the PIN, and the tipster's number as `To`) whose sids we are never
told. Inbound messages are left alone here: one whose webhook failed may be the only copy
of a tip, and `workers.inbound_sweep` takes it in before deleting it; the clean-up job
deletes the others once their tip is committed. Calls: `workers.call_sweep`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ivr.core.call_state import CallState
from ivr.core.provider import StillInProgress
from ivr.core.redis_values import as_text
from ivr.core.tips import FINAL_PART_STATUSES
from workers.context import WorkerContext
from workers.recordings import keeps_recording

log = logging.getLogger(__name__)

GRACE = timedelta(minutes=10)
REPLY_GRACE = timedelta(minutes=2)
REPLY_DIRECTION = "outbound-reply"
# Statuses after which a reply is not going to change (and Twilio lets it be deleted).
FINAL_REPLY_STATUSES = frozenset({"delivered", "undelivered", "failed", "sent", "received", "canceled"})


@dataclass(frozen=True)
class SweepReport:
    taken_in: int
    deleted: int
    seen: int


def sweep_provider(context: WorkerContext, now: datetime | None = None, grace: timedelta = GRACE) -> SweepReport:
    intake, tips = context.core.recordings, context.core.tips
    cutoff = (now or datetime.now(UTC)) - grace
    taken_in = deleted = seen = 0
    for recording in context.provider.list_recordings(created_before=cutoff):
        seen += 1
        part_of = intake.part_of(recording.sid)
        if part_of is None:
            if intake.accept(recording.sid, recording.call_sid, recording.duration_seconds, CallState()):
                taken_in += 1
            continue
        reference, _, index = as_text(part_of).rpartition(":")
        status = tips.part_status(reference, int(index))
        if status is None or (status in FINAL_PART_STATUSES
                              and not keeps_recording(tips, reference, int(index), status)):
            context.provider.delete_recording(recording.sid)
            deleted += 1
    if taken_in or deleted:
        log.warning("provider sweep: took in %d recording(s) without a tip, deleted %d left over",
                    taken_in, deleted)
    return SweepReport(taken_in=taken_in, deleted=deleted, seen=seen)


@dataclass(frozen=True)
class ReplySweepReport:
    deleted: int
    waiting: int  # not final yet (or 20009 at the provider): the next sweep tries again
    seen: int


def sweep_replies(context: WorkerContext, now: datetime | None = None,
                  grace: timedelta = REPLY_GRACE) -> ReplySweepReport:
    """Delete final outbound-reply records older than `grace`; never an inbound message."""
    cutoff = (now or datetime.now(UTC)) - grace
    deleted = waiting = seen = 0
    for message in context.provider.list_messages(created_before=cutoff, direction=REPLY_DIRECTION):
        if message.direction != REPLY_DIRECTION:
            continue  # belt and braces: an inbound message may be the only copy of a tip
        seen += 1
        if message.status not in FINAL_REPLY_STATUSES:
            waiting += 1
            continue
        try:
            context.provider.delete_message(message.sid)
        except StillInProgress:
            waiting += 1
            continue
        deleted += 1
    if deleted or waiting:
        log.info("reply sweep: deleted %d SMS reply record(s), %d not final yet", deleted, waiting)
    return ReplySweepReport(deleted=deleted, waiting=waiting, seen=seen)
