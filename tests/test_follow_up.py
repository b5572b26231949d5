"""The way back to a tipster, at the core: questions, answers, who gets the tip back, status.

Real Redis, the app's own core and casework; the channels and the console pages have their
own tests (test_follow_up_voice.py, test_follow_up_sms.py, test_follow_up_console.py).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from ivr.core import keys
from ivr.core.call_state import CallState
from ivr.core.choices import Choices
from ivr.core.follow_up import QuestionRefused
from ivr.core.handler_queue import NOBODY
from ivr.core.statuses import QuestionState, TipsterStatus, Triage
from tests.conftest import CALLER_NUMBER
from tests.console_people import a_texted_tip

REPORT = "Two men sell cocaine from a grey Golf outside the chip shop on Mare Street most evenings."


def claimed_tip(twilio, casework, handler: str = "sam") -> str:
    reference = a_texted_tip(twilio, CALLER_NUMBER, REPORT)
    assert casework.claim_next(handler) == reference
    return reference


def lapse(redis_client, casework, reference: str) -> None:
    """Make the tip's current lease look older than the lease (as time passing would)."""
    stream, entry = (v.decode() for v in redis_client.hmget(keys.case(reference), "stream", "entry"))
    holder = casework._queue.lease(stream, entry).holder
    redis_client.xclaim(stream, "handlers", holder, 0, [entry], idle=casework.lease_seconds * 1000 + 1, justid=True)


def test_an_answer_goes_back_to_the_handler_who_asked_then_to_the_returning_queue(
        twilio, core, casework, redis_client) -> None:
    reference = claimed_tip(twilio, casework, "sam")
    question = core.follow_up.ask(reference, "sam", "Which door do they use?")
    assert core.follow_up.waiting_question(reference) == question
    casework.release(reference, "sam")
    other = a_texted_tip(twilio, "+447700900222", REPORT)  # a new tip waits in the normal queue

    index = core.follow_up.answer_by_text(reference, "The side door by the bins.", answers=question.number)

    tip = casework.tip(reference)
    assert tip.parts[index - 1].answers == question.number and tip.parts[index - 1].later
    assert tip.parts[index - 1].transcript == "The side door by the bins."
    assert core.follow_up.questions(reference)[0].state == QuestionState.ANSWERED
    assert core.follow_up.waiting_question(reference) is None
    assert casework.held_by("sam") == [reference]  # sam's own list
    assert casework.holder(reference) == "sam"
    assert casework.claim_next("alex") == other  # not taken from sam while the lease runs

    lapse(redis_client, casework, reference)
    assert casework.claim_next("alex") == reference  # returning, read before other new tips
    assert casework.holder(reference) == "alex" and casework.held_by("sam") == []


def test_new_information_on_a_passed_on_tip_reopens_it_once(twilio, core, casework, redis_client) -> None:
    reference = claimed_tip(twilio, casework)
    casework.close(reference, "sam", next(iter(casework._catalogue.close_reasons)))
    assert core.tips.get(reference).tipster_status == TipsterStatus.CLOSED

    core.follow_up.answer_by_text(reference, "They moved to Well Street.", answers=None)

    case = casework.case(reference)
    assert case.finished is None and casework.tip(reference).triage == Triage.IN_REVIEW
    assert core.tips.get(reference).tipster_status == TipsterStatus.LOOKED_AT
    assert casework.holder(reference) is None  # nobody asked: straight into the returning queue
    assert casework.waiting()["claimed"] == 0
    assert casework.claim_next("alex") == reference
    assert casework.claim_next("jo") is None  # one entry, one holder


def test_an_unclaimed_tip_stays_where_it_waits(twilio, core, casework) -> None:
    reference = a_texted_tip(twilio, CALLER_NUMBER, REPORT)
    core.follow_up.answer_by_text(reference, "More: it is a grey Golf.", answers=None)
    assert core.tips.queue.tip_ids() == [reference]
    assert casework.claim_next("sam") == reference and casework.claim_next("alex") is None


def test_one_question_waits_at_a_time_and_a_withdrawn_one_still_takes_its_late_answer(
        twilio, core, casework) -> None:
    reference = claimed_tip(twilio, casework)
    first = core.follow_up.ask(reference, "sam", "Which door?")
    with pytest.raises(QuestionRefused, match="withdraw it first"):
        core.follow_up.ask(reference, "sam", "What car?")
    core.follow_up.withdraw(reference, first.number)
    second = core.follow_up.ask(reference, "sam", "What car?")
    # The tipster heard the first before it was withdrawn: their answer is kept, under it.
    index = core.follow_up.answer_by_text(reference, "The back door.", answers=first.number)
    assert casework.tip(reference).parts[index - 1].answers == first.number
    states = {q.number: q.state for q in core.follow_up.questions(reference)}
    assert states == {first.number: QuestionState.WITHDRAWN, second.number: QuestionState.WAITING}


