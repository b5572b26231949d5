"""The start check: every master key something still uses must be in VAULT_KEYS.

A master key missing from VAULT_KEYS leaves every tip under it unreadable, silently, until
a handler opens one. So every process refuses to start instead, naming the key: the web
app, worker, clock and CLI check the period key files' headers (no Redis needed); the
worker, clock and CLI also check the tips still in the old format (a count kept in Redis,
`ivr.core.rekeying.count_old_format_tips`: one scan only while it was never counted).
"""

from __future__ import annotations

import redis

from ivr.core.period_keys import PeriodKeys
from ivr.core.rekeying import count_old_format_tips
from ivr.core.vault import KeyRing, VaultError


class MissingMasterKey(VaultError):
    """A master key still in use is not in VAULT_KEYS; the message names it and says what to do."""


def check_master_keys(periods: PeriodKeys, ring: KeyRing, connection: redis.Redis | None = None) -> None:
    """Raise MissingMasterKey naming the first used master key VAULT_KEYS lacks."""
    for master_id, labels in sorted(periods.sealed_under().items()):
        if master_id not in ring.key_ids:
            raise MissingMasterKey(
                f"VAULT_KEYS lacks master key {master_id!r}, which seals {len(labels)} period key(s) "
                f"({', '.join(labels[:5])}{', ...' if len(labels) > 5 else ''}) in {periods.directory}. "
                f"Add {master_id!r} back to VAULT_KEYS (after the current key) and start again; once "
                "`tipline keys rewrap` has run, `tipline keys list` shows it unused and it can go.")
    if connection is None:
        return
    for master_id, count in sorted(count_old_format_tips(connection).items()):
        if master_id not in ring.key_ids:
            raise MissingMasterKey(
                f"VAULT_KEYS lacks master key {master_id!r}, under which {count} tip(s) from before period keys "
                f"are wrapped. Add {master_id!r} back to VAULT_KEYS (after the current key), start again and run "
                "`tipline keys rewrap`; once `tipline keys list` shows it unused, it can go.")
