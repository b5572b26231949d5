"""Jobs for recordings.

For now a job only notes that the recording is waiting to be transcribed: the reference,
language, category, length and the coarse hour it arrived, with the sealed handle the
transcribing worker will need (provider sids only ever inside it, encrypted). Running it
twice writes the same record.
"""

from __future__ import annotations

import logging

from ivr import keys
from ivr.coarse_time import current_hour
from workers.context import worker_services

log = logging.getLogger(__name__)


def process_recording(sealed_handle: str) -> None:
    services = worker_services()
    handle = services.recordings.open(sealed_handle)
    recording_key = services.recordings.recording_key(handle.recording_sid)
    pending = keys.recording_pending(recording_key)
    services.redis.hset(pending, mapping={
        "reference": handle.reference or "",
        "language": handle.language or "",
        "category": handle.category or "",
        "duration_seconds": handle.duration_seconds,
        "received_hour": current_hour(),
        "handle": sealed_handle,
        "status": "awaiting transcript",
    })
    log.info("recording noted as awaiting transcript (%s s)", handle.duration_seconds)
