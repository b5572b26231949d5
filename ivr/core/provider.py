"""Our REST client for the slice of Twilio we use: recordings, call logs, message logs.

The lists read only what the sweeps need (`ivr/core/provider_records.py`): never a caller's or
sender's number (`from`, `to`), which twilio-python parses but no record of ours holds.

Every URL is built here, from TWILIO_API_BASE, the account sid and a sid checked against
its exact shape; never from a URL the provider sent us (a callback's RecordingUrl could
name any host: SSRF). The audio fetch follows at most two redirects (Twilio answers the
media request with one to its storage), only to https hosts of Twilio or its storage, or
back to the API base itself; our credentials go to the API base's origin and nowhere else.

Provider sids are identifiers the promise keeps out of logs: nothing here logs one, and
no exception message carries one (messages reach logs and failed jobs). twilio-python
logs every request URL and urllib3 logs request lines at DEBUG, so the twilio client
gets a logger that is switched off, and a filter on urllib3's logger replaces sids.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, overload
from urllib.parse import urljoin, urlsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from config.settings import TWILIO_API_DEFAULT, Settings
from ivr.core.provider_errors import (
    BadIdentifier,
    CredentialsRefused,
    NotAudio,
    ProviderError,
    ProviderUnavailable,
    RecordingNotFound,
    RecordingTooLarge,
    RedirectRefused,
    StillInProgress,
    error_for_status,
)
from ivr.core.provider_records import (
    ACCOUNT_SID,
    ANY_SID,
    CALL_SID,
    FINAL_CALL_STATUSES,
    MEDIA_SID,
    MESSAGE_SID,
    RECORDING_PENDING_STATUSES,
    RECORDING_SID,
    InboundText,
    ProviderCall,
    ProviderMessage,
    ProviderRecording,
    call_from,
    has_shape,
    inbound_text_from,
    int_or_none,
    message_from,
    recording_from,
)

__all__ = ["BadIdentifier", "CredentialsRefused", "InboundText", "NotAudio", "Provider", "ProviderCall",
           "ProviderError", "ProviderMessage", "ProviderRecording",
           "ProviderUnavailable", "RecordingNotFound", "RecordingTooLarge", "RedirectRefused", "StillInProgress",
           "redirect_hop", "rest_client"]


# Ten minutes of 8 kHz 16-bit mono WAV (our <Record maxLength=600>) is 9.6 MB.
MAX_RECORDING_BYTES = 20 * 1024 * 1024
MAX_REDIRECTS = 2
# Where Twilio's media redirect may lead (https only); the API base's own origin is allowed too.
STORAGE_HOST_SUFFIXES = (".twilio.com", ".twiliocdn.com", ".amazonaws.com")
# A read timeout bounds each read; this bounds a download that trickles.
MAX_DOWNLOAD_SECONDS = 120.0
CHUNK_BYTES = 64 * 1024
LIST_PAGE_SIZE = 100


class _ReplaceSids(logging.Filter):
    """Replaces provider sids in urllib3's request lines (it logs paths at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record: logging's own error handling reports it
        if ANY_SID.search(message):
            record.msg, record.args = ANY_SID.sub("[sid]", message), None
        return True


def _install_log_filter() -> None:
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _ReplaceSids) for f in urllib3_log.filters):
        urllib3_log.addFilter(_ReplaceSids())


_install_log_filter()

# twilio-python logs each request's URL at INFO: it gets a logger that is switched off,
# outside logging's registry so that no logging configuration can switch it on again.
_SILENT_LOG = logging.Logger("ivr.core.provider.twilio-http")
_SILENT_LOG.disabled = True

Result = TypeVar("Result")
Listed = TypeVar("Listed")


