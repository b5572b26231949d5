"""A recording becomes an encrypted tip, exactly once, and the audio is gone.

Real parts throughout: speech made by festival's natural voice at 8 kHz, stored at the provider stand-in,
fetched and transcribed by a real worker process with the real recogniser, committed to a
real Redis; worker processes are killed with SIGKILL in the middle of provider requests.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from dev.phone_audio import speak
from dev.processes import kill_worker_inside_provider_call, process_environment, run_worker_burst, start
from dev.standin.client import StandIn
from dev.twilio.calls import Call, TwilioLike
from dev.word_errors import normalised_words
from ivr.core import keys
from ivr.core.tips import AWAITING_LANGUAGE, AWAITING_TRANSCRIPT, NO_SPEECH, READY, TRANSCRIPTION_FAILED, Tip, TipStore
from tests.calls import codes_heard
from tests.conftest import CALLER_NUMBER
from tests.privacy import needles_for_number, needles_for_text, scan_files, scan_lines, scan_redis
from workers.speech import Recogniser

pytestmark = pytest.mark.slow

MESSAGE = "There is a man selling drugs outside the school on Station Road every Friday night."
# Every one must survive the line and the recogniser (festival's voice: tests/test_speech.py).
MESSAGE_WORDS = {"man", "selling", "drugs", "outside", "school", "station", "road", "friday", "night"}


LANGUAGES = {"1": "en", "2": "cy", "3": "pl"}


def call_with_speech(twilio: TwilioLike, language: str = "1", category: str = "1", text: str = MESSAGE,
                     deliver_callback: bool = True) -> tuple[str, dict, Call]:
    """A whole call whose message is real speech; returns (reference, the callback's form, the call)."""
    call = twilio.call(CALLER_NUMBER).dials().presses(language).presses(category)
    reference, _ = codes_heard(call.heard_since_last_step())
    call.records(audio=speak(text, LANGUAGES[language]), deliver_callback=deliver_callback)
    form = call.recordings[0].form if deliver_callback else call.pending_callbacks[0][1]
    call.presses("9")
    return reference, form, call


def tip_of(app, reference: str) -> Tip:
    tips: TipStore = app.extensions["tipline"].tips
    tip = tips.get(reference)
    assert tip is not None
    return tip


def release_scheduled_retries(connection: redis.Redis) -> int:
    """Time passes: retries RQ scheduled for later are queued now."""
    released = 0
    for name in keys.RECORDING_QUEUES:
        queue = Queue(name, connection=connection)
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id)
            queue.enqueue_job(Job.fetch(job_id, connection=connection))
            released += 1
    return released


def heard_in(recogniser: Recogniser, wav: bytes, language: str = "en") -> str:
    """What the worker's recogniser makes of `wav`: the transcript a whole pipeline must store,
    byte for byte (what was said is compared with it by key words: MESSAGE_WORDS)."""
    transcript = recogniser.transcribe(wav, language)
    assert transcript.speech_detected and transcript.text, "the recogniser heard nothing: nothing to compare with"
    return transcript.text


def deleted(standin: StandIn, kind: str, sid: str) -> list[int]:
    """The sequence numbers of successful DELETEs of a recording or call."""
    return [r.seq for r in standin.log() if r.method == "DELETE" and f"/{kind}/{sid}" in r.path and r.status < 300]


