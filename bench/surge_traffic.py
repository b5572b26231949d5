"""The surge's callers and texters: a schedule like a TV appeal, played in real time.

Twilio places each call and text (dev/twilio: signed webhooks, TwiML followed) over HTTP
to gunicorn; with the stand-in as provider, so recordings are stored there and the
workers fetch them from it. Every webhook's latency is kept with the moment it was sent.
The schedule is of arrivals (a caller's first ring); a caller's talking time is not waited
out, so the recording's callback follows its menus at once.
"""

from __future__ import annotations

import itertools
import random
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.surge_clips import Clip
from dev.twilio.calls import TwilioLike
from dev.twilio.http_transport import http_post
from dev.twilio.texts import Phone

PUBLIC_BASE_URL = "https://tipline.example.org"
SPOKEN_CODE = re.compile(r"\d(?:, \d)+")  # a reference or PIN read out digit by digit
TEXTED_REFERENCE = re.compile(r"\b(\d{11})\b")
URGENT_SHARE = 0.10
TEXT_REPORT = "Knives are kept in a blue holdall in the shed behind number 12 Queens Road."


@dataclass(frozen=True)
class Arrival:
    """One caller or texter: when they arrive (s after the start), on what line, with what."""

    at: float
    channel: str  # "voice" or "sms"
    category_digit: str
    urgent: bool
    clip: int  # index into the clip pool (voice only)


@dataclass
class Outcome:
    """What the bench saw of one arrival: the reference it heard and when its callback was answered."""

    arrival: Arrival
    reference: str = ""
    seconds: int = 0
    callback_status: int = 0
    callback_answered: float = 0.0  # monotonic
    error: str = ""


@dataclass(frozen=True)
class WebhookTiming:
    sent: float  # monotonic
    milliseconds: float
    status: int
    path: str  # without the query (which carries the sealed call state)


def appeal_schedule(calls: int, texts: int, duration: float, clips: int, urgent_digits: str,
                    other_digits: str, seed: int = 14) -> list[Arrival]:
    """Arrivals after an appeal is aired: most in its first minutes, tailing off (triangular,
    peak at 15% of `duration`); a tenth of them urgent, chosen exactly."""
    chooser = random.Random(seed)  # nosec B311  # a repeatable schedule, not a secret
    channels = ["voice"] * calls + ["sms"] * texts
    urgent_count = max(1, round(URGENT_SHARE * len(channels))) if channels else 0  # a small run has one too
    urgent = set(chooser.sample(range(len(channels)), urgent_count))
    arrivals = []
    for index, channel in enumerate(channels):
        is_urgent = index in urgent
        arrivals.append(Arrival(
            at=chooser.triangular(0, duration, 0.15 * duration), channel=channel, urgent=is_urgent,
            category_digit=chooser.choice(urgent_digits if is_urgent else other_digits),
            clip=chooser.randrange(clips)))
    return sorted(arrivals, key=lambda a: a.at)


class TimedTransport:
    """Twilio's POSTs sent to a local gunicorn instead of the public address, each one timed."""

    def __init__(self, web_base: str) -> None:
        self.web_base = web_base
        self.timings: list[WebhookTiming] = []
        self._lock = threading.Lock()

    def post(self, url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        if not url.startswith(PUBLIC_BASE_URL):
            raise ValueError(f"the app sent Twilio to {url!r}, not to its public address")
        started = time.monotonic()
        status, body = http_post(self.web_base + url[len(PUBLIC_BASE_URL):], form, headers)
        timing = WebhookTiming(sent=started, milliseconds=(time.monotonic() - started) * 1000, status=status,
                               path=urlsplit(url).path)
        with self._lock:
            self.timings.append(timing)
        return status, body


def random_mobile() -> str:
    """A made-up UK mobile number (Ofcom's drama range): the line must not keep it anywhere."""
    return f"+447700900{secrets.randbelow(1000):03d}"


_texters = itertools.count()


def next_texter() -> str:
    """A texter's number, each a different one of Ofcom's 1,000 drama numbers (then again from
    the first): texts from one phone within a while join its last conversation's tip."""
    return f"+447700900{next(_texters) % 1000:03d}"


def place_call(twilio: TwilioLike, arrival: Arrival, clip: Clip) -> Outcome:
    """Dial, choose English and a topic, leave the clip after the tone, hang up."""
    outcome = Outcome(arrival=arrival, seconds=clip.seconds)
    call = twilio.call(random_mobile()).dials().presses("1").presses(arrival.category_digit)
    references = [c.replace(", ", "") for c in SPOKEN_CODE.findall(call.heard_since_last_step())]
    outcome.reference = next((r for r in references if len(r) == 11), "")
    call.records(audio=clip.wav, deliver_callback=False)
    (callback,) = call.deliver_recording_callbacks()
    outcome.callback_status, outcome.callback_answered = callback.status, time.monotonic()
    call.presses("9")
    return outcome


def send_texts(twilio: TwilioLike, arrival: Arrival) -> Outcome:
    """A whole SMS conversation: hello, English, a topic, the report, one more line, done."""
    outcome = Outcome(arrival=arrival)
    phone = Phone(twilio, next_texter())
    phone.sends("Hello")
    phone.sends("1")
    phone.sends(arrival.category_digit)
    found = TEXTED_REFERENCE.search(phone.sends(TEXT_REPORT))
    outcome.reference = found.group(1) if found else ""
    phone.sends("It is a red shed.")
    phone.sends("done")
    outcome.callback_status, outcome.callback_answered = phone.sent[-1].status, time.monotonic()
    return outcome


@dataclass
class Surge:
    """Plays a schedule in real time from a thread pool, Twilio-like, and keeps what it saw."""

    twilio: TwilioLike
    clips: list[Clip]
    threads: int = 32
    on_answered: Callable[[str], None] = lambda reference: None  # told each reference once its tip is in
    outcomes: list[Outcome] = field(default_factory=list)

    def arrive(self, arrival: Arrival) -> Outcome:
        try:
            if arrival.channel == "voice":
                outcome = place_call(self.twilio, arrival, self.clips[arrival.clip])
            else:
                outcome = send_texts(self.twilio, arrival)
        except (AssertionError, OSError, ValueError) as error:  # TwimlError is an AssertionError
            return Outcome(arrival=arrival, error=f"{type(error).__name__}: {error}"[:200])
        if outcome.reference and 200 <= outcome.callback_status < 300:
            self.on_answered(outcome.reference)
        return outcome

    def play(self, schedule: list[Arrival]) -> float:
        """Each arrival at its time after now; returns when the last one is through (monotonic)."""
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            futures = []
            for arrival in schedule:
                time.sleep(max(0.0, started + arrival.at - time.monotonic()))
                futures.append(pool.submit(self.arrive, arrival))
            self.outcomes.extend(future.result() for future in futures)
        return time.monotonic()
