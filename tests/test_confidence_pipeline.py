"""A doubtful transcript through the real pipeline: its recording kept for a disguised listen
until a handler has reviewed it, within DOUBTFUL_AUDIO_MAX_PERCENT (the cap's arithmetic
over days is in test_confidence.py).

Real parts: speech from festival's HTS voice at telephone quality (dev.phone_audio), sox's
pink noise mixed in where the recogniser should be unsure, the recordings at the provider
stand-in, a real worker process with the real recogniser, a real Redis. What the tests
assert on is what the worker's recogniser returned (the words it stored), not on what was
said: tiny.en's mistakes are its own.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from dev.phone_audio import speak, with_noise
from dev.processes import run_worker_burst
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike
from ivr.core.confidence import doubtful_overall, words_as_json
from ivr.core.provider import Provider
from ivr.core.tips import READY, Part, TipStore
from tests.calls import leave_a_message
from tests.privacy import needles_for_text, scan_lines, scan_redis
from workers.context import WorkerContext
from workers.sweep import sweep_provider

pytestmark = pytest.mark.slow

CLEARLY_SPOKEN = "There is a man selling drugs outside the school on Station Road every Friday night."
IN_NOISE = "The chicken shop on Tooley Street is used to store stolen phones."
NOISE_SNR_DB = 5  # at 10 dB tiny.en already writes "Julie Street"; at 5 it is unsure of half the words


@pytest.fixture(scope="module")
def clear_speech() -> bytes:
    return speak(CLEARLY_SPOKEN)


@pytest.fixture(scope="module")
def noisy_speech() -> bytes:
    return with_noise(speak(IN_NOISE), NOISE_SNR_DB)


def message_left(twilio: TwilioLike, audio: bytes, number: str) -> tuple[str, str]:
    """A caller leaves `audio` as their message; returns (reference, recording sid)."""
    call = twilio.call(number)
    reference, _pin = leave_a_message(call, "1", "1", audio=audio)
    return reference, call.recordings[0].form["RecordingSid"]


def voice_part(tips: TipStore, reference: str) -> Part:
    tip = tips.get(reference)
    assert tip is not None
    return tip.parts[0]


def at_the_provider(standin: StandIn) -> set[str]:
    return {recording.sid for recording in standin.recordings()}


def test_a_doubtful_transcript_keeps_its_recording_until_reviewed_within_the_cap(
        app, twilio, environment, standin, redis_client, clear_speech, noisy_speech, casework) -> None:
    """Given the cap at 1% (at least one kept), a clear message, then two doubtful ones."""
    tips: TipStore = app.extensions["tipline"].tips
    clear, clear_sid = message_left(twilio, clear_speech, "+447700900493")
    doubtful, doubtful_sid = message_left(twilio, noisy_speech, "+447700900494")
    over_cap, over_cap_sid = message_left(twilio, noisy_speech, "+447700900495")
    worker = run_worker_burst({**environment, "DOUBTFUL_AUDIO_MAX_PERCENT": "1"})  # it takes them in order
    assert worker.returncode == 0, worker.stderr[-3000:]

    # A clearly spoken message: sure of it overall, its words spell its text, its recording gone.
    sure = voice_part(tips, clear)
    assert sure.status == READY and sure.words and not sure.doubtful and not sure.audio_kept
    assert "".join(word.text for word in sure.words).strip() == sure.transcript
    assert clear_sid not in at_the_provider(standin)
    # The same kind of message in noise: stored as usual, marked, and its recording kept.
    unsure = voice_part(tips, doubtful)
    assert unsure.status == READY and unsure.transcript, "the noisy message must still be transcribed"
    assert doubtful_overall(unsure.words), f"tiny.en was sure of the noisy message: {unsure.words}"
    assert unsure.audio_kept and any(piece.doubtful for piece in unsure.marked)
    assert doubtful_sid in at_the_provider(standin)
    # The second doubtful one is over the cap: stored and marked all the same, its recording deleted.
    over = voice_part(tips, over_cap)
    assert over.status == READY and over.doubtful and any(piece.doubtful for piece in over.marked)
    assert not over.audio_kept and over_cap_sid not in at_the_provider(standin)
    said_over_the_cap = [line for line in worker.stderr.splitlines() if "deleted as usual" in line]
    assert len(said_over_the_cap) == 1 and "DOUBTFUL_AUDIO_MAX_PERCENT" in said_over_the_cap[0]
    # The words and their probabilities are ciphertext in Redis, like the transcript; the log names nothing.
    stored = {words_as_json(part.words) for part in (sure, unsure, over)}
    said = needles_for_text(sure.transcript or "", stored_in_clear=["drugs"]) | stored
    assert scan_redis(redis_client, said | {f"{word.probability:.3f}]" for word in unsure.words}) == []
    named = {clear, doubtful, over_cap, clear_sid, doubtful_sid, over_cap_sid}
    assert scan_lines(worker.stderr.splitlines(), said | named) == []

    # The clock's sweep of the provider leaves the kept recording alone.
    with Provider(app.extensions["tipline"].settings) as provider:
        sweep_provider(WorkerContext(core=app.extensions["tipline"], provider=provider), grace=timedelta(0))
    assert doubtful_sid in at_the_provider(standin)

    # All three were queued for handlers as usual. A handler reviews the doubtful one (closes
    # it here); the next worker run deletes its recording at the provider, then its handle.
    assert {casework.claim_next("sam") for _ in range(3)} == {clear, doubtful, over_cap}
    casework.close(doubtful, "sam", next(iter(casework._catalogue.close_reasons)))
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert doubtful_sid not in at_the_provider(standin)
    assert not voice_part(tips, doubtful).audio_kept and voice_part(tips, doubtful).words == unsure.words
