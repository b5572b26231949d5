"""Backups: the hotline's Redis data as a folder that `restore` loads into an empty Redis.

A backup is a folder (mode 0700) of two files (mode 0600): `data.jsonl`, one line per key
(name, type, TTL in ms, the `DUMP` payload in base64), and `manifest.json` (format,
the hour it was made, Redis's version, key counts per kind, the SHA-256 of data.jsonl,
what was left out and why), written last: a folder without a manifest is no backup.
DUMP/RESTORE carry a stream whole, its consumer group and pending entries included, so
the handlers' queue and its leases come back as they were.

Consistency, without pausing the hotline: the key names are listed (SCAN), then each key
is DUMPed; a second pass DUMPs them all again and compares. Each key then held the same
value over an interval that contains the moment between the two passes, so the file is
the data as it stood at that moment (bar a key changed and changed back). When a key
changed, appeared or went, it starts again, up to `PASSES` times, then gives up, saying so.

What is left out (`LEFT_OUT`): everything named by an SMS session key (a daily keyed digest
of the texter's number) or by a texted message's keyed digest: live minutes, and a digest
of a number has no place on a shelf. Sign-ins (a login id is a bearer credential), RQ's
worker heartbeats and our workers' pulses. RQ's queued jobs stay in (their arguments are
sealed): nothing queued is lost.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from ivr.core import keys
from ivr.core.coarse_time import current_hour
from ivr.core.dump_payloads import payload_problem
from ivr.core.redis_values import as_text

FORMAT = "tipline-backup"
FORMAT_VERSION = 1
DATA_FILE = "data.jsonl"
MANIFEST_FILE = "manifest.json"
BATCH = 500  # keys per pipeline
PROGRESS_EVERY = 10_000  # keys between progress lines
PASSES = 5  # copies tried before giving up on a Redis that keeps changing

_SESSION = "named by an SMS session key (a keyed digest of the texter's number); lives minutes"
_MESSAGE = "named by a texted message's keyed digest; lives minutes"

# Key prefixes a backup leaves out, and why. Every key name in ivr/core/keys.py built from a
# session key is here (tests/test_backups.py checks it).
LEFT_OUT: dict[str, str] = {
    keys.sms_session(""): "SMS conversations in progress: " + _SESSION,
    keys.sms_closed(""): "just-closed SMS conversations: " + _SESSION,
    keys.sms_returning(""): "returning tipsters' SMS conversations: " + _SESSION,
    keys.sms_rate(""): "SMS rate counters: " + _SESSION,
    keys.SMS_IDLE: "SMS idle deadlines: a sorted set of session keys; lives minutes",
    keys.sms_seen(""): "SMS seen-markers (a sealed reply to a retried text): " + _MESSAGE,
    keys.console_login(""): "console sign-ins: a login id is a bearer credential; handlers sign in again",
    keys.console_logins_of(""): "console sign-ins per account (login ids): handlers sign in again",
    "rq:worker": "RQ worker heartbeats: the workers register again when they start",
    keys.worker_pulse(""): "worker pulses: live seconds; the workers beat again when they start",
}


class BackupError(Exception):
    """A backup cannot be made, read or restored; the message says what to do."""


def left_out(name: str) -> bool:
    """Whether a key is one a backup never holds."""
    return name.startswith(tuple(LEFT_OUT))


def kind(name: str) -> str:
    """What a key is, for the manifest's counts: `tipline:tip`, `rq:job`, ..."""
    return ":".join(name.split(":")[:2])


@dataclass(frozen=True)
class KeyCopy:
    name: str
    type: str
    ttl_ms: int  # 0: no expiry
    payload: bytes

    def line(self) -> bytes:
        record = {"name": self.name, "type": self.type, "ttl_ms": self.ttl_ms,
                  "payload": base64.b64encode(self.payload).decode()}
        return json.dumps(record, separators=(",", ":"), sort_keys=True).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes, number: int) -> KeyCopy:
        try:
            record = json.loads(line)
            copy = cls(str(record["name"]), str(record["type"]), int(record["ttl_ms"]),
                       base64.b64decode(record["payload"], validate=True))
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise BackupError(f"{DATA_FILE} line {number} is not a key copy ({type(error).__name__})") from None
        if copy.ttl_ms < 0:
            raise BackupError(f"{DATA_FILE} line {number}: a negative TTL")
        return copy


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def _names(connection: redis.Redis) -> list[str]:
    return sorted({as_text(name) for name in connection.scan_iter(count=1000)} - {""})


def _copies(connection: redis.Redis, names: list[str], progress: Progress, what: str) -> Iterator[KeyCopy | None]:
    """Each kept key as it is now (None: it went since it was listed)."""
    kept = [name for name in names if not left_out(name)]
    for start in range(0, len(kept), BATCH):
        batch = kept[start:start + BATCH]
        with connection.pipeline(transaction=False) as pipe:
            for name in batch:
                pipe.type(name)
                pipe.pttl(name)
                pipe.dump(name)
            replies = pipe.execute()
        for i, name in enumerate(batch):
            type_, ttl, payload = replies[3 * i:3 * i + 3]
            yield None if payload is None else KeyCopy(name, as_text(type_), max(int(ttl), 0), bytes(payload))
        done = start + len(batch)
        if done // PROGRESS_EVERY != (done - len(batch)) // PROGRESS_EVERY or done == len(kept):
            progress(f"{what}: {done:,} of {len(kept):,} keys")


def _digest_of(copies: Iterator[KeyCopy | None]) -> dict[str, str]:
    return {c.name: hashlib.sha256(c.payload).hexdigest() for c in copies if c is not None}


