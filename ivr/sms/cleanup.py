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

import json

import redis
from rq import Queue, Retry

from ivr import keys
from ivr.vault import KeyedDigest, Sealer

DELETE_MESSAGES_JOB = "workers.messages.delete_messages"
DELETE_MESSAGES_RETRY = Retry(max=8, interval=[10, 30, 60, 120, 300, 600, 1800, 3600])
FAILED_JOB_TTL = 7 * 24 * 3600
# A marker outlives the session (1 h), every retry of its job (~2 h) and a failed job's
# week in RQ; after that a message still at the provider is taken in by the sweep.
INBOUND_MARKER_SECONDS = FAILED_JOB_TTL + 24 * 3600


class MessageCleanup:
    def __init__(self, secret_key: str, connection: redis.Redis) -> None:
        self._sealer = Sealer(secret_key, "message-sids")
        self._redis = connection
        self._inbound_key = KeyedDigest(secret_key, "inbound-message")

    def seal(self, message_sids: list[str]) -> str:
        return self._sealer.seal(json.dumps(message_sids).encode()).hex()

    def open(self, sealed: str | bytes | None) -> list[str]:
        if not sealed:
            return []
        return json.loads(self._sealer.open(bytes.fromhex(sealed.decode() if isinstance(sealed, bytes) else sealed)))

    def mark(self, pipe: redis.client.Pipeline, message_sids: list[str]) -> None:
        """Queue the markers saying these inbound messages are accounted for (in the caller's MULTI)."""
        for message_sid in message_sids:
            pipe.set(self.marker(message_sid), b"", ex=INBOUND_MARKER_SECONDS)

    def marker(self, message_sid: str) -> str:
        return keys.sms_inbound(self._inbound_key(message_sid))

    def is_accounted_for(self, message_sid: str) -> bool:
        return bool(self._redis.exists(self.marker(message_sid)))

    def forget(self, message_sid: str) -> None:
        """The message is gone at the provider: nothing needs to account for it now."""
        self._redis.delete(self.marker(message_sid))

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
        Queue(keys.QUEUE_MESSAGES, connection=self._redis).enqueue_call(
            DELETE_MESSAGES_JOB, args=(self.seal(message_sids),), description="delete message logs", result_ttl=0,
            failure_ttl=FAILED_JOB_TTL, retry=DELETE_MESSAGES_RETRY, pipeline=pipe)
