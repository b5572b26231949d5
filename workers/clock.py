"""The clock process (`python -m workers.clock`): the periodic work nobody calls for.

Every few seconds it hands back jobs abandoned by a dead worker on this host (started, or
only claimed), queues again the job of a part stuck awaiting its transcript for minutes
with no job pending (`workers.stuck`), and closes SMS conversations idle past their
timeout into tips (never dropped); every few
minutes it sweeps the provider for recordings no tip accounts for, and deletes the SMS
replies Twilio made from our TwiML once they are final (`sweep_replies`). Like the worker, it
rides out Redis or the provider being away instead of exiting (honcho would stop
everything).
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from datetime import timedelta

import redis

from config.settings import Settings
from ivr.durability import NotDurable, check_durability_at_start
from ivr.keys import QUEUE_MESSAGES, RECORDING_QUEUES
from ivr.provider import ProviderError
from ivr.redaction import configure_logging
from workers.context import worker_context
from workers.recovery import requeue_abandoned, requeue_unclaimed
from workers.stuck import STUCK_AFTER, requeue_stuck
from workers.sweep import GRACE, sweep_provider, sweep_replies

log = logging.getLogger("workers.clock")
TICK_SECONDS = 5
SWEEP_EVERY_SECONDS = 300


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Tipline's periodic work.")
    parser.add_argument("--once", action="store_true", help="one recovery pass and one sweep, then exit")
    parser.add_argument("--sweep-grace-seconds", type=int, default=int(GRACE.total_seconds()),
                        help="take in recordings older than this that no tip accounts for")
    parser.add_argument("--requeue-after-seconds", type=int, default=int(STUCK_AFTER.total_seconds()),
                        help="queue again the job of a part awaiting its transcript this long with no job pending")
    args = parser.parse_args(argv)
    configure_logging(Settings.from_env().log_level)
    context = worker_context()
    try:
        check_durability_at_start(context.services.redis, context.services.settings)
    except NotDurable as error:
        log.error("%s", error)
        return 2
    except redis.RedisError:
        log.warning("Redis is away at start: its durability is checked by the worker")
    stopping = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.append(True))
    next_sweep = 0.0
    while not stopping:
        try:
            requeue_abandoned(context.services.redis, (*RECORDING_QUEUES, QUEUE_MESSAGES))
            requeue_unclaimed(context.services.redis, (*RECORDING_QUEUES, QUEUE_MESSAGES))
            requeue_stuck(context, stuck_after=timedelta(seconds=args.requeue_after_seconds))
            context.services.sms.sessions.close_idle(time.time())
            if time.monotonic() >= next_sweep:
                sweep_provider(context, grace=timedelta(seconds=args.sweep_grace_seconds))
                sweep_replies(context)
                next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
        except (redis.RedisError, ProviderError) as error:
            log.warning("periodic work skipped this time: %s", type(error).__name__)
        if args.once:
            return 0
        time.sleep(TICK_SECONDS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