class Provider:
    """Twilio's REST API as the worker and the sweep need it. One per process (or thread)."""

    def __init__(self, settings: Settings, timeout_seconds: float = 10.0,
                 before_delete: Callable[[], None] | None = None) -> None:
        """`before_delete` runs before every delete and may refuse it by raising: the core
        passes its replica barrier, so nothing is deleted here before our copy is safe."""
        if not ACCOUNT_SID.fullmatch(settings.twilio_account_sid):
            raise BadIdentifier("TWILIO_ACCOUNT_SID must be AC followed by 32 lowercase hex digits.")
        self._api_base = settings.twilio_api_base
        self._api_origin = _origin(self._api_base)
        self._account_sid = settings.twilio_account_sid
        self._credentials = (settings.twilio_account_sid, settings.twilio_auth_token)
        self._timeout = timeout_seconds
        self._media = requests.Session()
        client = rest_client(settings, timeout_seconds)
        self._http_client = client.http_client
        self._account = client.api.v2010.accounts(self._account_sid)
        self._before_delete = before_delete

    def close(self) -> None:
        """Close the pooled connections (a worker keeps one Provider for its life)."""
        self._media.close()
        session = getattr(self._http_client, "session", None)
        if session is not None:
            session.close()

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- recordings -------------------------------------------------------------------

    def fetch_recording(self, recording_sid: str) -> bytes:
        """The recording's WAV bytes, from the API base (and its storage redirect)."""
        sid = _checked(recording_sid, RECORDING_SID, "recording")
        url = f"{self._api_base}/2010-04-01/Accounts/{self._account_sid}/Recordings/{sid}.wav"
        with_credentials = True
        for _ in range(MAX_REDIRECTS + 1):
            response = self._get_media(url, with_credentials)
            with response:
                if response.status_code in (301, 302, 303, 307, 308):
                    url, with_credentials = redirect_hop(self._api_origin, url, response.headers.get("Location", ""))
                    continue
                if response.status_code == 404:
                    raise RecordingNotFound("the provider has no such recording (404)")
                if response.status_code != 200:
                    raise error_for_status(response.status_code, None, "fetch the recording")
                return _read_wav(response)
        raise RedirectRefused(f"the recording fetch was redirected more than {MAX_REDIRECTS} times")

    def delete_recording(self, recording_sid: str) -> None:
        """Delete the recording at the provider; one already gone counts as deleted."""
        sid = _checked(recording_sid, RECORDING_SID, "recording")
        self._delete(lambda: self._account.recordings(sid).delete(), "delete the recording")

    def list_recordings(self, created_before: datetime | None = None) -> list[ProviderRecording]:
        """Every completed recording at the provider (all pages), created before the cutoff.

        Twilio documents its DateCreated filters by day, so the request asks for a day
        more and the exact cut is made here. Recordings still in progress or processing,
        and absent or failed ones, have no audio to fetch and are left out.
        """
        cutoff = _utc_cutoff(created_before)
        filters = {"date_created_before": cutoff + timedelta(days=1)} if cutoff else {}

        return self._listed(lambda: self._account.recordings.stream(page_size=LIST_PAGE_SIZE, **filters),
                            recording_from, lambda r: cutoff is None or r.date_created < cutoff, "list recordings")

    # -- call and message logs ----------------------------------------------------------

    def delete_call(self, call_sid: str) -> None:
        """Delete the call log; gone already is success; StillInProgress while the call runs."""
        sid = _checked(call_sid, CALL_SID, "call")
        self._delete(lambda: self._account.calls(sid).delete(), "delete the call")

    def delete_message(self, message_sid: str) -> None:
        """Delete the message log; gone already is success; StillInProgress until it is final.

        An MMS (sid MM...) has its photos deleted first, one by one. Twilio documents that
        deleting a message deletes its media too (since October 2020), but a photo can
        carry the sender's location, so we do not rely on it: the deletes are ours to see.
        """
        sid = _checked(message_sid, MESSAGE_SID, "message")
        if sid.startswith("MM"):
            media = rest_call(lambda: [m.sid for m in self._account.messages(sid).media.list()],
                              "list the message's media", missing_is_success=True) or []
            for media_sid in media:
                if has_shape(media_sid, MEDIA_SID):
                    self._delete(lambda: self._account.messages(sid).media(media_sid).delete(),  # noqa: B023  # called at once
                                 "delete a photo")
        self._delete(lambda: self._account.messages(sid).delete(), "delete the message")

    def list_messages(self, created_before: datetime | None = None,
                      direction: str | None = None) -> list[ProviderMessage]:
        """Every message record at the provider (all pages), created before the cutoff and,
        given a direction ("inbound", "outbound-reply"), only those.

        Twilio filters its message log by the day sent (DateSent<), not by creation or
        direction, so the request asks for a day more and the exact cut is made here.
        """
        cutoff = _utc_cutoff(created_before)
        filters = {"date_sent_before": cutoff + timedelta(days=1)} if cutoff else {}

        return self._listed(lambda: self._account.messages.stream(page_size=LIST_PAGE_SIZE, **filters),
                            message_from, lambda m: ((cutoff is None or m.date_created < cutoff)
                                                     and (direction is None or m.direction == direction)),
                            "list messages")

    def list_inbound_texts(self, created_before: datetime | None = None) -> list[InboundText]:
        """Every inbound message (all pages) created before the cutoff, with its text.

        The same day-wide DateSent< request as `list_messages`, cut exactly here. Each
        record's `from` reaches twilio-python's object but never ours.
        """
        cutoff = _utc_cutoff(created_before)
        filters = {"date_sent_before": cutoff + timedelta(days=1)} if cutoff else {}

        return self._listed(lambda: self._account.messages.stream(page_size=LIST_PAGE_SIZE, **filters),
                            inbound_text_from, lambda t: cutoff is None or t.date_created < cutoff,
                            "list inbound messages")

    def list_finished_calls(self, ended_before: datetime) -> list[ProviderCall]:
        """Every call (all pages) that reached a final status before the cutoff.

        Twilio filters calls by one status at a time and documents EndTime by day, so the
        request asks for calls that ended before the next day and the statuses and the
        exact cut are chosen here. A call in progress has no end time and is never listed.
        """
        cutoff = _utc_cutoff(ended_before) or datetime.now(UTC)

        return self._listed(
            lambda: self._account.calls.stream(page_size=LIST_PAGE_SIZE, end_time_before=cutoff + timedelta(days=1)),
            call_from, lambda c: c.status in FINAL_CALL_STATUSES and c.end_time is not None and c.end_time < cutoff,
            "list calls")

    def call_has_pending_recordings(self, call_sid: str) -> bool:
        """Does the call have a recording that has or will have audio (its job's to clean up)?"""
        sid = _checked(call_sid, CALL_SID, "call")

        def pending() -> bool:
            return any(r.status in RECORDING_PENDING_STATUSES
                       for r in self._account.recordings.stream(call_sid=sid, page_size=LIST_PAGE_SIZE))

        return bool(rest_call(pending, "list a call's recordings"))

    def check_reachable(self) -> None:
        """One cheap authenticated GET (a recordings list page of one); raises ProviderError when it fails."""
        rest_call(lambda: self._account.recordings.page(page_size=1), "reach the provider")

    # -- plumbing -----------------------------------------------------------------------

    def _listed(self, stream: Callable[[], Iterable[Any]], convert: Callable[[Any], Listed | None],
                keep: Callable[[Listed], bool], action: str) -> list[Listed]:
        """Every page of a list call, each record converted (None: not one of ours) and kept or not."""
        def every_page() -> list[Listed]:
            converted = (convert(instance) for instance in stream())
            return [record for record in converted if record is not None and keep(record)]

        return rest_call(every_page, action) or []

    def _delete(self, delete: Callable[[], object], action: str) -> None:
        """A delete where 404 (already gone) is what we wanted."""
        if self._before_delete is not None:
            self._before_delete()
        rest_call(delete, action, missing_is_success=True)

    def _get_media(self, url: str, with_credentials: bool) -> requests.Response:
        try:
            return self._media.get(url, auth=self._credentials if with_credentials else None, stream=True,
                                   allow_redirects=False, timeout=(self._timeout, self._timeout),
                                   headers={"Accept": "audio/*", "Accept-Encoding": "identity"})
        except requests.RequestException as error:
            raise ProviderUnavailable(f"could not fetch the recording: {type(error).__name__}") from None


