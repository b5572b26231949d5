"""A tipster calling back by phone: the reference and PIN keyed, the handler's question (or
where the tip is) heard, an answer recorded after the tone, the reference closed; and 0 at
the topic menu for where to get support.

Whole calls followed the way Twilio follows TwiML (dev/twilio/calls.py: finishOnKey and
numDigits as Twilio applies them), every request signed, a real Redis, the provider
stand-in; the answer is real speech through a real worker. After every flow the privacy
scan reads Redis, its append-only file and the log for every number and provider sid the
test used (`privacy_scan_after_every_flow`, below).
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from hypothesis import example, given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from config.settings import Settings
from dev.phone_audio import speak
from dev.processes import run_worker_burst
from dev.standin.client import StandIn
from dev.twilio.calls import Call, TwilioLike, parse_twiml
from dev.twilio.texts import Phone
from ivr import MAX_WEBHOOK_BYTES
from ivr.core import keys
from ivr.core.call_state import CallState, CallStateCodec
from ivr.core.choices import Choices
from ivr.core.pin_guard import PIN_CHECKS_PER_WINDOW
from ivr.core.prompts import CALLING_BACK_KEY, SUPPORT_KEY, CatalogueError, load_menus
from ivr.core.references import is_valid_reference, new_reference
from ivr.core.statuses import QuestionState
from ivr.core.tips import READY
from tests.conftest import CALLER_NUMBER, PUBLIC_BASE_URL, LogLines
from tests.fuzzing import (
    VOICE_VERBS,
    FuzzTally,
    SignedWebhooks,
    assert_answered_without_failing,
    assert_valid_twiml,
    encoded_form,
    fuzz_settings,
    hypothesis_files_in_tmp,  # noqa: F401 (an autouse fixture)
)
from tests.hostile_values import digit_strings, dtmf_digits, valid_references
from tests.privacy import needles_for_number, scan_files, scan_lines, scan_redis
from tests.test_pipeline import deleted, heard_in
from tests.test_prompts import copy_config, edit
from workers.speech import Recogniser

MENUS = load_menus()
ENGLISH, WELSH, POLISH = "1", "2", "3"
LANGUAGE_DIGITS = {"en": ENGLISH, "cy": WELSH, "pl": POLISH}
REFUSED = MENUS.catalogue("en").text("returning_refused")
SMS_REFUSED = MENUS.sms_text(None, "returning_refused")
TIPSTER = "+447700900501"  # texted the tip
GUESSER = "+447700900502"
REPORT = "Two men sell cocaine from a grey Golf outside the chip shop on Mare Street most evenings."
QUESTION = "Which door of the house do they use?"
ANSWER = "They use the back door of the blue house on Station Road."
ANSWER_WORDS = {"blue", "house", "station", "road"}  # every one, in festival's voice (and "door": "backdoor" counts)
CODES = re.compile(r"(\d{11})\D+(\d{6})\b")
HANDLER = "sam"


# -- the privacy scan, after every flow ---------------------------------------------------------

@pytest.fixture(autouse=True)
def privacy_scan_after_every_flow(request: pytest.FixtureRequest, redis_client: redis.Redis, redis_files: Path,
                                  log_lines: LogLines) -> Iterator[None]:
    """After the test: no number that called or texted, and no CallSid, RecordingSid or
    MessageSid, in Redis, in its append-only file (every write of the test) or in the log."""
    # Asked for here, so Twilio's side (and the requests it made) outlives this fixture.
    twilio: TwilioLike | None = request.getfixturevalue("twilio") if "twilio" in request.fixturenames else None
    yield
    if twilio is None:
        return
    forms = [webhook.form for webhook in twilio.requests]
    numbers = {form["From"] for form in forms if "From" in form}
    sids = {form[name] for form in forms for name in ("CallSid", "RecordingSid", "MessageSid") if name in form}
    assert numbers and sids, "nothing called or texted: the scan would prove nothing"
    needles = set().union(*(needles_for_number(number) for number in numbers)) | sids
    hits = scan_redis(redis_client, needles) + scan_files(redis_files, needles) + scan_lines(log_lines.lines, needles)
    assert hits == []


# -- helpers -----------------------------------------------------------------------------------

def texted_tip(twilio: TwilioLike, language: str = "en", number: str = TIPSTER) -> tuple[str, str]:
    """A tip as a tipster texts it in `language` (welcome, language, topic, report, DONE); (reference, PIN)."""
    phone = Phone(twilio, number)
    phone.sends("Hello")
    phone.sends(LANGUAGE_DIGITS[language])
    phone.sends("1")
    codes = CODES.search(phone.sends(REPORT))
    assert codes, "no reference and PIN in the reply"
    phone.sends("DONE")
    return codes.group(1), codes.group(2)


def asked(core, casework, reference: str, text: str = QUESTION):
    """A handler claims the tip, asks the tipster `text`, and releases it (so the answer is
    offered back to the one who asked, not left with whoever holds it)."""
    assert casework.claim_next(HANDLER) == reference
    question = core.follow_up.ask(reference, HANDLER, text)
    casework.release(reference, HANDLER)
    return question


def calls_back(call: Call, reference: str, pin: str, language: str = ENGLISH) -> Call:
    """Dial, choose a language, 9 at the topic menu, the reference and #, the PIN and #."""
    call.dials().presses(language).presses(CALLING_BACK_KEY)
    call.presses(reference + "#")
    return call.presses(pin + "#")


