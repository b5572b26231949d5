"""What the caller hears at each step, built as TwiML with twilio's VoiceResponse.

The words come from the per-language catalogues (`ivr.prompts`); this module only puts
them in order and says where each keypress goes next. Every URL Twilio will request next
carries the call state as a sealed token (`ivr.call_state`).
"""

from __future__ import annotations

from typing import Callable

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.call_state import CallState
from ivr.prompts import REFERENCE_LANGUAGE, Catalogue, Menus

# Seconds Twilio waits for a keypress before moving on to the <Redirect> after <Gather>.
GATHER_TIMEOUT_SECONDS = 6
# <Record>: ten minutes at most; five seconds of silence end it, as does the # key.
RECORD_MAX_SECONDS = 600
RECORD_SILENCE_SECONDS = 5
FINISH_KEY = "#"

# step endpoint name, state, purpose -> absolute URL
StepUrl = Callable[[str, CallState, str], str]


def spoken_digits(digits: str) -> str:
    """Digits one by one with pauses, so a text-to-speech voice reads 4 0 7, not 'four hundred and seven'."""
    return ", ".join(digits)


class Script:
    """Builds the TwiML for each prompt of the voice line."""

    def __init__(self, menus: Menus, step_url: StepUrl) -> None:
        self._menus = menus
        self._url = step_url

    def _say(self, verb: VoiceResponse | Gather, catalogue: Catalogue, key: str, **fields: str) -> None:
        verb.say(catalogue.text(key, **fields), language=catalogue.say_language, voice=catalogue.say_voice)

    def _menu(self, response: VoiceResponse, endpoint: str, state: CallState) -> Gather:
        """A one-digit <Gather>, then a <Redirect> to the same step for when nothing is pressed."""
        gather = response.gather(num_digits=1, timeout=GATHER_TIMEOUT_SECONDS,
                                 action=self._url(endpoint, state, "step"), method="POST")
        response.redirect(self._url(endpoint, state, "step"), method="POST")
        return gather

    def welcome(self, state: CallState) -> VoiceResponse:
        response = VoiceResponse()
        self._say(response, self._menus.catalogue(REFERENCE_LANGUAGE), "welcome")
        return self.language_menu(state, response=response)

    def language_menu(self, state: CallState, response: VoiceResponse | None = None,
                      preface: str | None = None) -> VoiceResponse:
        """Each language offered in its own voice; `preface` names a prompt said first, in English."""
        response = response or VoiceResponse()
        if preface:
            self._say(response, self._menus.catalogue(REFERENCE_LANGUAGE), preface)
        gather = self._menu(response, "voice.language", state)
        for digit, language in enumerate(self._menus.languages, start=1):
            self._say(gather, self._menus.catalogue(language), "language_option", digit=str(digit))
        return response

    def category_menu(self, state: CallState, preface: str | None = None) -> VoiceResponse:
        response = VoiceResponse()
        catalogue = self._menus.catalogue(state.language)
        if preface:
            self._say(response, catalogue, preface)
        gather = self._menu(response, "voice.category", state)
        self._say(gather, catalogue, "category_intro")
        for digit, category in enumerate(self._menus.categories, start=1):
            self._say(gather, catalogue, "category_option", category=catalogue.categories[category.id], digit=str(digit))
        return response

    def record(self, state: CallState, preface: str | None = None, retry: bool = False) -> VoiceResponse:
        """Reference and PIN first (a caller who hangs up mid-message still has them), then the tone.

        A `retry` (nothing was heard the first time) says only `nothing_heard` before the tone.
        """
        response = VoiceResponse()
        catalogue = self._menus.catalogue(state.language)
        if preface:
            self._say(response, catalogue, preface)
        if retry:
            self._say(response, catalogue, "nothing_heard")
        else:
            self._say(response, catalogue, "reference", **self._codes(state))
            self._say(response, catalogue, "record_instructions")
        response.record(
            action=self._url("voice.recorded", state, "step"),
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
        response.redirect(self._url("voice.recorded", state, "step"), method="POST")
        return response

    def received(self, state: CallState, first_time: bool = True) -> VoiceResponse:
        """Thanks, the reference and PIN again, and an offer to hear them once more."""
        response = VoiceResponse()
        catalogue = self._menus.catalogue(state.language)
        if first_time:
            self._say(response, catalogue, "received")
        self._say(response, catalogue, "reference_again", **self._codes(state))
        gather = self._menu(response, "voice.read_back", state)
        self._say(gather, catalogue, "repeat_offer")
        return response

    def goodbye(self, state: CallState, key: str = "goodbye") -> VoiceResponse:
        response = VoiceResponse()
        self._say(response, self._menus.catalogue(state.language), key)
        response.hangup()
        return response

    def failure(self) -> VoiceResponse:
        """What a caller hears when something on our side broke: a sentence, never silence."""
        return self.goodbye(CallState(), key="failure")

    @staticmethod
    def _codes(state: CallState) -> dict[str, str]:
        return {"reference": spoken_digits(state.reference or ""), "pin": spoken_digits(state.pin or "")}
