"""The operator's call simulator, against a real gunicorn and the provider stand-in."""

from __future__ import annotations

import io
import re
import signal
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue

from config.settings import Settings
from dev import run, simulator
from dev.processes import free_port, process_environment, run_worker_burst, start, wait_for_health
from dev.standin.client import StandIn
from ivr.core import build_core, keys
from ivr.core.references import is_valid_reference
from ivr.core.tips import READY
from tests.conftest import environment_for
from workers.speech import Recogniser

pytestmark = pytest.mark.slow

SETTINGS_VARIABLES = ("TIPLINE_ENV", "PUBLIC_BASE_URL", "REDIS_URL", "TIPLINE_VAR_DIR", "SECRET_KEY", "VAULT_KEYS",
                      "AUDIT_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_BASE")


@pytest.fixture
def running_app(redis_server, redis_client: redis.Redis, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """gunicorn serving the app on a free port; this process's environment set as `make run` sets it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_environment({**environment_for(redis_server.url, tmp_path / "var"), "PORT": str(port),
                               "PUBLIC_BASE_URL": base, "WEB_CONCURRENCY": "1"})
    web = start(["gunicorn", "--config", "config/gunicorn.conf.py", "ivr.wsgi:app"], env, tmp_path / "gunicorn.log")
    try:
        wait_for_health(base)
        for name in SETTINGS_VARIABLES:
            monkeypatch.setenv(name, env[name])
        yield env
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=20)


def test_a_simulated_call_leaves_a_recording_at_the_provider_and_a_queued_job(
        running_app: dict[str, str], standin: StandIn, redis_client: redis.Redis,
        capsys: pytest.CaptureFixture[str], speech_recogniser: Recogniser) -> None:
    """Then a worker makes the English call a tip whose transcript is the whole recording, as
    the worker's own recogniser hears it: the simulator's speech is a usable test call."""
    assert simulator.main(["--say", "There is a man selling drugs outside the school"]) == 0
    assert simulator.main(["--say", "Ktoś sprzedaje narkotyki pod szkołą", "--language", "3", "--category", "2"]) == 0
    output = capsys.readouterr().out
    references = re.findall(r"^Reference: (\d+)$", output, re.MULTILINE)
    pins = re.findall(r"^PIN: +(\d+)$", output, re.MULTILINE)
    assert len(references) == 2 and all(is_valid_reference(r) for r in references) and references[0] != references[1]
    assert len(pins) == 2 and all(len(p) == 6 for p in pins)
    assert "language pl, topic weapons" in output

    recordings = standin.recordings()
    assert len(recordings) == 2
    calls = standin.calls()
    for held in recordings:
        assert calls[held.call_sid] == "completed"  # the caller hung up: the call log is deletable
        with wave.open(io.BytesIO(standin.recording_audio(held.sid))) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
            assert held.duration_seconds >= audio.getnframes() / 8000 > 1.5
    for call_sid in calls:  # as Twilio: the audio is stored before the app hears of it, the call ends after
        events = [e for e in standin.log() if e.method == "ADMIN" and (call_sid in e.path or call_sid in e.query)]
        assert [e.path.rsplit("/", 1)[-1] for e in events] == ["started", "recordings", "ended"]
    queued = sum(len(Queue(name, connection=redis_client).job_ids) for name in keys.RECORDING_QUEUES)
    assert queued == 2  # each recording callback was accepted

    served = {held.sid: standin.recording_audio(held.sid) for held in recordings}
    worker = run_worker_burst(running_app)
    assert worker.returncode == 0, worker.stderr[-3000:]
    (transcribed,) = set(served) - {held.sid for held in standin.recordings()}  # Polish is kept for a person
    settings = Settings.from_env(running_app)
    tips = build_core(settings).tips  # the app's own vault: master and period keys
    english = tips.get(references[0])
    assert english is not None and english.status == READY
    assert english.transcript == speech_recogniser.transcribe(served[transcribed], "en").text


def test_a_simulated_text_conversation_becomes_a_queued_tip(
        running_app: dict[str, str], standin: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    """--text: hello, language, topic, the message, DONE; each text left at the stand-in as Twilio stores it."""
    message = "A man sells drugs outside the school gates every Friday night."
    assert simulator.main(["--text", message, "--category", "2"]) == 0
    output = capsys.readouterr().out
    (reference,) = re.findall(r"^Reference: (\d+)$", output, re.MULTILINE)
    assert is_valid_reference(reference) and re.search(r"^PIN: +\d{6}$", output, re.MULTILINE)
    assert "Texted" in output and "topic weapons" in output
    inbound = [m for m in standin.messages().values() if m.get("direction") == "inbound"]
    assert len(inbound) == 5  # hello, 1, 2, the message, DONE
    tip = build_core(Settings.from_env(running_app)).tips.get(reference)
    assert tip is not None and (tip.channel, tip.category, tip.status) == ("sms", "weapons", READY)
    assert tip.transcript == message


def test_the_simulator_says_what_is_missing(running_app: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TWILIO_API_BASE", f"http://127.0.0.1:{free_port()}")
    assert simulator.main(["--say", "hello there, this is a test"]) == 1
    assert "no provider stand-in answers" in capsys.readouterr().err

    monkeypatch.setenv("TWILIO_API_BASE", "https://api.twilio.com")
    assert simulator.main(["--say", "hello there, this is a test"]) == 1
    assert "TWILIO_API_BASE that `make run` printed" in capsys.readouterr().err

    monkeypatch.setenv("PUBLIC_BASE_URL", f"http://127.0.0.1:{free_port()}")
    assert simulator.main(["--say", "hello there, this is a test"]) == 1
    complaint = capsys.readouterr().err
    assert "does not answer" in complaint and "make run" in complaint

    monkeypatch.setenv("PATH", "/nonexistent")
    assert simulator.main(["--say", "hello"]) == 1
    assert "festival is not installed" in capsys.readouterr().err


def test_make_run_tells_how_to_run_the_simulator_against_its_stand_in(environment: dict[str, str]) -> None:
    settings = Settings.from_env({**environment, "PUBLIC_BASE_URL": "http://127.0.0.1:5000"})
    text = run.banner(settings, local_redis=True, standin_url="http://127.0.0.1:40123")
    # No environment to copy: var/run.json tells the simulator where `make run` runs (tests/test_first_hour.py).
    assert '\n    .venv/bin/python -m dev.simulator --say "' in text
    assert "provider stand-in (http://127.0.0.1:40123)" in text
    assert '\n    .venv/bin/python -m dev.simulator --text "' in text
    assert "dev.simulator" not in run.banner(settings, local_redis=True)
