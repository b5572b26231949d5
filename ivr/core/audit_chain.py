"""The audit trail's chain format, and the check that finds what was done to it.

Pure functions over what Redis held (`ivr/core/audit.py` reads and writes it): entry
n's MAC is `ChainMac.mac(MAC of entry n-1, signed bytes of entry n)`, entry 1 chaining
from `GENESIS`; the head record carries the last seq and MAC under a MAC of its own.

`check_chain` reasons from what the key proves, not from where things sit in the list:
- a *link* (entry b's MAC checks out over entry a's MAC and b's contents) proves b's
  contents and a's MAC genuine, since nobody without the key can make one;
- an entry whose MAC a genuine link or the head vouches for, but whose contents no longer
  check out against its genuine predecessor, was altered;
- an entry no link and not the head vouches for was made up (or altered beyond that);
- the true seqs of genuine entries then show what is missing, doubled or out of order.

AUDIT_KEY can be rotated (`AuditLog.rotate`): a `key_rotated` entry, MACed under the old
key and naming both keys by fingerprint (`from=.. to=..`), after which entries and the
head are MACed under the new one. `check_chain` takes every key listed and works out,
from the trail itself, which key each seq must be under (`_key_epochs`): the key entry 1
checks out under, switching only at a rotation entry that names that very key as `from`
and checks out under it against its predecessor. So a key leaked before its rotation
cannot make entries after it, and a rotation entry made with the new key alone (or naming
a key that was not the one in force) switches nothing and is reported like any made-up
entry. Checking the entries from before a rotation needs the old key listed too.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.core.vault import ChainMac

# Entry 1's "previous MAC", and the label the head record's MAC is made under.
GENESIS = "0" * 64
HEAD_LABEL = "head"
# Entries claiming one seq tried as a predecessor: copies planted by the thousand must not
# make the check quadratic (an entry they hide is reported all the same, if less exactly).
CANDIDATES_PER_SEQ = 8
_FIELDS = ("seq", "hour", "who", "action", "tip", "detail", "mac")
# The entry that moves the chain from one AUDIT_KEY to the next (`AuditLog.rotate`).
KEY_ROTATED = "key_rotated"


@dataclass(frozen=True)
class AuditEntry:
    """One thing a handler or an operator did, as the trail holds it."""

    seq: int
    hour: str
    who: str
    action: str
    tip: str | None
    detail: str
    mac: str

    def signed_bytes(self) -> bytes:
        """What the MAC covers: every field but the MAC, in a fixed order and encoding."""
        return _canonical([self.seq, self.hour, self.who, self.action, self.tip, self.detail])

    def to_json(self) -> str:
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> AuditEntry:
        """Parse a stored entry; ValueError when it is not one (written by hand, or damaged)."""
        try:
            record = json.loads(raw)
        except RecursionError:  # absurdly nested JSON, planted to stop the check
            raise ValueError("not an audit entry") from None
        if not isinstance(record, dict) or set(record) != set(_FIELDS):
            raise ValueError("not an audit entry")
        seq, tip = record["seq"], record["tip"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or not (tip is None or isinstance(tip, str)):
            raise ValueError("not an audit entry")
        if not all(isinstance(record[name], str) for name in ("hour", "who", "action", "detail", "mac")):
            raise ValueError("not an audit entry")
        return cls(**record)


@dataclass(frozen=True)
class AuditReport:
    """What `check_chain` found: how many entries the list held, each problem in words, and the
    (seq, MAC) the head vouched for at that moment (None when it was missing or forged)."""

    entries: int
    problems: list[str]
    head: tuple[int, str] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _canonical(values: list[object]) -> bytes:
    return json.dumps(values, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def head_record(chain: ChainMac, seq: int, mac: str) -> str:
    """The head record vouching for entry `seq` (MAC `mac`) as the trail's last."""
    return json.dumps({"seq": seq, "mac": mac, "check": chain.mac(HEAD_LABEL, _canonical([seq, mac]))},
                      separators=(",", ":"))


