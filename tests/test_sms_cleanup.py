"""After the tip is committed, the provider's message records are deleted; sids go with the job."""

from __future__ import annotations

import zlib

import pytest
from rq import Queue
from rq.job import Job

from config.settings import Settings
from dev.standin_client import StandIn
from dev.twilio_like import TwilioLike
from dev.twilio_sms import Phone
from ivr import keys
from ivr.provider import Provider, StillInProgress
from tests.conftest import CALLER_NUMBER
from workers.messages import delete_message_records

REPORT = "Two men are selling from the car park behind the station every night at ten."


def message_jobs(redis_client) -> list[Job]:  # type: ignore[no-untyped-def]
    return Queue(keys.QUEUE_MESSAGES, connection=redis_client).jobs


def test_the_conversation_messages_are_deleted_after_the_commit(twilio: TwilioLike, app, redis_client,  # type: ignore[no-untyped-def]
                                                                 standin: StandIn, settings: Settings) -> None:
    phone = Phone(twilio, CALLER_NUMBER)
    phone.sends(REPORT), phone.sends("1"), phone.sends("DONE")
    assert set(standin.messages()) == set(phone.message_sids)
    (job,) = message_jobs(redis_client)
    stored = b" ".join(redis_client.hgetall(f"rq:job:{job.id}").values())
    stored += zlib.decompress(redis_client.hget(f"rq:job:{job.id}", "data"))
    assert not any(sid.encode() in stored for sid in phone.message_sids)
    assert job.retries_left == 8 and job.result_ttl == 0
    with Provider(settings) as provider:
        delete_message_records(provider, app.extensions["tipline"].sms.cleanup, job.args[0])
    assert standin.messages() == {}
    deleted = sorted(e.path.rsplit("/", 1)[1][:34] for e in standin.log() if e.method == "DELETE")
    assert deleted == sorted(phone.message_sids)


def test_a_message_still_being_delivered_is_retried(twilio: TwilioLike, app, redis_client, standin: StandIn,  # type: ignore[no-untyped-def]
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
        assert list(standin.messages()) == [phone.message_sids[0]]  # the others are gone already
        standin.put_message(phone.message_sids[0], REPORT, status="received")
        delete_message_records(provider, cleanup, job.args[0])  # RQ's retry: the same job again
    assert standin.messages() == {}
