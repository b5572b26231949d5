"""A handler listens to a recording that could not be transcribed: a disguised copy, never stored.

Real parts: a caller leaves a message spoken by festival's natural voice at 8 kHz through the voice line
(the recording is held at the provider stand-in, the tip in a real Redis); the part is
kept for a person as the worker keeps it (one test runs the real worker for that); the
copy is fetched from the stand-in and disguised by the real sox. What is measured is the
audio itself: its format and length, how little it resembles the original, and how far
the voice's pitch went down.
"""

from __future__ import annotations

import io
import math
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from config.settings import Settings
from dev.phone_audio import samples, speak
from dev.processes import run_worker_burst
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike
from ivr.console.listening import NothingToHear, disguised_recording
from ivr.core.audio import AudioError
from ivr.core.audio.disguise import PITCH_SHIFT_CENTS
from ivr.core.audio.wav import read_wav_format
from ivr.core.provider import Provider, ProviderUnavailable, RecordingNotFound
from ivr.core.tips import AWAITING_LANGUAGE, NO_SPEECH, READY, TRANSCRIPTION_FAILED, TipStore
from tests.calls import codes_heard, leave_a_message
from tests.conftest import CALLER_NUMBER

MESSAGE = "There is a man selling drugs outside the school on Station Road every Friday night."
POLISH_MESSAGE = "Na rogu ulicy przy szkole sprzedają narkotyki w każdy piątek wieczorem."
# Passes the provider client's check (a RIFF/WAVE header) but holds no audio: what the
# worker gives up on after its retries (tests/test_pipeline.py does the same).
UNREADABLE = b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 50
LANGUAGE_DIGITS = {"en": "1", "pl": "3"}
RECORDING_FETCH = r"/Recordings/RE[0-9a-f]{32}\.wav$"


@pytest.fixture(scope="module")
def spoken_message() -> bytes:
    return speak(MESSAGE, "en")


@pytest.fixture
def tips(app) -> TipStore:
    return app.extensions["tipline"].tips


@pytest.fixture
def provider(settings: Settings) -> Iterator[Provider]:
    with Provider(settings) as client:
        yield client


@pytest.fixture
def private_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is every temporary directory this process and its children would use."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    for name in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.setenv(name, str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# --- Arranging: a message the worker could not transcribe ---------------------------------

def message_left(twilio: TwilioLike, audio: bytes, language: str = "en") -> tuple[str, str]:
    """A caller leaves `audio` as their message; returns (reference, recording sid)."""
    call = twilio.call(CALLER_NUMBER)
    reference, _pin = leave_a_message(call, LANGUAGE_DIGITS[language], "1", audio=audio)
    return reference, call.recordings[0].form["RecordingSid"]


def unreadable_message_left(twilio: TwilioLike, standin: StandIn) -> tuple[str, str]:
    """A message whose recording at the provider is not audio; returns (reference, recording sid)."""
    call = twilio.call(CALLER_NUMBER).dials().presses("1").presses("1")
    reference, _pin = codes_heard(call.heard_since_last_step())
    call.records(seconds=20, deliver_callback=False)
    recording_sid = call.pending_callbacks[0][1]["RecordingSid"]
    standin.put_recording(recording_sid, call.sid, UNREADABLE, 20)
    call.deliver_recording_callbacks()
    return reference, recording_sid


def kept_for_a_person(tips: TipStore, reference: str, recording_sid: str) -> None:
    """What workers.recordings does after the last failed try: the part fails, the recording is kept."""
    tips.finish_part(reference, 1, TRANSCRIPTION_FAILED, kept_audio={"recording_sid": recording_sid})


# --- Measuring what the handler hears -----------------------------------------------------

