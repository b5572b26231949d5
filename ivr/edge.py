"""The edge: the only code that reads the provider's raw webhook request.

It checks Twilio's signature over the raw request (every field received, the URL built
from PUBLIC_BASE_URL, never from forwarded headers), then hands the view function an
immutable, allow-listed view of the request. The caller's number (`From`, `Caller`),
name, location fields, `ForwardedFrom`, `StirVerstat`, `CallToken`, `AddOns` and every
field not on a view's allow-list never get past this module. The voice, SMS and worker
code cannot reach `flask.request`: `tests/test_edge_boundary.py` enforces that.

A request that fails the signature check gets 403 and a short plain reason: it did not
come from the provider, so no TwiML is owed. Nothing of such a request is logged.
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import ClassVar, Self, TypeVar
from urllib.parse import quote, urlsplit

from flask import Flask, Response, current_app, request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from ivr.core import Core
from ivr.core.recordings import MAX_RECORDING_SECONDS
from ivr.current import CORE_EXTENSION

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
TOKEN_PARAMETER = "t"  # nosec B105  # a query parameter's name, not a password
# Keys a caller can press (<Gather> sends at most what its numDigits allows), or Twilio's
# "hangup" after a <Record> the caller ended by hanging up. Anything else is no keypress.
DIGITS = re.compile(r"[0-9*#]{1,16}|hangup")
# Twilio allows ten photos per message.
MAX_MEDIA = 10


@dataclass(frozen=True)
class WebhookView:
    """Base for the allow-listed views. `FIELDS` maps provider field names to attributes."""

    FIELDS: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_request_values(cls, form: Mapping[str, str], token: str | None) -> Self:
        values = {attribute: _clean(form.get(name)) for name, attribute in cls.FIELDS.items()}
        known = {f.name for f in fields(cls)}
        if "token" in known:
            values["token"] = token
        return cls(**values)


@dataclass(frozen=True)
class CallStep(WebhookView):
    """A step of a voice call: the keys pressed, and the recording's length after <Record>."""

    token: str | None = None
    digits: str | None = None
    recording_duration: int | None = None

    FIELDS: ClassVar[Mapping[str, str]] = {"Digits": "digits", "RecordingDuration": "recording_duration"}

    def __post_init__(self) -> None:
        digits = self.digits if isinstance(self.digits, str) and DIGITS.fullmatch(self.digits) else None
        object.__setattr__(self, "digits", digits)
        object.__setattr__(self, "recording_duration", bounded_int(self.recording_duration, MAX_RECORDING_SECONDS))

    @property
    def recording_seconds(self) -> int:
        """The recording's length in whole seconds; 0 when absent or not a plausible length."""
        return self.recording_duration or 0


@dataclass(frozen=True)
class RecordingStatus(WebhookView):
    """The recording-status callback. `RecordingUrl` is dropped: it is never followed (SSRF)."""

    token: str | None = None
    call_sid: str | None = None
    recording_sid: str | None = None
    status: str | None = None
    duration: int | None = None  # None: absent, or not a length a <Record> can make

    FIELDS: ClassVar[Mapping[str, str]] = {
        "CallSid": "call_sid",
        "RecordingSid": "recording_sid",
        "RecordingStatus": "status",
        "RecordingDuration": "duration",
    }

    def __post_init__(self) -> None:
        object.__setattr__(self, "duration", bounded_int(self.duration, MAX_RECORDING_SECONDS))


# Twilio joins a long text into one Body of at most 1,600 characters.
MAX_BODY_CHARACTERS = 1600


