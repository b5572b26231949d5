"""The way back to a tipster over SMS: `REF <reference> PIN <pin>` gets the waiting question
(or the status), the next text answers it; CLOSE twice closes the reference; SUPPORT.

Every text goes through the real edge, signed as Twilio signs it (Twilio's full field
set, the sender's number included), into a real Redis; the handler's side is the
console's own Casework and the core's FollowUp. Races run over real HTTP, from threads.
After every test the privacy scan looks for each sender's number, in every spelling,
and for every MessageSid, in Redis, the log, the AOF and var/.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from hypothesis import example, given
from hypothesis import strategies as st
from rq import Queue
from werkzeug.datastructures import MultiDict
from werkzeug.serving import make_server

from config.settings import Settings
from dev.standin.client import StandIn
from dev.twilio.calls import TwilioLike, new_sid
from dev.twilio.http_transport import http_post
from dev.twilio.texts import Phone, reply_texts
from ivr import MAX_WEBHOOK_BYTES
from ivr.core import keys
from ivr.core import sms_words as words
from ivr.core.coarse_time import current_hour
from ivr.core.prompts import CONFIG_DIR
from ivr.core.segments import MAX_SEGMENTS, segment_count
from ivr.core.sms_returning import CLOSE_CONFIRM_SECONDS, status_reply
from ivr.core.sms_sessions import IDLE_SECONDS
from ivr.core.statuses import QuestionState, TipsterStatus, Triage
from ivr.edge import InboundMessage
from tests.conftest import CALLER_NUMBER, PUBLIC_BASE_URL, LogLines
from tests.fuzzing import (
    FAILURE_LINE,
    SMS_VERBS,
    FuzzTally,
    SignedWebhooks,
    assert_valid_twiml,
    encoded_form,
    fuzz_settings,
    hypothesis_files_in_tmp,  # noqa: F401 (an autouse fixture)
)
from tests.hostile_values import control_character_texts, hostile_texts, huge_texts
from tests.privacy import needles_for_number, scan_files, scan_lines, scan_redis

# Failing fuzz cases with huge values must show their assertion, not hypothesis's size warning.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

CODES = re.compile(r"(\d{11})\D+(\d{6})\b")
REPORT = "Two men sell from a grey Golf outside the chip shop on Mare Street most evenings, around nine."
QUESTION = "Which door do they use?"
LANGUAGE_DIGITS = {"en": "1", "cy": "2", "pl": "3"}
# Ofcom's drama range: the tipster who texted the tip, and others who text the line.
TIP_SENDER = "+447700900286"
SECOND_PHONE = "+447700900731"
THIRD_PHONE = "+447700900842"
# Words a stranger holding the phone must not read in a reply's preview, besides the topics.
TELLING_WORDS = ("police", "crime", "criminal", "heddlu", "trosedd", "policj", "przestęp")


# -- the people ---------------------------------------------------------------------------------

class Phones:
    """Every phone a test texts from, so the privacy scan knows each number and MessageSid."""

    def __init__(self) -> None:
        self.made: list[Phone] = []
        self.posted_sids: set[str] = set()  # texts posted without a Phone's help (the fuzz test's)

    def __call__(self, twilio: TwilioLike, number: str = CALLER_NUMBER) -> Phone:
        phone = Phone(twilio, number)
        self.made.append(phone)
        return phone

    @property
    def numbers(self) -> set[str]:
        return {phone.from_number for phone in self.made}

    @property
    def message_sids(self) -> set[str]:
        return {sid for phone in self.made for sid in phone.message_sids} | self.posted_sids


@pytest.fixture
def phones() -> Phones:
    return Phones()


@pytest.fixture
def phone(twilio: TwilioLike, phones: Phones) -> Phone:
    """The returning tipster's phone."""
    return phones(twilio)


