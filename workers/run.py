"""The worker process (`python -m workers.run`): an RQ worker that rides out Redis restarts.

honcho stops every process when one exits, so this one must not exit because Redis is
away: it waits for Redis, works, and when RQ gives up on a lost connection it waits and
starts again. It exits only when asked to stop (Ctrl-C, SIGTERM) or in --burst mode.

It is RQ's SimpleWorker (no fork per job): the speech model is loaded once, before the
first job, and every job reuses it. It refuses to start in production on a Redis that can
lose an acknowledged commit (`ivr.core.durability`): it deletes at the provider after each
commit. A job's time limit cannot interrupt inference, so
each job's limit is bounded by its audio's length instead (`ivr.core.recordings`). On start it
hands back the jobs a dead worker on this host left behind (`workers.recovery`); while it
runs, its pulse (`workers.pulse`) tells a clock on any machine that it is alive.

It lowers its own priority first (nice 10, and so its scheduler's): transcription may
take every core there is, but a webhook on the same machine must still answer within
milliseconds while a TV appeal's backlog is worked off (bench/surge.py). Here rather than
in each launcher (systemd, the Procfiles), so every way of starting a worker gets it.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from types import FrameType
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.registry import StartedJobRegistry

from ivr.core.durability import NotDurable, check_durability_at_start
from ivr.core.jobs import WORKER_QUEUES
from ivr.core.keys_in_use import MissingMasterKey
from ivr.core.metrics_dir import use_metrics_dir
from ivr.core.redaction import configure_logging
from ivr.core.status_migration import migrate_statuses
from workers.claiming import ClaimingQueue
from workers.context import worker_context
from workers.pulse import Pulse
from workers.recovery import requeue_abandoned, requeue_unclaimed
from workers.scheduler import TiplineScheduler

log = logging.getLogger("workers.run")
REDIS_WAIT_SECONDS = 1.0
# Added to the niceness the worker was started with (0 to 19): the web processes keep 0.
WORKER_NICENESS = 10


class TiplineWorker(SimpleWorker):
    """RQ's worker, remembering whether it was asked to stop (rather than lost Redis),
    claiming each job atomically into its queue's intermediate list (`workers.claiming`),
    and keeping a pulse while it is registered (`workers.pulse`)."""

    stop_was_requested = False
    queue_class = ClaimingQueue

    def __init__(self, *args: Any, pulse_seconds: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pulse = Pulse(self.connection, self.name, pulse_seconds)

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
                         log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        # RQ's own, with a scheduler that dies with this worker (`workers.scheduler`). Any:
        # RQ leaves the scheduler's methods unannotated.
        scheduler: Any = TiplineScheduler(
            self.queues, connection=self.connection, serializer=self.serializer, date_format=date_format,
            log_format=log_format, logging_level=logging_level if logging_level is not None else self.log.level)
        self.scheduler = scheduler
        scheduler.acquire_locks()
        if not scheduler.acquired_locks:
            return
        if not burst:
            scheduler.start()
            return
        try:
            scheduler.register_birth()
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()
            scheduler.register_death()

    def register_birth(self) -> None:
        super().register_birth()  # type: ignore[no-untyped-call]  # RQ leaves it unannotated
        self._pulse.start()

    def register_death(self) -> None:
        self._pulse.stop()
        super().register_death()  # type: ignore[no-untyped-call]  # RQ leaves it unannotated

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        # RQ takes the claim back only for a one-queue worker; ours always claims, so always.
        super().prepare_job_execution(job, remove_from_intermediate_queue=True)

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry) -> None:
        super().handle_job_success(job, queue, started_job_registry)
        _count_job(job, "ok")

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry | None = None,
                           exc_string: str = "") -> None:
        # RQ retries inside handle_job_failure: a job with retries left is queued again, not failed.
        outcome = "retried" if job.retries_left else "failed"
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)
        _count_job(job, outcome)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_was_requested = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]  # RQ leaves it unannotated


def _count_job(job: Job, outcome: str) -> None:
    """Count a job by kind and outcome for `/metrics`."""
    # Imported here, not at the top: prometheus-client must load after main() set its directory.
    from ivr.core.metrics import JOBS, job_kind

    JOBS.labels(kind=job_kind(job.func_name), outcome=outcome).inc()


def wait_for_redis(connection: redis.Redis) -> None:
    announced = False
    while True:
        try:
            connection.ping()
            return
        except redis.RedisError:
            if not announced:
                log.warning("waiting for Redis ...")
                announced = True
            time.sleep(REDIS_WAIT_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Tipline's RQ worker.")
    parser.add_argument("--burst", action="store_true", help="work until the queues are empty, then exit")
    args = parser.parse_args(argv)
    os.nice(WORKER_NICENESS)  # before the model loads: its threads inherit it
    context = worker_context()  # the settings are read once, into the core
    configure_logging(context.core.settings.log_level)
    use_metrics_dir(context.core.settings)  # before any job loads prometheus-client
    _ = context.recogniser  # load the model now: a broken model stops the worker at start, not mid-job
    connection = context.core.redis
    wait_for_redis(connection)
    try:
        check_durability_at_start(connection, context.core.settings)
        context.core.check_keys_in_use()
    except (NotDurable, MissingMasterKey) as error:
        log.error("%s", error)
        return 2
    migrate_statuses(connection)
    lost: TiplineWorker | None = None  # an RQ worker that lost Redis, perhaps in the middle of a job
    while True:
        wait_for_redis(connection)
        try:
            if lost is not None:
                # This process lives on, so recovery would take that worker for alive and
                # leave its job in the started registry until its registration expired.
                lost.register_death()
                lost = None
            requeue_abandoned(connection, WORKER_QUEUES)
            requeue_unclaimed(connection, WORKER_QUEUES)
            queues = [ClaimingQueue(name, connection=connection) for name in WORKER_QUEUES]
            # log_job_description=False: RQ would otherwise log each job's arguments.
            worker = lost = TiplineWorker(queues, connection=connection, log_job_description=False,
                                          pulse_seconds=context.core.settings.worker_pulse_seconds)
            worker.work(burst=args.burst, logging_level=context.core.settings.log_level,
                        with_scheduler=not args.burst)
        except redis.RedisError as error:
            log.warning("lost Redis (%s); starting again when it is back", type(error).__name__)
            time.sleep(REDIS_WAIT_SECONDS)
            continue
        if args.burst or worker.stop_was_requested:
            return 0  # RQ registered the worker's death itself
        log.warning("the worker stopped unexpectedly; starting again")
        time.sleep(REDIS_WAIT_SECONDS)


if __name__ == "__main__":
    raise SystemExit(main())
