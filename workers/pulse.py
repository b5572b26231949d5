"""This worker's pulse: a key in Redis renewed by a thread while the process lives, so a
clock on any machine learns within WORKER_PULSE_SECONDS that the worker died
(`ivr.core.worker_pulse` says why RQ's own registration cannot tell soon enough).

A thread, not the work loop: a transcription keeps the loop busy for minutes, and the
recogniser releases the GIL while it decodes, so the thread renews on time meanwhile.
"""

from __future__ import annotations

import logging
import threading

import redis

from ivr.core import keys
from ivr.core.worker_pulse import PULSE_FIELD, worker_key

log = logging.getLogger("workers.run")

# Renewals per lapse: one or two may fail (a Redis failover's seconds) before the key lapses.
BEATS_PER_LAPSE = 5


class Pulse:
    """`start()` once the worker is registered, `stop()` as it registers its death."""

    def __init__(self, connection: redis.Redis, worker_name: str, lapse_seconds: int) -> None:
        self._redis = connection
        self._worker_name = worker_name
        self._key = keys.worker_pulse(worker_name)
        self._lapse_ms = lapse_seconds * 1000
        self._every_seconds = lapse_seconds / BEATS_PER_LAPSE
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Beat once now (the key exists before the registration is marked), then on a thread."""
        self._beat()
        self._redis.hset(worker_key(self._worker_name), PULSE_FIELD, self._lapse_ms)
        self._thread = threading.Thread(target=self._run, name="worker-pulse", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and drop the key (the registration says the worker died)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self._every_seconds + 5)
        try:
            self._redis.delete(self._key)
        except redis.RedisError:
            pass  # it lapses on its own

    def _run(self) -> None:
        while not self._stopping.wait(self._every_seconds):
            try:
                self._beat()
            except redis.RedisError:
                # The work loop says "lost Redis" itself; the next beat tries again.
                log.debug("could not renew the worker's pulse")

    def _beat(self) -> None:
        self._redis.set(self._key, b"1", px=self._lapse_ms)
