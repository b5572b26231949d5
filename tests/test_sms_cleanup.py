"""After the tip is committed, the provider's message records are deleted; sids go with the job."""

from __future__ import annotations

import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job

from config.settings import Settings
from dev.processes import run_worker_burst
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike
from dev.twilio.texts import Phone
from ivr.core import keys
from ivr.core.provider import Provider, StillInProgress
from ivr.core.sms_sessions import IDLE_SECONDS
from tests.conftest import CALLER_NUMBER
from tests.privacy import needles_for_number, scan_files, scan_lines, scan_redis
from tests.test_sms import codes_in
from workers.context import WorkerContext
from workers.messages import delete_message_records
from workers.sweep import REPLY_GRACE, sweep_replies

REPORT = "Two men are selling from the car park behind the station every night at ten."


def message_jobs(redis_client) -> list[Job]:
    return Queue(keys.QUEUE_MESSAGES, connection=redis_client).jobs


def test_the_conversation_messages_are_deleted_after_the_commit(twilio: TwilioLike, app, redis_client,
                                                                 standin: StandIn, settings: Settings) -> None:
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends(REPORT), phone.sends("1"), phone.sends("DONE")
    assert set(standin.messages()) == set(phone.message_sids) | set(phone.reply_sids)
    (job,) = message_jobs(redis_client)
    stored = b" ".join(redis_client.hgetall(f"rq:job:{job.id}").values())
    stored += zlib.decompress(redis_client.hget(f"rq:job:{job.id}", "data"))
    assert not any(sid.encode() in stored for sid in phone.message_sids)
    assert job.retries_left == 8 and job.result_ttl == 0
    with Provider(settings) as provider:
        delete_message_records(provider, app.extensions["tipline"].sms.cleanup, job.args[0])
    assert set(standin.messages()) == set(phone.reply_sids)  # the replies are the sweep's
    deleted = sorted(e.path.rsplit("/", 1)[1][:34] for e in standin.log() if e.method == "DELETE")
    assert deleted == sorted(phone.message_sids)


def test_a_message_still_being_delivered_is_retried(twilio: TwilioLike, app, redis_client, standin: StandIn,
                                                     settings: Settings) -> None:
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends(REPORT), phone.sends("1")
    standin.put_message(phone.message_sids[0], REPORT, status="receiving")
    phone.sends("DONE")
    (job,) = message_jobs(redis_client)
    cleanup = app.extensions["tipline"].sms.cleanup
    with Provider(settings) as provider:
        with pytest.raises(StillInProgress):
            delete_message_records(provider, cleanup, job.args[0])
        assert inbound(standin) == [phone.message_sids[0]]  # the others are gone already
        standin.put_message(phone.message_sids[0], REPORT, status="received")
        delete_message_records(provider, cleanup, job.args[0])  # RQ's retry: the same job again
    assert inbound(standin) == []


def inbound(standin: StandIn) -> list[str]:
    return [sid for sid, m in standin.messages().items() if m["direction"] == "inbound"]


def replies(standin: StandIn) -> dict[str, dict[str, str]]:
    return {sid: m for sid, m in standin.messages().items() if m["direction"] == "outbound-reply"}


def context_for(app, provider: Provider) -> WorkerContext:
    return WorkerContext(core=app.extensions["tipline"], provider=provider)


def later() -> datetime:
    return datetime.now(UTC) + REPLY_GRACE + timedelta(seconds=5)


# -- the replies Twilio makes from our TwiML ---------------------------------------------------

def test_a_conversations_replies_are_at_the_provider_as_twilio_would_keep_them(twilio: TwilioLike,
                                                                               standin: StandIn) -> None:
    phone = Phone(twilio, CALLER_NUMBER)
    answers = [phone.sends(REPORT), phone.sends("1"), phone.sends("DONE")]
    held = replies(standin)
    assert sorted(held) == sorted(phone.reply_sids) and len(held) == 3
    assert [held[sid]["body"] for sid in phone.reply_sids] == answers
    assert {m["status"] for m in held.values()} == {"delivered"}
    assert sorted(inbound(standin)) == sorted(phone.message_sids)


def test_the_sweep_deletes_final_replies_and_leaves_inbound_and_unfinished_ones(twilio: TwilioLike, app,
                                                                                 standin: StandIn,
                                                                                 settings: Settings) -> None:
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends(REPORT), phone.sends("1")
    sending = phone.reply_sids[0]
    standin.put_message(sending, "on its way", status="sending", direction="outbound-reply")
    with Provider(settings) as provider:
        report = sweep_replies(context_for(app, provider))  # now: every reply is within the grace
        assert (report.deleted, report.seen) == (0, 0) and len(replies(standin)) == 2
        report = sweep_replies(context_for(app, provider), now=later())
        assert (report.deleted, report.waiting) == (1, 1)
        assert list(replies(standin)) == [sending]  # left for the next sweep
        assert sorted(inbound(standin)) == sorted(phone.message_sids)  # never the sweep's
        standin.put_message(sending, "on its way", status="undelivered", direction="outbound-reply")
        assert sweep_replies(context_for(app, provider), grace=timedelta(0)).deleted == 1
    assert replies(standin) == {}
    assert sorted(inbound(standin)) == sorted(phone.message_sids)
    deletes = [e.path for e in standin.log() if e.method == "DELETE"]
    assert not any(sid in path for sid in phone.message_sids for path in deletes)


