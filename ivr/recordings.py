"""Recordings reaching us: from the status callback to one queued job per recording.

The job carries a sealed handle (`RecordingHandle`), never raw provider sids: RQ stores
job arguments in Redis and keeps failed jobs, and the sids must not be readable there.
A repeated callback is a no-op: RQ queues a second job with the same id happily, so a
SET NX on a keyed digest of the RecordingSid guards the door.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import asdict, dataclass

import redis
from rq import Queue

from ivr import keys
from ivr.call_state import CallState
from ivr.prompts import Menus
from ivr.vault import KeyedDigest, Sealer

PROCESS_RECORDING_JOB = "workers.recordings.process_recording"
# Failed jobs are kept for a month: they hold the only handle on a tip that needs a person.
FAILED_JOB_TTL = 30 * 24 * 3600


@dataclass(frozen=True)
class RecordingHandle:
    """What the worker needs to fetch, transcribe, store and clean up one recording."""

    recording_sid: str
    call_sid: str | None
    reference: str | None
    pin: str | None
    language: str | None
    category: str | None
    duration_seconds: int


class RecordingIntake:
    """Turns an accepted recording-status callback into exactly one queued job."""

    def __init__(self, secret_key: str, connection: redis.Redis, menus: Menus) -> None:
        self._redis = connection
        self._menus = menus
        self._sealer = Sealer(secret_key, "recording-handle")
        self.recording_key = KeyedDigest(secret_key, "recording")

    def seal(self, handle: RecordingHandle) -> str:
        return self._sealer.seal(json.dumps(asdict(handle)).encode()).hex()

    def open(self, sealed: str) -> RecordingHandle:
        return RecordingHandle(**json.loads(self._sealer.open(bytes.fromhex(sealed))))

    def queue_for(self, category_id: str | None) -> str:
        category = self._menus.category(category_id)
        return keys.QUEUE_URGENT_RECORDINGS if category and category.urgent else keys.QUEUE_RECORDINGS

    def accept(self, recording_sid: str, call_sid: str | None, duration_seconds: int, state: CallState) -> bool:
        """Queue the recording once; False when this recording was already accepted.

        Raises redis.RedisError when Redis is away: the caller answers 503 and the
        provider sweep (which lists recordings at the provider) finds it later.
        """
        recording_key = self.recording_key(recording_sid)
        seen = keys.recording_seen(recording_key)
        if not self._redis.set(seen, 1, nx=True, ex=keys.RECORDING_SEEN_SECONDS):
            return False
        handle = RecordingHandle(recording_sid=recording_sid, call_sid=call_sid, reference=state.reference,
                                 pin=state.pin, language=state.language, category=state.category,
                                 duration_seconds=duration_seconds)
        try:
            Queue(self.queue_for(state.category), connection=self._redis).enqueue(
                PROCESS_RECORDING_JOB,
                self.seal(handle),
                job_id=keys.recording_job_id(recording_key),
                description="process a recording",
                result_ttl=0,
                failure_ttl=FAILED_JOB_TTL,
            )
        except redis.RedisError:
            with suppress(redis.RedisError):
                self._redis.delete(seen)  # so that a repeat, or the sweep, can try again
            raise
        return True
