"""The clock and the worker as the processes `make run` starts, doing what nobody calls for:
closing an idle SMS conversation, handing back a dead worker's job on its own tick, and the
worker's order of work (urgent recordings, then the others, then message clean-up)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from dev.phone_audio import speak
from dev.processes import kill_worker_inside_provider_call, process_environment, run_worker_burst, start, wait_until
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike
from dev.twilio.texts import Phone
from ivr.core import keys
from ivr.core.statuses import PartStatus
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER

pytestmark = pytest.mark.slow

REPORT = "The blue van parked behind the leisure centre has knives in the back, it is there most evenings."


@pytest.fixture
def clock(environment: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen]:
    process = start([sys.executable, "-m", "workers.clock"], process_environment(environment), tmp_path / "clock.log")
    yield process
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, (tmp_path / "clock.log").read_text()[-2000:]


def test_the_running_clock_closes_an_idle_conversation_into_a_tip(twilio: TwilioLike, app, redis_client,
                                                                   environment, tmp_path) -> None:
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends(REPORT)
    phone.sends("1")  # a topic, and then the tipster goes quiet (no DONE)
    (session_key,) = [member.decode() for member in redis_client.zrange(keys.SMS_IDLE, 0, -1)]
    # Time passes: the idle deadline (30 minutes after the last text) is a second ago.
    redis_client.hset(keys.sms_session(session_key), "deadline", int(time.time()) - 1)
    redis_client.zadd(keys.SMS_IDLE, {session_key: time.time() - 1})
    tips = app.extensions["tipline"].tips
    clock = start([sys.executable, "-m", "workers.clock"], process_environment(environment), tmp_path / "clock.log")
    try:
        wait_until(lambda: tips.queue.tip_ids() != [], timeout=30, what="the clock to close the conversation")
    finally:
        clock.send_signal(signal.SIGTERM)
        assert clock.wait(timeout=20) == 0
    (reference,) = tips.queue.tip_ids()
    tip = tips.get(reference)
    assert (tip.channel, tip.status, tip.transcript) == ("sms", "ready", REPORT)
    assert not redis_client.exists(keys.sms_session(session_key)) and redis_client.zcard(keys.SMS_IDLE) == 0


def test_the_running_clock_hands_back_a_dead_workers_job_on_its_own_tick(
        twilio: TwilioLike, app, redis_client: redis.Redis, standin: StandIn, environment, tmp_path, clock) -> None:
    reference, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1", seconds=3)
    standin.hold("GET", r"/Recordings/RE[0-9a-f]{32}", times=1)
    kill_worker_inside_provider_call(standin, environment, tmp_path / "worker.log")
    started = StartedJobRegistry(keys.QUEUE_RECORDINGS, connection=redis_client)
    scheduled = ScheduledJobRegistry(keys.QUEUE_RECORDINGS, connection=redis_client)
    assert redis_client.zcard(started.key) == 1  # abandoned, and no worker will start to find it
    wait_until(lambda: redis_client.zcard(started.key) == 0 and redis_client.zcard(scheduled.key) == 1,
               timeout=20, what="the clock's tick to hand the job back (a retry)")
    assert app.extensions["tipline"].tips.part_status(reference, 1) == PartStatus.AWAITING_TRANSCRIPT


def test_the_worker_takes_urgent_recordings_first_then_the_others_then_messages(
        twilio: TwilioLike, app, standin: StandIn, environment) -> None:
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends("STOP")  # queues the deletion of its message at once
    calls = {}
    for digit in ("1", "2"):  # drugs, then weapons (urgent), queued in that order
        call = twilio.call(CALLER_NUMBER)
        leave_a_message(call, "1", digit, audio=speak("Please help.", "en"))
        calls[digit] = call.recordings[0].form["RecordingSid"]
    burst = run_worker_burst(environment)
    assert burst.returncode == 0, burst.stderr[-3000:]
    order = [entry.path for entry in standin.log() if entry.method in ("GET", "DELETE") and (
        "/Recordings/RE" in entry.path and entry.method == "GET" or "/Messages/" in entry.path)]
    firsts = [next(i for i, path in enumerate(order) if needle in path)
              for needle in (calls["2"], calls["1"], phone.message_sids[0])]
    assert firsts == sorted(firsts), order


def test_the_clock_stops_within_a_moment_of_sigterm(clock: subprocess.Popen, tmp_path) -> None:
    """honcho (Ctrl-C) and systemd stop it with SIGTERM: waiting out a whole tick held up
    every stop by 5 s."""
    wait_until(lambda: b"clock running" in (tmp_path / "clock.log").read_bytes(), timeout=20,
               what="the clock to start ticking")
    asked = time.monotonic()
    clock.send_signal(signal.SIGTERM)
    assert clock.wait(timeout=20) == 0
    assert time.monotonic() - asked < 1.5