@pytest.fixture(autouse=True)
def privacy_scan_after_every_flow(phones: Phones, redis_client: redis.Redis, redis_files: Path,
                                  log_lines: LogLines, settings: Settings) -> Iterator[None]:
    """Whatever a test below did, no sender's number (any spelling, or its plain hashes) is in
    Redis, the log, the AOF (every write of the test, even those deleted since) or var/, and
    no MessageSid is there in the clear."""
    yield
    needles = {needle for number in phones.numbers | {CALLER_NUMBER} for needle in needles_for_number(number)}
    sids = phones.message_sids
    assert sids or not phones.made, "the scan would look for no MessageSid"
    for found in (scan_redis(redis_client, needles | sids), scan_lines(log_lines.lines, needles | sids),
                  scan_files(redis_files, needles | sids), scan_files(settings.var_dir, needles | sids)):
        assert found == []


def codes_in(reply: str) -> tuple[str, str]:
    match = CODES.search(reply)
    assert match, f"no reference and PIN in {reply!r}"
    return match.group(1), match.group(2)


def a_texted_tip(twilio: TwilioLike, phones: Phones, language: str = "en", number: str = TIP_SENDER) -> tuple[str, str]:
    """A tipster texts a report in `language` and ends it with DONE; the (reference, PIN) they were given."""
    tipster = phones(twilio, number)
    tipster.sends("Hello")
    tipster.sends(LANGUAGE_DIGITS[language])
    tipster.sends("1")
    reference, pin = codes_in(tipster.sends(REPORT))
    tipster.sends("DONE")
    return reference, pin


def asked(core, casework, reference: str, question: str = QUESTION, handler: str = "sam") -> int:
    """A handler claims the tip and asks its tipster a question; the question's number."""
    assert casework.claim_next(handler) == reference
    return core.follow_up.ask(reference, handler, question).number


def session_key(core, number: str = CALLER_NUMBER) -> str:
    return core.session_keys.candidates(number, time.time())[0]


def holders(redis_client: redis.Redis, reference: str) -> list[str]:
    """Who holds the tip's entries in the handlers' streams (their pending entries): one holder
    while it is open, none once finished. (A finished entry stays in its stream, acknowledged.)"""
    held = []
    for stream in keys.HANDLER_QUEUES:
        if not redis_client.exists(stream):
            continue
        for pending in redis_client.xpending_range(stream, "handlers", "-", "+", 1000):
            entry = redis_client.xrange(stream, pending["message_id"], pending["message_id"])
            if entry and entry[0][1].get(b"tip") == reference.encode():
                held.append(pending["consumer"].decode())
    return held


def sms(core, key: str, language: str | None = "en", **fields: str) -> str:
    return core.menus.sms_text(language, key, **fields)


# -- a question, its answer -----------------------------------------------------------------------

def test_ref_and_pin_get_the_question_and_the_next_text_answers_it(twilio, phones, phone, core, casework,
                                                                   redis_client) -> None:
    # Given a handler who asked the tipster a question...
    reference, pin = a_texted_tip(twilio, phones)
    number = asked(core, casework, reference)
    parts_before = len(core.tips.get(reference).parts)
    # ...when the tipster texts their reference and PIN, the reply is the question...
    assert phone.sends(f"ref {reference} pin {pin}") == sms(core, "question", question=QUESTION)
    assert redis_client.exists(keys.sms_returning(session_key(core)))
    # ...and their next text is its answer.
    assert phone.sends("The side door, by the bins.") == sms(core, "returning_answered")

    tip = core.tips.get(reference)
    answer = tip.parts[-1]
    assert len(tip.parts) == parts_before + 1
    assert (answer.transcript, answer.answers, answer.later) == ("The side door, by the bins.", number, True)
    assert answer.hour == current_hour() and answer.hour.endswith(":00Z")  # coarse, like the tip's
    assert core.follow_up.questions(reference)[0].state == QuestionState.ANSWERED
    assert core.follow_up.waiting_question(reference) is None
    assert casework.held_by("sam") == [reference] and holders(redis_client, reference) == ["sam"]
    # The returning conversation has ended: nothing named by this phone's session key links its
    # texts but the rate counter, and the next text is not taken as another answer.
    named = [k.decode() for k in redis_client.scan_iter() if session_key(core).encode() in k]
    assert named == [keys.sms_rate(session_key(core))]
    assert phone.sends("hello again") == sms(core, "welcome", None)
    assert len(core.tips.get(reference).parts) == parts_before + 1


