"""What `/metrics` shows: counters the processes keep, and gauges read from Redis per scrape.

Labels come from fixed sets written here or in the code (an endpoint's name, a job's
function, an outcome, a queue's name), never from a request: no label carries a number, a
sid, a reference or free text. Counters live in this process, or in files shared by every
process on the machine when `ivr.core.metrics_dir.use_metrics_dir` ran first; the gauges
(queue depths, the oldest unclaimed tip, live workers, the clock, Redis's persistence) are
read from Redis by whichever process is scraped, so every web worker gives the same answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import cast

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from rq import Queue
from rq.registry import FailedJobRegistry

from ivr.core import jobs, keys
from ivr.core.durability import storage_safety
from ivr.core.handler_queue import GROUP, NOBODY
from ivr.core.redis_values import StreamEntry, as_text
from ivr.core.worker_pulse import live_and_silent

# Our own registry: the default one adds the process's own figures (start time, memory).
COUNTERS = CollectorRegistry(auto_describe=True)

WEBHOOK_REQUESTS = Counter("tipline_webhook_requests", "Webhooks answered, by endpoint and outcome.",
                           ["route", "outcome"], registry=COUNTERS)
WEBHOOK_SECONDS = Histogram("tipline_webhook_seconds", "Time to answer a webhook, by endpoint.", ["route"],
                            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0), registry=COUNTERS)
JOBS = Counter("tipline_jobs", "Jobs run by the workers, by kind and outcome (ok, retried, failed).",
               ["kind", "outcome"], registry=COUNTERS)
TRANSCRIPTION_RATIO = Histogram("tipline_transcription_seconds_per_audio_second",
                                "Seconds spent fetching and transcribing a recording, per second of its audio.",
                                buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0), registry=COUNTERS)

JOB_KINDS = {name: name.rsplit(".", 1)[1] for name in (
    jobs.TRANSCRIBE_RECORDING, jobs.DELETE_CALL, jobs.DELETE_REVIEWED_RECORDINGS, jobs.DELETE_MESSAGES,
    jobs.DELETE_RECORDINGS, jobs.REWRAP_KEYS)}
OTHER = "other"
HANDLER_QUEUE_NAMES = {keys.HANDLER_QUEUE_URGENT: "urgent", keys.HANDLER_QUEUE_RETURNING: "returning",
                       keys.HANDLER_QUEUE: "normal"}


def job_kind(func_name: str | None) -> str:
    """A job's label: its function's name when it is one of ours, else "other"."""
    return JOB_KINDS.get(func_name or "", OTHER)


def webhook_outcome(status: int) -> str:
    """A response's label: ok, refused (403: not signed), rejected (other 4xx) or error."""
    if status < 400:
        return "ok"
    if status == 403:
        return "refused"
    return "rejected" if status < 500 else "error"


def observe_transcription(elapsed_seconds: float, audio_seconds: float) -> None:
    """Record one transcription's speed; audio of no length says nothing about it."""
    if audio_seconds > 0:
        TRANSCRIPTION_RATIO.observe(elapsed_seconds / audio_seconds)