@overload
def rest_call(operation: Callable[[], Result], action: str) -> Result: ...


@overload
def rest_call(operation: Callable[[], Result], action: str, missing_is_success: Literal[True]) -> Result | None: ...


def rest_call(operation: Callable[[], Result], action: str, missing_is_success: bool = False) -> Result | None:
    """Run a twilio-python call, turning its errors into ours, without sids or URLs (None: a
    404 that `missing_is_success` allows)."""
    try:
        return operation()
    except (TwilioRestException, TwilioServiceException) as error:
        status, code = int(error.status), int_or_none(error.code)
        if status == 404 and missing_is_success:
            return None
        raise error_for_status(status, code, action) from None
    except TwilioException as error:  # a list page that was not 200, or not a list page
        page_status: int | None = next(
            (arg.status_code for arg in error.args if isinstance(arg, TwilioResponse)), None)
        if page_status is None:
            raise ProviderError(f"could not {action}: the provider's answer could not be read") from None
        if page_status == 404 and missing_is_success:
            return None
        raise error_for_status(page_status, None, action) from None
    except requests.RequestException as error:
        raise ProviderUnavailable(f"could not {action}: {type(error).__name__} talking to the provider") from None
    except ValueError:  # a body that is not JSON
        raise ProviderError(f"could not {action}: the provider's answer was not JSON") from None


