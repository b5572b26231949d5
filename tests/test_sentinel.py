"""Redis high availability: a master, a replica and three sentinels on loopback; the master
is killed in the middle of calls. The line keeps answering, and every recording callback
answered with success (204) names a tip that is still there after the failover: a callback
is answered only once the replica holds its commit (ivr/core/replication.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from config.settings import Settings
from dev.processes import process_environment, start, wait_until
from dev.redis_sentinel import MASTER_NAME, SentinelSet
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike
from ivr import create_app
from tests.calls import codes_heard
from tests.conftest import environment_for, twilio_for
from workers.context import WorkerContext
from workers.sweep import sweep_provider

pytestmark = pytest.mark.slow

CALLERS = 3  # callers at once, until the test has seen enough
PAUSE_SECONDS = 0.5  # between one caller's calls: enough calls in the failover's seconds, few for the worker
WORKER_SECONDS = 120  # a job whose delete missed WAIT retries 10 s later, then 60 s later


@dataclass(frozen=True)
class Outcome:
    """One call: the reference heard (None: the failure sentence instead) and what the
    recording callback was answered (204 stored, 503 not stored: the provider keeps it)."""

    reference: str | None
    recording_sid: str | None
    callback: int | None


class Callers:
    """Callers leaving messages, CALLERS at a time, until stopped."""

    def __init__(self, twilio: TwilioLike) -> None:
        self._twilio = twilio
        self.outcomes: list[Outcome] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(CALLERS)]

    def __enter__(self) -> Callers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def count(self, callback: int) -> int:
        with self._lock:
            return sum(1 for outcome in self.outcomes if outcome.callback == callback)

    def _run(self, n: int) -> None:
        calls = 0
        while not self._stop.is_set():
            calls += 1
            try:
                outcome = self._one_call(f"+4477009{n:02d}{calls:03d}")
            except BaseException as error:  # a non-200 or an unreadable reply: the line did not answer
                with self._lock:
                    self.errors.append(error)
                return
            with self._lock:
                self.outcomes.append(outcome)
            self._stop.wait(PAUSE_SECONDS)

    def _one_call(self, number: str) -> Outcome:
        call = self._twilio.call(number).dials().presses("1").presses("2")
        heard = call.heard_since_last_step()
        if "something went wrong" in heard:
            return Outcome(None, None, None)
        reference, _ = codes_heard(heard)
        call.records(seconds=2)
        (callback,) = call.recordings
        return Outcome(reference, callback.form["RecordingSid"], callback.status)


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    redis_set = SentinelSet(tmp_path / "redis")
    redis_set.start()
    yield redis_set
    redis_set.stop()


def test_the_line_keeps_answering_through_a_failover_and_keeps_every_tip_it_answered_for(
        sentinel_set: SentinelSet, standin: StandIn, tmp_path: Path) -> None:
    worker_environment = environment_for("", tmp_path / "var")
    del worker_environment["REDIS_URL"]
    worker_environment.update(REDIS_SENTINELS=sentinel_set.sentinels_setting, REDIS_SENTINEL_MASTER=MASTER_NAME)
    settings = Settings.from_env(worker_environment)
    assert settings.redis_replica_acks == 1  # Sentinel's default: a replica holds each commit first
    app = create_app(settings)
    core = app.extensions["tipline"]
    twilio = twilio_for(app, settings, standin)
    old_master, new_master = sentinel_set.master, sentinel_set.replica
    with Callers(twilio) as callers:
        wait_until(lambda: callers.count(204) >= 4 or callers.errors, 30, "calls stored before the failover")
        # Given the master dies in the middle of calls (SIGKILL: no goodbye to anyone)
        old_master.kill()
        killed_at, stored_before = time.monotonic(), callers.count(204)
        # Then the sentinels promote the replica ...
        wait_until(lambda: all(sentinel_set.master_port(port) == new_master.port
                               for port in sentinel_set.sentinel_ports), 30, "the replica promoted")
        promoted_after = time.monotonic() - killed_at
        # ... and, its old master back (systemd restarts it) as the new master's replica,
        # the line stores calls again: until then no replica could hold a commit.
        sentinel_set.bring_back_as_replica(old_master, new_master)
        stored_at_rejoin = callers.count(204)
        wait_until(lambda: callers.count(204) >= stored_at_rejoin + 4 or callers.errors, 30,
                   "calls stored after the failover")
    assert not callers.errors, callers.errors[:3]  # every step of every call was answered with TwiML
    outcomes = callers.outcomes
    stored = [o for o in outcomes if o.callback == 204]
    refused = [o for o in outcomes if o.callback == 503]
    print(f"\n{len(outcomes)} calls: {len(stored)} stored ({stored_before} before the kill), {len(refused)} "
          f"refused, {sum(o.reference is None for o in outcomes)} heard the failure sentence; "
          f"replica promoted {promoted_after:.1f} s after the kill")
    assert refused, "no callback fell between the kill and the rejoin: the test did not test the failover"
    assert {o.callback for o in outcomes if o.reference} <= {204, 503}

    # Every callback answered 204 names a tip that survived the failover, with its recording.
    for outcome in stored:
        assert core.tips.get(outcome.reference) is not None, outcome
        assert core.recordings.is_known(outcome.recording_sid), outcome
    # Nothing is lost from the refused ones either: the provider kept them, and its sweep takes them in.
    with core.provider() as provider:
        sweep = sweep_provider(WorkerContext(core=core, provider=provider), grace=timedelta(0))
    assert all(core.recordings.is_known(held.sid) for held in standin.recordings())
    assert sweep.taken_in <= len(refused)

    # And a real worker on the new master transcribes them all and deletes each recording at
    # the provider, every delete after a replica acknowledged the transcript (RQ through Sentinel).
    # Not a burst: a replica still settling after the failover (Sentinel may resync it) can miss
    # WAIT's second, and the job's retry is then scheduled 10 s on, which a burst would not wait for.
    started = time.monotonic()
    log_path = tmp_path / "worker.log"
    worker = start([sys.executable, "-m", "workers.run"], process_environment(worker_environment), log_path)
    try:
        wait_until(lambda: not standin.recordings() or worker.poll() is not None, WORKER_SECONDS,
                   "the worker to delete every recording at the provider")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:  # at nice 10 on a busy machine: its shutdown is not this test's subject
            worker.kill()
            worker.wait()
    assert standin.recordings() == [], log_path.read_text()[-3000:]
    print(f"worker through Sentinel: every recording deleted after {time.monotonic() - started:.1f} s")
    core.redis.close()
