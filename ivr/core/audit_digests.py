"""One-time rewrite of the audit trail so that no entry names a tip by its reference.

Entries written before `AuditLog.tip_digest` hold references in clear; once retention
deletes a tip, its reference must not stay readable anywhere, the trail included. Editing
those entries in place would break their MACs (and rightly: that is what the chain is
for), so the trail is rewritten into a new chain:

- entry 1 of the new chain ("trail_rewritten") records the old head's seq and MAC, so
  whoever kept an outside anchor of the old head (`tipline audit verify` prints it) can
  tie the two together;
- every old entry follows in order, with its hour, who, action and detail unchanged, its
  tip replaced by the tip's digest, renumbered (old seq n is new seq n + 1) and MACed
  afresh under AUDIT_KEY;
- the old list is replaced in the same MULTI as the new head is set: destroyed, not kept
  as an archive, since an archive would keep the references.

Refused (AuditTrailBroken) when the old trail does not verify: a damaged trail is
evidence, for `tipline audit reseal`, not something to launder into a fresh chain.
Idempotent: a marker (`keys.AUDIT_TIPS_DIGESTED`) says it is done, and a trail that names
no tip in clear is only marked. Concurrent appends: the rewrite WATCHes the head, and an
append in between makes it start again.
"""

from __future__ import annotations

import re
from dataclasses import replace

import redis

from ivr.core import keys
from ivr.core.audit import READ_CHUNK, AuditEntry, AuditLog, AuditTrailBroken
from ivr.core.audit_chain import GENESIS, check_chain, head_record
from ivr.core.coarse_time import current_hour
from ivr.core.redis_values import as_bytes
from ivr.core.transactions import atomically

# A tip's name as `AuditLog.tip_digest` makes it: anything else in an entry's tip is a reference.
DIGEST = re.compile(r"[0-9a-f]{32}")
_NEW_TRAIL = f"{keys.AUDIT_TRAIL}:rewriting"


def digest_clear_references(audit: AuditLog, connection: redis.Redis, who: str) -> int:
    """Rewrite the trail once so every entry names its tip by digest; returns how many
    entries named a tip in clear (0: nothing to do, or done before)."""
    if connection.exists(keys.AUDIT_TIPS_DIGESTED):
        return 0

    def rewrite(pipe: redis.client.Pipeline) -> int:
        raw_head, length = pipe.get(keys.AUDIT_HEAD), pipe.llen(keys.AUDIT_TRAIL)
        items = [as_bytes(item) for first in range(0, length, READ_CHUNK)
                 for item in pipe.lrange(keys.AUDIT_TRAIL, first, min(first + READ_CHUNK, length) - 1)]
        entries = [AuditEntry.from_json(item) for item in items]
        clear = sum(1 for entry in entries if entry.tip is not None and not DIGEST.fullmatch(entry.tip))
        if not clear:
            pipe.multi()
            pipe.set(keys.AUDIT_TIPS_DIGESTED, current_hour())
            return 0
        report = check_chain(audit.chains, items, as_bytes(raw_head) if raw_head is not None else None)
        if not report.ok or report.head is None:
            raise AuditTrailBroken("the audit trail does not verify, so its references cannot be rewritten into a "
                                   "new chain: run `tipline audit verify`, record what it finds, then `tipline audit "
                                   "reseal --confirm`, and run this again")
        old_seq, old_mac = report.head
        first = AuditEntry(seq=1, hour=current_hour(), who=who, action="trail_rewritten", tip=None,
                           detail=f"previous trail ended at entry {old_seq} mac {old_mac}", mac="")
        rewritten, previous = [], GENESIS
        for entry in [first, *(replace(e, seq=e.seq + 1, tip=_named(audit, e.tip)) for e in entries)]:
            entry = replace(entry, mac=audit.chain.mac(previous, entry.signed_bytes()))
            rewritten.append(entry.to_json())
            previous = entry.mac
        pipe.multi()
        pipe.delete(_NEW_TRAIL)
        for start in range(0, len(rewritten), READ_CHUNK):
            pipe.rpush(_NEW_TRAIL, *rewritten[start:start + READ_CHUNK])
        pipe.rename(_NEW_TRAIL, keys.AUDIT_TRAIL)
        pipe.set(keys.AUDIT_HEAD, head_record(audit.chain, len(rewritten), previous))
        pipe.set(keys.AUDIT_TIPS_DIGESTED, current_hour())
        return clear

    try:
        return atomically(connection, [keys.AUDIT_HEAD, keys.AUDIT_TRAIL], rewrite)
    except ValueError:
        raise AuditTrailBroken("the audit trail holds something that is not an entry; run `tipline audit verify` "
                               "and `tipline audit reseal --confirm` first") from None


def _named(audit: AuditLog, tip: str | None) -> str | None:
    return tip if tip is None or DIGEST.fullmatch(tip) else audit.tip_digest(tip)