class RedisGauges:
    """A collector read at scrape time: `tipline_redis_up` 0 and nothing else while Redis is away."""

    def __init__(self, connection: redis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = connection
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tipline_redis_up", "1 when this scrape could read Redis.")
        try:
            families = list(self._read())
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterable[Metric]:
        now = self._clock()
        unclaimed = GaugeMetricFamily("tipline_tips_unclaimed", "Tips no handler has claimed, by queue.",
                                      labels=["queue"])
        oldest = GaugeMetricFamily(
            "tipline_tips_oldest_unclaimed_seconds",
            "Age of the oldest unclaimed tip, by queue, from the start of the hour it was queued in "
            "(tips are queued by the hour, never the minute): between this and an hour less.", labels=["queue"])
        for stream, name in HANDLER_QUEUE_NAMES.items():
            entry_ids = unclaimed_entry_ids(self._redis, stream)
            unclaimed.add_metric([name], len(entry_ids))
            age = oldest_age_seconds(entry_ids, now)
            if age is not None:
                oldest.add_metric([name], age)
        yield unclaimed
        yield oldest

        depth = GaugeMetricFamily("tipline_jobs_queued", "Jobs waiting in each RQ queue.", labels=["queue"])
        failed = GaugeMetricFamily("tipline_jobs_failed", "Jobs that failed every retry and are kept for an "
                                   "operator (rq requeue), by queue.", labels=["queue"])
        for queue_name, (queued, failed_count) in job_counts(self._redis).items():
            depth.add_metric([queue_name], queued)
            failed.add_metric([queue_name], failed_count)
        yield depth
        yield failed

        workers = GaugeMetricFamily("tipline_workers_alive", "RQ workers registered and with a pulse.")
        workers.add_metric([], len(live_and_silent(self._redis)[0]))
        yield workers

        pins = GaugeMetricFamily("tipline_pins_minted_ahead", "PINs minted ahead by the clock (0: new tips' "
                                 "PINs are hashed in the webhook, slower).")
        pins.add_metric([], self._redis.llen(keys.PIN_POOL))
        yield pins

        clock = GaugeMetricFamily("tipline_clock_seconds_since_last_tick",
                                  "Seconds since the clock process last ran its periodic work (+Inf: never).")
        clock.add_metric([], seconds_since_clock_tick(self._redis, now))
        yield clock

        safety = storage_safety(self._redis)
        if safety.safe is not None:
            safe = GaugeMetricFamily("tipline_redis_persistence_ok", "1 when Redis keeps an append-only file and "
                                     "never evicts (GET /healthz names what to change when 0).")
            safe.add_metric([], 1 if safety.safe else 0)
            yield safe


# -- readers shared with `ivr.core.health_report` (`tipline health`, /console/health) -------------

def unclaimed_entry_ids(connection: redis.Redis, stream: str) -> list[str]:
    """The stream ids of the tips nobody has claimed in one handler queue (ids, never the tips they hold)."""
    if not connection.exists(stream):
        return []
    if stream == keys.HANDLER_QUEUE_RETURNING:
        pending = connection.xpending_range(stream, GROUP, min="-", max="+", count=10_000, consumername=NOBODY)
        return [as_text(entry["message_id"]) for entry in pending]
    groups = {as_text(group["name"]): group for group in connection.xinfo_groups(stream)}
    group = groups.get(GROUP)
    last = as_text(group["last-delivered-id"]) if group else "0-0"
    entries = cast("list[StreamEntry]", connection.xrange(stream, min=f"({last}" if last != "0-0" else "-",
                                                          max="+"))
    return [as_text(entry_id) for entry_id, _ in entries]


def oldest_age_seconds(entry_ids: list[str], now: float) -> float | None:
    """Age of the oldest of these entries, from the start of the hour it was queued in (None: none)."""
    if not entry_ids:
        return None
    first_ms = min(int(entry_id.split("-", 1)[0]) for entry_id in entry_ids)
    return max(0.0, now - first_ms / 1000)


def job_counts(connection: redis.Redis) -> dict[str, tuple[int, int]]:
    """(queued, failed) jobs of each RQ queue the workers take."""
    counts = {}
    for queue_name in jobs.WORKER_QUEUES:
        queue = Queue(queue_name, connection=connection)
        counts[queue_name] = (queue.count, FailedJobRegistry(queue=queue).count)
    return counts


def seconds_since_clock_tick(connection: redis.Redis, now: float) -> float:
    """Seconds since the clock last ran its periodic work (+inf: never)."""
    last_tick = connection.get(keys.CLOCK_LAST_TICK)
    return max(0.0, now - float(as_text(last_tick))) if last_tick else float("inf")


class _InProcess:
    """This process's own counters, when it keeps them in memory (no metrics directory)."""

    def collect(self) -> Iterable[Metric]:
        return COUNTERS.collect()


def exposition(connection: redis.Redis) -> bytes:
    """One scrape in the Prometheus text format: every process's counters, then Redis's gauges."""
    registry = CollectorRegistry()
    if values.ValueClass is values.MutexValue:  # no metrics directory: counters live in memory
        registry.register(_InProcess())
    else:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated
    registry.register(RedisGauges(connection))
    return generate_latest(registry)
