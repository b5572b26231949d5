"""Start and stop real processes (gunicorn, the worker, `make run`'s honcho) for tests, tools and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from config.settings import PROJECT_ROOT


def free_port() -> int:
    """A loopback port the kernel says is free now (another process could take it before we do)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_environment(overrides: dict[str, str]) -> dict[str, str]:
    """The test's environment with the venv's bin first on PATH, as `make` sets it."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PORT", "TWILIO_ACCOUNT_SID",
                                                          "TWILIO_AUTH_TOKEN", "SECRET_KEY", "PUBLIC_BASE_URL")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_for_health(base_url: str, want_redis: bool = True, timeout: float = 30) -> dict:
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {base_url!r}")
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # nosec B310  # checked above
                last = json.loads(response.read())
                if not want_redis or last.get("redis"):
                    return last
        except OSError as error:
            last = error
        time.sleep(0.2)
    raise AssertionError(f"{base_url}/healthz never became healthy: {last}")


def wait_until(predicate, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def run_worker_burst(environment: dict[str, str]) -> subprocess.CompletedProcess:
    """A real worker process, as `make run` starts it, until the queues are empty."""
    return subprocess.run([sys.executable, "-m", "workers.run", "--burst"], cwd=PROJECT_ROOT,
                          env={**os.environ, **environment}, capture_output=True, text=True, timeout=60)


def kill_worker_inside_provider_call(standin, environment: dict[str, str], log_path: Path,
                                     burst: bool = False) -> None:
    """Start a real worker and SIGKILL it while the stand-in holds its provider request
    (the test has arranged the hold); the request is then released into the void."""
    command = [sys.executable, "-m", "workers.run"] + (["--burst"] if burst else [])
    worker = start(command, process_environment(environment), log_path)
    try:
        standin.wait_until_held(1, timeout_seconds=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        standin.release()
