"""The inbound sweep: a text the provider holds that no conversation accounts for.

A text that arrives while Redis is down gets the failure reply and is stored nowhere:
the provider's copy (with the sender's number) is then the only copy of what the tipster
said. Every text we did accept carries a marker (`MessageCleanup.mark`) from the moment
its session or clean-up job holds it until that job has deleted it at the provider. So
the clock lists inbound messages older than a grace period (a webhook may be in flight)
and, for each without a marker, in one transaction: stores its text as a tip of its own
(no PIN: the tipster never got a reference; marked LINE_DOWN for the handler), sets the
marker and queues its clean-up job. The marker is WATCHed, so two clocks take a text in
once; a clock killed after the commit leaves the job to delete the message. Then the
message is deleted at once (the job finds it gone). `From` is never read: the text is
not merged into any conversation, and the sender stays unknown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.client import Pipeline

from ivr.core import keys
from ivr.core import sms_words as words
from ivr.core.choices import Choices
from ivr.core.provider import InboundText, StillInProgress
from ivr.core.references import new_reference
from ivr.core.tips import LINE_DOWN, NewPart
from ivr.core.transactions import atomically
from workers.context import WorkerContext

log = logging.getLogger(__name__)

INBOUND_GRACE = timedelta(minutes=10)
# An inbound message still "receiving" is not complete: the next sweep looks again.
RECEIVED = "received"


@dataclass(frozen=True)
class InboundSweepReport:
    taken_in: int  # stored as tips
    dropped: int  # accounted for now without a tip: keywords, empty texts, photos alone
    seen: int  # inbound messages past the grace, accounted for or not


def sweep_inbound_messages(context: WorkerContext, now: datetime | None = None,
                           grace: timedelta = INBOUND_GRACE) -> InboundSweepReport:
    """Take in, once, each inbound text no conversation accounts for; then delete it there."""
    cutoff = (now or datetime.now(UTC)) - grace
    cleanup = context.core.sms.cleanup
    taken_in = dropped = seen = 0
    for text in context.provider.list_inbound_texts(created_before=cutoff):
        seen += 1
        if text.status != RECEIVED or cleanup.is_accounted_for(text.sid):
            continue
        outcome = _take_in(context, text)
        if outcome is None:
            continue  # another clock got there first
        taken_in, dropped = (taken_in + 1, dropped) if outcome else (taken_in, dropped + 1)
        try:
            context.provider.delete_message(text.sid)
        except StillInProgress:
            pass  # its clean-up job, queued with the tip, retries with backoff
    if taken_in or dropped:
        log.warning("inbound sweep: took in %d text(s) nothing accounted for as tips, %d without words",
                    taken_in, dropped)
    return InboundSweepReport(taken_in=taken_in, dropped=dropped, seen=seen)


def _take_in(context: WorkerContext, text: InboundText) -> bool | None:
    """Store the text as a tip (True), or nothing for a keyword or no words (False), with its
    marker and clean-up job, in one transaction; None when it was accounted for meanwhile."""
    cleanup, tips = context.core.sms.cleanup, context.core.tips
    marker = cleanup.marker(text.sid)
    body = words.clean(text.body)
    worth_a_tip = bool(body) and words.keyword(body) is None
    reference = new_reference()

    def store(pipe: Pipeline) -> bool | None:
        if pipe.exists(marker):
            return None
        if worth_a_tip:
            tips.add_text_part(pipe, NewPart(choices=Choices(reference=reference), pin_hash=None, channel="sms",
                                             urgent=False, seconds=0, arrival=LINE_DOWN), body)
        else:
            pipe.multi()
        cleanup.enqueue([text.sid], pipe=pipe)
        return worth_a_tip

    return atomically(context.core.redis, [marker, keys.tip(reference)], store)