def test_a_question_too_long_for_two_texts_is_refused(twilio, core, casework) -> None:
    reference = claimed_tip(twilio, casework)
    with pytest.raises(QuestionRefused, match="too long"):
        core.follow_up.ask(reference, "sam", "Where exactly? " * 30)


def test_closing_a_reference_destroys_the_pin_and_ends_the_waiting_question(
        twilio, core, casework, redis_client) -> None:
    reference = claimed_tip(twilio, casework)
    core.follow_up.ask(reference, "sam", "Which door?")
    assert core.follow_up.close_reference(reference)
    assert redis_client.hget(keys.tip(reference), "pin_hash") == b""
    assert core.follow_up.questions(reference)[0].state == QuestionState.ENDED
    assert core.tips.get(reference).reference_closed
    with pytest.raises(QuestionRefused, match="closed their reference"):
        core.follow_up.ask(reference, "sam", "Anything else?")
    assert casework.holder(reference) == "sam"  # the tip stays with the handlers


def test_the_status_clock_and_the_deadlines_lists(twilio, core, casework) -> None:
    long_ago = datetime(2026, 6, 1, 10, 30, tzinfo=UTC)
    core.tips.clock = lambda: long_ago
    try:
        old = a_texted_tip(twilio, CALLER_NUMBER, REPORT)
    finally:
        core.tips.clock = lambda: datetime.now(UTC)
    fresh = a_texted_tip(twilio, "+447700900333", REPORT)
    cutoff = int((datetime.now(UTC) - timedelta(days=90)).timestamp() * 1000)
    assert [reference for reference, _ in core.follow_up.status_unchanged_since(cutoff)] == [old]
    assert [reference for reference, _ in core.tips.queue.unclaimed()] == [old, fresh]
    assert casework.claim_next("sam") == old
    assert [reference for reference, _ in core.follow_up.status_unchanged_since(cutoff)] == []


def test_two_answers_at_once_and_an_answer_racing_a_close_end_consistent(twilio, core, casework) -> None:
    reference = claimed_tip(twilio, casework)
    question = core.follow_up.ask(reference, "sam", "Which door?")
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def answer(text: str) -> None:
        try:
            barrier.wait()
            core.follow_up.answer_by_text(reference, text, answers=question.number)
        except BaseException as error:  # noqa: BLE001  # reported below
            errors.append(error)

    def close() -> None:
        try:
            barrier.wait()
            casework.close(reference, "sam", next(iter(casework._catalogue.close_reasons)))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=answer, args=(text,)) for text in ("Side door.", "The blue one.")]
    threads.append(threading.Thread(target=close))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    tip, case = casework.tip(reference), casework.case(reference)
    answers = [p for p in tip.parts if p.answers == question.number]
    assert sorted(p.transcript for p in answers) == ["Side door.", "The blue one."]
    # Whatever the order, the tip has one entry: finished with both answers before it,
    # or reopened by an answer after the close, held by the one who asked.
    entries = [e for stream in keys.HANDLER_QUEUES for e in core.redis.xrange(stream)]
    assert len(entries) >= 1
    if case.finished is None:
        assert casework.holder(reference) == "sam" and tip.triage == Triage.IN_REVIEW
    else:
        assert tip.triage == Triage.CLOSED and casework.holder(reference) is None
    pending = [p for stream in keys.HANDLER_QUEUES
               for p in core.redis.xpending_range(stream, "handlers", "-", "+", 100)]
    assert len(pending) == (0 if case.finished else 1)
    assert NOBODY.encode() not in {p["consumer"] for p in pending}


def test_a_called_back_answer_on_an_urgent_tip_is_transcribed_first(twilio, core, redis_client) -> None:
    reference = a_texted_tip(twilio, CALLER_NUMBER, REPORT, category_digit="2")  # weapons: urgent
    proven = CallState(choices=Choices(reference=reference, language="en"), proven=True)
    assert core.recordings.accept("RE" + "a" * 32, "CA" + "b" * 32, 20, proven)
    assert redis_client.llen(f"rq:queue:{keys.QUEUE_URGENT_RECORDINGS}") == 1
    assert redis_client.llen(f"rq:queue:{keys.QUEUE_RECORDINGS}") == 0
    assert core.tips.get(reference).parts[-1].later


def test_a_tip_queued_before_cases_knew_their_entry_keeps_one_entry_when_its_tipster_comes_back(
        twilio, core, casework, redis_client) -> None:
    reference = a_texted_tip(twilio, CALLER_NUMBER, REPORT)
    redis_client.hdel(keys.case(reference), "stream", "entry")  # as a tip queued by an older release
    core.follow_up.answer_by_text(reference, "More: it is a grey Golf.", answers=None)
    assert core.tips.queue.tip_ids() == [reference]
    assert casework.claim_next("sam") == reference and casework.claim_next("alex") is None