def _private_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


@dataclass(frozen=True)
class Summary:
    keys: int
    kinds: dict[str, int]
    manifest: dict[str, Any]


def create(connection: redis.Redis, folder: Path, progress: Progress = _quiet) -> Summary:
    """Write a consistent copy of the hotline's data into `folder` (new, or an empty one)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} exists and is not an empty folder: choose a new path")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    data = folder / DATA_FILE
    for attempt in range(1, PASSES + 1):
        data.unlink(missing_ok=True)
        names = _names(connection)
        written: dict[str, str] = {}
        kinds: Counter[str] = Counter()
        sha = hashlib.sha256()
        with os.fdopen(_private_file(data), "wb") as out:
            for copy in _copies(connection, names, progress, "copying"):
                if copy is None:
                    continue
                line = copy.line()
                out.write(line)
                sha.update(line)
                written[copy.name] = hashlib.sha256(copy.payload).hexdigest()
                kinds[kind(copy.name)] += 1
            out.flush()
            os.fsync(out.fileno())
        again = _digest_of(_copies(connection, _names(connection), progress, "checking"))
        if again == written:
            break
        changed = len(set(again.items()) ^ set(written.items()))
        progress(f"{changed:,} key(s) changed during pass {attempt}; copying again")
    else:
        data.unlink(missing_ok=True)
        raise BackupError(f"the data kept changing over {PASSES} copies: run it at a quieter hour, "
                          "or stop the web app and the workers while it runs")
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created_hour": current_hour(),
        "redis_version": str(connection.info("server").get("redis_version", "")),
        "keys": len(written),
        "kinds": dict(sorted(kinds.items())),
        "data_sha256": sha.hexdigest(),
        "left_out": [{"prefix": prefix, "why": why} for prefix, why in LEFT_OUT.items()],
        "consistency": f"two passes agreed on every key's value (pass {attempt})",
    }
    with os.fdopen(_private_file(folder / MANIFEST_FILE), "w") as out:
        json.dump(manifest, out, indent=2)
        out.write("\n")
    return Summary(len(written), dict(sorted(kinds.items())), manifest)


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise BackupError(f"{folder} has no {MANIFEST_FILE}: not a backup, or one that did not finish") from None
    except ValueError:
        raise BackupError(f"{folder / MANIFEST_FILE} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{folder / MANIFEST_FILE} is not a Tipline backup's manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise BackupError(f"backup format version {manifest.get('version')!r}: this Tipline reads {FORMAT_VERSION}")
    return manifest


def _checked_lines(folder: Path, manifest: dict[str, Any]) -> list[bytes]:
    try:
        raw = (folder / DATA_FILE).read_bytes()
    except FileNotFoundError:
        raise BackupError(f"{folder} has no {DATA_FILE}") from None
    if hashlib.sha256(raw).hexdigest() != manifest.get("data_sha256"):
        raise BackupError(f"{DATA_FILE} does not match the manifest's SHA-256: the backup is damaged or altered")
    return raw.splitlines()


def verify(folder: Path, progress: Progress = _quiet) -> Summary:
    """Check a backup without touching Redis: digest, format, every payload's checksum and
    type, nothing left-out inside, and the manifest's counts."""
    manifest = read_manifest(folder)
    kinds: Counter[str] = Counter()
    names: set[str] = set()
    lines = _checked_lines(folder, manifest)
    for number, line in enumerate(lines, 1):
        copy = KeyCopy.from_line(line, number)
        if left_out(copy.name):
            raise BackupError(f"{DATA_FILE} line {number} holds a key a backup leaves out")
        if copy.name in names:
            raise BackupError(f"{DATA_FILE} line {number} repeats a key")
        problem = payload_problem(copy.payload, copy.type)
        if problem:
            raise BackupError(f"{DATA_FILE} line {number}: {problem}")
        names.add(copy.name)
        kinds[kind(copy.name)] += 1
        if number % PROGRESS_EVERY == 0:
            progress(f"checked {number:,} of {len(lines):,} keys")
    if len(names) != manifest.get("keys") or dict(sorted(kinds.items())) != manifest.get("kinds"):
        raise BackupError("the manifest's key counts do not match the data")
    return Summary(len(names), dict(sorted(kinds.items())), manifest)


def restore(connection: redis.Redis, folder: Path, progress: Progress = _quiet) -> Summary:
    """Load a verified backup into a Redis that holds nothing but kinds a backup leaves out."""
    summary = verify(folder, progress)
    present = [name for name in _names(connection) if not left_out(name)]
    if present:
        raise BackupError(f"Redis already holds {len(present):,} key(s) a backup would restore (of kinds "
                          f"{', '.join(sorted({kind(n) for n in present})[:5])}): restore only into an empty Redis")
    lines = _checked_lines(folder, summary.manifest)
    for start in range(0, len(lines), BATCH):
        with connection.pipeline(transaction=False) as pipe:
            for number, line in enumerate(lines[start:start + BATCH], start + 1):
                copy = KeyCopy.from_line(line, number)
                pipe.restore(copy.name, copy.ttl_ms, copy.payload)
            try:
                pipe.execute()
            except redis.ResponseError as error:
                raise BackupError(f"Redis refused a key ({str(error)[:120]}); a payload from Redis "
                                  f"{summary.manifest.get('redis_version')} loads into that version or newer") from None
        done = min(start + BATCH, len(lines))
        if done // PROGRESS_EVERY != start // PROGRESS_EVERY or done == len(lines):
            progress(f"restoring: {done:,} of {len(lines):,} keys")
    return summary
