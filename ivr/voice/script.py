"""What the caller hears at each step, built as TwiML with twilio's VoiceResponse.

The words come from the per-language catalogues (`ivr.core.prompts`); this module only puts
them in order and says where each keypress goes next. Every URL Twilio will request next
carries the call state as a sealed token (`ivr.core.call_state`).

The two menus are the hot path of a busy line, and everything in them but the token is
the same for every caller: each is rendered once (by twilio's VoiceResponse, with a slot
where the URL goes) and only the URL is filled in per request. That halves the cost of a
menu step (bench/webhook_throughput.py).
"""

from __future__ import annotations

from collections.abc import Callable
from xml.sax.saxutils import escape

from flask import url_for
from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.core.call_state import CallState, CallStateCodec
from ivr.core.follow_up import WhatTheTipsterHears
from ivr.core.prompts import CALLING_BACK_KEY, REFERENCE_LANGUAGE, SUPPORT_KEY, Catalogue, Menus
from ivr.core.support import Support

# Seconds Twilio waits for a keypress before moving on to the <Redirect> after <Gather>.
GATHER_TIMEOUT_SECONDS = 6
# Keying a reference or a PIN: seconds Twilio waits after the last key before sending what
# was keyed (the caller may be reading it off a scrap of paper).
KEYING_TIMEOUT_SECONDS = 10
# The menu a caller hears once their PIN is proven.
AGAIN_KEY, RECORD_KEY, CLOSE_KEY = "1", "2", "8"
# <Record>: ten minutes at most; five seconds of silence end it, as does the # key.
RECORD_MAX_SECONDS = 600
RECORD_SILENCE_SECONDS = 5
FINISH_KEY = "#"

TOKEN_PARAMETER = "t"  # nosec B105  # a query parameter's name, not a password
# Stands where a menu's next-step URL goes in a rendered menu; it needs no XML escaping.
URL_SLOT = "TIPLINE-NEXT-STEP-URL"


def spoken_digits(digits: str) -> str:
    """Digits one by one with pauses, so a text-to-speech voice reads 4 0 7, not 'four hundred and seven'."""
    return ", ".join(digits)


