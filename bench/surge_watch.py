"""What the surge bench samples while it runs: transcripts, queue depths, memory.

One thread ticks every half second: it reads each awaited tip's first part's status (one
pipelined HGET per tip: a 600-tip surge must not load the machine it measures), the RQ
recording queues' depths, and the resident memory of each process the bench started (and
of its children: gunicorn's workers, RQ's scheduler), and the niceness each kind runs at.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import psutil
import redis
from rq import Queue

from ivr.core import keys
from ivr.core.redis_values import as_text
from ivr.core.tips import FINAL_PART_STATUSES

TICK_SECONDS = 0.5
FIRST_PART = "part:1:status"


@dataclass(frozen=True)
class DepthSample:
    at: float  # monotonic
    urgent: int
    other: int


@dataclass
class Watch:
    """Samples in a thread until stopped; `processes` maps each started pid to its kind."""

    connection: redis.Redis
    processes: dict[int, str]
    awaited: dict[str, float] = field(default_factory=dict)  # reference -> when it was first awaited
    finished: dict[str, tuple[float, str]] = field(default_factory=dict)  # reference -> (when, status)
    depths: list[DepthSample] = field(default_factory=list)
    peak_rss: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (kind, bytes)
    niceness: dict[str, int] = field(default_factory=dict)  # kind -> the niceness its first process runs at
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def await_transcript(self, reference: str) -> None:
        with self._lock:
            self.awaited.setdefault(reference, time.monotonic())

    def pending(self) -> list[str]:
        with self._lock:
            return [r for r in self.awaited if r not in self.finished]

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, name="surge-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        queues = {name: Queue(name, connection=self.connection) for name in keys.RECORDING_QUEUES}
        while not self._stop.wait(TICK_SECONDS):
            self._check_transcripts()
            now = time.monotonic()
            self.depths.append(DepthSample(at=now, urgent=queues[keys.QUEUE_URGENT_RECORDINGS].count,
                                           other=queues[keys.QUEUE_RECORDINGS].count))
            self._sample_memory()

    def _check_transcripts(self) -> None:
        pending = self.pending()
        if not pending:
            return
        pipe = self.connection.pipeline(transaction=False)
        for reference in pending:
            pipe.hget(keys.tip(reference), FIRST_PART)
        now = time.monotonic()
        for reference, raw in zip(pending, pipe.execute(), strict=True):
            status = as_text(raw) if raw else ""
            if status in FINAL_PART_STATUSES:
                with self._lock:
                    self.finished[reference] = (now, status)

    def _sample_memory(self) -> None:
        for pid, kind in list(self.processes.items()):
            try:
                parent = psutil.Process(pid)
                family = [parent, *parent.children(recursive=True)]
                self.niceness.setdefault(kind, parent.nice())
            except psutil.Error:
                continue
            for process in family:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                previous = self.peak_rss.get(process.pid, (kind, 0))[1]
                self.peak_rss[process.pid] = (kind, max(previous, rss))

    def peak_rss_by_kind(self) -> dict[str, tuple[int, int]]:
        """Each kind's largest peak RSS of one process, and how many processes of that kind there were."""
        by_kind: dict[str, list[int]] = defaultdict(list)
        for kind, rss in self.peak_rss.values():
            by_kind[kind].append(rss)
        return {kind: (max(values), len(values)) for kind, values in sorted(by_kind.items())}
