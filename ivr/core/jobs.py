"""Every RQ job Tipline queues: its name, queue, retry policy, how long it is kept, and how
its argument is sealed.

The web process, the clock and the workers queue jobs through the `enqueue_*` functions
here and nowhere else; the workers open their arguments with `JobArguments`. Jobs are
named by the string RQ resolves in the worker, so nothing under `ivr/` imports `workers/`
(tests/test_import_boundary.py checks each name is a real worker function). Queue names
themselves are Redis names and stay with the others in `ivr.core.keys`.

Each `enqueue_*` takes an optional `pipeline`: given one, the job is queued inside the
caller's MULTI and exists exactly when the rest of that transaction does (a tip and its
transcription, a closed SMS session and its clean-up).

Arguments that name something at the provider ride sealed: RQ stores job arguments in
Redis and keeps failed jobs, and a provider sid must not be readable there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline
from rq import Queue, Retry

from ivr.core import keys
from ivr.core.choices import Choices
from ivr.core.vault import Sealer, Secrets

# -- what the workers run (module path and function, as RQ imports them) -----------------

TRANSCRIBE_RECORDING = "workers.recordings.transcribe_recording"
DELETE_CALL = "workers.recordings.delete_call"
DELETE_REVIEWED_RECORDINGS = "workers.recordings.delete_reviewed_recordings"
DELETE_MESSAGES = "workers.messages.delete_messages"
DELETE_RECORDINGS = "workers.recordings.delete_recordings"
REWRAP_KEYS = "workers.keys.rewrap_keys"

# The queues a worker listens on, first to last: urgent recordings, other recordings,
# message clean-up (a flood of refused texts never delays a transcription), then housekeeping.
WORKER_QUEUES = (*keys.RECORDING_QUEUES, keys.QUEUE_MESSAGES, keys.QUEUE_MAINTENANCE)

# -- retry policies -----------------------------------------------------------------------

# Unreadable audio or a provider hiccup: try again after 10 s, 1 min, 5 min.
TRANSCRIBE_RETRY = Retry(max=3, interval=[10, 60, 300])
# A call cannot be deleted while the caller is still on the line (error 20009).
DELETE_CALL_RETRY = Retry(max=8, interval=[30, 60, 120, 300, 600, 1200, 1800, 3600])
# A message still being delivered cannot be deleted either (error 20009): ~2 h in all.
DELETE_MESSAGES_RETRY = Retry(max=8, interval=[10, 30, 60, 120, 300, 600, 1800, 3600])
# The provider being away when a handler finishes a tip.
DELETE_REVIEWED_RETRY = Retry(max=8, interval=[30, 60, 120, 300, 600, 1800, 3600, 3600])

# Re-wrapping keys is resumable (its cursor is in Redis): a failure goes on where it stopped.
REWRAP_KEYS_RETRY = Retry(max=3, interval=[60, 300, 900])
REWRAP_KEYS_TIMEOUT = 6 * 3600
REWRAP_KEYS_JOB_ID = "tipline-keys-rewrap"

# -- how long jobs are kept ---------------------------------------------------------------

FAILED_JOB_TTL = 30 * 24 * 3600
"""A failed job is kept for 30 days, whatever the job.