def again(call: Call, reference: str, pin: str) -> Call:
    """From the topic menu, where a refusal leaves the caller: 9, the reference and the PIN."""
    return call.presses(CALLING_BACK_KEY).presses(reference + "#").presses(pin + "#")


def step_of(call: Call) -> str:
    """The path the waiting <Gather> or <Record> sends the caller's keys to."""
    assert call.waiting_for in ("Gather", "Record")
    return call._waiting.get("action").split("?")[0].removeprefix(PUBLIC_BASE_URL)


def wrong(pin: str) -> str:
    return f"{(int(pin) + 1) % 10 ** len(pin):0{len(pin)}d}"


def said(call: Call, text: str) -> list[str | None]:
    """The <Say> languages `text` was said in since the last step."""
    return [s.language for s in call.heard[call._heard_mark:] if text in s.text]


# -- the whole way back: a question, an answer in real speech -----------------------------------

@pytest.mark.slow
def test_a_question_is_heard_and_answered_in_real_speech_and_goes_back_to_the_handler_who_asked(
        twilio: TwilioLike, core, casework, environment, standin: StandIn, log_lines: LogLines,
        redis_client: redis.Redis, speech_recogniser: Recogniser) -> None:
    reference, pin = texted_tip(twilio)
    question = asked(core, casework, reference)

    call = twilio.call(CALLER_NUMBER).dials().presses(ENGLISH).presses(CALLING_BACK_KEY)
    assert "key in your reference number" in call.heard_since_last_step()
    call.presses(reference + "#")
    assert "key in your PIN" in call.heard_since_last_step()
    call.presses(pin + "#")
    assert said(call, QUESTION) == ["en-GB"]  # read out, in the tip's language
    assert "To answer it after the tone, press 2." in call.heard_since_last_step()

    answer = speak(ANSWER)
    call.presses("2").records(audio=answer)
    assert "What you said has been received" in call.heard_since_last_step() and call.ended
    assert [callback.status for callback in call.recordings] == [204]
    # The answer is in the handler's hands before a word of it is transcribed.
    assert core.follow_up.questions(reference)[0].state == QuestionState.ANSWERED
    assert casework.held_by(HANDLER) == [reference] and casework.holder(reference) == HANDLER
    assert casework.claim_next("alex") is None  # offered to the one who asked, on a fresh lease

    worker = run_worker_burst(environment)
    assert worker.returncode == 0, worker.stderr[-3000:]
    tip = casework.tip(reference)
    later = tip.parts[-1]
    assert len(tip.parts) == 2 and later.later and later.answers == question.number
    assert later.status == READY and later.transcript == heard_in(speech_recogniser, answer)
    assert ANSWER_WORDS <= set(re.findall(r"[a-z]+", later.transcript.lower())), later.transcript
    assert "door" in later.transcript.lower(), later.transcript
    # Gone from the provider like any call: the recording and the call's record.
    recording_sid = call.recordings[0].form["RecordingSid"]
    assert deleted(standin, "Recordings", recording_sid) and deleted(standin, "Calls", call.sid)
    needles = needles_for_number(CALLER_NUMBER) | {call.sid, recording_sid}
    assert scan_lines(worker.stderr.splitlines() + worker.stdout.splitlines(), needles) == []


