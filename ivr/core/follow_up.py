"""The way back to an anonymous tipster: a handler's question, the tipster's answer, and
what the tipster is told about their tip.

The only thread back to someone anonymous is the reference and PIN they were given. A
handler asks a question on a tip (`ask`); the tipster hears it when they call or text
back and prove the PIN (the channels check it with `ivr.core.pin_guard`), and what they
say next joins the tip as a part that answers it (`answer_by_text`, or a recording through
`ivr.core.recordings` with `CallState.question`). Without a question waiting they hear
their tip's tipster-facing status (`ivr.core.statuses.TipsterStatus`) and may add more.

Privacy, and why each rule:
- A question is sealed under the tip's own data key like every other text of the tip,
  so shredding the tip shreds its questions too.
- An answer's part carries a coarse hour, like the tip: nothing records when to the
  minute a tipster came back, and no record links their calls or texts to each other
  beyond the reference they typed.
- A tipster may close their reference (`close_reference`): the PIN hash is destroyed, so
  from then on their reference and PIN get the same refusal as a wrong PIN; the tip
  itself stays with the handlers.

Routing: an answer (or any new information) goes first to the handler who asked; if they
do not take it within the lease, the next claim does (`HandlerQueue.bring_back`, in the
same transaction as the part). A finished tip reopens for a supplementary pass-on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import redis

from ivr.core import keys
from ivr.core.choices import Choices
from ivr.core.coarse_time import current_hour, hour_milliseconds
from ivr.core.prompts import Menus
from ivr.core.redis_values import as_bytes, as_text
from ivr.core.segments import MAX_SEGMENTS, segment_count
from ivr.core.statuses import QuestionState, TipsterStatus, Triage
from ivr.core.tips import NewPart, ShreddedTip, TipStore
from ivr.core.transactions import atomically

# The triage a tip reopened by its tipster gets: someone must look at it again.
REOPENED_TRIAGE = Triage.IN_REVIEW


class QuestionRefused(ValueError):
    """A question cannot be asked (or withdrawn); the message says why, fit to show a handler."""


@dataclass(frozen=True)
class Question:
    """A handler's question to the tipster, opened."""

    number: int
    text: str
    asked_by: str
    hour: str  # the coarse hour it was asked
    state: QuestionState


@dataclass(frozen=True)
class WhatTheTipsterHears:
    """After a proven PIN: the waiting question, else the tip's status, in the tip's language."""

    reference: str
    language: str
    question: Question | None
    status: TipsterStatus


