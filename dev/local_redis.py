"""The local Redis for `make run` when REDIS_URL is unset (`python -m dev.local_redis`).

It listens on a unix socket under var/redis/ and on no TCP port, so it never collides with
a Redis that already holds 6379. It keeps its data in an append-only file there (AOF on,
fsynced before every answer: `appendfsync always`), so neither a restart nor a crash loses
a commit the worker has acted on (it deletes at the provider right after one). The
launcher and its arguments are `dev.redis_server.RedisServer`'s.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

from config.settings import Settings
from dev.redis_server import NoRedisServer, RedisServer


def main() -> None:
    settings = Settings.from_env()
    url = urlsplit(settings.redis_url)
    if url.scheme != "unix":
        raise SystemExit(f"dev.local_redis serves a unix socket; REDIS_URL is {settings.redis_url!r}.")
    socket_path = Path(url.path)
    data_dir = socket_path.parent
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    RedisServer(data_dir, socket=socket_path, appendfsync="always").exec_here()


if __name__ == "__main__":
    try:
        main()
    except NoRedisServer as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None
