"""A transcription job is never lost between a queue and the started registry, and a part
whose job is gone all the same gets it back from the clock (issue 9, finding 12).

Real worker and clock processes against the session's real Redis. To stop a worker
exactly between taking a job and registering it, the worker connects as a Redis user
refused ZADD (the started registry's first write): the same state as Redis dying right
after the pop, only on purpose and every time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from dev.processes import process_environment, run_worker_burst, start, wait_until
from ivr.core import keys
from ivr.core.tips import NO_SPEECH
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER

pytestmark = pytest.mark.slow


def run_clock_once(environment: dict[str, str], *extra: str) -> str:
    done = subprocess.run([sys.executable, "-m", "workers.clock", "--once", *extra],
                          env=process_environment(environment), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def part_status(app, reference: str) -> str:
    return app.extensions["tipline"].tips.part_status(reference, 1)


def test_a_worker_stopped_between_taking_a_job_and_starting_it_loses_nothing(
        twilio, app, environment, redis_server, redis_client, tmp_path) -> None:
    reference, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1", seconds=3)
    (job_id,) = Queue(keys.QUEUE_RECORDINGS, connection=redis_client).job_ids
    redis_client.execute_command("ACL", "SETUSER", "popper", "on", ">popper-password", "~*", "&*", "+@all", "-zadd")
    refused = {**environment, "REDIS_URL": f"redis://popper:popper-password@127.0.0.1:{redis_server.port}/0"}
    worker = start([sys.executable, "-m", "workers.run"], process_environment(refused), tmp_path / "worker.log")
    try:
        wait_until(lambda: redis_client.llen(f"rq:queue:{keys.QUEUE_RECORDINGS}") == 0, timeout=30,
                   what="the worker to take the job")
        wait_until(lambda: b"no permissions" in (tmp_path / "worker.log").read_bytes(), timeout=30,
                   what="the worker to fail registering it")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        redis_client.execute_command("ACL", "DELUSER", "popper")
    run_clock_once(environment)  # the first look marks the claim
    first_seen = f"rq:queue:{keys.QUEUE_RECORDINGS}:intermediate:first_seen:{job_id}"
    if redis_client.exists(first_seen):  # time passes: the claim is older than any live worker's
        redis_client.set(first_seen, time.time() - 60)
    run_clock_once(environment)
    burst = run_worker_burst(environment)
    assert burst.returncode == 0, burst.stderr[-3000:]
    assert part_status(app, reference) == NO_SPEECH, "the job taken by the dead worker was never run"


def lose_the_job(connection: redis.Redis, how: str) -> None:
    """A job ends where nothing runs it: removed from its queue, or failed after its last retry."""
    queue = Queue(keys.QUEUE_RECORDINGS, connection=connection)
    (job_id,) = queue.job_ids
    connection.lrem(queue.key, 0, job_id)
    if how == "failed":  # four SIGKILLs in a row: RQ files it as failed, the part still waiting
        job = Job.fetch(job_id, connection=connection)
        FailedJobRegistry(queue=queue).add(job, exc_string="AbandonedJobError")


@pytest.mark.parametrize("how", ["vanished", "failed"])
def test_the_clock_queues_again_a_part_whose_job_is_gone_once(twilio, app, environment, redis_client,
                                                              how: str) -> None:
    reference, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1", seconds=3)
    lose_the_job(redis_client, how)
    assert "queued again" not in run_clock_once(environment)  # not stuck long enough yet: left alone
    for _ in range(2):  # twice: the second run must not queue it again
        run_clock_once(environment, "--requeue-after-seconds", "0")
    assert len(Queue(keys.QUEUE_RECORDINGS, connection=redis_client).job_ids) == 1
    burst = run_worker_burst(environment)
    assert burst.returncode == 0, burst.stderr[-3000:]
    assert part_status(app, reference) == NO_SPEECH
    assert redis_client.zcard(keys.RECORDINGS_AWAITING) == 0
    assert not redis_client.hexists(keys.tip(reference), "part:1:job")  # the sealed handle goes with the wait
