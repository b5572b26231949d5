"""Every webhook, correctly signed, with hostile values: no 5xx, no failure logged, and TwiML.

The edge lets through anything the provider signed, so these requests are signed with
the official RequestValidator (tests/fuzzing.py) and the promise is about what comes
after the edge: whatever a signed request holds (huge, empty, control characters, NULs,
repeated keys, odd Digits and durations, malformed sids, a garbage, tampered or
wrong-purpose `t` token), the caller hears a sentence and the tipster gets a reply:
a 200 with valid TwiML, and nothing in the log saying something failed (a route's
error handler answers the failure TwiML with a 200, so the log is where a crash shows).
The recording-status callback owes no TwiML: it answers 204, or 400 without a sid.
A request over the 64 KiB limit gets 413 before anything reads it, which is a clear
answer too (Twilio never sends one that big).

Menu steps keep nothing in Redis; for the callback and texts Redis is flushed before
each case (each conversation), so a case fails or passes on its own and a failure
repeats when hypothesis replays it. Cases are counted per route (tests/hostile.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from config.settings import Settings
from ivr import MAX_WEBHOOK_BYTES
from ivr.core.call_state import CallState, CallStateCodec
from ivr.core.choices import Choices
from ivr.core.prompts import Menus
from tests.conftest import PUBLIC_BASE_URL, LogLines
from tests.fuzzing import (
    SMS_VERBS,
    VOICE_VERBS,
    FuzzTally,
    SignedWebhooks,
    assert_answered_without_failing,
    assert_valid_twiml,
    encoded_form,
    fuzz_settings,
    hypothesis_files_in_tmp,  # noqa: F401 (an autouse fixture)
)
from tests.hostile_values import (
    digit_strings,
    dtmf_digits,
    hostile_forms,
    hostile_texts,
    odd_number_texts,
    sids,
    valid_references,
)
from tests.test_follow_up_voice import RETURNING_STEPS  # fuzzed there, with real tips behind them

# A failing case with a huge value must still show its assertion, not hypothesis's warning
# about the size of its report (pytest.ini makes warnings errors).
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

# The cases each route gets in CI (tests/fuzzing.py scales them for the long profile).
VOICE_STEPS = {"/voice/incoming": 600, "/voice/language": 800, "/voice/category": 800,
               "/voice/recorded": 800, "/voice/read-back": 600}
RECORDING_STATUS_CASES = 900
SMS_CASES = 1300  # texts; a conversation has one to three

# Numbers from Ofcom's drama range.
phone_numbers = digit_strings(3).map(lambda tail: f"+447700900{tail}")
call_sids = sids("CA")
recording_sids = sids("RE")
message_sids = sids("SM")


@pytest.fixture
def provider(app: Flask, settings: Settings) -> SignedWebhooks:
    return SignedWebhooks(app, PUBLIC_BASE_URL, settings.twilio_auth_token)


@pytest.fixture
def codec(app: Flask) -> CallStateCodec:
    return app.extensions["tipline.voice"].call_states


@pytest.fixture
def menus(app: Flask) -> Menus:
    return app.extensions["tipline"].menus


class CaseLog:
    """The log lines of one case: what was logged since `start()`."""

    def __init__(self, log_lines: LogLines) -> None:
        self.log_lines = log_lines
        self.mark = 0

    def start(self) -> None:
        self.mark = len(self.log_lines.lines)

    def lines(self) -> list[str]:
        return self.log_lines.lines[self.mark:]


@pytest.fixture
def case_log(log_lines: LogLines) -> Iterator[CaseLog]:
    yield CaseLog(log_lines)


# -- what a call sends --------------------------------------------------------------------------

def call_states(menus: Menus) -> st.SearchStrategy[CallState]:
    """States our own menus mint, at each stage of a call, heard any number of times.

    Also a language or category no longer in the menus: a token minted before a deploy
    that dropped one is still good for an hour.
    """
    languages = st.sampled_from([*menus.languages, "zz"])
    categories = st.sampled_from([*(c.id for c in menus.categories), "dropped-category"])
    attempts = st.integers(0, 6)
    pins = digit_strings(4, 6)
    return st.one_of(
        st.builds(CallState, attempt=attempts),
        st.builds(CallState, choices=st.builds(Choices, language=languages), attempt=attempts),
        st.builds(CallState, choices=st.builds(Choices, language=languages, category=categories,
                                               reference=valid_references()), pin=pins, attempt=attempts),
    )


@st.composite
def call_state_tokens(draw: st.DrawFn, codec: CallStateCodec, menus: Menus, purpose: str) -> list[str]:
    """The `t` values of a request: none, a genuine token, one minted for the other purpose,
    one tampered with or cut short, garbage, or several `t`s at once."""
    state = draw(call_states(menus))
    genuine = codec.dump(state, purpose)
    wrong_purpose = codec.dump(state, "recording" if purpose == "step" else "step")
    position = draw(st.integers(0, len(genuine) - 1))
    flipped = genuine[:position] + ("A" if genuine[position] != "A" else "B") + genuine[position + 1:]
    kind = draw(st.sampled_from(["genuine", "genuine", "wrong purpose", "tampered", "cut short", "garbage", "none",
                                 "several"]))
    return {
        "genuine": [genuine],
        "wrong purpose": [wrong_purpose],
        "tampered": [flipped],
        "cut short": [genuine[:position]],
        "garbage": [draw(hostile_texts)],
        "none": [],
        "several": [draw(st.sampled_from([genuine, wrong_purpose, ""])), draw(hostile_texts)],
    }[kind]


def call_fields(account_sid: str) -> dict[str, st.SearchStrategy[str]]:
    """What Twilio sends with every call webhook, identifying fields included."""
    return {
        "AccountSid": account_sid, "ApiVersion": "2010-04-01", "CallSid": call_sids,
        "CallStatus": st.sampled_from(["ringing", "in-progress", "completed"]), "Direction": "inbound",
        "From": phone_numbers, "Caller": phone_numbers, "To": "+448005550111",
        "FromCity": "LONDON", "FromZip": "E1 6AN", "FromCountry": "GB",
        "StirVerstat": "TN-Validation-Passed-A", "CallToken": "%7B%22parentCallInfoToken%22%7D",
    }


def voice_step_forms(account_sid: str) -> st.SearchStrategy[MultiDict]:
    """A menu step's form: the call's fields, the keys pressed, and after <Record> the recording's."""
    return hostile_forms({
        **call_fields(account_sid),
        "Digits": dtmf_digits, "FinishedOnKey": st.sampled_from(["", "#"]), "msg": "Gather End",
        "RecordingSid": recording_sids, "RecordingDuration": st.integers(0, 700).map(str) | odd_number_texts,
        "RecordingUrl": recording_sids.map(lambda sid: f"https://api.twilio.com/2010-04-01/Recordings/{sid}"),
    })


