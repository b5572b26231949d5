"""The one transaction shape (`ivr.core.transactions.atomically`) and the one jobs module (`ivr.core.jobs`).

Every read-then-write on Redis goes through `atomically`, so these prove its contract on a
real Redis: a watched key changed by someone else makes the body run again from fresh
reads, the jobs a body queues exist once and only with the commit, a body that decides
there is nothing to write writes nothing, and endless contention ends in a clear error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis
from redis.client import Pipeline
from rq import Queue

from ivr.console.cases import Finished, NotYours
from ivr.core import jobs, keys
from ivr.core.choices import Choices
from ivr.core.jobs import FAILED_JOB_TTL, JobArguments, RecordingHandle
from ivr.core.transactions import TransactionContended, atomically
from tests.console_people import a_texted_tip

COUNTER = "tipline:test:counter"


def _bump(other: redis.Redis, times: int) -> tuple[Callable[[Pipeline], int], list[int]]:
    """A transaction body that reads the counter and writes it plus one; while `times` is
    left, another client changes the counter between the read and the EXEC."""
    attempts: list[int] = []

    def body(pipe: Pipeline) -> int:
        seen = int(pipe.get(COUNTER) or 0)
        attempts.append(seen)
        if len(attempts) <= times:
            other.incr(COUNTER, 10)  # someone else writes the watched key meanwhile
        pipe.multi()
        pipe.set(COUNTER, seen + 1)
        return seen + 1

    return body, attempts


def test_a_watched_key_changed_meanwhile_runs_the_body_again_from_fresh_reads(redis_client: redis.Redis) -> None:
    other = redis.Redis(connection_pool=redis_client.connection_pool)
    body, attempts = _bump(other, times=2)
    assert atomically(redis_client, [COUNTER], body) == 21
    assert attempts == [0, 10, 20]
    assert int(redis_client.get(COUNTER)) == 21


def test_contention_that_never_ends_is_an_error_not_a_spin(redis_client: redis.Redis) -> None:
    other = redis.Redis(connection_pool=redis_client.connection_pool)
    with pytest.raises(TransactionContended, match="1 watched key.*3 attempts"):
        atomically(redis_client, [COUNTER], _bump(other, times=3)[0], attempts=3)
    assert int(redis_client.get(COUNTER)) == 30  # only the other client's writes landed
    with pytest.raises(ValueError, match="attempts"):
        atomically(redis_client, [COUNTER], _bump(other, times=0)[0], attempts=0)


def test_a_body_that_returns_before_multi_writes_nothing(redis_client: redis.Redis) -> None:
    def nothing_to_do(pipe: Pipeline) -> str:
        pipe.get(COUNTER)
        return "already done"

    assert atomically(redis_client, [COUNTER], nothing_to_do) == "already done"
    assert redis_client.exists(COUNTER) == 0


def test_a_job_queued_inside_a_retried_transaction_is_queued_once(redis_client: redis.Redis) -> None:
    other = redis.Redis(connection_pool=redis_client.connection_pool)
    arguments = JobArguments("a test secret key that is long enough to be used")
    tries: list[int] = []

    def close(pipe: Pipeline) -> None:
        pipe.get(COUNTER)
        tries.append(1)
        if len(tries) == 1:
            other.incr(COUNTER)
        pipe.multi()
        jobs.enqueue_message_deletion(redis_client, arguments.seal_message_sids(["SM" + "a" * 32]), pipeline=pipe)

    atomically(redis_client, [COUNTER], close)
    assert len(tries) == 2
    assert len(Queue(keys.QUEUE_MESSAGES, connection=redis_client).jobs) == 1


def test_every_job_is_queued_with_its_policy_and_one_failed_job_ttl(redis_client: redis.Redis) -> None:
    arguments = JobArguments("a test secret key that is long enough to be used")
    handle = RecordingHandle(recording_sid="RE" + "b" * 32, call_sid="CA" + "c" * 32,
                             choices=Choices(language="en", category="drugs", reference="12345678"), part=1,
                             duration_seconds=30)
    sealed = arguments.seal_handle(handle)
    assert arguments.open_handle(sealed) == handle
    assert arguments.open_message_sids(arguments.seal_message_sids(["SM1"]).encode()) == ["SM1"]
    assert arguments.open_message_sids(None) == []
    jobs.enqueue_transcription(redis_client, sealed, "tipline-recording-x", 180, urgent=True)
    jobs.enqueue_call_deletion(redis_client, sealed)
    jobs.enqueue_reviewed_recordings_deletion(redis_client, "12345678")
    jobs.enqueue_message_deletion(redis_client, arguments.seal_message_sids(["SM1"]))
    queued = {job.func_name: job for name in jobs.WORKER_QUEUES
              for job in Queue(name, connection=redis_client).jobs}
    assert set(queued) == {jobs.TRANSCRIBE_RECORDING, jobs.DELETE_CALL, jobs.DELETE_REVIEWED_RECORDINGS,
                           jobs.DELETE_MESSAGES}
    assert {job.failure_ttl for job in queued.values()} == {FAILED_JOB_TTL}
    assert {job.result_ttl for job in queued.values()} == {0}
    assert queued[jobs.TRANSCRIBE_RECORDING].origin == keys.QUEUE_URGENT_RECORDINGS
    assert queued[jobs.TRANSCRIBE_RECORDING].timeout == 180
    assert queued[jobs.TRANSCRIBE_RECORDING].retries_left == jobs.TRANSCRIBE_RETRY.max
    assert queued[jobs.DELETE_MESSAGES].origin == keys.QUEUE_MESSAGES
    assert "RE" + "b" * 32 not in str(queued[jobs.DELETE_CALL].args)  # sealed, not readable in Redis


def test_eight_closes_at_once_leave_one_outcome_and_one_hotspot_count(app, twilio,
                                                                      redis_client: redis.Redis) -> None:
    """Given a tip a handler has summarised, when eight requests close it together (tabs,
    double clicks), then one closes it, the others are refused (finished, or no longer
    held once it left the queue), and it is counted once."""
    casework = app.extensions["console"].casework
    reference = a_texted_tip(twilio, "+447700900463",
                             ("Two men sell cocaine from a grey Golf outside the chip shop on Mare Street, "
                              "most evenings, and they keep it in the boot."))
    assert casework.claim_next("sam") == reference
    casework.save_summary(reference, "sam", "Two men sell drugs from a car.", "hackney", "drugs")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def close() -> None:
        barrier.wait()
        try:
            casework.close(reference, "sam", "duplicate")
            outcomes.append("closed")
        except (Finished, NotYours):  # NotYours: it left the queue between the lease check and ours
            outcomes.append("refused")

    threads = [threading.Thread(target=close) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["closed"] + ["refused"] * 7
    counts = [int(n) for key in redis_client.keys(keys.console_hotspots("*")) for n in redis_client.hvals(key)]
    assert counts == [1]