def read_head(chain: ChainMac, raw: bytes | str) -> tuple[int, str] | None:
    """(seq, MAC) from a head record, or None when it is damaged or was not made with the key."""
    try:
        record = json.loads(raw)
        seq, mac, check = record["seq"], record["mac"], record["check"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if not (isinstance(seq, int) and not isinstance(seq, bool) and isinstance(mac, str) and isinstance(check, str)):
        return None
    return (seq, mac) if chain.verify(HEAD_LABEL, _canonical([seq, mac]), check) else None


def _entries(count: int) -> str:
    return f"{count:,} entr{'y' if count == 1 else 'ies'}"


def _span(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first}-{last} are"


def rotation_detail(old: ChainMac, new: ChainMac) -> str:
    """A `key_rotated` entry's detail: both keys by fingerprint, never a key."""
    return f"from={old.fingerprint} to={new.fingerprint}"


def _rotation_keys(entry: AuditEntry) -> tuple[str, str] | None:
    if entry.action != KEY_ROTATED:
        return None
    fields = dict(part.partition("=")[::2] for part in entry.detail.split())
    return (fields["from"], fields["to"]) if {"from", "to"} <= set(fields) else None


def _key_epochs(chains: Sequence[ChainMac], entries: list[AuditEntry],
                raw_head: bytes | None) -> tuple[Callable[[int], ChainMac], list[str]]:
    """Which key each seq must be MACed under, from the genuine rotation entries; and, in words,
    any rotation from a key AUDIT_KEY does not list (the entries before it cannot be checked)."""
    by_fingerprint = {chain.fingerprint: chain for chain in chains}
    macs_by_seq: dict[int, list[str]] = {}
    for entry in entries:
        macs_by_seq.setdefault(entry.seq, []).append(entry.mac)
    start = next((chain for entry in entries if entry.seq == 1 for chain in chains
                  if chain.verify(GENESIS, entry.signed_bytes(), entry.mac)), None)
    current = start
    starts: list[int] = []  # the seqs of genuine rotation entries, ascending
    keys_after: list[ChainMac] = []
    unlisted: list[str] = []
    for entry in sorted(entries, key=lambda e: e.seq):
        named = _rotation_keys(entry)
        if named is None or (starts and entry.seq <= starts[-1]):
            continue
        old, new = by_fingerprint.get(named[0]), by_fingerprint.get(named[1])
        if old is None:
            if new is not None and current is None:
                unlisted.append(f"entries up to {entry.seq} were chained under a retired AUDIT_KEY (fingerprint "
                                f"{named[0]}) that AUDIT_KEY does not list: list it after the current key to "
                                "check them")
            continue
        if new is None or (current is not None and old is not current):
            continue
        befores = [GENESIS] if entry.seq == 1 else macs_by_seq.get(entry.seq - 1, [])[:CANDIDATES_PER_SEQ]
        if not any(old.verify(before, entry.signed_bytes(), entry.mac) for before in befores):
            continue
        start = start or old
        starts.append(entry.seq)
        keys_after.append(new)
        current = new
    if start is None:  # entry 1 is gone and no rotation tells: the key the head is under, else the first
        start = next((chain for chain in chains if raw_head is not None and read_head(chain, raw_head)), chains[0])

    def key_for(seq: int) -> ChainMac:
        epoch = bisect_right(starts, seq - 1)  # rotations at seqs below this one
        return keys_after[epoch - 1] if epoch else start

    return key_for, unlisted


def check_chain(chains: ChainMac | Sequence[ChainMac], items: list[bytes], raw_head: bytes | None) -> AuditReport:
    """Every problem with the trail `items` (oldest first) and its head, in words, naming seqs.

    `chains`: every AUDIT_KEY listed, the current one first (see the module's docstring).
    """
    listed = [chains] if isinstance(chains, ChainMac) else list(chains)
    problems: list[str] = []
    positions: list[int] = []
    entries: list[AuditEntry] = []
    for position, raw in enumerate(items, 1):
        try:
            entries.append(AuditEntry.from_json(raw))
            positions.append(position)
        except ValueError:
            problems.append(f"position {position} holds something that is not an audit entry: "
                            "it was written or overwritten by hand, not by Tipline")
    key_for, unlisted = _key_epochs(listed, entries, raw_head)
    problems.extend(unlisted)
    if raw_head is not None:
        head = read_head(key_for(2**62), raw_head)  # the head is under the last rotation's key
    else:
        head = None if items else (0, GENESIS)  # a trail nothing was written to yet

    # Links, tried against each entry's likely predecessors: the entry before it in the
    # list, and the (first few) entries claiming the seq before its own.
    by_claimed_seq: dict[int, list[int]] = {}
    for index, entry in enumerate(entries):
        by_claimed_seq.setdefault(entry.seq, []).append(index)
    proven = [False] * len(entries)  # its contents are genuine: a link leads to it
    successor: dict[int, int] = {}  # a link leads from it: its MAC is genuine
    for index, entry in enumerate(entries):
        chain = key_for(entry.seq)
        proven[index] = entry.seq == 1 and chain.verify(GENESIS, entry.signed_bytes(), entry.mac)
        candidates = set(by_claimed_seq.get(entry.seq - 1, ())[:CANDIDATES_PER_SEQ]) | ({index - 1} if index else set())
        for before in sorted(candidates):
            if chain.verify(entries[before].mac, entry.signed_bytes(), entry.mac):
                proven[index] = True
                successor.setdefault(before, index)

    # The true seq of every entry whose MAC is genuine: its own when its contents are
    # proven, else one less than its successor's, else the head's when the head names it.
    true_seq: list[int | None] = [None] * len(entries)
    for index, entry in enumerate(entries):
        if proven[index]:
            true_seq[index] = entry.seq
        elif index in successor:
            true_seq[index] = entries[successor[index]].seq - 1
        elif head is not None and entry.mac == head[1]:
            true_seq[index] = head[0]
    by_true_seq: dict[int, list[int]] = {}
    for index, seq in enumerate(true_seq):
        if seq is not None:
            by_true_seq.setdefault(seq, []).append(index)

    if entries and not by_true_seq and head is None:
        problems.append(f"nothing in the trail checks out under this AUDIT_KEY ({_entries(len(items))}, "
                        f"head {'present' if raw_head is not None else 'missing'}): the key is wrong, "
                        "or the whole trail was replaced")
        return AuditReport(entries=len(items), problems=problems, head=head)

    if raw_head is None and items:
        problems.append("the head record is missing (deleted): nothing vouches for the end of the trail, "
                        "so entries removed from the end could not be noticed")
    elif raw_head is not None and head is None:
        problems.append("the head record was altered or forged: its MAC does not check out")

    genuine_seqs = set(by_true_seq)
    for index, entry in enumerate(entries):
        seq = true_seq[index]
        if seq is None and _stranded(entry.seq, head, genuine_seqs):
            problems.append(f"position {positions[index]} (claiming to be entry {entry.seq}) cannot be checked: "
                            "the entries on both sides of it are gone, so it may be genuine or made up")
        elif seq is None:
            problems.append(f"position {positions[index]} (claiming to be entry {entry.seq}) was not written by "
                            "Tipline: its MAC does not check out, so it was inserted or altered by someone "
                            "without the key")
        elif not proven[index]:
            befores = [entries[i].mac for i in by_true_seq.get(seq - 1, ())[:CANDIDATES_PER_SEQ]]
            befores += [GENESIS] if seq == 1 else []
            # Its predecessor is here (under another claimed seq, maybe), yet no link leads
            # to it: its contents changed. With no predecessor here, the gap is the report.
            if befores and not any(key_for(entry.seq).verify(mac, entry.signed_bytes(), entry.mac) for mac in befores):
                claim = f" (it now claims to be entry {entry.seq})" if entry.seq != seq else ""
                problems.append(f"entry {seq} was altered after it was written{claim}: "
                                "its contents no longer match its MAC")

    problems.extend(_order_problems(entries, positions, true_seq))
    last_genuine = max(genuine_seqs, default=0)
    expected_last = head[0] if head else last_genuine
    problems.extend(_missing_problems(genuine_seqs, last_genuine, expected_last, head is not None, not items))
    if head and last_genuine > head[0]:
        problems.append(f"the head records {_entries(head[0])} but the trail holds genuine entries up to "
                        f"entry {last_genuine}: the head was replaced with an older copy")
    for index, seq in enumerate(true_seq):
        if head and seq == head[0] and entries[index].mac != head[1]:
            problems.append(f"the head does not match entry {seq}: the trail was forked and rolled back")
    return AuditReport(entries=len(items), problems=problems, head=head)


def _stranded(claimed_seq: int, head: tuple[int, str] | None, genuine: set[int]) -> bool:
    """Whether an entry nothing vouches for could be a genuine one whose neighbours were both deleted."""
    inside = 1 < claimed_seq and (head is None or claimed_seq < head[0])
    return inside and not ({claimed_seq - 1, claimed_seq + 1} & genuine)


def _order_problems(entries: list[AuditEntry], positions: list[int], true_seq: list[int | None]) -> list[str]:
    """Copies of an entry, and entries stored out of order (those off the longest in-order run)."""
    problems: list[str] = []
    first_at: dict[int, int] = {}
    for index, seq in enumerate(true_seq):
        if seq is None:
            continue
        if seq in first_at:
            problems.append(f"entry {seq} appears more than once (positions {positions[first_at[seq]]} and "
                            f"{positions[index]}): a copy was inserted")
        else:
            first_at[seq] = index
    ordered = sorted(first_at.values())
    seqs = [true_seq[index] or 0 for index in ordered]
    in_order = set(_longest_increasing(seqs))
    for rank, index in enumerate(ordered):
        if rank not in in_order:
            after = f"after entry {seqs[rank - 1]}" if rank else f"before entry {seqs[1]}"
            problems.append(f"entry {seqs[rank]} is out of order: stored at position {positions[index]}, {after} "
                            "(the trail was reordered)")
    return problems


def _longest_increasing(values: list[int]) -> list[int]:
    """Indexes of one longest strictly increasing run (not necessarily contiguous) in `values`."""
    tails: list[int] = []  # tails[k]: the smallest last value of an increasing run of length k + 1
    tail_index: list[int] = []
    previous: list[int] = [-1] * len(values)
    for index, value in enumerate(values):
        k = bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_index.append(index)
        else:
            tails[k], tail_index[k] = value, index
        previous[index] = tail_index[k - 1] if k else -1
    run, index = [], tail_index[-1] if tail_index else -1
    while index != -1:
        run.append(index)
        index = previous[index]
    return run[::-1]


def _missing_problems(genuine: set[int], last_genuine: int, expected_last: int, head_vouches: bool,
                      empty: bool) -> list[str]:
    """Seqs from 1 to the last one expected that no genuine entry holds, as ranges in words."""
    if expected_last and empty:
        return [f"the trail is empty but its head records {_entries(expected_last)}: the list was deleted"]
    if expected_last and not genuine:
        return [f"the trail holds no genuine entry but its head records {_entries(expected_last)}: "
                "the list was replaced"]
    problems: list[str] = []
    missing = [seq for seq in range(1, expected_last + 1) if seq not in genuine]
    ranges: list[list[int]] = []
    for seq in missing:
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    for first, last in ranges:
        if first > last_genuine and head_vouches:
            problems.append(f"{_span(first, last)} missing from the end: the head records "
                            f"{_entries(expected_last)} but the trail stops at entry {last_genuine}")
        elif first == 1:
            problems.append(f"{_span(first, last)} missing from the start of the trail (deleted)")
        else:
            problems.append(f"{_span(first, last)} missing (deleted from the middle, between entries "
                            f"{first - 1} and {last + 1}; entry {last + 1} itself can no longer be checked)")
    return problems