def recording_status_forms(account_sid: str) -> st.SearchStrategy[MultiDict]:
    """The recording-status callback's form (it carries no caller number)."""
    return hostile_forms({
        "AccountSid": account_sid, "CallSid": call_sids, "RecordingSid": recording_sids,
        "RecordingUrl": recording_sids.map(lambda sid: f"https://api.twilio.com/2010-04-01/Recordings/{sid}"),
        "RecordingStatus": st.sampled_from(["completed", "completed", "absent", "failed", "in-progress"]),
        "RecordingDuration": st.integers(0, 700).map(str) | odd_number_texts,
        "RecordingChannels": "1", "RecordingSource": "RecordVerb",
        "RecordingStartTime": "Wed, 25 Nov 2026 07:00:00 +0000", "ErrorCode": "0",
    })


def refused_as_too_big(response: TestResponse, form: MultiDict) -> bool:
    """A 413, for a body over the app's limit: a clear answer Twilio never needs (the query does not count)."""
    if response.status_code != 413:
        return False
    size = len(encoded_form(form))
    assert size > MAX_WEBHOOK_BYTES, f"a {size}-byte request was refused as too big"
    return True


def check_twiml_answer(response: TestResponse, form: MultiDict, verbs: set[str], case_log: CaseLog) -> None:
    """No failure, and TwiML (or a 413 for a body over the limit)."""
    assert_answered_without_failing(response, case_log.lines())
    if not refused_as_too_big(response, form):
        assert_valid_twiml(response, verbs, PUBLIC_BASE_URL)


# -- the tests -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", list(VOICE_STEPS))
def test_a_signed_voice_step_always_gets_twiml(path: str, provider: SignedWebhooks, settings: Settings,
                                              codec: CallStateCodec, menus: Menus, case_log: CaseLog) -> None:
    with FuzzTally(f"POST {path}") as tally:
        @fuzz_settings(VOICE_STEPS[path])
        @given(form=voice_step_forms(settings.twilio_account_sid),
               tokens=call_state_tokens(codec, menus, "step"))
        def a_caller_at_this_step(form: MultiDict, tokens: list[str]) -> None:
            with tally.case():
                query = [("t", token) for token in tokens]  # menu steps keep nothing in Redis
                case_log.start()
                response = provider.post(path, form, query)
                check_twiml_answer(response, form, VOICE_VERBS, case_log)

        a_caller_at_this_step()


