"""A stand-in for Twilio's side of a call: sign each webhook, parse the TwiML, follow it.

It behaves as Twilio does where our app depends on it:
- every webhook is POSTed form-encoded and signed with the official RequestValidator
  over the full URL and the form fields;
- every call webhook carries the caller's number and the fields Twilio adds (From,
  Caller, From*/Caller* locations, StirVerstat, CallToken), so the edge's job is tested;
- `<Gather>` waits for keys: they POST its action with Digits once numDigits are pressed or
  the finishOnKey (by default #, sent as FinishedOnKey, never in Digits); no input, or the
  finishOnKey alone, moves on to the next verb (our `<Redirect>`);
- `<Record>` with audio POSTs its action with RecordingSid/RecordingDuration and then the
  recordingStatusCallback; with no audio Twilio skips the action and moves on; a hang-up
  mid-recording POSTs the action with Digits=hangup;
- `<Redirect>` POSTs its URL; `<Hangup>` or the end of the document ends the call.

Given a `provider` (the REST stand-in's admin client), it also leaves there what a call
leaves at Twilio: the call log (in progress from the first ring, deletable once it has
ended) and each recording's audio, stored before the action and the status callback
are posted, as Twilio stores it before it tells us.

Tests drive it through Flask's test client; the operator's simulator through HTTP.
"""

from __future__ import annotations

import io
import math
import secrets
import wave
import xml.etree.ElementTree as ET  # nosec B405  # parses only our own app's TwiML
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

from dev.phone_audio import silence

# What ends a <Gather> when its TwiML names no finishOnKey.
DEFAULT_FINISH_ON_KEY = "#"

# (absolute URL, form fields, headers) -> (HTTP status, body)
Transport = Callable[[str, dict[str, str], dict[str, str]], tuple[int, str]]


class TwimlError(AssertionError):
    """The app answered something Twilio could not follow."""


class Provider(Protocol):
    """Where Twilio keeps a call's records: the stand-in of its REST API."""

    def call_started(self, call_sid: str, from_number: str | None = None, to_number: str | None = None) -> None: ...

    def recording_made(self, recording_sid: str, call_sid: str, wav_bytes: bytes, seconds: int) -> None: ...

    def call_ended(self, call_sid: str) -> None: ...

    def put_message(self, message_sid: str, body: str, status: str = "received", direction: str = "inbound",
                    created: datetime | None = None, media: tuple[str, ...] = (),
                    sender: str | None = None) -> None: ...



def wav_seconds(wav_bytes: bytes) -> int:
    """A WAV's length in whole seconds, rounded up (as Twilio reports RecordingDuration)."""
    with wave.open(io.BytesIO(wav_bytes), "rb") as wav:
        return math.ceil(wav.getnframes() / wav.getframerate())


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class Said:
    text: str
    language: str | None
    voice: str | None


@dataclass
class Webhook:
    """One request Twilio made, kept so a test can repeat it or look at it."""

    url: str
    form: dict[str, str]
    status: int = 0
    body: str = ""


class TwilioLike:
    """Twilio's account-side behaviour: signing, and placing calls to our webhooks."""

    def __init__(self, transport: Transport, base_url: str, account_sid: str, auth_token: str,
                 provider: Provider | None = None) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid
        self._validator = RequestValidator(auth_token)
        self.provider = provider
        self.requests: list[Webhook] = []

    def post(self, url: str, form: dict[str, str], signature: str | None = None) -> Webhook:
        """POST as Twilio does; `signature` overrides the correct one (for forgery tests)."""
        url = url if urlsplit(url).scheme else self.base_url + url
        headers = {"X-Twilio-Signature": self._validator.compute_signature(url, form) if signature is None
                   else signature}
        webhook = Webhook(url=url, form=dict(form))
        webhook.status, webhook.body = self.transport(url, form, headers)
        self.requests.append(webhook)
        return webhook

    def call(self, from_number: str, to_number: str = "+448005550111") -> Call:
        return Call(self, from_number, to_number)