@dataclass(frozen=True)
class InboundMessage(WebhookView):
    """An incoming text. `From` is read here only to derive `session_keys` and goes no further.

    `session_keys` holds today's session key and, just after midnight, yesterday's
    (`ivr.core.vault.SessionKeys`). The body is kept whole (up to 1,600 characters), not cut
    like the short allow-listed tokens. MediaUrl* are dropped: media is never fetched.
    """

    session_keys: tuple[str, ...] = ()
    body: str = ""
    message_sid: str | None = None
    num_media: int = 0

    @classmethod
    def from_request_values(cls, form: Mapping[str, str], token: str | None) -> Self:
        sender = (form.get("From") or "").strip()
        core: Core = current_app.extensions[CORE_EXTENSION]
        session_keys = core.session_keys.candidates(sender, time.time()) if sender else ()
        # Nonsense counts as one photo: such a text is refused and deleted, never stored.
        raw_media = form.get("NumMedia")
        num_media = bounded_int(raw_media, MAX_MEDIA)
        if num_media is None:
            num_media = 1 if (raw_media or "").strip() else 0
        return cls(session_keys=session_keys, body=(form.get("Body") or "")[:MAX_BODY_CHARACTERS],
                   message_sid=_clean(form.get("MessageSid")), num_media=num_media)


def bounded_int(value: object, maximum: int) -> int | None:
    """A whole number from 0 to `maximum` written in ASCII digits, else None.

    A signed request is still only the provider's word: a "duration" of 10**12 would
    become a job's time limit, and int() accepts "١٢", " 1_0 " and 4,300-digit numbers.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= maximum else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(maximum)):
        return None
    number = int(text)
    return number if number <= maximum else None


def _clean(value: str | None) -> str | None:
    """Allow-listed values are short tokens; anything longer is not what the provider sends."""
    if value is None:
        return None
    value = value.strip()
    return value[:64] if value else None


View = TypeVar("View", bound=WebhookView)


def install(app: Flask, core: Core) -> None:
    """Give the app the one RequestValidator every webhook uses."""
    app.extensions["tipline.request_validator"] = RequestValidator(core.settings.twilio_auth_token)


def twilio_webhook(view_type: type[View]) -> Callable[[Callable[[View], Response | str]], Callable[[], Response | str]]:
    """Decorate a webhook view: check the signature, then call it with an allow-listed view."""

    def decorator(handle: Callable[[View], Response | str]) -> Callable[[], Response | str]:
        @functools.wraps(handle)
        def endpoint() -> Response | str:
            if not _signature_is_valid():
                log.warning("refused a webhook to %s: missing or invalid signature", request.path)
                return Response("Forbidden: this request was not signed by the provider.\n",
                                status=403, mimetype="text/plain")
            return handle(view_type.from_request_values(request.form, request.args.get(TOKEN_PARAMETER)))

        return endpoint

    return decorator


def url_as_provider_saw_it() -> str:
    """PUBLIC_BASE_URL plus the path and query exactly as received."""
    core: Core = current_app.extensions[CORE_EXTENSION]
    base: str = core.settings.public_base_url
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw_uri:
        parts = urlsplit(raw_uri)
        path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    else:
        path_and_query = quote(request.environ.get("PATH_INFO", ""), safe="/;=,:@!$&'()*+~")
        query = request.environ.get("QUERY_STRING", "")
        path_and_query += f"?{query}" if query else ""
    return base + path_and_query


def _signature_is_valid() -> bool:
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature or request.mimetype != "application/x-www-form-urlencoded":
        return False
    validator: RequestValidator = current_app.extensions["tipline.request_validator"]
    url = url_as_provider_saw_it()
    signed = _SignedFields(request.form)
    # The exact URL first (one HMAC); then twilio's own check, which also tries the URL
    # with and without the default port, as Twilio may sign either.
    expected = validator.compute_signature(url, signed)
    return hmac.compare_digest(expected, signature) or validator.validate(url, signed, signature)


class _SignedFields:
    """The form as twilio's RequestValidator reads it: field names, and `getall` for each
    name's values. Given werkzeug's MultiDict it tries `getall` first and falls back on an
    AttributeError per field: two dozen raised and caught exceptions on every webhook."""

    def __init__(self, form: MultiDict[str, str]) -> None:
        self._form = form

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def __bool__(self) -> bool:
        return bool(self._form)

    def getall(self, name: str) -> list[str]:
        return self._form.getlist(name)
