"""Whether an RQ worker is alive, whichever machine it runs on: its pulse in Redis.

RQ alone cannot tell soon. A worker's registration expires only when its last heartbeat's
time is up, and a SimpleWorker (ours: no fork per job) heartbeats before a job, not during
one, for the job's whole time limit plus a minute: a worker killed on another machine in
the middle of a long transcription looked alive for up to 25 minutes, its job (perhaps an
urgent tip's) held all that time, and the health report and `/metrics` counted it.

So each of our workers also keeps `tipline:worker:pulse:<name>`, a key that expires after
WORKER_PULSE_SECONDS and that a thread of the worker renews a few times as often
(`workers/pulse.py`), and marks its RQ registration with PULSE_FIELD. A marked worker
whose pulse key is gone is dead: its process was killed, its machine is down, or it has
been cut off from Redis for longer than that. An unmarked one (started by code from
before pulses, during an upgrade) is judged by its registration alone, as before.
"""

from __future__ import annotations

import redis
from rq.worker import BaseWorker, Worker

from ivr.core import keys

# A field in RQ's worker hash (`rq:worker:<name>`): this worker keeps a pulse.
PULSE_FIELD = "tipline_pulse"


def worker_key(worker_name: str) -> str:
    """RQ's hash for a worker (rq.worker.BaseWorker.key)."""
    return f"{Worker.redis_worker_namespace_prefix}{worker_name}"


def is_silent(connection: redis.Redis, worker_name: str) -> bool:
    """A worker that keeps a pulse and whose pulse has lapsed: dead, even though RQ still lists it."""
    return _silent(connection, [worker_name])[0]


def live_and_silent(connection: redis.Redis) -> tuple[list[BaseWorker], list[BaseWorker]]:
    """RQ's registered workers, split into those alive and those whose pulse has lapsed."""
    workers = Worker.all(connection=connection)
    silent = _silent(connection, [worker.name for worker in workers])
    return ([w for w, gone in zip(workers, silent, strict=True) if not gone],
            [w for w, gone in zip(workers, silent, strict=True) if gone])


def _silent(connection: redis.Redis, worker_names: list[str]) -> list[bool]:
    """For each worker, marked as keeping a pulse and without one; one round trip for all."""
    with connection.pipeline(transaction=False) as pipe:
        for name in worker_names:
            pipe.hexists(worker_key(name), PULSE_FIELD)
            pipe.exists(keys.worker_pulse(name))
        answers = pipe.execute()
    return [bool(marked) and not pulsing for marked, pulsing in zip(answers[::2], answers[1::2], strict=True)]
