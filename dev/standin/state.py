"""What the provider stand-in holds: recordings, calls, messages, the account's numbers,
Messaging Services, trunks and Voice Intelligence services, its request log, and the
faults and holds tests arrange. In memory, behind one lock, shared by the server's threads."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from flask import current_app

# Call and message statuses after which Twilio lets the record be deleted.
FINAL_CALL_STATUS = "completed"
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
FINAL_MESSAGE_STATUSES = frozenset({"received", "delivered", "undelivered", "failed", "read", "canceled", "sent"})
# Twilio's directions for the messages we have: texts to us, and the replies our TwiML made.
MESSAGE_DIRECTIONS = frozenset({"inbound", "outbound-reply"})


@dataclass
class StoredRecording:
    sid: str
    call_sid: str | None
    wav: bytes = field(repr=False)
    duration_seconds: int
    date_created: datetime
    status: str = "completed"

    def summary(self) -> dict:
        return {"sid": self.sid, "call_sid": self.call_sid, "duration_seconds": self.duration_seconds,
                "size": len(self.wav), "status": self.status, "date_created": self.date_created.isoformat()}


@dataclass
class StoredCall:
    """A call log: Twilio keeps the caller's number (`from_number`) until it is deleted."""

    sid: str
    status: str
    start_time: datetime = field(default_factory=lambda: utc_now())
    end_time: datetime | None = None
    direction: str = "inbound"
    from_number: str | None = None
    to_number: str | None = None


@dataclass
class StoredMessage:
    sid: str
    body: str
    status: str
    direction: str = "inbound"
    date_created: datetime = field(default_factory=lambda: utc_now())
    media: list[str] = field(default_factory=list)  # ME sids: the photos of an MMS
    from_number: str | None = None  # the sender of an inbound text, as Twilio's log holds it

    def summary(self) -> dict[str, str]:
        return {"body": self.body, "status": self.status, "direction": self.direction,
                "date_created": self.date_created.isoformat(), "media": ",".join(self.media)}


@dataclass
class StoredNumber:
    """One of the account's phone numbers (IncomingPhoneNumbers): the line's own, not a caller's."""

    sid: str
    phone_number: str
    fields: dict[str, str | bool | None] = field(default_factory=dict)  # Twilio's names, snake_case: voice_url, ...


@dataclass
class StoredMessagingService:
    """A Messaging Service and the PN sids of the numbers in its sender pool."""

    sid: str
    friendly_name: str
    number_sids: list[str] = field(default_factory=list)
    status_callback: str | None = None


@dataclass
class StoredIntelligenceService:
    """A Voice Intelligence service: with `auto_transcribe`, Twilio transcribes every recording of the account."""

    sid: str
    unique_name: str
    auto_transcribe: bool = False
    data_logging: bool = False


@dataclass(frozen=True)
class LogEntry:
    """One request answered (API) or one admin event, numbered in the order it happened."""

    seq: int
    method: str
    path: str
    query: str
    status: int


@dataclass
class Rule:
    """Matches requests by method (or "*") and a regular expression searched in the path."""

    method: str
    path: str
    remaining: int | None  # None: every matching request until reset or release

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and bool(self._pattern.search(path)) and self.remaining != 0


@dataclass
class Fault(Rule):
    """The answer a matching request gets instead of the real one."""

    status: int = 500
    code: int | None = None
    content_type: str | None = None
    body: bytes = b""
    stream_bytes: int = 0  # > 0: a WAV header and this many bytes in all, streamed
    declare_length: bool = False  # with stream_bytes: send Content-Length too
    location: str | None = None


@dataclass
class Hold(Rule):
    after: bool = False  # hold the answer after the request took effect, not before


