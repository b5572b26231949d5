"""The console's audit trail: every view and decision, in a chain an insider cannot quietly edit.

Each entry (seq, coarse hour, who, action, tip, detail) is MACed with HMAC-SHA256 over the
previous entry's MAC and its own contents (`ivr/core/audit_chain.py`), under a key
derived from AUDIT_KEY. The key lives in the environment of the web app and the operator's
CLI, never in Redis. The entries are a Redis list; a head record holds the last seq and
MAC under a MAC of its own, so removing entries from the end shows too. `verify` walks the
whole chain and names, by seq, entries altered, deleted, reordered, copied or made up, a
forged or missing head, and a list deleted while its head remains.

Why a MAC and not a plain hash: anyone who can write Redis could recompute a plain hash
chain after editing it. Without AUDIT_KEY nobody can make a link that checks out.

What it cannot catch, said plainly: someone who can write Redis can put back an *older*
copy of the list and its head together (a rollback, or deleting both: a trail back at
zero). Every link in such a copy is genuine, so the chain alone cannot tell. Only an
anchor outside Redis can: `head()` gives (seq, MAC), and the operator's CLI prints it
(`verify_command`); kept now and then in the operator's own log, a later head that is
behind or differs at that seq exposes the rollback. In the same way, cutting the last
entries *and* deleting the head shows only as a missing head, not as which entries went.
Whoever holds AUDIT_KEY (the web app's host) can of course rewrite the trail; the key is
what has to be guarded.

Entries name a tip by a keyed digest of its reference (`tip_digest`, under AUDIT_KEY),
never the reference itself: the trail outlives tips (retention, `ivr/core/retention.py`),
and once a tip is deleted nothing in the trail may still read as its reference. Whoever
looks a reference up (the tip page's history, the audit page's filter) computes the same
digest. Entries written before that named tips in clear; `ivr/core/audit_digests.py`
rewrites them once, into a new chain.

AUDIT_KEY is a list (`new,old`) so the key can be rotated without losing the check of what
came before (`rotate`): the trail records the change in an entry MACed under the old key,
and chains under the new key from there; `verify` checks across it with both keys listed
(`ivr/core/audit_chain.py` says how it keeps a leaked old key from writing after it).
Appends go on under the key the head is under, so deploying `new,old` before running
`tipline audit rotate` changes nothing until it runs.

Entries hold who did what to which tip, never what a tip says: no transcript or summary
text, only short details such as "partner=Metropolitan Police" or "status=possibly
malicious", and only the coarse hour (promise 6).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import replace

import redis

from ivr.core import keys
from ivr.core.audit_chain import (
    GENESIS,
    KEY_ROTATED,
    AuditEntry,
    AuditReport,
    check_chain,
    head_record,
    read_head,
    rotation_detail,
)
from ivr.core.coarse_time import current_hour
from ivr.core.redis_values import as_bytes
from ivr.core.transactions import atomically
from ivr.core.vault import ChainMac, KeyedDigest, Secrets, key_list

__all__ = ["ACTIONS", "AuditEntry", "AuditLog", "AuditReport", "AuditTrailBroken"]

# What can happen in the console or at the operator's CLI: a closed list.
ACTIONS = (
    "sign_in", "sign_in_failed", "sign_in_locked", "sign_out",
    "view", "claim", "release", "renew", "listen",
    "edit_summary", "tag", "triage", "note", "link_duplicate", "pass_on", "close", "reassign",
    "ask", "withdraw", "read_answer",
    "view_audit", "view_hotspots", "view_deadlines", "view_health", "export",
    "account_created", "account_enrolled", "role_changed", "account_disabled",
    "trail_resealed", "trail_rewritten", "retention_run", KEY_ROTATED,
)
WHO_MAX = 64
DETAIL_MAX = 200
TIP_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,40}")
READ_CHUNK = 500


class AuditTrailBroken(Exception):
    """The head record is missing or forged: nothing is appended until an operator has run the check."""


def clean_text(value: str, name: str, limit: int, required: bool) -> str:
    """`value` without control or format characters (bidi overrides too), trimmed, checked for length."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, not {type(value).__name__}")
    cleaned = " ".join("".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in value).split())
    if required and not cleaned:
        raise ValueError(f"{name} must not be empty")
    if len(cleaned) > limit:
        raise ValueError(f"{name} must be at most {limit} characters (got {len(cleaned)}); the audit trail keeps "
                         "short facts such as 'partner=Metropolitan Police', never a tip's text")
    return cleaned


