"""Faults against real processes: nothing is lost, nothing doubled, nothing left (promise 4).

Real parts only: production's Redis (`make run`'s arguments) SIGKILLed and started again
from its append-only file, real worker processes SIGKILLed at random moments, the real
clock process, and the provider stand-in answering 500, 503 or stalling. Each test records
its figures (tests/hostile.py) before it asserts. Randomness is seeded and the seed
printed; repeat a run with TIPLINE_FAULT_SEED=<seed>.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
import redis

from config.settings import Settings
from dev.phone_audio import speak
from dev.standin_client import StandIn
from dev.twilio_like import TwilioLike
from ivr import create_app, keys
from ivr.tips import FINAL_PART_STATUSES, TipStore
from tests.conftest import PUBLIC_BASE_URL, environment_for
from tests.faults import KilledWorkers, ProductionRedis, drain
from tests.hostile import record_fault
from tests.processes import process_environment, start

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("TIPLINE_FAULT_SEED") or random.SystemRandom().randrange(2**32))


@pytest.fixture
def rng() -> random.Random:
    print(f"fault seed: TIPLINE_FAULT_SEED={SEED}")
    return random.Random(SEED)


@pytest.fixture
def production_redis() -> Iterator[ProductionRedis]:
    server = ProductionRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fault_env(production_redis: ProductionRedis, tmp_path: Path) -> dict[str, str]:
    return environment_for(production_redis.url, tmp_path / "var")


@pytest.fixture
def fault_app(fault_env: dict[str, str]):  # type: ignore[no-untyped-def]
    app = create_app(Settings.from_env(fault_env))
    yield app
    app.extensions["tipline"].redis.close()


@pytest.fixture
def fault_twilio(fault_app, fault_env: dict[str, str], standin: StandIn) -> TwilioLike:  # type: ignore[no-untyped-def]
    client = fault_app.test_client()

    def transport(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        parts = urlsplit(url)
        response = client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=form, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    settings = Settings.from_env(fault_env)
    return TwilioLike(transport, PUBLIC_BASE_URL, settings.twilio_account_sid, settings.twilio_auth_token,
                      provider=standin)


def caller_number(index: int) -> str:
    return f"+4477009{index:05d}"


def place_call(twilio: TwilioLike, index: int, audio: bytes | None) -> str:
    """A whole call (menus, a message, hang up); returns the recording's sid."""
    call = twilio.call(caller_number(index)).dials().presses("1").presses(str(1 + index % 5))
    call.records(seconds=None if audio else 3, audio=audio)
    call.hangs_up()
    return call.recordings[0].form["RecordingSid"]


def sweep_once(environment: dict[str, str]) -> None:
    """The clock's sweep, as an operator runs it: everything older than no grace at all."""
    done = subprocess.run([sys.executable, "-m", "workers.clock", "--once", "--sweep-grace-seconds", "0"],
                          env=process_environment(environment), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def figures_for_recordings(connection: redis.Redis, app, recording_sids: list[str], standin: StandIn) -> dict:  # type: ignore[no-untyped-def]
    """lost: a recording with no finished tip part; duplicated: parts beyond one per recording,
    or a tip queued twice for handlers; left: recordings and calls still at the provider."""
    services = app.extensions["tipline"]
    intake, tips = services.recordings, services.tips
    lost = 0
    for sid in recording_sids:
        part_of = connection.get(keys.recording_part(intake.recording_key(sid)))
        if part_of is None:
            lost += 1
            continue
        reference, _, index = part_of.decode().rpartition(":")
        if tips.part_status(reference, int(index)) not in FINAL_PART_STATUSES:
            lost += 1
    voice_parts = 0
    for key in connection.scan_iter(match=keys.tip("*")):
        fields = connection.hmget(key, "channel", "parts")
        if fields[0] == b"voice":
            voice_parts += int(fields[1] or 0)
    queued = tips.queue.tip_ids()
    duplicated = max(0, voice_parts - len(recording_sids)) + (len(queued) - len(set(queued)))
    left = len(standin.recordings()) + len(standin.calls())
    return {"lost": lost, "duplicated": duplicated, "left_at_provider": left}


def test_workers_killed_at_random_over_a_hundred_jobs_lose_and_double_nothing(  # type: ignore[no-untyped-def]
        production_redis, fault_env, fault_app, fault_twilio, standin, rng, tmp_path) -> None:
    speech = speak("Please help, there is a fight.", "en")  # two seconds: the model runs; silence is stopped by the VAD
    clock = start([sys.executable, "-m", "workers.clock"], process_environment(fault_env), tmp_path / "clock.log")
    workers = KilledWorkers(fault_env, tmp_path, rng, between=(0.4, 2.0)).start()
    connection = production_redis.client()
    started = time.monotonic()
    try:
        recording_sids = [place_call(fault_twilio, i, speech if i % 10 == 0 else None) for i in range(120)]
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and sum(  # kill while there is work, then calm down
                connection.llen(f"rq:queue:{name}") for name in keys.RECORDING_QUEUES):
            time.sleep(0.2)
        workers.calm()
        drain(connection, timeout=60)
        stuck = figures_for_recordings(connection, fault_app, recording_sids, standin)
        sweep_once(fault_env)
        drain(connection, timeout=60)
    finally:
        workers.stop()
        clock.terminate()
        clock.wait(timeout=20)
    figures = figures_for_recordings(connection, fault_app, recording_sids, standin)
    print(f"worker SIGKILL: {workers.kills} kills over {len(recording_sids)} jobs in "
          f"{time.monotonic() - started:.1f} s; before the sweep {stuck}; after {figures}")
    record_fault("worker SIGKILL", lost=figures["lost"] + stuck["lost"], duplicated=figures["duplicated"],
                 left_at_provider=figures["left_at_provider"])
    assert workers.kills >= 5
    assert stuck["lost"] == 0, "a job was lost by a killed worker (nothing would ever run it)"
    assert figures == {"lost": 0, "duplicated": 0, "left_at_provider": 0}
