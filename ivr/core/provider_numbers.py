"""The line's own phone numbers at the provider: how `tipline provider setup` configures
them and what `tipline provider check` finds wrong with them.

A number of the line is not a caller's: printing it is fine. What the configuration must
keep out is everything that would send a caller's number or words somewhere else: status
callbacks (they carry `From`), a fallback fetched by GET (the number lands in a URL and in
access logs), an SMS fallback, a TwiML App or SIP trunk in front of our webhooks (their
own handling, recording included), a Messaging Service (its Advanced Opt-Out keeps
a list of who texted STOP), and caller-name lookup (CNAM: Twilio sends each caller's name
with the call, and keeps it in its call log).

Call recording is not a field of Twilio's IncomingPhoneNumber resource: a TwiML App the
calls go to is flagged (what it does is not visible), and a SIP trunk is flagged with its
recording setting, which trunking's REST API does show. Transcription is account-wide
(Voice Intelligence services): `ivr/core/provider_account.py`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from twilio.twiml.voice_response import VoiceResponse

from config.settings import Settings
from ivr.core.provider import rest_call, rest_client
from ivr.core.provider_errors import ProviderError

VOICE_PATH = "/voice/incoming"
SMS_PATH = "/sms/incoming"
FALLBACK_SENTENCE = ("We cannot take your call right now. If someone is in danger, dial 999. "
                     "Please try again later.")
TRUNK_SID = re.compile(r"TK[0-9a-f]{32}")
DO_NOT_RECORD = "do-not-record"  # a trunk's recording mode that records nothing


class NumberNotInAccount(ProviderError):
    """The number given is not one of the account's; the message lists those that are."""


class SetupRefused(ProviderError):
    """The settings would configure the number wrongly (e.g. an http webhook in production)."""


@dataclass(frozen=True)
class Wanted:
    """What every number of the line should have, from the settings."""

    voice_url: str
    sms_url: str
    voice_fallback_url: str  # "" when none is configured

    @classmethod
    def from_settings(cls, settings: Settings) -> Wanted:
        base = settings.public_base_url
        return cls(voice_url=base + VOICE_PATH, sms_url=base + SMS_PATH,
                   voice_fallback_url=settings.voice_fallback_url)


@dataclass(frozen=True)
class LineNumber:
    """One of the account's numbers as the provider has it configured."""

    sid: str
    phone_number: str
    voice_url: str
    voice_method: str
    voice_fallback_url: str
    voice_fallback_method: str
    sms_url: str
    sms_method: str
    sms_fallback_url: str
    status_callback: str
    voice_application_sid: str
    sms_application_sid: str
    trunk_sid: str
    messaging_service_sid: str  # "" when the number is in none
    caller_name_lookup: bool  # voice_caller_id_lookup (CNAM)
    trunk_recording_mode: str = ""  # the trunk's recording mode, as Twilio names it; "" when not known
    trunk_recording_unknown: str = ""  # with a trunk: why its recording mode could not be read


@dataclass(frozen=True)
class Finding:
    """One line of `tipline provider check`: fine, what to change, or what could not be checked."""

    fine: bool
    text: str
    checked: bool = True  # False: the provider could not tell (never fine); the text says what to look at


