"""Answer success only once a replica holds the commit (Redis high availability, promise 4).

With Sentinel, the master can die between answering a webhook and passing the write on to
its replica; the replica is promoted without it, and a tip the provider was told we have
(so it may drop its copy, and we delete ours there) is gone. Redis's `WAIT n ms` blocks
until `n` replicas acknowledge the waiting connection's writes so far, so a webhook that
stored something, and every delete at the provider, waits on it first
(`REDIS_REPLICA_ACKS`: 1 with Sentinel, 0 without, where this costs nothing).

WAIT counts the *connection's* own last write, and a pooled client may commit on one
connection and wait on another, so `confirm` writes a probe key on the connection it waits
on, in the same round trip: the replication stream is ordered, so a replica holding the
probe holds every commit answered before it, whichever connection made it.

Too few acknowledgements within `timeout_ms` raise `NotReplicated`, a `redis.RedisError`:
where Redis being away already means "not stored" (the recording callback's 503, a job's
retry, a sweep's next tick), a master without its replica means the same, and the
provider keeps its copy until a replica is back. `tipline health` names the cause.
"""

from __future__ import annotations

import redis

from ivr.core import keys

# A replica on the same network acknowledges within milliseconds; a second is a replica in
# trouble, and still well inside the provider's 15 s webhook timeout.
REPLICA_TIMEOUT_MS = 1000


class NotReplicated(redis.RedisError):
    """Fewer replicas than REDIS_REPLICA_ACKS acknowledged a commit in time: treat it as not stored."""


class ReplicaBarrier:
    """`confirm()` returns once `replicas` replicas hold every write made before it (no-op at 0)."""

    def __init__(self, connection: redis.Redis, replicas: int, timeout_ms: int = REPLICA_TIMEOUT_MS) -> None:
        self._redis = connection
        self.replicas = replicas
        self._timeout_ms = timeout_ms

    def confirm(self) -> None:
        if self.replicas <= 0:
            return
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.REPLICATION_PROBE, b"1")
            pipe.execute_command("WAIT", self.replicas, self._timeout_ms)
            _, acknowledged = pipe.execute()
        if int(acknowledged) < self.replicas:
            raise NotReplicated(f"{acknowledged} of {self.replicas} replica(s) acknowledged within "
                                f"{self._timeout_ms} ms: the commit is not safe yet (REDIS_REPLICA_ACKS)")
