"""Jobs abandoned by a worker that died (kill -9, a crash, the machine restarting).

RQ notices such a job only when the worker's heartbeat expires (for our SimpleWorker, the
job's whole time limit plus a minute) and its registry maintenance runs (every 10 minutes
by default). A tip should not wait that long: a worker that starts, and the clock every
few seconds, hand back the jobs whose worker is gone: at once when it ran on this host
(its pid is gone), within WORKER_PULSE_SECONDS wherever it ran (its pulse lapsed:
`ivr.core.worker_pulse`). RQ's own clean-up then does the rest (a retry while retries
remain, else the failed registry), so the outcome is the same as RQ's, only sooner.

Whose job it is comes from the execution record RQ writes with the started-registry entry,
not from the job's `worker_name`: that field is written a moment later, and until then it
names the worker of the previous attempt (often a dead one), so a job a live worker had
just taken would be handed back under it and run twice.

`requeue_unclaimed` handles the other place a dying worker leaves a job: claimed into a
queue's intermediate list (`workers.claiming`) but never entered in the started registry.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import redis
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry

from ivr.core.redis_values import as_bytes, as_text
from ivr.core.worker_pulse import is_silent, worker_key

log = logging.getLogger(__name__)

# A live worker enters a claimed job in the started registry within milliseconds; one still
# unregistered after this long was claimed by a worker that died.
UNCLAIMED_GRACE_SECONDS = 10


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _worker_is_gone(connection: redis.Redis, worker_name: str, hostname: str) -> bool:
    fields = connection.hmget(worker_key(worker_name), "hostname", "pid", "death")
    if not any(fields):
        return True  # its registration expired: nobody is working on the job
    host, pid, death = (as_text(value) if value else "" for value in fields)
    if death or is_silent(connection, worker_name):
        return True
    return host == hostname and pid.isdigit() and _process_is_gone(int(pid))


def requeue_abandoned(connection: redis.Redis, queue_names: tuple[str, ...]) -> int:
    """Hand back the started jobs whose worker is gone. Returns how many."""
    hostname, handed_back = socket.gethostname(), 0
    for name in queue_names:
        registry = StartedJobRegistry(name, connection=connection)
        abandoned = []
        for entry in connection.zrange(registry.key, 0, -1):
            job_id = StartedJobRegistry.parse_job_id(as_text(entry))
            worker_name = connection.hget(f"rq:execution:{as_text(entry)}", "worker_name")
            if (not connection.exists(Job.key_for(job_id)) or not worker_name
                    or _worker_is_gone(connection, as_text(worker_name), hostname)):
                abandoned.append(as_bytes(entry))
        if abandoned:
            connection.zadd(registry.key, {entry: 0 for entry in abandoned}, xx=True)  # expire them now
            registry.cleanup()
            handed_back += len(abandoned)
    if handed_back:
        log.warning("handed back %d job(s) abandoned by a worker that is gone", handed_back)
    return handed_back


def requeue_unclaimed(connection: redis.Redis, queue_names: tuple[str, ...]) -> int:
    """Put back at the front of its queue each job claimed by a worker that died before it
    entered the started registry. Returns how many.

    An entry is judged on the second look, at least UNCLAIMED_GRACE_SECONDS after the
    first (RQ's own first-seen marker), so a live worker's claim is never taken from it.
    A job that moved on meanwhile (retried, scheduled, failed, done) only loses its stale
    entry.
    """
    handed_back = 0
    for name in queue_names:
        queue = Queue(name, connection=connection)
        claims = IntermediateQueue(queue.key, connection)
        started = {StartedJobRegistry.parse_job_id(as_text(entry))
                   for entry in connection.zrange(queue.started_job_registry.key, 0, -1)}
        for job_id in claims.get_job_ids():
            if job_id in started:
                continue  # registered: requeue_abandoned looks after it
            first_seen = claims.get_first_seen(job_id)
            if first_seen is None:
                claims.set_first_seen(job_id)
                continue
            if (time.time() - first_seen.timestamp()) < UNCLAIMED_GRACE_SECONDS:
                continue
            status = connection.hget(Job.key_for(job_id), "status")
            never_ran = status in (JobStatus.QUEUED.value.encode(), JobStatus.STARTED.value.encode())
            with connection.pipeline() as pipe:
                pipe.lrem(claims.key, 0, job_id)
                pipe.delete(claims.get_first_seen_key(job_id))
                if never_ran and connection.lpos(queue.key, job_id) is None:
                    pipe.hset(Job.key_for(job_id), "status", JobStatus.QUEUED.value)
                    pipe.lpush(queue.key, job_id)
                    handed_back += 1
                pipe.execute()
    if handed_back:
        log.warning("put back %d job(s) claimed by a worker that died before starting them", handed_back)
    return handed_back
