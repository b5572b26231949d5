"""Jobs for texts: delete the provider's message records once the tip is committed.

Every sid is tried; deleting what is already gone is a success. A message still being
delivered (error 20009) makes the job raise StillInProgress after trying the rest, and
RQ runs it again later (`ivr.core.jobs.DELETE_MESSAGES_RETRY`): running it twice is the
same as once. A sid of the wrong shape (the webhook's MessageSid is the provider's word,
checked only here) is logged without itself and dropped: one bad sid must not keep the
rest of a conversation, each holding the tipster's number, at the provider. Once a
message is gone, its "accounted for" marker goes too (`MessageCleanup.forget`). The sids
exist only in this job's sealed argument.
"""

from __future__ import annotations

import logging

from ivr.core.provider import BadIdentifier, Provider, StillInProgress
from ivr.core.sms_cleanup import MessageCleanup
from workers.context import worker_context

log = logging.getLogger(__name__)


def delete_messages(sealed_sids: str) -> None:
    context = worker_context()
    delete_message_records(context.provider, context.core.sms.cleanup, sealed_sids)


def delete_message_records(provider: Provider, cleanup: MessageCleanup, sealed_sids: str) -> None:
    """Delete each message at the provider; StillInProgress (after the others) if any is not final."""
    waiting = malformed = 0
    for message_sid in cleanup.arguments.open_message_sids(sealed_sids):
        try:
            provider.delete_message(message_sid)
        except StillInProgress:
            waiting += 1
            continue
        except BadIdentifier:
            malformed += 1
        cleanup.forget(message_sid)
    if malformed:
        log.warning("%d message sid(s) of the wrong shape were dropped without a request", malformed)
    if waiting:
        log.info("%d message(s) still in progress at the provider; the deletion will be retried", waiting)
        raise StillInProgress(f"{waiting} message(s) could not be deleted yet: still in progress")
