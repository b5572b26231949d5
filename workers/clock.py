"""The clock process (`python -m workers.clock`): the periodic work nobody calls for.

Every few seconds it hands back jobs abandoned by a dead worker on this host (started, or
only claimed), queues again the job of a part stuck awaiting its transcript for minutes
with no job pending (`workers.stuck`), and closes SMS conversations idle past their
timeout into tips (never dropped), and once a day deletes the tips whose
time is up (`workers.retention_daily`), and keeps a stock of PINs minted ahead with their
argon2 hashes (`ivr.core.pin_pool`); every few minutes it sweeps the provider: recordings no
tip accounts for (`sweep_provider`), texts no conversation accounts for
(`sweep_inbound_messages`), finished calls no job will delete (`sweep_calls`), and the SMS
replies Twilio made from our TwiML once they are final (`sweep_replies`). Each piece of
work runs on its own, so one that fails does not stop the others. Only the clock holding
the lease in Redis works (`workers.clock_lease`), so one may run on every machine. Like
the worker, it rides out Redis or the provider being away instead of exiting (honcho would
stop everything).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis

from ivr.core import keys
from ivr.core.durability import NotDurable, check_durability_at_start
from ivr.core.jobs import WORKER_QUEUES
from ivr.core.keys_in_use import MissingMasterKey
from ivr.core.provider import ProviderError
from ivr.core.redaction import configure_logging
from workers.call_sweep import sweep_calls
from workers.clock_lease import ClockLease
from workers.context import WorkerContext, worker_context
from workers.inbound_sweep import sweep_inbound_messages
from workers.recovery import requeue_abandoned, requeue_unclaimed
from workers.retention_daily import run_daily_retention
from workers.stuck import STUCK_AFTER, requeue_stuck
from workers.sweep import sweep_provider, sweep_replies

log = logging.getLogger("workers.clock")
TICK_SECONDS = 5
# Added to the niceness the clock was started with, as for the workers: its periodic work
# can wait, and minting PINs ahead (argon2, `ivr.core.pin_pool`) must not slow a webhook.
CLOCK_NICENESS = 10
STOP_CHECK_SECONDS = 0.2
SWEEP_EVERY_SECONDS = 300


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Tipline's periodic work.")
    parser.add_argument("--once", action="store_true",
                        help="one recovery pass and one sweep, then exit (whichever clock leads)")
    parser.add_argument("--sweep-grace-seconds", type=int, default=None,
                        help="every provider sweep's grace: take in recordings and texts older than this that "
                             "nothing accounts for, delete calls and final replies this old (default: each "
                             "sweep's own)")
    parser.add_argument("--requeue-after-seconds", type=int, default=int(STUCK_AFTER.total_seconds()),
                        help="queue again the job of a part awaiting its transcript this long with no job pending")
    args = parser.parse_args(argv)
    os.nice(CLOCK_NICENESS)
    context = worker_context()  # the settings are read once, into the core
    configure_logging(context.core.settings.log_level)
    try:
        check_durability_at_start(context.core.redis, context.core.settings)
        context.core.check_keys_in_use()
    except (NotDurable, MissingMasterKey) as error:
        log.error("%s", error)
        return 2
    except redis.RedisError:
        log.warning("Redis is away at start: its durability is checked by the worker")
    stopping: list[bool] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.append(True))
    # A tick well inside the lease, so the leader renews it several times before it lapses.
    # An operator's --once runs whoever leads: each piece of work is safe beside another clock's.
    lease = None if args.once else ClockLease(context.core.redis, context.core.settings.clock_lease_seconds)
    tick_seconds = min(TICK_SECONDS, context.core.settings.clock_lease_seconds / 3)
    log.info("clock started: a tick every %g s, the provider sweeps every %d s, a lease of %d s",
             tick_seconds, SWEEP_EVERY_SECONDS, context.core.settings.clock_lease_seconds)
    next_sweep = 0.0
    stuck_after = timedelta(seconds=args.requeue_after_seconds)
    try:
        while not stopping:
            # Each piece runs only while this clock leads: the lease is renewed before each.
            _run_led(lease, "recovery", lambda: requeue_abandoned(context.core.redis, WORKER_QUEUES))
            _run_led(lease, "unclaimed jobs", lambda: requeue_unclaimed(context.core.redis, WORKER_QUEUES))
            _run_led(lease, "stuck parts", lambda: requeue_stuck(context, stuck_after=stuck_after))
            _run_led(lease, "idle conversations", lambda: context.core.sms.sessions.close_idle(time.time()))
            _run_led(lease, "retention", lambda: run_daily_retention(context.core))
            if not args.once:  # an operator's one-off run is for the sweeps
                _run_led(lease, "PIN stock", lambda: context.core.pin_pool.refill(stopping=lambda: bool(stopping)))
            _run_led(lease, "last tick", lambda: context.core.redis.set(keys.CLOCK_LAST_TICK, int(time.time())))
            if time.monotonic() >= next_sweep and (lease is None or lease.held()):
                for name, sweep in provider_sweeps(context, args.sweep_grace_seconds):
                    _run_led(lease, name, sweep)
                next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
            if args.once:
                return 0
            _sleep_unless_stopped(tick_seconds, stopping)
    finally:
        if lease is not None:
            lease.release()
    return 0


def _sleep_unless_stopped(seconds: float, stopping: list[bool]) -> None:
    """Wait for the next tick, but stop within a moment of SIGTERM or Ctrl-C: Python resumes
    a plain sleep after a signal handler returns, which kept honcho waiting a whole tick."""
    deadline = time.monotonic() + seconds
    while not stopping and time.monotonic() < deadline:
        time.sleep(min(STOP_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))


def provider_sweeps(context: WorkerContext, grace_seconds: int | None) -> list[tuple[str, Callable[[], object]]]:
    """The provider sweeps in the order they run; `grace_seconds` (tests, operators) overrides each grace."""
    grace: dict[str, Any] = {} if grace_seconds is None else {"grace": timedelta(seconds=grace_seconds)}
    return [
        ("recording sweep", lambda: sweep_provider(context, **grace)),
        ("inbound sweep", lambda: sweep_inbound_messages(context, **grace)),
        ("call sweep", lambda: sweep_calls(context, **grace)),
        ("reply sweep", lambda: sweep_replies(context, **grace)),
    ]


def _run_led(lease: ClockLease | None, name: str, work: Callable[[], object]) -> None:
    """Run one piece of periodic work if this clock still leads (or is an operator's --once)."""
    if lease is None or lease.held():
        _run_guarded(name, work)


def _run_guarded(name: str, work: Callable[[], object]) -> None:
    """Run one piece of periodic work; Redis or the provider being away skips it this time."""
    try:
        work()
    except (redis.RedisError, ProviderError) as error:
        log.warning("%s skipped this time: %s", name, type(error).__name__)


if __name__ == "__main__":
    raise SystemExit(main())
