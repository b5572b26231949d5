"""The safety net under the transcription jobs: a part awaiting a transcript whose job is
gone gets its job queued again.

Intake queues the job in the same transaction as the part, `workers.claiming` and
`workers.recovery` keep a job from falling out between a queue and the started registry,
and yet a job can still end where nothing will run it: a job SIGKILLed in the middle four
times (RQ counts each as a failed try and, after the last retry, files it as failed with
the part still "awaiting transcript"), or a failure nobody foresaw. So the clock looks at
parts awaiting a transcript for longer than a few minutes; one whose job is in no queue,
claim, started or scheduled registry is queued again from the sealed handle the part
keeps, at most once per round (a marker set with NX), and after MAX_ROUNDS the recording
is kept for a person instead (a job that kills its worker every time must not loop).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import redis
from redis.client import Pipeline
from rq.registry import FailedJobRegistry

from ivr.core import keys
from ivr.core.jobs import RecordingHandle
from ivr.core.tips import FINAL_PART_STATUSES, TRANSCRIPTION_FAILED
from ivr.core.transactions import atomically
from workers.context import WorkerContext

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=5)
MAX_ROUNDS = 3


def job_is_pending(connection: redis.Redis, job_id: str) -> bool:
    """Is the job queued, claimed, started or scheduled on any recording queue?"""
    for name in keys.RECORDING_QUEUES:
        queue_key = f"rq:queue:{name}"
        if any(connection.lpos(key, job_id) is not None for key in (queue_key, f"{queue_key}:intermediate")):
            return True
        if connection.zscore(f"rq:scheduled:{name}", job_id) is not None:
            return True
        if any(True for _ in connection.zscan_iter(f"rq:wip:{name}", match=f"{job_id}:*")):
            return True
    return False


def requeue_stuck(context: WorkerContext, stuck_after: timedelta = STUCK_AFTER, now: float | None = None) -> int:
    """Queue again the job of each part stuck awaiting its transcript. Returns how many."""
    core = context.core
    connection, tips, intake = core.redis, core.tips, core.recordings
    requeued = 0
    for reference, index in tips.awaiting_since((now or time.time()) - stuck_after.total_seconds()):
        if tips.part_status(reference, index) in (*FINAL_PART_STATUSES, None):
            tips.forget_awaiting(reference, index)
            continue
        sealed = tips.awaited_job(reference, index)
        if sealed is None:
            log.error("a part awaits its transcript but keeps no job handle; it needs an operator")
            continue
        handle = context.arguments.open_handle(sealed)
        recording_key = intake.recording_key(handle.recording_sid)
        # A job queued before a SECRET_KEY rotation has the old key's id.
        if any(job_is_pending(connection, keys.recording_job_id(digest))
               for digest in intake.recording_key.every(handle.recording_sid)):
            continue
        marker_seconds = max(1, int(stuck_after.total_seconds()))
        if not connection.set(keys.recording_requeued(recording_key), 1, nx=True, ex=marker_seconds):
            continue  # queued again this round already (another clock, or the last tick)
        rounds = connection.hincrby(keys.tip(reference), f"part:{index}:requeued", 1)
        if rounds > MAX_ROUNDS:
            tips.finish_part(reference, index, TRANSCRIPTION_FAILED, kept_audio={"recording_sid": handle.recording_sid})
            log.error("a recording's job was lost %d times; kept at the provider for a person", MAX_ROUNDS)
            continue
        _requeue(context, sealed, handle, recording_key)
        requeued += 1
    if requeued:
        log.warning("queued again %d transcription job(s) that were lost", requeued)
    return requeued


def _requeue(context: WorkerContext, sealed: str, handle: RecordingHandle, recording_key: str) -> None:
    """Out of the failed registries and into its queue, in one transaction."""
    connection, intake = context.core.redis, context.core.recordings
    job_id = keys.recording_job_id(recording_key)

    def requeue(pipe: Pipeline) -> None:
        pipe.multi()
        for name in keys.RECORDING_QUEUES:
            FailedJobRegistry(name, connection=connection).remove(job_id, pipeline=pipe)
        intake.queue_transcription(pipe, sealed, recording_key, handle.duration_seconds, intake.is_urgent(handle))

    atomically(connection, [], requeue)
