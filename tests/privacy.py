"""The privacy scan: look everywhere we write for a caller's number or a provider id.

`needles_for_number` spells a number every way it might leak: E.164, national, spaced,
digits only, its last 6+ digits, and the plain MD5/SHA-1/SHA-256 hex of each spelling
(a plain hash of a phone number is brute-forced in seconds, so it counts as the number).
`scan_redis` reads every key and every value of every type, decompressing what RQ stores
zlib-compressed; `scan_files` reads every file under a folder (the Redis AOF included).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

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


def _variants(blob: bytes) -> Iterable[bytes]:
    yield blob
    try:
        yield zlib.decompress(blob)
    except zlib.error:
        pass


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
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        hits += _find(path.read_bytes(), needles, f"file {path}")
    return hits


def scan_lines(lines: Iterable[str], needles: set[str], where: str = "log") -> list[Hit]:
    return [hit for line in lines for hit in _find(line.encode(), needles, f"{where}: {line[:120]}")]
