"""A commit Redis has answered is on disk before the worker deletes at the provider
(issue 9, finding 11): the local Redis fsyncs every write, and a process that deletes at
the provider says so (or, in production, refuses to start) when Redis is not durable."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from dev.processes import process_environment
from dev.redis_server import RedisServer
from ivr.core.durability import NotDurable, check_durability_at_start, redis_durability
from tests.conftest import environment_for
from tests.faults import production_redis

pytestmark = pytest.mark.slow


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