def test_the_question_is_read_in_the_tips_language_whatever_language_the_caller_chose(
        twilio: TwilioLike, core, casework) -> None:
    reference, pin = texted_tip(twilio, language="cy")
    asked(core, casework, reference, "Pa ddrws maen nhw'n ei ddefnyddio?")
    call = twilio.call(CALLER_NUMBER).dials().presses(POLISH).presses(CALLING_BACK_KEY)
    assert {s.language for s in call.heard[call._heard_mark:]} == {"pl-PL"}
    call.presses(reference + "#").presses(pin + "#")
    assert said(call, "Pa ddrws maen nhw'n ei ddefnyddio?") == ["cy-GB"]
    assert {s.language for s in call.heard[call._heard_mark:]} == {"cy-GB"}
    call.presses("1")  # again
    assert said(call, "Pa ddrws maen nhw'n ei ddefnyddio?") == ["cy-GB"]


def test_without_a_question_the_status_is_heard_and_2_adds_new_information(
        twilio: TwilioLike, core, casework) -> None:
    reference, pin = texted_tip(twilio)
    call = calls_back(twilio.call(CALLER_NUMBER), reference, pin)
    assert MENUS.catalogue("en").text("status_received") in call.heard_since_last_step()
    call.hangs_up()

    assert casework.claim_next(HANDLER) == reference
    call = calls_back(twilio.call(CALLER_NUMBER), reference, pin)
    heard = call.heard_since_last_step()
    assert "Your information is being looked at." in heard and "To add information after the tone" in heard
    assert not re.search(r"police|crime|handler|officer", heard, re.IGNORECASE)  # discreet once in
    call.presses("2")
    record = call._waiting  # a first message's limits; never transcribed at the provider
    assert (record.get("maxLength"), record.get("finishOnKey"), record.get("timeout")) == ("600", "#", "5")
    assert record.get("transcribe") is None
    assert record.get("recordingStatusCallback").startswith(f"{PUBLIC_BASE_URL}/voice/recording-status?t=")
    call.records(seconds=12)
    assert call.ended
    later = casework.tip(reference).parts[-1]
    assert len(casework.tip(reference).parts) == 2 and later.later and later.answers is None


def test_a_recording_too_short_is_asked_again_once_then_a_polite_goodbye(twilio: TwilioLike, casework) -> None:
    reference, pin = texted_tip(twilio)
    call = calls_back(twilio.call(CALLER_NUMBER), reference, pin).presses("2")
    call.records(seconds=1)
    assert "We did not hear anything" in call.heard_since_last_step() and call.waiting_for == "Record"
    call.waits()
    assert "We did not receive a message" in call.heard_since_last_step() and call.ended


def test_hearing_it_again_is_bounded_then_goodbye(twilio: TwilioLike, redis_client: redis.Redis) -> None:
    reference, pin = texted_tip(twilio)
    before = {key.decode() for key in redis_client.scan_iter()}
    call = calls_back(twilio.call(CALLER_NUMBER), reference, pin)
    call.presses("1").presses("1")
    assert "Your information has been received" in call.heard_since_last_step()
    call.presses("1")
    assert "Goodbye" in call.heard_since_last_step() and call.ended
    # Listening stores nothing of the call: only the PIN guard's count, named by a keyed digest.
    added = {key.decode() for key in redis_client.scan_iter()} - before
    assert len(added) == 1 and added.pop().startswith("tipline:pin:attempts:")


# -- keying the reference -------------------------------------------------------------------------

def test_a_typo_in_the_reference_is_caught_and_three_bad_tries_go_back_to_the_topics(twilio: TwilioLike) -> None:
    reference, _ = texted_tip(twilio)
    typo = reference[:-1] + str((int(reference[-1]) + 1) % 10)
    assert not is_valid_reference(typo)
    call = twilio.call(CALLER_NUMBER).dials().presses(ENGLISH).presses(CALLING_BACK_KEY)
    call.presses(typo + "#")
    assert "that number does not look right" in call.heard_since_last_step()
    assert step_of(call) == "/voice/returning/reference"
    call.presses("#")  # nothing keyed: Twilio moves on to our <Redirect>
    assert "that number does not look right" in call.heard_since_last_step()
    call.presses(reference[:5] + "#")
    heard = call.heard_since_last_step()
    assert "We could not take that reference number." in heard and "What is your information about?" in heard
    assert step_of(call) == "/voice/category"
    call.presses("1")  # the topics work as before
    assert call.waiting_for == "Record"


