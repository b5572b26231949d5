"""The recording-status callback: one tip part and one sealed job per recording."""

from __future__ import annotations

import zlib

import pytest
import redis
from rq import Queue

from dev.twilio.calls import Call, TwilioLike
from ivr.core import keys
from ivr.core.choices import Choices
from ivr.core.jobs import JobArguments, RecordingHandle


def jobs_in(client: redis.Redis, queue_name: str) -> list[str]:
    return Queue(queue_name, connection=client).job_ids


def test_a_recording_is_queued_once_even_when_the_callback_repeats(caller: Call, twilio: TwilioLike,
                                                                   redis_client) -> None:
    caller.dials().presses("1").presses("1").records(seconds=30)  # drugs: not urgent
    url, form = caller.recordings[0].url, caller.recordings[0].form
    for _ in range(3):
        assert twilio.post(url, form).status == 204
    assert len(jobs_in(redis_client, keys.QUEUE_RECORDINGS)) == 1
    assert jobs_in(redis_client, keys.QUEUE_URGENT_RECORDINGS) == []


@pytest.mark.parametrize("digit", ["2", "3"])  # weapons, exploitation of a young person
def test_urgent_categories_go_to_the_urgent_queue(caller: Call, redis_client, digit: str) -> None:
    caller.dials().presses("1").presses(digit).records(seconds=30)
    assert len(jobs_in(redis_client, keys.QUEUE_URGENT_RECORDINGS)) == 1
    assert jobs_in(redis_client, keys.QUEUE_RECORDINGS) == []


def test_the_job_carries_no_readable_sid_and_is_not_kept_after_it_finishes(caller: Call, redis_client) -> None:
    caller.dials().presses("1").presses("4").records(seconds=30)
    form = caller.recordings[0].form
    sids = (form["RecordingSid"], form["CallSid"])
    (job_id,) = jobs_in(redis_client, keys.QUEUE_RECORDINGS)
    job_hash = redis_client.hgetall(f"rq:job:{job_id}")
    everything = b" ".join([job_id.encode(), *job_hash.keys(), *job_hash.values()])
    everything += zlib.decompress(job_hash[b"data"])
    for sid in sids:
        assert sid.encode() not in everything
    assert job_hash[b"description"] == b"transcribe a recording"
    assert job_hash[b"result_ttl"] == b"0"


def test_a_callback_for_no_audio_queues_nothing(caller: Call, twilio: TwilioLike, redis_client) -> None:
    caller.dials().presses("1").presses("1").records(seconds=30, deliver_callback=False)
    url, form = caller.pending_callbacks[0]
    assert twilio.post(url, {**form, "RecordingStatus": "absent"}).status == 204
    assert jobs_in(redis_client, keys.QUEUE_RECORDINGS) == []


def test_a_callback_without_a_recording_sid_is_a_clear_400(caller: Call, twilio: TwilioLike) -> None:
    caller.dials().presses("1").presses("1").records(seconds=30, deliver_callback=False)
    url, form = caller.pending_callbacks[0]
    form.pop("RecordingSid")
    answer = twilio.post(url, form)
    assert answer.status == 400 and "RecordingSid" in answer.body


def test_a_callback_whose_token_is_unreadable_still_queues_the_recording(caller: Call, twilio: TwilioLike,
                                                                         redis_client) -> None:
    caller.dials().presses("1").presses("1").records(seconds=30, deliver_callback=False)
    url, form = caller.pending_callbacks[0]
    assert twilio.post(url.split("?")[0] + "?t=garbage", form).status == 204
    assert len(jobs_in(redis_client, keys.QUEUE_RECORDINGS)) == 1


# A recording handle sealed by the code before `Choices` (flat JSON), with this secret: a
# job queued, or a part awaiting its transcript, across a deploy holds one.
HANDLE_SECRET = "tipline-before-choices"
HANDLE_SEALED_BEFORE_CHOICES = (
    "f6026a84a33cc9c153e96e0e975a7d2c1c49a2a9690d0eeeac1db1d5f87d21897445876c135a21ec19d3158981075901ff0f1e3cbf"
    "df7b0022877e493b990124e9a1503197c3be0bb5753e3bb9ae378f6cb381263411ddf67cc69d79c2227c1e649ef905e7d54bcacff4e"
    "82934904dc71d0b52b4d1497c3ef1610aeafc0871b5d690e7dfdd5c291b6b98fd6d44c8706d8dcb0d2109f9987e62b14fd1bebb7c792"
    "fc0446bfc11b88d02cf0a6c3164ea493e89341d40688bc0566c19463ffc53f549d1880c9556c557")


def test_a_job_handle_sealed_before_choices_were_one_object_still_opens() -> None:
    handle = JobArguments(HANDLE_SECRET).open_handle(HANDLE_SEALED_BEFORE_CHOICES)
    assert handle == RecordingHandle(recording_sid="RE" + "a" * 32, call_sid=None,
                                     choices=Choices(language="cy", reference="12345678903"), part=2,
                                     duration_seconds=42)


def test_a_job_handle_is_sealed_as_the_same_flat_json_as_before() -> None:
    """The old worker code built a handle with `RecordingHandle(**json)`: every name, flat."""
    handle = RecordingHandle(recording_sid="RE" + "a" * 32, call_sid=None,
                             choices=Choices(language="cy", reference="12345678903"), part=2, duration_seconds=42)
    assert handle.to_mapping() == {"recording_sid": "RE" + "a" * 32, "call_sid": None, "reference": "12345678903",
                                   "part": 2, "language": "cy", "category": None, "duration_seconds": 42}
