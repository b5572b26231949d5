"""Tips at rest: created at the callback, encrypted per tip, queued once, urgent first."""

from __future__ import annotations

import base64
import secrets

import pytest
from argon2 import PasswordHasher

from dev.twilio.calls import TwilioLike
from ivr.core import keys
from ivr.core.choices import Choices
from ivr.core.handler_queue import HandlerQueue
from ivr.core.period_keys import PeriodKeys
from ivr.core.tips import AWAITING_TRANSCRIPT, NO_SPEECH, READY, TRANSCRIPTION_FAILED, ShreddedTip, TipStore
from ivr.core.vault import CannotOpen, KeyRing, TipVault, UnknownKey
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER

HOUR_MS = 3_600_000


def new_key(key_id: str) -> str:
    return f"{key_id}:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def store_for(app, vault_keys: str | None = None) -> TipStore:
    services = app.extensions["tipline"]
    if vault_keys is None:
        return services.tips
    ring = KeyRing(vault_keys)
    periods = PeriodKeys(services.settings.period_keys_dir, ring, must_exist=True)
    return TipStore(services.redis, TipVault(ring, periods), HandlerQueue(services.redis))


def test_a_call_becomes_a_tip_awaiting_its_transcript(twilio: TwilioLike, app, redis_client) -> None:
    reference, pin = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1", seconds=40)
    tip = store_for(app).get(reference)
    assert tip is not None and tip.status == AWAITING_TRANSCRIPT and tip.triage == "new"
    assert (tip.channel, tip.language, tip.category) == ("voice", "en", "drugs")
    assert tip.choices == Choices(language="en", category="drugs", reference=reference)  # the facts, declared once
    assert tip.received_hour.endswith(":00Z") and [p.seconds for p in tip.parts] == [40]
    raw = redis_client.hgetall(keys.tip(reference))
    assert PasswordHasher().verify(raw[b"pin_hash"].decode(), pin)
    assert pin.encode() not in b"".join(raw.values()).replace(raw[b"reference"], b"")
    assert store_for(app).queue.tip_ids() == [reference]


def test_queue_entries_carry_the_hour_not_the_millisecond(twilio: TwilioLike, redis_client) -> None:
    for _ in range(3):
        leave_a_message(twilio.call(CALLER_NUMBER), "1", "4")
    ids = [entry_id.decode() for entry_id, _ in redis_client.xrange(keys.HANDLER_QUEUE)]
    milliseconds = {int(entry_id.split("-")[0]) for entry_id in ids}
    assert len(ids) == 3 and len(milliseconds) == 1 and milliseconds.pop() % HOUR_MS == 0
    assert [int(entry_id.split("-")[1]) for entry_id in ids] == [0, 1, 2]


def test_a_stream_id_from_an_earlier_hour_still_appends(app, redis_client) -> None:
    queue = store_for(app).queue
    for tip_id, hour in (("later", 10 * HOUR_MS), ("earlier", 9 * HOUR_MS)):
        with redis_client.pipeline() as pipe:
            queue.add(pipe, tip_id, urgent=False, hour_ms=hour)
            pipe.execute()
    assert queue.tip_ids() == ["later", "earlier"]


def two_part_tip(twilio: TwilioLike, app, category: str) -> tuple[TipStore, str]:
    """A call whose first try is a second long and whose second is the message: one tip, two parts."""
    call = twilio.call(CALLER_NUMBER).dials().presses("1").presses(category)
    call.records(seconds=1)
    call.records(seconds=30)
    tips = store_for(app)
    (reference,) = tips.queue.tip_ids()
    return tips, reference


def test_a_short_try_and_the_real_message_are_one_tip_queued_once(twilio: TwilioLike, app) -> None:
    tips, reference = two_part_tip(twilio, app, "3")
    assert [p.seconds for p in tips.get(reference).parts] == [1, 30]


def test_urgent_tips_are_claimed_first(twilio: TwilioLike, app) -> None:
    drugs, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1")
    child, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "3")
    fraud, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "4")
    knife, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "2")
    queue = store_for(app).queue
    claimed = [queue.claim_next("handler-a") for _ in range(5)]
    assert [c.tip_id if c else None for c in claimed] == [child, knife, drugs, fraud, None]