@pytest.mark.parametrize("finish", ["#", ""])
def test_a_reference_is_taken_at_the_hash_key_or_after_the_pause_as_twilio_sends_it(
        twilio: TwilioLike, finish: str) -> None:
    reference = new_reference()
    call = twilio.call(CALLER_NUMBER).dials().presses(ENGLISH)
    with pytest.raises(ValueError, match="press '9' at the next step"):
        call.presses("19")  # a one-key menu takes one key
    call.presses(CALLING_BACK_KEY).presses(reference + finish)
    assert (call.last.form["Digits"], call.last.form["FinishedOnKey"]) == (reference, finish)
    assert step_of(call) == "/voice/returning/pin"


def test_a_proven_call_carries_no_pin_and_lasts_an_hour_like_any_step(
        twilio: TwilioLike, settings: Settings) -> None:
    reference, pin = texted_tip(twilio)
    call = calls_back(twilio.call(CALLER_NUMBER), reference, pin)
    codec = CallStateCodec(settings.secret_key)
    state = codec.load(call._waiting.get("action").split("?t=")[1])
    assert (state.proven, state.choices.reference, state.pin) == (True, reference, None)
    stale = codec.dump(state, now=time.time() - 3601)
    answer = twilio.post(f"/voice/returning/menu?t={stale}", {"Digits": "2"})
    assert "Let's start again" in answer.body and "<Record" not in answer.body
    not_proven = codec.dump(CallState(Choices(language="en", reference=reference)))
    answer = twilio.post(f"/voice/returning/menu?t={not_proven}", {"Digits": "2"})
    assert "Let's start again" in answer.body and "<Record" not in answer.body


# -- refusals: one sentence, one cost, one lock-out ---------------------------------------------------

def refusal_heard(twilio: TwilioLike, reference: str, pin: str) -> str:
    call = calls_back(twilio.call(CALLER_NUMBER), reference, pin)
    assert step_of(call) == "/voice/category", "the caller is back at the topic menu"
    return call.heard_since_last_step()


def test_wrong_unknown_locked_closed_and_malformed_are_heard_alike(twilio: TwilioLike, core) -> None:
    wrong_pin, locked, closed = (texted_tip(twilio, number=f"+4477009005{n}") for n in (11, 12, 13))
    for _ in range(PIN_CHECKS_PER_WINDOW):
        assert not core.pin_guard.proves(locked[0], wrong(locked[1]))
    core.follow_up.close_reference(closed[0])
    heard = {
        "wrong PIN": refusal_heard(twilio, wrong_pin[0], wrong(wrong_pin[1])),
        "unknown reference": refusal_heard(twilio, new_reference(), "123456"),
        "locked reference": refusal_heard(twilio, *locked),
        "closed reference": refusal_heard(twilio, *closed),
        "a PIN of five digits": refusal_heard(twilio, wrong_pin[0], wrong_pin[1][:5]),
        "no PIN": refusal_heard(twilio, wrong_pin[0], ""),
    }
    assert heard["wrong PIN"].startswith(REFUSED) and "What is your information about?" in heard["wrong PIN"]
    assert set(heard.values()) == {heard["wrong PIN"]}, heard


TIMING_TRIES = 15