def test_text_after_the_pin_answers_at_once(twilio, phones, phone, core, casework, redis_client) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    number = asked(core, casework, reference)
    assert phone.sends(f"REF {reference} PIN {pin} the car was blue") == sms(core, "returning_answered")
    answer = core.tips.get(reference).parts[-1]
    assert (answer.transcript, answer.answers, answer.later) == ("the car was blue", number, True)
    assert core.follow_up.questions(reference)[0].state == QuestionState.ANSWERED
    assert not redis_client.exists(keys.sms_returning(session_key(core)))  # no conversation to continue


def test_without_a_question_the_reply_is_the_status_and_the_next_text_adds_to_the_tip(
        twilio, phones, phone, core, casework) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    received = phone.sends(f"REF {reference} PIN {pin}")
    assert received == status_reply(core.menus, "en", TipsterStatus.RECEIVED)
    assert "received" in received and "anything you want to add" in received
    assert phone.sends("They have a second car now, a red one.") == sms(core, "returning_added", reference=reference)
    added = core.tips.get(reference).parts[-1]
    assert (added.transcript, added.answers, added.later) == ("They have a second car now, a red one.", None, True)

    assert casework.claim_next("sam") == reference
    looked_at = phone.sends(f"REF {reference} PIN {pin}")
    assert looked_at == status_reply(core.menus, "en", TipsterStatus.LOOKED_AT) and "being looked at" in looked_at
    assert phone.sends("One more thing: after nine.") == sms(core, "returning_added", reference=reference)
    assert [p.transcript for p in core.tips.get(reference).parts[-2:]] == [
        "They have a second car now, a red one.", "One more thing: after nine."]
    assert casework.holder(reference) == "sam"


@pytest.mark.parametrize("language", ["cy", "pl"])
def test_the_replies_are_in_the_tips_language_whatever_the_phones(twilio, phones, phone, core, casework,
                                                                 language: str) -> None:
    reference, pin = a_texted_tip(twilio, phones, language)
    phone.sends("Hello"), phone.sends("1")  # this phone's own conversation is in English
    assert phone.sends(f"REF {reference} PIN {pin}") == status_reply(core.menus, language, TipsterStatus.RECEIVED)
    asked(core, casework, reference)
    assert phone.sends(f"REF {reference} PIN {pin}") == sms(core, "question", language, question=QUESTION)
    assert phone.sends("Y drws cefn. / Tylne drzwi.") == sms(core, "returning_answered", language)
    # A refusal cannot know the tip: it is in the phone's conversation's language.
    assert phone.sends(f"REF {reference} PIN 000000") == sms(core, "returning_refused", "en")


def test_an_empty_text_is_not_an_answer_and_done_ends_the_returning_conversation(
        twilio, phones, phone, core, casework, redis_client) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    asked(core, casework, reference)
    parts = len(core.tips.get(reference).parts)
    phone.sends(f"REF {reference} PIN {pin}")
    assert phone.sends(" \x07 ") == sms(core, "empty")
    assert redis_client.exists(keys.sms_returning(session_key(core)))  # still waiting for the answer
    assert phone.sends("done") == sms(core, "done_empty")  # taken like any DONE: nothing to store
    assert not redis_client.exists(keys.sms_returning(session_key(core)))
    assert len(core.tips.get(reference).parts) == parts
    assert core.follow_up.waiting_question(reference) is not None


# -- questions and answers crossing ------------------------------------------------------------------

def test_a_question_asked_while_the_tipster_writes_new_information_waits_for_next_time(
        twilio, phones, phone, core, casework) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    assert casework.claim_next("sam") == reference
    phone.sends(f"REF {reference} PIN {pin}")  # the status: no question yet
    question = core.follow_up.ask(reference, "sam", QUESTION)  # asked while they type
    phone.sends("The van is back.")
    assert core.tips.get(reference).parts[-1].answers is None  # they never saw the question
    assert core.follow_up.waiting_question(reference) == question
    assert phone.sends(f"REF {reference} PIN {pin}") == sms(core, "question", question=QUESTION)


