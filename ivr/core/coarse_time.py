"""Coarse times (promise 6): telco records show who rang when, so tips never carry minutes."""

from __future__ import annotations

from datetime import UTC, datetime


def hour_start(now: datetime | None = None) -> datetime:
    """The start of the current UTC hour: precise enough to triage, too coarse to match a call."""
    return (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def current_hour(now: datetime | None = None) -> str:
    """The current UTC hour as text, e.g. '2026-11-25T07:00Z'."""
    return hour_start(now).strftime("%Y-%m-%dT%H:00Z")


def hour_milliseconds(now: datetime | None = None) -> int:
    """The current hour's first millisecond since the epoch (a queue entry's id)."""
    return int(hour_start(now).timestamp()) * 1000