def test_every_refusal_costs_what_a_wrong_pin_costs(twilio: TwilioLike, core, settings: Settings) -> None:
    """CPU-time medians (the work done; steady however busy the machine is) of each refusal
    at the PIN step, interleaved so a busy moment falls on every path alike."""
    codec = CallStateCodec(settings.secret_key)
    tips = [texted_tip(twilio, number=f"+4477009006{n:02d}") for n in range(7)]
    locked = tips[6]
    for _ in range(PIN_CHECKS_PER_WINDOW):
        core.pin_guard.proves(locked[0], wrong(locked[1]))
    for reference, _ in tips[3:6]:
        core.follow_up.close_reference(reference)
    tries = PIN_CHECKS_PER_WINDOW  # per reference, all checked: none past the window's limit
    paths = {
        "wrong PIN": [(ref, wrong(pin)) for ref, pin in tips[:3] for _ in range(tries)],
        "closed reference": [(ref, pin) for ref, pin in tips[3:6] for _ in range(tries)],
        "locked reference": [locked] * TIMING_TRIES,
        "unknown reference": [(new_reference(), "123456") for _ in range(TIMING_TRIES)],
        "malformed PIN": [(tips[0][0], "12345")] * TIMING_TRIES,
    }
    cpu: dict[str, list[float]] = {path: [] for path in paths}
    wall: dict[str, list[float]] = {path: [] for path in paths}
    said_back = set()
    for round_ in range(TIMING_TRIES):
        for path in random.Random(round_).sample(list(paths), len(paths)):
            reference, pin = paths[path][round_]
            token = codec.dump(CallState(Choices(language="en", reference=reference)))
            started, started_cpu = time.perf_counter(), time.thread_time()
            answer = twilio.post(f"/voice/returning/pin?t={token}", {"Digits": pin, "FinishedOnKey": "#"})
            cpu[path].append(time.thread_time() - started_cpu)
            wall[path].append(time.perf_counter() - started)
            said_back.add(tuple(verb.text for verb in parse_twiml(answer.body) if verb.tag == "Say"))
    report = "; ".join(f"{path} {statistics.median(cpu[path]) * 1000:.1f} ms CPU, "
                       f"{statistics.median(wall[path]) * 1000:.1f} ms wall" for path in paths)
    print(f"medians of {TIMING_TRIES}: {report}")
    assert len(said_back) == 1 and next(iter(said_back))[0] == REFUSED
    baseline = statistics.median(cpu["wrong PIN"])
    assert all(0.67 <= statistics.median(times) / baseline <= 1.5 for times in cpu.values()), report


def test_guessing_by_voice_and_by_text_shares_one_lock_out(twilio: TwilioLike, core, casework) -> None:
    reference, pin = texted_tip(twilio)
    guess = wrong(pin)
    call = twilio.call(CALLER_NUMBER).dials().presses(ENGLISH)
    texts = Phone(twilio, GUESSER)
    for check in range(PIN_CHECKS_PER_WINDOW):  # voice, text, voice, text, voice
        if check % 2 == 0:
            again(call, reference, guess)
            assert call.heard_since_last_step().startswith(REFUSED)
        else:
            assert texts.sends(f"REF {reference} PIN {guess} hello") == SMS_REFUSED
    # Five checks in all, none more than three on one channel: the reference is locked on both.
    again(call, reference, pin)
    assert call.heard_since_last_step().startswith(REFUSED) and step_of(call) == "/voice/category"
    assert texts.sends(f"REF {reference} PIN {pin} it is me") == SMS_REFUSED
    assert len(casework.tip(reference).parts) == 1
    assert core.pin_guard.under_attack(reference)


# -- closing the reference --------------------------------------------------------------------------

def test_8_then_8_closes_the_reference_and_the_pin_stops_working(
        twilio: TwilioLike, core, casework, redis_client: redis.Redis) -> None:
    reference, pin = texted_tip(twilio)
    question = asked(core, casework, reference)
    call = calls_back(twilio.call(CALLER_NUMBER), reference, pin).presses("8")
    assert "press 8 again" in call.heard_since_last_step() and step_of(call) == "/voice/returning/close"
    call.presses("8")
    assert "Your reference is now closed." in call.heard_since_last_step() and call.ended

    assert redis_client.hget(keys.tip(reference), "pin_hash") == b""
    assert core.follow_up.questions(reference)[0].state == QuestionState.ENDED
    assert casework.tip(reference).reference_closed and question.number == 1
    assert refusal_heard(twilio, reference, pin).startswith(REFUSED)
    assert casework.claim_next(HANDLER) == reference  # the tip itself stays with the handlers


@pytest.mark.parametrize("keeping", ["5", "1", None])
def test_8_then_another_key_or_nothing_keeps_the_reference(
        twilio: TwilioLike, core, redis_client: redis.Redis, keeping: str | None) -> None:
    reference, pin = texted_tip(twilio)
    call = calls_back(twilio.call(CALLER_NUMBER), reference, pin).presses("8")
    if keeping:
        call.presses(keeping)
    else:
        call.waits()
    heard = call.heard_since_last_step()
    assert "Your reference stays open." in heard and "Your information has been received" in heard
    assert step_of(call) == "/voice/returning/menu"
    assert redis_client.hget(keys.tip(reference), "pin_hash").startswith(b"$argon2")
    assert not core.tips.get(reference).reference_closed
    call.hangs_up()
    assert step_of(calls_back(twilio.call(CALLER_NUMBER), reference, pin)) == "/voice/returning/menu"


