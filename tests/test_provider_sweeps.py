"""The clock's provider sweeps leave nothing identifying at the provider (findings 9, 10,
and the recording sweep's deletions): real Redis, real clock and worker processes, the
provider stand-in the only fake."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from dev.phone_audio import silence
from dev.processes import process_environment, run_worker_burst, start
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike, new_sid
from dev.twilio.texts import Phone
from ivr.core import keys
from ivr.core.provider import Provider
from ivr.core.tips import AWAITING_LANGUAGE, LINE_DOWN, NO_SPEECH, TipStore
from tests.console_people import ConsoleClient, enrolled
from tests.privacy import needles_for_number, scan_files, scan_lines, scan_redis
from workers.call_sweep import sweep_calls
from workers.context import WorkerContext

TEXTED_WHILE_DOWN = "The man who runs the garage on Mill Lane keeps a shotgun under the counter."
SENDER = "+447700900733"  # texts while the line is down
OTHER = "+447700900212"  # a conversation in progress, never the sweep's
CALLER = "+447700900841"


def clock_once(environment: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m workers.clock --once` as a real process, every grace 0."""
    return subprocess.run([sys.executable, "-m", "workers.clock", "--once", "--sweep-grace-seconds", "0"],
                          env=process_environment(environment), capture_output=True, text=True, timeout=60)


def inbound(standin: StandIn) -> list[str]:
    return sorted(sid for sid, m in standin.messages().items() if m["direction"] == "inbound")


def tips_of(app) -> TipStore:
    return app.extensions["tipline"].tips


# -- finding 9: texts that arrived while Redis was down -------------------------------------------

def test_a_text_that_arrived_while_redis_was_down_becomes_one_tip_and_leaves_the_provider(
        twilio: TwilioLike, app, redis_server, redis_client, standin: StandIn, environment, tmp_path) -> None:
    talking = Phone(twilio, OTHER)
    talking.sends("Hello")  # a conversation in progress: its texts are accounted for
    down = Phone(twilio, SENDER)
    redis_server.stop()
    failure = down.sends(TEXTED_WHILE_DOWN)
    down.sends("STOP")  # a keyword is no tip, but its record holds the number too
    redis_server.start()
    assert failure == app.extensions["tipline"].menus.sms_text(None, "failure")  # and nothing stored
    assert tips_of(app).queue.tip_ids() == []

    # Two clocks at once: the text is taken in exactly once.
    clocks = [start([sys.executable, "-m", "workers.clock", "--once", "--sweep-grace-seconds", "0"],
                    process_environment(environment), tmp_path / f"clock{n}.log") for n in range(2)]
    assert [clock.wait(timeout=60) for clock in clocks] == [0, 0]
    (reference,) = tips_of(app).queue.tip_ids()
    tip = tips_of(app).get(reference)
    assert (tip.channel, tip.arrival, tip.transcript) == ("sms", LINE_DOWN, TEXTED_WHILE_DOWN)
    assert tips_of(app).pin_hash(reference) is None  # no PIN: the tipster never had a reference
    assert inbound(standin) == talking.message_sids  # the conversation's text stays for its own clean-up
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert inbound(standin) == talking.message_sids
    assert redis_client.keys(keys.sms_inbound("*")) == [app.extensions["tipline"].sms.cleanup.marker(
        talking.message_sids[0]).encode()]

    # The handler sees how it arrived.
    handler = ConsoleClient(app, enrolled(app, "sam"))
    assert handler.signs_in().status_code == 302
    assert "arrived while the line was down" in handler.get(f"/console/tips/{reference}").get_data(as_text=True)

    needles = needles_for_number(SENDER) | needles_for_number(OTHER)
    outputs = [line for n in range(2) for line in (tmp_path / f"clock{n}.log").read_text().splitlines()]
    assert scan_lines(outputs + worker.stderr.splitlines(), needles) == []
    assert scan_redis(redis_client, needles) == []
    assert scan_files(redis_server.data_dir, needles) == []


def test_a_clock_killed_between_storing_and_deleting_takes_the_text_in_once(
        twilio: TwilioLike, app, redis_server, redis_client, standin: StandIn, environment, tmp_path) -> None:
    down = Phone(twilio, SENDER)
    redis_server.stop()
    down.sends(TEXTED_WHILE_DOWN)
    redis_server.start()
    standin.hold("DELETE", r"/Messages/SM[0-9a-f]{32}\.json$")
    clock = start([sys.executable, "-m", "workers.clock", "--once", "--sweep-grace-seconds", "0"],
                  process_environment(environment), tmp_path / "clock.log")
    try:
        standin.wait_until_held()
        os.killpg(clock.pid, signal.SIGKILL)  # the tip is committed; the delete never answered
        clock.wait(timeout=10)
    finally:
        standin.release()
    assert len(tips_of(app).queue.tip_ids()) == 1
    assert clock_once(environment).returncode == 0  # the next clock: accounted for, no second tip
    assert len(tips_of(app).queue.tip_ids()) == 1
    worker = run_worker_burst(environment)  # the clean-up job queued with the tip
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert inbound(standin) == [] and redis_client.keys(keys.sms_inbound("*")) == []


