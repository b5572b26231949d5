"""More than one machine: clocks that take turns by a lease in Redis; two web processes
and two workers against one Redis, calls and texts spread over both webs, every tip once;
and a worker on another machine whose job is handed back once its pulse lapses."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
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
from ivr.core.health_report import build_report
from ivr.core.redis_values import as_text
from ivr.core.tips import FINAL_PART_STATUSES, READY
from ivr.core.worker_pulse import live_and_silent, worker_key
from tests.calls import leave_a_message
from tests.conftest import PUBLIC_BASE_URL
from tests.faults import release_scheduled

pytestmark = pytest.mark.slow

LEASE_SECONDS = 2
PULSE_SECONDS = 3
CLOCK_TICK_SECONDS = 1  # a third of the lease (workers/clock.py), below
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


def on_another_machine(command: list[str]) -> list[str]:
    """`command` in a UTS namespace of its own (root only): it reports the hostname
    other-machine, so recovery on this host cannot judge it by its pid."""
    return ["unshare", "--uts", "--fork", "sh", "-c", 'hostname other-machine && exec "$@"', "sh", *command]


def started_by(connection: redis.Redis) -> dict[str, str]:
    """Job id -> the name of the worker running it, for every recording job in a started registry."""
    running = {}
    for queue in keys.RECORDING_QUEUES:
        for entry in connection.zrange(StartedJobRegistry(queue, connection=connection).key, 0, -1):
            job_id = StartedJobRegistry.parse_job_id(as_text(entry))
            running[job_id] = as_text(connection.hget(f"rq:execution:{as_text(entry)}", "worker_name") or b"")
    return running


def test_a_worker_killed_on_another_machine_has_its_job_handed_back_once_its_pulse_lapses(
        environment: dict[str, str], settings, twilio, app, redis_client: redis.Redis, standin: StandIn,
        tmp_path: Path) -> None:
    # A lease of 3 s makes the clock tick every second (a third of the lease).
    env = process_environment({**environment, "WORKER_PULSE_SECONDS": str(PULSE_SECONDS),
                               "CLOCK_LEASE_SECONDS": str(PULSE_SECONDS)})
    processes = {"clock": start([sys.executable, "-m", "workers.clock"], env, tmp_path / "clock.log"),
                 "far worker": start(on_another_machine([sys.executable, "-m", "workers.run"]), env,
                                     tmp_path / "far-worker.log")}
    try:
        wait_until(lambda: log_says(tmp_path / "far-worker.log", "Listening on")
                   and log_says(tmp_path / "clock.log", "clock running (leader)"), timeout=30,
                   what="the far worker and this machine's clock running")
        standin.hold("GET", r"/Recordings/RE[0-9a-f]{32}", times=1)  # the far worker dies holding its fetch
        reference, _ = leave_a_message(twilio.call("+447700900500"), "1", "2", seconds=3)
        standin.wait_until_held(1, timeout_seconds=30)
        held_at = time.monotonic()
        ((job_id, far_name),) = started_by(redis_client).items()
        far_pid = int(as_text(redis_client.hget(worker_key(far_name), "pid") or b"0"))
        assert as_text(redis_client.hget(worker_key(far_name), "hostname") or b"") == "other-machine"
        processes["near worker"] = start([sys.executable, "-m", "workers.run"], env, tmp_path / "near-worker.log")
        wait_until(lambda: log_says(tmp_path / "near-worker.log", "Listening on"), timeout=30,
                   what="this machine's worker listening")

        # While the far worker lives, neither this machine's clock (two pulses and more) nor this
        # machine's worker starting takes its job: its pid means nothing here. (The fetch's own
        # 10 s read timeout bounds how long the far job can be held.)
        time.sleep(max(0.0, held_at + 2 * PULSE_SECONDS + 2 * CLOCK_TICK_SECONDS - time.monotonic()))
        assert started_by(redis_client) == {job_id: far_name}
        assert not log_says(tmp_path / "clock.log", "handed back")
        assert live_and_silent(redis_client)[1] == []

        # Given the far machine's worker dies (SIGKILL: no clean-up; RQ would list it for minutes)
        killed_at = time.monotonic()
        os.kill(far_pid, signal.SIGKILL)
        processes["far worker"].wait(timeout=10)
        standin.release()

        # Then this machine's clock hands its job back once the pulse lapses, and this machine's worker
        # finishes it.
        wait_until(lambda: log_says(tmp_path / "clock.log", "handed back 1 job(s) abandoned"),
                   timeout=PULSE_SECONDS + CLOCK_TICK_SECONDS + 5, what="the clock to hand the far job back")
        handed_back_after = time.monotonic() - killed_at
        assert handed_back_after <= PULSE_SECONDS + CLOCK_TICK_SECONDS + 1, handed_back_after
        print(f"handed back {handed_back_after:.1f} s after the far worker's SIGKILL")
        # The health report and /metrics no longer count it, though RQ still lists it.
        assert redis_client.exists(worker_key(far_name))
        alive, silent = live_and_silent(redis_client)
        assert [w.name for w in silent] == [far_name] and len(alive) == 1
        report = {check.name: check for check in build_report(redis_client, None).checks}
        assert report[f"worker {far_name}"].status == "warn" and "other-machine" in report[f"worker {far_name}"].value
        assert report["workers"].value == "1 alive"

        tips = app.extensions["tipline"].tips

        def finished() -> bool:
            release_scheduled(redis_client)  # the retry RQ scheduled 10 s on is due now
            return ((tip := tips.get(reference)) is not None and tip.status in FINAL_PART_STATUSES
                    and standin.recordings() == [])

        wait_until(finished, timeout=40, what="the tip final and no recording left at the provider")
    finally:
        for process in processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)  # the group: unshare passes no signal on
            except ProcessLookupError:
                pass  # the far worker's group, gone with it
        codes = {name: process.wait(timeout=20) for name, process in processes.items()}
    assert (codes["clock"], codes["near worker"]) == (0, 0)
    assert list(redis_client.scan_iter(match=keys.worker_pulse("*"))) == []  # a clean stop drops its pulse
    assert int(redis_client.hget(keys.tip(reference), "parts") or 0) == 1  # ran to the end once
    assert tips.queue.tip_ids() == [reference]
