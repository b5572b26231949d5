"""The key re-wrap job (`tipline keys rewrap`): every tip moved to the current keys.

Re-keys each period whose key is sealed under an older master key (the new version is
sealed under the first key in VAULT_KEYS), then moves tips from before period keys onto
their month's period key. Idempotent (a second run finds nothing to move) and resumable
(`ivr.core.rekeying` keeps its SCAN cursor in Redis); safe while tips arrive (each move is
its own WATCH/MULTI).
"""

from __future__ import annotations

import logging

from workers.context import worker_context

log = logging.getLogger(__name__)


def rewrap_keys() -> int:
    moved = worker_context().core.tips.rewrap_all()
    log.info("keys re-wrapped: %d record(s) moved to the current keys", moved)
    return moved
