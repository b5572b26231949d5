"""What the provider's lists hold, as we keep it: sids, statuses, dates, a text's words.

Never a number: a call's `from`/`to` and a message's `from` reach twilio-python's objects
but no record here has a field for them, so nothing downstream can keep one. A record
with a sid of the wrong shape is left out (None): it is never put in a URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twilio.rest.api.v2010.account.call import CallInstance
from twilio.rest.api.v2010.account.message import MessageInstance
from twilio.rest.api.v2010.account.recording import RecordingInstance

# Matched with fullmatch: `$` alone would let a trailing newline through.
ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")
RECORDING_SID = re.compile(r"RE[0-9a-f]{32}")
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-f]{32}")
MEDIA_SID = re.compile(r"ME[0-9a-f]{32}")
ANY_SID = re.compile(r"(?:AC|RE|CA|SM|MM|ME)[0-9a-f]{32}")

# Only these have audio to fetch; in-progress, processing, absent and failed ones do not.
LISTED_STATUS = "completed"
# A recording in one of these has, or will have, audio: its call is someone's work.
RECORDING_PENDING_STATUSES = frozenset({"in-progress", "paused", "stopped", "processing", "completed"})
# Twilio's final call statuses: nothing about the call changes after these, and it can be deleted.
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# An inbound Body is at most 1,600 characters (Twilio joins a long text into one).
MAX_BODY_CHARACTERS = 1600


@dataclass(frozen=True)
class ProviderRecording:
    """A finished recording still held at the provider."""

    sid: str
    call_sid: str | None
    date_created: datetime
    duration_seconds: int


@dataclass(frozen=True)
class ProviderMessage:
    """A message record still held at the provider (its body is never read into ours)."""

    sid: str
    direction: str  # "inbound", "outbound-reply", "outbound-api", ...
    status: str
    date_created: datetime


@dataclass(frozen=True)
class ProviderCall:
    """A call log at the provider, without its numbers (`from`, `to` are dropped here)."""

    sid: str
    status: str
    direction: str  # "inbound" for calls to our numbers
    end_time: datetime | None


@dataclass(frozen=True)
class InboundText:
    """An inbound message's text as the provider's log holds it, without the sender (`From`
    is never read into ours: like the edge, the client drops it)."""

    sid: str
    status: str
    body: str
    num_media: int
    date_created: datetime


def recording_from(instance: RecordingInstance) -> ProviderRecording | None:
    """Our view of a listed recording; None for one without audio or with a malformed sid."""
    sid, call_sid, created = instance.sid, instance.call_sid, instance.date_created
    if instance.status != LISTED_STATUS or not has_shape(sid, RECORDING_SID) or not isinstance(created, datetime):
        return None
    return ProviderRecording(sid=str(sid), call_sid=str(call_sid) if has_shape(call_sid, CALL_SID) else None,
                             date_created=created, duration_seconds=max(0, int_or_none(instance.duration) or 0))


def message_from(instance: MessageInstance) -> ProviderMessage | None:
    """Our view of a listed message; None for one with a malformed sid or no creation date."""
    sid, created = instance.sid, instance.date_created
    if not has_shape(sid, MESSAGE_SID) or not isinstance(created, datetime):
        return None
    return ProviderMessage(sid=str(sid), direction=str(instance.direction or ""), status=str(instance.status or ""),
                           date_created=created)


def inbound_text_from(instance: MessageInstance) -> InboundText | None:
    """Our view of an inbound message (None for any other direction, or a malformed record).
    Reads sid, status, body, media count and date: never `from_`."""
    sid, created = instance.sid, instance.date_created
    if instance.direction != "inbound" or not has_shape(sid, MESSAGE_SID) or not isinstance(created, datetime):
        return None
    return InboundText(sid=str(sid), status=str(instance.status or ""),
                       body=str(instance.body or "")[:MAX_BODY_CHARACTERS],
                       num_media=max(0, int_or_none(instance.num_media) or 0), date_created=created)


def call_from(instance: CallInstance) -> ProviderCall | None:
    """Our view of a listed call: sid, status, direction and end only (never to or from)."""
    end_time = instance.end_time if isinstance(instance.end_time, datetime) else None
    if not has_shape(instance.sid, CALL_SID):
        return None
    return ProviderCall(sid=str(instance.sid), status=str(instance.status or ""),
                        direction=str(instance.direction or ""), end_time=end_time)


def has_shape(value: object, shape: re.Pattern[str]) -> bool:
    return isinstance(value, str) and shape.fullmatch(value) is not None


def int_or_none(value: Any) -> int | None:
    """`value` as a whole number, or None where int() refuses it (twilio-python's attributes are untyped)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
