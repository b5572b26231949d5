"""The clock's daily retention run (`ivr.core.retention`): once a day, whatever the number of clocks.

Every clock tries each tick; the first to take the day's key (`SET NX EX`) runs it, and
the others, and later ticks, find it taken. A run that fails gives the key back, so a
later tick (on any machine) tries again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ivr.core import Core, keys
from ivr.core.audit import AuditTrailBroken
from ivr.core.retention import RetentionCounts, retention_of

log = logging.getLogger(__name__)
WHO = "clock"
# The day's key outlives the day, so a clock whose clock lags still finds it taken.
DAY_KEY_SECONDS = 2 * 24 * 3600


def run_daily_retention(core: Core, now: datetime | None = None) -> RetentionCounts | None:
    """Run today's retention if no clock has yet; the counts, or None when another clock has it."""
    now = now or datetime.now(UTC)
    day_key = keys.retention_day(now.date().isoformat())
    if not core.redis.set(day_key, WHO, nx=True, ex=DAY_KEY_SECONDS):
        return None
    try:
        counts = retention_of(core).run(now, WHO)
    except AuditTrailBroken as error:  # an operator's to resolve; the line's other work goes on
        core.redis.delete(day_key)
        log.error("retention did not run: %s", error)
        return None
    except BaseException:
        core.redis.delete(day_key)
        raise
    log.info("retention: %s", counts.detail())
    return counts
