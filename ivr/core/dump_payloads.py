"""What can be checked of a Redis `DUMP` payload without a Redis: its checksum and its type.

A payload is the value's RDB serialisation, the RDB version (2 bytes, little-endian) and
a CRC-64 (Jones, reflected; 8 bytes, little-endian) of everything before it. The first
byte is the RDB object type, which must agree with the type the backup recorded.
"""

from __future__ import annotations

_POLY = 0x95AC9329AC4BC9B5  # Jones's polynomial 0xad93d23594c935a9, bit-reflected (Redis's crc64.c)


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()

# RDB object types (Redis's rdb.h, 6.2 to 7.4) by the type Redis's TYPE reports.
RDB_TYPES: dict[str, frozenset[int]] = {
    "string": frozenset({0}),
    "list": frozenset({1, 10, 14, 18}),
    "set": frozenset({2, 11, 20}),
    "zset": frozenset({3, 5, 12, 17}),
    "hash": frozenset({4, 9, 13, 16}),
    "stream": frozenset({15, 19, 21}),
}
TRAILER_BYTES = 10  # RDB version and CRC-64


def crc64(data: bytes) -> int:
    """Redis's CRC-64 (`crc64(0, data, len)`): check value 0xe9c6d914c4b8d9ca for b"123456789"."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def payload_problem(payload: bytes, redis_type: str) -> str | None:
    """What is wrong with a DUMP payload said to hold a `redis_type`, or None."""
    if len(payload) <= TRAILER_BYTES:
        return "a payload too short to be a DUMP"
    if crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        return "a payload whose checksum does not match (damaged)"
    if payload[0] not in RDB_TYPES.get(redis_type, frozenset()):
        return f"a payload of RDB type {payload[0]}, not a {redis_type}"
    return None
