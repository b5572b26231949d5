"""The voice line as a caller meets it: whole calls followed the way Twilio follows TwiML."""

from __future__ import annotations

import base64
import time

import pytest

from dev.twilio.calls import Call, TwilioLike
from ivr.core.call_state import BadCallState, CallState, CallStateCodec
from ivr.core.choices import Choices
from ivr.core.references import is_valid_reference
from tests.calls import codes_heard


def gather_action(call: Call) -> str:
    assert call.waiting_for in ("Gather", "Record")
    return call._waiting.get("action")


def token_of(url: str) -> str:
    return url.split("?t=", 1)[1]


@pytest.mark.parametrize("digit, say_language, words", [
    ("1", "en-GB", "What is your information about?"),
    ("2", "cy-GB", "Am beth mae eich gwybodaeth?"),
    ("3", "pl-PL", "Czego dotyczy Twoja informacja?"),
])
def test_a_whole_call_in_each_language(caller: Call, digit: str, say_language: str, words: str) -> None:
    caller.dials()
    welcome = caller.heard_text()
    assert "does not see your number" in welcome and "deleted" in welcome and "999" in welcome
    # Each language is offered in its own voice.
    assert {s.language for s in caller.heard} == {"en-GB", "cy-GB", "pl-PL"}

    caller.presses(digit)
    assert words in caller.heard_since_last_step()
    assert {s.language for s in caller.heard[-6:]} == {say_language}

    caller.presses("2")  # knives or other weapons
    before_tone = caller.heard_since_last_step()
    reference, pin = codes_heard(before_tone)
    assert is_valid_reference(reference) and pin.isdigit()
    assert caller.waiting_for == "Record"

    caller.records(seconds=25)
    after_tone = caller.heard_since_last_step()
    assert codes_heard(after_tone) == (reference, pin)
    assert caller.recordings[0].status == 204

    caller.presses("1")  # hear them again
    assert codes_heard(caller.heard_since_last_step()) == (reference, pin)
    caller.presses("9")
    assert caller.ended
    assert {s.language for s in caller.heard[-1:]} == {say_language}


def test_the_record_verb_is_bounded_finishes_on_hash_and_never_transcribes_at_the_provider(caller: Call) -> None:
    caller.dials().presses("1").presses("1")
    record = caller._waiting
    assert record is not None and record.tag == "Record"
    assert record.get("maxLength") == "600"
    assert record.get("finishOnKey") == "#"
    assert record.get("transcribe") is None
    assert record.get("recordingStatusCallback", "").startswith("https://tipline.example.org/voice/recording-status?t=")


@pytest.mark.parametrize("withheld", ["anonymous", "+266696687", "+7378742833", "+2562533", "+8656696"])
def test_a_withheld_number_is_a_call_like_any_other(twilio: TwilioLike, withheld: str) -> None:
    call = twilio.call(withheld).dials().presses("1").presses("5")
    reference, _ = codes_heard(call.heard_since_last_step())
    call.records(seconds=10)
    assert codes_heard(call.heard_since_last_step())[0] == reference


def test_references_are_random_not_sequential(twilio: TwilioLike) -> None:
    references = []
    for _ in range(5):
        call = twilio.call("anonymous").dials().presses("1").presses("4")
        references.append(int(codes_heard(call.heard_since_last_step())[0]))
    assert len(set(references)) == 5
    gaps = {b - a for a, b in zip(references, references[1:], strict=False)}
    assert not gaps <= {1, -1, 0}


@pytest.mark.parametrize("odd", ["*", "0", "a", "#", "9", " ", "١"])
def test_an_odd_keypress_plays_the_language_menu_again(caller: Call, odd: str) -> None:
    caller.dials().presses(odd)
    assert "Sorry, I did not get that." in caller.heard_since_last_step()
    assert "For English, press 1." in caller.heard_since_last_step()
    assert caller.waiting_for == "Gather"


def test_two_keys_at_a_one_key_menu_are_not_understood(caller: Call, twilio: TwilioLike) -> None:
    """Twilio sends one key from a <Gather numDigits=1> (the simulator too); a request that
    says otherwise chooses nothing rather than the first key."""
    caller.dials()
    answer = twilio.post(gather_action(caller), {"Digits": "12"})
    assert answer.status == 200 and "Sorry, I did not get that." in answer.body


def test_three_silences_at_the_language_menu_go_on_in_english(caller: Call) -> None:
    caller.dials().waits()
    assert "Sorry, I did not get that." in caller.heard_since_last_step()
    caller.waits()
    assert "For English, press 1." in caller.heard_since_last_step()
    caller.waits()
    heard = caller.heard_since_last_step()
    assert "We will continue in English." in heard and "What is your information about?" in heard