class AuditLog:
    """Append to, read and check the audit trail in Redis (the MAC key stays in this process)."""

    def __init__(self, connection: redis.Redis, audit_keys: Secrets) -> None:
        self._redis = connection
        self._chains = [ChainMac(key) for key in key_list(audit_keys)]
        # The name a tip has in the trail: its reference's keyed digest (see the module's
        # docstring), under the first AUDIT_KEY; a lookup also tries the other listed keys'.
        self._tip_digests = [KeyedDigest(key, "audit.tip") for key in key_list(audit_keys)]
        self.tip_digest = self._tip_digests[0]

    @property
    def chains(self) -> list[ChainMac]:
        """Every listed AUDIT_KEY's chain, the current first (what `verify` checks across)."""
        return self._chains

    @property
    def chain(self) -> ChainMac:
        """The current key's chain (a rewrite of the whole trail, `ivr.core.audit_digests`, starts under it)."""
        return self._chains[0]

    def append(self, who: str, action: str, tip: str | None = None, detail: str = "") -> AuditEntry:
        """Record that `who` did `action` (to the tip whose reference is `tip`, stored as its
        digest), chained onto the last entry; safe across processes.

        WATCH the head, read it with the trail's length, compute the next link here (the key
        never goes to Redis), then push the entry and move the head in one MULTI; another
        writer in between means retry.
        """
        if action not in ACTIONS or action == KEY_ROTATED:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)} (but {KEY_ROTATED}: `rotate`); "
                             f"not {action!r}")
        who = clean_text(who, "who", WHO_MAX, required=True)
        detail = clean_text(detail, "detail", DETAIL_MAX, required=False)
        if tip is not None and not (isinstance(tip, str) and TIP_PATTERN.fullmatch(tip)):
            raise ValueError(f"tip must be a tip's reference (letters, digits, - or _, at most 40), not {tip!r}")
        named = self.tip_digest(tip) if tip is not None else None

        entry = self._append(who, action, named, detail, rotating=False)
        if entry is None:  # only a rotation can append nothing
            raise AssertionError("an append appends")
        return entry

    def rotate(self, operator: str) -> AuditEntry | None:
        """With AUDIT_KEY=new,old: record the change to the first key, MACed under the key the
        trail is under now, and chain under the first key from here. None when the trail is
        under the first key already (or empty: it will start under it)."""
        return self._append(clean_text(operator, "who", WHO_MAX, required=True), KEY_ROTATED, None, "",
                            rotating=True)

    def _append(self, who: str, action: str, tip: str | None, detail: str, rotating: bool) -> AuditEntry | None:
        def append(pipe: redis.client.Pipeline) -> AuditEntry | None:
            last_seq, last_mac, chain = self._current(*self._snapshot())
            new_chain = self._chains[0] if rotating else chain
            if rotating and (chain is new_chain or last_seq == 0):
                pipe.multi()
                return None
            unsigned = AuditEntry(seq=last_seq + 1, hour=current_hour(), who=who, action=action, tip=tip,
                                  detail=rotation_detail(chain, new_chain) if rotating else detail, mac="")
            entry = replace(unsigned, mac=chain.mac(last_mac, unsigned.signed_bytes()))
            pipe.multi()
            pipe.rpush(keys.AUDIT_TRAIL, entry.to_json())
            pipe.set(keys.AUDIT_HEAD, head_record(new_chain, entry.seq, entry.mac))
            return entry

        return atomically(self._redis, [keys.AUDIT_HEAD], append)

    def reseal(self, operator: str) -> int:
        """After a failed check: set the damaged trail aside, untouched, and start a new one.

        The console refuses to work on a damaged trail (fail closed); this is how an
        operator brings it back once they have recorded what `verify` found. The old list
        and head are renamed to `keys.audit_archive(n)` (evidence, never deleted) and the
        new trail's first entry says so. Returns n.
        """
        number = int(self._redis.incr(keys.AUDIT_ARCHIVES))
        with self._redis.pipeline() as pipe:
            for key, archived in ((keys.AUDIT_TRAIL, keys.audit_archive(number)),
                                  (keys.AUDIT_HEAD, keys.audit_archive(number) + ":head")):
                if self._redis.exists(key):
                    pipe.rename(key, archived)
            pipe.execute()
        self.append(operator, "trail_resealed", detail=f"the previous trail was kept as archive {number}")
        return number

    def head(self) -> tuple[int, str]:
        """(last seq, its MAC), checked against the head's own MAC: (0, GENESIS) for an empty trail.

        Print it into a log outside Redis now and then: that record is what exposes a
        rollback (see the module's docstring).
        """
        seq, mac, _ = self._current(*self._snapshot())
        return seq, mac

    def _snapshot(self) -> tuple[bytes | None, int]:
        """The head record and the trail's length from one moment (a MULTI of its own)."""
        with self._redis.pipeline() as pipe:
            pipe.get(keys.AUDIT_HEAD)
            pipe.llen(keys.AUDIT_TRAIL)
            raw_head, length = pipe.execute()
        return raw_head, length

    def _current(self, raw_head: bytes | None, length: int) -> tuple[int, str, ChainMac]:
        """The head's (seq, MAC) and the key it is under (a new trail starts under the first key)."""
        if raw_head is None:
            if length:
                raise AuditTrailBroken(f"the audit trail holds {length:,} entries but its head record is missing; "
                                       "an operator must run the audit trail check before anything more is "
                                       "recorded")
            return 0, GENESIS, self._chains[0]
        for chain in self._chains:
            head = read_head(chain, raw_head)
            if head is not None:
                return *head, chain
        raise AuditTrailBroken("the audit trail's head record does not check out under any AUDIT_KEY listed "
                               "(forged, or the key changed: list the old key after the new one); an operator "
                               "must run the audit trail check before anything more is recorded")

    def entries(self, start: int = 0, count: int = 50, newest_first: bool = True, tip: str | None = None,
                who: str | None = None) -> list[AuditEntry]:
        """A page of the trail for the supervisor: `count` entries after skipping `start`, optionally
        only those for one tip (its reference) or by one person (filtering scans the trail)."""
        if start < 0 or count < 0:
            raise ValueError(f"start and count must not be negative (got start={start}, count={count})")
        if count == 0:
            return []
        if tip is None and who is None:
            if newest_first:
                raw = self._redis.lrange(keys.AUDIT_TRAIL, -(start + count), -(start + 1))[::-1]
            else:
                raw = self._redis.lrange(keys.AUDIT_TRAIL, start, start + count - 1)
            return list(_readable(raw))
        page: list[AuditEntry] = []
        skipped = 0
        names = self._names_of(tip) if tip is not None else ()
        for entry in self._scan(newest_first):
            if (tip is None or entry.tip in names) and (who is None or entry.who == who):
                if skipped < start:
                    skipped += 1
                    continue
                page.append(entry)
                if len(page) == count:
                    break
        return page

    def for_tip(self, tip: str) -> list[AuditEntry]:
        """Everything done to one tip (its reference), oldest first."""
        names = self._names_of(tip)
        return [entry for entry in self._scan(newest_first=False) if entry.tip in names]

    def _names_of(self, reference: str) -> tuple[str, ...]:
        """What entries call a tip: its digest (under any listed AUDIT_KEY), or its reference
        in a trail not yet rewritten."""
        return (*(digest(reference) for digest in self._tip_digests), reference)

    def _scan(self, newest_first: bool) -> Iterator[AuditEntry]:
        """Every readable entry, in chunks; entries appended meanwhile are not included."""
        length = self._redis.llen(keys.AUDIT_TRAIL)  # the list only grows at its end: indexes below stay put
        starts = range(0, length, READ_CHUNK)
        for first in reversed(starts) if newest_first else starts:
            chunk = self._redis.lrange(keys.AUDIT_TRAIL, first, min(first + READ_CHUNK, length) - 1)
            yield from _readable(chunk[::-1] if newest_first else chunk)

    def verify(self) -> AuditReport:
        """Walk the whole chain and the head, reporting every problem in words that name seqs."""
        raw_head, length = self._snapshot()  # appends made meanwhile land after `length`
        items: list[bytes] = []
        for first in range(0, length, READ_CHUNK):
            chunk = self._redis.lrange(keys.AUDIT_TRAIL, first, min(first + READ_CHUNK, length) - 1)
            items.extend(map(as_bytes, chunk))
        return check_chain(self._chains, items, raw_head)


def _readable(raw: list[bytes | str]) -> Iterator[AuditEntry]:
    """The entries among `raw` that parse; anything else is `verify`'s to report, not a page's."""
    for item in raw:
        try:
            yield AuditEntry.from_json(item)
        except ValueError:
            continue