class Call:
    """One phone call, driven step by step like a caller would: dials, presses, records."""

    def __init__(self, twilio: TwilioLike, from_number: str, to_number: str) -> None:
        self.twilio = twilio
        self.from_number = from_number
        self.to_number = to_number
        self.sid = new_sid("CA")
        self.heard: list[Said] = []
        self.recordings: list[Webhook] = []  # recording-status callbacks, as sent
        self.pending_callbacks: list[tuple[str, dict[str, str]]] = []
        self.ended = False
        self.last: Webhook | None = None
        self._waiting: ET.Element | None = None  # the <Gather> or <Record> waiting for the caller
        self._rest: list[ET.Element] = []  # verbs after it, run when nothing is pressed or said
        self._heard_mark = 0

    # -- what the caller does -------------------------------------------------------------

    def dials(self) -> Call:
        if self.twilio.provider:
            self.twilio.provider.call_started(self.sid, self.from_number, self.to_number)
        self._request(self.twilio.base_url + "/voice/incoming", {"CallStatus": "ringing"})
        return self

    def presses(self, keys: str) -> Call:
        """Presses `keys` at the waiting <Gather>, which takes them as Twilio does.

        The <Gather> ends at its finishOnKey (Twilio's default "#"; "" for none), which is
        not sent in Digits but as FinishedOnKey, or once it holds numDigits keys. Ended
        before any other key (a "#" alone), it sends nothing and Twilio moves on to the
        next verb, as after a timeout. Keys left over once it has ended are a mistake in
        the test (Twilio would drop them or give them to the next step): press them there.
        Characters no keypad has ("a", " ") are taken like keys, standing for odd Digits.
        """
        gather = self._expect("Gather")
        finish_on_key = gather.get("finishOnKey", DEFAULT_FINISH_ON_KEY)
        num_digits = int(gather.get("numDigits", "0")) or None
        taken, finished_on = "", ""
        for position, key in enumerate(keys):
            if finish_on_key and key == finish_on_key:
                finished_on = key
            else:
                taken += key
            if finished_on or (num_digits and len(taken) == num_digits):
                if keys[position + 1:]:
                    raise ValueError(f"the <Gather> ended after {keys[:position + 1]!r}: press "
                                     f"{keys[position + 1:]!r} at the next step")
                break
        if not taken:
            self._run(self._rest)
            return self
        self._request(gather.get("action", ""), {"Digits": taken, "FinishedOnKey": finished_on, "msg": "Gather End"})
        return self

    def waits(self) -> Call:
        """Presses nothing (or says nothing after the tone): Twilio moves on to the next verb."""
        self._expect("Gather", "Record")
        self._run(self._rest)
        return self

    def records(self, seconds: int | None = None, hang_up: bool = False, deliver_callback: bool = True,
                audio: bytes | None = None) -> Call:
        """Speaks for `seconds` after the tone (or says `audio`, a WAV), then presses # (or hangs up).

        With a provider, the audio (silence when none is given) is stored there first.
        """
        record = self._expect("Record")
        if seconds is None:
            if audio is None:
                raise ValueError("records() needs seconds, or audio to take its length from")
            seconds = wav_seconds(audio)
        recording_sid = new_sid("RE")
        if self.twilio.provider:
            wav_bytes = audio if audio is not None else silence(seconds)
            self.twilio.provider.recording_made(recording_sid, self.sid, wav_bytes, seconds)
        recording_url = f"https://api.twilio.com/2010-04-01/Accounts/{self.twilio.account_sid}/Recordings/{recording_sid}"
        fields = {"RecordingSid": recording_sid, "RecordingUrl": recording_url, "RecordingDuration": str(seconds),
                  "Digits": "hangup" if hang_up else "#"}
        self._request(record.get("action", ""), fields)
        if hang_up:
            self._end()
        callback = record.get("recordingStatusCallback")
        if callback:
            self.pending_callbacks.append((callback, {
                "AccountSid": self.twilio.account_sid, "CallSid": self.sid, "RecordingSid": recording_sid,
                "RecordingUrl": recording_url, "RecordingStatus": "completed", "RecordingDuration": str(seconds),
                "RecordingChannels": "1", "RecordingSource": "RecordVerb", "RecordingStartTime":
                "Wed, 25 Nov 2026 07:00:00 +0000", "ErrorCode": "0",
            }))
            if deliver_callback:
                self.deliver_recording_callbacks()
        return self

    def hangs_up(self) -> Call:
        """Puts the phone down wherever the call is (Twilio requests nothing more)."""
        self._end()
        return self

    def deliver_recording_callbacks(self) -> list[Webhook]:
        sent = [self.twilio.post(url, form) for url, form in self.pending_callbacks]
        self.recordings.extend(sent)
        self.pending_callbacks.clear()
        return sent

    # -- what the caller heard ------------------------------------------------------------

    def heard_since_last_step(self) -> str:
        return " ".join(s.text for s in self.heard[self._heard_mark:])

    def heard_text(self) -> str:
        return " ".join(s.text for s in self.heard)

    @property
    def waiting_for(self) -> str | None:
        return None if self.ended or self._waiting is None else self._waiting.tag

    # -- Twilio's side --------------------------------------------------------------------

    def _call_fields(self) -> dict[str, str]:
        """Everything Twilio sends with a call webhook, identifying fields included."""
        return {
            "AccountSid": self.twilio.account_sid, "ApiVersion": "2010-04-01", "CallSid": self.sid,
            "CallStatus": "in-progress", "Direction": "inbound",
            "From": self.from_number, "Caller": self.from_number, "To": self.to_number, "Called": self.to_number,
            "FromCity": "LONDON", "FromState": "", "FromZip": "E1 6AN", "FromCountry": "GB",
            "CallerCity": "LONDON", "CallerState": "", "CallerZip": "E1 6AN", "CallerCountry": "GB",
            "ToCity": "", "ToState": "", "ToZip": "", "ToCountry": "GB", "CalledCountry": "GB",
            "StirVerstat": "TN-Validation-Passed-A", "CallToken": "%7B%22parentCallInfoToken%22%3A%22eyJ%22%7D",
        }

    def _request(self, url: str, extra: dict[str, str]) -> None:
        if self.ended:
            raise TwimlError("the call has ended")
        if not url:
            raise TwimlError("the verb has no action URL")
        self._heard_mark = len(self.heard)
        self.last = self.twilio.post(url, {**self._call_fields(), **extra})
        if self.last.status != 200:
            raise TwimlError(f"{url} answered {self.last.status}: {self.last.body[:200]}")
        self._run(parse_twiml(self.last.body))

    def _run(self, verbs: list[ET.Element]) -> None:
        self._waiting, self._rest = None, []
        for index, verb in enumerate(verbs):
            if verb.tag == "Say":
                self.heard.append(Said(verb.text or "", verb.get("language"), verb.get("voice")))
            elif verb.tag == "Pause":
                continue
            elif verb.tag == "Gather":
                for said in verb:
                    if said.tag == "Say":
                        self.heard.append(Said(said.text or "", said.get("language"), said.get("voice")))
                self._waiting, self._rest = verb, verbs[index + 1:]
                return
            elif verb.tag == "Record":
                if verb.get("transcribe") not in (None, "false"):
                    raise TwimlError("<Record transcribe> sends audio to the provider's recogniser")
                self._waiting, self._rest = verb, verbs[index + 1:]
                return
            elif verb.tag == "Redirect":
                self._request(verb.text or "", {})
                return
            elif verb.tag == "Hangup":
                break
            else:
                raise TwimlError(f"unexpected verb <{verb.tag}>")
        self._end()

    def _end(self) -> None:
        if not self.ended and self.twilio.provider:
            self.twilio.provider.call_ended(self.sid)
        self.ended = True

    def _expect(self, *tags: str) -> ET.Element:
        if self.ended or self._waiting is None or self._waiting.tag not in tags:
            raise TwimlError(f"expected the call to wait at <{'|'.join(tags)}>, it is at {self.waiting_for}")
        return self._waiting


def parse_twiml(body: str) -> list[ET.Element]:
    try:
        root = ET.fromstring(body)  # nosec B314  # our own app's TwiML; expat expands no external entities
    except ET.ParseError as error:
        raise TwimlError(f"not TwiML: {error}") from None
    if root.tag != "Response":
        raise TwimlError(f"TwiML root is <{root.tag}>, not <Response>")
    return list(root)