def test_three_wrong_keys_at_the_category_menu_still_take_the_information(caller: Call) -> None:
    caller.dials().presses("3")  # Polish
    caller.presses("6").presses("*")  # no sixth topic (0 and 9 lead elsewhere: test_follow_up_voice.py)
    assert "Przepraszamy, nie rozpoznaliśmy wyboru." in caller.heard_since_last_step()
    caller.presses("7")
    heard = caller.heard_since_last_step()
    assert "Przyjmiemy Twoją informację bez tematu." in heard
    codes_heard(heard)
    assert caller.waiting_for == "Record"


def test_silence_after_the_tone_is_asked_again_once_then_a_polite_goodbye(caller: Call) -> None:
    caller.dials().presses("1").presses("1")
    reference, _ = codes_heard(caller.heard_since_last_step())
    caller.waits()  # says nothing: Twilio skips the action and follows our <Redirect>
    assert "We did not hear anything. Please try again after the tone." in caller.heard_since_last_step()
    assert caller.waiting_for == "Record"
    caller.waits()
    assert "We did not receive a message" in caller.heard_since_last_step()
    assert caller.ended


def test_a_recording_of_a_second_is_asked_again_and_the_second_try_is_taken(caller: Call) -> None:
    caller.dials().presses("1").presses("3")
    reference, pin = codes_heard(caller.heard_since_last_step())
    caller.records(seconds=1)
    assert "We did not hear anything" in caller.heard_since_last_step()
    caller.records(seconds=30)
    assert codes_heard(caller.heard_since_last_step()) == (reference, pin)
    assert [r.status for r in caller.recordings] == [204, 204]  # both kept: nothing is lost


def test_hanging_up_during_the_message_still_queues_the_recording(caller: Call) -> None:
    caller.dials().presses("1").presses("1")
    caller.records(seconds=40, hang_up=True)
    assert caller.ended and caller.recordings[0].status == 204


def test_the_read_back_is_offered_at_most_three_times(caller: Call) -> None:
    caller.dials().presses("1").presses("4").records(seconds=12)
    caller.presses("1").presses("1")
    assert "press 1" in caller.heard_since_last_step()
    caller.presses("1")
    assert "Goodbye" in caller.heard_since_last_step() and caller.ended


