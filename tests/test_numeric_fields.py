"""Numbers in signed webhooks are the provider's word, not the truth: parsed and bounded at
the edge, and a transcription's time limit is set by the audio actually fetched (finding 7)."""

from __future__ import annotations

import signal

import pytest
from rq import Queue

from dev.processes import run_worker_burst
from dev.standin.client import StandIn
from dev.twilio.calls import Call, TwilioLike, silence
from ivr.core import keys
from ivr.core.recordings import MAX_RECORDING_SECONDS, MAX_TRANSCRIPTION_SECONDS, transcription_timeout
from ivr.core.tips import NO_SPEECH
from ivr.edge import CallStep, InboundMessage, RecordingStatus, bounded_int
from ivr.voice.script import RECORD_MAX_SECONDS
from tests.conftest import PUBLIC_BASE_URL
from workers.recordings import limit_time_to_audio

NONSENSE = ["1000000000000", "9" * 5000, "-5", "1e9", "3.5", " 1_0 ", "١٢", "0x10", "\x00", "", "  ", "NaN"]


def test_a_recording_can_never_be_longer_than_the_limit_believed() -> None:
    assert RECORD_MAX_SECONDS < MAX_RECORDING_SECONDS <= RECORD_MAX_SECONDS + 120


@pytest.mark.parametrize("raw", NONSENSE)
def test_nonsense_numbers_are_not_numbers(raw: str) -> None:
    assert bounded_int(raw, MAX_RECORDING_SECONDS) is None
    assert RecordingStatus.from_request_values({"RecordingDuration": raw}, None).duration is None
    assert CallStep.from_request_values({"RecordingDuration": raw, "Digits": raw}, None).recording_seconds == 0


def test_plausible_values_pass_and_digits_are_keys_or_nothing() -> None:
    assert RecordingStatus.from_request_values({"RecordingDuration": " 42 "}, None).duration == 42
    assert RecordingStatus.from_request_values({"RecordingDuration": str(MAX_RECORDING_SECONDS)}, None).duration \
        == MAX_RECORDING_SECONDS
    assert RecordingStatus.from_request_values({"RecordingDuration": str(MAX_RECORDING_SECONDS + 1)}, None) \
        .duration is None
    for digits, expected in [("1", "1"), ("#", "#"), ("12*", "12*"), ("hangup", "hangup"), ("1\x00", None),
                             ("one", None), ("1" * 17, None), ("١", None)]:
        assert CallStep.from_request_values({"Digits": digits}, None).digits == expected


def test_a_nonsense_photo_count_is_refused_as_a_photo_not_a_crash(app) -> None:
    with app.test_request_context():
        for raw, expected in [("2", 2), ("0", 0), ("", 0), ("99999999999999999999", 1), ("-1", 1), ("x", 1)]:
            assert InboundMessage.from_request_values({"NumMedia": raw}, None).num_media == expected


def test_the_time_limit_has_a_ceiling_whatever_the_duration() -> None:
    assert transcription_timeout(30) == 180
    assert transcription_timeout(None) == MAX_TRANSCRIPTION_SECONDS
    assert transcription_timeout(10 ** 12) == MAX_TRANSCRIPTION_SECONDS
    assert MAX_TRANSCRIPTION_SECONDS < 3600


def test_the_running_job_gets_the_time_the_fetched_audio_needs() -> None:
    """RQ arms SIGALRM with the enqueued limit; the worker shortens it to fit the audio."""
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    try:
        signal.alarm(MAX_TRANSCRIPTION_SECONDS)
        assert limit_time_to_audio(10.2) == 120 + 2 * 11
        assert 0 < signal.alarm(0) <= 142
        signal.alarm(60)
        assert limit_time_to_audio(500) == 60  # never lengthened
        signal.alarm(0)
        assert limit_time_to_audio(10) == 0  # no alarm: not under RQ's death penalty
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("route,field", [("/voice/recorded", "RecordingDuration"), ("/voice/recorded", "Digits"),
                                         ("/voice/category", "Digits"), ("/voice/read-back", "Digits")])
def test_a_signed_step_with_nonsense_numbers_gets_twiml(twilio: TwilioLike, route: str, field: str) -> None:
    for raw in NONSENSE:
        answer = twilio.post(PUBLIC_BASE_URL + route, {"CallSid": "CA" + "0" * 32, field: raw})
        assert answer.status == 200 and "<Response>" in answer.body


def test_an_absurd_recording_duration_is_not_believed_and_the_recording_is_transcribed(
        caller: Call, twilio: TwilioLike, redis_client, standin: StandIn, environment, app) -> None:
    """A signed callback saying 10**12 seconds: on d90b4b0 the job's limit was 2e12 s and
    RQ's signal.alarm failed on every retry, leaving the part awaiting a transcript for ever."""
    caller.dials().presses("1").presses("1").records(audio=silence(3), deliver_callback=False)
    url, form = caller.pending_callbacks[0]
    assert twilio.post(url, {**form, "RecordingDuration": "1000000000000"}).status == 204
    (job,) = Queue(keys.QUEUE_RECORDINGS, connection=redis_client).jobs
    assert job.timeout == MAX_TRANSCRIPTION_SECONDS
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    (reference,) = app.extensions["tipline"].tips.queue.tip_ids()
    tip = app.extensions["tipline"].tips.get(reference)
    assert [(p.status, p.seconds) for p in tip.parts] == [(NO_SPEECH, 0)]
    assert standin.recordings() == []
