"""The provider's copies of a conversation's messages, deleted once the tip is committed.

MessageSids ride sealed (in the session while it lasts, then as the one argument of an
RQ job) and live only as long as that job: RQ stores arguments in Redis, so they must
not be readable there. A message still being delivered cannot be deleted (error 20009):
the job raises StillInProgress and RQ retries it with backoff.

Each inbound message we accepted also leaves a marker, `tipline:sms:inbound:<keyed
digest>`, written in the same transaction as whatever accounts for it (the session that
holds its sid, or its queued clean-up) and removed by the clean-up job once the message
is gone. The provider sweep (`workers.inbound_sweep`) takes in any inbound message without
a marker: a text that arrived while Redis was down and was never stored anywhere.
"""

from __future__ import annotations

import redis

from ivr.core import keys
from ivr.core.digest_moves import adopt, names
from ivr.core.jobs import FAILED_JOB_TTL, JobArguments, enqueue_message_deletion
from ivr.core.vault import KeyedDigest, Secrets

# A marker outlives the session (1 h), every retry of its job (~2 h) and a failed job's
# time in RQ (`ivr.core.jobs.FAILED_JOB_TTL`); after that a message still at the provider is
# taken in by the sweep.
INBOUND_MARKER_SECONDS = FAILED_JOB_TTL + 24 * 3600


class MessageCleanup:
    def __init__(self, secret_keys: Secrets, connection: redis.Redis) -> None:
        self.arguments = JobArguments(secret_keys)
        self._redis = connection
        self._inbound_key = KeyedDigest(secret_keys, "inbound-message")

    def mark(self, pipe: redis.client.Pipeline, message_sids: list[str]) -> None:
        """Queue the markers saying these inbound messages are accounted for (in the caller's MULTI)."""
        for message_sid in message_sids:
            pipe.set(self.marker(message_sid), b"", ex=INBOUND_MARKER_SECONDS)

    def marker(self, message_sid: str) -> str:
        return keys.sms_inbound(self._inbound_key(message_sid))

    def is_accounted_for(self, message_sid: str) -> bool:
        """Whether a marker accounts for the message; one made under an older SECRET_KEY is moved
        to the current name (the inbound sweep asks this of every text still at the provider)."""
        return bool(self._redis.exists(keys.sms_inbound(
            adopt(self._redis, self._inbound_key.every(message_sid), keys.sms_inbound))))

    def forget(self, message_sid: str) -> None:
        """The message is gone at the provider: nothing needs to account for it now."""
        self._redis.delete(*names(self._inbound_key.every(message_sid), keys.sms_inbound))

    def enqueue(self, message_sids: list[str], pipe: redis.client.Pipeline | None = None) -> None:
        """Queue the deletion, and mark the messages accounted for, in one transaction
        (the caller's when `pipe` is given)."""
        if not message_sids:
            return
        if pipe is None:
            with self._redis.pipeline() as own:
                own.multi()
                self.enqueue(message_sids, own)
                own.execute()
            return
        self.mark(pipe, message_sids)
        enqueue_message_deletion(self._redis, self.arguments.seal_message_sids(message_sids), pipeline=pipe)
