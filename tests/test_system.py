"""`make run` as a new user meets it: honcho starts web, worker and a local Redis; calls go
through over HTTP; Ctrl-C stops every process; nothing identifying is left behind."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis

from config.settings import PROJECT_ROOT, Settings
from dev.phone_audio import speak
from dev.processes import free_port, process_environment, start, wait_for_health, wait_until
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike
from dev.twilio.http_transport import http_post
from ivr.core import build_core
from ivr.core.tips import AWAITING_LANGUAGE, FINAL_PART_STATUSES, NO_SPEECH, READY
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER
from tests.privacy import needles_for_number, needles_for_text, scan_files, scan_lines, scan_redis

pytestmark = pytest.mark.slow

MESSAGE = "There is a man selling drugs outside the school on Station Road every Friday night."


# Each process `make run` starts (dev/Procfile.dev), by what its command line holds.
PROCFILE_PROCESSES = {"web": "ivr.wsgi:app", "worker": "workers.run", "clock": "workers.clock",
                      "redis": "redis-server", "stand-in": "dev.standin"}


def not_running(children: list[psutil.Process]) -> list[str]:
    """`make run`'s processes that are not alive among `children` (shells that start them do not count)."""
    alive = []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE and child.name() not in ("sh", "bash", "dash"):
                alive.append(" ".join(child.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return [name for name, needle in PROCFILE_PROCESSES.items() if not any(needle in line for line in alive)]


def procfile_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_make_run_starts_production_processes_as_the_procfile_has_them() -> None:
    """The Procfile holds production's processes only; `make run`'s dev Procfile adds Redis and the stand-in."""
    production = procfile_lines(PROJECT_ROOT / "Procfile")
    development = procfile_lines(PROJECT_ROOT / "dev" / "Procfile.dev")
    assert [line.split(":")[0] for line in production] == ["web", "worker", "clock"]
    assert development[:len(production)] == production
    assert [line.split(":")[0] for line in development[len(production):]] == ["redis", "provider"]


def log_mentions(log_path: Path, *phrases: str, after: int = 0) -> bool:
    """Does the log, from byte `after` on, say any of `phrases`?"""
    text = log_path.read_bytes()[after:].decode(errors="replace")
    return any(phrase in text for phrase in phrases)


def test_make_run_serves_calls_and_ctrl_c_stops_everything(tmp_path, speech_recogniser) -> None:
    port, var = free_port(), tmp_path / "var"
    # What a fresh machine has: no REDIS_URL, no Twilio credentials, no secret key.
    env = process_environment({"PORT": str(port), "TIPLINE_VAR_DIR": str(var), "LOG_LEVEL": "DEBUG"})
    log_path = tmp_path / "make-run.log"
    honcho = start([sys.executable, "-m", "dev.run"], env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_health(base) == {"status": "ok", "redis": True}
        secrets_file = var / "dev-secrets.json"
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600

        curl = subprocess.run([sys.executable, "-m", "dev.webhook", "/voice/incoming"], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=30)
        assert curl.returncode == 0 and "HTTP 200" in curl.stdout and "does not see your number" in curl.stdout

        # The console, as the banner says: the first admin from the CLI, their link served by gunicorn.
        tipline = str(Path(sys.executable).parent / "tipline")
        made = subprocess.run([tipline, "handler", "add", "--role", "admin", "first"], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=30)
        assert made.returncode == 0, made.stderr
        link = made.stdout.strip().splitlines()[-1]
        assert link.startswith(f"{base}/console/enrol/")
        with urllib.request.urlopen(link, timeout=10) as enrolment:
            assert enrolment.status == 200 and b"first" in enrolment.read()
        assert "/console/login" in log_path.read_text()  # the banner points at the console

        settings = Settings.from_env(env)
        standin_url = re.search(r"provider stand-in \((http://127\.0\.0\.1:\d+)\)", log_path.read_text()).group(1)
        twilio = TwilioLike(http_post, base, settings.twilio_account_sid, settings.twilio_auth_token,
                            provider=StandIn(standin_url))
        calls = [twilio.call(CALLER_NUMBER) for _ in range(3)]
        spoken = {language: speak(MESSAGE, language) for language in ("en", "cy", "pl")}
        references = [leave_a_message(call, lang, "1", audio=spoken[language])[0]
                      for call, lang, language in zip(calls, "123", spoken, strict=True)]

        with redis.Redis.from_url(settings.redis_url) as local_redis:
            tips = build_core(settings).tips  # the app's own vault: master and period keys
            wait_until(lambda: all(tips.get(r).status in FINAL_PART_STATUSES for r in references),
                       timeout=90, what="three tips through the pipeline")
            english = tips.get(references[0])
            assert english is not None and english.status == READY
            # The whole recording, as the worker's own recogniser hears it (the stand-in serves it verbatim).
            assert english.transcript == speech_recogniser.transcribe(spoken["en"], "en").text
            assert [tips.get(r).status for r in references[1:]] == [AWAITING_LANGUAGE] * 2
            said = needles_for_text(english.transcript, stored_in_clear=[english.category])
            assert scan_redis(local_redis, needles_for_number(CALLER_NUMBER) | said) == []
        children = psutil.Process(honcho.pid).children(recursive=True)
        assert not_running(children) == [], "every process of the Procfile is alive after the calls"
    finally:
        honcho.send_signal(signal.SIGINT)  # Ctrl-C
        code = honcho.wait(timeout=30)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    text = log_path.read_text()
    assert code == 0 and "Traceback" not in text and "SIGKILL" not in text, text[-3000:]

    log = text.splitlines()
    assert any("redis.1" in line and "ready to accept connections" in line for line in log)
    assert any(f"Listening at: http://127.0.0.1:{port} (" in line for line in log)  # port and pid, not redacted
    assert list((var / "redis").rglob("*.aof")), "the local Redis keeps an append-only file under var/"
    # var/ holds the local Redis's AOF as it was written (never rewritten before this scan).
    needles = needles_for_number(CALLER_NUMBER)
    assert scan_lines(log, needles) == []
    assert scan_files(var, needles | said) == []
    sids = {call.sid for call in calls} | {r.form["RecordingSid"] for call in calls for r in call.recordings}
    assert scan_lines(log, sids) == [] and scan_files(var, sids) == []


def test_the_worker_waits_for_redis_and_rides_out_a_restart(redis_server, redis_client, environment,
                                                            twilio: TwilioLike, app, tmp_path) -> None:
    redis_server.stop()
    log_path = tmp_path / "worker.log"
    worker = start([sys.executable, "-m", "workers.run"], process_environment(environment), log_path)
    try:
        wait_until(lambda: log_mentions(log_path, "waiting for Redis") or worker.poll() is not None, timeout=30,
                   what="the worker to wait for Redis")
        assert worker.poll() is None, "the worker exited while Redis was away"
        redis_server.start()
        first, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1")
        tips = app.extensions["tipline"].tips
        wait_until(lambda: tips.get(first).status == NO_SPEECH, timeout=60, what="the first recording")
        seen = log_path.stat().st_size
        redis_server.stop()
        wait_until(lambda: log_mentions(log_path, "could not connect to Redis", "lost Redis", "waiting for Redis",
                                        after=seen) or worker.poll() is not None,
                   timeout=30, what="the worker to notice Redis is gone")
        assert worker.poll() is None, "the worker exited when Redis restarted"
        redis_server.start()
        second, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "4")
        wait_until(lambda: tips.get(second).status == NO_SPEECH, timeout=60, what="the second recording")
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=20)
    assert code == 0, (tmp_path / "worker.log").read_text()[-2000:]


def test_a_worker_killed_with_sigkill_takes_its_scheduler_with_it(redis_client, environment, tmp_path) -> None:
    """RQ's scheduler, forked by the worker, used to live on as an orphan holding the queues'
    scheduler locks (workers/scheduler.py)."""
    log_path = tmp_path / "worker.log"
    worker = start([sys.executable, "-m", "workers.run"], process_environment(environment), log_path)
    try:
        started = re.compile(rb"Scheduler for .* started with PID (\d+)")
        wait_until(lambda: log_path.exists() and started.search(log_path.read_bytes()) is not None, timeout=30,
                   what="the worker's scheduler to start")
        scheduler_pid = int(started.search(log_path.read_bytes()).group(1))  # type: ignore[union-attr]
        assert psutil.Process(scheduler_pid).ppid() == worker.pid
        assert list(redis_client.scan_iter(match="rq:scheduler-lock:*"))

        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

        wait_until(lambda: not psutil.pid_exists(scheduler_pid) or
                   psutil.Process(scheduler_pid).status() == psutil.STATUS_ZOMBIE, timeout=10,
                   what="the orphaned scheduler to stop")
        assert log_mentions(log_path, f"Scheduler with PID {scheduler_pid} has stopped")  # RQ's clean stop
        assert list(redis_client.scan_iter(match="rq:scheduler-lock:*")) == []  # its locks given back
    finally:
        try:
            os.killpg(worker.pid, signal.SIGKILL)  # whatever the group still holds: nothing, if the test passed
        except ProcessLookupError:
            pass