def test_a_reply_the_provider_still_calls_in_progress_is_left_for_the_next_sweep(twilio: TwilioLike, app,
                                                                                  standin: StandIn,
                                                                                  settings: Settings) -> None:
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends(REPORT)
    standin.fail_next("DELETE", r"/Messages/SM[0-9a-f]{32}\.json$", status=409, code=20009)
    with Provider(settings) as provider:
        report = sweep_replies(context_for(app, provider), now=later())
        assert (report.deleted, report.waiting) == (0, 1) and list(replies(standin)) == phone.reply_sids
        assert sweep_replies(context_for(app, provider), now=later()).deleted == 1
    assert replies(standin) == {}


def test_after_clean_up_and_sweep_no_message_record_holds_the_reference_or_pin(twilio: TwilioLike, app,
                                                                               redis_client, standin: StandIn,
                                                                               settings: Settings) -> None:
    phone = Phone(twilio, CALLER_NUMBER)
    reference, pin = codes_in(phone.sends(REPORT))
    phone.sends("1"), phone.sends("DONE")
    assert any(reference in m["body"] and pin in m["body"] for m in standin.messages().values())
    (job,) = message_jobs(redis_client)
    with Provider(settings) as provider:
        delete_message_records(provider, app.extensions["tipline"].sms.cleanup, job.args[0])
        sweep_replies(context_for(app, provider), now=later())
    assert not any(reference in m["body"] or pin in m["body"] for m in standin.messages().values())
    assert standin.messages() == {}


# -- the clean-up as `make run` does it: a real worker process --------------------------------

def test_a_real_worker_deletes_every_message_and_no_sid_is_left_anywhere(twilio: TwilioLike, app,
                                                                         redis_client, redis_files: Path,
                                                                         standin: StandIn, environment) -> None:
    """A conversation, a photo, a HELP and a flood: the worker process runs every clean-up
    job, and afterwards no MessageSid (nor the number) is in Redis, its AOF, or the worker's
    output, and the provider holds only the replies (the clock's sweep deletes those).
    The AOF holds every write of this test, the jobs since deleted included: sids that rode
    in the clear for a moment would be found there."""
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends(REPORT), phone.sends("1"), phone.sends("DONE")
    phone.sends("a photo", media=1), phone.sends("HELP")
    flood = Phone(twilio, "+447700900555")
    for _ in range(22):
        flood.sends("hello")
    assert app.extensions["tipline"].sms.sessions.close_idle(time.time() + IDLE_SECONDS + 1) == 1  # the clock
    sids = set(phone.message_sids) | set(flood.message_sids)
    # The conversation, the photo, HELP, the 2 refused texts, the flood's timed-out session.
    assert len(message_jobs(redis_client)) == 6
    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]

    assert inbound(standin) == [] and sorted(standin.messages()) == sorted(phone.reply_sids + flood.reply_sids)
    assert message_jobs(redis_client) == [] and redis_client.keys("rq:job:*") == []
    needles = sids | needles_for_number(CALLER_NUMBER) | needles_for_number("+447700900555")
    assert scan_redis(redis_client, needles) == []
    assert scan_lines(worker.stderr.splitlines() + worker.stdout.splitlines(), needles) == []
    assert scan_files(redis_files, needles) == []
    assert scan_files(Path(environment["TIPLINE_VAR_DIR"]), needles) == []


# -- a malformed sid (finding 8) ----------------------------------------------------------------

def test_a_malformed_sid_is_dropped_and_the_rest_of_the_conversation_is_still_deleted(
        twilio: TwilioLike, app, redis_client, standin: StandIn, settings: Settings, log_lines) -> None:
    """A signed webhook whose MessageSid is not a sid, in the middle of a conversation: on
    d90b4b0 the job raised at it and the texts after it (holding the number) stayed."""
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends(REPORT)
    phone.sends("1", message_sid="SM-not-a-sid-at-all")  # the provider holds no such message
    phone.sends("The car is a blue estate.")
    phone.sends("DONE")
    (job,) = message_jobs(redis_client)
    with Provider(settings) as provider:
        delete_message_records(provider, app.extensions["tipline"].sms.cleanup, job.args[0])
    assert inbound(standin) == []
    assert redis_client.keys(keys.sms_inbound("*")) == []  # every marker went with its message
    assert any("wrong shape were dropped" in line for line in log_lines.lines)
    assert not any("not-a-sid" in line for line in log_lines.lines)
