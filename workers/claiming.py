"""Taking a job off a queue without a moment in which it belongs to nobody.

RQ's worker listening on several queues takes a job with BLPOP and only then, in a second
command, enters it in the started registry. A worker SIGKILLed between the two, or Redis
dying between them with the pop already in its append-only file, leaves a job that is in
no queue and no registry: nothing would ever run it, and its tip part stayed "awaiting
transcript" for ever (issue 9, finding 12). RQ closes that gap only for a worker on a
single queue (LMOVE into the queue's intermediate list). `ClaimingQueue` does the same for
our several queues, in priority order: each job moves atomically from its queue into that
queue's intermediate list, where `workers.recovery.requeue_unclaimed` finds it if the
worker dies before the started registry has it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import DequeueTimeout, NoSuchJobError
from rq.job import Job
from rq.utils import as_text

# How often an idle worker looks at its queues again (BLMOVE can wait on one list only).
POLL_SECONDS = 0.2


class ClaimingQueue(Queue):
    """A queue whose workers claim jobs with LMOVE into its intermediate list (never a bare pop)."""

    @classmethod
    def dequeue_any(cls, queues: Iterable[Queue], timeout: int | None, connection: Redis,
                    job_class: type[Job] | None = None, serializer: Any = None,
                    death_penalty_class: Any = None) -> tuple[Job, Queue] | None:
        """The first job of the first non-empty queue (in the order given), claimed atomically.

        timeout None: look once (burst mode); otherwise look until it passes, then raise
        DequeueTimeout as RQ's own dequeue does (the worker heartbeats and asks again).
        """
        ordered = list(queues)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for queue in ordered:
                job_id = connection.lmove(queue.key, queue.intermediate_queue_key, "LEFT", "RIGHT")
                if job_id is None:
                    continue
                try:
                    job = (job_class or Job).fetch(as_text(job_id), connection=connection, serializer=serializer)
                except NoSuchJobError:
                    connection.lrem(queue.intermediate_queue_key, 1, as_text(job_id))
                    continue
                return job, cls.from_queue_key(queue.key, connection=connection, job_class=job_class,
                                               serializer=serializer, death_penalty_class=death_penalty_class)
            if deadline is None:
                return None
            if time.monotonic() >= deadline:
                raise DequeueTimeout(timeout, [queue.key for queue in ordered])
            time.sleep(POLL_SECONDS)
