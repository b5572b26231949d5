"""Real processes to break on purpose: production's Redis, workers to SIGKILL, the drain.

`production_redis()` is the local Redis exactly as `make run` starts it
(`dev.redis_server.RedisServer` on a unix socket, AOF fsynced on every write), so a fault run
tests the settings we ship, not the session Redis's. It is killed with SIGKILL and
started again from its append-only file in the same folder.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from dev.processes import process_environment, start
from dev.redis_server import RedisServer
from ivr.core import keys

ALL_QUEUES = (*keys.RECORDING_QUEUES, keys.QUEUE_MESSAGES)


def production_redis() -> RedisServer:
    """redis-server with `make run`'s arguments, on a unix socket in a short temp folder."""
    data_dir = Path(tempfile.mkdtemp(prefix="tl-faults-", dir="/tmp"))  # unix socket paths are short
    return RedisServer(data_dir, socket=data_dir / "redis.sock", appendfsync="always")


class KilledWorkers:
    """One `python -m workers.run` at a time, SIGKILLed at random moments and started again."""

    def __init__(self, environment: dict[str, str], log_dir: Path, rng: random.Random,
                 between: tuple[float, float]) -> None:
        self._env = process_environment(environment)
        self._log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._rng = rng
        self._between = between
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._kill_now_and_then, daemon=True)
        self.process: subprocess.Popen | None = None
        self.kills = 0
        self.started = 0

    def start(self) -> KilledWorkers:
        self._spawn()
        self._thread.start()
        return self

    def calm(self) -> None:
        """No more kills; the current worker keeps working."""
        self._stopping.set()
        self._thread.join(timeout=30)

    def stop(self) -> None:
        self.calm()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _spawn(self) -> None:
        self.started += 1
        self.process = start([sys.executable, "-m", "workers.run"], self._env,
                             self._log_dir / f"worker-{self.started}.log")

    def listening(self) -> bool:
        """Has the current worker started taking jobs?"""
        log = self._log_dir / f"worker-{self.started}.log"
        return log.exists() and b"Listening on" in log.read_bytes()

    def _kill_now_and_then(self) -> None:
        """Each worker gets a random time to work once it is listening (a kill while it is
        still loading the model would test nothing), then SIGKILL and a new one."""
        while not self._stopping.is_set():
            while not self.listening() and not self._stopping.wait(0.05):
                pass
            if self._stopping.wait(self._rng.uniform(*self._between)):
                return
            if self.process and self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait(timeout=10)
                self.kills += 1
            self._spawn()


def release_scheduled(connection: redis.Redis) -> int:
    """Time passes: retries RQ scheduled for later (10 s, 1 min, 5 min) are queued now."""
    released = 0
    for name in ALL_QUEUES:
        queue = Queue(name, connection=connection)
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id)
            if connection.exists(Job.key_for(job_id)):
                queue.enqueue_job(Job.fetch(job_id, connection=connection))
                released += 1
    return released


def work_in_flight(connection: redis.Redis) -> int:
    """Jobs queued, being claimed, started or scheduled, over every queue."""
    return sum(connection.llen(f"rq:queue:{name}") + connection.llen(f"rq:queue:{name}:intermediate")
               + connection.zcard(f"rq:wip:{name}") + connection.zcard(f"rq:scheduled:{name}")
               for name in ALL_QUEUES)


def drain(connection: redis.Redis, timeout: float) -> None:
    """Wait until no job is queued, claimed, started or scheduled (releasing scheduled retries)."""
    deadline, quiet_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        release_scheduled(connection)
        if work_in_flight(connection) == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.0:
                return
        else:
            quiet_since = None
        time.sleep(0.2)
    raise AssertionError(f"the queues did not drain in {timeout:.0f} s: {work_in_flight(connection)} job(s) left")
