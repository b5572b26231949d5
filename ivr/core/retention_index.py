"""Where else a tip's reference is written, gathered once per retention run.

Three places name a tip from outside its own keys, and none is named by the tip:
- the handlers' queue streams keep an entry per tip (a finished tip's is acknowledged,
  not deleted), field `tip` = the reference;
- `keys.recording_part` markers (named by a recording sid's keyed digest) hold
  "<reference>:<part>", and `keys.sms_closed` markers (a few minutes after DONE) the reference;
- RQ jobs (queued, scheduled for a retry, or failed and kept FAILED_JOB_TTL) carry a
  reference, in clear (`DELETE_REVIEWED_RECORDINGS`) or inside a sealed recording handle.

A reverse index kept beside each would have to be written by every intake path; instead
a run reads each place once (SCAN and XRANGE, batched) and maps reference to what names it.
That is O(streams + recordings + jobs) once a day, for the clock and the CLI only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from ivr.core import keys
from ivr.core.jobs import (
    DELETE_CALL,
    DELETE_REVIEWED_RECORDINGS,
    TRANSCRIBE_RECORDING,
    WORKER_QUEUES,
    JobArguments,
)
from ivr.core.redis_values import StreamEntry, as_text
from ivr.core.vault import VaultError

SCAN_BATCH = 500
_RECORDING_PART_PREFIX = keys.recording_part("")


@dataclass
class Mentions:
    """What names each tip outside its own keys: stream entries, recording markers, jobs."""

    entries: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    recordings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # recording keys
    markers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # sms_closed key names
    jobs: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # RQ job ids


def gather(connection: redis.Redis, arguments: JobArguments, wanted: set[str]) -> Mentions:
    """Every mention of the tips in `wanted` (references)."""
    found = Mentions()
    if not wanted:
        return found
    for stream in keys.HANDLER_QUEUES:
        last = "-"
        while True:
            batch = cast("list[StreamEntry]", connection.xrange(stream, min=last, max="+", count=SCAN_BATCH))
            for entry_id, fields in batch:
                tip = as_text(fields.get(b"tip", b""))
                if tip in wanted:
                    found.entries[tip].append((stream, as_text(entry_id)))
            if len(batch) < SCAN_BATCH:
                break
            last = "(" + as_text(batch[-1][0])
    for name, value in _values(connection, keys.recording_part("*")):
        reference = value.rpartition(":")[0]
        if reference in wanted:
            found.recordings[reference].append(name.removeprefix(_RECORDING_PART_PREFIX))
    for name, value in _values(connection, keys.sms_closed("*")):
        if value in wanted:
            found.markers[value].append(name)
    for queue_name in WORKER_QUEUES:
        queue = Queue(queue_name, connection=connection)
        job_ids = {*queue.get_job_ids(), *FailedJobRegistry(queue=queue).get_job_ids(),
                   *ScheduledJobRegistry(queue=queue).get_job_ids()}  # type: ignore[no-untyped-call]
        for job_id in sorted(job_ids):
            named = _reference_of(connection, arguments, job_id)
            if named in wanted:
                found.jobs[str(named)].append(job_id)
    return found


def _values(connection: redis.Redis, pattern: str) -> Iterator[tuple[str, str]]:
    """(name, value) of every string key matching `pattern`, read in batches."""
    names = [as_text(name) for name in connection.scan_iter(match=pattern, count=SCAN_BATCH)]
    for start in range(0, len(names), SCAN_BATCH):
        chunk = names[start:start + SCAN_BATCH]
        for name, value in zip(chunk, connection.mget(chunk), strict=True):
            if value is not None:
                yield name, as_text(value)


def _reference_of(connection: redis.Redis, arguments: JobArguments, job_id: str) -> str | None:
    """The tip a job names, if any (a sealed handle opened; one sealed under an old key names none we can read)."""
    try:
        job = Job.fetch(job_id, connection=connection)
        if job.func_name == DELETE_REVIEWED_RECORDINGS:
            return str(job.args[0])
        if job.func_name in (TRANSCRIBE_RECORDING, DELETE_CALL):
            return arguments.open_handle(str(job.args[0])).reference
    except (NoSuchJobError, VaultError, ValueError, KeyError, IndexError, TypeError):
        return None
    return None


def delete_jobs(connection: redis.Redis, job_ids: list[str]) -> int:
    """Delete jobs (from their queue and every registry); returns how many were still there."""
    deleted = 0
    for job_id in job_ids:
        try:
            Job.fetch(job_id, connection=connection).delete()
            deleted += 1
        except NoSuchJobError:
            continue
    return deleted
