"""A client for the provider stand-in's admin routes, used by tests and the simulator.

`StandIn` is also the provider a `dev.twilio.calls.TwilioLike` reports to: it implements
`call_started`, `recording_made` and `call_ended`, so a simulated call leaves at the
stand-in what a real one leaves at Twilio (the recording, and a call log that becomes
deletable when the call ends).

Path patterns (`fail_next`, `answer_next`, `hold`) are regular expressions searched in the
request path, e.g. r"/Recordings/RE[0-9a-f]{32}\\.wav$"; the method may be "*".
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

TIMEOUT_SECONDS = 10.0


class StandInUnreachable(ConnectionError):
    """Nothing answers at the stand-in's URL (is `make run` running without Twilio credentials?)."""


@dataclass(frozen=True)
class LoggedRequest:
    """One answered API request, or one admin event (method "ADMIN"), in order of `seq`."""

    seq: int
    method: str
    path: str
    query: str
    status: int


@dataclass(frozen=True)
class HeldRecording:
    """A recording the stand-in holds (its audio stays at the stand-in)."""

    sid: str
    call_sid: str | None
    duration_seconds: int
    size: int
    status: str
    date_created: datetime


class StandIn:
    """The stand-in's admin API at `url` (the TWILIO_API_BASE it serves)."""

    def __init__(self, url: str, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds

    # -- the provider protocol of dev.twilio.calls ----------------------------------------

    def call_started(self, call_sid: str, from_number: str | None = None, to_number: str | None = None) -> None:
        query = {k: v for k, v in (("from", from_number), ("to", to_number)) if v}
        self._post(f"/calls/{call_sid}/started" + (f"?{urlencode(query)}" if query else ""))

    def recording_made(self, recording_sid: str, call_sid: str, wav_bytes: bytes, seconds: int) -> None:
        self.put_recording(recording_sid, call_sid, wav_bytes, seconds)

    def call_ended(self, call_sid: str, status: str = "completed", ended: datetime | None = None) -> None:
        """The call ends with a final `status`; `ended` (timezone-aware) backdates its end."""
        query = {"status": status, **({"end_time": ended.isoformat()} if ended else {})}
        self._post(f"/calls/{call_sid}/ended?" + urlencode(query))

    # -- arranging state -----------------------------------------------------------------

    def ping(self) -> None:
        """Raise StandInUnreachable unless the stand-in answers."""
        self._get("/health")

    def reset(self) -> None:
        self._post("/reset")

    def put_recording(self, recording_sid: str, call_sid: str | None, wav_bytes: bytes, seconds: int,
                      created: datetime | None = None, status: str = "completed") -> None:
        """Hold a recording; `created` (timezone-aware) backdates it for sweeps."""
        query = {"sid": recording_sid, "call_sid": call_sid or "", "duration_seconds": seconds, "status": status}
        if created is not None:
            query["date_created"] = created.isoformat()
        self._post("/recordings?" + urlencode(query), wav_bytes, "audio/x-wav")

    def put_message(self, message_sid: str, body: str, status: str = "received", direction: str = "inbound",
                    created: datetime | None = None, media: tuple[str, ...] = (), sender: str | None = None) -> None:
        """Hold a message ("inbound", or the "outbound-reply" our TwiML made), with its photos'
        ME sids as `media` and, for an inbound one, the `sender`'s number; `created` backdates it."""
        query = {"status": status, "direction": direction, "media": ",".join(media), "from": sender or ""}
        if created is not None:
            query["date_created"] = created.isoformat()
        self._post(f"/messages/{message_sid}?" + urlencode(query), body.encode(), "text/plain")

    def put_number(self, number_sid: str, phone_number: str, **fields: str | bool | None) -> None:
        """One of the account's numbers, with Twilio's fields as it holds them (voice_url=..., status_callback=...)."""
        self._post_json(f"/numbers/{number_sid}?" + urlencode({"phone_number": phone_number}), fields)

    def put_messaging_service(self, service_sid: str, number_sids: tuple[str, ...],
                              status_callback: str | None = None) -> None:
        """A Messaging Service whose sender pool holds these numbers (PN sids)."""
        self._post_json(f"/messaging-services/{service_sid}",
                        {"numbers": list(number_sids), "status_callback": status_callback})

    def put_trunk(self, trunk_sid: str, mode: str = "do-not-record", trim: str = "do-not-trim") -> None:
        """A SIP trunk with this recording setting (Twilio's modes: do-not-record, record-from-answer, ...)."""
        self._post_json(f"/trunks/{trunk_sid}", {"mode": mode, "trim": trim})

    def put_intelligence_service(self, service_sid: str, unique_name: str, auto_transcribe: bool,
                                 data_logging: bool = False) -> None:
        """A Voice Intelligence service of the account (GA sid)."""
        self._post_json(f"/intelligence-services/{service_sid}", {
            "unique_name": unique_name, "auto_transcribe": auto_transcribe, "data_logging": data_logging})

    # -- reading state -------------------------------------------------------------------

    def numbers(self) -> dict[str, dict[str, Any]]:
        """Phone number -> its fields as the API shows them (voice_url, sms_method, ...)."""
        return self._get("/numbers")["numbers"]

    def recordings(self) -> list[HeldRecording]:
        return [HeldRecording(**{**r, "date_created": datetime.fromisoformat(r["date_created"])})
                for r in self._get("/recordings")["recordings"]]

    def recording_audio(self, recording_sid: str) -> bytes:
        with self._open(urllib.request.Request(f"{self.url}/_standin/recordings/{recording_sid}.wav")) as response:
            return response.read()

    def calls(self) -> dict[str, str]:
        """Call sid -> "in-progress" or "completed", for calls not deleted."""
        return self._get("/calls")["calls"]

    def messages(self) -> dict[str, dict[str, str]]:
        return self._get("/messages")["messages"]

    def log(self) -> list[LoggedRequest]:
        return [LoggedRequest(**entry) for entry in self._get("/log")["log"]]

    # -- faults and holds ----------------------------------------------------------------

    def fail_next(self, method: str, path: str, status: int = 500, code: int | None = None, times: int = 1) -> None:
        """The next `times` matching requests get a Twilio error (`code` defaults by status)."""
        self._post_json("/faults", {"method": method, "path": path, "status": status, "code": code, "times": times})

    def answer_next(self, method: str, path: str, *, status: int = 200, content_type: str | None = None,
                    body: bytes = b"", stream_bytes: int = 0, declare_length: bool = False,
                    location: str | None = None, times: int = 1) -> None:
        """The next matching requests get this answer: a body, a streamed WAV of
        `stream_bytes` bytes (with Content-Length if `declare_length`), or a redirect."""
        self._post_json("/faults", {
            "method": method, "path": path, "status": status, "content_type": content_type,
            "body": base64.b64encode(body).decode(), "stream_bytes": stream_bytes,
            "declare_length": declare_length, "location": location, "times": times})

    def hold(self, method: str, path: str, times: int | None = None, after: bool = False) -> None:
        """Matching requests wait until `release()`; `after`: once they have taken effect."""
        self._post_json("/holds", {"method": method, "path": path, "times": times, "after": after})

    def held(self) -> int:
        """How many requests are waiting in a hold now."""
        return int(self._get("/held")["held"])

    def wait_until_held(self, count: int = 1, timeout_seconds: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_seconds
        while self.held() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} request(s) reached the stand-in's hold")
            time.sleep(0.05)

    def release(self) -> int:
        """Let every held request go (and drop the holds); how many were held."""
        return int(self._post("/release")["released"])

    # -- HTTP ----------------------------------------------------------------------------

    def _get(self, path: str) -> Any:
        return self._json(urllib.request.Request(f"{self.url}/_standin{path}"))

    def _post(self, path: str, body: bytes = b"", content_type: str = "application/octet-stream") -> Any:
        request = urllib.request.Request(f"{self.url}/_standin{path}", data=body, method="POST",
                                         headers={"Content-Type": content_type})
        return self._json(request)

    def _post_json(self, path: str, payload: dict) -> Any:
        return self._post(path, json.dumps(payload).encode(), "application/json")

    def _json(self, request: urllib.request.Request) -> Any:
        with self._open(request) as response:
            return json.loads(response.read())

    def _open(self, request: urllib.request.Request) -> http.client.HTTPResponse:
        try:
            # The stand-in's own http:// URL (dev.standin), never one from a request.
            return urllib.request.urlopen(request, timeout=self.timeout_seconds)  # nosec B310
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:200]
            error.close()
            raise RuntimeError(f"the stand-in refused {request.get_method()} {request.full_url}: "
                               f"HTTP {error.code} {detail}") from None
        except OSError as error:
            raise StandInUnreachable(f"no provider stand-in answers at {self.url} ({error})") from None