def rest_client(settings: Settings, timeout_seconds: float = 10.0) -> Client:
    """twilio-python's client for our account, with its request log switched off; its api
    domain at TWILIO_API_BASE, and, where that is not Twilio's own, the messaging, trunking
    and intelligence domains too (the stand-in serves them all)."""
    client = Client(username=settings.twilio_account_sid, password=settings.twilio_auth_token,
                    account_sid=settings.twilio_account_sid,
                    http_client=TwilioHttpClient(timeout=timeout_seconds, logger=_SILENT_LOG))
    # The client reads TWILIO_EDGE / TWILIO_REGION from the environment and would then
    # rewrite the host (api.dublin.ie1.twilio.com, or nonsense for a stand-in): never.
    client.edge = None
    client.region = None
    client.api.base_url = settings.twilio_api_base
    if settings.twilio_api_base != TWILIO_API_DEFAULT:
        client.messaging.base_url = settings.twilio_api_base
        client.trunking.base_url = settings.twilio_api_base
        client.intelligence.base_url = settings.twilio_api_base
    return client


def redirect_hop(api_origin: tuple[str, str, int], current_url: str, location: str) -> tuple[str, bool]:
    """Where a media redirect leads, and whether our credentials may go with it.

    Allowed: the API base's own origin (credentials go), or an https host of Twilio or its
    storage (no credentials). Anything else raises RedirectRefused.
    """
    if not location:
        raise RedirectRefused("the provider redirected the recording fetch without a Location")
    target = urljoin(current_url, location)
    parts = urlsplit(target)
    try:
        origin = _origin(target)
    except ValueError:
        raise RedirectRefused("the recording fetch was redirected to a malformed URL") from None
    if parts.username is not None or parts.password is not None:
        raise RedirectRefused("the recording fetch was redirected to a URL with credentials in it")
    if origin == api_origin:
        return target, True
    host = origin[1]
    if origin[0] == "https" and host.endswith(STORAGE_HOST_SUFFIXES):
        return target, False
    raise RedirectRefused("the recording fetch was redirected to a host we do not fetch from")


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise ValueError("not an http(s) URL")
    return scheme, host, parts.port or (443 if scheme == "https" else 80)


def _utc_cutoff(created_before: datetime | None) -> datetime | None:
    """A list's exact cutoff in UTC; a naive datetime is refused (which zone would it be?)."""
    if created_before is None:
        return None
    if created_before.tzinfo is None:
        raise ValueError("created_before must be timezone-aware (UTC), not a naive datetime.")
    return created_before.astimezone(UTC)


def _checked(sid: str, shape: re.Pattern[str], what: str) -> str:
    if not has_shape(sid, shape):
        raise BadIdentifier(f"that is not a {what} sid (expected {shape.pattern})")
    return sid



def _read_wav(response: requests.Response) -> bytes:
    """The body, if it is a WAV file of at most MAX_RECORDING_BYTES."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not content_type.startswith("audio/"):
        raise NotAudio(f"the provider answered {content_type or 'no content type'}, not audio")
    declared = int_or_none(response.headers.get("Content-Length"))
    if declared is not None and declared > MAX_RECORDING_BYTES:
        raise RecordingTooLarge(f"the recording is {declared} bytes; the limit is {MAX_RECORDING_BYTES}")
    body = bytearray()
    deadline = time.monotonic() + MAX_DOWNLOAD_SECONDS
    for chunk in _chunks(response):
        body += chunk
        if len(body) > MAX_RECORDING_BYTES:
            raise RecordingTooLarge(f"the recording is over the limit of {MAX_RECORDING_BYTES} bytes")
        if time.monotonic() > deadline:
            raise ProviderUnavailable(f"the recording took more than {MAX_DOWNLOAD_SECONDS:.0f} s to download")
    if body[:4] != b"RIFF" or body[8:12] != b"WAVE":
        raise NotAudio("the provider's answer is not a WAV file")
    return bytes(body)


def _chunks(response: requests.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_content(CHUNK_BYTES)
    except requests.RequestException as error:
        raise ProviderUnavailable(f"the recording download broke off: {type(error).__name__}") from None

