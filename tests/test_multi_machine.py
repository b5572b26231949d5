"""More than one machine: clocks that take turns by a lease in Redis, and two web processes
and two workers against one Redis, calls and texts spread over both webs, every tip once."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq.registry import StartedJobRegistry

from dev.processes import free_port, process_environment, start, wait_for_health, wait_until
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike
from dev.twilio.http_transport import http_post
from dev.twilio.texts import Phone
from ivr.core import keys
from ivr.core.redis_values import as_text
from ivr.core.tips import FINAL_PART_STATUSES, READY
from tests.calls import leave_a_message
from tests.conftest import PUBLIC_BASE_URL
from tests.faults import release_scheduled

pytestmark = pytest.mark.slow

LEASE_SECONDS = 2
REPORT = "A man sells stolen bikes from the garage behind the launderette on Mill Lane every Sunday."
REFERENCE = re.compile(r"\b(\d{11})\b")


def log_says(path: Path, phrase: str) -> bool:
    return path.exists() and phrase.encode() in path.read_bytes()


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


@pytest.fixture
def two_clocks(environment: dict[str, str], tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen, Path]]]:
    env = process_environment({**environment, "CLOCK_LEASE_SECONDS": str(LEASE_SECONDS)})
    logs = [tmp_path / f"clock-{n}.log" for n in (1, 2)]
    clocks = [(start([sys.executable, "-m", "workers.clock"], env, log), log) for log in logs]
    yield clocks
    for process, _ in clocks:
        if process.poll() is None:
            stop(process)


def test_one_clock_leads_and_another_takes_over_within_the_lease_when_it_dies(
        two_clocks, redis_client: redis.Redis) -> None:
    logs = [log for _, log in two_clocks]
    wait_until(lambda: sum(log_says(log, "clock running (leader)") for log in logs) == 1
               and sum(log_says(log, "clock standing by") for log in logs) == 1,
               timeout=20, what="one clock to lead and the other to stand by")
    (leader, leader_log), (standby, standby_log) = sorted(two_clocks, key=lambda c: not log_says(c[1], "(leader)"))
    first_holder = redis_client.get(keys.CLOCK_LEADER)
    assert first_holder and 0 < redis_client.pttl(keys.CLOCK_LEADER) <= LEASE_SECONDS * 1000

    # Given the leader's machine dies (no chance to give the lease back)
    leader.send_signal(signal.SIGKILL)
    leader.wait(timeout=10)
    # Then the standby leads once the lease lapses: within a lease and a tick.
    wait_until(lambda: log_says(standby_log, "clock running (leader)"), timeout=LEASE_SECONDS + 2,
               what="the standby clock to take over")
    second_holder = redis_client.get(keys.CLOCK_LEADER)
    assert second_holder and second_holder != first_holder
    assert standby_log.read_text().count("clock running (leader)") == 1  # logged once, not per tick
    assert standby_log.read_text().count("clock standing by") == 1

    # And a clean stop gives the lease back at once.
    assert stop(standby) == 0
    assert not redis_client.exists(keys.CLOCK_LEADER)


def test_a_clean_stop_hands_the_lease_to_the_standby_at_once(two_clocks, redis_client: redis.Redis) -> None:
    logs = [log for _, log in two_clocks]
    wait_until(lambda: sum(log_says(log, "clock standing by") for log in logs) == 1, timeout=20,
               what="a clock standing by")
    (leader, _), (_, standby_log) = sorted(two_clocks, key=lambda c: not log_says(c[1], "(leader)"))
    assert stop(leader) == 0
    wait_until(lambda: log_says(standby_log, "clock running (leader)"), timeout=2,
               what="the standby to lead on its next tick")


class TwoWebs:
    """Twilio's webhooks spread over two gunicorn processes: each POST goes to the next one in
    turn, even within one call or one conversation. Both sign for PUBLIC_BASE_URL, as Twilio
    signs for the one public address a load balancer spreads."""

    def __init__(self, ports: list[int]) -> None:
        self.bases = [f"http://127.0.0.1:{port}" for port in ports]
        self._next = itertools.cycle(range(len(ports)))
        self._lock = threading.Lock()
        self.served: Counter[str] = Counter()

    def post(self, url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        assert url.startswith(PUBLIC_BASE_URL), url
        with self._lock:
            base = self.bases[next(self._next)]
        self.served[base] += 1
        return http_post(base + url[len(PUBLIC_BASE_URL):], form, headers)


def worker_holding_a_job(connection: redis.Redis) -> int:
    """The pid of the worker whose job is in the started registry (there is one)."""
    def started() -> list[bytes]:  # urgent topics' recordings have their own queue: either may hold it
        return [entry for queue in keys.RECORDING_QUEUES
                for entry in connection.zrange(StartedJobRegistry(queue, connection=connection).key, 0, -1)]

    # The other worker goes on with the rest; once it is through, the held job is the one started.
    wait_until(lambda: len(started()) == 1, timeout=30, what="only the held job still running")
    (entry,) = started()
    worker_name = as_text(connection.hget(f"rq:execution:{as_text(entry)}", "worker_name") or b"")
    return int(as_text(connection.hget(f"rq:worker:{worker_name}", "pid") or b"0"))


def test_two_webs_and_two_workers_on_one_redis_take_every_tip_once_though_a_worker_dies(
        environment: dict[str, str], settings, app, redis_client: redis.Redis, standin: StandIn,
        tmp_path: Path) -> None:
    env = process_environment({**environment, "WEB_CONCURRENCY": "2"})
    ports = [free_port(), free_port()]
    processes: dict[str, subprocess.Popen] = {}
    for n, port in enumerate(ports, 1):
        processes[f"web-{n}"] = start([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                                       "ivr.wsgi:app"], {**env, "PORT": str(port)}, tmp_path / f"web-{n}.log")
    for n in (1, 2):
        processes[f"worker-{n}"] = start([sys.executable, "-m", "workers.run"], env, tmp_path / f"worker-{n}.log")
    processes["clock"] = start([sys.executable, "-m", "workers.clock"], env, tmp_path / "clock.log")
    try:
        for port in ports:
            wait_for_health(f"http://127.0.0.1:{port}")
        wait_until(lambda: all(log_says(tmp_path / f"worker-{n}.log", "Listening on") for n in (1, 2)),
                   timeout=30, what="both workers listening")
        webs = TwoWebs(ports)
        twilio = TwilioLike(webs.post, PUBLIC_BASE_URL, settings.twilio_account_sid, settings.twilio_auth_token,
                            provider=standin)
        # The first recording a worker fetches is held at the stand-in, so its worker can die mid-job.
        standin.hold("GET", r"/Recordings/RE[0-9a-f]{32}", times=1)
        called = [leave_a_message(twilio.call(f"+447700900{n:03d}"), "1", str(1 + n % 5), seconds=3)[0]
                  for n in range(6)]
        texted = []
        for n in range(4):
            phone = Phone(twilio, f"+447700901{n:03d}")
            texted.append(REFERENCE.search(phone.sends(REPORT)).group(1))
            phone.sends("1")
            phone.sends("DONE")
        assert min(webs.served.values()) > 20, webs.served  # both webs served calls and texts

        # Given a worker dies in the middle of a job (SIGKILL: no clean-up of its own)
        standin.wait_until_held(1, timeout_seconds=30)
        victim = worker_holding_a_job(redis_client)
        (dead_name,) = [name for name, process in processes.items() if process.pid == victim]
        processes[dead_name].send_signal(signal.SIGKILL)
        processes[dead_name].wait(timeout=10)
        standin.release()

        # Then the clock hands its job back and the other worker finishes it: every tip, once.
        tips = app.extensions["tipline"].tips

        def all_final() -> bool:
            release_scheduled(redis_client)  # time passes: the retry RQ scheduled 10 s on is due now
            return (all((tip := tips.get(r)) is not None and tip.status in FINAL_PART_STATUSES for r in called)
                    and all((tip := tips.get(r)) is not None and tip.status == READY for r in texted)
                    and standin.recordings() == [])

        wait_until(all_final, timeout=40, what="every tip final and no recording left at the provider")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {name: process.wait(timeout=20) for name, process in processes.items()}
    assert {name: code for name, code in codes.items() if name != dead_name} == {
        name: 0 for name in processes if name != dead_name}, (tmp_path / "clock.log").read_text()[-2000:]
    references = called + texted
    assert len(set(references)) == len(references)
    stored = [key.decode().rpartition(":")[2] for key in redis_client.scan_iter(match=keys.tip("*"))]
    assert sorted(stored) == sorted(references)  # every reference heard exists, once, and nothing else
    queued = tips.queue.tip_ids()
    assert sorted(queued) == sorted(references)  # the handlers' queue holds each once
    voice_parts = [int(redis_client.hget(keys.tip(r), "parts") or 0) for r in called]
    assert voice_parts == [1] * len(called)  # the killed job ran to the end once, not twice
    assert log_says(tmp_path / "clock.log", "handed back 1 job(s) abandoned")