class Script:
    """Builds the TwiML (as text) for each prompt of the voice line."""

    def __init__(self, menus: Menus, support: Support, call_states: CallStateCodec, public_base_url: str) -> None:
        self._menus = menus
        self._support = support
        self._call_states = call_states
        self._base_url = public_base_url
        self._rendered_menus: dict[tuple[object, ...], str] = {}
        self._paths: dict[str, str] = {}

    def _url(self, endpoint: str, state: CallState, purpose: str = "step") -> str:
        """The absolute URL of the next step, carrying `state` sealed (needs a request context)."""
        path = self._paths.get(endpoint)
        if path is None:  # the route's path, looked up once: url_for costs more than the rest of a URL
            path = self._paths[endpoint] = url_for(endpoint)
        # A call-state token is URL-safe by construction (base64url and "."): nothing to quote.
        return f"{self._base_url}{path}?{TOKEN_PARAMETER}={self._call_states.dump(state, purpose)}"

    def _say(self, verb: VoiceResponse | Gather, catalogue: Catalogue, key: str, **fields: str) -> None:
        verb.say(catalogue.text(key, **fields), language=catalogue.say_language, voice=catalogue.say_voice)

    def _menu(self, response: VoiceResponse, url: str) -> Gather:
        """A one-digit <Gather>, then a <Redirect> to the same step for when nothing is pressed."""
        gather = response.gather(num_digits=1, timeout=GATHER_TIMEOUT_SECONDS, action=url, method="POST")
        response.redirect(url, method="POST")
        return gather

    def _filled(self, key: tuple[object, ...], render: Callable[[], VoiceResponse], endpoint: str,
                state: CallState) -> str:
        """A menu rendered once per `key`, with this caller's next-step URL filled in."""
        if key not in self._rendered_menus:
            self._rendered_menus[key] = str(render())
        return self._rendered_menus[key].replace(URL_SLOT, escape(self._url(endpoint, state)))

    def language_menu(self, state: CallState, preface: str | None = None, welcome: bool = False) -> str:
        """Each language offered in its own voice; `preface` names a prompt said first, in English."""

        def render() -> VoiceResponse:
            response = VoiceResponse()
            english = self._menus.catalogue(REFERENCE_LANGUAGE)
            for key in (["welcome"] if welcome else []) + ([preface] if preface else []):
                self._say(response, english, key)
            gather = self._menu(response, URL_SLOT)
            for digit, language in enumerate(self._menus.languages, start=1):
                self._say(gather, self._menus.catalogue(language), "language_option", digit=str(digit))
            return response

        return self._filled(("language", welcome, preface), render, "voice.language", state)

    def category_menu(self, state: CallState, preface: str | None = None, support: bool = False) -> str:
        """The topics, then calling back and support; `support` reads the support services first."""
        catalogue = self._menus.catalogue(state.choices.language)

        def render() -> VoiceResponse:
            response = VoiceResponse()
            if preface:
                self._say(response, catalogue, preface)
            if support:
                for sentence in self._support.for_language(catalogue.language).spoken(spoken_digits):
                    response.say(sentence, language=catalogue.say_language, voice=catalogue.say_voice)
            gather = self._menu(response, URL_SLOT)
            self._say(gather, catalogue, "category_intro")
            for digit, category in enumerate(self._menus.categories, start=1):
                label = catalogue.categories[category.id]
                self._say(gather, catalogue, "category_option", category=label, digit=str(digit))
            self._say(gather, catalogue, "returning_option", digit=CALLING_BACK_KEY)
            self._say(gather, catalogue, "support_option", digit=SUPPORT_KEY)
            return response

        return self._filled(("category", catalogue.language, preface, support), render, "voice.category", state)

    def record(self, state: CallState, preface: str | None = None, retry: bool = False) -> str:
        """Reference and PIN first (a caller who hangs up mid-message still has them), then the tone.

        A `retry` (nothing was heard the first time) says only `nothing_heard` before the tone.
        """
        response = VoiceResponse()
        catalogue = self._menus.catalogue(state.choices.language)
        if preface:
            self._say(response, catalogue, preface)
        if retry:
            self._say(response, catalogue, "nothing_heard")
        else:
            self._say(response, catalogue, "reference", **self._codes(state))
            self._say(response, catalogue, "record_instructions")
        self._record(response, state, "voice.recorded")
        return str(response)

    def _record(self, response: VoiceResponse, state: CallState, endpoint: str) -> None:
        """<Record> a message (a first one or a returning tipster's: the same limits), its
        status callback carrying `state`, then a <Redirect> to `endpoint` for when nothing was said."""
        response.record(
            action=self._url(endpoint, state),
            method="POST",
            max_length=RECORD_MAX_SECONDS,
            timeout=RECORD_SILENCE_SECONDS,
            finish_on_key=FINISH_KEY,
            play_beep=True,
            recording_status_callback=self._url("voice.recording_status", state.advance(), "recording"),
            recording_status_callback_method="POST",
            recording_status_callback_event="completed",
        )
        # Twilio skips the action when nothing was recorded and goes on to the next verb.
        response.redirect(self._url(endpoint, state), method="POST")

    def received(self, state: CallState, first_time: bool = True) -> str:
        """Thanks, the reference and PIN again, and an offer to hear them once more."""
        response = VoiceResponse()
        catalogue = self._menus.catalogue(state.choices.language)
        if first_time:
            self._say(response, catalogue, "received")
        self._say(response, catalogue, "reference_again", **self._codes(state))
        gather = self._menu(response, self._url("voice.read_back", state))
        self._say(gather, catalogue, "repeat_offer")
        return str(response)

    # -- a tipster calling back with their reference ---------------------------------------

    def keying(self, state: CallState, prompt: str, endpoint: str) -> str:
        """A prompt to key a reference or a PIN and then #: no numDigits, so the # (or a pause
        after the last key) sends what was keyed; nothing keyed comes back to `endpoint` without Digits."""
        catalogue = self._menus.catalogue(state.choices.language)

        def render() -> VoiceResponse:
            response = VoiceResponse()
            gather = response.gather(finish_on_key=FINISH_KEY, timeout=KEYING_TIMEOUT_SECONDS, action=URL_SLOT,
                                     method="POST")
            self._say(gather, catalogue, prompt)
            response.redirect(URL_SLOT, method="POST")
            return response

        return self._filled(("keying", catalogue.language, prompt, endpoint), render, endpoint, state)

    def follow_up_menu(self, state: CallState, heard: WhatTheTipsterHears, preface: str | None = None) -> str:
        """The handler's question (or the tip's status) in the tip's language, then: again, answer, close.

        `state` is proven: its language is the tip's.
        """
        response = VoiceResponse()
        catalogue = self._menus.catalogue(state.choices.language)
        if preface:
            self._say(response, catalogue, preface)
        if heard.question is not None:
            self._say(response, catalogue, "question", question=heard.question.text)
        else:
            self._say(response, catalogue, f"status_{heard.status}")
        gather = self._menu(response, self._url("voice.returning_menu", state))
        self._say(gather, catalogue, "options_question" if heard.question is not None else "options_status",
                  again=AGAIN_KEY, record=RECORD_KEY, close=CLOSE_KEY)
        return str(response)

    def record_answer(self, state: CallState, retry: bool = False) -> str:
        """The tone for an answer (or more information), recorded as a first message is."""
        response = VoiceResponse()
        self._say(response, self._menus.catalogue(state.choices.language),
                  "nothing_heard" if retry else "answer_instructions")
        self._record(response, state, "voice.returning_recorded")
        return str(response)

    def close_confirm(self, state: CallState) -> str:
        """What closing means, and the key again to confirm; anything else (or nothing) keeps it."""
        response = VoiceResponse()
        gather = self._menu(response, self._url("voice.returning_close", state))
        self._say(gather, self._menus.catalogue(state.choices.language), "close_confirm", close=CLOSE_KEY)
        return str(response)

    # -- the end of a call ------------------------------------------------------------------

    def goodbye(self, state: CallState, key: str = "goodbye", preface: str | None = None) -> str:
        response = VoiceResponse()
        catalogue = self._menus.catalogue(state.choices.language)
        if preface:
            self._say(response, catalogue, preface)
        self._say(response, catalogue, key)
        response.hangup()
        return str(response)

    def failure(self) -> str:
        """What a caller hears when something on our side broke: a sentence, never silence."""
        return self.goodbye(CallState(), key="failure")

    @staticmethod
    def hang_up() -> str:
        """An empty answer, for a caller who has already gone (Twilio ignores it)."""
        return str(VoiceResponse())

    @staticmethod
    def _codes(state: CallState) -> dict[str, str]:
        return {"reference": spoken_digits(state.choices.reference or ""), "pin": spoken_digits(state.pin or "")}