def test_a_signed_recording_callback_is_answered_without_failing(provider: SignedWebhooks, settings: Settings,
                                                                 codec: CallStateCodec, menus: Menus,
                                                                 redis_client: redis.Redis, case_log: CaseLog) -> None:
    with FuzzTally("POST /voice/recording-status") as tally:
        @fuzz_settings(RECORDING_STATUS_CASES)
        @given(form=recording_status_forms(settings.twilio_account_sid),
               tokens=call_state_tokens(codec, menus, "recording"))
        def a_recording_callback(form: MultiDict, tokens: list[str]) -> None:
            with tally.case():
                redis_client.flushall()
                query = [("t", token) for token in tokens]
                case_log.start()
                response = provider.post("/voice/recording-status", form, query)
                assert_answered_without_failing(response, case_log.lines())
                if refused_as_too_big(response, form):
                    pass
                elif form.get("RecordingStatus") == "completed" and (form.get("RecordingSid") or "").strip():
                    assert response.status_code == 204, f"a completed recording answered {response.status_code}"
                else:
                    assert response.status_code in (204, 400), f"answered {response.status_code}"

        a_recording_callback()


# -- what a text sends -----------------------------------------------------------------------------

def text_bodies() -> st.SearchStrategy[str]:
    """What tipsters type, keywords and returning-tipster lines included, and hostile text."""
    return st.one_of(
        hostile_texts,
        st.sampled_from(["1", "2", "3", "9", "0", "DONE", " done ", "STOP", "help", "start", "Hi", "D O N E"]),
        st.text(max_size=200),
        st.builds(lambda ref, pin, rest: f"REF {ref} PIN {pin} {rest}", valid_references(),
                  digit_strings(4, 5, 6), st.text(max_size=30)),
    )


def text_forms(account_sid: str) -> st.SearchStrategy[MultiDict]:
    """One text's form: its body, media and sid, and the sender's number (absent, hostile or repeated)."""
    return hostile_forms({
        "MessageSid": message_sids, "AccountSid": account_sid,
        "From": phone_numbers, "To": "+448005550111", "Body": text_bodies(),
        "NumMedia": st.sampled_from(["0", "0", "1", "10"]) | odd_number_texts, "NumSegments": "1",
        "SmsStatus": "received", "FromCity": "LONDON", "FromCountry": "GB",
        "MediaUrl0": st.just("https://api.twilio.com/2010-04-01/Media/ME" + "0" * 32),
    })


def text_conversations(account_sid: str) -> st.SearchStrategy[list[MultiDict]]:
    """One to three texts from one phone: each text's From replaced by the conversation's
    sender where it has a single genuine-looking one, so the texts make a conversation."""
    def from_one_phone(sender: str, forms: list[MultiDict]) -> list[MultiDict]:
        for form in forms:
            if len(form.getlist("From")) == 1 and form["From"].startswith("+4477"):
                form["From"] = sender
        return forms

    return st.builds(from_one_phone, phone_numbers, st.lists(text_forms(account_sid), min_size=1, max_size=3))


def test_a_signed_text_always_gets_a_twiml_reply(provider: SignedWebhooks, settings: Settings,
                                                redis_client: redis.Redis, case_log: CaseLog) -> None:
    with FuzzTally("POST /sms/incoming") as tally:
        @fuzz_settings(SMS_CASES // 2)
        @given(conversation=text_conversations(settings.twilio_account_sid))
        def a_tipster_texting(conversation: list[MultiDict]) -> None:
            redis_client.flushall()
            for form in conversation:
                with tally.case():
                    case_log.start()
                    response = provider.post("/sms/incoming", form)
                    check_twiml_answer(response, form, SMS_VERBS, case_log)

        a_tipster_texting()


def test_every_webhook_route_is_fuzzed(app: Flask) -> None:
    """A new webhook route must join the fuzz tests above: its blueprint makes it a webhook."""
    webhook_rules = {rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.split(".")[0] in ("voice", "sms")}
    assert webhook_rules == {*VOICE_STEPS, *RETURNING_STEPS, "/voice/recording-status", "/sms/incoming"}