def test_an_answer_to_a_question_replaced_meanwhile_is_filed_under_the_one_shown(
        twilio, phones, phone, core, casework) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    first = asked(core, casework, reference)
    phone.sends(f"REF {reference} PIN {pin}")  # shown the first
    core.follow_up.withdraw(reference, first)
    second = core.follow_up.ask(reference, "sam", "What colour is the van?")
    assert phone.sends("The back door.") == sms(core, "returning_answered")
    assert core.tips.get(reference).parts[-1].answers == first
    assert {q.number: q.state for q in core.follow_up.questions(reference)} == {
        first: QuestionState.WITHDRAWN, second.number: QuestionState.WAITING}
    assert phone.sends(f"REF {reference} PIN {pin}") == sms(core, "question", question="What colour is the van?")


class LiveLine:
    """The app behind a real threaded HTTP server; Twilio signs for the public URL and posts here."""

    def __init__(self, app, settings: Settings, standin: StandIn) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

        def transport(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
            return http_post(self.url + urlsplit(url).path, form, headers)

        self.twilio = TwilioLike(transport, PUBLIC_BASE_URL, settings.twilio_account_sid,
                                 settings.twilio_auth_token, provider=standin)


@pytest.fixture
def live(app, settings: Settings, standin: StandIn) -> Iterator[LiveLine]:
    line = LiveLine(app, settings, standin)
    yield line
    line.server.shutdown()


def all_at_once(actions: list[Callable[[], object]]) -> list[object]:
    """Run every action at the same moment, one thread each; what each returned (or raised)."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = actions[index]()
        except Exception as error:  # noqa: BLE001  # shown by the test's assertion, not lost in a thread
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_answers_arriving_at_once_are_all_kept_and_answer_the_question_once(
        live: LiveLine, phones, core, casework, redis_client) -> None:
    reference, pin = a_texted_tip(live.twilio, phones)
    number = asked(core, casework, reference)
    first, second, third = phones(live.twilio), phones(live.twilio, SECOND_PHONE), phones(live.twilio, THIRD_PHONE)
    for shown in (first, second):  # two phones are shown the question (a tipster and a friend's phone)
        assert shown.sends(f"REF {reference} PIN {pin}") == sms(core, "question", question=QUESTION)
    # Both answer at once, while a third quotes the PIN with more.
    replies = all_at_once([lambda: first.sends("The side door."), lambda: second.sends("Side door, by the bins."),
                           lambda: third.sends(f"REF {reference} PIN {pin} The one on the left.")])
    assert replies[:2] == [sms(core, "returning_answered")] * 2

    parts = {p.transcript: p for p in core.tips.get(reference).parts}
    assert parts["The side door."].answers == parts["Side door, by the bins."].answers == number
    # The third saw no question: it answers the one waiting when it is read, or, if an answer
    # came first, is new information; its reply says which, and either way it is kept.
    third_answered = replies[2] == sms(core, "returning_answered")
    assert replies[2] in (sms(core, "returning_answered"), sms(core, "returning_added", reference=reference))
    assert parts["The one on the left."].answers == (number if third_answered else None)
    assert core.follow_up.questions(reference)[0].state == QuestionState.ANSWERED
    assert core.follow_up.waiting_question(reference) is None
    assert reference.encode() not in redis_client.zrange(keys.QUESTIONS_WAITING, 0, -1)
    assert holders(redis_client, reference) == ["sam"] and casework.held_by("sam") == [reference]


@pytest.mark.parametrize("order", ["answer, then close", "close, then answer", "at once"])
def test_an_answer_and_the_handler_closing_the_tip_end_in_one_consistent_state(
        live: LiveLine, phones, core, casework, redis_client, order: str) -> None:
    reference, pin = a_texted_tip(live.twilio, phones)
    number = asked(core, casework, reference)
    tipster = phones(live.twilio)
    tipster.sends(f"REF {reference} PIN {pin}")
    reason = next(iter(casework._catalogue.close_reasons))

    def answer() -> str:
        return tipster.sends("The side door.")

    def close() -> None:
        casework.close(reference, "sam", reason)

    if order == "at once":
        replies = [r for r in all_at_once([answer, close]) if r is not None]
    else:
        steps = [answer, close] if order.startswith("answer") else [close, answer]
        replies = [r for r in (step() for step in steps) if r is not None]
    assert replies == [sms(core, "returning_answered")]  # never the failure reply, never an error

    tip, case = core.tips.get(reference), casework.case(reference)
    assert [p.transcript for p in tip.parts if p.answers == number] == ["The side door."]  # not lost
    if case.finished is None:  # the answer came after the close: reopened, back with the one who asked
        assert order != "answer, then close"
        assert tip.triage == Triage.IN_REVIEW and holders(redis_client, reference) == ["sam"]
        assert tip.tipster_status == TipsterStatus.LOOKED_AT
    else:  # the answer came first: closed with the answer in it, held by nobody
        assert order != "close, then answer"
        assert tip.triage == Triage.CLOSED and holders(redis_client, reference) == []
        assert tip.tipster_status == TipsterStatus.CLOSED


def test_an_answer_after_the_tip_was_shredded_gets_a_clear_reply_and_stores_nothing(
        twilio, phones, phone, core, casework, redis_client) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    number = asked(core, casework, reference)
    phone.sends(f"REF {reference} PIN {pin}")
    core.tips.shred(reference)
    before = redis_client.hgetall(keys.tip(reference)), redis_client.hgetall(keys.questions(reference))

    gone = sms(core, "returning_gone")
    assert phone.sends("The side door.") == gone
    assert phone.sends(f"REF {reference} PIN {pin} The side door.") == gone
    assert phone.sends(f"REF {reference} PIN {pin}") == gone
    assert (redis_client.hgetall(keys.tip(reference)), redis_client.hgetall(keys.questions(reference))) == before
    assert redis_client.hget(keys.questions(reference), f"q:{number}:state") == QuestionState.WAITING.encode()
    assert not redis_client.exists(keys.sms_returning(session_key(core)))


# -- closing a reference ---------------------------------------------------------------------------

def test_close_twice_closes_the_reference_and_its_pin_is_refused_from_then_on(
        twilio, phones, phone, core, casework, redis_client) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    number = asked(core, casework, reference)
    assert phone.sends(f"REF {reference} PIN {pin} close") == sms(core, "close_confirm")
    assert redis_client.hget(keys.tip(reference), "pin_hash")  # nothing closed yet
    assert 0 < redis_client.ttl(keys.sms_returning(session_key(core))) <= CLOSE_CONFIRM_SECONDS

    assert phone.sends(" CLOSE ") == sms(core, "reference_closed")
    assert redis_client.hget(keys.tip(reference), "pin_hash") == b""
    assert core.tips.get(reference).reference_closed
    assert core.follow_up.questions(reference)[0].state == QuestionState.ENDED
    assert not redis_client.exists(keys.sms_returning(session_key(core)))
    # The right PIN now gets the one refusal every wrong PIN gets; the tip stays with the handlers.
    parts = len(core.tips.get(reference).parts)
    refused = sms(core, "returning_refused")
    assert phone.sends(f"REF {reference} PIN {pin}") == refused
    assert phone.sends(f"REF {reference} PIN {pin} one more thing") == refused
    assert phone.sends(f"REF {reference} PIN {(int(pin) + 1) % 10**6:06d}") == refused
    assert len(core.tips.get(reference).parts) == parts
    assert holders(redis_client, reference) == ["sam"]
    assert [(q.number, q.state) for q in core.follow_up.questions(reference)] == [(number, QuestionState.ENDED)]


def test_close_typed_after_ref_and_pin_asks_for_the_confirmation_too(twilio, phones, phone, core) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    phone.sends(f"REF {reference} PIN {pin}")  # the status
    assert phone.sends("Close") == sms(core, "close_confirm")  # not an answer to file
    assert phone.sends("close") == sms(core, "reference_closed")
    assert [p.transcript for p in core.tips.get(reference).parts] == [REPORT]


def text_at(core, app, body: str, at: float, number: str = CALLER_NUMBER) -> str:
    """A text arriving at `at` (seconds since the epoch), straight into the SMS line."""
    view = InboundMessage(session_keys=core.session_keys.candidates(number, at), body=body, message_sid=None,
                          num_media=0)
    return app.extensions["tipline.sms"].sms.receive(view, at)


def test_a_close_confirmed_too_late_closes_nothing(twilio, phones, core, app, redis_client) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    start = time.time()
    assert text_at(core, app, f"REF {reference} PIN {pin} CLOSE", start) == sms(core, "close_confirm")
    assert text_at(core, app, "CLOSE", start + CLOSE_CONFIRM_SECONDS + 1) != sms(core, "reference_closed")
    assert redis_client.hget(keys.tip(reference), "pin_hash")
    # Within the ten minutes it closes.
    text_at(core, app, f"REF {reference} PIN {pin} CLOSE", start + 700)
    assert text_at(core, app, "CLOSE", start + 700 + CLOSE_CONFIRM_SECONDS) == sms(core, "reference_closed")
    assert redis_client.hget(keys.tip(reference), "pin_hash") == b""


def test_a_returning_conversation_lasts_as_long_as_an_idle_session(twilio, phones, core, app, casework,
                                                                   redis_client) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    asked(core, casework, reference)
    start = time.time()
    text_at(core, app, f"REF {reference} PIN {pin}", start)
    assert IDLE_SECONDS - 5 <= redis_client.ttl(keys.sms_returning(session_key(core))) <= IDLE_SECONDS
    parts = len(core.tips.get(reference).parts)
    assert text_at(core, app, "The side door.", start + IDLE_SECONDS + 1) == sms(core, "welcome", None)
    assert len(core.tips.get(reference).parts) == parts  # too late to be taken as the answer


def test_anything_but_close_cancels_the_close_and_is_taken_like_any_text(twilio, phones, phone, core,
                                                                         redis_client) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    phone.sends(f"REF {reference} PIN {pin} CLOSE")
    assert phone.sends("no, wait") == sms(core, "welcome", None)  # a new conversation, as any first text
    assert not redis_client.exists(keys.sms_returning(session_key(core)))
    assert phone.sends("CLOSE") != sms(core, "reference_closed")
    assert redis_client.hget(keys.tip(reference), "pin_hash")
    assert phone.sends(f"REF {reference} PIN {pin}") == status_reply(core.menus, "en", TipsterStatus.RECEIVED)


# Twilio's default opt-out, opt-in and help keywords: the provider answers these itself (and keeps
# who sent them), so no word of ours may be one.
PROVIDER_KEYWORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "START", "YES", "UNSTOP", "HELP",
                     "INFO"}


def test_close_and_support_are_ours_alone_and_every_language_asks_for_close_itself(core) -> None:
    assert not (words.CLOSE_WORDS | words.SUPPORT_WORDS) & (PROVIDER_KEYWORDS | words.STOP_WORDS
                                                              | words.START_WORDS | words.HELP_WORDS)
    for language in core.menus.languages:  # a translated "CLOSE" would be a word the line does not read
        confirm = sms(core, "close_confirm", language)
        assert "CLOSE" in confirm.split() and not set(confirm.upper().split()) & PROVIDER_KEYWORDS, confirm


# -- SUPPORT ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", ["SUPPORT", " support ", "Support"])
def test_support_lists_the_services_and_stores_nothing(phone, core, redis_client, body: str) -> None:
    reply = phone.sends(body)
    assert reply == core.support.for_language(None).texted()
    assert all(service.number in reply for service in core.support.for_language("en").services)
    # No session, no counter: only the (sealed) deletion of the text at the provider, and the
    # marker that it is accounted for (a keyed digest of its sid, gone with the job).
    marker = core.sms.cleanup.marker(phone.message_sids[0])
    assert {k for k in redis_client.keys("*") if not k.startswith(b"rq:")} == {marker.encode()}
    assert len(Queue(keys.QUEUE_MESSAGES, connection=redis_client).job_ids) == 1


def test_support_in_a_conversation_is_in_its_language_and_leaves_it_untouched(phone, core, redis_client) -> None:
    phone.sends("Witam"), phone.sends(LANGUAGE_DIGITS["pl"])
    session = keys.sms_session(session_key(core))
    before = redis_client.hgetall(session), redis_client.get(keys.sms_rate(session_key(core)))
    names_before = {k for k in redis_client.keys("*") if not k.startswith((b"rq:", b"tipline:sms:inbound:"))}

    assert phone.sends("support") == core.support.for_language("pl").texted()
    assert (redis_client.hgetall(session), redis_client.get(keys.sms_rate(session_key(core)))) == before
    assert {k for k in redis_client.keys("*") if not k.startswith((b"rq:", b"tipline:sms:inbound:"))} == names_before
    assert phone.sends("1") == sms(core, "report_prompt", "pl")  # the conversation carries on


# -- discreet replies -------------------------------------------------------------------------------

def telling_words() -> list[str]:
    """Every topic's label in every language (spoken and texted), and words naming what the line is."""
    labels = set(TELLING_WORDS)
    for path in (CONFIG_DIR / "prompts").glob("*.json"):
        catalogue = json.loads(path.read_text(encoding="utf-8"))
        labels |= set(catalogue["categories"].values()) | set(catalogue["sms"]["categories"].values())
    return sorted(labels)


def assert_discreet(reply: str) -> None:
    assert segment_count(reply) <= MAX_SEGMENTS, f"{segment_count(reply)} segments: {reply!r}"
    for word in telling_words():
        assert not re.search(rf"(?<!\w){re.escape(word)}", reply, re.IGNORECASE), f"{word!r} in {reply!r}"


@pytest.mark.parametrize("language", ["en", "cy", "pl"])
def test_every_follow_up_reply_is_discreet_and_fits_two_texts(twilio, phones, phone, core, casework,
                                                             language: str) -> None:
    reference, pin = a_texted_tip(twilio, phones, language)
    longest_question = "Where " + "exactly " * 40
    while not core.follow_up.fits_a_text(language, longest_question):
        longest_question = longest_question[:-8]
    replies = [phone.sends(f"REF {reference} PIN {pin}"), phone.sends("More: a red car too.")]
    asked(core, casework, reference, longest_question.strip() + "?")
    replies += [phone.sends(f"REF {reference} PIN {pin}"), phone.sends("Yes, there."),
                phone.sends(f"REF {reference} PIN {pin} CLOSE"), phone.sends("CLOSE"),
                phone.sends(f"REF {reference} PIN {pin}"), phone.sends("SUPPORT")]
    assert len(set(replies)) == len(replies)  # each step answered, each differently
    replies += [status_reply(core.menus, language, status) for status in TipsterStatus]
    replies += [sms(core, key, language, reference="8" * 11) for key in (
        "returning_answered", "returning_added", "returning_gone", "close_confirm", "reference_closed",
        "returning_refused", "returning_add_more")]
    for reply in replies:
        assert_discreet(reply)


def test_the_discretion_check_catches_a_telling_reply() -> None:
    for reply in ("Your tip about drugs was read.", "Passed to the POLICE.", "Dotyczy: narkotyki", "x" * 307):
        with pytest.raises(AssertionError):
            assert_discreet(reply)


# -- hostile texts through the returning conversation --------------------------------------------------

RETURNING_CASES = 80  # conversations of one to four texts; each case restores the same starting state


@pytest.fixture
def signed(app, settings: Settings) -> SignedWebhooks:
    return SignedWebhooks(app, PUBLIC_BASE_URL, settings.twilio_auth_token)


def returning_conversations(reference: str, pin: str) -> st.SearchStrategy[list[str]]:
    """What a returning tipster (or someone holding their phone) texts: most often the right
    REF and PIN first (so the texts after it reach the returning conversation), with CLOSE,
    SUPPORT, DONE, an answer or hostile text after it; then up to three more texts: CLOSE,
    SUPPORT, DONE, YES, REF/PIN right, wrong and mangled, and hostile, huge or control text."""
    words = st.sampled_from(["", "CLOSE", " close ", "c l o s e", "CLOSE CLOSE", "SUPPORT", "support", "DONE",
                             "YES", "STOP", "1", "the car was blue"])
    anything = st.one_of(words, hostile_texts, huge_texts, control_character_texts)
    separators = st.sampled_from([("REF ", " PIN ", " "), ("ref:", "pin:", ""), ("REF#", "PIN-", "\n"),
                                  ("REF", "PIN", "")])

    def quoted(ref: str, pin_: str, separator: tuple[str, str, str], rest: str) -> str:
        return f"{separator[0]}{ref}{separator[1]}{pin_}{separator[2] if rest else ''}{rest}"

    right = st.builds(quoted, st.just(reference), st.just(pin), separators, st.one_of(words, anything))
    mangled = st.builds(quoted, st.sampled_from([reference, reference[:6] + " " + reference[6:], reference[:-1],
                                                 "0" * 11, ""]),
                        st.sampled_from([pin, pin[:4], f"{(int(pin) + 1) % 10**6:06d}", "", "1" * 40]),
                        separators, anything)

    def weighted(*choices: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        """One of `choices`, each as often as it is listed (one_of would count a repeat once)."""
        return st.sampled_from(choices).flatmap(lambda chosen: chosen)

    return st.builds(lambda first, more: [first, *more], weighted(right, right, right, mangled, anything),
                     st.lists(weighted(words, words, right, anything, mangled), max_size=3))


def every_flow(reference: str, pin: str) -> list[list[str]]:
    """The conversations the flows above take, run first whatever hypothesis draws (explicit examples)."""
    quote = f"REF {reference} PIN {pin}"
    return [[quote, "The side door."], [f"{quote} the car was blue"], [f"{quote} CLOSE", "close"],
            [f"{quote} CLOSE", "no"], [quote, "CLOSE", "CLOSE"], [quote, "SUPPORT", "", "DONE"],
            [quote, "x" * 1600], [f"{quote} CLOSE", "\x00CLOSE\x07"], [quote, quote, "YES"]]


def test_hostile_texts_through_the_returning_conversation_never_fail_and_fit_two_texts(
        twilio, phones, core, casework, signed: SignedWebhooks, redis_client, log_lines: LogLines) -> None:
    reference, pin = a_texted_tip(twilio, phones)
    asked(core, casework, reference)
    # The state each case starts from: the tip, its question, the handler's claim.
    start = {key: (redis_client.dump(key), max(redis_client.pttl(key), 0)) for key in redis_client.keys("*")}
    sender = phones(twilio)
    with FuzzTally("POST /sms/incoming") as tally:
        def a_returning_tipster(conversation: list[str]) -> None:
            redis_client.flushall()
            for key, (dumped, ttl) in start.items():
                # replace: a key another connection wrote between the FLUSHALL and here (the run
                # failed once on BUSYKEY) must not stop the case from starting where it should.
                redis_client.restore(key, ttl, dumped, replace=True)
            for body in conversation:
                with tally.case():
                    form = MultiDict(sender.fields(new_sid("SM"), body, 0))
                    phones.posted_sids.add(form["MessageSid"])
                    mark = len(log_lines.lines)
                    response = signed.post("/sms/incoming", form)
                    failures = [line for line in log_lines.lines[mark:] if FAILURE_LINE.search(line)]
                    assert not failures, "the app logged a failure:\n" + "\n".join(failures)
                    if response.status_code == 413:
                        assert len(encoded_form(form)) > MAX_WEBHOOK_BYTES
                        continue
                    assert_valid_twiml(response, SMS_VERBS, PUBLIC_BASE_URL)
                    for reply in reply_texts(response.get_data(as_text=True)):
                        assert reply and segment_count(reply) <= MAX_SEGMENTS, f"{reply!r}"
                        assert reply != sms(core, "failure", None)

        fuzzed = given(conversation=returning_conversations(reference, pin))(a_returning_tipster)
        for flow in every_flow(reference, pin):
            fuzzed = example(conversation=flow)(fuzzed)
        fuzz_settings(RETURNING_CASES)(fuzzed)()
