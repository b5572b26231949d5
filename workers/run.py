"""The worker process (`python -m workers.run`): an RQ worker that rides out Redis restarts.

honcho stops every process when one exits, so this one must not exit because Redis is
away: it waits for Redis, works, and when RQ gives up on a lost connection it waits and
starts again. It exits only when asked to stop (Ctrl-C, SIGTERM) or in --burst mode.

It is RQ's SimpleWorker (no fork per job): the speech model is loaded once, before the
first job, and every job reuses it. A job's time limit cannot interrupt inference, so
each job's limit is bounded by its audio's length instead (`ivr.recordings`). On start it
hands back the jobs a dead worker on this host left behind (`workers.recovery`).
"""

from __future__ import annotations

import argparse
import logging
import time

import redis
from rq import Queue, SimpleWorker

from config.settings import Settings
from ivr.keys import QUEUE_MESSAGES, RECORDING_QUEUES
from ivr.redaction import configure_logging
from workers.context import worker_context
from workers.recovery import requeue_abandoned

log = logging.getLogger("workers.run")
REDIS_WAIT_SECONDS = 1.0


class TiplineWorker(SimpleWorker):
    """RQ's worker, remembering whether it was asked to stop (rather than lost Redis)."""

    stop_was_requested = False

    def request_stop(self, signum, frame):  # type: ignore[no-untyped-def]
        self.stop_was_requested = True
        super().request_stop(signum, frame)


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
    configure_logging(Settings.from_env().log_level)
    context = worker_context()
    _ = context.recogniser  # load the model now: a broken model stops the worker at start, not mid-job
    connection = context.services.redis
    while True:
        wait_for_redis(connection)
        try:
            requeue_abandoned(connection, (*RECORDING_QUEUES, QUEUE_MESSAGES))
            queues = [Queue(name, connection=connection) for name in (*RECORDING_QUEUES, QUEUE_MESSAGES)]
            # log_job_description=False: RQ would otherwise log each job's arguments.
            worker = TiplineWorker(queues, connection=connection, log_job_description=False)
            worker.work(burst=args.burst, logging_level=context.services.settings.log_level,
                        with_scheduler=not args.burst)
        except redis.RedisError as error:
            log.warning("lost Redis (%s); starting again when it is back", type(error).__name__)
            time.sleep(REDIS_WAIT_SECONDS)
            continue
        if args.burst or worker.stop_was_requested:
            return 0
        log.warning("the worker stopped unexpectedly; starting again")
        time.sleep(REDIS_WAIT_SECONDS)


if __name__ == "__main__":
    raise SystemExit(main())
