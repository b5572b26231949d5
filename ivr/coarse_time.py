"""Coarse times (promise 6): telco records show who rang when, so tips never carry minutes."""

from __future__ import annotations

from datetime import datetime, timezone


def current_hour(now: datetime | None = None) -> str:
    """The current UTC hour, e.g. '2026-11-25T07:00Z': precise enough to triage, too coarse to match a call."""
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:00Z")