def median_pitch_hz(wav: bytes) -> float:
    """The voice's median fundamental frequency: autocorrelation over its loud, voiced 40 ms frames."""
    pcm = samples(wav).astype(np.float64)
    rate = read_wav_format(wav).sample_rate
    frame, loud = int(0.04 * rate), np.sqrt(np.mean(pcm ** 2))
    shortest_lag, longest_lag = rate // 400, rate // 60  # voices between 60 and 400 Hz
    pitches = []
    for start in range(0, len(pcm) - frame, frame // 2):
        window = pcm[start:start + frame] - pcm[start:start + frame].mean()
        if np.sqrt(np.mean(window ** 2)) < loud:
            continue
        autocorrelation = np.correlate(window, window, "full")[frame - 1:]
        lag = shortest_lag + int(np.argmax(autocorrelation[shortest_lag:longest_lag]))
        if autocorrelation[lag] > 0.5 * autocorrelation[0]:  # periodic: a voiced sound
            pitches.append(rate / lag)
    assert len(pitches) >= 20, "too few voiced frames to measure a pitch"
    return float(np.median(pitches))


def assert_is_a_disguised_copy(copy: bytes, original: bytes) -> None:
    """Same format, rate and length (within 1%), but other samples and a voice lower by the shift."""
    with wave.open(io.BytesIO(copy)) as heard:
        assert (heard.getnchannels(), heard.getsampwidth()) == (1, 2)
        assert heard.getframerate() == read_wav_format(original).sample_rate
    assert read_wav_format(copy).duration_seconds == pytest.approx(read_wav_format(original).duration_seconds,
                                                                   rel=0.01)
    original_pcm, copy_pcm = samples(original), samples(copy)
    length = min(len(original_pcm), len(copy_pcm))
    assert abs(np.corrcoef(original_pcm[:length], copy_pcm[:length])[0, 1]) < 0.3
    shift_semitones = 12 * math.log2(median_pitch_hz(copy) / median_pitch_hz(original))
    assert shift_semitones == pytest.approx(PITCH_SHIFT_CENTS / 100, abs=1.0)  # about 4 semitones down


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}


def requests_for(standin: StandIn, recording_sid: str, since: int = 0) -> list[str]:
    """The methods of the API requests the stand-in answered about this recording, in order."""
    return [entry.method for entry in standin.log()
            if entry.seq > since and entry.method != "ADMIN" and recording_sid in entry.path]


def last_seq(standin: StandIn) -> int:
    return max((entry.seq for entry in standin.log()), default=0)


# --- Hearing it ---------------------------------------------------------------------------

def test_a_handler_hears_a_disguised_copy_and_nothing_is_written_or_deleted(
        twilio, tips, provider, standin, spoken_message, private_tmpdir, tmp_path) -> None:
    reference, recording_sid = message_left(twilio, spoken_message)
    kept_for_a_person(tips, reference, recording_sid)
    files_before, since = files_under(tmp_path), last_seq(standin)

    copy = disguised_recording(tips, provider, reference, 1)

    assert_is_a_disguised_copy(copy, spoken_message)
    assert requests_for(standin, recording_sid, since) == ["GET"]  # fetched once, never deleted
    assert [e.method for e in standin.log() if e.seq > since and e.method == "DELETE"] == []
    assert recording_sid in {r.sid for r in standin.recordings()}  # it stays until the review is done
    assert list(private_tmpdir.iterdir()) == []
    assert files_under(tmp_path) == files_before  # the app's var/ folder included


def test_each_listening_fetches_the_recording_again(twilio, tips, provider, standin, spoken_message) -> None:
    reference, recording_sid = message_left(twilio, spoken_message)
    kept_for_a_person(tips, reference, recording_sid)
    first = disguised_recording(tips, provider, reference, 1)
    second = disguised_recording(tips, provider, reference, 1)
    assert first == second  # the same copy, made afresh: nothing was kept to serve it from
    assert requests_for(standin, recording_sid) == ["GET", "GET"]


# --- Nothing to hear ----------------------------------------------------------------------