# -- support --------------------------------------------------------------------------------------

@pytest.mark.parametrize("language", ["en", "cy", "pl"])
def test_0_reads_the_support_services_then_the_topics_and_is_never_a_failed_play(
        twilio: TwilioLike, core, language: str) -> None:
    catalogue, support = MENUS.catalogue(language), core.support.for_language(language)
    call = twilio.call(CALLER_NUMBER).dials().presses(LANGUAGE_DIGITS[language])
    for _ in range(3):
        call.presses(SUPPORT_KEY)
        heard = call.heard[call._heard_mark:]
        for service in support.services:
            spoken = ", ".join(service.digits)
            (reading,) = [s for s in heard if service.name in s.text]
            assert spoken in reading.text and reading.language == catalogue.say_language
        assert catalogue.text("category_intro") in call.heard_since_last_step()
        assert step_of(call) == "/voice/category"
    call.presses("6")  # no such topic: the first failed play, so the menu again and not the fallback
    heard = call.heard_since_last_step()
    assert catalogue.text("not_understood") in heard and catalogue.text("category_fallback") not in heard
    assert step_of(call) == "/voice/category"


def test_the_topic_menu_offers_9_and_0_in_every_language(twilio: TwilioLike) -> None:
    for language, digit in LANGUAGE_DIGITS.items():
        call = twilio.call(CALLER_NUMBER).dials().presses(digit)
        heard = call.heard_since_last_step()
        catalogue = MENUS.catalogue(language)
        assert catalogue.text("returning_option", digit="9") in heard
        assert catalogue.text("support_option", digit="0") in heard
        call.hangs_up()