def test_transcripts_are_ciphertext_bound_to_their_tip_and_field(twilio: TwilioLike, app, redis_client) -> None:
    first, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1")
    second, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1")
    tips = store_for(app)
    phrase = "the blue van parks behind the launderette on Tuesdays"
    tips.finish_part(first, 1, READY, transcript=phrase)
    tips.finish_part(second, 1, NO_SPEECH)
    assert tips.get(first).transcript == phrase and tips.get(first).status == READY
    everything = b"".join(k + b"".join(redis_client.hgetall(k).values()) for k in redis_client.keys("*")
                          if redis_client.type(k) == b"hash")
    assert b"launderette" not in everything
    # A ciphertext copied onto another tip, or into another field, does not open.
    sealed = redis_client.hget(keys.tip(first), "part:1:transcript")
    redis_client.hset(keys.tip(second), "part:1:transcript", sealed)
    with pytest.raises(CannotOpen):
        tips.get(second)
    redis_client.hset(keys.tip(first), "part:1:audio", sealed)
    with pytest.raises(CannotOpen):
        tips.kept_audio(first, 1)


def test_the_worst_part_decides_a_tips_status(twilio: TwilioLike, app) -> None:
    tips, reference = two_part_tip(twilio, app, "1")
    tips.finish_part(reference, 1, NO_SPEECH)
    assert tips.get(reference).status == AWAITING_TRANSCRIPT
    tips.finish_part(reference, 2, TRANSCRIPTION_FAILED, kept_audio={"recording_sid": "RE" + "0" * 32})
    assert tips.get(reference).status == TRANSCRIPTION_FAILED
    assert tips.kept_audio(reference, 2) == {"recording_sid": "RE" + "0" * 32}


def test_shredding_a_tip_makes_its_transcript_unreadable(twilio: TwilioLike, app, settings, redis_client) -> None:
    reference, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1")
    tips = store_for(app)
    tips.finish_part(reference, 1, READY, transcript="something said")
    tips.shred(reference)
    assert redis_client.hget(keys.tip(reference), "wrapped_key") is None
    with pytest.raises(ShreddedTip):
        tips.get(reference)


def test_rotation_rewraps_data_keys_without_touching_the_data(twilio: TwilioLike, app, settings, redis_client) -> None:
    reference, _ = leave_a_message(twilio.call(CALLER_NUMBER), "1", "1")
    store_for(app).finish_part(reference, 1, READY, transcript="what was said")
    ciphertext = redis_client.hget(keys.tip(reference), "part:1:transcript")
    old_key = settings.vault_keys
    rotated = store_for(app, vault_keys=f"{new_key('k2')},{old_key}")
    assert rotated.rewrap_all() == 1 and rotated.rewrap_all() == 0
    assert redis_client.hget(keys.tip(reference), "part:1:transcript") == ciphertext
    # The tip's month was re-keyed: its new period key is sealed under k2, the old one destroyed.
    (label,) = rotated.vault.periods.labels()
    assert redis_client.hget(keys.tip(reference), "wrapped_key").startswith(f"{label}:".encode())
    assert rotated.vault.periods.master_id_of(label) == "k2"
    with pytest.raises(UnknownKey):
        store_for(app).get(reference)  # the old ring alone no longer knows k2
    assert rotated.get(reference).transcript == "what was said"


def test_bad_vault_keys_are_refused_with_a_clear_message() -> None:
    from ivr.core.vault import VaultError

    for spec in ["", "nokey", "k1:short", f"{new_key('a')},{new_key('a')}"]:
        with pytest.raises(VaultError, match="VAULT_KEYS"):
            KeyRing(spec)


def test_redis_holds_no_pin_and_no_sid_after_a_call(twilio: TwilioLike, redis_client) -> None:
    call = twilio.call(CALLER_NUMBER)
    leave_a_message(call, "1", "5")
    sids = [call.sid, call.recordings[0].form["RecordingSid"]]
    from tests.privacy import scan_redis

    assert scan_redis(redis_client, set(sids)) == []