@pytest.mark.parametrize(("outcome", "because"), [
    (lambda tips, ref, sid: tips.finish_part(ref, 1, READY, transcript=MESSAGE), "transcribed"),
    (lambda tips, ref, sid: tips.finish_part(ref, 1, READY, transcript=MESSAGE,
                                             kept_audio={"recording_sid": sid}), "transcribed"),
    (lambda tips, ref, sid: tips.finish_part(ref, 1, NO_SPEECH), "no speech"),
    (lambda tips, ref, sid: None, "still being transcribed"),
    (lambda tips, ref, sid: tips.finish_part(ref, 1, TRANSCRIPTION_FAILED), "no recording was kept"),
], ids=["transcribed", "transcribed, a handle left behind", "no speech", "not transcribed yet",
        "failed, gone at the provider"])
def test_a_part_without_a_kept_recording_has_nothing_to_hear(twilio, tips, provider, standin,
                                                             spoken_message, outcome, because) -> None:
    reference, recording_sid = message_left(twilio, spoken_message)
    outcome(tips, reference, recording_sid)
    with pytest.raises(NothingToHear, match=because):
        disguised_recording(tips, provider, reference, 1)
    assert requests_for(standin, recording_sid) == []  # the provider was not even asked


@pytest.mark.parametrize("part_index", [0, 2])
def test_a_part_that_does_not_exist_has_nothing_to_hear(twilio, tips, provider, spoken_message,
                                                        part_index) -> None:
    reference, recording_sid = message_left(twilio, spoken_message)
    kept_for_a_person(tips, reference, recording_sid)
    with pytest.raises(NothingToHear, match="no such tip part"):
        disguised_recording(tips, provider, reference, part_index)


def test_an_unknown_reference_has_nothing_to_hear(tips, provider) -> None:
    with pytest.raises(NothingToHear, match="no such tip part"):
        disguised_recording(tips, provider, "12345678903", 1)


# --- Failures the console must explain ----------------------------------------------------

def test_a_recording_gone_at_the_provider_is_the_providers_error(twilio, tips, provider, standin,
                                                                 spoken_message) -> None:
    reference, recording_sid = message_left(twilio, spoken_message)
    kept_for_a_person(tips, reference, recording_sid)
    provider.delete_recording(recording_sid)
    with pytest.raises(RecordingNotFound):
        disguised_recording(tips, provider, reference, 1)


def test_a_provider_that_is_away_is_the_providers_error(twilio, tips, provider, standin,
                                                        spoken_message) -> None:
    reference, recording_sid = message_left(twilio, spoken_message)
    kept_for_a_person(tips, reference, recording_sid)
    standin.fail_next("GET", RECORDING_FETCH, status=503)
    with pytest.raises(ProviderUnavailable):
        disguised_recording(tips, provider, reference, 1)
    assert recording_sid in {r.sid for r in standin.recordings()}


def test_a_recording_that_is_not_audio_is_an_audio_error(twilio, tips, provider, standin,
                                                         private_tmpdir) -> None:
    reference, recording_sid = unreadable_message_left(twilio, standin)
    kept_for_a_person(tips, reference, recording_sid)
    with pytest.raises(AudioError):
        disguised_recording(tips, provider, reference, 1)
    assert requests_for(standin, recording_sid) == ["GET"]
    assert recording_sid in {r.sid for r in standin.recordings()}
    assert list(private_tmpdir.iterdir()) == []


# --- The whole story, with the real worker ------------------------------------------------

@pytest.mark.slow
def test_a_message_the_worker_kept_for_a_person_is_heard_disguised(twilio, tips, provider, standin,
                                                                  environment) -> None:
    """Given a Polish message the model cannot transcribe, kept by a real worker, a handler hears it disguised."""
    original = speak(POLISH_MESSAGE, "pl")
    reference, recording_sid = message_left(twilio, original, language="pl")
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert tips.part_status(reference, 1) == AWAITING_LANGUAGE

    copy = disguised_recording(tips, provider, reference, 1)

    assert_is_a_disguised_copy(copy, original)
    assert requests_for(standin, recording_sid) == ["GET"]  # the worker never fetched it; the handler once
    assert recording_sid in {r.sid for r in standin.recordings()}