def test_a_menu_of_nine_topics_is_refused_at_start_up(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    edit(config / "menus.json", lambda menus: menus["categories"].extend(
        {"id": f"extra{n}", "urgent": False} for n in range(4)))
    with pytest.raises(CatalogueError, match="at most 8 fit: the topic menu keeps 9 for calling back"):
        load_menus(config)


# -- hostile keys at every new step ----------------------------------------------------------------

RETURNING_STEPS = {"/voice/returning/reference": 120, "/voice/returning/pin": 100, "/voice/returning/menu": 120,
                   "/voice/returning/recorded": 80, "/voice/returning/close": 120}


def returning_states(path: str, reference: str) -> st.SearchStrategy[CallState]:
    """The states a call back carries to `path`: mostly those our own steps mint for it (before
    proof a reference keyed or not; after, proven for the real tip), else any state at all."""
    languages = st.sampled_from([*MENUS.languages, "zz", None])
    references = st.one_of(st.just(reference), valid_references(), st.none())
    anything = st.builds(CallState, choices=st.builds(Choices, language=languages, reference=references),
                         attempt=st.integers(0, 5), proven=st.booleans(), question=st.integers(0, 3))
    minted = {
        "/voice/returning/reference": st.builds(CallState, choices=st.builds(Choices, language=languages),
                                                attempt=st.integers(0, 3)),
        "/voice/returning/pin": st.builds(CallState, choices=st.builds(Choices, language=languages,
                                                                       reference=st.just(reference))),
    }.get(path, st.builds(CallState, choices=st.builds(Choices, language=st.sampled_from(MENUS.languages),
                                                       reference=st.just(reference)),
                          attempt=st.integers(0, 3), proven=st.just(True), question=st.integers(0, 2)))
    return st.one_of(minted, minted, anything)


def keys_pressed(reference: str, pin: str) -> st.SearchStrategy[str]:
    """What reaches a step as Digits: half the time the keys that mean something there (menu keys,
    the right reference and PIN), else references and PINs right and wrong, and anything at all."""
    meaningful = st.sampled_from(["1", "2", "8", "9", "0", "#", "*", "hangup", reference, pin, reference + "#"])
    return st.one_of(meaningful, meaningful, meaningful, dtmf_digits, valid_references(), digit_strings(4, 5, 6, 11))


# A failing case must show its assertion, not hypothesis's warning about the size of its report.
@pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")
def test_any_keys_at_the_returning_steps_get_twiml_the_simulator_can_follow(
        app: Flask, twilio: TwilioLike, core, casework, settings: Settings, redis_client: redis.Redis,
        log_lines: LogLines) -> None:
    reference, pin = texted_tip(twilio)
    asked(core, casework, reference)
    snapshot = {key: redis_client.dump(key) for key in (keys.tip(reference), keys.questions(reference),
                                                        keys.QUESTIONS_WAITING)}
    codec = CallStateCodec(settings.secret_key)
    provider = SignedWebhooks(app, PUBLIC_BASE_URL, settings.twilio_auth_token)
    follower = TwilioLike(twilio.transport, PUBLIC_BASE_URL, twilio.account_sid, settings.twilio_auth_token)
    call_fields = {"AccountSid": twilio.account_sid, "CallSid": "CA" + "0" * 32, "From": CALLER_NUMBER,
                   "CallStatus": "in-progress", "Direction": "inbound"}

    reached: set[tuple[str, str]] = set()  # (step, where the simulator was left: a step's path or "ended")
    # Hypothesis rarely draws one right PIN among a million: each step's genuine presses are given
    # as explicit examples (state, Digits, FinishedOnKey, RecordingDuration), and it explores around them.
    keyed = CallState(Choices(language="en"))
    typed = keyed.advance(reference=reference)
    proven = CallState(Choices(language="en", reference=reference), proven=True, question=1)
    genuine = {
        "/voice/returning/reference": [(keyed, reference, "#", ""), (keyed, reference[:-1], "#", ""),
                                       (keyed.again().again(), "123", "", "")],
        "/voice/returning/pin": [(typed, pin, "#", ""), (typed, wrong(pin), "#", ""), (typed, pin[:4], "", "")],
        "/voice/returning/menu": [(proven, key, "", "") for key in ("1", "2", "8", "5")],
        "/voice/returning/recorded": [(proven, "#", "", "30"), (proven, "#", "", "1"), (proven.again(), "", "", ""),
                                      (proven, "hangup", "", "30")],
        "/voice/returning/close": [(proven, "8", "", ""), (proven, "1", "", "")],
    }

    def fuzz(path: str, cases: int) -> None:
        with FuzzTally(f"POST {path}") as tally:
            @fuzz_settings(cases)
            @given(state=returning_states(path, reference), digits=keys_pressed(reference, pin),
                   finished_on=st.sampled_from(["", "#"]), seconds=st.sampled_from(["", "0", "1", "2", "30", "x"]))
            def a_caller_at_this_step(state: CallState, digits: str, finished_on: str, seconds: str) -> None:
                with tally.case():
                    for key, dumped in snapshot.items():  # each case from the same Redis: a failure repeats
                        redis_client.restore(key, 0, dumped, replace=True)
                    for key in redis_client.scan_iter(match="tipline:pin:*"):
                        redis_client.delete(key)
                    form = MultiDict({**call_fields, "Digits": digits, "FinishedOnKey": finished_on,
                                      "RecordingDuration": seconds})
                    mark = len(log_lines.lines)
                    response = provider.post(path, form, [("t", codec.dump(state))])
                    assert_answered_without_failing(response, log_lines.lines[mark:])
                    if response.status_code == 413:  # hostile_values' 70,000 keys: a clear answer
                        assert len(encoded_form(form)) > MAX_WEBHOOK_BYTES
                        return
                    assert_valid_twiml(response, VOICE_VERBS, PUBLIC_BASE_URL)
                    call = follower.call(CALLER_NUMBER)
                    call._run(parse_twiml(response.get_data(as_text=True)))  # follows any <Redirect>
                    assert call.ended or call.waiting_for in ("Gather", "Record")
                    reached.add((path, "ended" if call.ended else step_of(call)))

            for state, digits, finished_on, seconds in genuine[path]:
                a_caller_at_this_step = example(state=state, digits=digits, finished_on=finished_on,
                                                seconds=seconds)(a_caller_at_this_step)
            a_caller_at_this_step()

    for path, cases in RETURNING_STEPS.items():
        fuzz(path, cases)
    # The cases got past the guard and through each step's choices, not only into refusals.
    assert {("/voice/returning/pin", "/voice/returning/menu"), ("/voice/returning/pin", "/voice/category"),
            ("/voice/returning/menu", "/voice/returning/recorded"), ("/voice/returning/menu", "/voice/returning/close"),
            ("/voice/returning/close", "ended"), ("/voice/returning/reference", "/voice/returning/pin"),
            ("/voice/returning/recorded", "ended")} <= reached, sorted(reached)
