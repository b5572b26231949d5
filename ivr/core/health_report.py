"""Is the line healthy? One report for `tipline health` and the console's health page.

Each check has a name, a status (ok, warn or fail), a short value and, when it is not ok,
what to do. The Redis readers are `ivr.core.metrics`'s (the same numbers as /metrics) and
Redis's persistence is `ivr.core.durability.storage_safety` (the same answer as /healthz).
A check never names a tip, a caller or a provider sid: only counts, ages and settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import redis

from ivr.core import keys
from ivr.core.durability import storage_safety
from ivr.core.metrics import (
    HANDLER_QUEUE_NAMES,
    job_counts,
    oldest_age_seconds,
    seconds_since_clock_tick,
    unclaimed_entry_ids,
)
from ivr.core.provider_errors import ProviderError
from ivr.core.redis_values import as_bytes
from ivr.core.worker_pulse import live_and_silent

if TYPE_CHECKING:  # the package imports what loads prometheus-client: see ivr.core.metrics_dir
    from ivr.core import Core

OK, WARN, FAIL = "ok", "warn", "fail"
# The clock ticks every 5 s (workers/clock.py); silent for minutes, nothing periodic runs.
CLOCK_SILENT_FAIL_SECONDS = 3 * 60
# Unclaimed urgent tips older than this are a failure (ages are to the hour: queue ids are coarse).
URGENT_UNCLAIMED_FAIL_SECONDS = 15 * 60
# How long the provider has to answer its cheap GET.
PROVIDER_TIMEOUT_SECONDS = 5.0
HOUR = 3600


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn or fail
    value: str
    action: str = ""  # what to do when not ok


@dataclass(frozen=True)
class HealthReport:
    checks: list[Check] = field(default_factory=list)
    redis_reachable: bool = True

    @property
    def status(self) -> str:
        statuses = {check.status for check in self.checks}
        return FAIL if FAIL in statuses else WARN if WARN in statuses else OK

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "redis_reachable": self.redis_reachable,
                "checks": [asdict(check) for check in self.checks]}


def _age(seconds: float) -> str:
    """An age to the hour, as the queue ids allow."""
    hours = int(seconds // HOUR)
    return "under an hour (to the hour)" if hours == 0 else f"{hours}-{hours + 1} h (to the hour)"


def line_health(core: Core) -> HealthReport:
    """What `tipline health` and the console's health page show: the same checks, the
    provider reached through the core's client."""

    def check_provider() -> None:
        with core.provider(timeout_seconds=PROVIDER_TIMEOUT_SECONDS) as provider:
            provider.check_reachable()

    return build_report(core.redis, check_provider, replicas_required=core.settings.redis_replica_acks)


def build_report(connection: redis.Redis, check_provider: Callable[[], None] | None,
                 clock: Callable[[], float] = time.time, replicas_required: int = 0) -> HealthReport:
    """Every check. `check_provider` raises ProviderError when the provider cannot be reached
    (None: the check is skipped). Redis away: one failing check and `redis_reachable` False.
    `replicas_required` (REDIS_REPLICA_ACKS) adds a check that the master has that many."""
    try:
        connection.ping()
    except redis.RedisError as error:
        return HealthReport([Check("redis", FAIL, f"unreachable ({type(error).__name__})",
                                   "start Redis or fix REDIS_URL")], redis_reachable=False)
    now = clock()
    checks = [_redis_check(connection), *_replica_checks(connection, replicas_required),
              *_worker_checks(connection), _clock_check(connection, now),
              *_queue_checks(connection, now), *_job_checks(connection), _kept_recordings_check(connection),
              _pin_stock_check(connection)]
    if check_provider is not None:
        checks.append(_provider_check(check_provider))
    return HealthReport(checks)


def _redis_check(connection: redis.Redis) -> Check:
    safety = storage_safety(connection)
    if safety.safe:
        return Check("redis", OK, safety.detail)
    if safety.safe is None:
        return Check("redis", WARN, "reachable; INFO refused", "check appendonly yes and maxmemory-policy noeviction")
    return Check("redis", FAIL, "could lose tips", safety.detail)


