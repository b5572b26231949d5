"""Place a test call or send test texts to a running `make run`, as Twilio would, and print the codes.

    .venv/bin/python -m dev.simulator --say "There is a man selling drugs outside the school"
    .venv/bin/python -m dev.simulator --wav message.ogg --language 2 --category 3
    .venv/bin/python -m dev.simulator --text "There is a man selling drugs outside the school"

The operator's stand-in caller dials, picks the language and topic, hears the reference
and PIN, and speaks the message: the text in the language's voice (festival's natural HTS
voice for English, espeak-ng for Welsh and Polish), or a sound file, made into an 8 kHz
mono phone recording. As Twilio does, the audio is stored at the provider (the local
stand-in of Twilio's REST API that `make run` starts without Twilio credentials) before
the app hears of it; then the recording callback fires and the caller hangs up. With
--text, a whole conversation instead: hello, the language and topic digits, the message,
DONE, each text left at the stand-in first as Twilio stores it.
Settings come from the environment, var/run.json (where the running `make run` listens and
its stand-in) and var/dev-secrets.json, as the app's do.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from config.settings import Settings, SettingsError
from dev.phone_audio import VOICES, AudioConversionFailed, AudioToolMissing, from_file, speak, voice_for
from dev.standin.client import StandIn, StandInUnreachable
from dev.twilio.calls import Call, TwilioLike, TwimlError, wav_seconds
from dev.twilio.http_transport import http_post
from dev.twilio.texts import Phone
from ivr.core.prompts import load_menus

# What Twilio sends as From when the caller withholds their number: nothing identifying is typed.
WITHHELD_NUMBER = "anonymous"
# Texts cannot withhold a number: the simulator texts from Ofcom's range for drama (07700 900000-900999).
TEXTING_NUMBER = "+447700900123"
SPOKEN_CODE = re.compile(r"\d(?:, \d)+")
TEXTED_CODES = re.compile(r"\b(\d{11})\D+(\d{6}|\d{4})\b")
REFERENCE_DIGITS = 11
PIN_DIGITS = (6, 4)  # as minted today, and as references minted before carry it


class SimulationFailed(RuntimeError):
    """The app or the stand-in did not behave as a call needs; the message says what to do."""


def spoken_codes(text: str) -> tuple[str, str] | None:
    """The reference and PIN read out digit by digit ("1, 2, 3") in `text`, if both are there."""
    codes = [match.replace(", ", "") for match in SPOKEN_CODE.findall(text)]
    references = [code for code in codes if len(code) == REFERENCE_DIGITS]
    pins = [code for code in codes if len(code) in PIN_DIGITS]
    return (references[0], pins[0]) if references and pins else None


def check_app(public_base_url: str) -> None:
    try:
        url = f"{public_base_url}/healthz"  # PUBLIC_BASE_URL: config/settings.py accepts only http(s)
        with urllib.request.urlopen(url, timeout=5) as response:  # nosec B310  # http(s) only, see above
            health = json.loads(response.read())
    except (OSError, ValueError) as error:
        raise SimulationFailed(f"the Tipline app does not answer at {public_base_url} ({error}): start it with "
                               "`make run`, or set PUBLIC_BASE_URL to where it runs.") from None
    if not health.get("redis"):
        print("warning: the app cannot reach Redis; the recording callback will not be queued.", file=sys.stderr)


def check_standin(settings: Settings) -> StandIn:
    if urlsplit(settings.twilio_api_base).hostname not in ("127.0.0.1", "localhost"):
        raise SimulationFailed(f"TWILIO_API_BASE is {settings.twilio_api_base}: the simulator stores its audio at "
                               "the local provider stand-in. Run it with the TWILIO_API_BASE that `make run` printed.")
    standin = StandIn(settings.twilio_api_base)
    try:
        standin.ping()
    except StandInUnreachable:
        raise SimulationFailed(f"no provider stand-in answers at TWILIO_API_BASE={settings.twilio_api_base}: "
                               "`make run` starts one when no Twilio credentials are set, and prints its "
                               "address.") from None
    return standin


def place_call(twilio: TwilioLike, language_digit: str, category_digit: str, audio: bytes) -> tuple[str, str]:
    """One whole call: dial, choose, hear the codes, speak, hang up. Returns (reference, PIN)."""
    call = twilio.call(WITHHELD_NUMBER).dials().presses(language_digit).presses(category_digit)
    codes = _codes_in(call, "before the tone")
    call.records(audio=audio)
    if call.waiting_for == "Record":
        raise SimulationFailed("the app heard a message under 2 seconds and asked for it again: say more")
    if _codes_in(call, "after the message") != codes:
        raise SimulationFailed("the reference read back after the message differs from the one before it")
    callback = call.recordings[0] if call.recordings else None
    if callback is None or callback.status != 204:
        answer = f"HTTP {callback.status}" if callback else "nothing"
        raise SimulationFailed(f"the recording callback was answered with {answer}, not 204: is Redis up?")
    call.hangs_up()
    return codes


def send_texts(twilio: TwilioLike, language_digit: str, category_digit: str, message: str) -> tuple[str, str]:
    """One whole conversation by text: hello, language, topic, the message, DONE. Returns (reference, PIN)."""
    phone = Phone(twilio, TEXTING_NUMBER)
    for text in ("Hello", language_digit, category_digit):
        phone.sends(text)
    reply = phone.sends(message)
    codes = TEXTED_CODES.search(reply)
    if codes is None:
        raise SimulationFailed(f"no reference and PIN in the reply to the message: {reply[:300]!r}")
    if codes.group(1) not in phone.sends("DONE"):
        raise SimulationFailed("the reply to DONE does not name the reference")
    return codes.group(1), codes.group(2)


def _codes_in(call: Call, when: str) -> tuple[str, str]:
    codes = spoken_codes(call.heard_since_last_step())
    if codes is None:
        raise SimulationFailed(f"no reference and PIN were read out {when}; the caller heard: "
                               f"{call.heard_since_last_step()[:300]!r}")
    return codes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog='Example: .venv/bin/python -m dev.simulator --text "A man sells drugs '
                                            'outside the school"')
    message = parser.add_mutually_exclusive_group(required=True)
    message.add_argument("--say", metavar="TEXT",
                         help="what the caller says (spoken by festival; espeak-ng for Welsh and Polish)")
    message.add_argument("--wav", metavar="FILE", type=Path, help="a sound file to play as the message (any "
                         "format sox reads)")
    message.add_argument("--text", metavar="TEXT", help="text the message instead of calling (a whole "
                         "conversation, ending with DONE)")
    parser.add_argument("--language", default="1", help="the digit pressed at the language menu (1 English, "
                        "2 Cymraeg, 3 Polski)")
    parser.add_argument("--category", default="1", help="the digit pressed at the topic menu (1 drugs, 2 weapons, "
                        "3 exploitation of a young person, 4 fraud, 5 something else)")
    args = parser.parse_args(argv)

    menus = load_menus()
    language, category = menus.language_for_digit(args.language), menus.category_for_digit(args.category)
    if language is None or category is None:
        parser.error("--language and --category take one menu digit each (see --help)")
    try:
        audio = b""
        if args.text is None:
            audio = speak(args.say, language) if args.say is not None else from_file(args.wav)
        settings = Settings.from_env()
        check_app(settings.public_base_url)
        standin = check_standin(settings)
        twilio = TwilioLike(http_post, settings.public_base_url, settings.twilio_account_sid,
                            settings.twilio_auth_token, provider=standin)
        if args.text is not None:
            reference, pin = send_texts(twilio, args.language, args.category, args.text)
        else:
            reference, pin = place_call(twilio, args.language, args.category, audio)
    except (SettingsError, SimulationFailed, AudioToolMissing, AudioConversionFailed, FileNotFoundError,
            StandInUnreachable, TwimlError) as error:
        print(f"simulator: {error}", file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(f"simulator: lost the app during the call ({error.reason})", file=sys.stderr)
        return 1
    if args.text is not None:
        print(f"Texted {settings.public_base_url} as Twilio would: a whole conversation, language {language}, "
              f"topic {category.id}.")
        print(f"Reference: {reference}")
        print(f"PIN:       {pin}")
        print("The tip is in the handlers' queue; a worker deletes the texts at the provider stand-in.")
        return 0
    voice = voice_for(VOICES[language]).accent if args.say is not None else "a sound file"
    print(f"Called {settings.public_base_url} as Twilio would: {wav_seconds(audio)} s of speech ({voice}), "
          f"language {language}, topic {category.id}.")
    print(f"Reference: {reference}")
    print(f"PIN:       {pin}")
    print("The recording waits at the provider stand-in; the worker fetches, transcribes and deletes it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
