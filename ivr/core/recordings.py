"""Recordings reaching us: from the status callback to a tip and one queued job.

One transaction (WATCH/MULTI) does it all or nothing: mark the recording seen, create the
tip (or add a part to it) marked "awaiting transcript", put a new tip in the handlers'
queue, and queue the transcription job. A repeated callback finds the recording seen and
does nothing: RQ itself would happily queue a second job with the same id.

The part also keeps the sealed handle (`TipStore.await_transcript`) until it is finished,
so the clock can queue its job again if the job is ever lost (`workers/stuck.py`).

A recording made by a caller who came back with their reference and proven PIN
(`CallState.proven`) joins their tip as a later part, answering the question they heard
(`CallState.question`), and brings the tip back to a handler (`ivr.core.follow_up`), in
the same transaction. If the tip is gone by then (shredded), nothing is lost: the
recording becomes a tip of its own, like a swept one.

The job carries a sealed handle (`ivr.core.jobs.RecordingHandle`), never raw provider sids: RQ
stores job arguments in Redis and keeps failed jobs, and the sids must not be readable there.
"""

from __future__ import annotations

import math

import redis

from ivr.core import keys
from ivr.core.call_state import CallState
from ivr.core.digest_moves import adopt, names
from ivr.core.follow_up import FollowUp
from ivr.core.jobs import JobArguments, RecordingHandle, enqueue_transcription
from ivr.core.prompts import Menus
from ivr.core.redis_values import as_bytes, as_text
from ivr.core.references import new_reference
from ivr.core.replication import ReplicaBarrier
from ivr.core.tips import PIN_HASHER, NewPart, TipStore
from ivr.core.transactions import atomically
from ivr.core.vault import KeyedDigest, Secrets

# The longest recording a call can make: <Record maxLength> (ivr.voice.script.RECORD_MAX_SECONDS,
# 600) plus a minute's margin. A duration beyond it is not believed (the edge drops it).
MAX_RECORDING_SECONDS = 660
# Whatever a callback says or the audio holds, no transcription runs longer than this.
MAX_TRANSCRIPTION_SECONDS = 120 + 2 * MAX_RECORDING_SECONDS


class RecordingIntake:
    """Turns an accepted recording into a tip part and exactly one queued job."""

    def __init__(self, secret_keys: Secrets, connection: redis.Redis, menus: Menus, tips: TipStore,
                 follow_up: FollowUp, replicas: ReplicaBarrier) -> None:
        self._redis = connection
        self._replicas = replicas
        self._menus = menus
        self._tips = tips
        self._follow_up = follow_up
        self._arguments = JobArguments(secret_keys)
        self.recording_key = KeyedDigest(secret_keys, "recording")

    def is_known(self, recording_sid: str) -> bool:
        """Has this recording reached us before (callback or sweep), under any SECRET_KEY listed?"""
        digests = self.recording_key.every(recording_sid)
        return bool(self._redis.exists(*names(digests, keys.recording_seen), *names(digests, keys.recording_part)))

    def part_of(self, recording_sid: str) -> bytes | None:
        """"<reference>:<part>" this recording became, or None; a marker made under an older
        SECRET_KEY is moved to the current name (the sweep asks this of every kept recording)."""
        digest = adopt(self._redis, self.recording_key.every(recording_sid), keys.recording_part, keys.recording_seen)
        part = self._redis.get(keys.recording_part(digest))
        return None if part is None else as_bytes(part)

    def accept(self, recording_sid: str, call_sid: str | None, duration_seconds: int | None,
               state: CallState) -> bool:
        """Store the recording as a tip part and queue its job, once; False for a repeat.

        `duration_seconds` is what the provider says; None (or a length no <Record> makes)
        is stored as 0 and the job gets the longest time limit, which the worker then
        shortens to fit the audio it fetched.

        Raises redis.RedisError when Redis is away: the caller answers 503 and the
        provider sweep (which lists recordings at the provider) finds it later.
        """
        if duration_seconds is not None and not 0 <= duration_seconds <= MAX_RECORDING_SECONDS:
            duration_seconds = None
        recording_key = self.recording_key(recording_sid)
        seen = keys.recording_seen(recording_key)
        # A repeat after a SECRET_KEY rotation finds the marker made under the old key.
        seen_before = names(self.recording_key.every(recording_sid), keys.recording_seen)
        # A swept recording gets a reference of its own.
        choices = state.choices if state.choices.reference else state.choices.but(reference=new_reference())
        reference = choices.reference or ""
        pin_hash = (state.pin_hash or PIN_HASHER.hash(state.pin)) if state.pin else None

        def store(pipe: redis.client.Pipeline) -> bool:
            nonlocal choices, reference
            if pipe.exists(*seen_before):
                return False
            existing_parts = self._tips.part_count(pipe, reference)
            returning = state.proven and existing_parts > 0 and bool(pipe.hget(keys.tip(reference), "wrapped_key"))
            if state.proven and not returning:  # the tip went meanwhile: a tip of its own
                choices = choices.but(reference=new_reference())
                reference, existing_parts = choices.reference or "", 0
            came_back = None
            if returning:  # the tip's own topic decides the queue (a proven call carries none)
                category = pipe.hget(keys.tip(reference), "category")
                choices = choices.but(category=as_text(category)) if category else choices
                came_back = self._follow_up.read_before_return(pipe, reference, state.question or None)
            urgent = self._menus.is_urgent(choices)
            pipe.multi()
            pipe.set(seen, 1, ex=keys.RECORDING_SEEN_SECONDS)
            part = self._tips.add_part(pipe, NewPart(
                choices=choices, pin_hash=pin_hash, channel="voice", urgent=urgent,
                seconds=duration_seconds or 0), existing_parts)
            if came_back is not None:
                self._follow_up.queue_return(pipe, reference, part, came_back)
            pipe.set(keys.recording_part(recording_key), f"{reference}:{part}")
            handle = RecordingHandle(recording_sid=recording_sid, call_sid=call_sid, choices=choices, part=part,
                                     duration_seconds=duration_seconds or 0)
            sealed = self._arguments.seal_handle(handle)
            self._tips.await_transcript(pipe, reference, part, sealed)
            self.queue_transcription(pipe, sealed, recording_key, duration_seconds, urgent)
            return True

        watched = [*seen_before, keys.tip(reference)]
        if state.proven:
            watched += [keys.questions(reference), keys.case(reference)]
        stored = atomically(self._redis, watched, store)
        # Accepted means on a replica too (NotReplicated, a RedisError, is "not stored": 503).
        self._replicas.confirm()
        return stored

    def queue_transcription(self, pipe: redis.client.Pipeline, sealed_handle: str, recording_key: str,
                            duration_seconds: float | None, urgent: bool) -> None:
        """Queue (inside the caller's MULTI) the one transcription job of a recording."""
        enqueue_transcription(self._redis, sealed_handle, keys.recording_job_id(recording_key),
                              transcription_timeout(duration_seconds), urgent, pipeline=pipe)

    def is_urgent(self, handle: RecordingHandle) -> bool:
        return self._menus.is_urgent(handle.choices)


def transcription_timeout(duration_seconds: float | None) -> int:
    """A job's time limit, bounded by the audio's length (inference cannot be interrupted)
    and by MAX_TRANSCRIPTION_SECONDS; an unknown length gets the ceiling."""
    if duration_seconds is None:
        return MAX_TRANSCRIPTION_SECONDS
    return min(MAX_TRANSCRIPTION_SECONDS, 120 + 2 * max(0, math.ceil(duration_seconds)))
