"""The provider's copies of a conversation's messages, deleted once the tip is committed.

MessageSids ride sealed (in the session while it lasts, then as the one argument of an
RQ job) and live only as long as that job: RQ stores arguments in Redis, so they must
not be readable there. A message still being delivered cannot be deleted (error 20009):
the job raises StillInProgress and RQ retries it with backoff.
"""

from __future__ import annotations

import json

import redis
from rq import Queue, Retry

from ivr import keys
from ivr.vault import Sealer

DELETE_MESSAGES_JOB = "workers.messages.delete_messages"
DELETE_MESSAGES_RETRY = Retry(max=8, interval=[10, 30, 60, 120, 300, 600, 1800, 3600])
FAILED_JOB_TTL = 7 * 24 * 3600


class MessageCleanup:
    def __init__(self, secret_key: str, connection: redis.Redis) -> None:
        self._sealer = Sealer(secret_key, "message-sids")
        self._redis = connection

    def seal(self, message_sids: list[str]) -> str:
        return self._sealer.seal(json.dumps(message_sids).encode()).hex()

    def open(self, sealed: str | bytes | None) -> list[str]:
        if not sealed:
            return []
        return json.loads(self._sealer.open(bytes.fromhex(sealed.decode() if isinstance(sealed, bytes) else sealed)))

    def enqueue(self, message_sids: list[str], pipe: redis.client.Pipeline | None = None) -> None:
        """Queue the deletion (inside the caller's transaction when `pipe` is given)."""
        if not message_sids:
            return
        Queue(keys.QUEUE_MESSAGES, connection=self._redis).enqueue_call(
            DELETE_MESSAGES_JOB, args=(self.seal(message_sids),), description="delete message logs", result_ttl=0,
            failure_ttl=FAILED_JOB_TTL, retry=DELETE_MESSAGES_RETRY, pipeline=pipe)
