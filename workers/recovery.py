"""Jobs abandoned by a worker that died (kill -9, a crash, the machine restarting).

RQ notices such a job only when its heartbeat expires (about 90 s) and its registry
maintenance runs (every 10 minutes by default). A tip should not wait that long: a worker
that starts, and the clock every few seconds, hand back at once the jobs whose worker ran
on this host and is gone. RQ's own clean-up then does the rest (a retry while retries
remain, else the failed registry), so the outcome is the same as RQ's, only sooner.
"""

from __future__ import annotations

import logging
import os
import socket

import redis
from rq.job import Job
from rq.registry import StartedJobRegistry

log = logging.getLogger(__name__)


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _worker_is_gone(connection: redis.Redis, worker_name: str, hostname: str) -> bool:
    fields = connection.hmget(f"rq:worker:{worker_name}", "hostname", "pid", "death")
    if not any(fields):
        return True  # its registration expired: nobody is working on the job
    host, pid, death = (value.decode() if value else "" for value in fields)
    if death:
        return True
    return host == hostname and pid.isdigit() and _process_is_gone(int(pid))


def requeue_abandoned(connection: redis.Redis, queue_names: tuple[str, ...]) -> int:
    """Hand back the started jobs whose worker on this host is gone. Returns how many."""
    hostname, handed_back = socket.gethostname(), 0
    for name in queue_names:
        registry = StartedJobRegistry(name, connection=connection)
        abandoned = []
        for entry in connection.zrange(registry.key, 0, -1):
            job_id = StartedJobRegistry.parse_job_id(entry.decode())
            job = Job.fetch(job_id, connection=connection) if connection.exists(Job.key_for(job_id)) else None
            if job is None or not job.worker_name or _worker_is_gone(connection, job.worker_name, hostname):
                abandoned.append(entry)
        if abandoned:
            connection.zadd(registry.key, {entry: 0 for entry in abandoned}, xx=True)  # expire them now
            registry.cleanup()
            handed_back += len(abandoned)
    if handed_back:
        log.warning("handed back %d job(s) abandoned by a worker that is gone", handed_back)
    return handed_back
