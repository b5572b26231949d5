"""The voice line's steps: welcome, language, category, record, read-back.

No step keeps state on the server: what the caller chose rides in the sealed token of
the URL Twilio requests next. A keypress that chooses nothing (no input, *, letters)
plays the menu again, up to the step's plays in config/menus.json; after that the caller
is never turned away: the language and the topic take the step's fallback (English,
"something else"), so their information is still taken. A missing, tampered or expired token starts the call over.
At the topic menu, 9 leads a caller back with a reference to `ivr.voice.returning` and 0
reads the support services; neither is a failed play.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import redis
from flask import Blueprint, Response
from werkzeug.exceptions import HTTPException

from ivr.core.call_state import BadCallState, CallState
from ivr.core.prompts import CALLING_BACK_KEY, SUPPORT_KEY
from ivr.core.references import new_pin, new_reference
from ivr.edge import CallStep, RecordingStatus, twilio_webhook
from ivr.voice.script import Script
from ivr.voice.wiring import voice_line

bp = Blueprint("voice", __name__, url_prefix="/voice")
log = logging.getLogger(__name__)

# A recording shorter than this is treated as nothing said (once): the caller tries again.
MIN_RECORDING_SECONDS = 2


def _script() -> Script:
    return voice_line().script


def _twiml(twiml: str) -> Response:
    return Response(twiml, mimetype="text/xml")


@bp.errorhandler(Exception)
def _failure(error: Exception) -> Response | HTTPException:
    """Once the edge has accepted a call, the caller hears a sentence, never an error page."""
    if isinstance(error, HTTPException) and error.code is not None and error.code < 500:
        return error  # a 405 or 413 stays what it is
    log.exception("voice step failed")
    return _twiml(_script().failure())


def call_step(
    on_bad_state: Callable[[], str] = lambda: _script().language_menu(CallState(), preface="start_again"),
) -> Callable[[Callable[[CallStep, CallState], str]], Callable[[], Response | str]]:
    """A voice step: the edge's checks, then the call state opened from the token.

    A missing, tampered or expired token gets `on_bad_state` (by default: start over).
    The step returns TwiML text.
    """

    def decorator(handle: Callable[[CallStep, CallState], str]) -> Callable[[], Response | str]:
        @functools.wraps(handle)
        def step_with_state(step: CallStep) -> Response:
            try:
                state = voice_line().call_states.load(step.token)
            except BadCallState:
                return _twiml(on_bad_state())
            return _twiml(handle(step, state))

        return twilio_webhook(CallStep)(step_with_state)

    return decorator


@bp.post("/incoming")
@twilio_webhook(CallStep)
def incoming(step: CallStep) -> Response:
    return _twiml(_script().language_menu(CallState(), welcome=True))


@bp.post("/language")
@call_step()
def language(step: CallStep, state: CallState) -> str:
    menus = voice_line().menus
    chosen = menus.language_for_digit(step.digits)
    if chosen:
        return _script().category_menu(state.advance(language=chosen))
    if state.attempt + 1 >= menus.step("language").plays:
        return _script().category_menu(state.advance(language=menus.fallback_language), preface="language_fallback")
    return _script().language_menu(state.again(), preface="not_understood")


@bp.post("/category")
@call_step()
def category(step: CallStep, state: CallState) -> str:
    menus = voice_line().menus
    if step.digits == CALLING_BACK_KEY:
        return _script().keying(state.advance(), "reference_prompt", "voice.returning_reference")
    if step.digits == SUPPORT_KEY:
        return _script().category_menu(state, support=True)  # not a failed play: the same attempt
    chosen = menus.category_for_digit(step.digits)
    if chosen is None and state.attempt + 1 < menus.step("category").plays:
        return _script().category_menu(state.again(), preface="not_understood")
    # A PIN minted ahead comes with its hash; without one (none in stock, Redis away) the
    # recording callback hashes it, as a PIN minted here.
    ahead = voice_line().pin_pool.take()
    minted = state.advance(category=chosen.id if chosen else menus.fallback_category, reference=new_reference(),
                           pin=ahead.pin if ahead else new_pin(), pin_hash=ahead.pin_hash if ahead else None)
    return _script().record(minted, preface=None if chosen else "category_fallback")


@bp.post("/recorded")
@call_step()
def recorded(step: CallStep, state: CallState) -> str:
    return after_the_tone(step, state, received=lambda: _script().received(state.advance()),
                          once_more=lambda: _script().record(state.again(), retry=True))


def after_the_tone(step: CallStep, state: CallState, received: Callable[[], str], once_more: Callable[[], str]) -> str:
    """After a <Record> (a first message or a returning tipster's): `received` when something
    was said; a recording too short (or none) gets `once_more` the first time, then a goodbye."""
    if step.digits == "hangup":
        return Script.hang_up()
    if step.recording_seconds >= MIN_RECORDING_SECONDS:
        return received()
    if state.attempt == 0:
        return once_more()
    return _script().goodbye(state, key="no_message")


@bp.post("/read-back")
@call_step(on_bad_state=lambda: _script().goodbye(CallState()))
def read_back(step: CallStep, state: CallState) -> str:
    if step.digits == "1" and state.attempt + 1 < voice_line().menus.step("read_back").plays:
        return _script().received(state.again(), first_time=False)
    return _script().goodbye(state)


@bp.post("/recording-status")
@twilio_webhook(RecordingStatus)
def recording_status(status: RecordingStatus) -> Response:
    """Queue the finished recording for the worker; answer 204 (the provider wants no TwiML)."""
    if status.status != "completed":
        return Response(status=204)  # 'absent' or 'failed': there is no audio to fetch
    if not status.recording_sid:
        return Response("Bad request: RecordingSid is missing.\n", status=400, mimetype="text/plain")
    if voice_line().storage.refuses_writes():  # logged by the guard, naming the setting
        return Response("Service unavailable: try again later.\n", status=503, mimetype="text/plain")
    try:
        state = voice_line().call_states.load(status.token, purpose="recording")
    except BadCallState:
        # Never drop a recording: queue it without the caller's choices.
        log.warning("recording callback had an unreadable call state; queued without a reference")
        state = CallState()
    try:
        voice_line().recordings.accept(status.recording_sid, status.call_sid, status.duration, state)
    except redis.RedisError:
        log.warning("could not queue a recording: Redis is unavailable; the provider sweep will find it")
        return Response("Service unavailable: try again later.\n", status=503, mimetype="text/plain")
    return Response(status=204)