class FollowUp:
    """Questions, answers and the tipster-facing status of tips (one per process, in the core)."""

    def __init__(self, connection: redis.Redis, tips: TipStore, menus: Menus, lease_seconds: int) -> None:
        self._redis = connection
        self._tips = tips
        self._menus = menus
        self._lease_ms = lease_seconds * 1000

    # -- the handlers' side -----------------------------------------------------------------

    def fits_a_text(self, language: str | None, text: str) -> bool:
        """Does `text`, in the reply that carries a question, fit MAX_SEGMENTS SMS segments?"""
        return segment_count(self._menus.sms_text(language, "question", question=text)) <= MAX_SEGMENTS

    def ask(self, reference: str, handler: str, text: str) -> Question:
        """Ask the tipster `text` (already checked for discretion by the console).

        One question waits at a time; a new one replaces the old only after the old is
        withdrawn. QuestionRefused says why it cannot be asked.
        """
        text = " ".join(text.split())
        tip = self._tips.get(reference)
        if tip is None:
            raise QuestionRefused("There is no tip with that reference.")
        if not text:
            raise QuestionRefused("The question is empty.")
        if tip.reference_closed:
            raise QuestionRefused("The tipster closed their reference: no question can reach them now.")
        if not self.fits_a_text(tip.language, text):
            raise QuestionRefused("The question is too long to reach the tipster in one reply of two text "
                                  "messages: shorten it.")
        key, now = keys.questions(reference), self._tips.clock()

        def store(pipe: redis.client.Pipeline) -> Question:
            if pipe.hget(key, "waiting"):
                raise QuestionRefused("A question is already waiting for the tipster: withdraw it first.")
            if pipe.hget(keys.tip(reference), "reference_closed"):
                raise QuestionRefused("The tipster closed their reference: no question can reach them now.")
            number = int(pipe.hget(key, "count") or 0) + 1
            question = Question(number, text, handler, current_hour(now), QuestionState.WAITING)
            sealed = self._tips.seal_for(reference, f"question:{number}", json.dumps(
                {"text": text, "asked_by": handler, "hour": question.hour}))
            pipe.multi()
            pipe.hset(key, mapping={"count": number, "waiting": number, f"q:{number}": sealed,
                                    f"q:{number}:state": QuestionState.WAITING})
            pipe.zadd(keys.QUESTIONS_WAITING, {reference: hour_milliseconds(now)})
            return question

        return atomically(self._redis, [key, keys.tip(reference)], store)

    def withdraw(self, reference: str, number: int) -> None:
        """Withdraw a waiting question: the tipster no longer hears it."""
        key = keys.questions(reference)

        def store(pipe: redis.client.Pipeline) -> None:
            if as_text(pipe.hget(key, f"q:{number}:state") or b"") != QuestionState.WAITING:
                raise QuestionRefused("That question is not waiting any more (answered, withdrawn or ended).")
            pipe.multi()
            pipe.hset(key, f"q:{number}:state", QuestionState.WITHDRAWN)
            pipe.hdel(key, "waiting")
            pipe.zrem(keys.QUESTIONS_WAITING, reference)

        atomically(self._redis, [key], store)

    def questions(self, reference: str) -> list[Question]:
        """Every question asked on the tip, oldest first, opened."""
        fields = {as_text(k): as_bytes(v) for k, v in self._redis.hgetall(keys.questions(reference)).items()}
        asked = []
        for number in range(1, int(fields.get("count", b"0")) + 1):
            sealed = fields.get(f"q:{number}")
            if sealed is None:
                continue
            opened = json.loads(self._tips.open_for(reference, f"question:{number}", sealed))
            asked.append(Question(number, opened["text"], opened["asked_by"], opened["hour"],
                                  QuestionState(as_text(fields[f"q:{number}:state"]))))
        return asked

    def waiting_question(self, reference: str) -> Question | None:
        number = self._redis.hget(keys.questions(reference), "waiting")
        if not number:
            return None
        return next((q for q in self.questions(reference) if q.number == int(number)), None)

    # -- the tipster's side (after the PIN guard said yes) ----------------------------------

    def for_tipster(self, reference: str) -> WhatTheTipsterHears | None:
        """What a tipster who proved their PIN hears: the waiting question or the status.
        None when the tip is gone (shredded meanwhile)."""
        try:
            tip = self._tips.get(reference)
        except ShreddedTip:
            return None
        if tip is None:
            return None
        return WhatTheTipsterHears(reference, self._menus.catalogue(tip.language).language,
                                   self.waiting_question(reference), tip.tipster_status)

    def answer_by_text(self, reference: str, text: str, answers: int | None) -> int | None:
        """Add a text from a returning tipster to their tip: the answer to question `answers`
        (the one they were shown) or, without one, more information. Returns the part's
        index; None when the tip is gone (shredded meanwhile): nothing is stored."""
        tip_key = keys.tip(reference)

        def store(pipe: redis.client.Pipeline) -> int | None:
            if not pipe.exists(tip_key):
                return None
            came_back = self.read_before_return(pipe, reference, answers)
            try:
                index = self._tips.add_text_part(pipe, NewPart(
                    choices=Choices(reference=reference), pin_hash=None, channel="sms", urgent=False, seconds=0),
                    text)
            except ShreddedTip:
                return None
            self.queue_return(pipe, reference, index, came_back)
            return index

        return atomically(self._redis, [tip_key, keys.questions(reference), keys.case(reference)], store)

    def read_before_return(self, pipe: redis.client.Pipeline, reference: str, answers: int | None) -> ComingBack:
        """Read (inside the caller's WATCH of the tip, its questions and its case) what
        `queue_return` needs: which question the part answers and who is offered it first."""
        key = keys.questions(reference)
        state = pipe.hget(key, f"q:{answers}:state") if answers else None
        number = answers if state else None
        latest = int(pipe.hget(key, "count") or 0)
        asker_of = number or latest
        offered_to = None
        sealed = pipe.hget(key, f"q:{asker_of}") if asker_of else None
        if sealed:
            try:
                offered_to = json.loads(self._tips.open_for(reference, f"question:{asker_of}",
                                                            as_bytes(sealed)))["asked_by"]
            except ShreddedTip:
                offered_to = None  # the tip went meanwhile: the caller finds that out and stores nothing
        return ComingBack(answers=number, was_waiting=as_text(state or b"") == QuestionState.WAITING,
                          offered_to=offered_to)

    def queue_return(self, pipe: redis.client.Pipeline, reference: str, index: int, came_back: ComingBack) -> None:
        """Queue (inside the caller's MULTI, after the part) the marks of a returning
        tipster's part, the answered question's new state, and the tip's way back to a handler."""
        now = self._tips.clock()
        self._tips.mark_later_part(pipe, reference, index, came_back.answers)
        if came_back.answers and came_back.was_waiting:
            key = keys.questions(reference)
            pipe.hset(key, f"q:{came_back.answers}:state", QuestionState.ANSWERED)
            pipe.hdel(key, "waiting")
            pipe.zrem(keys.QUESTIONS_WAITING, reference)
        self._tips.queue.bring_back(pipe, reference, now, self._lease_ms, came_back.offered_to, REOPENED_TRIAGE)

    def close_reference(self, reference: str) -> bool:
        """The tipster closes their reference: the PIN hash is destroyed, so follow-up ends for
        it; a waiting question ends unanswered. The tip stays with the handlers. False when
        the tip is gone."""
        tip_key, key = keys.tip(reference), keys.questions(reference)

        def store(pipe: redis.client.Pipeline) -> bool:
            if not pipe.exists(tip_key):
                return False
            waiting = pipe.hget(key, "waiting")
            pipe.multi()
            pipe.hset(tip_key, mapping={"pin_hash": "", "reference_closed": current_hour(self._tips.clock())})
            if waiting:
                pipe.hset(key, f"q:{as_text(waiting)}:state", QuestionState.ENDED)
                pipe.hdel(key, "waiting")
                pipe.zrem(keys.QUESTIONS_WAITING, reference)
            return True

        return atomically(self._redis, [tip_key, key], store)

    # -- the supervisors' deadlines ---------------------------------------------------------

    def questions_waiting(self) -> list[tuple[str, int]]:
        """(reference, the hour it was asked in ms) of every tip with a question waiting, oldest first."""
        return _scored(self._redis.zrange(keys.QUESTIONS_WAITING, 0, -1, withscores=True))

    def status_unchanged_since(self, before_ms: int) -> list[tuple[str, int]]:
        """(reference, the hour its tipster-facing status began in ms) of every tip still
        "received" or "being looked at" since before `before_ms`, oldest first."""
        return _scored(self._redis.zrangebyscore(keys.TIPSTER_STATUS_SINCE, 0, before_ms - 1, withscores=True))


@dataclass(frozen=True)
class ComingBack:
    """What a returning tipster's part does, read before the transaction writes it."""

    answers: int | None  # the question it answers (it existed)
    was_waiting: bool  # that question was still waiting (else: withdrawn or answered already)
    offered_to: str | None  # the handler offered the tip first


def _scored(raw: Any) -> list[tuple[str, int]]:
    """A sorted set read WITHSCORES, as (member, score in whole ms)."""
    return [(as_text(member), int(score)) for member, score in cast("list[tuple[bytes, float]]", raw)]
