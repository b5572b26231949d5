"""Jobs for texts: delete the provider's message records once the tip is committed.

Every sid is tried; deleting what is already gone is a success. A message still being
delivered (error 20009) makes the job raise StillInProgress after trying the rest, and
RQ runs it again later (`ivr.sms.cleanup.DELETE_MESSAGES_RETRY`): running it twice is the
same as once. The sids exist only in this job's sealed argument.
"""

from __future__ import annotations

import logging

from ivr.provider import Provider, StillInProgress
from ivr.sms.cleanup import MessageCleanup
from workers.context import worker_context

log = logging.getLogger(__name__)


def delete_messages(sealed_sids: str) -> None:
    context = worker_context()
    delete_message_records(context.provider, context.services.sms.cleanup, sealed_sids)


def delete_message_records(provider: Provider, cleanup: MessageCleanup, sealed_sids: str) -> None:
    """Delete each message at the provider; StillInProgress (after the others) if any is not final."""
    waiting = 0
    for message_sid in cleanup.open(sealed_sids):
        try:
            provider.delete_message(message_sid)
        except StillInProgress:
            waiting += 1
    if waiting:
        log.info("%d message(s) still in progress at the provider; the deletion will be retried", waiting)
        raise StillInProgress(f"{waiting} message(s) could not be deleted yet: still in progress")