def test_a_tampered_token_starts_the_call_over(caller: Call, twilio: TwilioLike) -> None:
    caller.dials()
    url = gather_action(caller)
    token = token_of(url)
    forged = url.replace(token, token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"))
    answer = twilio.post(forged, {"Digits": "1"})
    assert answer.status == 200
    assert "Let's start again" in answer.body and "For English, press 1." in answer.body


@pytest.mark.parametrize("purpose, max_age", [("step", 3600), ("recording", 7 * 24 * 3600)])
def test_a_token_opens_to_the_last_second_of_its_lifetime_and_not_after(settings, purpose: str, max_age: int) -> None:
    codec, minted = CallStateCodec(settings.secret_key), time.time()
    token = codec.dump(CallState(Choices(language="cy", reference="12345678903")), purpose, now=minted)
    assert codec.load(token, purpose, now=minted + max_age - 1).choices.language == "cy"  # just inside
    assert codec.load(token, purpose, now=minted + max_age).choices.reference == "12345678903"  # the edge itself
    with pytest.raises(BadCallState):
        codec.load(token, purpose, now=minted + max_age + 1)  # just past
    with pytest.raises(BadCallState):
        codec.load(token, purpose, now=minted - 60)  # stamped in the future: not ours


# Tokens minted by the code before `Choices` (flat fields), with this secret, at this time.
# A caller mid-call across a deploy (or a recording callback delivered late) holds one.
TOKEN_SECRET, TOKEN_MINTED = "tipline-before-choices", 1_800_000_000
STEP_TOKEN_BEFORE_CHOICES = (
    "3koRxYjkWFl25NccYEssJjf79AbcsqLtqvXXTRYQ2hUfnUx1FKewlTWmjP74jhqeVbx7HkcFO3o0WEA8EwaXAea_tj_uYHDLLdQwEu11paHGPi"
    "GHlLVCYPDjJksMd2jZSKlrvmK3cbkSNOlXQNgUDa3GtIfVcgc.a0nSAA.UL4QuL47-DYXu_fq4nPL8G_8Kj0")
RECORDING_TOKEN_BEFORE_CHOICES = (
    "6vNTGOHbvs26inul1MkxjXU42F0zKscX_Q4w4lnXwZd3lLNZAjGQPFjREQl1MuvLlkeMr4FWQ7U1g_c8N4-QrxV4fOFBTIaog6-FefZTwZo4JQgmlR8"
    ".a0nSAA.NTArp94OglJzh-MxMlPittFw8jg")


def test_a_token_minted_before_choices_were_one_object_still_opens() -> None:
    codec = CallStateCodec(TOKEN_SECRET)
    step = codec.load(STEP_TOKEN_BEFORE_CHOICES, now=TOKEN_MINTED + 60)
    assert step == CallState(Choices(language="cy", category="weapons", reference="12345678903"), pin="123456",
                             attempt=1)
    recording = codec.load(RECORDING_TOKEN_BEFORE_CHOICES, purpose="recording", now=TOKEN_MINTED + 60)
    assert recording == CallState(Choices(language="pl", reference="12345678903"), pin="654321")


def test_a_token_carries_the_same_flat_fields_as_before() -> None:
    """New tokens keep the old shape, so a token minted now opens in code of either age."""
    state = CallState(Choices(language="cy", category="weapons", reference="12345678903"), pin="123456", attempt=1)
    assert state.to_token_fields() == {"language": "cy", "category": "weapons", "reference": "12345678903",
                                       "pin": "123456", "attempt": 1}
    assert CallState().to_token_fields() == {}
    with pytest.raises(ValueError):
        CallState.from_token_fields({"language": "cy", "postcode": "SW1A"})


def test_a_menu_step_an_hour_and_a_second_old_starts_the_call_over(twilio: TwilioLike, settings) -> None:
    token = CallStateCodec(settings.secret_key).dump(CallState(Choices(language="en")), now=time.time() - 3601)
    answer = twilio.post(f"/voice/category?t={token}", {"Digits": "1"})
    assert answer.status == 200 and "Let's start again" in answer.body
    fresh = CallStateCodec(settings.secret_key).dump(CallState(Choices(language="en")), now=time.time() - 3590)
    answer = twilio.post(f"/voice/category?t={fresh}", {"Digits": "1"})
    assert answer.status == 200 and "Let's start again" not in answer.body


def test_a_token_minted_for_the_recording_callback_does_not_open_a_menu_step(caller: Call, twilio: TwilioLike) -> None:
    caller.dials().presses("1").presses("1")
    callback_token = token_of(caller._waiting.get("recordingStatusCallback"))
    answer = twilio.post(f"/voice/recorded?t={callback_token}", {"RecordingDuration": "30"})
    assert answer.status == 200 and "Let's start again" in answer.body


@pytest.mark.parametrize("path", ["/voice/language", "/voice/category", "/voice/recorded"])
def test_a_step_without_its_token_or_fields_is_not_an_error(twilio: TwilioLike, path: str) -> None:
    answer = twilio.post(path, {"AccountSid": twilio.account_sid})
    assert answer.status == 200 and "<Response>" in answer.body and "For English, press 1." in answer.body


def test_the_urls_the_provider_logs_reveal_neither_reference_nor_pin(caller: Call) -> None:
    caller.dials().presses("2").presses("3")
    reference, pin = codes_heard(caller.heard_since_last_step())
    record = caller._waiting
    urls = [record.get("action"), record.get("recordingStatusCallback")]
    for url in urls:
        assert reference not in url
        payload = token_of(url).split(".")[0]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert b"pin" not in decoded and pin.encode() not in decoded and b"reference" not in decoded


def test_menus_keep_working_while_redis_is_down(caller: Call, app, redis_server, redis_client) -> None:
    caller.dials().presses("1")
    redis_server.stop()
    caller.presses("2")
    reference, pin = codes_heard(caller.heard_since_last_step())
    caller.records(seconds=15)
    assert codes_heard(caller.heard_since_last_step()) == (reference, pin)
    # The callback cannot be queued: 503, and the provider sweep finds the recording later.
    assert caller.recordings[0].status == 503
    assert app.test_client().get("/healthz").json == {"status": "ok", "redis": False}
    redis_server.start()
    caller.presses("9")
    assert caller.ended


def test_a_failure_on_our_side_is_spoken_not_an_error_page(app, twilio: TwilioLike) -> None:
    """Fault injection: a step that breaks after the edge accepted the call."""
    from ivr.edge import CallStep, twilio_webhook

    @twilio_webhook(CallStep)
    def broken_step(step: CallStep):
        raise RuntimeError("the disk is full")

    app.view_functions["voice.category"] = broken_step
    answer = twilio.post("/voice/category", {"Digits": "1"})
    assert answer.status == 200
    assert "Sorry, something went wrong on our side" in answer.body and "<Hangup" in answer.body