# -- finding 10: calls that made no recording -----------------------------------------------------

def test_finished_calls_no_job_handles_are_deleted_and_calls_in_hand_are_left(
        twilio: TwilioLike, app, redis_client, standin: StandIn, environment, settings) -> None:
    hung_up = twilio.call(CALLER).dials().hangs_up()  # at the language menu: no recording
    unanswered = new_sid("CA")
    standin.call_started(unanswered, CALLER)
    standin.call_ended(unanswered, status="no-answer")
    recorded = twilio.call(CALLER).dials().presses("1").presses("1").records(audio=silence(3)).presses("9")
    on_the_line = twilio.call(CALLER).dials().presses("1")
    assert set(standin.calls()) == {hung_up.sid, unanswered, recorded.sid, on_the_line.sid}

    with Provider(settings) as provider:  # within the grace nothing goes: the call only just ended
        assert sweep_calls(WorkerContext(core=app.extensions["tipline"], provider=provider)).deleted == 0
    sweep = clock_once(environment)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    # The recorded call's job (queued, not yet run) deletes it after the commit; the live call is live.
    assert standin.calls() == {recorded.sid: "completed", on_the_line.sid: "in-progress"}
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert standin.calls() == {on_the_line.sid: "in-progress"}
    (reference,) = tips_of(app).queue.tip_ids()
    assert [p.status for p in tips_of(app).get(reference).parts] == [NO_SPEECH]
    needles = needles_for_number(CALLER)
    assert scan_lines(sweep.stderr.splitlines() + sweep.stdout.splitlines(), needles) == []
    assert scan_redis(redis_client, needles) == []


def test_a_call_the_provider_still_calls_in_progress_is_left_for_the_next_sweep(
        twilio: TwilioLike, app, standin: StandIn, settings) -> None:
    call = twilio.call(CALLER).dials().hangs_up()
    standin.fail_next("DELETE", r"/Calls/CA[0-9a-f]{32}\.json$", status=409, code=20009)
    later = datetime.now(UTC) + timedelta(minutes=5)
    with Provider(settings) as provider:
        context = WorkerContext(core=app.extensions["tipline"], provider=provider)
        report = sweep_calls(context, now=later)
        assert (report.deleted, report.in_hand, report.seen) == (0, 1, 1) and call.sid in standin.calls()
        assert sweep_calls(context, now=later).deleted == 1
    assert standin.calls() == {}


# -- the recording sweep deletes finished recordings still at the provider -------------------------

def test_the_sweep_deletes_a_finished_recording_left_at_the_provider_and_keeps_one_for_a_person(
        twilio: TwilioLike, app, standin: StandIn, environment) -> None:
    """The job committed the tip but its delete failed (the provider answered 500): the
    clock's sweep deletes the recording, and then the call; a recording kept for a person
    (a language the model does not cover) stays."""
    english = twilio.call(CALLER).dials().presses("1").presses("1").records(audio=silence(3)).presses("9")
    welsh = twilio.call(CALLER).dials().presses("2").presses("1").records(audio=silence(3)).presses("9")
    left_over = english.recordings[0].form["RecordingSid"]
    kept = welsh.recordings[0].form["RecordingSid"]
    standin.fail_next("DELETE", rf"/Recordings/{left_over}\.json$", status=500)
    worker = run_worker_burst(environment)  # its retry is scheduled for later
    assert worker.returncode == 0, worker.stderr[-3000:]
    statuses = {tips_of(app).get(r).parts[0].status for r in tips_of(app).queue.tip_ids()}
    assert statuses == {NO_SPEECH, AWAITING_LANGUAGE}
    assert {r.sid for r in standin.recordings()} == {left_over, kept}
    sweep = clock_once(environment)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert [r.sid for r in standin.recordings()] == [kept]
    assert standin.calls() == {}  # the English call once its recording was gone; the Welsh one by its job


def test_the_lists_hold_the_numbers_at_the_provider_and_our_client_drops_them(
        twilio: TwilioLike, standin: StandIn, settings) -> None:
    Phone(twilio, SENDER).sends("hello")
    call = twilio.call(CALLER).dials().hangs_up()
    later = datetime.now(UTC) + timedelta(minutes=1)
    with Provider(settings) as provider:
        raw_messages = provider._account.messages.list()  # twilio-python's own objects: the numbers are there
        raw_calls = provider._account.calls.list()
        assert {m.from_ for m in raw_messages if m.direction == "inbound"} == {SENDER}
        assert {c._from for c in raw_calls} == {CALLER}
        texts, calls = provider.list_inbound_texts(created_before=later), provider.list_finished_calls(later)
    assert [t.body for t in texts] == ["hello"] and [c.sid for c in calls] == [call.sid]
    assert not any(number in repr(texts) + repr(calls)
                   for number in needles_for_number(SENDER) | needles_for_number(CALLER))
