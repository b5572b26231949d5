"""One optimistic transaction shape for every read-then-write on Redis: WATCH, read, MULTI, EXEC.

`atomically` WATCHes the given keys, runs `body` on the pipeline (reads answer at once
until the body calls `pipe.multi()`; commands after that are queued), and executes what
was queued. If a watched key changed meanwhile, EXEC is refused (WatchError) and the
whole body runs again from fresh reads, so the body must only read and queue: anything
it does outside Redis happens once per attempt. A body that returns before
`pipe.multi()` has decided there is nothing to write; nothing is executed.

The body may WATCH more keys once it has read which ones matter (`pipe.watch(...)`
before `pipe.multi()`), and may queue RQ jobs inside the MULTI (`enqueue_call(...,
pipeline=pipe)`), which then exist exactly when the rest of the transaction does.

Retries are bounded: contention that never lets one attempt through is a fault (a hot key
or a runaway writer), and it is raised as TransactionContended rather than spinning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import redis
from redis.client import Pipeline

T = TypeVar("T")

# Dozens of handlers and webhooks on one tip settle within a handful of attempts; a
# hundred means something writes a watched key without end.
MAX_ATTEMPTS = 100


class TransactionContended(redis.RedisError):
    """A transaction's watched keys changed on every attempt: it gave up rather than spin."""


def atomically(connection: redis.Redis, watched_keys: Sequence[str], body: Callable[[Pipeline], T],
               attempts: int = MAX_ATTEMPTS) -> T:
    """Run `body` in one WATCH/MULTI/EXEC transaction, again from the start whenever a
    watched key changed; returns what the body returned."""
    if attempts < 1:
        raise ValueError("attempts: please give at least 1")
    with connection.pipeline() as pipe:
        for _ in range(attempts):
            try:
                if watched_keys:
                    pipe.watch(*watched_keys)
                result = body(pipe)
                if pipe.explicit_transaction:
                    pipe.execute()
                return result
            except redis.WatchError:
                pipe.reset()
                continue
    raise TransactionContended(
        f"{len(watched_keys)} watched key(s) changed on each of {attempts} attempts; is something writing them "
        "in a loop?")  # no key names: they hold references and keyed digests, not for logs