def test_a_call_becomes_a_readable_transcript_and_the_audio_is_gone(twilio, app, environment, standin,
                                                                    redis_client, redis_files, log_lines,
                                                                    speech_recogniser) -> None:
    reference, form, _ = call_with_speech(twilio)
    assert tip_of(app, reference).status == AWAITING_TRANSCRIPT
    served = standin.recording_audio(form["RecordingSid"])  # the WAV the worker is about to fetch
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]

    tip = tip_of(app, reference)
    assert tip.status == READY
    assert tip.transcript == heard_in(speech_recogniser, served)  # all of the recording, nothing else
    assert MESSAGE_WORDS <= set(normalised_words(tip.transcript)), tip.transcript
    assert form["RecordingSid"] not in {r.sid for r in standin.recordings()}
    assert deleted(standin, "Recordings", form["RecordingSid"]) and deleted(standin, "Calls", form["CallSid"])
    # The transcript, as really stored (opened through the TipStore), is ciphertext in Redis,
    # in RQ's job data and in the AOF; nothing of the call is left in clear anywhere.
    said = needles_for_text(tip.transcript, stored_in_clear=[tip.category])
    assert scan_redis(redis_client, said) == [] and scan_files(redis_files, said) == []
    sids = {form["RecordingSid"], form["CallSid"]}
    lines = log_lines.lines + worker.stderr.splitlines()
    needles = needles_for_number(CALLER_NUMBER)
    assert scan_redis(redis_client, needles | sids) == []
    assert scan_lines(lines, needles | sids) == []
    assert scan_files(redis_files, needles | sids) == []
    # No audio left on disk: the worker's temporary files go under var/ (TMPDIR); onnxruntime
    # leaves a small `.ses` session file there, which is not audio.
    var = Path(environment["TIPLINE_VAR_DIR"])
    assert scan_files(var, needles | sids | said) == []
    assert [p for p in var.rglob("*") if p.is_file() and (p.suffix in (".wav", ".mp3", ".ogg")
                                                          or p.read_bytes()[:4] == b"RIFF")] == []


def test_the_recording_is_deleted_only_after_the_tip_is_committed(twilio, app, environment, standin) -> None:
    reference, form, _ = call_with_speech(twilio)
    standin.hold("DELETE", f"/Recordings/{form['RecordingSid']}")
    worker = start([sys.executable, "-m", "workers.run", "--burst"], process_environment(environment),
                   Path(environment["TIPLINE_VAR_DIR"]).parent / "worker.log")
    try:
        standin.wait_until_held(1, timeout_seconds=60)
        assert tip_of(app, reference).status == READY  # committed before the provider's copy goes
        standin.release()
        assert worker.wait(timeout=60) == 0
    finally:
        standin.release()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert form["RecordingSid"] not in {r.sid for r in standin.recordings()}


@pytest.mark.parametrize("method, path, after", [
    ("GET", "/Recordings/{recording}", False),  # killed while fetching the audio
    ("DELETE", "/Recordings/{recording}", False),  # killed after the commit, before the deletion
    ("DELETE", "/Recordings/{recording}", True),  # killed after the deletion, before the call's
    ("DELETE", "/Calls/{call}", False),  # killed while deleting the call log
])
def test_a_worker_killed_mid_job_still_ends_with_one_tip_and_no_audio(twilio, app, environment, standin, redis_client,
                                                                       tmp_path, method, path, after) -> None:
    reference, form, _ = call_with_speech(twilio)
    standin.hold(method, path.format(recording=form["RecordingSid"], call=form["CallSid"]), times=1, after=after)
    kill_worker_inside_provider_call(standin, environment, tmp_path / "killed-worker.log", burst=True)
    again = run_worker_burst(environment)  # hands back the abandoned job at start, then runs it
    assert again.returncode == 0, again.stderr[-3000:]
    if release_scheduled_retries(redis_client):
        again = run_worker_burst(environment)
        assert again.returncode == 0, again.stderr[-3000:]

    assert app.extensions["tipline"].tips.queue.tip_ids() == [reference]  # queued exactly once
    tip = tip_of(app, reference)
    assert tip.status == READY and len(tip.parts) == 1
    assert form["RecordingSid"] not in {r.sid for r in standin.recordings()}
    assert standin.calls().get(form["CallSid"]) is None
    assert redis_client.keys("rq:job:*") == [] or all(
        not redis_client.exists(k) for k in redis_client.keys("rq:job:*"))


def test_repeated_callbacks_make_one_tip_and_one_transcription(twilio, app, environment, standin) -> None:
    reference, form, _ = call_with_speech(twilio)
    url = next(r.url for r in twilio.requests if "/voice/recording-status" in r.url)
    for _ in range(3):
        assert twilio.post(url, form).status == 204
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    fetches = [r for r in standin.log() if r.method == "GET" and form["RecordingSid"] in r.path]
    assert len(fetches) == 1
    assert app.extensions["tipline"].tips.queue.tip_ids() == [reference]


