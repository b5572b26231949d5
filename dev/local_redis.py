"""The local Redis for `make run` when REDIS_URL is unset (`python -m dev.local_redis`).

It listens on a unix socket under var/redis/ and on no TCP port, so it never collides with
a Redis that already holds 6379. It keeps its data in an append-only file there (AOF on,
fsynced before every answer: `appendfsync always`), so neither a restart nor a crash loses
a commit the worker has acted on (it deletes at the provider right after one). The
launcher and its arguments are `dev.redis_server.RedisServer`'s.

Ctrl-C reaches web, worker, clock and this Redis at once, and the others still need Redis
to finish (the worker unregisters, a job in flight commits). So redis-server runs in its own
session, out of the signal's way, and this process stops it only once its clients have gone
(or after LAST_CLIENT_SECONDS, within the 5 s honcho waits before it sends SIGKILL).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import redis

from config.settings import Settings
from dev.redis_server import NoRedisServer, RedisServer

LAST_CLIENT_SECONDS = 4.0


def main() -> int:
    settings = Settings.from_env()
    url = urlsplit(settings.redis_url)
    if url.scheme != "unix":
        raise SystemExit(f"dev.local_redis serves a unix socket; REDIS_URL is {settings.redis_url!r}.")
    socket_path = Path(url.path)
    data_dir = socket_path.parent
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    server = RedisServer(data_dir, socket=socket_path, appendfsync="always")
    stop = threading.Event()

    def stop_soon(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, stop_soon)
    signal.signal(signal.SIGTERM, stop_soon)
    # Its own session: the supervisor's signal to this process group does not reach it.
    process = subprocess.Popen([server.binary, *server.arguments()], start_new_session=True)  # nosec B603
    while not stop.wait(0.2):
        if process.poll() is not None:
            return process.returncode
    wait_for_clients_to_leave(server)
    process.terminate()  # redis-server's SIGTERM is SHUTDOWN: the AOF is fsynced, the socket removed
    return process.wait()


def wait_for_clients_to_leave(server: RedisServer) -> None:
    """Until this is Redis's only client, or LAST_CLIENT_SECONDS have passed."""
    deadline = time.monotonic() + LAST_CLIENT_SECONDS
    with server.client() as client:
        while time.monotonic() < deadline:
            try:
                if len(client.client_list()) <= 1:
                    return
            except redis.RedisError:
                return
            time.sleep(0.1)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except NoRedisServer as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None