A job that failed every retry is the operator's alarm and, for the provider's copies, often
the only handle on them: a call log or a reviewed recording the provider still holds is
deleted only if someone requeues the job (`rq requeue`), and a month leaves time to notice
over a holiday. Keeping it costs nothing in secrecy (its argument is sealed, or a tip's
reference). The recording jobs always kept failures 30 days; the message clean-up kept
them 7, and now keeps them 30 like the rest: its "accounted for" markers
(`ivr.core.sms_cleanup.INBOUND_MARKER_SECONDS`) outlive the failed job by a day, so the inbound
sweep still never takes in a message whose failed job an operator could requeue.
"""
RESULT_TTL = 0  # a finished job leaves nothing behind: its result is in the tip


# -- sealed arguments ---------------------------------------------------------------------

@dataclass(frozen=True)
class RecordingHandle:
    """What the worker needs to fetch, transcribe, store and clean up one recording.

    Sealed as one flat JSON object (the choices' facts beside the sids), as it was before
    `Choices`: jobs queued, or parts awaiting, across a deploy open either way.
    """

    recording_sid: str
    call_sid: str | None
    choices: Choices
    part: int
    duration_seconds: int

    def __post_init__(self) -> None:
        if not self.choices.reference:
            raise ValueError("a recording handle needs the reference of the tip it joins")

    @property
    def reference(self) -> str:
        """The tip this recording is a part of (always set: checked when made)."""
        return self.choices.reference or ""

    def to_mapping(self) -> dict[str, Any]:
        return {"recording_sid": self.recording_sid, "call_sid": self.call_sid, **self.choices.to_mapping(),
                "part": self.part, "duration_seconds": self.duration_seconds}

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> RecordingHandle:
        return cls(recording_sid=mapping["recording_sid"], call_sid=mapping["call_sid"],
                   choices=Choices.from_mapping(mapping), part=int(mapping["part"]),
                   duration_seconds=int(mapping["duration_seconds"]))


class JobArguments:
    """Seals the arguments that name provider records, and opens them in the worker.

    The same sealed message sids also sit in an SMS session until it closes, and a
    recording's sealed handle in its tip part until it is transcribed (to queue it again).
    """

    def __init__(self, secret_keys: Secrets) -> None:
        self._handles = Sealer(secret_keys, "recording-handle")
        self._message_sids = Sealer(secret_keys, "message-sids")
        self._recording_sids = Sealer(secret_keys, "recording-sids")

    def seal_handle(self, handle: RecordingHandle) -> str:
        return self._handles.seal(json.dumps(handle.to_mapping()).encode()).hex()

    def open_handle(self, sealed: str) -> RecordingHandle:
        return RecordingHandle.from_mapping(json.loads(self._handles.open(bytes.fromhex(sealed))))

    def reseal_handle(self, sealed: str) -> str | None:
        """`sealed` re-sealed under SECRET_KEY's current key; None when it is sealed under it already."""
        fresh = self._handles.rotate(bytes.fromhex(sealed))
        return None if fresh is None else fresh.hex()

    def seal_message_sids(self, message_sids: list[str]) -> str:
        return self._message_sids.seal(json.dumps(message_sids).encode()).hex()

    def open_message_sids(self, sealed: str | bytes | None) -> list[str]:
        if not sealed:
            return []
        text = sealed.decode() if isinstance(sealed, bytes) else sealed
        return list(json.loads(self._message_sids.open(bytes.fromhex(text))))


    def seal_recording_sids(self, recording_sids: list[str]) -> str:
        return self._recording_sids.seal(json.dumps(recording_sids).encode()).hex()

    def open_recording_sids(self, sealed: str) -> list[str]:
        return list(json.loads(self._recording_sids.open(bytes.fromhex(sealed))))


# -- queueing -----------------------------------------------------------------------------

def enqueue_transcription(connection: redis.Redis, sealed_handle: str, job_id: str, timeout_seconds: int,
                          urgent: bool, pipeline: Pipeline | None = None) -> None:
    """Queue a recording's one transcription job (its id makes a second one replace it)."""
    _queue(connection, keys.QUEUE_URGENT_RECORDINGS if urgent else keys.QUEUE_RECORDINGS).enqueue_call(
        TRANSCRIBE_RECORDING, args=(sealed_handle,), job_id=job_id, description="transcribe a recording",
        result_ttl=RESULT_TTL, failure_ttl=FAILED_JOB_TTL, timeout=timeout_seconds, retry=TRANSCRIBE_RETRY,
        pipeline=pipeline)


def enqueue_call_deletion(connection: redis.Redis, sealed_handle: str, pipeline: Pipeline | None = None) -> None:
    """Queue the deletion of a call log the provider would not delete yet (still in progress)."""
    _queue(connection, keys.QUEUE_RECORDINGS).enqueue_call(
        DELETE_CALL, args=(sealed_handle,), description="delete a call log", result_ttl=RESULT_TTL,
        failure_ttl=FAILED_JOB_TTL, retry=DELETE_CALL_RETRY, pipeline=pipeline)


def enqueue_message_deletion(connection: redis.Redis, sealed_sids: str, pipeline: Pipeline | None = None) -> None:
    """Queue the deletion of a conversation's messages at the provider."""
    _queue(connection, keys.QUEUE_MESSAGES).enqueue_call(
        DELETE_MESSAGES, args=(sealed_sids,), description="delete message logs", result_ttl=RESULT_TTL,
        failure_ttl=FAILED_JOB_TTL, retry=DELETE_MESSAGES_RETRY, pipeline=pipeline)


def enqueue_reviewed_recordings_deletion(connection: redis.Redis, reference: str,
                                         pipeline: Pipeline | None = None) -> None:
    """Queue the deletion of the recordings a handler reviewed, once the tip is finished."""
    _queue(connection, keys.QUEUE_RECORDINGS).enqueue_call(
        DELETE_REVIEWED_RECORDINGS, args=(reference,), description="delete reviewed recordings",
        result_ttl=RESULT_TTL, failure_ttl=FAILED_JOB_TTL, retry=DELETE_REVIEWED_RETRY, pipeline=pipeline)


def enqueue_recordings_deletion(connection: redis.Redis, sealed_sids: str,
                                pipeline: Pipeline | None = None) -> None:
    """Queue the deletion at the provider of recordings whose tip is already gone (retention):
    the job carries their sids sealed, not the tip's reference."""
    _queue(connection, keys.QUEUE_RECORDINGS).enqueue_call(
        DELETE_RECORDINGS, args=(sealed_sids,), description="delete recordings of a deleted tip",
        result_ttl=RESULT_TTL, failure_ttl=FAILED_JOB_TTL, retry=DELETE_REVIEWED_RETRY, pipeline=pipeline)
def enqueue_key_rewrap(connection: redis.Redis) -> str:
    """Queue the one job that moves every tip to the current keys (`workers.keys`); its id."""
    job = _queue(connection, keys.QUEUE_MAINTENANCE).enqueue_call(
        REWRAP_KEYS, job_id=REWRAP_KEYS_JOB_ID, description="move tips to the current keys",
        result_ttl=RESULT_TTL, failure_ttl=FAILED_JOB_TTL, timeout=REWRAP_KEYS_TIMEOUT, retry=REWRAP_KEYS_RETRY)
    return str(job.id)


def _queue(connection: redis.Redis, name: str) -> Queue:
    return Queue(name, connection=connection)