class ProviderState:
    """The stand-in's memory. Every method takes the lock; held requests wait on it."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._release_generation = 0
        self._stopping = False
        self._held = 0  # requests waiting in wait_if_held now
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.recordings: dict[str, StoredRecording] = {}
            self.calls: dict[str, StoredCall] = {}
            self.messages: dict[str, StoredMessage] = {}
            self.numbers: dict[str, StoredNumber] = {}
            self.messaging_services: dict[str, StoredMessagingService] = {}
            self.trunk_recordings: dict[str, dict[str, str]] = {}  # TK sid -> {"mode": ..., "trim": ...}
            self.intelligence_services: dict[str, StoredIntelligenceService] = {}
            self._log: list[LogEntry] = []
            self._seq = 0
            self._faults: list[Fault] = []
            self._holds: list[Hold] = []
            self._release_generation += 1  # anything held is let go
            self._lock.notify_all()

    # -- the request log ------------------------------------------------------------------

    def note(self, method: str, path: str, query: str, status: int) -> LogEntry:
        with self._lock:
            self._seq += 1
            entry = LogEntry(self._seq, method, path, query, status)
            self._log.append(entry)
            return entry

    def log(self) -> list[dict]:
        with self._lock:
            return [asdict(entry) for entry in self._log]

    # -- faults and holds -----------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
            return None

    def add_hold(self, hold: Hold) -> None:
        with self._lock:
            self._holds.append(hold)

    def wait_if_held(self, method: str, path: str, after: bool) -> None:
        """Block a matching request until `release`, `reset` or `stop`."""
        with self._lock:
            hold = next((h for h in self._holds if h.after == after and h.matches(method, path)), None)
            if hold is None or self._stopping:
                return
            if hold.remaining is not None:
                hold.remaining -= 1
            generation = self._release_generation
            self._held += 1
            self._lock.notify_all()
            try:
                while self._release_generation == generation and not self._stopping:
                    self._lock.wait()
            finally:
                self._held -= 1
                self._lock.notify_all()

    def held_count(self) -> int:
        with self._lock:
            return self._held

    def release(self) -> int:
        """Let every held request go and forget the hold rules; how many were held."""
        with self._lock:
            released = self._held
            self._holds.clear()
            self._release_generation += 1
            self._lock.notify_all()
            return released

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()

    # -- recordings, calls, messages ------------------------------------------------------

    def put_recording(self, recording: StoredRecording) -> None:
        with self._lock:
            self.recordings[recording.sid] = recording

    def recording(self, sid: str) -> StoredRecording | None:
        with self._lock:
            return self.recordings.get(sid)

    def delete_recording(self, sid: str) -> bool:
        with self._lock:
            return self.recordings.pop(sid, None) is not None

    def recordings_newest_first(self) -> list[StoredRecording]:
        with self._lock:
            return sorted(self.recordings.values(), key=lambda r: r.date_created, reverse=True)

    def call_statuses(self) -> dict[str, str]:
        with self._lock:
            return {sid: call.status for sid, call in self.calls.items()}

    def set_call(self, sid: str, status: str, end_time: datetime | None = None, from_number: str | None = None,
                 to_number: str | None = None) -> None:
        """Start a call, or move it to `status` (a final one ends it, now or at `end_time`)."""
        with self._lock:
            call = self.calls.setdefault(sid, StoredCall(sid=sid, status=status))
            call.status = status
            call.from_number = from_number or call.from_number
            call.to_number = to_number or call.to_number
            if status in FINAL_CALL_STATUSES:
                call.end_time = end_time or utc_now()
                call.start_time = min(call.start_time, call.end_time)

    def call_status(self, sid: str) -> str | None:
        with self._lock:
            call = self.calls.get(sid)
            return call.status if call else None

    def calls_newest_first(self) -> list[StoredCall]:
        with self._lock:
            return sorted(self.calls.values(), key=lambda c: c.start_time, reverse=True)

    def delete_call(self, sid: str) -> None:
        with self._lock:
            self.calls.pop(sid, None)

    def put_message(self, message: StoredMessage) -> None:
        with self._lock:
            self.messages[message.sid] = message

    def message_summaries(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return {sid: m.summary() for sid, m in self.messages.items()}

    def messages_newest_first(self) -> list[StoredMessage]:
        with self._lock:
            return sorted(self.messages.values(), key=lambda m: m.date_created, reverse=True)

    def message(self, sid: str) -> StoredMessage | None:
        with self._lock:
            return self.messages.get(sid)

    def redact_message(self, sid: str) -> None:
        with self._lock:
            self.messages[sid].body = ""

    def delete_message(self, sid: str) -> None:
        """Gone with its media, as Twilio has done since October 2020."""
        with self._lock:
            self.messages.pop(sid, None)

    def delete_media(self, sid: str, media_sid: str) -> bool:
        with self._lock:
            message = self.messages.get(sid)
            if message is None or media_sid not in message.media:
                return False
            message.media.remove(media_sid)
            return True


    # -- phone numbers and messaging services -------------------------------------------------

    def put_number(self, number: StoredNumber) -> None:
        with self._lock:
            self.numbers[number.sid] = number

    def numbers_in_order(self) -> list[StoredNumber]:
        with self._lock:
            return sorted(self.numbers.values(), key=lambda n: n.phone_number)

    def number(self, sid: str) -> StoredNumber | None:
        with self._lock:
            return self.numbers.get(sid)

    def update_number(self, sid: str, changes: dict[str, str | bool | None]) -> StoredNumber | None:
        with self._lock:
            number = self.numbers.get(sid)
            if number is not None:
                number.fields.update(changes)
            return number

    def put_messaging_service(self, service: StoredMessagingService) -> None:
        with self._lock:
            self.messaging_services[service.sid] = service

    def messaging_services_in_order(self) -> list[StoredMessagingService]:
        with self._lock:
            return sorted(self.messaging_services.values(), key=lambda s: s.sid)

    # -- trunks and Voice Intelligence (account-wide) ----------------------------------------

    def put_trunk(self, sid: str, mode: str, trim: str) -> None:
        with self._lock:
            self.trunk_recordings[sid] = {"mode": mode, "trim": trim}

    def trunk_recording(self, sid: str) -> dict[str, str] | None:
        with self._lock:
            recording = self.trunk_recordings.get(sid)
            return dict(recording) if recording else None

    def put_intelligence_service(self, service: StoredIntelligenceService) -> None:
        with self._lock:
            self.intelligence_services[service.sid] = service

    def intelligence_services_in_order(self) -> list[StoredIntelligenceService]:
        with self._lock:
            return sorted(self.intelligence_services.values(), key=lambda s: s.sid)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def current_state() -> ProviderState:
    """The state of the stand-in app handling the current request."""
    return current_app.extensions["standin"]
