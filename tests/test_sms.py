"""The SMS line: text a tip, get a reference, leave no number behind.

Every conversation runs through the real edge (signed with twilio's RequestValidator,
Twilio's full field set, the sender's number included), a real Redis, and the provider
stand-in; after each one the privacy scan looks for the number everywhere we write.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis
from rq import Queue

from dev.twilio.calls import TwilioLike
from dev.twilio.texts import Phone
from ivr.core import keys
from ivr.core.choices import Choices
from ivr.core.provider import Provider
from ivr.core.sms_sessions import GRACE_SECONDS, IDLE_SECONDS, RECORD_SECONDS
from ivr.core.tips import READY, Tip
from ivr.edge import InboundMessage
from tests.calls import leave_a_message
from tests.conftest import CALLER_NUMBER
from tests.privacy import needles_for_number, scan_files, scan_lines, scan_redis
from workers.messages import delete_message_records

CODES = re.compile(r"(\d{11})\D+(\d{6})\b")
REPORT = "The blue van parked behind the leisure centre has knives in the back, it is there most evenings."
LANGUAGE_DIGITS = {"en": "1", "cy": "2", "pl": "3"}


@pytest.fixture
def phone(twilio: TwilioLike) -> Phone:
    return Phone(twilio, CALLER_NUMBER)


def codes_in(reply: str) -> tuple[str, str]:
    match = CODES.search(reply)
    assert match, f"no reference and PIN in {reply!r}"
    return match.group(1), match.group(2)


def tip_of(app, reference: str) -> Tip:
    tip = app.extensions["tipline"].tips.get(reference)
    assert tip is not None
    return tip


OTHER_SENDER = "+447700900123"
VOICE_CALLER = "+447700900999"


def assert_no_number_anywhere(redis_client: redis.Redis, redis_files: Path, log_lines, settings) -> None:
    needles = set().union(*(needles_for_number(n) for n in (CALLER_NUMBER, OTHER_SENDER, VOICE_CALLER)))
    assert scan_redis(redis_client, needles) == []
    assert scan_lines(log_lines.lines, needles) == []
    assert scan_files(redis_files, needles) == []
    assert scan_files(settings.var_dir, needles) == []


@pytest.fixture(autouse=True)
def privacy_scan_after_every_conversation(redis_client: redis.Redis, redis_files: Path, log_lines, settings):
    """Whatever a test below did, the senders' numbers are nowhere we write afterwards:
    not in Redis (RQ's job payloads included, decompressed), not in the log, and not in
    the AOF, which holds every write of the test, even those deleted again since."""
    yield
    assert_no_number_anywhere(redis_client, redis_files, log_lines, settings)


def queued_deletions(redis_client: redis.Redis) -> int:
    return len(Queue(keys.QUEUE_MESSAGES, connection=redis_client).job_ids)


def session_keys_in_redis(redis_client: redis.Redis) -> list[str]:
    """The SMS keys left, but for the inbound markers: those are named by a message's keyed
    digest, not the session key, and go when the clean-up job has deleted the message."""
    inbound_markers = keys.sms_inbound("")
    return [k.decode() for k in redis_client.scan_iter(match="tipline:sms:*")
            if not k.decode().startswith(inbound_markers)]


# -- whole conversations --------------------------------------------------------------------

@pytest.mark.parametrize("language", ["en", "cy", "pl"])
def test_a_whole_conversation_in_each_language_ends_in_a_queued_tip(phone: Phone, app, redis_client,
                                                                    language: str) -> None:
    menus = app.extensions["tipline"].menus
    welcome = phone.sends("Hello")
    assert "999" in welcome and "anonymous" in welcome and "knife" not in welcome.lower()
    assert phone.sends(LANGUAGE_DIGITS[language]) == menus.sms_text(language, "category_menu")
    assert phone.sends("2") == menus.sms_text(language, "report_prompt")  # weapons: urgent
    reference, pin = codes_in(phone.sends("Knives are kept in the shed behind number 12."))
    assert phone.sends("  It is a red shed 😀 ") == menus.sms_text(language, "added")
    assert phone.sends("done ") == menus.sms_text(language, "done", reference=reference)

    tip = tip_of(app, reference)
    assert (tip.channel, tip.language, tip.category, tip.status) == ("sms", language, "weapons", READY)
    assert tip.transcript == "Knives are kept in the shed behind number 12.\nIt is a red shed 😀"
    assert redis_client.xlen(keys.HANDLER_QUEUE_URGENT) == 1
    assert not redis_client.exists(keys.sms_session(_key(app)))
    assert pin.encode() not in b"".join(v for v in redis_client.hgetall(keys.tip(reference)).values())


def _key(app) -> str:
    return app.extensions["tipline"].session_keys.candidates(CALLER_NUMBER, time.time())[0]


def test_a_session_stored_before_choices_were_one_object_carries_on(phone: Phone, app, redis_client) -> None:
    """A conversation in Redis across a deploy: the hash as the old code wrote it, field by field."""
    sms = app.extensions["tipline"].sms
    redis_client.hset(keys.sms_session(_key(app)), mapping={
        "stage": "category", "language": "pl", "category": "", "attempts": 1, "reference": "", "pin_hash": "",
        "wrapped_key": "", "deadline": int(time.time()) + IDLE_SECONDS,
        "sids": sms.cleanup.arguments.seal_message_sids([])})
    session = sms.sessions.load(redis_client, _key(app))
    assert (session.stage, session.choices, session.attempts) == ("category", Choices(language="pl"), 1)
    assert phone.sends("2") == app.extensions["tipline"].menus.sms_text("pl", "report_prompt")
    assert {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.sms_session(_key(app))).items()
            if k in (b"stage", b"language", b"category", b"reference", b"attempts")} == {
        "stage": "report", "language": "pl", "category": "weapons", "reference": "", "attempts": "1"}


def test_one_long_first_message_is_the_report_and_only_the_category_is_asked(phone: Phone, app, redis_client) -> None:
    reply = phone.sends(REPORT)
    reference, _ = codes_in(reply)
    assert "1 drugs" in reply and "cannot be recovered" in reply
    assert phone.sends("4") == app.extensions["tipline"].menus.sms_text("en", "category_noted")
    phone.sends("DONE")
    tip = tip_of(app, reference)
    assert (tip.category, tip.transcript) == ("fraud", REPORT)


def test_a_session_idle_past_its_timeout_is_stored_by_the_clock(phone: Phone, app, redis_client) -> None:
    sessions = app.extensions["tipline"].sms.sessions
    phone.sends("hi"), phone.sends("1"), phone.sends("1")
    reference, _ = codes_in(phone.sends("Dealing from the flat above the chip shop."))
    assert sessions.close_idle(time.time() + 60) == 0  # not idle yet
    assert app.extensions["tipline"].tips.get(reference) is None
    assert sessions.close_idle(time.time() + IDLE_SECONDS + 1) == 1
    assert tip_of(app, reference).transcript == "Dealing from the flat above the chip shop."
    assert redis_client.zcard(keys.SMS_IDLE) == 0 and not redis_client.exists(keys.sms_session(_key(app)))
    assert queued_deletions(redis_client) == 1


def test_a_session_without_report_text_times_out_into_nothing(phone: Phone, app, redis_client) -> None:
    phone.sends("hi")
    assert app.extensions["tipline"].sms.sessions.close_idle(time.time() + IDLE_SECONDS + 1) == 1
    assert app.extensions["tipline"].tips.queue.tip_ids() == []
    left = session_keys_in_redis(redis_client)
    assert keys.sms_session(_key(app)) not in left and keys.sms_closed(_key(app)) not in left
    assert all(0 < redis_client.ttl(key) <= 900 for key in left)  # the rate counter, the retry guard


def test_a_text_just_after_done_joins_the_same_tip(phone: Phone, app, redis_client) -> None:
    reference, _ = codes_in(phone.sends(REPORT))
    phone.sends("1"), phone.sends("DONE")
    assert "Added to reference " + reference in phone.sends("Forgot: it is a white van.")
    assert [p.transcript for p in tip_of(app, reference).parts] == [REPORT, "Forgot: it is a white van."]
    assert 0 < redis_client.ttl(keys.sms_closed(_key(app))) <= GRACE_SECONDS


# -- returning tipsters -----------------------------------------------------------------------

def test_a_returning_tipster_adds_to_a_voice_tip(twilio: TwilioLike, phone: Phone, app, redis_client) -> None:
    reference, pin = leave_a_message(twilio.call(VOICE_CALLER), "1", "1")
    spaced = f"{reference[:4]} {reference[4:8]}-{reference[8:]}"
    reply = phone.sends(f"  ref {spaced}  PIN:{pin}  The car is a grey Golf.")
    assert reply == app.extensions["tipline"].menus.sms_text(None, "returning_added", reference=reference)
    tip = tip_of(app, reference)
    assert tip.channel == "voice" and tip.parts[-1].transcript == "The car is a grey Golf."
    assert not redis_client.exists(keys.sms_session(_key(app)))


def test_a_wrong_pin_and_an_unknown_reference_get_one_answer_and_guessing_locks_the_reference(
        twilio: TwilioLike, phone: Phone, app, redis_client) -> None:
    reference, pin = leave_a_message(twilio.call(VOICE_CALLER), "1", "1")
    wrong = f"{(int(pin) + 1) % 1000000:06d}"
    refused = phone.sends(f"REF {reference} PIN {wrong} hello")
    assert refused == phone.sends(f"REF 12345678901 PIN {pin} hello")
    other = Phone(twilio, OTHER_SENDER)  # counted per reference, not per sender
    for _ in range(4):
        assert other.sends(f"REF {reference} PIN {wrong} x") == refused
    assert phone.sends(f"REF {reference} PIN {pin} now the right one") == refused  # locked
    assert len(tip_of(app, reference).parts) == 1
    assert phone.sends(f"REF {reference} PIN {pin}") == refused  # asking for the status is checked alike


# -- keywords, photos, repeats, floods, odd bodies --------------------------------------------

@pytest.mark.parametrize("body, key", [(" stop ", "stop"), ("Stop", "stop"), ("START", "start"),
                                       ("h e l p", "help"), ("Help", "help")])
def test_keywords_are_answered_and_store_nothing(phone: Phone, app, redis_client, body: str, key: str) -> None:
    assert phone.sends(body) == app.extensions["tipline"].menus.sms_text(None, key)
    # No session, no counter: only the (sealed) deletion of the text at the provider, and
    # the marker that it is accounted for (a keyed digest of its sid, gone with the job).
    marker = app.extensions["tipline"].sms.cleanup.marker(phone.message_sids[0])
    assert {k for k in redis_client.keys("*") if not k.startswith(b"rq:")} == {marker.encode()}
    assert queued_deletions(redis_client) == 1


def test_photos_are_refused_and_deleted_at_the_provider_never_fetched(phone: Phone, app, redis_client, standin,
                                                                      settings) -> None:
    reply = phone.sends("look", media=2)
    assert "Photos are not accepted" in reply and "deleted" in reply
    assert not redis_client.exists(keys.sms_session(_key(app)))
    (job,) = Queue(keys.QUEUE_MESSAGES, connection=redis_client).jobs
    (mms,) = phone.message_sids
    photos = standin.messages()[mms]["media"].split(",")
    assert len(photos) == 2
    with Provider(settings) as provider:
        delete_message_records(provider, app.extensions["tipline"].sms.cleanup, job.args[0])
    assert mms not in standin.messages()
    deleted = [e.path for e in standin.log() if e.method == "DELETE"]
    assert sorted(path.rsplit("/", 1)[1][:34] for path in deleted[:2]) == sorted(photos)  # each photo, first
    assert deleted[2].endswith(f"/Messages/{mms}.json")
    assert [e for e in standin.log() if e.method == "GET" and "/Media/" in e.path] == []  # never fetched


def test_a_retried_webhook_gets_the_same_reply_and_adds_nothing(phone: Phone, app) -> None:
    """Twilio retries a webhook it thinks went unanswered: each retry must get the reply the
    original got (not merely the same reply as another retry), and store nothing again."""
    first = phone.sends(REPORT)
    assert phone.repeats_last() == first
    category_noted = phone.sends("1")
    assert category_noted == app.extensions["tipline"].menus.sms_text("en", "category_noted")
    assert phone.repeats_last() == category_noted
    assert phone.repeats_last() == category_noted
    reference, _ = codes_in(first)
    thanks = phone.sends("DONE")
    assert phone.repeats_last() == thanks
    assert [p.transcript for p in tip_of(app, reference).parts] == [REPORT]
    assert tip_of(app, reference).category == "drugs"


def test_a_flood_from_one_sender_gets_a_polite_reply_and_nothing_is_stored(phone: Phone, app, redis_client) -> None:
    for _ in range(20):
        phone.sends("hello")
    assert "wait a few minutes" in phone.sends(REPORT)
    assert len(app.extensions["tipline"].sms.sessions.load(redis_client, _key(app)).message_sids) == 20
    assert queued_deletions(redis_client) == 1  # the refused text goes at the provider too
    assert 0 < redis_client.ttl(keys.sms_rate(_key(app))) <= 600


def test_odd_bodies_get_clear_replies_and_nothing_is_lost(phone: Phone, app) -> None:
    menus = app.extensions["tipline"].menus
    assert "anonymous" in phone.sends("")
    phone.sends("1"), phone.sends("5")
    assert phone.sends("   ") == menus.sms_text("en", "empty")
    longest = ("Żółw 🐢 " * 400)[:1600]
    reference, _ = codes_in(phone.sends(longest))
    phone.sends("bell\x07 and\x00 nul\x1b[31m")
    phone.sends("DONE")
    assert tip_of(app, reference).transcript == longest.strip() + "\nbell and nul[31m"


def test_out_of_order_texts_keep_every_word(phone: Phone, app) -> None:
    phone.sends("hi"), phone.sends("1")
    reference, _ = codes_in(phone.sends(REPORT))  # the report before the category
    phone.sends("and a second part"), phone.sends("3"), phone.sends("DONE")
    tip = tip_of(app, reference)
    assert (tip.category, tip.transcript) == ("child_exploitation", REPORT + "\nand a second part")


# -- rotation -----------------------------------------------------------------------------------

def test_a_conversation_spanning_midnight_is_not_cut_in_two(app, redis_client) -> None:
    services = app.extensions["tipline"]
    midnight = (time.time() // 86400 + 1) * 86400

    def text(body: str, sid: str, at: float) -> str:
        view = InboundMessage(session_keys=services.session_keys.candidates(CALLER_NUMBER, at), body=body,
                              message_sid=sid, num_media=0)
        return app.extensions["tipline.sms"].sms.receive(view, at)

    reference, _ = codes_in(text(REPORT, "SM" + "1" * 32, midnight - 60))
    assert text("1", "SM" + "2" * 32, midnight + 30).startswith("Thank you")
    assert text("more after midnight", "SM" + "3" * 32, midnight + 60).startswith("Added")
    assert text("DONE", "SM" + "4" * 32, midnight + 120).startswith("Thank you")
    assert tip_of(app, reference).transcript == REPORT + "\nmore after midnight"
    late = services.session_keys.candidates(CALLER_NUMBER, midnight + IDLE_SECONDS + 1)
    assert len(late) == 1 and late[0] != services.session_keys.candidates(CALLER_NUMBER, midnight - 60)[0]


def test_nothing_named_by_a_session_key_outlives_the_key(phone: Phone, app, redis_client) -> None:
    phone.sends(REPORT)
    session_key = _key(app)
    named = [k for k in redis_client.scan_iter() if session_key.encode() in k]
    named += [keys.SMS_IDLE.encode()] if redis_client.zscore(keys.SMS_IDLE, session_key) else []
    assert named
    for key in named:
        assert 0 < redis_client.ttl(key) <= RECORD_SECONDS or key == keys.SMS_IDLE.encode()
    phone.sends("1"), phone.sends("DONE")
    assert redis_client.zscore(keys.SMS_IDLE, session_key) is None
    assert [k for k in redis_client.scan_iter() if session_key.encode() in k
            and redis_client.ttl(k) > max(GRACE_SECONDS, 600)] == []