def _replica_checks(connection: redis.Redis, required: int) -> list[Check]:
    """With REDIS_REPLICA_ACKS, fewer replicas than that means nothing new is answered as
    stored or deleted at the provider (ivr/core/replication.py): a failure."""
    if required <= 0:
        return []
    try:
        replication = connection.info("replication")
    except redis.ResponseError:
        return [Check("redis replicas", WARN, "INFO refused", f"make sure the master has {required} replica(s)")]
    connected = int(replication.get("connected_slaves", 0))
    value = f"{connected} connected, {required} must acknowledge each commit"
    if connected < required:
        return [Check("redis replicas", FAIL, value, "start or repair a replica (redis-server --replicaof); until "
                      "then recordings wait at the provider and texts are answered with the failure reply")]
    return [Check("redis replicas", OK, value)]


def _worker_checks(connection: redis.Redis) -> list[Check]:
    alive, silent = live_and_silent(connection)
    if not alive:
        checks = [Check("workers", FAIL, "no worker alive", "start the worker (python -m workers.run)")]
    else:
        checks = [Check("workers", OK, f"{len(alive)} alive")]
    for worker in sorted(alive, key=lambda w: w.name):
        checks.append(Check(f"worker {worker.name}", OK, "pulse: " + ", ".join(worker.queue_names())))
    for worker in sorted(silent, key=lambda w: w.name):
        # RQ lists it until its registration expires; the clock has handed its job back.
        checks.append(Check(f"worker {worker.name}", WARN, f"no pulse (on {worker.hostname})",
                            "it was killed or its machine is down: restart it there (systemctl restart "
                            "tipline-worker@N); its job was handed back"))
    return checks


def _clock_check(connection: redis.Redis, now: float) -> Check:
    silent = seconds_since_clock_tick(connection, now)
    if silent == float("inf"):
        return Check("clock", FAIL, "never ticked", "start the clock (python -m workers.clock)")
    if silent > CLOCK_SILENT_FAIL_SECONDS:
        return Check("clock", FAIL, f"silent {int(silent)} s", "restart the clock process")
    return Check("clock", OK, f"last tick {int(silent)} s ago")


def _queue_checks(connection: redis.Redis, now: float) -> list[Check]:
    checks = []
    for stream, name in HANDLER_QUEUE_NAMES.items():
        entry_ids = unclaimed_entry_ids(connection, stream)
        age = oldest_age_seconds(entry_ids, now)
        value = f"{len(entry_ids)} unclaimed" + (f", oldest {_age(age)}" if age is not None else "")
        if name == "urgent" and age is not None and age > URGENT_UNCLAIMED_FAIL_SECONDS:
            checks.append(Check(f"tips {name}", FAIL, value, "ask handlers to claim the urgent tips"))
        else:
            checks.append(Check(f"tips {name}", OK, value))
    return checks


def _job_checks(connection: redis.Redis) -> list[Check]:
    counts = job_counts(connection)
    queued = ", ".join(f"{name} {depth}" for name, (depth, _) in counts.items())
    failed = sum(failed for _, failed in counts.values())
    return [Check("jobs queued", OK, queued),
            Check("jobs failed", WARN if failed else OK, str(failed),
                  "read them (rq info, rq requeue) and fix the cause" if failed else "")]


def _kept_recordings_check(connection: redis.Redis) -> Check:
    """Recordings kept at the provider for a person to hear (their age is not recorded: a count)."""
    kept = 0
    for tip_key in connection.scan_iter(match=keys.tip("*"), count=500):
        if not as_bytes(tip_key).rsplit(b":", 1)[1].isdigit():
            continue
        kept += sum(1 for name in connection.hkeys(tip_key) if as_bytes(name).endswith(b":audio"))
    return Check("recordings kept for a person", OK, f"{kept} (a handler reviews each)")


def _pin_stock_check(connection: redis.Redis) -> Check:
    """PINs minted ahead (ivr/core/pin_pool.py): empty is not a failure, only slower webhooks."""
    stock = int(connection.llen(keys.PIN_POOL))
    if stock:
        return Check("PINs minted ahead", OK, str(stock))
    return Check("PINs minted ahead", WARN, "0: new tips' PINs are hashed in the webhook (slower answers)",
                 "the clock refills the stock every tick: make sure it runs; in a surge it refills within minutes")


def _provider_check(check_provider: Callable[[], None]) -> Check:
    try:
        check_provider()
    except ProviderError as error:
        return Check("provider", FAIL, f"unreachable ({type(error).__name__})",
                     "check TWILIO_* settings and the provider's status page")
    return Check("provider", OK, "reachable")