def test_a_provider_error_is_retried_and_then_succeeds(twilio, app, environment, standin, redis_client) -> None:
    reference, form, _ = call_with_speech(twilio)
    standin.fail_next("GET", f"/Recordings/{form['RecordingSid']}", status=500)
    first = run_worker_burst(environment)
    assert first.returncode == 0, first.stderr[-3000:]
    assert tip_of(app, reference).status == AWAITING_TRANSCRIPT
    assert release_scheduled_retries(redis_client) == 1
    second = run_worker_burst(environment)
    assert second.returncode == 0, second.stderr[-3000:]
    assert tip_of(app, reference).status == READY
    assert form["RecordingSid"] not in {r.sid for r in standin.recordings()}


def test_silence_is_stored_as_no_speech_and_deleted(twilio, app, environment, standin) -> None:
    call = twilio.call(CALLER_NUMBER).dials().presses("1").presses("5")
    reference, _ = codes_heard(call.heard_since_last_step())
    call.records(seconds=8)  # the stand-in stores eight seconds of silence
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    tip = tip_of(app, reference)
    assert tip.status == NO_SPEECH and tip.transcript == ""
    assert standin.recordings() == []


def test_corrupt_audio_is_retried_then_kept_for_a_person(twilio, app, environment, standin, redis_client) -> None:
    call = twilio.call(CALLER_NUMBER).dials().presses("1").presses("2")
    reference, _ = codes_heard(call.heard_since_last_step())
    call.records(seconds=20, deliver_callback=False)
    recording_sid = call.pending_callbacks[0][1]["RecordingSid"]
    standin.put_recording(recording_sid, call.sid, b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 50, 20)
    call.deliver_recording_callbacks()
    for _attempt in range(4):  # the first try and three retries
        worker = run_worker_burst(environment)
        assert worker.returncode == 0, worker.stderr[-3000:]
        release_scheduled_retries(redis_client)
    tip = tip_of(app, reference)
    assert tip.status == TRANSCRIPTION_FAILED
    assert recording_sid in {r.sid for r in standin.recordings()}  # NOT deleted: it awaits a person
    assert app.extensions["tipline"].tips.kept_audio(reference, 1) == {"recording_sid": recording_sid}
    assert scan_redis(redis_client, {recording_sid}) == []  # kept only as ciphertext


def test_a_language_the_model_does_not_cover_is_kept_not_guessed(twilio, app, environment, standin) -> None:
    reference, form, _ = call_with_speech(twilio, language="3", text="Na rogu ulicy sprzedają narkotyki.")
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    tip = tip_of(app, reference)
    assert tip.status == AWAITING_LANGUAGE and tip.transcript == ""
    assert form["RecordingSid"] in {r.sid for r in standin.recordings()}
    assert standin.calls().get(form["CallSid"]) is None  # the call log, which holds the number, is gone


def test_the_recording_url_in_the_callback_is_never_followed(twilio, app, environment, standin) -> None:
    visits: list[str] = []

    class Trap(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            visits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    try:
        reference, form, call = call_with_speech(twilio, deliver_callback=False)
        (callback_url, fields), = call.pending_callbacks
        evil = f"http://127.0.0.1:{trap.server_address[1]}/steal.wav"
        assert twilio.post(callback_url, {**fields, "RecordingUrl": evil}).status == 204
        worker = run_worker_burst(environment)
        assert worker.returncode == 0, worker.stderr[-3000:]
    finally:
        trap.shutdown()
        trap.server_close()
    assert visits == []
    assert tip_of(app, reference).status == READY


def test_a_callback_lost_while_redis_was_down_is_found_by_the_sweep(twilio, app, environment, standin,
                                                                  redis_server, redis_client,
                                                                  speech_recogniser) -> None:
    call = twilio.call(CALLER_NUMBER).dials().presses("1").presses("1")
    call.records(audio=speak(MESSAGE, "en"), deliver_callback=False)
    served = standin.recording_audio(call.pending_callbacks[0][1]["RecordingSid"])
    redis_server.stop()
    (answer,) = call.deliver_recording_callbacks()
    assert answer.status == 503
    redis_server.start()
    sweep = subprocess.run([sys.executable, "-m", "workers.clock", "--once", "--sweep-grace-seconds", "0"],
                           env=process_environment(environment), capture_output=True, text=True, timeout=60)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    (reference,) = app.extensions["tipline"].tips.queue.tip_ids()
    tip = tip_of(app, reference)
    assert tip.status == READY and tip.transcript == heard_in(speech_recogniser, served)
    assert standin.recordings() == []