def findings(number: LineNumber, wanted: Wanted) -> list[Finding]:
    """What is right and what needs fixing on one number, in the order the console shows it."""
    found = [_webhook("voice webhook", number.voice_url, number.voice_method, wanted.voice_url),
             _webhook("SMS webhook", number.sms_url, number.sms_method, wanted.sms_url)]
    if wanted.voice_fallback_url:
        found.append(_webhook("voice fallback", number.voice_fallback_url, number.voice_fallback_method,
                              wanted.voice_fallback_url))
    elif number.voice_fallback_url:
        found.append(Finding(False, f"voice fallback is {number.voice_fallback_url}, which VOICE_FALLBACK_URL does "
                                    "not name: clear it (setup does)"))
    else:
        found.append(Finding(True, "no voice fallback (VOICE_FALLBACK_URL is not set)"))
    found.append(Finding(not number.status_callback, "no status callback" if not number.status_callback else
                         f"status callback {number.status_callback} is set: it would receive callers' numbers; "
                         "clear it (setup does)"))
    if number.sms_fallback_url:
        found.append(Finding(False, f"SMS fallback {number.sms_fallback_url} is set: it would receive texts and "
                                    "their senders' numbers; clear it (setup does)"))
    for what, sid in (("TwiML App (voice)", number.voice_application_sid),
                      ("TwiML App (SMS)", number.sms_application_sid)):
        if sid:
            found.append(Finding(False, f"a {what} {sid} answers instead of our webhook, and may record; "
                                        "remove it (setup does)"))
    found.append(Finding(True, "no caller-name lookup (CNAM)") if not number.caller_name_lookup else
                 Finding(False, "caller-name lookup (CNAM) is on: Twilio looks up each caller's name, sends it "
                                "with every call (CallerName) and keeps it in its call log; clear it (setup does)"))
    if number.trunk_sid:
        found.append(Finding(False, _trunk_text(number)))
    if number.messaging_service_sid:
        found.append(Finding(False, f"in Messaging Service {number.messaging_service_sid}: remove it from the "
                                    "sender pool, or turn Advanced Opt-Out OFF there (the REST API may not show "
                                    "it; it keeps a list of who texted STOP) and never add CLOSE or SUPPORT as "
                                    "custom opt-out keywords (the line answers them itself)"))
    return found


def _trunk_text(number: LineNumber) -> str:
    takes = f"SIP trunk {number.trunk_sid} takes the calls instead of our webhook"
    remove = "remove the number from the trunk in Twilio's console"
    if not number.trunk_recording_mode:
        return (f"{takes}; whether it records them could not be checked ({number.trunk_recording_unknown}): "
                f"look at the trunk's Recording setting, and {remove}")
    if number.trunk_recording_mode == DO_NOT_RECORD:
        return f"{takes}; it does not record them (mode {DO_NOT_RECORD}): {remove}"
    return (f"{takes}, and it records them (mode {number.trunk_recording_mode}): the recordings stay at Twilio, "
            f"outside our deletion; set the trunk's recording to {DO_NOT_RECORD}, delete them there, and {remove}")


def _webhook(what: str, url: str, method: str, wanted_url: str) -> Finding:
    if url == wanted_url and method.upper() == "POST":
        return Finding(True, f"{what}: POST {url}")
    now = f"{method.upper() or 'POST'} {url}" if url else "not set"
    return Finding(False, f"{what} is {now}; it should be POST {wanted_url}")


def fallback_twiml() -> str:
    """The TwiML a voice fallback serves: a sentence, then hang up (no <Gather>, no <Record>)."""
    response = VoiceResponse()
    response.say(FALLBACK_SENTENCE, language="en-GB")
    response.hangup()
    return str(response)


