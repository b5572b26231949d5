"""The privacy scan: look everywhere we write for a caller's number or a provider id.

`needles_for_number` spells a number every way it might leak: E.164, national, spaced,
digits only, its last 6+ digits, and the plain MD5/SHA-1/SHA-256 hex of each spelling
(a plain hash of a phone number is brute-forced in seconds, so it counts as the number).
`needles_for_text` spells what a tipster said (a transcript, an SMS report) the same way:
the whole text, each line, and each word that could not turn up by chance.
`scan_redis` reads every key and every value of every type, decompressing what RQ stores
zlib-compressed; `scan_files` reads every file under a folder (the Redis AOF included),
decompressing every zlib stream inside it, so RQ's job payloads in the AOF are read too.

The append-only file is scanned as the test left it, never after `BGREWRITEAOF`: a
rewrite compacts away whatever was written and deleted again, which is exactly the
short-lived data the scan must find. Tests start their AOF fresh instead
(`start_a_fresh_aof`, from the `redis_files` fixture), so it holds only their own writes.
"""

from __future__ import annotations

import hashlib
import re
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis


@dataclass(frozen=True)
class Hit:
    where: str
    needle: str


def needles_for_number(e164: str) -> set[str]:
    assert e164.startswith("+44") and len(e164) == 13, "the scan knows UK numbers: +44 and 10 digits"
    national = "0" + e164[3:]
    spellings = {
        e164,
        e164[1:],
        "00" + e164[1:],
        national,
        f"{national[:5]} {national[5:]}",
        f"{national[:5]} {national[5:8]} {national[8:]}",
        f"+44 {e164[3:7]} {e164[7:]}",
        f"+44 ({national[0]}){e164[3:7]} {e164[7:]}",
        f"{national[:5]}-{national[5:]}",
    }
    needles = set(spellings)
    for length in range(6, 11):
        needles.add(e164[-length:])
    for spelling in spellings:
        for algorithm in ("md5", "sha1", "sha256"):
            needles.add(hashlib.new(algorithm, spelling.encode()).hexdigest())
    return needles


# A word of a tipster's text this long, not all hex digits, cannot turn up by chance in
# ciphertext (raw bytes), hex MACs or RQ's bookkeeping.
TELLING_WORD = re.compile(r"\b(?![a-f]+\b)[^\W\d_]{5,}\b", re.IGNORECASE)


def needles_for_text(text: str, stored_in_clear: Iterable[str] = ()) -> set[str]:
    """What a tipster said, as it would show if it were stored in the clear.

    `stored_in_clear` names words that are kept readable on purpose (a category name such
    as "drugs" is a triage field), so finding them means nothing.
    """
    assert text.strip(), "there is no text to look for: the check would pass whatever was stored"
    allowed = {word.lower() for word in stored_in_clear}
    needles = {text.strip()} | {line.strip() for line in text.splitlines() if line.strip()}
    needles |= {word for word in TELLING_WORD.findall(text) if word.lower() not in allowed}
    return needles


def _zlib_streams(blob: bytes) -> Iterable[bytes]:
    """Every zlib stream inside `blob`: RQ compresses job data, and the AOF carries it as is."""
    for match in re.finditer(rb"\x78[\x01\x5e\x9c\xda]", blob):
        try:
            inflated = zlib.decompressobj().decompress(memoryview(blob)[match.start():])
        except zlib.error:
            continue
        if inflated:
            yield inflated


def _variants(blob: bytes) -> Iterable[bytes]:
    yield blob
    yield from _zlib_streams(blob)


def _find(blob: bytes, needles: set[str], where: str) -> list[Hit]:
    hits = []
    for variant in _variants(blob):
        lowered = variant.lower()
        hits += [Hit(where, needle) for needle in needles if needle.lower().encode() in lowered]
    return hits


def redis_blobs(client: redis.Redis) -> Iterable[tuple[str, bytes]]:
    """Every key name and every value in the database, as (where, bytes)."""
    for key in client.scan_iter(count=1000):
        name = key.decode(errors="replace")
        yield f"key name {name}", key
        kind = client.type(key).decode()
        if kind == "string":
            yield f"value of {name}", client.get(key) or b""
        elif kind == "hash":
            for field, value in client.hgetall(key).items():
                yield f"hash {name}", field
                yield f"hash {name}[{field!r}]", value
        elif kind == "list":
            for value in client.lrange(key, 0, -1):
                yield f"list {name}", value
        elif kind == "set":
            for value in client.smembers(key):
                yield f"set {name}", value
        elif kind == "zset":
            for value, _ in client.zrange(key, 0, -1, withscores=True):
                yield f"zset {name}", value
        elif kind == "stream":
            for entry_id, fields in client.xrange(key):
                yield f"stream {name}", entry_id
                for field, value in fields.items():
                    yield f"stream {name}", field + b"=" + value


def scan_redis(client: redis.Redis, needles: set[str]) -> list[Hit]:
    return [hit for where, blob in redis_blobs(client) for hit in _find(blob, needles, f"redis {where}")]


def scan_files(folder: Path, needles: set[str]) -> list[Hit]:
    """Every file under `folder`, read raw and with its zlib streams inflated.

    A folder that does not exist is an error, not an empty scan: the check would pass
    without reading anything.
    """
    assert folder.is_dir(), f"{folder} does not exist: the scan would read nothing"
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        hits += _find(path.read_bytes(), needles, f"file {path}")
    return hits


def scan_lines(lines: Iterable[str], needles: set[str], where: str = "log") -> list[Hit]:
    return [hit for line in lines for hit in _find(line.encode(), needles, f"{where}: {line[:120]}")]


def wait_for_aof_rewrite(client: redis.Redis, timeout_seconds: float = 30) -> None:
    """Until Redis reports no AOF rewrite running or scheduled (INFO persistence)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        persistence = client.info("persistence")
        if persistence["aof_rewrite_in_progress"] == 0 and persistence["aof_rewrite_scheduled"] == 0:
            return
        assert time.monotonic() < deadline, f"the AOF rewrite did not finish in {timeout_seconds} s: {persistence}"
        time.sleep(0.01)


def start_a_fresh_aof(client: redis.Redis) -> None:
    """Compact the (flushed) database's AOF now, so that from here on it holds only new writes.

    Call it before a test writes anything, never before scanning.
    """
    wait_for_aof_rewrite(client)  # a rewrite already running would refuse BGREWRITEAOF
    client.bgrewriteaof()
    wait_for_aof_rewrite(client)
