"""A tipster calling back with their reference: key it and the PIN, hear the handler's
question (or where their tip is), answer it after the tone, or close the reference.

Steps, on the voice blueprint: the topic menu's 9 → `/voice/returning/reference` (keyed
and #; the Damm check digit catches a typo, three bad tries go back to the topic menu) →
`/voice/returning/pin` → `/voice/returning/menu` (1 again, 2 record, 8 close) →
`/voice/returning/recorded` or `/voice/returning/close`.

What it keeps and why:
- Nothing on the server: the reference rides in the sealed step token like every other
  choice, the PIN never (it is not needed once proven). A proven token lives as long as any
  step token (an hour), so nothing links this call to the tipster's others beyond the
  reference they typed.
- A proven PIN on a tip deleted under the retention rules (its tombstone) hears "this report
  has been dealt with and its details deleted", then the topic menu.
- Every refusal (wrong PIN, unknown, locked or closed reference, a tip gone) is the same
  sentence after the same work (`ivr.core.pin_guard`), and the caller is back at the topic
  menu; nothing says which part was wrong. The guard is the SMS line's: one lock-out per
  reference, whichever channel guesses.
- The recording goes through the first message's pipeline: its status callback's token
  carries the proven state, and `RecordingIntake.accept` joins it to the tip as a later part
  answering `CallState.question` (0: new information) and brings the tip back to the handler.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace

from flask import Response

from ivr.core.call_state import CallState
from ivr.core.choices import Choices
from ivr.core.follow_up import WhatTheTipsterHears
from ivr.core.pin_guard import Proof
from ivr.core.references import is_valid_reference
from ivr.edge import CallStep
from ivr.voice.routes import after_the_tone, bp, call_step
from ivr.voice.script import AGAIN_KEY, CLOSE_KEY, RECORD_KEY, Script
from ivr.voice.wiring import voice_line

# Tries at keying a reference (a check digit that fails, or nothing keyed) before the topic menu again.
REFERENCE_TRIES = 3


def _script() -> Script:
    return voice_line().script


def _topics(state: CallState, preface: str) -> str:
    """Back to the topic menu in the caller's language, with nothing of the reference kept."""
    return _script().category_menu(CallState(Choices(language=state.choices.language)), preface=preface)


def _asked(heard: WhatTheTipsterHears) -> int:
    return heard.question.number if heard.question else 0


def proven_step(handle: Callable[[CallStep, CallState, str], str]) -> Callable[[], Response | str]:
    """A step only a caller who proved their PIN reaches: the state must say so, else the call starts over.

    The step gets the proven reference as its third argument.
    """

    @functools.wraps(handle)
    def step_for_the_proven(step: CallStep, state: CallState) -> str:
        if not state.proven or not state.choices.reference:
            return _script().language_menu(CallState(), preface="start_again")
        return handle(step, state, state.choices.reference)

    return call_step()(step_for_the_proven)


@bp.post("/returning/reference")
@call_step()
def returning_reference(step: CallStep, state: CallState) -> str:
    if step.digits and is_valid_reference(step.digits):
        return _script().keying(state.advance(reference=step.digits), "pin_prompt", "voice.returning_pin")
    if state.attempt + 1 >= REFERENCE_TRIES:
        return _topics(state, "reference_gave_up")
    return _script().keying(state.again(), "reference_not_right", "voice.returning_reference")


@bp.post("/returning/pin")
@call_step()
def returning_pin(step: CallStep, state: CallState) -> str:
    line = voice_line()
    if line.storage.refuses_writes():  # the guard counts failed PINs in Redis: no lock-out, no check
        return _script().failure()
    reference = "" if state.proven else state.choices.reference or ""
    # The guard does the same work for every refusal, malformed digits and no digits included.
    proof = line.pin_guard.check(reference, step.digits or "")
    if proof is Proof.DELETED:  # the tipster of a tip deleted under the retention rules
        return _topics(state, "report_deleted")
    heard = line.follow_up.for_tipster(reference) if proof is Proof.PROVEN else None
    if heard is None:
        return _topics(state, "returning_refused")
    proven = CallState(Choices(language=heard.language, reference=reference), proven=True, question=_asked(heard))
    return _script().follow_up_menu(proven, heard)


@bp.post("/returning/menu")
@proven_step
def returning_menu(step: CallStep, state: CallState, reference: str) -> str:
    if step.digits == RECORD_KEY:
        return _script().record_answer(state.advance())
    if step.digits == CLOSE_KEY:
        return _script().close_confirm(state.advance())
    if state.attempt + 1 >= voice_line().menus.step("read_back").plays:
        return _script().goodbye(state)
    return _again(state.again(), reference, preface=None if step.digits == AGAIN_KEY else "not_understood")


@bp.post("/returning/recorded")
@proven_step
def returning_recorded(step: CallStep, state: CallState, reference: str) -> str:
    return after_the_tone(step, state, received=lambda: _script().goodbye(state, preface="answer_received"),
                          once_more=lambda: _script().record_answer(state.again(), retry=True))


@bp.post("/returning/close")
@proven_step
def returning_close(step: CallStep, state: CallState, reference: str) -> str:
    if step.digits == CLOSE_KEY and voice_line().storage.refuses_writes():
        return _script().failure()
    if step.digits == CLOSE_KEY:
        voice_line().follow_up.close_reference(reference)  # False: the tip went meanwhile; closed either way
        voice_line().replicas.confirm()  # "closed" is said only once a replica holds it (else: failure)
        return _script().goodbye(state, key="reference_closed")
    return _again(state.advance(), reference, preface="reference_kept")


def _again(state: CallState, reference: str, preface: str | None) -> str:
    """The question (as it stands now: it may have been withdrawn or replaced) or the status, again."""
    heard = voice_line().follow_up.for_tipster(reference)
    if heard is None:
        return _script().goodbye(state)
    return _script().follow_up_menu(replace(state, question=_asked(heard)), heard, preface)