class LineNumbers:
    """The account's IncomingPhoneNumbers and the Messaging Services that hold them."""

    def __init__(self, settings: Settings, timeout_seconds: float = 10.0) -> None:
        self._settings = settings
        self._client = rest_client(settings, timeout_seconds)
        self._account = self._client.api.v2010.accounts(settings.twilio_account_sid)

    def all(self) -> list[LineNumber]:
        """Every number of the account, with the Messaging Service (if any) whose pool holds it."""
        services = rest_call(self._memberships, "list the Messaging Services")
        listed = rest_call(lambda: list(self._account.incoming_phone_numbers.stream()), "list the numbers")
        numbers = [_line_number(instance, services.get(instance.sid, "")) for instance in listed]
        trunks = {n.trunk_sid: self._trunk_recording(n.trunk_sid) for n in numbers if n.trunk_sid}
        return [_with_trunk(n, *trunks[n.trunk_sid]) if n.trunk_sid else n for n in numbers]

    def configure(self, phone_number: str) -> LineNumber:
        """Set the number's webhooks from the settings and clear what would send callers' data elsewhere."""
        wanted = Wanted.from_settings(self._settings)
        if self._settings.is_production and not wanted.voice_url.startswith("https://"):
            raise SetupRefused("PUBLIC_BASE_URL must be https:// in production: Twilio would send callers' "
                               "words in the clear")
        numbers = self.all()
        number = next((n for n in numbers if n.phone_number == phone_number), None)
        if number is None:
            # The line's own numbers, for the operator who typed the wrong one (never a caller's).
            held = ", ".join(n.phone_number for n in numbers) or "none"
            raise NumberNotInAccount(f"{phone_number} is not one of this account's numbers (it has: {held})")
        changes: dict[str, Any] = {
            "voice_url": wanted.voice_url, "voice_method": "POST", "sms_url": wanted.sms_url, "sms_method": "POST",
            "voice_fallback_url": wanted.voice_fallback_url, "voice_fallback_method": "POST",
            "sms_fallback_url": "", "status_callback": "", "status_callback_method": "POST",
            "voice_application_sid": "", "sms_application_sid": "", "voice_caller_id_lookup": False}
        updated = rest_call(lambda: self._account.incoming_phone_numbers(number.sid).update(**changes),
                            "update the number")
        # The update leaves the trunk alone: its recording setting is the one read above.
        return _with_trunk(_line_number(updated, number.messaging_service_sid), number.trunk_recording_mode,
                           number.trunk_recording_unknown)

    def _trunk_recording(self, trunk_sid: str) -> tuple[str, str]:
        """The trunk's recording mode, or "" and why it could not be read."""
        if not TRUNK_SID.fullmatch(trunk_sid):
            return "", "its sid is not a trunk's"
        try:
            recording = rest_call(lambda: self._client.trunking.v1.trunks(trunk_sid).recordings().fetch(),
                                  "read the trunk's recording setting")
        except ProviderError as error:
            return "", str(error)
        mode = str(recording.mode or "")
        return (mode, "") if mode else ("", "the provider gave no recording mode")

    def _memberships(self) -> dict[str, str]:
        """PN sid -> the MG sid of the Messaging Service whose sender pool holds it."""
        held: dict[str, str] = {}
        for service in self._client.messaging.v1.services.stream():
            for member in self._client.messaging.v1.services(service.sid).phone_numbers.stream():
                held[str(member.sid)] = str(service.sid)
        return held


def is_on(flag: object) -> bool:
    """A boolean field as twilio-python gives it; anything but false or absent counts as on."""
    return flag is not None and flag is not False and str(flag).lower() != "false"


def _with_trunk(number: LineNumber, mode: str, unknown: str) -> LineNumber:
    return dataclasses.replace(number, trunk_recording_mode=mode, trunk_recording_unknown=unknown)


def _line_number(instance: Any, messaging_service_sid: str) -> LineNumber:
    def text(name: str) -> str:
        return str(getattr(instance, name, None) or "")

    return LineNumber(
        sid=text("sid"), phone_number=text("phone_number"), voice_url=text("voice_url"),
        voice_method=text("voice_method"), voice_fallback_url=text("voice_fallback_url"),
        voice_fallback_method=text("voice_fallback_method"), sms_url=text("sms_url"), sms_method=text("sms_method"),
        sms_fallback_url=text("sms_fallback_url"), status_callback=text("status_callback"),
        voice_application_sid=text("voice_application_sid"), sms_application_sid=text("sms_application_sid"),
        trunk_sid=text("trunk_sid"), messaging_service_sid=messaging_service_sid,
        caller_name_lookup=is_on(getattr(instance, "voice_caller_id_lookup", None)))
